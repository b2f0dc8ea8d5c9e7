"""A worked example of your own architecture (README: "Add your own architecture").

Nothing in ``steg`` names this class: a config's ``_target_`` does, e.g.
``conf/model/mynet.yaml``::

    _target_: examples.mynet.ResidualNet
    channels: ${channels}
    width: 16

and ``tests/test_example_net.py`` trains it, exports it, evaluates it and
hides/reveals with it through the ``steg`` command line.
"""

from __future__ import annotations

import torch
from torch import nn

from steg.nets import StegNet


class ResidualNet(StegNet):
    """stego = cover + a small learned residual of (cover, secret); reveal = a conv stack on the stego image.

    Shapes: (B, C, H, W) in [0, 1], any H and W (no downsampling).
    """

    name = "residualnet"  # shown by `steg eval`; its import path is what model files record

    def __init__(self, channels: int = 3, width: int = 16, noise_std: float = 0.0):
        super().__init__(noise_std)  # the training-only noise between hide and reveal
        self.encode = nn.Sequential(
            nn.Conv2d(2 * channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, channels, 3, padding=1))
        self.decode = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, channels, 3, padding=1))

    def hide(self, cover: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
        return cover + 0.1 * torch.tanh(self.encode(torch.cat([cover, secret], dim=1)))

    def reveal(self, stego: torch.Tensor) -> torch.Tensor:
        return self.decode(stego)

    # Optional: what tiling needs (default: unknown radius -> 64-pixel margins).
    def receptive_radius(self) -> int:
        return 2  # two 3x3 convs on each path

    @classmethod
    def tiny(cls) -> dict:
        return {"width": 4}
