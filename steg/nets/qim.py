"""Learned quantization-index modulation, the shipped model's architecture (``model=qim``, the default)."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from steg.nets.base import StegNet
from steg.nets.layers import UnshuffleBody, zero_init
from steg.nets.registry import register

__all__ = ["QIMNet", "wrap_period", "dither_pattern", "DITHER_LABEL"]

#: The dither is SHAKE-256 of this label: the same values on every machine and torch version.
DITHER_LABEL = b"steg.nets.qim.dither"


def wrap_period(x: torch.Tensor, period: float) -> torch.Tensor:
    """``x`` folded into [-period/2, period/2) by subtracting a multiple of ``period``. Shape: any."""
    return x - period * torch.floor(x / period + 0.5)


def dither_pattern(channels: int, side: int) -> torch.Tensor:
    """The fixed pseudo-random dither, (1, channels, side, side) in [-1/2, 1/2).

    Value ``i`` (in C order) is the ``i``-th little-endian 16-bit word of
    ``hashlib.shake_256(DITHER_LABEL)``, divided by 65536, minus 1/2 (exact in float32).
    """
    if torch.get_default_device().type == "meta":  # a shape check (steg.models): no values, no work
        return torch.empty(1, channels, side, side)
    count = channels * side * side
    words = np.frombuffer(hashlib.shake_256(DITHER_LABEL).digest(2 * count), dtype="<u2")
    values = torch.from_numpy(words.astype(np.float32)) / 65536.0 - 0.5
    return values.reshape(1, channels, side, side)


@register
class QIMNet(StegNet):
    """Learned quantization-index modulation: the secret lives in the stego pixels' residues.

    Hide: the secret becomes a code ``t`` in levels of one period ``P``,
    ``t = (P - 1) * (secret + correction) + dither``, where the correction comes
    from an optional encoder (an :class:`UnshuffleBody` on cover and secret whose
    last layer starts at zero) and the dither is a fixed pseudo-random pattern
    in [-1/2, 1/2) that repeats every ``DITHER`` pixels (:func:`dither_pattern`).
    ``t`` is rounded to a whole level (straight-through gradient) and each stego
    pixel is the 8-bit value nearest the cover pixel that equals ``round(t)``
    modulo ``P``: "dirty-paper" coding, in which the hide step knows the cover,
    so the cover does not mask the code.

    Stego error (levels of 0..255, for an 8-bit cover): at most ``P // 2``
    (6 at ``P = 13``, about 36.7 dB PSNR) wherever the cover level ``c`` lies in
    ``[P // 2, 255 - P // 2]``; nearer to 0 or 255 the nearest value with the
    right residue may lie outside 0..255, and the next one inside is taken, at
    most ``P - 1`` levels away (12 at ``P = 13``). The output is already on the
    8-bit grid, so quantizing it changes nothing (no ties to round).

    Reveal: ``stego mod P`` minus the dither gives the secret to within a
    rounding error that the dither makes signal-independent noise (no banding);
    a decoder (:class:`UnshuffleBody`, last layer at zero) that sees this coarse
    secret and its phase (cos, sin) learns to remove that noise from context.

    ``period`` sets the trade-off: a larger period, a worse stego image and a
    finer secret. The code lives in exact 8-bit values, so it survives lossless
    PNG only: any change of the stego pixels (noise, JPEG, resizing) destroys it,
    which is why there is no noise layer. Shapes: images (B, C, H, W), H and W
    multiples of 8 (the dither pattern's period, a multiple of the U-Nets' 4).
    The attribute names ``hide_net`` (encoder) and ``reveal_net`` (decoder) are
    those of the shipped model's weights.

    Keys: ``hide(..., key=k)`` / ``reveal(..., key=k)`` replace the fixed dither
    by a keyed one, uniform over the whole period at every pixel (see
    :meth:`_dither_like`): without the key, the residues are uniformly
    distributed whatever the secret, and a wrong key reveals noise. Without a
    key, anyone with the model (or ``stego mod P``) reads the secret.
    """

    name = "qim"
    keyed = True
    native_key = True
    DITHER = 8
    size_multiple = DITHER

    def __init__(self, channels: int = 3, period: int = 13, width: int = 48, depth: int = 2,
                 encoder: bool = True, dither: bool = True):
        if isinstance(period, bool) or not isinstance(period, int) or not 2 <= period <= 256:
            raise ValueError(f"period must be an integer in [2, 256], got {period!r}")
        super().__init__()
        self.hide_net = zero_init_body(UnshuffleBody(2 * channels, channels, width, depth)) if encoder else nn.Identity()
        self.reveal_net = zero_init_body(UnshuffleBody(3 * channels, channels, width, depth))
        self.prep_net = nn.Identity()  # no prep stage; kept until steg.module stops naming it
        self.period = period
        self.encoder = encoder
        self.depth = depth
        pattern = dither_pattern(channels, self.DITHER) if dither else torch.zeros(1, channels, self.DITHER, self.DITHER)
        # part of the architecture, not of the weights
        self.register_buffer("dither", pattern, persistent=False)

    def receptive_radius(self) -> int:
        return UnshuffleBody.radius(self.depth)  # the hide step itself is per pixel

    @classmethod
    def tiny(cls) -> dict:
        return {"width": 8, "depth": 1}

    def _dither_like(self, x: torch.Tensor, key=None) -> torch.Tensor:
        """The dither for images like ``x`` (B, C, H, W), in levels.

        ``key`` None: the fixed 8x8 pattern in [-1/2, 1/2), tiled (no secrecy:
        anyone with the model reveals). ``key`` bytes (a derived key, see
        :func:`steg.keys.derive_key`): the keyed dither over the whole period,
        uniform in [0, P) per pixel (:func:`steg.keys.keyed_dither` for an image
        of x's size). ``key`` a tensor: that dither, precomputed, (C, H, W) or
        (B, C, H, W) in [0, P) (how :mod:`steg.inference` passes a tile's window
        of the whole image's dither). A list of keys: one per image. The decoder
        sees the code after the dither is subtracted, so the same weights serve both.
        """
        if key is None:
            reps = (x.shape[-2] // self.DITHER, x.shape[-1] // self.DITHER)
            return self.dither.to(x.dtype).repeat(1, 1, *reps)
        if isinstance(key, (list, tuple)):
            key = torch.stack([self.keyed_dither(k, tuple(x.shape[-3:])) for k in key])
        elif not isinstance(key, torch.Tensor):
            key = self.keyed_dither(key, tuple(x.shape[-3:]))
        if key.shape[-3:] != x.shape[-3:]:
            raise ValueError(f"key dither of shape {tuple(key.shape)} does not match the images {tuple(x.shape)}")
        return key.to(x.device, x.dtype).expand_as(x)

    def keyed_dither(self, key: bytes, shape: tuple[int, int, int], rows=None, width=None) -> torch.Tensor:
        """This net's keyed dither for an image of ``shape`` (C, H, W): see :func:`steg.keys.keyed_dither`."""
        from steg.keys import keyed_dither

        return keyed_dither(key, self.period, shape, rows=rows, width=width)

    def code(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        """The secret as target residues in levels (only the value mod P counts). Shape: (B, C, H, W)."""
        value = secret
        if self.encoder:
            value = value + self.hide_net(torch.cat([cover, secret], dim=1))
        return (self.period - 1) * value + self._dither_like(secret, key)

    def hide(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        levels = torch.round(cover.clamp(0, 1) * 255.0)
        code = self.code(cover, secret, key)
        code = code + (torch.round(code) - code).detach()  # whole levels, straight-through gradient
        stego = levels + wrap_period(code - levels, self.period)
        # Stay inside 0..255 by moving to the neighbouring value of the same residue.
        stego = torch.where(stego < -0.5, stego + self.period, stego)
        stego = torch.where(stego > 255.5, stego - self.period, stego)
        return stego / 255.0

    def reveal(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        residue = torch.remainder(stego * 255.0, self.period)
        # Undo the dither; fold into [-1/2, P - 1/2) so that residue 0 with a
        # positive dither reads as a little below 0, not a little below P.
        code = torch.remainder(residue - self._dither_like(stego, key) + 0.5, self.period) - 0.5
        phase = code * (2 * torch.pi / self.period)
        coarse = code / (self.period - 1)
        return coarse + self.reveal_net(torch.cat([coarse, torch.cos(phase), torch.sin(phase)], dim=1))


def zero_init_body(body: UnshuffleBody) -> UnshuffleBody:
    """An :class:`UnshuffleBody` whose output starts at zero."""
    zero_init(body.head[0])
    return body
