"""Comparing training runs offline: ``steg compare DIR... [--out DIR] [--floor 30] [--metric NAME] [--force]``.

From each run folder's files (no W&B needed) :func:`compare` builds a ranked
table, ``compare.md``/``.csv``, ``compare_curves.png``, ``compare_pareto.png``
and a self-contained ``compare.html``. One job per module:

- :mod:`steg.report.runs`: finding run folders and reading one run (:class:`Run`);
- :mod:`steg.report.rank`: the default ranking (revealed PSNR above a stego PSNR
  floor), the Pareto front, ``--metric`` ranking and the comparability warning;
- :mod:`steg.report.tables`: the text and Markdown table, the CSV, the sentence;
- :mod:`steg.report.figures`: the curves and Pareto PNGs;
- :mod:`steg.report.html`: the page;
- :mod:`steg.report.build`: :func:`compare`, which ties them together and writes the outputs.
"""

from steg.report.build import OUTPUT_NAMES, CompareResult, compare, default_out_dir
from steg.report.rank import DEFAULT_FLOOR, Ranking, comparability_warning, pareto_front, rank, rank_runs
from steg.report.runs import CompareError, Run, find_run_dirs, load_run

__all__ = [
    "CompareError",
    "CompareResult",
    "DEFAULT_FLOOR",
    "OUTPUT_NAMES",
    "Ranking",
    "Run",
    "comparability_warning",
    "compare",
    "default_out_dir",
    "find_run_dirs",
    "load_run",
    "pareto_front",
    "rank",
    "rank_runs",
]
