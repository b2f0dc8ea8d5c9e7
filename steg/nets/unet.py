"""This project's fast residual design on PixelUnshuffle U-Nets (``model=unet``)."""

from __future__ import annotations

from torch import nn

from steg.nets.base import PrepHideReveal
from steg.nets.layers import UnshuffleBody, zero_init
from steg.nets.registry import register

__all__ = ["UnshuffleUNet"]


@register
class UnshuffleUNet(PrepHideReveal):
    """Residual hide net and reveal net built on :class:`UnshuffleBody`.

    The hide net sees cover and secret (no separate prep stage: the secret's
    pixels are rearranged into channels by the body's first PixelUnshuffle) and
    adds a residual to the cover. The residual's last layer starts at zero, so
    training starts from stego = cover and learns how much to change it. Under
    ``bf16-mixed`` autocast both U-Nets run in bf16; the residual is added to the
    cover in float32 (:class:`PrepHideReveal`).
    """

    name = "unet"
    size_multiple = 4

    def __init__(self, channels: int = 3, width: int = 48, depth: int = 2, noise_std: float = 0.0):
        hide_body = UnshuffleBody(2 * channels, channels, width, depth)
        zero_init(hide_body.head[0])
        super().__init__(
            prep_net=nn.Identity(),
            hide_net=hide_body,
            reveal_net=UnshuffleBody(channels, channels, width, depth),
            noise_std=noise_std,
            residual=True,
        )
        self.depth = depth

    def receptive_radius(self) -> int:
        return UnshuffleBody.radius(self.depth)

    @classmethod
    def tiny(cls) -> dict:
        return {"width": 8, "depth": 1}
