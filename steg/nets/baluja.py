"""Baluja 2017, "Hiding Images in Plain Sight", as in harveyslash/Deep-Steganography (``model=baluja``)."""

from __future__ import annotations

from torch import nn

from steg.nets.base import PrepHideReveal
from steg.nets.layers import Branches, head
from steg.nets.registry import register

__all__ = ["Baluja"]


@register
class Baluja(PrepHideReveal):
    """Baluja 2017 prep/hide/reveal nets.

    Prep, hide and reveal nets each have three parallel branches (3x3, 4x4, 5x5)
    of ``depth`` conv layers with ``filters`` filters, concatenated, a mixing
    layer of the same three kernels, and (hide, reveal) a linear 1x1 output.

    Args:
        channels: image channels (3 RGB, 1 grayscale).
        filters: filters per branch (50 in the paper), so 3*filters channels.
        depth: conv layers per branch before the mixing layer (4 in the paper).
        noise_std: std of the Gaussian noise added to the stego image before the
            reveal net, in training only.
        residual: if true the hide net predicts stego - cover (not in the paper).

    Under ``bf16-mixed`` autocast the three nets run in bf16 (a residual, if any, is
    added to the cover in float32: :class:`PrepHideReveal`).
    """

    name = "baluja"

    def __init__(self, channels: int = 3, filters: int = 50, depth: int = 4, noise_std: float = 0.01,
                 residual: bool = False):
        width = 3 * filters

        def trunk(in_ch: int) -> list[nn.Module]:
            return [Branches(in_ch, filters, depth=depth), Branches(width, filters, depth=1)]

        super().__init__(
            prep_net=nn.Sequential(*trunk(channels)),
            hide_net=nn.Sequential(*trunk(channels + width), head(width, channels)),
            reveal_net=nn.Sequential(*trunk(channels), head(width, channels)),
            noise_std=noise_std,
            residual=residual,
        )
        self.channels, self.filters, self.depth = channels, filters, depth

    def receptive_radius(self) -> int:
        # 2 px per layer (kernels up to 5x5); prep trunk + hide trunk, each depth + 1 layers
        return 2 * 2 * (self.depth + 1)

    def feature_channels(self) -> float:
        return self.channels + 3 * self.filters

    @classmethod
    def tiny(cls) -> dict:
        return {"filters": 4, "depth": 2}
