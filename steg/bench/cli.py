"""``python -m steg.bench``: the command line, the parts in order, and ``bench.json`` / ``bench.md``.

Every part writes into ``--out`` as soon as it finishes (an interrupted bench
keeps what it measured). Parts not run in this invocation are kept from the
``bench.json`` already there, each with the command and machine that measured
it, so ``--parts security,robustness`` adds its tables beside an earlier
run's speed and quality tables instead of erasing them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from steg.bench.common import BenchError, environment, fail, heldout_paths, resolve_targets
from steg.bench.hide_reveal import part_cli, part_inference, worker_inference
from steg.bench.quality import part_quality
from steg.bench.robustness import DEFAULT_ATTACKS, part_robustness
from steg.bench.security import part_security
from steg.bench.speed import parse_mode, part_speed, worker_speed
from steg.bench.tables import markdown

__all__ = ["PARTS", "build_parser", "main"]

#: part -> (function(opts, targets, progress) -> section, which targets it measures, progress units per target)
PARTS: dict[str, tuple[Callable, str, Callable[[Any], int]]] = {
    "speed": (part_speed, "architectures", lambda opts: 2),
    "inference": (part_inference, "architectures", lambda opts: len(opts.inference_sizes)),
    "cli": (part_cli, "none", lambda opts: 1),
    "quality": (part_quality, "architectures", lambda opts: 1),
    "security": (part_security, "all", lambda opts: 1),
    "robustness": (part_robustness, "all", lambda opts: 1),
}
_NEEDS_IMAGES = {"quality", "security", "robustness"}


def build_parser() -> argparse.ArgumentParser:
    from steg.bench import __doc__ as doc

    p = argparse.ArgumentParser(prog="python -m steg.bench", description=(doc or "").split("\n\n")[0])
    p.add_argument("--out", default="experiments/bench", help="folder for bench.json and bench.md")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)} (default: all)")
    p.add_argument("--models", default=None,
                   help="comma list of architectures (conf/model/NAME.yaml) and shipped models "
                        "(steg/pretrained/NAME.safetensors; 'shipped:NAME' where an architecture has the same "
                        "name); default: every registered architecture and every shipped model. Speed, inference "
                        "and quality measure the architectures; security and robustness all of them")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--fast", default="fast", help="fast mode: 'fast' (the device's fast path) "
                   "or a '+' list of channels_last, bf16, compile")
    p.add_argument("--seconds", type=float, default=20.0, help="timed training per model in fp32 eager")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--inference-sizes", default="256,1024")
    p.add_argument("--repeats", type=int, default=1, help="timed inference calls after a warm-up (best kept)")
    p.add_argument("--budget-min", type=float, default=30.0,
                   help="training minutes per architecture for quality; security and robustness measure the "
                        "checkpoints of that budget in --runs-dir")
    p.add_argument("--beta", type=float, default=0.75)
    p.add_argument("--images", default=None,
                   help="folder of held-out photos for quality, security and robustness (default: the embedded 4)")
    p.add_argument("--eval-size", type=int, default=256,
                   help="centre-crop size of the held-out pairs (steg eval/analyze --size; a multiple of 64 "
                        "for security)")
    p.add_argument("--runs-dir", default="runs/bench", help="where the quality runs and security reports go")
    p.add_argument("--train-args", default="", help="extra train.py overrides for the quality runs, one string")
    p.add_argument("--thief-steps", type=int, default=300, help="security: training steps of the learned thief")
    p.add_argument("--detector-steps", type=int, default=300, help="security: training steps of the steganalyser")
    p.add_argument("--attacks", default=DEFAULT_ATTACKS, help="robustness: steg eval --attack specs")
    p.add_argument("--tiny", action="store_true",
                   help="each architecture's tiny() size (smoke runs and tests; its figures mean nothing)")
    p.add_argument("--seed", type=int, default=42)
    # internal: one measurement in this process
    p.add_argument("--worker", choices=["speed", "inference"], help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="eager", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    return p


def _check(opts) -> list[str]:
    """Validate the options (one-line SystemExit); return the parts in order."""
    from steg.distortions.attacks import AttackError, parse_attacks

    parts = [p.strip() for p in opts.parts.split(",") if p.strip()]
    for part in parts:
        if part not in PARTS:
            raise fail(f"--parts: unknown part {part!r}; expected some of {', '.join(PARTS)}")
    opts.targets = resolve_targets(opts.models)
    try:
        opts.inference_sizes = [int(s) for s in opts.inference_sizes.split(",") if s]
    except ValueError:
        raise fail(f"--inference-sizes {opts.inference_sizes!r}: expected a comma list of pixel sizes") from None
    parse_mode(opts.fast, opts.device)
    if opts.budget_min <= 0 or opts.seconds <= 0:
        raise fail("--budget-min and --seconds must be > 0")
    if opts.eval_size < 1 or ("security" in parts and opts.eval_size % 64):
        raise fail(f"--eval-size must be a positive multiple of 64 for security (its steganalysis crops), "
                   f"got {opts.eval_size}")
    if opts.thief_steps < 0 or opts.detector_steps < 0:
        raise fail("--thief-steps and --detector-steps must be >= 0")
    try:
        opts.attacks = parse_attacks(opts.attacks)
    except AttackError as exc:
        raise fail(f"--attacks: {exc}") from None
    if opts.images and _NEEDS_IMAGES & set(parts):
        if not Path(opts.images).is_dir():
            raise fail(f"--images {opts.images} is not a folder (expected a folder of held-out photos)")
        heldout_paths(opts)
    return parts


def _targets_of(part: str, opts) -> list:
    which = PARTS[part][1]
    if which == "none":
        return []
    return [t for t in opts.targets if which == "all" or t.arch]




def _previous(out: Path) -> dict[str, Any]:
    """The parts of the ``bench.json`` already in ``out``, each with the environment that measured it."""
    path = out / "bench.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        env = data["environment"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise fail(f"--out {out}: {path.name} is not a bench report ({type(exc).__name__}); "
                   "move it away or choose another --out") from None
    return {part: {**data[part], "environment": data[part].get("environment", env)}
            for part in PARTS if isinstance(data.get(part), dict)}


def _write(out: Path, report: dict[str, Any]) -> None:
    from steg.io import json_safe, write_text

    write_text(out / "bench.json", json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")
    write_text(out / "bench.md", markdown(report) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = build_parser().parse_args(argv)
    if opts.device == "auto":
        import torch

        opts.device = "cuda" if torch.cuda.is_available() else "cpu"
    if opts.worker == "speed":
        print(json.dumps(worker_speed(opts.model, opts.mode, opts.device, opts.steps, opts.seconds,
                                      opts.batch, opts.size, opts.seed, opts.tiny)))
        return 0
    if opts.worker == "inference":
        print(json.dumps(worker_inference(opts.model, opts.device, opts.size, opts.seed, opts.repeats, opts.tiny)))
        return 0

    from tqdm.auto import tqdm

    from steg.inference.evaluation import EvalError
    from steg.io import ImageError, one_line
    from steg.inference.files import ModelError

    parts = _check(opts)
    out = Path(opts.out)
    env = environment(opts.device, argv)
    report: dict[str, Any] = {"environment": env, **_previous(out)}
    for part in parts:
        function, _, units = PARTS[part]
        targets = _targets_of(part, opts)
        if PARTS[part][1] != "none" and not targets:
            print(f"steg.bench: {part}: no architecture among --models; part skipped", file=sys.stderr)
            continue
        total = units(opts) * max(1, len(targets))
        with tqdm(total=total, desc=part, unit="run", file=sys.stderr, dynamic_ncols=True) as progress:
            try:
                section = function(opts, targets, progress)
            except (BenchError, ModelError, EvalError, ImageError) as exc:  # one line; keep the finished parts
                raise fail(f"{part}: {one_line(exc, with_type=False)} (finished parts are in {out})") from None
        report[part] = {**section, "environment": env}
        _write(out, report)  # after every part: an interrupted bench keeps what it measured
    print(markdown(report))
    print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    return 0

