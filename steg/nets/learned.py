"""A learned code written by a lattice: the hiding is learned end to end (``model=learned``).

Why this design (experiments/learned): a hide net that *adds* a faint copy of the secret to the
cover is uncoded analog transmission with the cover as interference; the reveal net must guess
the cover to subtract it, and the learned nets stall near 22 dB revealed. Two things break that
ceiling, and this net has both:

- **Informed (dirty-paper) writing.** The code is written into the stego pixels' values modulo a
  period ``P`` (the lattice ``P Z``), at the 8-bit value nearest the cover pixel: the hide step
  knows the cover, so the cover does not mask the code, and the stego error is at most ``P // 2``
  levels (about 36.7 dB at ``P = 13``) whatever is hidden. This is qim's writer
  (:meth:`steg.nets.QIMNet.hide`), a fixed channel like the noisy channel of a deep JSCC.
- **A learned code.** Unlike qim, nothing maps the secret to residues by a fixed rule: an encoder
  net turns the secret (a neighbourhood of it, through a PixelUnshuffle U-Net) into a code value
  per cover value, in periods (``code = P * encoder(secret) + dither``), and a decoder net reads
  the secret back from the residues' phase alone (``cos k phi, sin k phi`` for ``k = 1, 2``). Both
  are trained jointly through the real channel: the code is rounded to whole levels (straight-through
  gradient) and the reveal sees exactly the 8-bit stego image's residues. The encoder starts from
  random weights: whatever code it uses, it learned. A joint source-channel code, it can spend the
  channel's ``log2 P`` bits per value where the secret needs them, which an uncoded map cannot.

Keys, nonce, tiling, export and attacks are qim's (:class:`~steg.nets.QIMNet`): the keyed dither is
uniform over the period, so without the key the residues are uniform whatever the secret, and the
decoder sees the same phases either way (one training serves both). The known-pair attack is qim's,
generalised to a learned code (:meth:`LatticeCode.known_secret_attack`).

Mixed precision: the encoder and decoder U-Nets run in bf16 under ``bf16-mixed`` autocast; the
code's scaling, rounding, residues, dither and phases in float32 (:func:`steg.precision.fp32`).
Shapes: images (B, C, H, W), H and W multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

from steg.nets.base import StegNet
from steg.nets.layers import UnshuffleBody, zero_init
from steg.nets.qim import QIMNet, dither_pattern
from steg.nets.registry import register
from steg.precision import fp32, full

__all__ = ["LatticeCode", "RobustLatticeCode", "zigzag_slots", "dct_filters"]


@register
class LatticeCode(QIMNet):
    """Learned code + lattice writer (see the module docstring). ``model=learned``.

    Args:
        channels: image channels.
        period: the lattice period in 8-bit levels (stego error <= ``period // 2``).
        width, depth: the encoder's and decoder's :class:`UnshuffleBody` size.
        harmonics: the decoder sees ``cos(k phi), sin(k phi)`` for ``k = 1 .. harmonics``.
        informed: the encoder also sees the cover (it may then shape its code to the cover).
    """

    name = "learned"

    def __init__(self, channels: int = 3, period: int = 13, width: int = 48, depth: int = 2,
                 harmonics: int = 2, informed: bool = False, squash: bool = False, start: str = "random"):
        if start not in ("random", "uncoded"):
            raise ValueError(f"start must be 'random' or 'uncoded', got {start!r}")
        if isinstance(period, bool) or not isinstance(period, int) or not 2 <= period <= 256:
            raise ValueError(f"period must be an integer in [2, 256], got {period!r}")
        if isinstance(harmonics, bool) or not isinstance(harmonics, int) or not 1 <= harmonics <= 8:
            raise ValueError(f"harmonics must be an integer in [1, 8], got {harmonics!r}")
        StegNet.__init__(self)
        self.hide_net = UnshuffleBody((2 if informed else 1) * channels, channels, width, depth)
        # The code's power: batch-normalised, then a learned spread (in periods) starting at a quarter
        # of a period, about the spread of the uncoded map. Without it a fresh encoder's code spans a
        # level or two, rounding leaves the decoder nothing to read, and training stalls.
        self.spread = nn.BatchNorm2d(channels)
        nn.init.constant_(self.spread.weight, 0.25)
        self.reveal_net = UnshuffleBody((2 * harmonics + 1) * channels, channels, width, depth)
        self.prep_net = nn.Identity()
        self.period = period
        self.encoder = True
        self.informed = informed
        self.harmonics = harmonics
        self.depth = depth
        self.squash = squash
        self.start = start
        # A learned per-pixel linear path (1x1 conv over the encoder's input) beside the U-Net. start=uncoded
        # sets it to the uncoded map (code = (P - 1) / P * secret periods, qim's fixed code) and the U-Net
        # and spread to zero, so training starts where qim is and every part of the code stays trainable.
        self.linear = nn.Conv2d((2 if informed else 1) * channels, channels, 1)
        if start == "uncoded":
            with torch.no_grad():
                self.linear.weight.zero_()
                self.linear.bias.zero_()
                for c in range(channels):
                    self.linear.weight[c, (channels if informed else 0) + c] = (period - 1) / period
                self.spread.weight.zero_()
        features = (2 * harmonics + 1) * channels
        # The decoder's linear path over its input features: zero from a random start (measured: a random
        # linear path there slowed training, 20.8 vs 23.4 dB after 150 steps), the uncoded inverse otherwise.
        self.unlinear = zero_init(nn.Conv2d(features, channels, 1))
        if start == "uncoded":  # the uncoded inverse: secret = residue fraction * P / (P - 1); the U-Net at zero
            with torch.no_grad():
                self.unlinear.weight.zero_()
                self.unlinear.bias.fill_(-0.5)
                for c in range(channels):
                    self.unlinear.weight[c, c] = period / (period - 1)
                nn.init.zeros_(self.reveal_net.head[0].weight)
                nn.init.zeros_(self.reveal_net.head[0].bias)
        self.register_buffer("dither", dither_pattern(channels, self.DITHER), persistent=False)

    @classmethod
    def tiny(cls) -> dict:
        return {"width": 8, "depth": 1}

    def code(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        """The learned code in levels (only its value mod P counts). Shape: (B, C, H, W)."""
        inputs = torch.cat([cover, secret], dim=1) if self.informed else secret
        value = self.hide_net(inputs)  # bf16 under autocast
        with fp32(secret):
            value = self.spread(full(value)) + self.linear(full(inputs))
            value = torch.sigmoid(full(value)) * (self.period - 1) / self.period if self.squash else full(value)
            return self.period * value + self._dither_like(full(secret), key)

    def residues(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        """The stego image's residues after the dither, in periods, in [-1/(2P), 1 - 1/(2P)). (B, C, H, W).

        What the channel delivers: the code mod P (read as a fraction of the period), plus the rounding.
        No rounding of ``stego`` here, so that in training the gradient reaches the code.
        """
        residue = torch.remainder(full(stego) * 255.0, self.period)
        return (torch.remainder(residue - self._dither_like(stego, key) + 0.5, self.period) - 0.5) / self.period

    def reveal(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        with fp32(stego):
            fraction = self.residues(stego, key)
            phase = 2 * torch.pi * fraction
            features = torch.cat([fraction] + [f(k * phase) for k in range(1, self.harmonics + 1)
                                               for f in (torch.cos, torch.sin)], dim=1)
        decoded = self.reveal_net(features)  # bf16 under autocast
        with fp32(stego):
            return 0.5 + full(decoded) + self.unlinear(features)

    def known_secret_dither(self, stego: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
        """The dither (levels, in [0, P)) estimated from stego images and their known secrets: ``stego mod P``
        minus the learned code of the secret (what :func:`steg.nets.qim.known_secret_dither` does for qim's
        fixed code). Every image of that size hidden with the same key and no nonce shares it. (B, C, H, W)."""
        with torch.no_grad():
            cover = stego if self.informed else torch.zeros_like(secret)
            code = self.code(cover, secret, key=None) - self._dither_like(secret, None)
        residue = torch.remainder(torch.round(stego.clamp(0, 1) * 255), self.period)
        return torch.remainder(residue - torch.round(code), self.period)

    def known_secret_attack(self, stego: torch.Tensor, secret: torch.Tensor):
        """Reveal other images with :meth:`known_secret_dither` of one known pair (a per-image nonce gives
        each image a dither of its own, which is what this attack measures)."""
        dither = self.known_secret_dither(stego, secret)
        return lambda other: self.reveal(other, key=dither)


# --------------------------------------------------------------------------- #
# The same idea for JPEG: a learned code on a lattice of luma DCT coefficients
# --------------------------------------------------------------------------- #

def zigzag_slots(count: int) -> list[tuple[int, int]]:
    """The first ``count`` AC coefficients (row, column) of an 8x8 DCT block in JPEG's zigzag order.

    >>> zigzag_slots(5)
    [(0, 1), (1, 0), (2, 0), (1, 1), (0, 2)]
    """
    order = sorted(((u, v) for u in range(8) for v in range(8)),
                   key=lambda p: (p[0] + p[1], p[0] if (p[0] + p[1]) % 2 else p[1]))
    return order[1:count + 1]


def dct_filters(slots: list[tuple[int, int]]) -> torch.Tensor:
    """The orthonormal 8x8 DCT-II basis images of ``slots`` as conv filters: (len(slots), 1, 8, 8).

    ``conv2d(luma, filters, stride=8)`` gives each block's coefficients of those slots;
    ``conv_transpose2d(coefficients, filters, stride=8)`` puts them back (the basis is orthonormal).
    """
    import numpy as np
    import scipy.fft

    basis = scipy.fft.dct(np.eye(8), norm="ortho", axis=0)  # row k: the k-th 1-D basis vector
    return torch.tensor(np.stack([np.outer(basis[u], basis[v]) for u, v in slots])[:, None], dtype=torch.float32)


def _convs(c_in: int, c_out: int, depth: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
    return layers


@register
class RobustLatticeCode(StegNet):
    """A learned code written on a lattice of the luma's 8x8 DCT coefficients: it survives JPEG.

    ``model=learned_robust``. The pixel lattice of :class:`LatticeCode` lives in exact 8-bit values,
    which any lossy codec destroys. Here the channel is what JPEG keeps: each 8x8 block's first
    ``slots`` AC coefficients of luma (zigzag order, :func:`zigzag_slots`). The encoder (a strided
    conv net, secret -> one code value per slot and block: ``slots`` values for 192 secret values, a
    learned compression) gives code values in periods; the writer moves each slot coefficient to the
    nearest value equal to ``step * (code + dither)`` modulo ``step`` and adds the luma change to R, G
    and B alike (informed, like qim: the cover does not mask the code). JPEG at quality 90 moves
    these coefficients by at most half its quantiser step (<= 5 for them), a small fraction of
    ``step``. The decoder reads the residues' phase and decodes the secret at full resolution.

    Stego error: uniform over a period in ``slots`` of 64 luma coefficients, so the MSE is about
    ``slots / 64 * step**2 / 12`` levels^2 (34.4 dB at 20 slots and step 30), plus 8-bit rounding.
    Train it with a JPEG distortion (``experiment=learned_robust``). Keys: the base class's keyed
    scrambling (``model.keyed=true``), not qim's keyed dither. Mixed precision: the conv nets in
    bf16, the DCT, lattice and phases in float32. Shapes: (B, C, H, W), H and W multiples of 8.
    """

    name = "learned_robust"
    size_multiple = 8
    DITHER = 8

    def __init__(self, channels: int = 3, slots: int = 20, step: float = 30.0, width: int = 32, depth: int = 2,
                 harmonics: int = 2):
        if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= 63:
            raise ValueError(f"slots must be an integer in [1, 63], got {slots!r}")
        if not isinstance(step, (int, float)) or isinstance(step, bool) or not 1.0 <= step <= 255.0:
            raise ValueError(f"step must be a number of levels in [1, 255], got {step!r}")
        super().__init__()
        self.slots, self.step, self.harmonics, self.depth = slots, float(step), harmonics, depth
        w = width
        self.hide_net = nn.Sequential(
            nn.PixelUnshuffle(2), *_convs(4 * channels, w, depth),
            nn.PixelUnshuffle(2), *_convs(4 * w, 2 * w, depth),
            nn.PixelUnshuffle(2), *_convs(8 * w, 4 * w, depth), nn.Conv2d(4 * w, slots, 1))
        self.spread = nn.BatchNorm2d(slots)  # the code's power, as in LatticeCode
        nn.init.constant_(self.spread.weight, 0.25)
        features = (2 * harmonics + 1) * slots
        self.reveal_net = nn.Sequential(
            *_convs(features, 4 * w, depth), nn.Conv2d(4 * w, 8 * w, 1), nn.PixelShuffle(2),
            *_convs(2 * w, 2 * w, depth), nn.Conv2d(2 * w, 4 * w, 1), nn.PixelShuffle(2),
            *_convs(w, w, depth), nn.Conv2d(w, 4 * channels, 1), nn.PixelShuffle(2))
        self.prep_net = nn.Identity()
        self.register_buffer("filters", dct_filters(zigzag_slots(slots)), persistent=False)
        self.register_buffer("dither", dither_pattern(slots, self.DITHER)[:, :, :1, :1].clone(), persistent=False)
        self.channels = channels

    def receptive_radius(self) -> int:
        # conv stacks at 1/2, 1/4, 1/8 (2, 4, 8 px a conv) in each net, plus a block's 7 px of alignment
        return 2 * (14 * self.depth + 7)

    @classmethod
    def tiny(cls) -> dict:
        return {"width": 4, "depth": 1}

    def _luma(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, 1, H, W) luma in levels (BT.601 weights; grey: the channel)."""
        if x.shape[1] == 1:
            return x * 255.0
        weights = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True) * 255.0

    def _coefficients(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(self._luma(x), self.filters, stride=8)

    def encode(self, value: torch.Tensor) -> torch.Tensor:
        """The code in periods, (B, slots, H/8, W/8): the conv net's ``value`` normalised to its learned spread.

        (Linear block-transform paths beside the conv nets, which help ``LatticeCode``, measured worse
        here: 17.5 vs 18.1 dB after 400 steps.)"""
        return self.spread(value)

    def hide(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        self._no_key(key)
        value = self.hide_net(secret)  # bf16 under autocast
        with fp32(cover):
            cover = full(cover)
            code = self.step * (self.encode(full(value)) + self.dither)
            coefficients = self._coefficients(cover)
            change = code - coefficients
            change = change - self.step * torch.floor(change / self.step + 0.5)  # nearest lattice point
            luma = torch.nn.functional.conv_transpose2d(change, self.filters, stride=8)
            return cover + luma / 255.0

    def reveal(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        self._no_key(key)
        with fp32(stego):
            fraction = self._coefficients(full(stego)) / self.step - self.dither
            fraction = torch.remainder(fraction + 0.5, 1.0) - 0.5
            phase = 2 * torch.pi * fraction
            features = torch.cat([fraction] + [f(k * phase) for k in range(1, self.harmonics + 1)
                                               for f in (torch.cos, torch.sin)], dim=1)
        decoded = self.reveal_net(features)
        with fp32(stego):
            return 0.5 + full(decoded)
