"""A run's report: ``metrics.json``, the printed summary, and the same figures on W&B.

``metrics.json`` (strict JSON, read by ``steg compare``)::

    model, beta, epochs, steps       # epochs finished, optimizer steps
    status                           # "finished" | "time_limit" | "interrupted" | "failed"
    time_limit                       # when trainer.max_time stopped it: steps done and planned
    wall_time_s                      # training wall time over every resumed segment
    final, best                      # validation rows (with "epoch" and "step")
    best_per_metric                  # best value of each SUMMARY_METRICS over the run
    history                          # one row per epoch (epoch, step, lr, train/*, val/*)
    paths, note, error               # error: one line, when status is "failed"

A value that is not finite (PSNR of a stego image equal to its cover is +inf) is
written as ``null`` and named under ``non_finite``, so strict JSON readers work.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger

from steg.training.callbacks import DivergenceGuard, ErrorHistograms, ImageGrids, MetricHistory
from steg.training.checkpoints import RunState
from steg.io import json_safe, write_text
from steg.metrics import PSNR_AVERAGE, SUMMARY_METRICS, higher_is_better

__all__ = ["build_report", "write_report", "print_summary", "log_to_wandb", "callback",
           "wandb_segments", "wandb_started"]


def callback(trainer: L.Trainer, kind: type) -> Any:
    """The trainer's first callback of type ``kind``, or None."""
    return next((c for c in trainer.callbacks if isinstance(c, kind)), None)


def build_report(trainer: L.Trainer, run_dir: Path, cfg: Any, model: str, status: str = "finished",
                 error: str | None = None) -> dict[str, Any]:
    """Final and best validation figures, history, status, wall time and artifact paths."""
    history_cb = callback(trainer, MetricHistory)
    history = history_cb.history if history_cb else []
    val_rows = [row for row in history if any(k.startswith("val/") for k in row)]
    final = dict(val_rows[-1]) if val_rows else {}
    checkpoint = callback(trainer, ModelCheckpoint)
    best: dict[str, Any] = {}
    if checkpoint is not None and checkpoint.monitor and val_rows:
        sign = 1 if checkpoint.mode == "min" else -1
        scored = [r for r in val_rows if checkpoint.monitor in r and math.isfinite(r[checkpoint.monitor])]
        if scored:
            best = {"monitor": checkpoint.monitor, "mode": checkpoint.mode,
                    **min(scored, key=lambda r: sign * r[checkpoint.monitor])}
    best_per_metric = {}
    for name in SUMMARY_METRICS:
        values = [r[f"val/{name}"] for r in val_rows if f"val/{name}" in r]
        if values:
            best_per_metric[f"val/{name}"] = max(values) if higher_is_better(name) else min(values)
    grids, hists, state = callback(trainer, ImageGrids), callback(trainer, ErrorHistograms), callback(trainer, RunState)
    wandb_dir, wandb_dirs = None, []
    for logger in trainer.loggers if trainer.is_global_zero else []:
        if isinstance(logger, WandbLogger) and wandb_started(logger):
            wandb_dir = str(Path(logger.experiment.dir).parent)
            wandb_dirs = wandb_segments(Path(wandb_dir), run_dir, cfg.get("ckpt_path"))
    paths = {
        "run_dir": str(run_dir),
        "best_checkpoint": (checkpoint.best_model_path or None) if checkpoint else None,
        "last_checkpoint": (checkpoint.last_model_path or None) if checkpoint else None,
        "csv": str(run_dir / "csv" / "metrics.csv"),
        "last_grid": str(grids.last_path) if grids and grids.last_path else None,
        "loss_curves": str(history_cb.curves_path) if history_cb and history_cb.curves_path.is_file() else None,
        "error_histograms": str(hists.path) if hists and hists.path.is_file() else None,
        "wandb_run": wandb_dir,
        "wandb_runs": wandb_dirs,  # every segment's folder of this W&B run (resumes included)
    }
    epochs = max((int(r["epoch"]) + 1 for r in val_rows), default=0)
    report = {
        "model": model,
        "beta": cfg.beta,
        "epochs": epochs,
        "steps": trainer.global_step,
        "status": status,
        "wall_time_s": round(state.wall_time_s, 3) if state else None,
        "final": final,
        "best": best,
        "best_per_metric": best_per_metric,
        "history": history,
        "paths": paths,
        "note": "validation figures on held-out images; stego and revealed quantized to 8 bits",
        "psnr_average": PSNR_AVERAGE,
    }
    guard = callback(trainer, DivergenceGuard)
    if guard is not None:
        report["rollbacks"] = [dict(e) for e in guard.events]
    if error:
        report["error"] = error
    return report


def wandb_started(logger: WandbLogger) -> bool:
    """Whether the logger's W&B run started (touching ``logger.experiment`` otherwise would try again, and may fail)."""
    return getattr(logger, "_experiment", None) is not None


