"""``steg analyze``: the security report of a model on held-out pairs (a thin handler over :mod:`steg.security.analysis`).

    steg analyze [--images DIR] --out DIR [--model M] [--key K | --key-file F]
                 [--size 256] [--limit K] [--thief-steps N] [--detector-steps N] [--seed S] [--force]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from steg.cli.common import (
    PROG, CLIError, add_key_options, add_model_options, check_keyed, check_output, key_arg, load_model,
)


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this report (the passphrase itself left out)."""
    argv = ["analyze", "--model", str(args.model)]
    if args.key is not None:
        argv += ["--key", "PASSPHRASE"]
    elif args.key_file:
        argv += ["--key-file", str(args.key_file)]
    if args.images:
        argv += ["--images", str(args.images)]
    argv += ["--out", str(args.out), "--size", str(args.size)]
    if args.limit is not None:
        argv += ["--limit", str(args.limit)]
    argv += ["--thief-steps", str(args.thief_steps), "--detector-steps", str(args.detector_steps),
             "--seed", str(args.seed)]
    return "steg " + shlex.join(argv)


def _image_paths(args: argparse.Namespace) -> list[Path]:
    """The held-out images: --images DIR (at least 2), else the embedded held-out photos; cut to --limit."""
    if args.images:
        from steg.io import IMAGE_EXTENSIONS, find_images

        folder = Path(args.images)
        if not folder.is_dir():
            raise CLIError(f"--images {folder} is not a folder (expected a folder of held-out images)")
        paths = find_images(folder)
        if len(paths) < 2:
            raise CLIError(f"--images {folder} holds {len(paths)} images ({'/'.join(IMAGE_EXTENSIONS)}); "
                           "at least 2 are needed (image i hides image i+1)")
    else:
        from steg.data import sample_photo_paths

        paths = sample_photo_paths("val")
    return paths[: args.limit] if args.limit is not None else paths


def cmd_analyze(args: argparse.Namespace) -> int:
    if args.size < 64 or args.size % 64:
        raise CLIError(f"--size must be a positive multiple of 64 (the steganalysis crops), got {args.size}")
    for option in ("thief_steps", "detector_steps"):
        if getattr(args, option) < 0:
            raise CLIError(f"--{option.replace('_', '-')} must be >= 0, got {getattr(args, option)}")
    if args.limit is not None and args.limit < 2:
        raise CLIError(f"--limit must be >= 2 (pairs need two images), got {args.limit}")
    from steg.security.analysis import REPORT_FILES

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise CLIError(f"--out {out_dir} exists and is not a folder")
    for name in REPORT_FILES:
        check_output(out_dir / name, [], args.force, suffix=None, what="--out file")
    paths = _image_paths(args)

    key = key_arg(args)
    model = load_model(args)
    check_keyed(model, key)
    from steg.security.analysis import analyze, load_pairs, report_table, write_report

    pairs = load_pairs(paths, args.size, model.channels)
    result = analyze(model, pairs, key=key, thief_steps=args.thief_steps, detector_steps=args.detector_steps,
                     seed=args.seed, log=lambda text: print(f"{PROG}: {text}", file=sys.stderr))
    result.report["command"] = _command(args)
    files = write_report(result, out_dir)
    rows = report_table(result.report)
    width = max(len(figure) for figure, _, _ in rows)
    for figure, value, target in rows:
        print(f"{figure:{width}s}  {value:>18s}  {target}")
    print(f"wrote {', '.join(str(p) for p in files.values())} ({result.report['seconds']} s)")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "analyze", help="security report: wrong key, keyless attacks, a learned thief, detectability",
        description="Hide held-out pairs (image i hides image i+1) and measure what an outsider gets: reveal with "
                    "no key and a wrong key, keyless read-outs (residues, bit planes, amplified residual), key "
                    "reuse, a learned thief, and a steganalyser's accuracy/AUROC. Writes analyze.json, analyze.md "
                    "and a self-contained analyze.html into --out.",
    )
    add_model_options(p)
    add_key_options(p)
    p.add_argument("--images", metavar="DIR",
                   help="folder of held-out images (at least 2); default: the embedded held-out photos")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--size", type=int, default=256, metavar="N",
                   help="centre-crop every image to N x N, N a multiple of 64 (default 256)")
    p.add_argument("--limit", type=int, metavar="K", help="use only the first K images")
    p.add_argument("--thief-steps", type=int, default=300, metavar="N", help="training steps of the thief (0: skip)")
    p.add_argument("--detector-steps", type=int, default=300, metavar="N",
                   help="training steps of the steganalyser (0: skip)")
    p.add_argument("--seed", type=int, default=0, help="seed of the attackers' training crops (not key material)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite existing analyze.* files")
    p.set_defaults(func=cmd_analyze)
