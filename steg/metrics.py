"""Quantization and image-quality metrics, measured the way a user sees images.

A user saves the stego image as an 8-bit PNG, so every reported figure is taken
on ``quantize(stego)`` and the reveal net is fed that same quantized image.
"""

from __future__ import annotations

import torch
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

__all__ = ["quantize", "quantize_ste", "PixelError", "pair_metrics", "METRIC_NAMES"]

METRIC_NAMES = ("psnr", "ssim", "apd")


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the nearest of 256 levels (an 8-bit image)."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


def quantize_ste(x: torch.Tensor) -> torch.Tensor:
    """:func:`quantize` in the forward pass, the identity in the backward pass.

    Lets the training graph see the 8-bit image the user will save while the
    gradient still reaches the hide net (straight-through estimator).
    """
    return x + (quantize(x) - x).detach()


class PixelError(MeanAbsoluteError):
    """Mean absolute pixel error on the 0-255 scale (inputs in [0, 1])."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        super().update(preds * 255.0, target * 255.0)


def pair_metrics(prefix: str, postfix: str) -> MetricCollection:
    """PSNR (dB, mean over images), SSIM and mean absolute pixel error (0-255).

    Names come out as ``{prefix}psnr{postfix}``, e.g. ``val/psnr_stego``.
    All three keep their state as sums or per-image values, so they are exact
    under DDP (torchmetrics synchronises the states).
    """
    return MetricCollection(
        {
            "psnr": PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3)),
            "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
            "apd": PixelError(),
        },
        prefix=prefix,
        postfix=postfix,
    )
