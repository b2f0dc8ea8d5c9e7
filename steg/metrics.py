"""Image-quality metrics, measured the way a user sees images (8-bit quantization: :mod:`steg.quantize`).

A user saves the stego image as an 8-bit PNG, so every reported figure is taken
on ``quantize(stego)`` and the reveal net is fed that same quantized image.
"""

from __future__ import annotations

import torch
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

__all__ = [
    "PixelError",
    "pair_metrics",
    "METRIC_NAMES",
    "PAIRS",
    "SUMMARY_METRICS",
    "higher_is_better",
]

#: Per-pair image metrics: name -> True where higher is better.
METRIC_NAMES = {"psnr": True, "ssim": True, "apd": False}
#: The image pairs every run measures: stego vs cover, revealed vs secret.
PAIRS = ("stego", "secret")
#: The figures a run reports, in display order: ``psnr_stego``, ``ssim_stego``, ..., ``apd_secret``.
SUMMARY_METRICS = tuple(f"{name}_{pair}" for pair in PAIRS for name in METRIC_NAMES)


def higher_is_better(metric: str) -> bool:
    """Direction of a logged metric, from its name: the one rule for training, sweeps and reports.

    ``[stage/]psnr_*`` and ``[stage/]ssim_*`` are maximised; everything else (losses,
    loss terms such as ``val/loss/cover_psnr`` = -PSNR, ``apd_*``) is minimised.

    >>> higher_is_better("val/psnr_secret"), higher_is_better("val/loss"), higher_is_better("val/cover_psnr")
    (True, False, False)
    """
    name = metric.rsplit("/", 1)[-1]
    head = name.split("_", 1)[0]
    return bool(METRIC_NAMES.get(head, False)) and "_" in name


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
