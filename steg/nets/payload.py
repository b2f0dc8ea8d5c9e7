"""A smaller payload: hide a lower-resolution (and optionally grayscale) version of the secret.

Hiding a full-resolution colour image asks for 24 bits per cover pixel, which
makes the stego image easy to detect and fragile: any distortion of the stego
image lands in the revealed secret. :class:`Payload` wraps any architecture and
hands it a reduced secret instead:

- ``factor`` f > 1: the secret averaged over f x f blocks and enlarged back
  (bilinear), i.e. 1/f**2 of the information;
- ``grayscale``: the secret's luma (ITU-R 601, kornia) in every channel.

``reveal`` projects the inner net's output onto the same reduced images, which
removes whatever error the inner net (or a distortion of the stego image) put
into the frequencies and colours that the payload does not carry: the revealed
image loses detail, and gains robustness. Figures are always measured against
the full secret, so the detail lost is in them.

Config (``conf/model/payload.yaml``): ``net`` is the inner architecture as an
``arch_config`` without ``channels`` (``{name: unet, width: 48, ...}``; a ``target``
import path for one's own class), so the model file rebuilds both without Hydra.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import kornia
import torch
import torch.nn.functional as F

from steg.nets.base import StegNet, plain
from steg.nets.registry import build_net, register
from steg.precision import fp32

__all__ = ["Payload", "reduce_secret"]


@fp32
def reduce_secret(secret: torch.Tensor, factor: int = 1, grayscale: bool = False) -> torch.Tensor:
    """The reduced payload: ``secret`` (B, C, H, W) at 1/``factor`` resolution and/or in gray, same shape.

    Block means over ``factor`` x ``factor`` (H and W must be multiples), enlarged
    back with bilinear interpolation; gray is the luma copied into each of 3 channels.
    A projection that reveal applies to the inner net's output: float32, autocast off.
    """
    if grayscale and secret.shape[1] == 3:
        secret = kornia.color.rgb_to_grayscale(secret).expand_as(secret)
    if factor > 1:
        small = F.avg_pool2d(secret, factor)
        secret = F.interpolate(small, scale_factor=factor, mode="bilinear", align_corners=False)
    return secret


@register
class Payload(StegNet):
    """Any architecture ``net``, hiding the secret reduced by ``factor`` and/or to ``grayscale``.

    Shapes: ``hide`` (B, C, H, W) x2 -> (B, C, H, W); ``reveal`` (B, C, H, W) ->
    (B, C, H, W); H, W multiples of :attr:`size_multiple` (the inner net's and ``factor``).
    Under bf16 autocast the inner net runs as its own docstring says; the reduction
    of the secret (:func:`reduce_secret`) runs in float32.
    """

    name = "payload"

    def __init__(self, net: Mapping[str, Any], channels: int = 3, factor: int = 2, grayscale: bool = False,
                 noise_std: float = 0.0):
        super().__init__(noise_std)
        if not isinstance(factor, int) or factor < 1:
            raise ValueError(f"model.factor must be a whole number >= 1 (the payload's resolution divisor), got {factor!r}")
        net = plain(net)
        if not isinstance(net, dict) or not (net.get("name") or net.get("target")):
            raise ValueError(f"model.net must name the inner architecture, e.g. {{name: unet}}, got {net!r}")
        if net.get("name") == self.name:
            raise ValueError("model.net cannot be another payload wrapper")
        self.net = build_net(**{**net, "channels": channels})
        self.factor = factor
        self.grayscale = grayscale
        inner = self.net.size_multiple
        self.size_multiple = inner * factor // math.gcd(inner, factor)

    def reduce(self, secret: torch.Tensor) -> torch.Tensor:
        """:func:`reduce_secret` with this model's settings."""
        return reduce_secret(secret, self.factor, self.grayscale)

    def hide(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        self._no_key(key)
        return self.net.hide(cover, self.reduce(secret))

    def reveal(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        self._no_key(key)
        return self.reduce(self.net.reveal(stego))

    # -- what the rest of steg asks: the inner net's answers, widened by the pooling --------
    def receptive_radius(self) -> int | None:
        # bilinear enlargement of f x f block means: a pixel reads the pixels of the two nearest
        # blocks per axis, up to (3f - 2) // 2 away (0 for f = 1, 2 for f = 2, 3 for f = 3)
        inner = self.net.receptive_radius()
        own = (3 * self.factor - 2) // 2
        return None if inner is None else inner + own

    def feature_channels(self) -> float:
        return self.net.feature_channels()

    @property
    def extra_loss_weights(self) -> dict[str, float]:  # type: ignore[override]
        return self.net.extra_loss_weights

    def extra_losses(self, cover, secret, stego, revealed) -> dict[str, torch.Tensor]:
        return self.net.extra_losses(cover, secret, stego, revealed)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        from steg.nets.unet import UnshuffleUNet

        return {"net": {"name": "unet", **UnshuffleUNet.tiny()}, "factor": 2}
