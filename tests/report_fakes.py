"""Run folders written by hand, as train.py writes them, for the steg.report tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml
from PIL import Image


def fake_run(
    root: Path,
    folder: str,
    model: str = "subpixel",
    beta: float = 0.5,
    losses: tuple[float, ...] = (0.3, 0.2),
    psnr_stego: tuple[float, ...] = (20.0, 25.0),
    psnr_secret: tuple[float, ...] = (18.0, 22.0),
    overrides: list[str] | None = None,
    run_name: str | None = None,
    with_csv: bool = True,
    grids: int = 2,
    loss: dict[str, Any] | None = None,
    image_size: int = 64,
    batch_size: int = 16,
    extra: dict[str, Any] | None = None,
    steps_per_epoch: int = 3,
) -> Path:
    """A run folder: metrics.json, config.yaml, csv/metrics.csv, images/, .hydra/overrides.yaml.

    The best checkpoint is the epoch of the lowest loss. ``extra`` is merged into
    metrics.json (e.g. ``wall_time_s``, ``status``, or ``steps: None`` to drop the steps).
    """
    run = root / folder
    (run / "csv").mkdir(parents=True)
    rows = [{"epoch": e, "step": steps_per_epoch * (e + 1), "val/loss": l, "val/psnr_stego": s,
             "val/psnr_secret": t, "val/ssim_stego": 0.5 + 0.1 * e, "val/ssim_secret": 0.4 + 0.1 * e}
            for e, (l, s, t) in enumerate(zip(losses, psnr_stego, psnr_secret))]
    best_row = min(rows, key=lambda r: r["val/loss"])
    report = {
        "model": model.split("_")[0],
        "beta": beta,
        "epochs": len(rows),
        "steps": rows[-1]["step"],
        "final": rows[-1],
        "best": {"monitor": "val/loss", "mode": "min", **best_row},
        "best_per_metric": {"val/psnr_stego": max(psnr_stego), "val/psnr_secret": max(psnr_secret),
                            "val/ssim_stego": max(r["val/ssim_stego"] for r in rows),
                            "val/ssim_secret": max(r["val/ssim_secret"] for r in rows)},
        "paths": {"run_dir": str(run)},
    }
    for key, value in (extra or {}).items():
        if value is None and key == "steps":
            report.pop("steps")
        else:
            report[key] = value
    (run / "metrics.json").write_text(json.dumps(report))
    config = {
        "beta": beta,
        "run_name": run_name or f"{model}_beta{beta}",
        "model": {"_target_": f"steg.nets.{model.capitalize()}"},
        "loss": loss or {"_target_": "steg.training.losses.ImageLoss", "mse": 1.0, "ssim": 0.0},
        "data": {"_target_": "steg.data.SampleDataModule", "image_size": image_size, "channels": 3,
                 "batch_size": batch_size, "num_workers": 0},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    if overrides is not None:
        (run / ".hydra").mkdir()
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if with_csv:
        header = ["epoch", "lr-Adam", "step", "train/loss_epoch", *rows[0].keys() - {"epoch", "step"}]
        with (run / "csv" / "metrics.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerow({"lr-Adam": 0.001, "step": 0})  # no epoch: a learning-rate row
            for row in rows:
                writer.writerow({"epoch": row["epoch"], "step": row["step"], "train/loss_epoch": 1.0})
                writer.writerow(row)
    (run / "images").mkdir()
    for e in range(grids):
        Image.new("RGB", (40, 20), (40 * e, 100, 200)).save(run / "images" / f"epoch_{e:03d}.png")
    return run
