"""Differentiable distortions of the stego image, applied between hide and reveal in training.

A stego image rarely reaches its reader untouched: chat apps recompress it to
JPEG, resize it, add noise or crop it. Training the reveal net on distorted
stego images (HiDDeN, PRIS) is how a model learns to survive that. Each
distortion here has a **function form** (always applied, fixed parameters,
differentiable where the operation allows) and an **nn.Module form** (samples
its parameters from a range per image, applied in training mode only: the
identity in eval mode), built by ``conf/distortion/<name>.yaml``:

============  =========================================  ==============================
config        module                                     function
============  =========================================  ==============================
``none``      :class:`Identity`                          -
``jpeg``      :class:`JPEG` (quality range)              :func:`jpeg` (kornia)
``noise``     :class:`GaussianNoise` (sigma range, 0-255) :func:`gaussian_noise`
``resize``    :class:`Resize` (scale range)              :func:`resize` (kornia)
``blur``      :class:`Blur` (sigma range)                :func:`blur` (kornia)
``crop``      :class:`Crop` (side fraction range)        :func:`crop`
``dropout``   :class:`Dropout` (probability range)       :func:`dropout`
``combined``  :class:`Combined` (one of several a batch) -
============  =========================================  ==============================

Every module is called as ``distortion(stego, cover)`` and returns a
:class:`Distorted` ``(image, box)``: the distorted image and, for :class:`Crop`,
the window it kept (``None`` otherwise). The secret the reveal net is asked for
must go through the same window, ``out.crop(secret)``, so one training step reads::

    stego = quantize_ste(net.hide(cover, secret))     # what the user saves
    out = distortion(stego, cover)                    # what the reader gets
    revealed = net.reveal(out.image)
    loss = L(stego, cover) + beta * L(revealed, out.crop(secret))

The module forms round their output to 8 bits with a straight-through gradient
(``quantize=True``), since every real distortion hands the reader an 8-bit
image; the function forms do not (so that ``gradcheck`` sees smooth functions).

Shapes: images are (B, C, H, W) floats in [0, 1], C in {1, 3}; the output has
the input's shape, except :func:`crop`/:class:`Crop` (B, C, h, w) with
h <= H, w <= W.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from kornia.enhance import jpeg_codec_differentiable
from kornia.filters import gaussian_blur2d
from kornia.geometry.transform import resize as kornia_resize
from torch import nn

from steg.device import to_device
from steg.quantize import quantize_ste

__all__ = [
    "Box",
    "Distorted",
    "jpeg",
    "gaussian_noise",
    "resize",
    "blur",
    "crop",
    "dropout",
    "Distortion",
    "Identity",
    "JPEG",
    "GaussianNoise",
    "Resize",
    "Blur",
    "Crop",
    "Dropout",
    "Combined",
]

#: A window of an image: (top, left, height, width) in pixels.
Box = tuple[int, int, int, int]
Range = tuple[float, float]


class Distorted(NamedTuple):
    """What a distortion module returns: the distorted image and the window it kept (or None)."""

    image: torch.Tensor
    box: Box | None = None

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., H, W) cut to the same window as ``image`` (``x`` itself when there is none)."""
        return x if self.box is None else crop(x, self.box)


# --------------------------------------------------------------------------- #
# Function forms: fixed parameters, always applied
# --------------------------------------------------------------------------- #


