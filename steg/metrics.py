"""Image-quality metrics, measured the way a user sees images (8-bit quantization: :mod:`steg.quantize`).

A user saves the stego image as an 8-bit PNG, so every reported figure is taken
on ``quantize(stego)`` and the reveal net is fed that same quantized image.

Every metric is computed in float32 with autocast off (:func:`steg.precision.fp32`),
whatever the training precision: under bf16 autocast torchmetrics' SSIM convolves
in bfloat16 and read 0.61 for an SSIM of 0.93.
"""

from __future__ import annotations

import math
import statistics

import torch
from torchmetrics import MeanAbsoluteError, Metric, MetricCollection
from torchmetrics.utilities import dim_zero_cat
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from steg.precision import fp32

__all__ = [
    "FP32Collection",
    "PixelError",
    "pair_metrics",
    "METRIC_NAMES",
    "PAIRS",
    "SUMMARY_METRICS",
    "higher_is_better",
    "PSNR_AVERAGE",
    "psnr",
    "psnr_per_image",
    "ssim_per_image",
    "ci95",
    "CI_PREFIX",
    "PSNRInterval",
]

#: Logged beside each validation PSNR: ``val/ci95_psnr_secret`` is the half-width (dB) of the 95%
#: confidence interval of ``val/psnr_secret``'s mean over the validation images (:func:`ci95`).
CI_PREFIX = "ci95_"

#: The torchmetrics class of each per-pair image metric (its ``higher_is_better`` gives the direction).
METRIC_CLASSES = {"psnr": PeakSignalNoiseRatio, "ssim": StructuralSimilarityIndexMeasure, "apd": MeanAbsoluteError}
#: Per-pair image metrics: name -> True where higher is better (torchmetrics' own ``higher_is_better``).
METRIC_NAMES = {name: bool(cls.higher_is_better) for name, cls in METRIC_CLASSES.items()}
#: The image pairs every run measures: stego vs cover, revealed vs secret.
PAIRS = ("stego", "secret")
#: The figures a run reports, in display order: ``psnr_stego``, ``ssim_stego``, ..., ``apd_secret``.
SUMMARY_METRICS = tuple(f"{name}_{pair}" for pair in PAIRS for name in METRIC_NAMES)


def higher_is_better(metric: str) -> bool:
    """Direction of a logged metric, from its name: the one rule for training, sweeps and reports.

    ``[stage/]NAME_PAIR`` of a per-pair metric takes its torchmetrics class's
    ``higher_is_better`` (:data:`METRIC_NAMES`: PSNR and SSIM are maximised, the pixel
    error minimised); everything else (losses, loss terms such as ``val/loss/cover_psnr`` =
    -PSNR) is minimised.

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


class FP32Collection(MetricCollection):
    """A :class:`~torchmetrics.MetricCollection` whose ``update`` and ``forward`` run in fp32, autocast off.

    Inputs of any floating dtype (bf16 under autocast, fp16, fp32) are measured as
    float32, so the figures of a bf16-mixed run are those of an fp32 run on the same images.
    """

    @fp32
    def update(self, *args, **kwargs) -> None:  # type: ignore[override]
        super().update(*args, **kwargs)

    @fp32
    def forward(self, *args, **kwargs):  # type: ignore[override]
        return super().forward(*args, **kwargs)


def pair_metrics(prefix: str, postfix: str) -> MetricCollection:
    """PSNR (dB, mean over images), SSIM and mean absolute pixel error (0-255).

    Names come out as ``{prefix}psnr{postfix}``, e.g. ``val/psnr_stego``.
    All three keep their state as sums or per-image values, so they are exact
    under DDP (torchmetrics synchronises the states). Measured in float32 with
    autocast off (:class:`FP32Collection`).
    """
    return FP32Collection(
        {
            "psnr": PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3)),
            "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
            "apd": PixelError(),
        },
        prefix=prefix,
        postfix=postfix,
    )


#: How every PSNR figure of steg is averaged over images (reports say it beside the figures).
PSNR_AVERAGE = "mean over images of each image's PSNR (dB, data range 1)"


def psnr_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR (dB, data range 1) of each image pair: (B, C, H, W) x2 -> (B,) float32.

    torchmetrics' functional PSNR with ``reduction="none"`` over each image's values,
    computed in fp32; identical images give ``inf``.

    >>> a = torch.zeros(2, 1, 4, 4); b = a.clone(); b[1] += 0.1
    >>> psnr_per_image(b, a)
    tensor([inf, 20.])
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(pred.float(), target.float(), data_range=1.0, reduction="none", dim=(1, 2, 3))


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """The PSNR figure of steg: :func:`psnr_per_image` averaged over the images (:data:`PSNR_AVERAGE`).

    Shapes: (B, C, H, W) x2 -> a float. The same definition as :func:`pair_metrics`' PSNR.
    """
    return float(psnr_per_image(pred, target).mean())


def ssim_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM (data range 1, torchmetrics' defaults) of each image pair: (B, C, H, W) x2 -> (B,) float32."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(pred.float(), target.float(), data_range=1.0, reduction="none")


def ci95(values: Sequence[float]) -> float:
    """Half-width of the 95% confidence interval of the mean of ``values`` (Student's t); NaN under 2 values.

    Two figures whose difference is within it (on the same images) are a tie.

    >>> round(ci95([1.0, 2.0, 3.0]), 3)
    2.484
    """
    values = [float(v) for v in values]
    if len(values) < 2:
        return float("nan")
    from scipy import stats

    return float(stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values)))


class PSNRInterval(Metric):
    """Half-width (dB) of the 95% confidence interval of the mean per-image PSNR (:func:`ci95`).

    Keeps every image's PSNR (synchronised under DDP by concatenation), so the interval is that
    of all the validation images; images identical to their target (infinite PSNR) carry no
    spread and are left out; NaN under two finite values. Logged as ``val/ci95_psnr_*``.
    """

    full_state_update = False
    higher_is_better = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    @fp32
    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        self.values.append(psnr_per_image(preds, target))

    def compute(self) -> torch.Tensor:
        # a list of per-batch tensors on one process; one tensor after a DDP sync ("cat")
        empty = isinstance(self.values, list) and not self.values
        values = torch.zeros(0) if empty else dim_zero_cat(self.values)
        values = values[torch.isfinite(values)].tolist()
        return torch.tensor(ci95(values) if len(values) >= 2 else float("nan"))
