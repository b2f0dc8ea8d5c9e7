"""``steg compare``: a thin handler over :func:`steg.report.compare`."""

from __future__ import annotations

import argparse
import sys

from steg.cli.common import PROG, CLIError


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare finished runs (run folders, or sweep folders searched recursively) from their saved files."""
    from steg.report import CompareError, compare

    try:
        result = compare(args.directories, out=args.out, metric=args.metric, by=args.by, force=args.force,
                         floor=args.floor)
    except CompareError as exc:
        raise CLIError(str(exc)) from None
    for warning in result.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    print(result.table)
    print()
    print(result.sentence)
    print(f"wrote {', '.join(str(p) for p in result.outputs.values())}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("compare", help="compare training runs or a sweep: table, curves, HTML report",
                       description="Compare finished training runs from their folders (metrics.json, config.yaml, "
                                   "csv/metrics.csv, images/), offline: a table ranked by --metric (winner first), "
                                   "compare.md, compare.csv, compare_curves.png (validation curves on shared axes) "
                                   "and a self-contained compare.html with every run's last image grid.")
    p.add_argument("directories", nargs="+", metavar="DIR",
                   help="run folders, or sweep folders (runs/sweep_<time>) searched recursively for run folders")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default: the first DIR if it is a sweep folder, else ./compare)")
    p.add_argument("--floor", type=float, default=30.0, metavar="DB",
                   help="default ranking: revealed PSNR among runs whose stego PSNR reaches DB dB (default: 30); "
                        "runs below it come after")
    p.add_argument("--metric", default=None, metavar="NAME",
                   help="rank by this validation metric instead (e.g. val/ssim_secret, val/loss); psnr_*/ssim_* "
                        "maximised, the rest minimised; a loss is flagged when the runs differ in beta, loss or data")
    p.add_argument("--by", choices=("best", "final"), default="best",
                   help="rank by the metric's best value over the validation epochs (default) or its final value")
    p.add_argument("--force", "-f", action="store_true", help="overwrite existing compare.* outputs")
    p.set_defaults(func=cmd_compare)
