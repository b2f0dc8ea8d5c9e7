"""8-bit quantization: what a saved PNG holds (no torchmetrics, so ``steg hide`` stays light).

:mod:`steg.metrics` re-exports these; every figure steg reports is taken on
``quantize(stego)``, and the reveal net is fed that same image.
"""

from __future__ import annotations

import torch

__all__ = ["quantize", "quantize_ste", "uniform_noise", "round_channel", "ROUNDING_MODES", "check_rounding"]

#: What the reveal net sees of the stego image in training (:func:`round_channel`).
ROUNDING_MODES = ("ste", "noise", "both", "none")


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


def uniform_noise(x: torch.Tensor) -> torch.Tensor:
    """``x`` plus uniform noise of one 8-bit level, U(-0.5, 0.5) / 255, clamped to [0, 1], in fp32.

    The additive-noise model of 8-bit rounding (same variance, 1/12 level^2, but
    independent of ``x`` and with a true gradient of 1 inside [0, 1]). Shape: any -> the same.

    >>> y = uniform_noise(torch.full((1000,), 0.5))
    >>> bool((y - 0.5).abs().max() <= 0.5 / 255), bool((y * 255 - 127.5).abs().max() > 0)
    (True, True)
    """
    x = x.float()
    return (x + (torch.rand_like(x) - 0.5) / 255.0).clamp(0.0, 1.0)


def check_rounding(mode: object) -> str:
    """``mode`` if it is one of :data:`ROUNDING_MODES`, else one line naming the setting."""
    if mode not in ROUNDING_MODES:
        raise ValueError(f"module.rounding must be one of {', '.join(ROUNDING_MODES)}, got {mode!r}")
    return str(mode)


def round_channel(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The stego image as the reveal net sees it in training, by rounding ``mode``: (B, C, H, W) -> the same.

    - ``ste``: :func:`quantize_ste` (the 8-bit image, straight-through gradient);
    - ``noise``: :func:`uniform_noise` (float stego + one level of uniform noise, clamped);
    - ``both``: the first half of the batch (rounded up) ``ste``, the rest ``noise``;
    - ``none``: ``x`` itself (the float stego, never rounded).

    >>> x = torch.tensor([0.20, 0.71]).view(2, 1, 1, 1)
    >>> (round_channel(x, "ste") * 255).flatten().tolist(), round_channel(x, "none").equal(x)
    ([51.0, 181.0], True)
    """
    mode = check_rounding(mode)
    if mode == "ste":
        return quantize_ste(x)
    if mode == "noise":
        return uniform_noise(x)
    if mode == "both":
        half = (x.shape[0] + 1) // 2
        return torch.cat([quantize_ste(x[:half]), uniform_noise(x[half:])])
    return x
