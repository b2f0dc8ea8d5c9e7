"""Image losses: weighted sums of MSE, SSIM, PSNR, colour-histogram and Charbonnier terms.

The training objective is ``L(stego, cover) + beta * L(revealed, secret)``; each
``L`` is an :class:`ImageLoss`. Every term is real and differentiable:

- ``mse``: mean squared error.
- ``ssim``: ``1 - SSIM`` (kornia's Gaussian-window SSIM, 11x11).
- ``psnr``: ``-PSNR`` in dB over the batch, ``10 log10(MSE + q^2)`` with the floor
  ``q^2`` = :data:`ROUNDING_POWER` (one 8-bit level's rounding noise), so that it is
  finite where the images are equal (kornia's ``psnr_loss`` is -inf there, with a NaN
  gradient); a scale-free MSE that keeps pushing when the MSE is already small.
- ``hist``: the 1-D Wasserstein (earth mover's) distance between the two images'
  colour histograms, per image and channel. The histograms are kernel-density
  estimates (``kornia.enhance.histogram``), so the term has a gradient. Its unit
  is the pixel-value range: 0.01 means the distributions are 2.55 levels apart.
- ``charbonnier``: ``mean(sqrt((pred - target)^2 + eps^2))`` with ``eps`` =
  :data:`CHARBONNIER_EPS` (a smooth L1: its gradient does not vanish as the error
  shrinks, unlike MSE's).

Every term is computed in float32 with autocast off (:func:`steg.precision.fp32`),
whatever the training precision and whatever kornia's version does itself.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from steg.precision import fp32

__all__ = ["ImageLoss", "histogram_distance", "charbonnier", "TERMS", "CHARBONNIER_EPS"]

TERMS = ("mse", "ssim", "psnr", "hist", "charbonnier")
#: One 8-bit level's rounding-noise power in [0, 1] units, the floor of the ``psnr`` term's MSE.
ROUNDING_POWER = 1.0 / (12.0 * 255.0**2)
#: The Charbonnier term's smoothing constant (in pixel-value units: 1e-3 = 0.255 levels).
CHARBONNIER_EPS = 1e-3


@fp32
def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps^2))``: (B, C, H, W) x2 -> a scalar (float32).

    >>> round(float(charbonnier(torch.zeros(1, 1, 1, 2), torch.tensor([[[[0.0, 0.1]]]]))), 5)  # (1e-3 + 0.100005) / 2
    0.0505
    """
    return torch.sqrt((pred - target).square() + eps * eps).mean()


@fp32
def histogram_distance(pred: torch.Tensor, target: torch.Tensor, bins: int = 64) -> torch.Tensor:
    """Differentiable colour-histogram distance between two image batches.

    Args:
        pred, target: (B, C, H, W) in [0, 1].
        bins: histogram bins over [0, 1].

    Returns:
        Scalar: mean over images and channels of the 1-D Wasserstein distance
        between the kernel-density histograms (sum of |CDF difference| / bins).
    """
    b, c = pred.shape[:2]
    centers = torch.linspace(0.0, 1.0, bins, device=pred.device, dtype=pred.dtype)
    bandwidth = torch.tensor(0.5 / (bins - 1), device=pred.device, dtype=pred.dtype)
    hist_pred = kornia.enhance.histogram(pred.reshape(b * c, -1), centers, bandwidth)
    hist_target = kornia.enhance.histogram(target.reshape(b * c, -1), centers, bandwidth)
    cdf_gap = torch.cumsum(hist_pred - hist_target, dim=-1)
    return cdf_gap.abs().sum(dim=-1).mean() / bins


class ImageLoss(nn.Module):
    """Weighted sum of the MSE, SSIM, PSNR, histogram and Charbonnier terms.

    ``forward(pred, target, all_terms=False)`` takes (B, C, H, W) tensors in
    [0, 1] and returns a dict: each term's value under its name (``mse``,
    ``ssim``, ``psnr``, ``hist``, ``charbonnier``) and the weighted sum under ``loss``. Terms with
    weight 0 are left out, or with ``all_terms=True`` computed without gradient
    so that they can be logged (validation does this; the KDE histogram costs as
    much as a small net, so training skips it unless it is weighted).
    Inputs of any floating dtype are compared in float32 with autocast off; the
    terms come out as float32.
    """

    def __init__(
        self,
        mse: float = 1.0,
        ssim: float = 0.0,
        psnr: float = 0.0,
        hist: float = 0.0,
        charbonnier: float = 0.0,
        hist_bins: int = 64,
        ssim_window: int = 11,
    ):
        super().__init__()
        self.weights = {"mse": float(mse), "ssim": float(ssim), "psnr": float(psnr), "hist": float(hist),
                        "charbonnier": float(charbonnier)}
        if all(w == 0 for w in self.weights.values()):
            raise ValueError("loss: at least one of mse, ssim, psnr, hist, charbonnier must have a non-zero weight")
        self.hist_bins = hist_bins
        self.ssim_window = ssim_window

    @property
    def config(self) -> dict[str, float | int]:
        """The constructor arguments that rebuild this loss: ``ImageLoss(**loss.config)``."""
        return {**self.weights, "hist_bins": self.hist_bins, "ssim_window": self.ssim_window}

    def _term(self, name: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if name == "mse":
            return F.mse_loss(pred, target)
        if name == "ssim":
            return 1.0 - kornia.metrics.ssim(pred, target, self.ssim_window, max_val=1.0).mean()
        if name == "psnr":
            # -PSNR = 10 log10(MSE + q^2): floored at one 8-bit level's rounding-noise power q^2 = 1 / (12 * 255^2).
            # kornia's psnr_loss has no floor: where pred == target (a residual net's stego at step 0) it is
            # -inf with a NaN gradient, and a run with loss=logmse was NaN from its 4th step.
            return 10.0 * torch.log10(F.mse_loss(pred, target) + ROUNDING_POWER)
        if name == "charbonnier":
            return charbonnier(pred, target)
        return histogram_distance(pred, target, self.hist_bins)

    @fp32
    def forward(self, pred: torch.Tensor, target: torch.Tensor, all_terms: bool = False) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        total = pred.new_zeros(())
        for name, weight in self.weights.items():
            if weight == 0:
                if not all_terms:
                    continue
                with torch.no_grad():
                    terms[name] = self._term(name, pred, target)
            else:
                terms[name] = self._term(name, pred, target)
                total = total + weight * terms[name]
        terms["loss"] = total
        return terms

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.weights.items())
