"""End to end: `python train.py` as a user runs it, with offline W&B, and resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model=subpixel",
    "trainer.max_epochs=1",
    "trainer.max_time=null",
    "trainer.enable_progress_bar=false",
    "data.train_repeats=2",
    "data.val_tiles=8",
    "data.batch_size=4",
    "model.prep_width=4",
    "model.widths=[4,8]",
]


def run_train(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "train.py", *TINY, f"hydra.run.dir={run_dir}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_train_py_writes_every_artifact_and_resumes(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(run_dir, "model=subpixel", "beta=0.75")
    assert "final validation (8-bit): stego PSNR" in proc.stdout
    assert "wandb sync" in proc.stdout
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    csv = (run_dir / "csv" / "metrics.csv").read_text()
    assert "val/psnr_secret" in csv and "train/loss/cover_mse" in csv and "val/loss/secret_hist" in csv
    assert list((run_dir / "images").glob("epoch_*.png"))
    assert (run_dir / "plots" / "loss_curves.png").is_file()
    assert (run_dir / "plots" / "error_histograms.png").is_file()
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["epochs"] == 1 and report["final"]["val/psnr_stego"] > 0
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
    assert "model: subpixel" not in (run_dir / "config.yaml").read_text()  # resolved config
    steps_one_epoch = report["steps"]

    # Resume: weights, optimizer, scheduler and epoch come back from last.ckpt.
    resumed_dir = tmp_path / "resumed"
    run_train(resumed_dir, f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=2")
    resumed = json.loads((resumed_dir / "metrics.json").read_text())
    assert resumed["epochs"] == 2
    assert resumed["steps"] == 2 * steps_one_epoch
    ckpt = torch.load(resumed_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 1
    history = ckpt["callbacks"]["MetricHistory"]["history"]
    assert [row["epoch"] for row in history if "val/loss" in row] == [0, 1]
    assert ckpt["optimizer_states"][0]["state"]  # Adam moments carried over


def test_debug_fast_runs_from_the_command_line(tmp_path):
    """`python train.py debug=fast`: no logger, so no learning-rate monitor (it refused to start)."""
    proc = run_train(tmp_path / "run", "debug=fast")
    assert "final validation (8-bit)" in proc.stdout
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["status"] == "finished" and report["steps"] == 1


def _fails(tmp_path, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    run_dir = tmp_path / "failed"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0", **(env or {})}
    proc = subprocess.run([sys.executable, "train.py", f"hydra.run.dir={run_dir}", *overrides], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    return proc


def test_bad_settings_and_files_are_one_line_errors_and_leave_no_run_folder(tmp_path):
    bad_ckpt = tmp_path / "bad.ckpt"
    bad_ckpt.write_text("not a checkpoint")
    cases = [
        (["data=folder", f"data.root={tmp_path / 'nowhere'}"], "nowhere is not an existing folder"),
        (["channels=2"], "channels must be 1 (grayscale) or 3 (RGB), got 2"),
        (["beta=abc"], "beta must be a number >= 0"),
        ([f"ckpt_path={bad_ckpt}"], "is not a readable training checkpoint"),
        ([f"ckpt_path={tmp_path / 'missing.ckpt'}"], "ckpt_path: no checkpoint file at"),
    ]
    for overrides, message in cases:
        proc = _fails(tmp_path, *overrides)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "failed").exists()
    # HYDRA_FULL_ERROR=1 still shows the traceback.
    assert "Traceback" in _fails(tmp_path, "channels=2", env={"HYDRA_FULL_ERROR": "1"}).stderr
