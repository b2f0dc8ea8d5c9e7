"""Content-adaptive embedding costs: HILL (Li, Wang, Li, Huang 2014), and what +1 / -1 may cost.

HILL is three small filters per channel: a 3x3 high-pass (KB) residual, its
magnitude averaged over 3x3, inverted, then averaged over 15x15. Smooth areas get
high costs (changes there are easy to detect), textured areas low ones.
:func:`hill` follows the authors' definition with scipy.ndimage (symmetric borders).

:func:`ternary_costs` gives the cost of +1 and of -1 per value: the HILL cost,
or infinity where the change would leave [0, 255] (0 cannot go down, 255 cannot
go up). Shapes: an 8-bit cover (H, W, C) uint8 -> (H, W, C) float64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KB", "hill", "ternary_costs", "WET"]

#: The KB high-pass kernel of HILL.
KB = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=np.float64) / 4.0
#: Cost used for a change that is not allowed.
WET = np.inf
_EPS = 1e-10


def hill(cover: np.ndarray) -> np.ndarray:
    """HILL costs of an 8-bit image: (H, W) or (H, W, C) uint8 -> same shape float64, finite and > 0.

    >>> flat = np.full((16, 16), 128, np.uint8); checker = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)
    >>> bool(hill(flat).mean() > hill(checker).mean())
    True
    """
    from scipy import ndimage

    x = np.asarray(cover, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([hill(x[..., c]) for c in range(x.shape[-1])], axis=-1)
    if x.ndim != 2:
        raise ValueError(f"HILL: expected an (H, W) or (H, W, C) image, got shape {x.shape}")
    residual = ndimage.convolve(x, KB, mode="mirror")
    xi = ndimage.uniform_filter(np.abs(residual), size=3, mode="mirror")
    rho = 1.0 / (xi + _EPS)
    rho = ndimage.uniform_filter(rho, size=15, mode="mirror")
    return np.minimum(rho, 1e8)  # flat areas: very expensive but finite (STC needs finite costs)


def ternary_costs(cover: np.ndarray, rho: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(cost of +1, cost of -1) per value of an 8-bit ``cover`` (any shape): HILL, or :data:`WET` off [0, 255]."""
    cover = np.asarray(cover)
    if cover.dtype != np.uint8:
        raise TypeError(f"costs: expected an 8-bit (uint8) cover, got {cover.dtype}")
    base = hill(cover) if rho is None else np.asarray(rho, dtype=np.float64)
    plus = np.where(cover == 255, WET, base)
    minus = np.where(cover == 0, WET, base)
    return plus, minus
