"""The comparison as text: the ranked table (fixed-width and Markdown), the CSV, and the sentence.

Table columns: rank (winner marked ``*``), run, model, beta, the overrides that
differ between runs, status; then epochs, steps, wall time and the figures. Under
the default ranking the figures are the two PSNRs, whether the run is on the
Pareto front and whether it meets the stego PSNR floor, then the SSIMs; under
``--metric`` the metric's best and final values come first. Figures beside the
ranking are those of one epoch: the best checkpoint's (``by="best"``) or the last.
"""

from __future__ import annotations

import csv
import math
import io
from typing import Sequence

from steg.metrics import CI_PREFIX, SUMMARY_METRICS, higher_is_better
from steg.report.rank import REVEALED, STEGO, Ranking, point_of, rank_runs
from steg.report.runs import Run

__all__ = ["LABELS", "WINNER_MARK", "table_rows", "text_table", "markdown_table", "csv_text", "sentence",
           "ranked_by", "fmt", "duration"]

WINNER_MARK = "*"
_PAIR = {"stego": "stego", "secret": "revealed"}
_NAME = {"psnr": "PSNR", "ssim": "SSIM", "apd": "APD"}
#: Short column names of the image figures: ``val/psnr_secret`` -> "revealed PSNR".
LABELS = {f"val/{m}": f"{_PAIR[m.split('_')[1]]} {_NAME[m.split('_')[0]]}" for m in SUMMARY_METRICS}


def fmt(metric: str, value: float | None, unit: bool = False) -> str:
    """A figure as shown: PSNR with 2 decimals (and ' dB'), SSIM 4, APD 2, anything else 4 digits."""
    if value is None:
        return "-"
    head = metric.rsplit("/", 1)[-1].split("_", 1)[0]
    if head == "psnr":
        return f"{value:.2f}" + (" dB" if unit else "")
    return {"ssim": f"{value:.4f}", "apd": f"{value:.2f}"}.get(head, f"{value:.4g}")


def duration(seconds: float | None) -> str:
    """Wall time as '42s', '12m 05s' or '3h 02m'."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def _short(value: str) -> str:
    """A sampled float such as 0.0003574712922600243 shown as 0.0003575 (the CSV keeps every digit)."""
    text = str(value)
    if len(text) <= 8:
        return text
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def varying_params(runs: Sequence[Run]) -> list[str]:
    """Override keys (other than model and beta) whose values differ between runs, in first-seen order."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.params if k not in keys and k not in ("model", "beta")]
    return [k for k in keys if len({r.params.get(k) for r in runs}) > 1]


def _figure_which(by: str) -> str:
    return "at_best" if by == "best" else "final"


def ranked_by(ranking: Ranking) -> str:
    """What ranks the runs, in words: 'revealed PSNR at stego PSNR >= 30 dB (best checkpoint)' or 'best val/loss'."""
    epoch = "best checkpoint" if ranking.by == "best" else "final epoch"
    if ranking.metric is None:
        return f"revealed PSNR at stego PSNR >= {ranking.floor:g} dB ({epoch})"
    return f"{ranking.by} {ranking.metric}"


