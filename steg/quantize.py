"""8-bit quantization: what a saved PNG holds (no torchmetrics, so ``steg hide`` stays light).

:mod:`steg.metrics` re-exports these; every figure steg reports is taken on
``quantize(stego)``, and the reveal net is fed that same image.
"""

from __future__ import annotations

import torch

__all__ = ["quantize", "quantize_ste"]


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the nearest of 256 levels (an 8-bit image), computed in fp32.

    Under bf16/fp16 autocast a half-precision ``x`` cannot hold most of the 256
    levels, so the rounding is done in float32 and the result returned as float32.
    Shape: any -> the same.

    >>> quantize(torch.tensor([-0.1, 0.5, 1.2])).mul(255).tolist()
    [0.0, 128.0, 255.0]
    """
    x = x.float()
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


def quantize_ste(x: torch.Tensor) -> torch.Tensor:
    """:func:`quantize` in the forward pass, the identity in the backward pass.

    Lets the training graph see the 8-bit image the user will save while the
    gradient still reaches the hide net (straight-through estimator). Computed in
    float32 like :func:`quantize` (the gradient flows back to ``x``'s own dtype).
    """
    x = x.float()
    return x + (quantize(x) - x).detach()