def _host_per_image(value: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A scalar or (B,) parameter as a (B,) tensor in ``x``'s dtype, where it already is (numbers: the host).

    kornia takes such parameters on the host, checks them there and copies them
    to the image's device without a sync; a device tensor stays on the device.
    """
    v = torch.as_tensor(value).to(dtype=x.dtype).flatten()
    if v.numel() == 1:
        v = v.expand(x.shape[0])
    if v.numel() != x.shape[0]:
        raise ValueError(f"expected one value or one per image ({x.shape[0]}), got {v.numel()}")
    return v


def _per_image(value: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A scalar or (B,) parameter as a (B,) tensor on ``x``'s device and dtype (copied without a host sync)."""
    return to_device(_host_per_image(value, x), x.device)


def jpeg(x: torch.Tensor, quality: float | torch.Tensor) -> torch.Tensor:
    """Differentiable JPEG compression and decompression (kornia's ``jpeg_codec_differentiable``).

    Args:
        x: (B, C, H, W) in [0, 1], C in {1, 3}; grey images are coded as RGB with equal
            channels (no chroma) and averaged back.
        quality: JPEG quality in [1, 100], one for all or (B,) per image.

    Returns:
        (B, C, H, W), the decoded image (not rounded to 8 bits).
    """
    q = _host_per_image(quality, x)  # kornia checks it on the host and copies it to x's device
    if x.shape[1] == 1:
        return jpeg_codec_differentiable(x.expand(-1, 3, -1, -1), q).mean(dim=1, keepdim=True)
    return jpeg_codec_differentiable(x, q)


def gaussian_noise(x: torch.Tensor, sigma: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` plus N(0, sigma^2) noise, ``sigma`` in 8-bit levels (0-255), scalar or (B,).

    Shape: (B, C, H, W) -> (B, C, H, W); not clamped.
    """
    s = _per_image(sigma, x).view(-1, 1, 1, 1) / 255.0
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + noise * s


def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Down to ``scale`` times the size (bicubic, antialiased) and back up (bicubic), via kornia.

    Args:
        x: (B, C, H, W).
        scale: in (0, 1]; the small image is round(H * scale) x round(W * scale), at least 1x1.

    Returns:
        (B, C, H, W): the detail finer than the small image's grid is gone.
    """
    if not 0 < scale <= 1:
        raise ValueError(f"resize scale must be in (0, 1], got {scale}")
    h, w = x.shape[-2:]
    small = (max(1, round(h * scale)), max(1, round(w * scale)))
    if small == (h, w):
        return x
    down = kornia_resize(x, small, interpolation="bicubic", antialias=True)
    return kornia_resize(down, (h, w), interpolation="bicubic")


def _kernel_size(sigma: float) -> int:
    return 2 * max(1, math.ceil(3.0 * sigma)) + 1


def blur(x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """Gaussian blur (kornia's ``gaussian_blur2d``, reflect border), ``sigma`` in pixels, scalar or (B,).

    The kernel spans +-3 sigma of the largest sigma. Shape: (B, C, H, W) -> (B, C, H, W).
    A ``sigma`` given on the host (numbers, a CPU tensor: what the training
    distortion draws) is checked there, without waiting for the device.
    """
    s = _host_per_image(sigma, x)
    if bool((s <= 0).any()):
        raise ValueError(f"blur sigma must be > 0, got {s.tolist()}")
    k = _kernel_size(float(s.max()))
    k = min(k, 2 * ((min(x.shape[-2:]) - 1) // 2) + 1)  # reflect padding needs a kernel smaller than the image
    return gaussian_blur2d(x, (k, k), s.unsqueeze(1).expand(-1, 2), border_type="reflect")


def crop(x: torch.Tensor, box: Box) -> torch.Tensor:
    """The window ``box = (top, left, height, width)`` of ``x`` (..., H, W) -> (..., height, width)."""
    top, left, height, width = box
    h, w = x.shape[-2:]
    if not (0 <= top and 0 <= left and height >= 1 and width >= 1 and top + height <= h and left + width <= w):
        raise ValueError(f"crop box {box} (top, left, height, width) does not fit in a {h}x{w} image")
    return x[..., top : top + height, left : left + width]


def dropout(
    x: torch.Tensor, cover: torch.Tensor, p: float | torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Each pixel of ``x`` (all channels together) replaced by the cover's with probability ``p``.

    Args:
        x, cover: (B, C, H, W) of equal shape.
        p: in [0, 1], scalar or (B,).

    Returns:
        (B, C, H, W); the gradient reaches ``x`` through the pixels that were kept.
    """
    if cover.shape != x.shape:
        raise ValueError(f"dropout needs a cover of the stego image's shape {tuple(x.shape)}, got {tuple(cover.shape)}")
    prob = _per_image(p, x).view(-1, 1, 1, 1)
    u = torch.rand((x.shape[0], 1, *x.shape[-2:]), generator=generator, dtype=x.dtype, device=x.device)
    return torch.where(u < prob, cover, x)


# --------------------------------------------------------------------------- #
# Module forms: random parameters per image, training only
# --------------------------------------------------------------------------- #


def _range(value: float | Sequence[float], name: str, low: float, high: float) -> Range:
    """A number or a [min, max] pair from a config, checked against [low, high]."""
    pair = [value, value] if isinstance(value, (int, float)) else list(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in pair):
        raise ValueError(f"{name} must be a number or a [min, max] pair, got {value!r}")
    a, b = float(pair[0]), float(pair[1])
    if not (low <= a <= b <= high):
        raise ValueError(f"{name} must satisfy {low:g} <= min <= max <= {high:g}, got {value!r}")
    return a, b


class Distortion(nn.Module):
    """Base class: ``forward(stego, cover=None) -> Distorted``; the identity in eval mode.

    Subclasses implement :meth:`distort`. With ``quantize=True`` the result is
    clamped and rounded to 8 bits with a straight-through gradient.
    """

    def __init__(self, quantize: bool = True):
        super().__init__()
        self.quantize = bool(quantize)

    def distort(self, stego: torch.Tensor, cover: torch.Tensor | None) -> Distorted:
        raise NotImplementedError

    def forward(self, stego: torch.Tensor, cover: torch.Tensor | None = None) -> Distorted:
        if not self.training:
            return Distorted(stego)
        out = self.distort(stego, cover)
        return out._replace(image=quantize_ste(out.image)) if self.quantize else out

    def _uniform(self, rng: Range, x: torch.Tensor) -> torch.Tensor:
        """(B,) values drawn uniformly from ``rng``, in ``x``'s dtype, on the host (torch's CPU generator).

        Drawn on the host so that the functions can check them and size kernels
        without reading the device back; they travel to the device without a sync.
        """
        lo, hi = rng
        return lo + (hi - lo) * torch.rand(x.shape[0], dtype=x.dtype)


class Identity(Distortion):
    """``distortion=none``: the stego image as it is (already quantized by the module)."""

    def __init__(self):
        super().__init__(quantize=False)

    def distort(self, stego, cover):
        return Distorted(stego)


class JPEG(Distortion):
    """Differentiable JPEG with a quality drawn uniformly from ``quality`` per image."""

    def __init__(self, quality: float | Sequence[float] = (50.0, 95.0), quantize: bool = True):
        super().__init__(quantize)
        self.quality = _range(quality, "jpeg quality", 1.0, 100.0)

    def distort(self, stego, cover):
        return Distorted(jpeg(stego, self._uniform(self.quality, stego)))

    def extra_repr(self) -> str:
        return f"quality={self.quality}"


class GaussianNoise(Distortion):
    """Gaussian noise with a std drawn uniformly from ``sigma`` (8-bit levels) per image.

    ``sigma: 2.55`` (fixed) is the seed architectures' ``noise_std: 0.01``.
    """

    def __init__(self, sigma: float | Sequence[float] = (0.0, 4.0), quantize: bool = True):
        super().__init__(quantize)
        self.sigma = _range(sigma, "noise sigma", 0.0, 255.0)

    def distort(self, stego, cover):
        return Distorted(gaussian_noise(stego, self._uniform(self.sigma, stego)))

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class Resize(Distortion):
    """Down by a factor drawn uniformly from ``scale`` (one per batch) and back up."""

    def __init__(self, scale: float | Sequence[float] = (0.5, 0.9), quantize: bool = True):
        super().__init__(quantize)
        self.scale = _range(scale, "resize scale", 1e-3, 1.0)

    def distort(self, stego, cover):
        lo, hi = self.scale
        return Distorted(resize(stego, lo + (hi - lo) * float(torch.rand(()))))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class Blur(Distortion):
    """Gaussian blur with a sigma (pixels) drawn uniformly from ``sigma`` per image."""

    def __init__(self, sigma: float | Sequence[float] = (0.5, 1.5), quantize: bool = True):
        super().__init__(quantize)
        self.sigma = _range(sigma, "blur sigma", 1e-3, 64.0)

    def distort(self, stego, cover):
        return Distorted(blur(stego, self._uniform(self.sigma, stego)))

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class Crop(Distortion):
    """Reveal from a random window of the stego image (fully convolutional nets).

    The window's sides are about ``fraction`` (drawn per batch) of the image's,
    rounded down to a multiple of ``multiple`` (the net's ``size_multiple``: 8
    covers every architecture in ``steg.nets``) so the reveal net takes it
    without padding; its position is uniform over the image (any pixel offset,
    as a real crop lands). The returned ``box`` cuts the secret the same way.
    """

    def __init__(self, fraction: float | Sequence[float] = (0.5, 0.9), multiple: int = 8, quantize: bool = True):
        super().__init__(quantize)
        self.fraction = _range(fraction, "crop fraction", 1e-3, 1.0)
        if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
            raise ValueError(f"crop multiple must be an int >= 1, got {multiple!r}")
        self.multiple = multiple

    def sample_box(self, h: int, w: int) -> Box:
        lo, hi = self.fraction
        f = lo + (hi - lo) * float(torch.rand(()))
        m = self.multiple
        ch, cw = (max(m, int(side * f) // m * m) for side in (h, w))
        if ch > h or cw > w:
            raise ValueError(f"cannot crop a {h}x{w} image to a multiple of {m}")
        top = int(torch.randint(0, h - ch + 1, ()))
        left = int(torch.randint(0, w - cw + 1, ()))
        return top, left, ch, cw

    def distort(self, stego, cover):
        box = self.sample_box(*stego.shape[-2:])
        return Distorted(crop(stego, box), box)

    def extra_repr(self) -> str:
        return f"fraction={self.fraction}, multiple={self.multiple}"


class Dropout(Distortion):
    """Pixels replaced by the cover's with a probability drawn uniformly from ``p`` per image.

    Needs the cover: ``forward(stego, cover)``.
    """

    def __init__(self, p: float | Sequence[float] = (0.1, 0.3), quantize: bool = True):
        super().__init__(quantize)
        self.p = _range(p, "dropout p", 0.0, 1.0)

    def distort(self, stego, cover):
        if cover is None:
            raise ValueError("the dropout distortion needs the cover: call it as distortion(stego, cover)")
        return Distorted(dropout(stego, cover, self._uniform(self.p, stego)))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Combined(Distortion):
    """One of ``distortions`` per batch, picked at random (``weights``: relative odds; default equal).

    The picked distortion's own ``quantize`` applies; the last pick is kept in
    ``last`` (its index), handy for logging and tests.
    """

    def __init__(self, distortions: Sequence[Distortion], weights: Sequence[float] | None = None):
        super().__init__(quantize=False)
        self.distortions = nn.ModuleList(list(distortions))
        if len(self.distortions) == 0:
            raise ValueError("combined needs at least one distortion")
        if any(not isinstance(d, Distortion) for d in self.distortions):
            raise ValueError("combined: every entry must be a steg.distortions.layers.Distortion")
        w = [1.0] * len(self.distortions) if weights is None else [float(v) for v in weights]
        if len(w) != len(self.distortions) or any(v < 0 for v in w) or sum(w) <= 0:
            raise ValueError(f"combined weights must be {len(self.distortions)} numbers >= 0, not all 0; got {weights!r}")
        # on the host on purpose (not a buffer, which would follow the module to the GPU): the pick is a
        # host decision, drawn without reading the device back
        self.weights = torch.tensor(w)
        self.last: int | None = None

    def distort(self, stego, cover):
        self.last = int(torch.multinomial(self.weights, 1))
        return self.distortions[self.last](stego, cover)
