"""Inference with trained hide/reveal nets at any image size, in bounded memory.

Quick start::

    from steg import load_model

    model = load_model()                    # the shipped model "default"
    stego = model.hide(cover, secret)       # PIL in -> 8-bit PIL out
    stego.save("stego.png")                 # PNG only: lossy formats destroy the secret
    revealed = model.reveal(stego)

``cover``/``secret``/``stego`` may be PIL images, image file paths, or float
tensors in [0, 1] of shape (C, H, W) or (B, C, H, W); results come back as the
same kind (a path gives a PIL image). Model files are :mod:`steg.inference.files`.

The nets are fully convolutional; every hide and reveal runs through
:func:`steg.inference.tiling.run_tiled` (padding to the net's ``size_multiple``, overlapping tiles
above a memory budget), so results equal the untiled ones up to float rounding while peak
memory stays bounded whatever the image size.

This module imports neither Lightning, Hydra nor torchmetrics (``steg hide``
starts in about a second plus torch's own import).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Sequence

import torch
from PIL import Image

from steg.inference.images import ImageBatch, ImageInput, sharpen_image
from steg.io import FIT_MODES, fit_image, to_pil, to_tensor
from steg.inference.files import DEFAULT_MODEL, ModelError, export_checkpoint, load_net
from steg.nets import StegNet
from steg.nets.base import PerTile
from steg.quantize import quantize as to_8bit  # `quantize` is also an argument name below
from steg.inference.tiling import ACTIVATION_BUDGET, BYTES_PER_PIXEL_CHANNEL, auto_tile, default_margin, round_up, run_tiled

__all__ = [
    "DEFAULT_TILE",
    "ACTIVATION_BUDGET",
    "BYTES_PER_PIXEL_CHANNEL",
    "GrayscaleCoverWarning",
    "ModelError",
    "StegModel",
    "auto_tile",
    "default_margin",
    "export_checkpoint",
    "load_model",
    "sharpen_image",
]

#: The name of the digital hiding method (:mod:`steg.digital`), which :func:`load_model` dispatches to.
DIGITAL = "digital"
#: Default tiling: "auto" sizes tiles so that one tile's activations fit ACTIVATION_BUDGET.
DEFAULT_TILE = "auto"
class GrayscaleCoverWarning(UserWarning):
    """A grayscale cover hidden with an RGB model gives an RGB (coloured) stego image."""


# --------------------------------------------------------------------------- #
# The model wrapper
# --------------------------------------------------------------------------- #


class StegModel:
    """A hide/reveal net ready for inference at any image size.

    Args:
        net: the :class:`steg.nets.StegNet` (put in eval mode here).
        device: where the net runs ("cpu", "cuda", ...). Images stay on the CPU;
            tiles travel to the device.
        tile: side of the core region of one tile (rounded up to a multiple of
            ``net.size_multiple``); images whose padded size has at most
            (tile + 2 * margin)**2 pixels run in one piece. "auto" (default):
            sized by :func:`auto_tile` so that one tile's activations take about
            ``ACTIVATION_BUDGET`` bytes. None or 0: never tile.
        margin: overlap margin of the tiles; default: the nets' receptive-field
            radius plus alignment slack (:func:`default_margin`).
        info: where the weights came from (see :func:`load_net`).

    Attributes:
        net, channels, size_multiple, device, tile, margin, info.
    """

    def __init__(
        self,
        net: StegNet,
        device: str | torch.device = "cpu",
        tile: int | str | None = DEFAULT_TILE,
        margin: int | None = None,
        info: dict[str, Any] | None = None,
    ):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.channels = int(net.arch_config.get("channels", 3))
        self.size_multiple = int(net.size_multiple)
        m = self.size_multiple
        if margin is None:
            margin = default_margin(net)
        elif isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
            raise ValueError(f"margin must be an int >= 0, got {margin!r}")
        self.margin = round_up(margin, m)
        if tile == "auto":
            tile = auto_tile(net, margin=self.margin)
        elif tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 0):
            raise ValueError(f"tile must be 'auto', None or an int >= 0, got {tile!r}")
        self.tile = round_up(tile, m) if tile else None
        self.info = dict(info or {})
        self.calls = 0  # net invocations (tiles) so far; handy to check that tiling happened

    # -- description -------------------------------------------------------------
    @property
    def source(self) -> str | None:
        return self.info.get("source")

    def describe(self) -> str:
        """One line: architecture, channels, parameter count and where the weights came from."""
        cfg = self.net.arch_config
        args = ", ".join(f"{k}={v}" for k, v in cfg.items() if k not in ("name", "channels", "noise_std"))
        params = sum(p.numel() for p in self.net.parameters())
        text = (
            f"{cfg.get('name', type(self.net).__name__)} ({'RGB' if self.channels == 3 else 'grayscale'}; "
            f"{args}; {params:,} parameters)"
        )
        if self.source:
            text += f" from {self.source}"
        extra = []
        if self.info.get("source_checkpoint"):
            extra.append(f"exported from {self.info['source_checkpoint']}")
        for key in ("epoch", "global_step"):
            if self.info.get(key) not in (None, ""):
                extra.append(f"{key.replace('global_', '')} {self.info[key]}")
        if extra:
            text += f" ({', '.join(extra)})"
        return text

    def __repr__(self) -> str:
        return f"StegModel({self.describe()}, device={self.device}, tile={self.tile}, margin={self.margin})"

    # -- core: padded, tiled application of a net function ------------------------
    def run(self, fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor],
            per_tile: PerTile | None = None) -> torch.Tensor:
        """The :data:`steg.nets.base.Runner` of this model: ``fn`` over (1, C, H, W) CPU tensors of equal size,
        padded and tiled (:func:`steg.inference.tiling.run_tiled`) on the model's device; returns (1, C', H, W) on the CPU.

        ``per_tile(window, padded)``: extra keyword arguments of ``fn`` for each tile (a keyed
        method's window of a whole-image key field), moved to the device with the inputs.
        """
        h, w = inputs[0].shape[-2:]
        padded = (round_up(h, self.size_multiple), round_up(w, self.size_multiple))  # as run_tiled pads
        dtype = next(self.net.parameters(), torch.empty(0)).dtype  # a method without weights: float32

        def run(parts: list[torch.Tensor], window: tuple[int, int, int, int]) -> torch.Tensor:
            self.calls += 1
            extra = per_tile(window, padded) if per_tile is not None else {}
            kwargs = {name: value.to(self.device, dtype) for name, value in extra.items()}
            return fn(*[p.to(self.device, dtype) for p in parts], **kwargs).to("cpu", torch.float32)

        with torch.inference_mode():
            return run_tiled(run, inputs, self.size_multiple, self.tile, self.margin)

    # -- tensor API (raw net outputs) ------------------------------------------------
    def hide_tensor(
        self, cover: torch.Tensor, secret: torch.Tensor, key: Any = None, nonce: bytes | None = None
    ) -> torch.Tensor:
        """Raw (unclamped) stego images: (B, C, H, W) x2 of equal shape -> (B, C, H, W) float32 CPU.

        ``key``: None, a passphrase (str/bytes) or a :class:`steg.security.keys.DerivedKey`.
        With a key, every image draws a random nonce (``nonce``: a fixed one, for
        reproducible tests) and hides with the key of (key, nonce), so one key can
        hide many images without them sharing a key stream. How the key and nonce
        are used is the method's own: :meth:`steg.nets.StegNet.hide_with_key`.
        """
        if cover.shape != secret.shape:
            raise ValueError(f"cover {tuple(cover.shape)} and secret {tuple(secret.shape)} must have the same shape")
        key = self._key(key)
        mode = True if nonce is None else nonce
        outs = [self.net.hide_with_key(cover[i : i + 1], secret[i : i + 1], key, run=self.run, nonce=mode)
                for i in range(cover.shape[0])]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def reveal_tensor(self, stego: torch.Tensor, key: Any = None) -> torch.Tensor:
        """Raw (unclamped) revealed secrets: (B, C, H, W) -> (B, C, H, W) float32 CPU.

        A wrong key gives an image (noise), never an error: a steganography tool
        must not confirm that something is hidden.
        """
        key = self._key(key)
        outs = [self.net.reveal_with_key(stego[i : i + 1], key, run=self.run, nonce=True)
                for i in range(stego.shape[0])]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _key(self, key: Any) -> bytes | None:
        """A passphrase (str/bytes) derived with :func:`steg.security.keys.derive_key`; a DerivedKey as is.

        A model without a keyed mode refuses a key (one line) before the derivation.
        """
        from steg.security.keys import resolve_key

        self.net.check_key(key)
        return resolve_key(key)

    # -- user API ---------------------------------------------------------------------
    def hide(
        self, cover: ImageInput, secret: ImageInput, fit: str = "resize", quantize: bool = True,
        key: Any = None,
    ) -> Image.Image | torch.Tensor:
        """Hide ``secret`` in ``cover``; the result has the cover's size and kind.

        Args:
            cover, secret: PIL images, image file paths, or float tensors in
                [0, 1] of shape (C, H, W) or (B, C, H, W). Converted to the
                model's channels (grey <-> RGB). The secret is fitted to the
                cover's size (``fit``: "resize" or "crop", see :func:`fit_image`).
            quantize: for tensor results, clamp to [0, 1] and round to 8 bits
                (what a saved PNG holds); False gives the raw net output.
                PIL results are always 8-bit.
            key: a passphrase (str/bytes) or :class:`steg.security.keys.DerivedKey`, for
                keyed models (qim, or any net trained with ``model.keyed=true``);
                only the same key reveals. None: anyone with the model can.

        Returns:
            A PIL image ('RGB' or 'L') for a PIL/path cover, else a tensor
            shaped like the cover (with the model's channels).
        """
        c = ImageBatch(cover, self.channels, "cover")
        s = ImageBatch(secret, self.channels, "secret")
        ct, st = c.tensor, s.tensor
        if st.shape[-2:] != ct.shape[-2:]:
            size = (int(ct.shape[-1]), int(ct.shape[-2]))
            images = [s.image] if s.kind == "pil" else [to_pil(x) for x in st]
            st = torch.stack([to_tensor(fit_image(img, size, fit)) for img in images])
        if st.shape[0] != ct.shape[0]:
            if st.shape[0] != 1:
                raise ValueError(f"secret batch size {st.shape[0]} does not match the cover's {ct.shape[0]}")
            st = st.expand(ct.shape[0], -1, -1, -1)
        if c.mode == "L" and self.channels == 3:
            warnings.warn(
                f"the cover is grayscale but the model is RGB: the stego image is RGB (the code lives in all "
                f"three channels, so it cannot stay grey); use a grayscale model (train.py channels=1) "
                f"to keep it grey", GrayscaleCoverWarning, stacklevel=2)
        out = self.hide_tensor(ct, st, key=key)
        if quantize or c.kind == "pil":
            out = to_8bit(out)
        return c.give_back(out)

    def reveal(
        self, stego: ImageInput, sharpen: bool = False, quantize: bool = True, key: Any = None
    ) -> Image.Image | torch.Tensor:
        """Recover the secret from ``stego`` (PIL image, path or tensor); same size and kind.

        Args:
            sharpen: post-process with an unsharp mask (kornia, 5x5, sigma 1)
                on the clamped revealed image.
            quantize: for tensor results, clamp and round to 8 bits; False gives
                the raw net output (with ``sharpen``: clamped, not rounded).
            key: the key given to :meth:`hide`; a wrong key gives noise, not an error.
        """
        s = ImageBatch(stego, self.channels, "stego")
        out = self.reveal_tensor(s.tensor, key=key)
        if sharpen:
            out = sharpen_image(out)
        if quantize or s.kind == "pil":
            out = to_8bit(out)
        return s.give_back(out)


def load_model(
    model: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    tile: int | str | None = DEFAULT_TILE,
    margin: int | None = None,
    **options: Any,
) -> StegModel:
    """Load a model for inference: a .ckpt, an exported .safetensors, or a shipped model name.

    ``"digital"`` (or ``"digital:PROFILE"``) is not a net: it returns :class:`steg.digital.DigitalMethod`
    (the same user API; ``options``: ``profile``, ``codec``, ``quality``; device and tiling do not apply).

    Args:
        model: path or shipped name; None means the shipped model ``"default"``
            (``steg/pretrained/default.safetensors``).
        device: where the net runs.
        tile, margin: tiling (see :class:`StegModel`).

    Raises:
        ModelError: one line naming the file (see :func:`load_net`).
    """
    if isinstance(model, str) and (model == DIGITAL or model.startswith(DIGITAL + ":")):
        from steg.digital import DigitalMethod

        if ":" in model:  # "digital:PROFILE", the form the bench's tables and commands use
            options = {"profile": model.split(":", 1)[1], **options}
        return DigitalMethod(**options)
    if options:
        raise ModelError(f"options {', '.join(sorted(options))} apply to --model {DIGITAL} only")
    net, info = load_net(model)
    return StegModel(net, device=device, tile=tile, margin=margin, info=info)
