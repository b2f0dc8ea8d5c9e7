"""PNG figures of one training run: image grids, metric curves and pixel-error histograms.

Figures are drawn on ``matplotlib.figure.Figure`` objects (no pyplot state, no
backend switch) and every file goes through :func:`steg.io.write_atomic`. The
figures comparing several runs live in :mod:`steg.report.figures`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from steg.io import save_image, to_pil, write_atomic

__all__ = [
    "GRID_COLUMNS",
    "comparison_grid",
    "save_image_atomic",
    "plot_curves",
    "plot_error_histograms",
    "save_figure",
]

GRID_COLUMNS = ("cover", "secret", "stego", "revealed", "residual")


def save_image_atomic(img: Image.Image, path: str | os.PathLike, **kwargs) -> Path:
    """:func:`steg.io.save_image` under the name the callbacks import."""
    return save_image(img, path, **kwargs)


def comparison_grid(
    cover: torch.Tensor,
    secret: torch.Tensor,
    stego: torch.Tensor,
    revealed: torch.Tensor,
    amplify: float = 10.0,
    max_rows: int = 4,
    tile: int = 128,
) -> Image.Image:
    """One row per pair: cover | secret | stego | revealed | amplified |stego - cover|.

    Inputs are (B, C, H, W) in [0, 1]; the residual column shows
    ``amplify * |stego - cover|``. Tiles are scaled (nearest) so that the shorter
    side is at least ``tile`` pixels, and a header row names the columns.
    """
    n = min(max_rows, cover.shape[0])
    residual = ((stego - cover).abs() * amplify).clamp(0, 1)
    columns = [cover[:n], secret[:n], stego[:n], revealed[:n], residual[:n]]
    h, w = cover.shape[-2:]
    scale = max(1, int(np.ceil(tile / min(h, w))))
    th, tw, pad, header = h * scale, w * scale, 4, 18
    canvas = Image.new("RGB", (len(columns) * (tw + pad) + pad, header + n * (th + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    titles = list(GRID_COLUMNS[:-1]) + [f"|stego-cover| x{amplify:g}"]
    for j, title in enumerate(titles):
        draw.text((pad + j * (tw + pad) + 2, 3), title, fill="black")
    for j, col in enumerate(columns):
        col = F.interpolate(col.detach().float().cpu(), scale_factor=scale, mode="nearest") if scale > 1 else col
        for i in range(n):
            canvas.paste(to_pil(col[i]).convert("RGB"), (pad + j * (tw + pad), header + pad + i * (th + pad)))
    return canvas


def plot_curves(history: Sequence[Mapping[str, float]], path: str | os.PathLike) -> Path:
    """Loss (train and validation) and validation PSNR/SSIM per epoch, as one PNG."""
    epochs = [row["epoch"] for row in history]

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(row["epoch"], row[key]) for row in history if key in row]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig = Figure(figsize=(15, 4))
    axes = fig.subplots(1, 3)
    for key, label in (("train/loss_epoch", "train"), ("val/loss", "validation")):
        x, y = series(key)
        if x:
            axes[0].plot(x, y, marker="o", ms=3, label=label)
    axes[0].set(title="loss", xlabel="epoch", yscale="log")
    for ax, metric, unit in ((axes[1], "psnr", "dB"), (axes[2], "ssim", "")):
        for pair in ("stego", "secret"):
            x, y = series(f"val/{metric}_{pair}")
            if x:
                ax.plot(x, y, marker="o", ms=3, label=f"{pair} (8-bit)")
        ax.set(title=f"validation {metric.upper()}", xlabel="epoch", ylabel=unit)
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if epochs:
        for ax in axes:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_error_histograms(
    counts: Mapping[str, torch.Tensor | np.ndarray], path: str | os.PathLike, title: str = ""
) -> Path:
    """Histograms of absolute pixel errors on the 0-255 scale, one panel per pair.

    ``counts[name]`` has 256 entries: how many pixel values were off by 0..255.
    """
    fig = Figure(figsize=(6 * len(counts), 4))
    axes = fig.subplots(1, len(counts), squeeze=False)
    for ax, (name, c) in zip(axes[0], counts.items()):
        c = np.asarray(c.cpu() if isinstance(c, torch.Tensor) else c, dtype=np.float64)
        total = max(c.sum(), 1.0)
        last = int(np.nonzero(c)[0].max()) + 1 if c.any() else 1
        levels = np.arange(len(c))
        mean = float((levels * c).sum() / total)
        ax.bar(levels[: max(last, 8)], c[: max(last, 8)] / total, width=1.0, color="tab:blue")
        ax.set(title=f"{name}: mean {mean:.2f}, max {last - 1}", xlabel="absolute error (0-255)",
               ylabel="fraction of pixel values", yscale="log" if c.any() else "linear")  # empty: nothing to log-scale
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (nothing half-written on failure)."""
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), suffix=".png")
