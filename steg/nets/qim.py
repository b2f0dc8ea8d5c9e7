"""Learned quantization-index modulation, the shipped model's architecture (``model=qim``, the default)."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from steg.security.keys import NONCE_BYTES, Keys, image_key, key_field, keyed_dither, per_image
from steg.nets.base import PerTile, Runner, StegNet, draw_nonce, run_whole
from steg.nets.layers import UnshuffleBody, zero_init
from steg.nets.registry import register
from steg.precision import fp32, full

__all__ = [
    "QIMNet", "wrap_period", "dither_pattern", "DITHER_LABEL",
    "NONCE_BITS", "NONCE_MIN_PERIOD", "nonce_positions", "embed_nonce", "read_nonce", "patch_nonce_pixels",
    "known_secret_dither",
]

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
    if torch.get_default_device().type == "meta":  # a shape check (steg.inference.files): no values, no work
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

    Mixed precision: the encoder and decoder U-Nets run in bf16 under ``bf16-mixed``
    autocast; the code, its rounding, the residues, the dither and its subtraction
    run in float32 with autocast off (:func:`steg.precision.fp32`): bf16 cannot hold
    the 256 levels the code lives in.
    """

    name = "qim"
    keyed = True  # by construction: its key sets its dither
    DITHER = 8
    size_multiple = DITHER

    def __init__(self, channels: int = 3, period: int = 13, width: int = 48, depth: int = 2,
                 encoder: bool = True, dither: bool = True):
        if isinstance(period, bool) or not isinstance(period, int) or not 2 <= period <= 256:
            raise ValueError(f"period must be an integer in [2, 256], got {period!r}")
        super().__init__()
        self.hide_net = zero_init_body(UnshuffleBody(2 * channels, channels, width, depth)) if encoder else nn.Identity()
        self.reveal_net = zero_init_body(UnshuffleBody(3 * channels, channels, width, depth))
        self.prep_net = nn.Identity()  # no prep stage; kept until steg.training.module stops naming it
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
        :func:`steg.security.keys.derive_key`): the keyed dither over the whole period,
        uniform in [0, P) per pixel (:func:`steg.security.keys.keyed_dither` for an image
        of x's size). ``key`` a tensor: that dither, precomputed, (C, H, W) or
        (B, C, H, W) in [0, P) (how :mod:`steg.inference.model` passes a tile's window
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
        """This net's keyed dither for an image of ``shape`` (C, H, W): see :func:`steg.security.keys.keyed_dither`."""
        return keyed_dither(key, self.period, shape, rows=rows, width=width)

    # -- the keyed protocol (steg.nets.base): the keyed dither, a nonce in the top row --
    def _nonce_fits(self, shape: tuple[int, ...]) -> bool:
        """Whether images of ``shape`` (C, H, W) carry a nonce (:func:`embed_nonce`): period and size allow it."""
        return self.period >= NONCE_MIN_PERIOD and nonce_positions(tuple(shape)) is not None

    def _dither_tiles(self, keys: list[bytes], shape: tuple[int, int, int]) -> PerTile:
        """``per_tile`` giving each tile ``key=`` its window of the whole images' keyed dithers, (B, C, h, w).

        The dither of a row of tiles is made once (:func:`steg.security.keys.key_field` makes any window
        of the whole image's field, so tiles line up with the untiled image).
        """
        rows: list = [None, None]

        def per_tile(window: tuple[int, int, int, int], padded: tuple[int, int]) -> dict[str, torch.Tensor]:
            y0, y1, x0, x1 = window
            if rows[0] != (y0, y1):
                rows[:] = [(y0, y1), torch.stack([self.keyed_dither(k, shape, rows=(y0, y1), width=padded[1])
                                                  for k in keys])]
            return {"key": rows[1][..., x0:x1]}

        return per_tile

    def hide_with_key(self, cover: torch.Tensor, secret: torch.Tensor, key: Keys | None = None, *,
                      run: Runner = run_whole, nonce: bool | bytes = False) -> torch.Tensor:
        """qim's keyed hide: the keyed dither of each image's key, in place of the fixed one.

        With a nonce (images large enough: :func:`nonce_positions`), an image's dither is that
        of ``image_key(key, nonce)`` and the nonce is written into its top-row residues, masked
        by the key (:func:`embed_nonce`). Shapes and arguments: :meth:`StegNet.hide_with_key`.
        """
        if key is None:
            return run(self.hide, [cover, secret])
        shape = tuple(int(v) for v in cover.shape[1:])
        keys = per_image(key, cover.shape[0])
        nonces = [draw_nonce(nonce, NONCE_BYTES) if self._nonce_fits(shape) else None for _ in keys]
        dither_keys = [k if n is None else image_key(k, n) for k, n in zip(keys, nonces)]
        stego = run(self.hide, [cover, secret], per_tile=self._dither_tiles(dither_keys, shape))
        if any(n is not None for n in nonces):
            stego = torch.cat([s if n is None else embed_nonce(s, k, n, self.period)
                               for s, k, n in zip(stego.split(1), keys, nonces)])
        return stego

    def reveal_with_key(self, stego: torch.Tensor, key: Keys | None = None, *,
                        run: Runner = run_whole, nonce: bool = False) -> torch.Tensor:
        """qim's keyed reveal: read each image's nonce (if ``nonce``), reveal with its keyed dither,
        and patch the nonce pixels (they carry no secret). See :meth:`hide_with_key`."""
        if key is None:
            return run(self.reveal, [stego])
        shape = tuple(int(v) for v in stego.shape[1:])
        keys = per_image(key, stego.shape[0])
        with_nonce = bool(nonce) and self._nonce_fits(shape)
        dither_keys = [image_key(k, read_nonce(s, k, self.period)) if with_nonce else k
                       for s, k in zip(stego.split(1), keys)]
        revealed = run(self.reveal, [stego], per_tile=self._dither_tiles(dither_keys, shape))
        return patch_nonce_pixels(revealed) if with_nonce else revealed

    def training_keys(self, batch: int) -> None:
        """None: qim trains on its fixed dither; the keyed dither only moves the code within the period,
        which the decoder sees the same way (so one training serves both)."""
        return None

    def validation_keys(self, batch: int, index: int) -> None:
        """None, as :meth:`training_keys`."""
        return None

    def attacker_view(self, stego: torch.Tensor) -> torch.Tensor:
        """The stego image and the cos/sin of its residue phase ``2 pi (255 stego) / P`` (what the decoder sees).

        (B, C, H, W) -> (B, 3C, H, W).
        """
        phase = torch.round(stego * 255) * (2 * torch.pi / self.period)
        return torch.cat([stego, torch.cos(phase), torch.sin(phase)], dim=1)

    def known_secret_attack(self, stego: torch.Tensor, secret: torch.Tensor):
        """Reveal with the dither estimated from one known pair (:func:`known_secret_dither`):
        every image of that size whose dither comes from the same key shares it (a per-image nonce gives
        each image a key of its own, which is what this attack measures)."""
        dither = known_secret_dither(stego, secret, self.period)
        return lambda other: self.reveal(other, key=dither)

    def code(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        """The secret as target residues in levels (only the value mod P counts). Shape: (B, C, H, W)."""
        correction = self.hide_net(torch.cat([cover, secret], dim=1)) if self.encoder else None
        with fp32(secret):
            value = full(secret) if correction is None else full(secret) + full(correction)
            return (self.period - 1) * value + self._dither_like(value, key)

    def hide(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        code = self.code(cover, secret, key)
        with fp32(cover):
            levels = torch.round(full(cover).clamp(0, 1) * 255.0)
            code = code + (torch.round(code) - code).detach()  # whole levels, straight-through gradient
            stego = levels + wrap_period(code - levels, self.period)
            # Stay inside 0..255 by moving to the neighbouring value of the same residue.
            stego = torch.where(stego < -0.5, stego + self.period, stego)
            stego = torch.where(stego > 255.5, stego - self.period, stego)
            return stego / 255.0

    def reveal(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        with fp32(stego):
            stego = full(stego)
            residue = torch.remainder(stego * 255.0, self.period)
            # Undo the dither; fold into [-1/2, P - 1/2) so that residue 0 with a
            # positive dither reads as a little below 0, not a little below P.
            code = torch.remainder(residue - self._dither_like(stego, key) + 0.5, self.period) - 0.5
            phase = code * (2 * torch.pi / self.period)
            coarse = code / (self.period - 1)
            features = torch.cat([coarse, torch.cos(phase), torch.sin(phase)], dim=1)
        correction = self.reveal_net(features)  # bf16 under autocast
        with fp32(stego):
            return coarse + full(correction)


# --------------------------------------------------------------------------- #
# qim's per-image nonce: one key, many images
# --------------------------------------------------------------------------- #

NONCE_BITS = 8 * NONCE_BYTES
#: Smallest period that carries a nonce bit safely (two codes P/2 apart, rounding error <= 1/2).
NONCE_MIN_PERIOD = 4


def nonce_positions(shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(c, y, x) index tensors of the :data:`NONCE_BITS` pixels that carry the nonce, or None.

    The first NONCE_BITS values in raster order (row, column, channel): the top
    row for images at least 32 pixels wide (RGB). None when the image has fewer
    than 4 * NONCE_BITS values (then no nonce is used).
    """
    c, h, w = (int(v) for v in shape)
    if c * h * w < 4 * NONCE_BITS:
        return None
    i = torch.arange(NONCE_BITS)
    return i % c, i // (w * c), (i // c) % w


def _nonce_dither(key: bytes, period: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """Key-only dither (levels, [0, P)) of the nonce pixels: (NONCE_BITS,)."""
    field = key_field(key, f"qim-nonce/{int(period)}", (1, 1, NONCE_BITS))
    return field.flatten() * float(period)


def embed_nonce(stego: torch.Tensor, key: bytes, nonce: bytes, period: int) -> torch.Tensor:
    """Write ``nonce`` into the residues of the nonce pixels of a (1, C, H, W) stego image in [0, 1].

    Bit b of pixel i becomes the residue ``round(b * P / 2 + d_i) mod P`` with a
    key-only dither ``d_i`` uniform in [0, P), at the 8-bit value nearest the
    pixel (so the change is at most P / 2 levels, like every other pixel). To
    anyone without the key the residues are uniform. Returns a new tensor.
    """
    pos = nonce_positions(tuple(stego.shape[1:]))
    if pos is None:
        return stego
    pos = tuple(p.to(stego.device) for p in pos)
    bits = torch.tensor([(byte >> k) & 1 for byte in nonce for k in range(8)], dtype=stego.dtype, device=stego.device)
    dither = _nonce_dither(key, period, tuple(stego.shape[1:])).to(stego.device, stego.dtype)
    code = torch.round(bits * (period / 2) + dither)
    out = stego.clone()
    levels = torch.round(out[0][pos].clamp(0, 1) * 255)
    value = levels + torch.remainder(code - levels + period / 2, period) - period / 2
    value = torch.where(value < 0, value + period, value)
    value = torch.where(value > 255, value - period, value)
    out[0][pos] = value / 255.0
    return out


def read_nonce(stego: torch.Tensor, key: bytes, period: int) -> bytes | None:
    """The nonce written by :func:`embed_nonce` into a (1, C, H, W) 8-bit stego image (None if too small).

    With a wrong key this reads some other nonce (and the reveal gives noise).
    """
    pos = nonce_positions(tuple(stego.shape[1:]))
    if pos is None:
        return None
    pos = tuple(p.to(stego.device) for p in pos)
    levels = torch.round(stego[0][pos].clamp(0, 1) * 255)
    dither = _nonce_dither(key, period, tuple(stego.shape[1:])).to(stego.device, stego.dtype)
    v = torch.remainder(levels - dither, period)
    bits = torch.remainder(torch.round(v / (period / 2)), 2).long().tolist()  # the nonce is needed on the host
    return bytes(sum(bits[8 * j + k] << k for k in range(8)) for j in range(NONCE_BYTES))


def patch_nonce_pixels(revealed: torch.Tensor) -> torch.Tensor:
    """Replace the revealed image's nonce pixels (which carry no secret) by the pixel below: a new tensor."""
    pos = nonce_positions(tuple(revealed.shape[1:]))
    if pos is None or revealed.shape[-2] < 2:
        return revealed
    revealed = revealed.clone()
    c, y, x = (p.to(revealed.device) for p in pos)
    below = torch.where(y + 1 < revealed.shape[-2], y + 1, y - 1)
    revealed[:, c, y, x] = revealed[:, c, below, x]
    return revealed


def zero_init_body(body: UnshuffleBody) -> UnshuffleBody:
    """An :class:`UnshuffleBody` whose output starts at zero."""
    zero_init(body.head[0])
    return body


def known_secret_dither(stego: torch.Tensor, secret: torch.Tensor, period: int) -> torch.Tensor:
    """Estimate of the qim dither (levels, in [0, P)) from one stego image and its known secret.

    With the key unknown but one (stego, secret) pair known, ``stego mod P``
    minus ``(P - 1) * secret`` is the keyed dither up to the encoder's small
    correction and rounding: the dither that every other image of the same size
    hidden with the same key shares. Shapes: (B, C, H, W) -> (B, C, H, W).
    """
    residue = torch.remainder(torch.round(stego.clamp(0, 1) * 255), period)
    return torch.remainder(residue - (period - 1) * secret, period)
