"""The compact Keras-lineage CNN (``model=cnn``)."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from steg.nets.base import PrepHideReveal
from steg.nets.layers import Branches, head
from steg.nets.registry import register

__all__ = ["CNN"]


@register
class CNN(PrepHideReveal):
    """Every layer is parallel 3x3/4x4/5x5 convs with ``widths`` filters (50, 10, 5: 65 channels).

    ``prep_layers`` layers on the secret, ``hide_layers`` on cover plus prep
    features, ``reveal_layers`` on the stego image; hide and reveal end in a
    linear 1x1 output. Under ``bf16-mixed`` autocast all three nets run in bf16 (the
    residual, if any, is added to the cover in float32: :class:`PrepHideReveal`).
    """

    name = "cnn"

    def __init__(self, channels: int = 3, widths: Sequence[int] = (50, 10, 5), prep_layers: int = 2,
                 hide_layers: int = 5, reveal_layers: int = 5, noise_std: float = 0.01, residual: bool = False):
        widths = [int(w) for w in widths]
        width = sum(widths)

        def stack(in_ch: int, n: int) -> list[nn.Module]:
            return [Branches(in_ch if i == 0 else width, widths) for i in range(n)]

        super().__init__(
            prep_net=nn.Sequential(*stack(channels, prep_layers)),
            hide_net=nn.Sequential(*stack(channels + width, hide_layers), head(width, channels)),
            reveal_net=nn.Sequential(*stack(channels, reveal_layers), head(width, channels)),
            noise_std=noise_std,
            residual=residual,
        )
        self.channels, self.width = channels, width
        self.layers = (prep_layers, hide_layers, reveal_layers)

    def receptive_radius(self) -> int:
        prep, hide, reveal = self.layers
        return 2 * max(prep + hide, reveal)  # 2 px per layer

    def feature_channels(self) -> float:
        return self.channels + self.width

    @classmethod
    def tiny(cls) -> dict:
        return {"widths": [4, 2, 2]}
