"""HiNet-class invertible hiding network (Jing et al., "HiNet: Deep Image Hiding by
Invertible Network", ICCV 2021), written from the paper.

Hide and reveal are one network run in two directions::

    hide:    DWT(cover), DWT(secret) --N invertible blocks-->  (y1, r);  stego = IDWT(y1)
    reveal:  DWT(stego), z           --the same blocks backward--> (cover', x2); revealed = IDWT(x2)

``r`` is the information about the secret that does not fit into the stego image
(the "lost information"); it is dropped, and reveal replaces it by ``z``: zeros,
or in training with ``z="gaussian"`` a draw from N(0, I), so that the blocks
learn to make the secret independent of it. Reveal in eval mode always uses
zeros (the mean of N(0, I)), so that outputs are deterministic and tiles agree.

Pieces:

- :func:`haar_dwt` / :func:`haar_idwt`: the orthonormal 2-D Haar transform as a
  fixed, exactly invertible reshape (no weights): (B, C, H, W) <-> (B, 4C, H/2, W/2),
  channels grouped by sub-band (LL of every channel first, then HL, LH, HH).
- :class:`DenseBlock`: ``depth`` densely connected 3x3 convs with LeakyReLU; the
  last layer starts at zero, so a fresh block computes 0.
- :class:`InvertibleBlock`: affine coupling on the two wavelet branches::

      x1 <- x1 + phi(x2)
      x2 <- x2 * exp(clamp * (2 * sigmoid(rho(x1)) - 1)) + eta(x1)

  and exactly that undone backward. With zero-started sub-nets a fresh net is
  the identity: stego = cover.
- :class:`HiNet`: the :class:`steg.nets.StegNet`, plus the low-frequency loss
  term (LL sub-band of stego vs cover) through :meth:`HiNet.extra_losses`.

All images are (B, C, H, W) floats in [0, 1]; H and W must be even
(``size_multiple = 2``).

Mixed precision (``bf16-mixed``): only the dense blocks' convolutions run in bf16.
The Haar DWT/IDWT and the couplings' arithmetic run in float32 with autocast off
(:func:`steg.precision.fp32`): the wavelet branches that carry the images are never
rounded to bf16, so a fresh net stays the identity (in bf16 the Haar transform alone
moved the cover by 1.5 levels); see :class:`InvertibleBlock` for how exact the
inverse is then.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from steg.nets.base import StegNet
from steg.precision import fp32
from steg.nets.registry import register

__all__ = ["DenseBlock", "HiNet", "InvertibleBlock", "haar_dwt", "haar_idwt"]

def _haar_butterfly(u: torch.Tensor, dim: int) -> torch.Tensor:
    """The orthonormal 4-point Haar matrix applied along ``dim`` (size 4) by sums and differences.

    Order of the 2x2 taps: top-left, top-right, bottom-left, bottom-right; of the
    sub-bands: LL, HL (left - right), LH (top - bottom), HH. The matrix is symmetric
    and orthogonal, so the same butterfly is its own inverse. Built from additions,
    with no constant tensor (nothing to copy to the device at each call).
    """
    a, b, c, d = u.unbind(dim)
    s1, d1, s2, d2 = a + b, a - b, c + d, c - d
    return 0.5 * torch.stack([s1 + s2, d1 + d2, s1 - s2, d1 - d2], dim=dim)


@fp32
def haar_dwt(x: torch.Tensor) -> torch.Tensor:
    """One level of the orthonormal 2-D Haar transform, in float32 (autocast off).

    Shape: (B, C, H, W) -> (B, 4C, H/2, W/2), H and W even; output channel
    ``k * C + c`` is sub-band ``k`` (0 LL, 1 HL, 2 LH, 3 HH) of input channel ``c``.
    The LL band is twice the 2x2 mean. Energy is preserved: ``||dwt(x)|| == ||x||``.
    A bf16/fp16 input is transformed as float32 (:func:`steg.precision.fp32`).

    >>> x = torch.rand(2, 3, 8, 6)
    >>> torch.allclose(haar_idwt(haar_dwt(x)), x, atol=1e-6)
    True
    """
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"haar_dwt needs even height and width, got {h}x{w}")
    taps = F.pixel_unshuffle(x, 2).reshape(b, c, 4, h // 2, w // 2)
    return _haar_butterfly(taps, 2).transpose(1, 2).reshape(b, 4 * c, h // 2, w // 2)


@fp32
def haar_idwt(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar_dwt`, in float32 (autocast off). Shape: (B, 4C, h, w) -> (B, C, 2h, 2w)."""
    b, c4, h, w = y.shape
    if c4 % 4:
        raise ValueError(f"haar_idwt needs a multiple of 4 channels, got {c4}")
    c = c4 // 4
    taps = _haar_butterfly(y.reshape(b, 4, c, h, w), 1).transpose(1, 2)
    return F.pixel_shuffle(taps.reshape(b, 4 * c, h, w), 2)


