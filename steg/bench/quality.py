"""The ``quality`` part: each architecture trained for the same wall-clock budget, then measured.

Each architecture is trained with ``train.py`` on the sample data for
``--budget-min`` minutes (beta 0.75, no schedule, its preset's settings such as
hinet's gradient clipping; the bench's own settings win) into
``--runs-dir/MODEL_<budget>min``, then :func:`steg.inference.evaluation.evaluate` (what
``steg eval`` prints; 8-bit stego) measures its best checkpoint on photographs
it never saw. The security and robustness parts measure the same checkpoints
(:func:`trained_model`), from this run or an earlier one in ``--runs-dir``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from steg.bench.common import (
    DIGITAL_TARGETS, ROOT, BenchError, Target, heldout_images, hms, model_overrides, preset,
)

__all__ = ["run_dir", "find_checkpoint", "trained_model", "train_command", "part_quality"]


def run_dir(opts, model: str) -> Path:
    """Where the quality part trains ``model``: ``--runs-dir/MODEL_<budget>min``."""
    return Path(opts.runs_dir) / f"{model}_{opts.budget_min:g}min"


def find_checkpoint(folder: Path) -> Path | None:
    """The best (else last) checkpoint a finished ``train.py`` run recorded in ``metrics.json``; None if none."""
    try:
        paths = json.loads((folder / "metrics.json").read_text()).get("paths", {})
    except (OSError, ValueError, AttributeError):
        return None
    for key in ("best_checkpoint", "last_checkpoint"):
        if paths.get(key) and Path(paths[key]).is_file():
            return Path(paths[key])
    return None


def trained_model(opts, target: Target) -> tuple[str | None, str]:
    """(what ``load_model`` takes, where it came from) for a target of the security/robustness parts.

    A shipped model is its name; an architecture is the checkpoint of its quality run in
    ``--runs-dir`` at ``--budget-min`` (None, with the reason, where there is none).
    """
    if target.shipped in DIGITAL_TARGETS:
        return target.shipped, "steg.digital (a hiding method: nothing to train)"
    if target.shipped:
        return target.shipped, f"steg/pretrained/{target.shipped}.safetensors"
    folder = run_dir(opts, target.arch)
    ckpt = find_checkpoint(folder)
    if ckpt is None:
        return None, (f"no checkpoint of {target.arch} in {folder}/metrics.json; train it with "
                      f"--parts quality --models {target.arch} --budget-min {opts.budget_min:g} "
                      "(or give the --runs-dir/--budget-min of an earlier run)")
    return str(ckpt), str(ckpt)


def each_model(opts, targets: list[Target], progress, part: str, skipped: list[dict[str, Any]]):
    """Yield ``(target, source, where, model, key)`` for each target that has a model, loaded.

    A target without one is reported in one line and added to ``skipped``. One progress
    unit per target. ``key``: the bench key for a keyed model, else None.
    """
    from steg.bench.common import BENCH_KEY
    from steg.inference.model import load_model

    for target in targets:
        source, where = trained_model(opts, target)
        if source is None:
            progress.write(f"{part}: {target.label}: skipped, {where}")
            skipped.append({"model": target.name, "kind": target.kind, "reason": where})
        else:
            progress.set_postfix_str(f"{target.label}: loading")
            model = load_model(source)
            if target.shipped in DIGITAL_TARGETS:
                model.on_damage = "noise"  # an attacked stego image is a figure (noise), not an error
            yield target, source, where, model, (BENCH_KEY if getattr(model.net, "keyed", False) else None)
        progress.update(1)


def train_command(opts, model: str, folder: Path) -> list[str]:
    """The ``train.py`` command of one quality run (the bench's settings after the preset's)."""
    return [sys.executable, str(ROOT / "train.py"), f"model={model}", *model_overrides(model, opts.tiny),
            f"beta={opts.beta}", "scheduler=none", "trainer.max_epochs=100000",
            f"trainer.max_time={hms(opts.budget_min)}", "trainer.enable_progress_bar=false", "logger=csv",
            f"seed={opts.seed}", f"hydra.run.dir={folder}", *opts.train_args.split()]


def part_quality(opts, targets, progress) -> dict[str, Any]:
    """Train and evaluate each architecture: one progress unit each."""
    from steg.inference.evaluation import evaluate, folder_pairs
    from steg.inference.model import load_model
    from steg.io import write_text
    from steg.metrics import SUMMARY_METRICS

    images = heldout_images(opts)
    rows = []
    for target in targets:
        model = target.arch
        folder = run_dir(opts, model)
        cmd = train_command(opts, model, folder)
        progress.set_postfix_str(f"training {model} for {opts.budget_min:g} min")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "WANDB_MODE": "offline"})
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            raise BenchError(f"training {model} failed (see {folder}): {tail[0]}")
        summary = json.loads((folder / "metrics.json").read_text())
        ckpt = find_checkpoint(folder)
        if ckpt is None:
            raise BenchError(f"training {model} wrote no checkpoint (see {folder}/metrics.json)")
        progress.set_postfix_str(f"evaluating {model}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ev = evaluate(load_model(ckpt), folder_pairs(images), size=opts.eval_size)
        write_text(folder / "eval.json", json.dumps({"n": ev.n, **ev.summary, "images": ev.rows}, indent=2) + "\n")
        rows.append({"model": model, "preset": preset(model), "train_wall_s": wall, "epochs": summary.get("epochs"),
                     "steps": summary.get("steps"), "best_epoch": summary.get("best", {}).get("epoch"),
                     **{k: ev.summary[k] for k in SUMMARY_METRICS}, "pairs": ev.n, "run_dir": str(folder),
                     "checkpoint": str(ckpt), "train_command": " ".join(["python", "train.py", *cmd[2:]])})
        progress.update(1)
    return {"budget_min": opts.budget_min, "images": str(images), "eval_size": opts.eval_size,
            "beta": opts.beta, "tiny": opts.tiny, "rows": rows, "references": reference_rows(opts, images)}


#: What every trained net is judged against in the quality table: the digital method (lossless PNG
#: profile), the shipped qim net and the shipped learned net (30 CPU-minutes, experiments/learned),
#: measured on the same held-out photos, nothing trained.
REFERENCES = ("digital:default", "default", "learned")


def reference_rows(opts, images) -> list[dict[str, Any]]:
    """The :data:`REFERENCES` measured as the nets are (``steg eval``, 8-bit, the bench key)."""
    from steg.bench.common import BENCH_KEY
    from steg.inference.evaluation import evaluate, folder_pairs
    from steg.inference.model import load_model
    from steg.metrics import SUMMARY_METRICS

    rows = []
    for name in REFERENCES:
        model = load_model(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ev = evaluate(model, folder_pairs(images), size=opts.eval_size, key=BENCH_KEY)
        row = {"model": name, **{k: ev.summary[k] for k in SUMMARY_METRICS}, "pairs": ev.n}
        info = getattr(model, "last_info", None)
        if info:  # the digital method: the payload it carried, as in the security and robustness tables
            row["bits_per_value"] = sum(i["bits_per_value"] for i in info) / len(info)
        rows.append(row)
    return rows
