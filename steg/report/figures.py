"""The comparison's PNG figures: validation curves on shared axes and the PSNR trade-off (Pareto) plot.

Both return PNG bytes (the caller writes them atomically) and draw on a
``matplotlib.figure.Figure`` without pyplot, so no global state or backend is touched.
"""

from __future__ import annotations

import io
import math
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from steg.report.rank import REVEALED, STEGO, Ranking, point_of
from steg.report.tables import LABELS

__all__ = ["curves_png", "pareto_png"]


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def curves_png(ranking: Ranking) -> bytes:
    """Validation curves of every run on shared axes: stego PSNR, revealed PSNR, and the ranking
    metric (``val/loss`` under the default ranking), one panel each, per epoch."""
    runs = ranking.runs
    extra = ranking.metric if ranking.metric not in (None, STEGO, REVEALED) else None
    metrics = [STEGO, REVEALED, extra or "val/loss"]
    ncol = max(1, min(4, len(runs)))
    legend_rows = math.ceil(len(runs) / ncol)
    height = 4.0 + 0.25 * legend_rows
    fig = Figure(figsize=(5.2 * len(metrics), height))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    colors = _colors(len(runs))
    epochs = [e for run in runs for points in run.curves.values() for e, _ in points]
    handles: dict[str, object] = {}
    for ax, m in zip(axes, metrics):
        values: list[float] = []
        for run, color in zip(runs, colors):
            points = run.curves.get(m, [])
            if points:
                xs, ys = zip(*points)
                values += ys
                (line,) = ax.plot(xs, ys, marker="o", ms=4, lw=1.4, color=color, label=run.label)
                handles.setdefault(run.label, line)
        title = f"{LABELS[m]} (dB)" if m in (STEGO, REVEALED) else m
        ax.set(title=title, xlabel="epoch")
        if m == "val/loss" and values and min(values) > 0 and max(values) > 10 * min(values):
            ax.set_yscale("log")  # losses spanning decades
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol, fontsize="small",
                   frameon=False)
    fig.tight_layout(rect=(0, 0.25 * legend_rows / height + 0.02, 1, 1))
    return _png(fig)


def pareto_png(ranking: Ranking) -> bytes:
    """Stego PSNR (x) against revealed PSNR (y), one labelled point per run, the Pareto front
    highlighted and joined, the stego PSNR floor dashed (default ranking only)."""
    runs, by = ranking.runs, ranking.by
    fig = Figure(figsize=(7.5, 5.5))
    ax = fig.subplots()
    points = [(run, point_of(run, by), on) for run, on in zip(runs, ranking.front)]
    shown = [(r, p, on) for r, p, on in points if p is not None]
    for run, (x, y), on in shown:
        ax.scatter([x], [y], s=90 if on else 40, zorder=3, color="tab:red" if on else "tab:gray",
                   edgecolors="black" if on else "none")
        ax.annotate(run.label, (x, y), xytext=(5, 4), textcoords="offset points", fontsize="small")
    front = sorted(p for _, p, on in shown if on)
    if len(front) > 1:
        xs, ys = zip(*front)
        ax.plot(xs, ys, color="tab:red", lw=1.2, alpha=0.7, zorder=2, label="Pareto front")
    elif front:
        ax.scatter([], [], color="tab:red", edgecolors="black", label="Pareto front")
    if ranking.metric is None:
        ax.axvline(ranking.floor, color="tab:blue", ls="--", lw=1, label=f"stego PSNR floor {ranking.floor:g} dB")
    if shown:
        xs = [p[0] for _, p, _ in shown] + ([ranking.floor] if ranking.metric is None else [])
        ys = [p[1] for _, p, _ in shown]
        ax.set_xlim(min(xs) - 1.5, max(xs) + 3.0)  # room for the labels on the right
        ax.set_ylim(min(ys) - 1.0, max(ys) + 1.0)
    epoch = "best checkpoint" if by == "best" else "final epoch"
    ax.set(xlabel="stego PSNR vs cover (dB, 8-bit)", ylabel="revealed PSNR vs secret (dB)",
           title=f"Hiding quality against reveal quality ({epoch}); up and right is better")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize="small")
    missing = [r.label for r, p, _ in points if p is None]
    if missing:
        fig.text(0.01, 0.01, "no PSNR figures: " + ", ".join(missing), fontsize="x-small")
    fig.tight_layout()
    return _png(fig)