class DenseBlock(nn.Sequential):
    """``depth`` densely connected convs: layer ``i`` sees the input and every earlier output.

    Layers 1..depth-1 have ``growth`` filters and LeakyReLU(0.2); the last maps
    to ``out_ch`` linearly and starts at zero (weights and bias), so a fresh
    block outputs 0. Shape: (B, in_ch, H, W) -> (B, out_ch, H, W).
    Receptive radius: ``depth * (kernel // 2)`` pixels.
    """

    def __init__(self, in_ch: int, out_ch: int, growth: int = 32, depth: int = 5, kernel: int = 3):
        if depth < 1 or growth < 1:
            raise ValueError(f"DenseBlock needs depth >= 1 and growth >= 1, got depth={depth}, growth={growth}")
        convs = [nn.Conv2d(in_ch + i * growth, growth, kernel, padding=kernel // 2) for i in range(depth - 1)]
        last = nn.Conv2d(in_ch + (depth - 1) * growth, out_ch, kernel, padding=kernel // 2)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        super().__init__(*convs, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in list(self)[:-1]:
            feats.append(F.leaky_relu(conv(torch.cat(feats, dim=1)), 0.2))
        return self[-1](torch.cat(feats, dim=1))


class InvertibleBlock(nn.Module):
    """HiNet's affine coupling block on two branches of ``channels`` channels each.

    ``forward(x1, x2)``: ``y1 = x1 + phi(x2)``, ``y2 = x2 * exp(s(y1)) + eta(y1)``
    with the clamped log-scale ``s = clamp * (2 * sigmoid(rho(y1)) - 1)`` in
    (-clamp, clamp). ``inverse(y1, y2)`` returns (x1, x2) exactly (up to float
    rounding). Shapes: (B, channels, h, w) each way.

    Precision: the sub-nets ``phi``, ``rho``, ``eta`` run in whatever autocast gives
    them (bf16 under ``bf16-mixed``); the coupling itself (the additions, the scale
    and its ``exp``, the subtraction and division of the inverse) runs in float32
    with autocast off. The branches (the image's wavelets) are then never rounded
    to bf16, the scale branch inverts to float32 rounding, and the other branch to
    within the rounding of ``phi``'s bf16 output when ``phi`` sees an input a float32
    ulp away from the forward one (a bf16 ulp of that output). For an inverse exact
    to float32 throughout, train and run in ``trainer.precision=32``.
    """

    def __init__(self, channels: int, growth: int = 32, depth: int = 5, clamp: float = 2.0):
        super().__init__()
        if clamp <= 0:
            raise ValueError(f"clamp must be > 0, got {clamp}")
        self.clamp = float(clamp)
        self.phi = DenseBlock(channels, channels, growth, depth)
        self.rho = DenseBlock(channels, channels, growth, depth)
        self.eta = DenseBlock(channels, channels, growth, depth)

    def log_scale(self, y1: torch.Tensor) -> torch.Tensor:
        """The clamped log-scale ``s(y1)`` (float32), shape of ``y1``."""
        return _bounded(self.rho(y1), self.clamp)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y1 = _shift(x1, self.phi(x2))
        return y1, _affine(x2, self.log_scale(y1), self.eta(y1))

    def inverse(self, y1: torch.Tensor, y2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x2 = _unaffine(y2, self.log_scale(y1), self.eta(y1))
        return _shift(y1, self.phi(x2), -1.0), x2

    def extra_repr(self) -> str:
        return f"clamp={self.clamp}"


# The coupling's arithmetic, in float32 with autocast off (the sub-nets' outputs arrive as float32).
@fp32
def _shift(x: torch.Tensor, t: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
    return x + sign * t


@fp32
def _bounded(r: torch.Tensor, clamp: float) -> torch.Tensor:
    return clamp * (2.0 * torch.sigmoid(r) - 1.0)


@fp32
def _affine(x: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return x * torch.exp(s) + t


@fp32
def _unaffine(y: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (y - t) * torch.exp(-s)


@register
class HiNet(StegNet):
    """Invertible hiding network: Haar DWT, ``blocks`` coupling blocks, inverse DWT.

    Args:
        channels: image channels (3 RGB, 1 grayscale); each branch has 4 * channels.
        blocks: invertible blocks (16 in the paper; the CPU preset uses fewer).
        growth: filters per dense-block layer (32 in the paper).
        depth: conv layers per dense block (5 in the paper).
        clamp: bound of the log-scale (2.0 in the paper).
        z: what reveal puts in place of the lost information in training:
            ``"gaussian"`` (N(0, I), as in the paper) or ``"zeros"``. In eval
            mode reveal always uses zeros (deterministic, tileable).
        lowfreq_weight: weight of the low-frequency loss term ``lowfreq`` (MSE
            between the Haar LL bands of stego and cover), see :meth:`extra_losses`.
        noise_std: Gaussian noise on the stego image before reveal, training only.

    Shapes: ``hide``: (B, C, H, W) x2 -> (B, C, H, W); ``reveal``: (B, C, H, W) ->
    (B, C, H, W); H, W even. Receptive radius (pixels): :meth:`receptive_radius`.
    Under bf16 autocast only the dense blocks' convolutions run in bf16 (see the module).
    """

    name = "hinet"
    size_multiple = 2
    Z_MODES = ("gaussian", "zeros")

    def __init__(
        self,
        channels: int = 3,
        blocks: int = 4,
        growth: int = 16,
        depth: int = 5,
        clamp: float = 2.0,
        z: str = "gaussian",
        lowfreq_weight: float = 0.25,
        noise_std: float = 0.0,
    ):
        if z not in self.Z_MODES:
            raise ValueError(f"z must be one of {', '.join(self.Z_MODES)}, got {z!r}")
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {blocks}")
        if lowfreq_weight < 0:
            raise ValueError(f"lowfreq_weight must be >= 0, got {lowfreq_weight}")
        # No prep/hide/reveal sub-nets: one invertible stack serves both directions.
        super().__init__(noise_std=noise_std)
        self.blocks = nn.ModuleList(InvertibleBlock(4 * channels, growth, depth, clamp) for _ in range(blocks))
        self.channels = channels
        self.depth = depth
        self.z = z
        self.extra_loss_weights = {"lowfreq": float(lowfreq_weight)}

    @classmethod
    def tiny(cls) -> dict:
        return {"blocks": 2, "growth": 4, "depth": 2}

    # -- the two directions in the wavelet domain ----------------------------
    def couple(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All blocks forward: (cover, secret) wavelets -> (stego wavelets, lost information r)."""
        for block in self.blocks:
            x1, x2 = block(x1, x2)
        return x1, x2

    def uncouple(self, y1: torch.Tensor, y2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All blocks backward: (stego wavelets, z) -> (cover wavelets, secret wavelets)."""
        for block in reversed(self.blocks):
            y1, y2 = block.inverse(y1, y2)
        return y1, y2

    # -- StegNet API ------------------------------------------------------------
    def hide_with_lost(self, cover: torch.Tensor, secret: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(stego (B, C, H, W), lost information r (B, 4C, H/2, W/2))."""
        y1, r = self.couple(haar_dwt(cover), haar_dwt(secret))
        return haar_idwt(y1), r

    def hide(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        self._no_key(key)
        return self.hide_with_lost(cover, secret)[0]

    def reveal_with(self, stego: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Revealed secret given the stand-in ``z`` (B, 4C, H/2, W/2) for the lost information."""
        return haar_idwt(self.uncouple(haar_dwt(stego), z)[1])

    def reveal(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        self._no_key(key)
        b, c, h, w = stego.shape
        shape = (b, 4 * c, h // 2, w // 2)
        if self.training and self.z == "gaussian":
            z = torch.randn(shape, device=stego.device, dtype=stego.dtype)
        else:
            z = torch.zeros(shape, device=stego.device, dtype=stego.dtype)
        return self.reveal_with(stego, z)

    def extra_losses(
        self, cover: torch.Tensor, secret: torch.Tensor, stego: torch.Tensor, revealed: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``lowfreq``: MSE between the Haar LL bands of stego and cover (scalar).

        Keeps the embedding out of the low frequencies, where it would show.
        Weighted by ``extra_loss_weights["lowfreq"]``.
        """
        c = cover.shape[1]
        return {"lowfreq": F.mse_loss(haar_dwt(stego)[:, :c], haar_dwt(cover)[:, :c])}

    def receptive_radius(self) -> int:
        """How far (full-resolution pixels) an output pixel of hide or reveal can see.

        Each dense block reaches ``depth * 1`` wavelet pixels (3x3 kernels); a
        coupling block chains two of them (phi, then rho/eta on its result),
        but the first block's x1 output and the stego output need only one, so
        ``N`` blocks reach ``depth * (2N - 1)`` wavelet pixels either way; a
        wavelet pixel spans 2 image pixels, plus 1 for the 2x2 alignment:
        ``2 * depth * (2 * blocks - 1) + 1``.
        """
        return 2 * self.depth * (2 * len(self.blocks) - 1) + 1