def wandb_segments(current: Path, run_dir: Path, ckpt_path: str | None) -> list[str]:
    """Every local folder of the W&B run ``current`` belongs to, oldest first (``current`` included).

    A resumed run continues one W&B run id, but each segment writes its own
    folder (``wandb/offline-run-<time>-<id>``): in this run folder, and in the
    folders of the runs it resumed from (followed through each ``config.yaml``'s
    ``ckpt_path``). ``wandb sync`` needs them all.
    """
    run_id = current.name.rsplit("-", 1)[-1]
    found, seen, folder, ckpt = {current}, set(), run_dir, ckpt_path
    while folder is not None and folder.resolve() not in seen and len(seen) < 100:
        seen.add(folder.resolve())
        found.update(p for p in (folder / "wandb").glob(f"*run-*-{run_id}") if p.is_dir())
        folder = Path(ckpt).resolve().parent.parent if ckpt else None
        ckpt = None
        if folder is not None and (folder / "config.yaml").is_file():
            import yaml

            try:
                ckpt = (yaml.safe_load((folder / "config.yaml").read_text()) or {}).get("ckpt_path")
            except (yaml.YAMLError, AttributeError, OSError):
                ckpt = None
    return [str(p) for p in sorted(found, key=lambda p: p.name)]  # names start with the start time


def write_report(report: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Write ``report`` to ``run_dir/metrics.json`` as strict JSON (atomically); return what was written."""
    bad: list[str] = []
    clean = json_safe(report, bad)
    if bad:
        clean["non_finite"] = bad
        clean["note"] += "; null = not finite (e.g. PSNR of identical images is +inf)"
    write_text(run_dir / "metrics.json", json.dumps(clean, indent=2, allow_nan=False))
    return clean


def log_to_wandb(trainer: L.Trainer, report: dict[str, Any]) -> None:
    """Put the best-epoch figures (``best/...``), status and wall time in the W&B summary; log the PNG plots."""
    for logger in trainer.loggers:
        if not isinstance(logger, WandbLogger):
            continue
        summary = logger.experiment.summary
        for key, value in report["best"].items():
            if isinstance(value, (int, float)) and key not in ("mode",):
                summary[f"best/{key}"] = value
        summary["status"], summary["wall_time_s"], summary["epochs"] = (
            report["status"], report["wall_time_s"], report["epochs"])
        for name in ("loss_curves", "error_histograms"):
            path = report["paths"].get(name)
            if path and Path(path).is_file():
                logger.log_image(f"plots/{name}", [path], step=trainer.global_step)


def print_summary(report: dict[str, Any]) -> None:
    final, best = report["final"], report["best"]

    def fmt(row: dict[str, float]) -> str:
        if not row:
            return "(no validation epoch ran)"
        nan = float("nan")
        return (
            f"stego PSNR {row.get('val/psnr_stego') or nan:.2f} dB, SSIM {row.get('val/ssim_stego') or nan:.4f} | "
            f"secret PSNR {row.get('val/psnr_secret') or nan:.2f} dB, SSIM {row.get('val/ssim_secret') or nan:.4f}"
        )

    status = "" if report["status"] == "finished" else f" ({report['status'].upper()})"
    lines = [
        "",
        f"== steg: {report['model']} beta={report['beta']} after {report['epochs']} epochs, "
        f"{report['steps']} steps, {report['wall_time_s'] or 0:.0f} s{status} ==",
        f"final validation (8-bit): {fmt(final)}",
    ]
    if best:
        lines.append(f"best ({best['monitor']}, epoch {best['epoch']}): {fmt(best)}")
    limit = report.get("time_limit")
    if limit:
        planned = limit.get("planned_steps")
        far = f"step {limit['steps']} of {planned} ({100 * limit['steps'] / planned:.0f}%)" if planned else \
            f"step {limit['steps']}"
        lines.append(f"stopped by trainer.max_time ({limit.get('max_time_s') or 0:.0f} s) at {far}")
        if limit.get("schedule") and planned:
            lines.append(f"warning: the learning-rate schedule was laid out over {planned} steps, so its later "
                         "part never happened; raise trainer.max_time or lower trainer.max_epochs")
    paths = report["paths"]
    for key in ("run_dir", "best_checkpoint", "last_checkpoint", "csv", "last_grid", "loss_curves", "error_histograms"):
        if paths.get(key):
            lines.append(f"  {key:17s} {paths[key]}")
    lines.append(f"  {'metrics':17s} {Path(paths['run_dir']) / 'metrics.json'}")
    if paths.get("wandb_run"):
        folders = " ".join(paths.get("wandb_runs") or [paths["wandb_run"]])
        lines.append(f"  {'wandb (offline)':17s} upload with: wandb sync {folders}")
    print("\n".join(lines), flush=True)