def table_rows(ranking: Ranking) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the ranked table, as strings."""
    runs, by, metric = ranking.runs, ranking.by, ranking.metric
    which = _figure_which(by)
    params = varying_params(runs)
    header = ["rank", "run", "model", "beta", *params, "status", "epochs", "steps", "wall time"]
    if metric is not None:
        other = "final" if by == "best" else "best"
        header += [f"{metric} {by}", f"{metric} {other}"]
    header += ["stego PSNR", "revealed PSNR", "front"]
    if metric is None:
        header += ["floor"]
    header += ["stego SSIM", "revealed SSIM"]
    rows = []
    for i, run in enumerate(runs):
        cells = [f"{i + 1}{WINNER_MARK}" if run is ranking.winner else str(i + 1), run.label, run.model,
                 _short(run.beta), *(_short(run.params.get(k, "")) for k in params), run.status or "-",
                 "-" if run.epochs is None else str(run.epochs), "-" if run.steps is None else str(run.steps),
                 duration(run.wall_time_s)]
        if metric is not None:
            cells += [fmt(metric, run.value(metric, by)), fmt(metric, run.value(metric, other))]
        cells += [fmt(STEGO, run.value(STEGO, which)), fmt(REVEALED, run.value(REVEALED, which)),
                  "yes" if ranking.front[i] else ""]
        if metric is None:
            point = point_of(run, by)
            cells += ["-" if point is None else ("ok" if i < ranking.n_above else "below")]
        cells += [fmt("val/ssim_stego", run.value("val/ssim_stego", which)),
                  fmt("val/ssim_secret", run.value("val/ssim_secret", which))]
        rows.append(cells)
    return header, rows


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Fixed-width text table: names left-aligned, figures (from 'epochs' on) right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    left = list(header).index("epochs")

    def line(cells: Sequence[str]) -> str:
        out = [str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(x: str) -> str:
        return str(x).replace("|", "\\|")

    left = list(header).index("epochs")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows])


def csv_text(ranking: Ranking) -> str:
    """Every run with every figure at full precision: best, final and at the best checkpoint."""
    runs = ranking.runs
    params = varying_params(runs)
    metrics = ["val/loss", *(f"val/{m}" for m in SUMMARY_METRICS)]
    if ranking.metric is not None:
        metrics = [ranking.metric] + [m for m in metrics if m != ranking.metric]
    header = ["rank", "winner", "front", "meets_floor", "run", "model", "beta", *params, "status", "epochs",
              "steps", "wall_time_s", "ranked_by",
              *(f"{m} {w}" for m in metrics for w in ("best", "final", "at_best")), "path"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for i, run in enumerate(runs):
        values = [run.value(m, w) for m in metrics for w in ("best", "final", "at_best")]
        meets = "" if ranking.metric is not None or point_of(run, ranking.by) is None else int(i < ranking.n_above)
        writer.writerow([i + 1, int(run is ranking.winner), int(ranking.front[i]), meets, run.label, run.model,
                         run.beta, *(run.params.get(k, "") for k in params), run.status or "",
                         "" if run.epochs is None else run.epochs, "" if run.steps is None else run.steps,
                         "" if run.wall_time_s is None else repr(run.wall_time_s), ranked_by(ranking),
                         *("" if v is None else repr(float(v)) for v in values), str(run.path)])
    return buf.getvalue()


def _spread(a: Run, b: Run, by: str) -> float | None:
    """Half-width (dB) of the 95% interval of the difference of two runs' revealed PSNRs, or None.

    From each run's ``val/ci95_psnr_secret`` at the ranked epoch (the runs' validation images are
    independent samples of the same photos: the two half-widths add in quadrature).
    """
    name = f"val/{CI_PREFIX}psnr_secret"
    which = "final" if by == "final" else "at_best"
    ci = [r.value(name, which) for r in (a, b)]
    if any(c is None or not math.isfinite(c) for c in ci):
        return None
    return math.hypot(*ci)


def _margin(metric: str, best: float, other: float) -> str:
    """How much better ``best`` is than ``other``: dB for PSNR, else relative."""
    if metric.rsplit("/", 1)[-1].startswith("psnr_"):
        diff = abs(best - other)
        return "tied" if round(diff, 2) == 0 else f"+{diff:.2f} dB"
    if other == 0:
        return "tied" if best == 0 else f"{abs(best - other):.4g} apart"
    pct = abs(best - other) / abs(other) * 100.0
    return "tied" if round(pct, 1) == 0 else f"{pct:.1f}% {'higher' if best > other else 'lower'}"


def _names(runs: Sequence[Run]) -> str:
    return ", ".join(r.label for r in runs)


def _floor_sentence(ranking: Ranking) -> list[str]:
    runs, by, floor = ranking.runs, ranking.by, ranking.floor
    epoch = "best checkpoint" if by == "best" else "final epoch"
    above, below = runs[: ranking.n_above], [r for r in runs[ranking.n_above:] if point_of(r, by) is not None]
    if ranking.winner is None and not below:
        parts = [f"no run has both PSNRs at the {epoch}"]
    elif ranking.winner is None:
        parts = [f"no run reaches the stego PSNR floor of {floor:g} dB ({epoch}); "
                 "the runs are ranked by revealed PSNR below it"]
    else:
        stego, revealed = point_of(ranking.winner, by)  # type: ignore[misc]
        parts = [f"{ranking.winner.label} ranks first: revealed PSNR {revealed:.2f} dB at stego PSNR "
                 f"{stego:.2f} dB ({epoch}; floor {floor:g} dB)"]
        if len(above) > 1:
            nxt = point_of(above[1], by)[1]  # type: ignore[index]
            margin = _margin(REVEALED, revealed, nxt)
            spread = _spread(ranking.winner, above[1], by)
            if spread is not None and abs(revealed - nxt) <= spread:
                margin = "tied"
            parts[0] += f", {'tied with' if margin == 'tied' else margin + ' over'} {above[1].label}"
            if spread is not None:
                parts[0] += f" (95% interval of the difference: +-{spread:.2f} dB over the validation images)"
        else:
            parts[0] += ", the only run at or above the floor"
    front = [r for r, on in zip(runs, ranking.front) if on]
    if front:
        parts.append(f"Pareto front of (stego PSNR, revealed PSNR): {_names(front)}")
    if below and ranking.winner is not None:
        parts.append(f"{len(below)} run{'s' if len(below) > 1 else ''} below the floor ranked after: "
                     f"{_names(below)}")
    return parts


def _metric_sentence(ranking: Ranking) -> list[str]:
    metric, by = ranking.metric, ranking.by
    assert metric is not None
    scored = [r for r in ranking.runs if r.value(metric, by) is not None]
    if not scored:
        return [f"no run has a value for {metric}"]
    first, value = scored[0], scored[0].value(metric, by)
    if len(scored) == 1:
        parts = [f"{first.label} is the only run with {metric} ({by} {fmt(metric, value, unit=True)})"]
    else:
        other = scored[1].value(metric, by)
        margin = _margin(metric, value, other)  # type: ignore[arg-type]
        verb = "ties" if margin == "tied" else "wins"
        parts = [f"{first.label} {verb} on {metric} ({by} {fmt(metric, value, unit=True)}, next best "
                 f"{fmt(metric, other, unit=True)} by {scored[1].label}{'' if margin == 'tied' else ': ' + margin})"]
    for m in (STEGO, REVEALED):
        top = [r for r in rank_runs(ranking.runs, m, "at_best") if r.value(m, "at_best") is not None]
        if m == metric or not top:
            continue
        extra = ""
        if len(top) > 1:
            margin = _margin(m, top[0].value(m, "at_best"), top[1].value(m, "at_best"))  # type: ignore[arg-type]
            extra = f", tied with {top[1].label}" if margin == "tied" else f", {margin} over {top[1].label}"
        parts.append(f"best {LABELS[m]} at the best checkpoint: {top[0].label} "
                     f"({fmt(m, top[0].value(m, 'at_best'), unit=True)}{extra})")
    return parts


def sentence(ranking: Ranking) -> str:
    """Who ranks first and by how much; the Pareto front; the runs below the floor. One line."""
    parts = _floor_sentence(ranking) if ranking.metric is None else _metric_sentence(ranking)
    return "; ".join(parts) + "."


def higher_or_lower(metric: str) -> str:
    return "higher" if higher_is_better(metric) else "lower"
