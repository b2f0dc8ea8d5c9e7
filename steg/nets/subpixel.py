"""The subpixel-convolution autoencoder of the DIV2K seed (``model=subpixel``, ``model=subpixel_full``)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from steg.nets.base import PrepHideReveal
from steg.nets.layers import Branches, head
from steg.nets.registry import register

__all__ = ["Subpixel", "SubpixelUNet"]


class SubpixelUNet(nn.Module):
    """Encoder-decoder of multi-kernel blocks with subpixel upsampling.

    Level ``l`` works at 1/2**l resolution with a :class:`Branches` block of
    ``widths[l]`` filters per kernel. Going down: a stride-2 3x3 conv. Going up:
    a 3x3 conv to 4x the channels and ``PixelShuffle(2)``, then the result is
    concatenated with the encoder's feature map of that level.
    Shapes: (B, in_ch, H, W) -> (B, out_ch, H, W), H and W multiples of 2**(L-1).
    """

    def __init__(self, in_ch: int, out_ch: int, widths: Sequence[int]):
        super().__init__()
        chans = [3 * int(w) for w in widths]
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        for level, w in enumerate(widths):
            if level > 0:
                self.downs.append(
                    nn.Sequential(nn.Conv2d(chans[level - 1], chans[level - 1], 3, stride=2, padding=1),
                                  nn.ReLU(inplace=True))
                )
            self.encoders.append(Branches(in_ch if level == 0 else chans[level - 1], int(w)))
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(len(widths) - 1, 0, -1):
            self.ups.append(
                nn.Sequential(nn.Conv2d(chans[level], 4 * chans[level - 1], 3, padding=1),
                              nn.PixelShuffle(2), nn.ReLU(inplace=True))
            )
            self.decoders.append(Branches(2 * chans[level - 1], int(widths[level - 1])))
        self.head = head(chans[0], out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = self.downs[level - 1](x)
            x = encoder(x)
            skips.append(x)
        skips.pop()
        for up, decoder in zip(self.ups, self.decoders):
            x = decoder(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


@register
class Subpixel(PrepHideReveal):
    """Two prep blocks on the secret, a :class:`SubpixelUNet` hide net and reveal net.

    Prep: parallel 3x3/4x4/5x5 branches of ``prep_width`` filters, twice.
    ``widths`` gives the filters per branch at each level: the default is the
    small CPU preset (``conf/model/subpixel.yaml``); ``subpixel_full.yaml`` has
    the seed's full widths for GPUs. Image sides: multiples of 2**(levels-1).
    Under ``bf16-mixed`` autocast the prep, hide and reveal nets run in bf16 (a
    residual, if any, is added to the cover in float32: :class:`PrepHideReveal`).
    """

    name = "subpixel"

    def __init__(self, channels: int = 3, prep_width: int = 8, widths: Sequence[int] = (8, 16, 32),
                 noise_std: float = 0.0, residual: bool = False):
        widths = [int(w) for w in widths]
        prep = nn.Sequential(Branches(channels, prep_width), Branches(3 * prep_width, prep_width))
        super().__init__(
            prep_net=prep,
            hide_net=SubpixelUNet(channels + 3 * prep_width, channels, widths),
            reveal_net=SubpixelUNet(channels, channels, widths),
            noise_std=noise_std,
            residual=residual,
        )
        self.size_multiple = 2 ** (len(widths) - 1)
        self.channels, self.widths, self.prep_width = channels, widths, prep_width

    def receptive_radius(self) -> int:
        # Interval bound through SubpixelUNet: the encoder reaches e_0 = 2 and
        # e_l = e_(l-1) + 2**(l-1) (stride-2 conv) + 2 * 2**l (block); each way up
        # adds 2**l (3x3 conv before PixelShuffle) + 2**(l-1) (pixel-shuffle
        # rounding) + 2 * 2**(l-1) (block): 5 * 2**levels - 8 in all, + 4 for the
        # two prep blocks on the secret.
        return 5 * 2 ** len(self.widths) - 8 + 2 * 2

    def feature_channels(self) -> float:
        prep = 3 * self.prep_width
        # hide input; each level's decoder input (upsampled + skip) is 2 * 3 * width
        return max([self.channels + prep, prep] + [6 * w / 4**level for level, w in enumerate(self.widths)])

    @classmethod
    def tiny(cls) -> dict:
        return {"prep_width": 4, "widths": [4, 8]}
