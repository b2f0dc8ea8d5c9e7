"""The images a method takes and gives back: PIL images, file paths or float tensors, and the sharpening of revealed ones.

Every hiding method (a net through :class:`steg.inference.model.StegModel`, the digital method
of :mod:`steg.digital`) reads its inputs with :class:`ImageBatch` and gives results back in the
kind it was given.
"""

from __future__ import annotations

import os
from typing import Union

import torch
from PIL import Image

from steg.io import _convert_mode, load_image, to_pil, to_tensor

__all__ = ["ImageInput", "ImageBatch", "channels_to", "sharpen_image", "SHARPEN_KERNEL", "SHARPEN_SIGMA"]

#: Unsharp mask used by ``reveal(sharpen=True)``.
SHARPEN_KERNEL = 5
SHARPEN_SIGMA = 1.0


ImageInput = Union[Image.Image, torch.Tensor, str, os.PathLike]


def channels_to(x: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    """(B, c, H, W) -> (B, channels, H, W): grey replicated to RGB, RGB to ITU-R 601 luma."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        from kornia.color import rgb_to_grayscale  # imported here: 0.2 s, only this path needs it

        return rgb_to_grayscale(x)
    raise ValueError(f"{what}: expected a tensor with 1 or 3 channels, got {c}")


class ImageBatch:
    """An input image as a (B, C, H, W) float tensor plus how to give results back in kind."""

    def __init__(self, value: ImageInput, channels: int, what: str):
        self.kind: str
        self.mode = None
        if isinstance(value, torch.Tensor):
            if not value.is_floating_point():
                raise TypeError(f"{what}: expected a float tensor in [0, 1], got dtype {value.dtype}")
            if value.dim() == 3:
                self.kind, t = "chw", value.unsqueeze(0)
            elif value.dim() == 4:
                self.kind, t = "bchw", value
            else:
                raise ValueError(f"{what}: expected a tensor of shape (C, H, W) or (B, C, H, W), got {tuple(value.shape)}")
            self.tensor = channels_to(t.detach().to("cpu", torch.float32), channels, what)
            return
        if isinstance(value, Image.Image):
            img = _convert_mode(value, None)
        elif isinstance(value, (str, os.PathLike)):
            img = load_image(value, None)
        else:
            raise TypeError(f"{what}: expected a PIL image, a file path or a tensor, got {type(value).__name__}")
        self.kind = "pil"
        self.mode = img.mode  # before conversion to the model's channels
        self.image = _convert_mode(img, channels)
        self.tensor = to_tensor(self.image).unsqueeze(0)

    def give_back(self, out: torch.Tensor) -> Image.Image | torch.Tensor:
        if self.kind == "pil":
            return to_pil(out[0])
        if self.kind == "chw":
            return out[0]
        return out


def sharpen_image(x: torch.Tensor, rows_per_strip: int | None = None) -> torch.Tensor:
    """Unsharp mask (kornia, kernel 5, sigma 1.0) of the clamped (B, C, H, W) image, clamped to [0, 1].

    Large images are filtered in horizontal strips (with the kernel's 2-row halo,
    so the result is the same) to keep memory bounded.
    """
    from kornia.filters import unsharp_mask

    halo = SHARPEN_KERNEL // 2
    h, w = x.shape[-2:]
    if rows_per_strip is None:
        rows_per_strip = max(16, (1 << 20) // max(w, 1))
    out = torch.empty_like(x, dtype=torch.float32)
    with torch.inference_mode():
        for y0 in range(0, h, rows_per_strip):
            y1 = min(h, y0 + rows_per_strip)
            e0, e1 = max(0, y0 - halo), min(h, y1 + halo)
            part = x[..., e0:e1, :].float().clamp(0.0, 1.0)
            # reflect padding needs more rows than the halo; tiny strips fall back to replicate
            border = "reflect" if part.shape[-2] > halo and part.shape[-1] > halo else "replicate"
            sharp = unsharp_mask(part, (SHARPEN_KERNEL, SHARPEN_KERNEL), (SHARPEN_SIGMA, SHARPEN_SIGMA),
                                 border_type=border)
            out[..., y0:y1, :] = sharp[..., y0 - e0 : y1 - e0, :].clamp_(0.0, 1.0)
    return out
