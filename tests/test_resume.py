"""Resume as a user does it: train.py killed with SIGKILL, resumed from last.ckpt, same end as without the kill.

Subprocesses with tiny settings on one thread (deterministic CPU kernels); marked slow.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model=subpixel",
    "model.prep_width=4",
    "model.widths=[4,8]",
    "trainer.max_epochs=3",
    "trainer.max_time=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
    "data.train_repeats=6",
    "data.val_tiles=8",
    "data.batch_size=4",
    "data.image_size=32",
    "data.pairing=random",
    "model.noise_std=0.02",
]
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1",
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

pytestmark = pytest.mark.slow


def _cmd(run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "train.py", *TINY, f"hydra.run.dir={run_dir}", *overrides]


def _run(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(_cmd(run_dir, *overrides), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _kill_after_first_checkpoint(run_dir: Path, *overrides: str) -> int:
    """Start train.py, SIGKILL it as soon as a last.ckpt exists; return the epoch that checkpoint holds."""
    last = run_dir / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(_cmd(run_dir, *overrides), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "train.py finished before it could be killed"
    return int(torch.load(last, map_location="cpu", weights_only=True)["epoch"])


def _val_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r.get("val/loss")]


def test_killed_run_resumed_in_place_ends_exactly_like_an_uninterrupted_one(tmp_path):
    straight = tmp_path / "straight"
    _run(straight)
    reference = json.loads((straight / "metrics.json").read_text())

    killed = tmp_path / "killed"
    epoch = _kill_after_first_checkpoint(killed)
    assert epoch < 2
    # Resume in place with no override repeated but the run folder: config, W&B id, CSV come back.
    proc = subprocess.run([sys.executable, "train.py", f"hydra.run.dir={killed}",
                           f"ckpt_path={killed / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=3",
                           "trainer.enable_progress_bar=false"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = json.loads((killed / "metrics.json").read_text())

    assert resumed["model"] == "subpixel" and resumed["status"] == "finished"
    assert resumed["epochs"] == reference["epochs"] == 3 and resumed["steps"] == reference["steps"]
    for key, value in reference["final"].items():
        assert resumed["final"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert [r["epoch"] for r in resumed["history"]] == [0, 1, 2]
    assert resumed["best"]["epoch"] == reference["best"]["epoch"]
    assert resumed["wall_time_s"] > 0
    # The CSV holds every epoch once, with the uninterrupted run's values.
    rows, ref_rows = _val_rows(killed), _val_rows(straight)
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in ref_rows] == ["0", "1", "2"]
    for row, ref in zip(rows, ref_rows):
        assert float(row["val/loss"]) == pytest.approx(float(ref["val/loss"]), rel=1e-5)
    # One W&B run id over both segments.
    runs = sorted((killed / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and len({p.name.rsplit("-", 1)[-1] for p in runs}) == 1
    assert not list((killed / "checkpoints").glob("*-v*.ckpt"))


def test_resume_into_a_new_folder_keeps_history_best_and_csv(tmp_path):
    first = tmp_path / "first"
    _run(first, "trainer.max_epochs=2")
    before = json.loads((first / "metrics.json").read_text())
    second = tmp_path / "second"
    # beta=5 from the resume on: epoch 2's val/loss (cover + 5 x secret) is far above epochs 0-1's,
    # so the best checkpoint must stay the one of the first segment (it was epoch 2 whatever its score).
    _run(second, f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=3", "beta=5")
    after = json.loads((second / "metrics.json").read_text())
    losses = [r["val/loss"] for r in after["history"]]
    assert losses[2] > min(losses[:2])
    assert after["best"]["epoch"] == before["best"]["epoch"] == losses.index(min(losses))
    best = torch.load(second / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert best["epoch"] == before["best"]["epoch"]
    assert [r["epoch"] for r in after["history"]] == [0, 1, 2]
    assert [r["epoch"] for r in _val_rows(second)] == ["0", "1", "2"]
    assert after["wall_time_s"] > before["wall_time_s"]


def test_moved_run_folder_resumed_in_place_has_no_versioned_checkpoints(tmp_path):
    original = tmp_path / "original"
    _run(original, "trainer.max_epochs=1")
    moved = tmp_path / "moved"
    original.rename(moved)
    _run(moved, f"ckpt_path={moved / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=2")
    assert sorted(p.name for p in (moved / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    report = json.loads((moved / "metrics.json").read_text())
    assert Path(report["paths"]["best_checkpoint"]).parent == moved / "checkpoints"
