"""Running a fully convolutional net on images of any size in bounded memory: overlapping tiles.

An image is reflect-padded to the net's ``size_multiple``; if it is larger than one tile it
is cut into tiles whose origins lie on multiples of ``size_multiple``, each tile extended by
a margin wider than the net's ``receptive_radius()``; only each tile's centre is kept, so
the result equals the untiled one up to float rounding. :class:`steg.inference.model.StegModel`
runs every hide and reveal through :func:`run_tiled`.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from steg.nets import StegNet

__all__ = [
    "ACTIVATION_BUDGET",
    "BYTES_PER_PIXEL_CHANNEL",
    "MIN_AUTO_TILE",
    "round_up",
    "default_margin",
    "auto_tile",
    "spans",
    "pad_bottom_right",
    "run_tiled",
]

#: Memory (bytes) the net's activations may take for one tile when tiles are sized automatically.
ACTIVATION_BUDGET = 768 * 2**20
#: Measured peak activation memory of one forward pass, in bytes per pixel per channel of
#: the widest full-resolution feature map (``StegNet.feature_channels``; 20-26 for the
#: built-in nets, rounded up).
BYTES_PER_PIXEL_CHANNEL = 28
#: Smallest automatic tile side.
MIN_AUTO_TILE = 64

#: A tile's window in the padded image: (y0, y1, x0, x1), margins included.
Window = tuple[int, int, int, int]


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-value // multiple) * multiple


def default_margin(net: StegNet) -> int:
    """Overlap margin for tiling: the net's receptive radius (64 if unknown) plus alignment slack,
    a multiple of ``size_multiple``."""
    m = int(net.size_multiple)
    radius = net.receptive_radius()
    if radius is None:
        radius = 64
    return max(round_up(radius + m, m), m)


def auto_tile(net: StegNet, budget: int = ACTIVATION_BUDGET, margin: int | None = None) -> int:
    """Core tile side such that a tile with its margins needs about ``budget`` bytes of activations."""
    m = int(net.size_multiple)
    margin = default_margin(net) if margin is None else margin
    pixels = budget / (BYTES_PER_PIXEL_CHANNEL * net.feature_channels())
    side = int(math.sqrt(pixels)) - 2 * margin
    return max(round_up(MIN_AUTO_TILE, m), side // m * m)


def spans(length: int, tile: int, multiple: int) -> list[tuple[int, int]]:
    """Split [0, length) into near-equal spans of at most ``tile``, starts on multiples of ``multiple``."""
    count = max(1, math.ceil(length / tile))
    core = max(multiple, round_up(math.ceil(length / count), multiple))
    return [(start, min(start + core, length)) for start in range(0, length, core)]


def pad_bottom_right(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Pad the bottom and right of (B, C, H, W): reflect where possible, replicate for tiny images."""
    if pad_h == 0 and pad_w == 0:
        return x
    h, w = x.shape[-2:]
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def run_tiled(
    run: Callable[[list[torch.Tensor], Window], torch.Tensor],
    inputs: Sequence[torch.Tensor],
    multiple: int,
    tile: int | None,
    margin: int,
) -> torch.Tensor:
    """``run`` over (1, C, H, W) CPU inputs of equal size, padded to ``multiple``, in tiles.

    ``run(parts, window)`` gets the inputs cut to ``window`` (margins included) and returns
    a float32 CPU result of the same height and width. ``tile`` (a multiple of ``multiple``)
    is the core side of one tile; None: one piece. Images whose padded size has at most
    (tile + 2 * margin)**2 pixels run in one piece. Returns (1, C', H, W).
    """
    h, w = inputs[0].shape[-2:]
    hp, wp = round_up(h, multiple), round_up(w, multiple)
    pad_h, pad_w = hp - h, wp - w
    padded = [pad_bottom_right(x, pad_h, pad_w) for x in inputs]
    if not tile or hp * wp <= (tile + 2 * margin) ** 2:
        out = run(list(padded), (0, hp, 0, wp))
    else:
        out = None
        for y0, y1 in spans(hp, tile, multiple):
            ey0, ey1 = max(0, y0 - margin), min(hp, y1 + margin)
            for x0, x1 in spans(wp, tile, multiple):
                ex0, ex1 = max(0, x0 - margin), min(wp, x1 + margin)
                res = run([x[..., ey0:ey1, ex0:ex1] for x in padded], (ey0, ey1, ex0, ex1))
                if out is None:
                    out = torch.empty((res.shape[0], res.shape[1], hp, wp), dtype=torch.float32)
                out[..., y0:y1, x0:x1] = res[..., y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0]
        assert out is not None
    if pad_h or pad_w:
        out = out[..., :h, :w].contiguous()
    return out
