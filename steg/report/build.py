""":func:`compare`: find and read the runs, rank them, write the outputs (``steg compare``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from steg.io import write_bytes, write_text
from steg.report.figures import curves_png, pareto_png
from steg.report.html import html_report
from steg.report.rank import DEFAULT_FLOOR, Ranking, rank
from steg.report.runs import CompareError, Run, find_run_dirs, is_run_dir, load_run, set_labels
from steg.report.tables import (WINNER_MARK, csv_text, higher_or_lower, markdown_table, ranked_by, sentence,
                                table_rows, text_table)

__all__ = ["OUTPUT_NAMES", "CompareResult", "compare", "default_out_dir"]

OUTPUT_NAMES = {"md": "compare.md", "csv": "compare.csv", "png": "compare_curves.png",
                "pareto": "compare_pareto.png", "html": "compare.html"}


@dataclass
class CompareResult:
    """What :func:`compare` found and wrote. ``warning`` (also in ``warnings``) is the
    comparability warning, or None; ``table`` and ``sentence`` are what the CLI prints."""

    runs: list[Run]
    metric: str | None
    by: str
    table: str
    sentence: str
    out_dir: Path
    outputs: dict[str, Path]
    warnings: list[str] = field(default_factory=list)
    ranking: Ranking | None = None
    warning: str | None = None


def default_out_dir(dirs: Sequence[str | os.PathLike]) -> Path:
    """The first DIR if it is a sweep folder (not itself a run folder), else ./compare."""
    first = Path(dirs[0])
    return first if first.is_dir() and not is_run_dir(first) else Path("compare")


def _markdown(ranking: Ranking, text: str, sources: Sequence[str]) -> str:
    n = len(ranking.runs)
    header, rows = table_rows(ranking)
    how = (f"Ranked by {ranked_by(ranking)}, then runs below the floor; `front`: on the Pareto front"
           if ranking.metric is None else
           f"Ranked by the {ranked_by(ranking)} ({higher_or_lower(ranking.metric)} is better)")
    lines = [f"# steg compare: {n} run{'s' if n != 1 else ''}", "", text, ""]
    if ranking.warning:
        lines += [f"**Warning:** {ranking.warning}", ""]
    lines += [f"{how}; winner marked {WINNER_MARK}. Sources: {', '.join(f'`{s}`' for s in sources)}.", "",
              markdown_table(header, rows), "",
              f"![stego PSNR against revealed PSNR]({OUTPUT_NAMES['pareto']})", "",
              f"![validation curves]({OUTPUT_NAMES['png']})", ""]
    return "\n".join(lines)


def _check_outputs(out_dir: Path, force: bool) -> dict[str, Path]:
    if out_dir.exists() and not out_dir.is_dir():
        raise CompareError(f"--out {out_dir} exists and is not a folder")
    outputs = {k: out_dir / name for k, name in OUTPUT_NAMES.items()}
    existing = [p for p in outputs.values() if p.exists()]
    for p in existing:
        if p.is_dir():
            raise CompareError(f"{p} is a folder; expected a file name")
    if existing and not force:
        raise CompareError(f"{out_dir} already holds {', '.join(p.name for p in existing)}; "
                           "pass --force to overwrite, or --out DIR")
    return outputs


def compare(
    dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    metric: str | None = None,
    by: str = "best",
    force: bool = False,
    floor: float = DEFAULT_FLOOR,
) -> CompareResult:
    """Compare the runs under ``dirs``; write compare.md/.csv/_curves.png/_pareto.png/.html into ``out``.

    ``metric`` None ranks by revealed PSNR among runs whose stego PSNR reaches
    ``floor`` (dB); a metric name ranks by that metric's ``by`` value (best over
    epochs, or final). Nothing is written when an output exists and ``force`` is
    false, or on any error (:class:`CompareError`, one line).
    """
    if by not in ("best", "final"):
        raise CompareError(f"rank by 'best' or 'final', got {by!r}")
    if metric is not None and not metric.strip():
        raise CompareError("--metric must name a logged metric, e.g. val/psnr_secret or val/loss")
    if not math.isfinite(floor):
        raise CompareError(f"--floor must be a finite stego PSNR in dB, got {floor}")
    warnings: list[str] = []
    run_dirs = find_run_dirs(dirs, warnings)
    out_dir = Path(out) if out is not None else default_out_dir(dirs)
    outputs = _check_outputs(out_dir, force)

    runs = [load_run(p, warnings) for p in run_dirs]
    set_labels(runs)
    if metric is not None and not any(r.value(metric, by) is not None for r in runs):
        known = sorted({k for r in runs for k in r.final if k.startswith("val/")})
        raise CompareError(f"metric {metric} is in none of the runs' validation figures "
                           f"(known: {', '.join(known) or 'none: no validation epoch ran'})")
    ranking = rank(runs, metric, by, floor)
    if ranking.warning:
        warnings.append(ranking.warning)
    text = sentence(ranking)
    sources = [str(d) for d in dirs]
    curves, pareto = curves_png(ranking), pareto_png(ranking)
    page = html_report(ranking, text, curves, pareto, sources)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(outputs["md"], _markdown(ranking, text, sources))
    write_text(outputs["csv"], csv_text(ranking))
    write_bytes(outputs["png"], curves)
    write_bytes(outputs["pareto"], pareto)
    write_text(outputs["html"], page)
    header, rows = table_rows(ranking)
    return CompareResult(runs=ranking.runs, metric=metric, by=by, table=text_table(header, rows), sentence=text,
                         out_dir=out_dir, outputs=outputs, warnings=warnings, ranking=ranking,
                         warning=ranking.warning)
