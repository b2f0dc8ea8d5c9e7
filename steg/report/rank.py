"""Ranking runs, the Pareto front of the two PSNRs, and whether a metric compares across runs.

The default ranking does not depend on the loss: a run's *point* is its
(stego PSNR, revealed PSNR) at the best checkpoint (``by="best"``) or at the
final epoch (``by="final"``), both from the same epoch, so the point is what
that checkpoint delivers. Runs whose stego PSNR reaches a floor are ranked by
revealed PSNR; runs below it come after them, and runs with no point last.

``--metric`` ranks by any logged metric instead. A loss (``val/loss`` =
cover + beta * secret, or one of its terms) measures a different objective in
runs with different beta, loss, data or image size: :func:`comparability_warning`
names what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from steg.metrics import SUMMARY_METRICS, higher_is_better
from steg.report.runs import Run

__all__ = [
    "STEGO",
    "REVEALED",
    "DEFAULT_FLOOR",
    "point_of",
    "pareto_front",
    "rank_runs",
    "rank_by_floor",
    "comparability_warning",
    "is_loss",
    "Ranking",
    "rank",
]

STEGO, REVEALED = "val/psnr_stego", "val/psnr_secret"
#: Default stego PSNR floor (dB) of the default ranking.
DEFAULT_FLOOR = 30.0
#: Config parts that change what a loss measures, and (data) what every figure is measured on.
_LOSS_PARTS = ("beta", "loss", "data")
_FIGURE_PARTS = ("data",)
#: Data settings that change only training, not the validation images.
_TRAIN_ONLY = {"batch_size", "num_workers", "pin_memory", "persistent_workers", "train_repeats",
               "samples_per_epoch", "flip", "pairing"}


def is_loss(metric: str) -> bool:
    """True for ``val/loss`` and its terms (``val/loss/cover_mse``, ...): anything not an image figure."""
    return metric.rsplit("/", 1)[-1] not in SUMMARY_METRICS


def point_of(run: Run, by: str = "best") -> tuple[float, float] | None:
    """(stego PSNR, revealed PSNR) of one epoch: the best checkpoint's (``best``) or the last (``final``)."""
    which = "at_best" if by == "best" else "final"
    stego, revealed = run.value(STEGO, which), run.value(REVEALED, which)
    return None if stego is None or revealed is None else (stego, revealed)


def pareto_front(points: Sequence[tuple[float, float] | None]) -> list[bool]:
    """For each point (higher is better on both axes), True if no other point dominates it.

    A point dominates another if it is at least as good on both axes and better on
    one. Missing points (None) are never on the front.

    >>> pareto_front([(30.0, 20.0), (35.0, 18.0), (29.0, 19.0), None, (35.0, 18.0)])
    [True, True, False, False, True]
    """
    def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] >= b[0] and a[1] >= b[1] and a != b

    return [p is not None and not any(q is not None and dominates(q, p) for q in points) for p in points]


def rank_runs(runs: Iterable[Run], metric: str, by: str = "best") -> list[Run]:
    """Runs sorted by the metric (best first, direction from its name); runs without it last, in order."""
    sign = -1.0 if higher_is_better(metric) else 1.0
    runs = list(runs)
    scored = [r for r in runs if r.value(metric, by) is not None]
    unscored = [r for r in runs if r.value(metric, by) is None]
    return sorted(scored, key=lambda r: sign * r.value(metric, by)) + unscored  # type: ignore[operator]


def rank_by_floor(runs: Iterable[Run], floor: float = DEFAULT_FLOOR, by: str = "best") -> tuple[list[Run], int]:
    """Runs at or above the stego PSNR ``floor`` by revealed PSNR (ties: higher stego PSNR first),
    then runs below the floor ranked the same way, then runs without both PSNRs.

    Returns (ranked runs, how many meet the floor).
    """
    runs = list(runs)
    with_point = [(r, point_of(r, by)) for r in runs]
    key = lambda rp: (-rp[1][1], -rp[1][0])  # noqa: E731
    above = sorted([rp for rp in with_point if rp[1] is not None and rp[1][0] >= floor], key=key)
    below = sorted([rp for rp in with_point if rp[1] is not None and rp[1][0] < floor], key=key)
    missing = [r for r, p in with_point if p is None]
    return [r for r, _ in above] + [r for r, _ in below] + missing, len(above)


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
        return out
    return {prefix: value}


def _differences(runs: Sequence[Run], parts: Sequence[str]) -> list[str]:
    """'key (a, b)' for each config setting under ``parts`` whose value differs between runs."""
    flat = []
    for run in runs:
        settings: dict[str, Any] = {}
        for part in parts:
            if part in run.config:
                settings.update(_flatten(run.config[part], part))
        flat.append({k: v for k, v in settings.items()
                     if not (k.startswith("data.") and k.split(".")[1] in _TRAIN_ONLY)})
    keys: list[str] = []
    for settings in flat:
        keys += [k for k in settings if k not in keys]
    out = []
    for key in keys:
        values = [str(s.get(key, "unset")) for s in flat]
        distinct = list(dict.fromkeys(values))
        if len(distinct) > 1:
            shown = ", ".join(distinct[:4]) + (", ..." if len(distinct) > 4 else "")
            out.append(f"{key} ({shown})")
    return out


def comparability_warning(runs: Sequence[Run], metric: str | None) -> str | None:
    """One line when ``metric`` (None: the two PSNRs) does not compare across ``runs``, else None.

    A loss is not comparable when the runs differ in beta, the loss settings, the
    validation data or its image size (``data.image_size``) or channels; PSNR and
    SSIM figures are not comparable when the validation data differ.
    """
    loss = metric is not None and is_loss(metric)
    diffs = _differences(runs, _LOSS_PARTS if loss else _FIGURE_PARTS)
    if not diffs:
        return None
    shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
    if loss:
        return (f"{metric} is not comparable across these runs (a different objective or data): they differ in "
                f"{shown}; rank by the default (both PSNRs) or --metric {REVEALED}")
    what = f"{metric} is" if metric else "the PSNR figures are"
    return f"{what} measured on different validation data across these runs: they differ in {shown}"


@dataclass
class Ranking:
    """Runs in rank order and what the tables, sentence and page say about them.

    ``metric`` None means the default ranking (revealed PSNR above a stego PSNR
    ``floor``); ``n_above`` runs meet the floor (all runs under ``--metric``);
    ``front[i]`` tells whether ``runs[i]`` is on the Pareto front; ``winner`` is
    the first run if it has a value (and meets the floor), else None.
    """

    runs: list[Run]
    metric: str | None
    by: str
    floor: float
    n_above: int
    front: list[bool]
    winner: Run | None
    warning: str | None

    def on_front(self, run: Run) -> bool:
        return self.front[self.runs.index(run)]


def rank(runs: Sequence[Run], metric: str | None = None, by: str = "best", floor: float = DEFAULT_FLOOR) -> Ranking:
    """Rank ``runs`` by ``metric`` or, when None, by revealed PSNR above the stego PSNR ``floor``."""
    if metric is None:
        ranked, n_above = rank_by_floor(runs, floor, by)
        winner = ranked[0] if n_above else None
    else:
        ranked = rank_runs(runs, metric, by)
        n_above = len(ranked)
        winner = ranked[0] if ranked and ranked[0].value(metric, by) is not None else None
    front = pareto_front([point_of(r, by) for r in ranked])
    return Ranking(ranked, metric, by, floor, n_above, front, winner, comparability_warning(ranked, metric))
