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

__all__ = ["LatticeCode"]


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

    def known_secret_attack(self, stego: torch.Tensor, secret: torch.Tensor):
        """Reveal other images with the dither estimated from one known pair: ``stego mod P`` minus
        the learned code of the known secret (what :func:`steg.nets.qim.known_secret_dither` does for
        qim's fixed code). A per-image nonce gives each image a dither of its own, which is what this
        attack measures."""
        with torch.no_grad():
            code = self.code(torch.zeros_like(secret) if not self.informed else stego, secret, key=None)
            code = code - self._dither_like(secret, None)
        residue = torch.remainder(torch.round(stego.clamp(0, 1) * 255), self.period)
        dither = torch.remainder(residue - torch.round(code), self.period)
        return lambda other: self.reveal(other, key=dither)
