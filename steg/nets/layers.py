"""Building blocks shared by the architectures: same-size convs, parallel branches, noise, U-Net bodies."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["SameConv", "Branches", "GaussianNoise", "UnshuffleBody", "head", "zero_init"]


class SameConv(nn.Sequential):
    """Stride-1 convolution whose output has the input's size, for any kernel.

    Even kernels are padded the way TensorFlow's ``padding='same'`` does it (the
    extra row and column go to the bottom and right), so a 4x4 kernel needs no
    cropping and matches the seeds. Shapes: (B, in_ch, H, W) -> (B, out_ch, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, relu: bool = True):
        total = kernel - 1
        before, after = total // 2, total - total // 2
        layers: list[nn.Module] = [
            nn.ZeroPad2d((before, after, before, after)),
            nn.Conv2d(in_ch, out_ch, kernel),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Branches(nn.Module):
    """Parallel branches of same-padded convs with different kernels, concatenated.

    Branch ``k`` is ``depth`` conv+ReLU layers of kernel ``kernels[k]`` and
    ``widths[k]`` filters. Shapes: (B, in_ch, H, W) -> (B, sum(widths), H, W).
    """

    def __init__(self, in_ch: int, widths: Sequence[int] | int, depth: int = 1,
                 kernels: Sequence[int] = (3, 4, 5)):
        super().__init__()
        if isinstance(widths, int):
            widths = [widths] * len(kernels)
        if len(widths) != len(kernels):
            raise ValueError(f"widths {list(widths)} must give one width per kernel {list(kernels)}")
        self.branches = nn.ModuleList()
        for width, kernel in zip(widths, kernels):
            layers = [SameConv(in_ch if i == 0 else width, width, kernel) for i in range(depth)]
            self.branches.append(nn.Sequential(*layers))
        self.out_channels = int(sum(widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Every branch reads the same input x (one of the seeds fed branch 2 the
        # output of branch 1 by mistake).
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise in training mode; the identity in eval mode. Shape: any -> the same."""

    def __init__(self, std: float = 0.0):
        super().__init__()
        if std < 0:
            raise ValueError(f"noise_std must be >= 0, got {std}")
        self.std = float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.std > 0:
            return x + torch.randn_like(x) * self.std
        return x

    def extra_repr(self) -> str:
        return f"std={self.std}"


def head(in_ch: int, out_ch: int) -> nn.Conv2d:
    """Linear 1x1 output layer."""
    return nn.Conv2d(in_ch, out_ch, 1)


def zero_init(layer: nn.Module) -> nn.Module:
    """Zero a layer's weight and bias (a residual branch that starts as the identity)."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class UnshuffleBody(nn.Module):
    """Two-level U-Net on space-to-depth features, back to full resolution.

    (B, in_ch, H, W) -> PixelUnshuffle(2) -> ``depth`` 3x3 convs of ``width`` at H/2
    -> PixelUnshuffle(2) -> ``depth`` convs of 2*width at H/4 -> PixelShuffle(2),
    concatenated with the H/2 features -> ``depth`` convs -> 1x1 to 4*out_ch ->
    PixelShuffle(2) -> (B, out_ch, H, W). H and W must be multiples of 4.
    Receptive radius: ``8 * depth + 3`` (:meth:`radius`).
    """

    def __init__(self, in_ch: int, out_ch: int, width: int = 48, depth: int = 2):
        super().__init__()

        def convs(c_in: int, c_out: int) -> nn.Sequential:
            layers: list[nn.Module] = []
            for i in range(depth):
                layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            return nn.Sequential(*layers)

        self.depth = depth
        self.enc_half = nn.Sequential(nn.PixelUnshuffle(2), convs(4 * in_ch, width))
        self.enc_quarter = nn.Sequential(nn.PixelUnshuffle(2), convs(4 * width, 2 * width))
        self.up = nn.Sequential(nn.Conv2d(2 * width, 4 * width, 1), nn.PixelShuffle(2))
        self.dec_half = convs(2 * width, width)
        self.head = nn.Sequential(nn.Conv2d(width, 4 * out_ch, 1), nn.PixelShuffle(2))

    @staticmethod
    def radius(depth: int) -> int:
        # depth 3x3 convs at 1/2 (2 px each), at 1/4 (4 px each) and at 1/2 again,
        # plus 3 px of 4x4-block alignment (measured in tests/test_inference.py).
        return 8 * depth + 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.enc_half(x)
        quarter = self.enc_quarter(half)
        return self.head(self.dec_half(torch.cat([self.up(quarter), half], dim=1)))
