"""``train(cfg)``: build everything from a composed Hydra config, fit, report.

Called by the thin ``train.py`` at the repository root; tests call it directly
with a config composed by Hydra's ``compose``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from steg.callbacks import ErrorHistograms, ImageGrids, MetricHistory

__all__ = ["train", "instantiate_run", "SweepConfigError", "configure_sweep_job"]

SUMMARY_METRICS = ("psnr_stego", "ssim_stego", "apd_stego", "psnr_secret", "ssim_secret", "apd_secret")


def instantiate_run(cfg: DictConfig) -> dict[str, Any]:
    """Build data, net, loss, LightningModule, callbacks, loggers and trainer."""
    instantiate = hydra.utils.instantiate
    _check_config(cfg)
    datamodule = instantiate(cfg.data)
    net = instantiate(cfg.model)
    loss = instantiate(cfg.loss)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    module = instantiate(cfg.module, net=net, loss=loss, optimizer=instantiate(cfg.optimizer), scheduler=scheduler)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return {"datamodule": datamodule, "module": module, "trainer": trainer}


def _check_config(cfg: DictConfig) -> None:
    if cfg.channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {cfg.channels}")
    if cfg.get("ckpt_path") and not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint file at {cfg.ckpt_path}")


class SweepConfigError(ValueError):
    """A multirun (sweep) setting that cannot work; the message is one line."""


MULTIRUN_DDP_MESSAGE = (
    "multirun + ddp in one process tree re-launches sys.argv and breaks; "
    "use hydra/launcher=submitit_slurm, or trainer.strategy=ddp_spawn"
)
# Hydra launchers that run every job inside this process tree (Lightning's ddp would re-run sys.argv, i.e. the sweep).
_LOCAL_LAUNCHERS = ("BasicLauncher", "JoblibLauncher")
# Metrics where larger is better; every other one (losses, mse, apd, hist) is minimised.
_MAXIMIZED = ("psnr_stego", "psnr_secret", "ssim_stego", "ssim_secret")


def _hydra_config() -> DictConfig | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def _is_multirun(hydra_cfg: DictConfig | None) -> bool:
    from hydra.types import RunMode

    return hydra_cfg is not None and hydra_cfg.get("mode") == RunMode.MULTIRUN


def _device_count(trainer_cfg: DictConfig) -> int:
    """Processes Lightning will start per node for ``trainer.devices`` (-1 / "auto": every device there)."""
    devices = trainer_cfg.get("devices", "auto")
    if isinstance(devices, (list, tuple, ListConfig)):
        return len(devices)
    text = str(devices).strip()
    if "," in text:
        return len([d for d in text.split(",") if d.strip()])
    if text in ("-1", "auto"):
        accelerator = str(trainer_cfg.get("accelerator", "auto"))
        if accelerator in ("gpu", "cuda", "auto"):
            import torch

            return torch.cuda.device_count()
        return 1
    try:
        return int(text)
    except ValueError:
        return 1


def _relaunches_script(strategy: Any) -> bool:
    """Strategies whose launcher re-runs ``sys.argv`` in new processes (ddp, fsdp, deepspeed; not spawn/fork)."""
    if isinstance(strategy, DictConfig):
        name = str(strategy.get("_target_", "")).rsplit(".", 1)[-1].lower()
        start_method = str(strategy.get("start_method", "popen"))
        return start_method == "popen" and any(k in name for k in ("ddp", "fsdp", "deepspeed"))
    name = str(strategy or "auto").lower()
    if any(k in name for k in ("spawn", "fork", "notebook")):
        return False
    return name == "auto" or name.startswith(("ddp", "fsdp", "deepspeed"))


def _check_sweep(cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    """Fail at once, before anything is built, on sweep settings that cannot work."""
    trainer_cfg = cfg.get("trainer") or {}
    launcher = str(hydra_cfg.get("launcher", {}).get("_target_", ""))
    processes = _device_count(trainer_cfg) * int(trainer_cfg.get("num_nodes", 1) or 1)
    if launcher.endswith(_LOCAL_LAUNCHERS) and processes > 1 and _relaunches_script(trainer_cfg.get("strategy", "auto")):
        raise SweepConfigError(MULTIRUN_DDP_MESSAGE)
    direction = hydra_cfg.get("sweeper", {}).get("direction")
    metric = cfg.get("optimized_metric")
    if direction is not None and metric and not isinstance(direction, (list, ListConfig)):
        wanted = "maximize" if str(metric).endswith(_MAXIMIZED) else "minimize"
        if str(direction).rsplit(".", 1)[-1] != wanted:
            raise SweepConfigError(
                f"optimized_metric={metric} should be {wanted}d but hydra.sweeper.direction={direction}; "
                f"pass hydra.sweeper.direction={wanted}"
            )


def configure_sweep_job(cfg: DictConfig) -> None:
    """Per-job settings for sweeps, applied before anything is built.

    Always: the W&B run is tagged ``model:<choice>`` and ``beta:<beta>`` (on top of
    ``logger.wandb.tags``). In a multirun (``-m``, Optuna, SLURM): the settings are
    checked (:class:`SweepConfigError`), and the W&B ``group`` defaults to the sweep
    folder's name so that the sweep's runs are grouped.
    """
    hydra_cfg = _hydra_config()
    multirun = _is_multirun(hydra_cfg)
    if multirun:
        _check_sweep(cfg, hydra_cfg)
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if not wandb_cfg:
        return
    choices = hydra_cfg.runtime.choices if hydra_cfg is not None else {}
    model = choices.get("model") or str(cfg.model.get("_target_", "model")).rsplit(".", 1)[-1].lower()
    tags = [str(t) for t in (wandb_cfg.get("tags") or [])]
    for tag in (f"model:{model}", f"beta:{cfg.beta}"):
        if tag not in tags:
            tags.append(tag)
    with open_dict(cfg):
        wandb_cfg.tags = tags
        if multirun and wandb_cfg.get("group") is None:
            wandb_cfg.group = Path(str(hydra_cfg.sweep.dir)).name


def train(cfg: DictConfig) -> float | None:
    """Train hide + reveal nets as configured; return ``cfg.optimized_metric``.

    Writes into ``cfg.paths.run_dir``: checkpoints, the CSV log, the offline W&B
    run, per-epoch image grids, loss curves, pixel-error histograms,
    ``config.yaml`` (resolved) and ``metrics.json``; prints a summary.
    """
    configure_sweep_job(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved))

    parts = instantiate_run(cfg)
    trainer: L.Trainer = parts["trainer"]
    for logger in trainer.loggers:
        logger.log_hyperparams(resolved)
    try:
        trainer.fit(parts["module"], datamodule=parts["datamodule"], ckpt_path=cfg.get("ckpt_path"))
        report = write_report(trainer, run_dir, cfg)
    finally:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.finish()
    if trainer.is_global_zero:
        print_summary(report)
    value = report["final"].get(cfg.optimized_metric) if cfg.get("optimized_metric") else None
    return float(value) if value is not None else None


def _callback(trainer: L.Trainer, kind: type) -> Any:
    return next((c for c in trainer.callbacks if isinstance(c, kind)), None)


def write_report(trainer: L.Trainer, run_dir: Path, cfg: DictConfig) -> dict[str, Any]:
    """Gather final and best figures and artifact paths into ``metrics.json``."""
    history_cb = _callback(trainer, MetricHistory)
    history = history_cb.history if history_cb else []
    val_rows = [row for row in history if any(k.startswith("val/") for k in row)]
    final = {k: v for k, v in (val_rows[-1] if val_rows else {}).items()}
    checkpoint = _callback(trainer, ModelCheckpoint)
    best: dict[str, Any] = {}
    if checkpoint is not None and checkpoint.monitor and val_rows:
        sign = 1 if checkpoint.mode == "min" else -1
        scored = [r for r in val_rows if checkpoint.monitor in r and math.isfinite(r[checkpoint.monitor])]
        if scored:
            best_row = min(scored, key=lambda r: sign * r[checkpoint.monitor])
            best = {"monitor": checkpoint.monitor, "mode": checkpoint.mode, **best_row}
    best_per_metric = {}
    for name in SUMMARY_METRICS:
        key = f"val/{name}"
        values = [r[key] for r in val_rows if key in r]
        if values:
            best_per_metric[key] = min(values) if name.startswith("apd") else max(values)
    grids = _callback(trainer, ImageGrids)
    hists = _callback(trainer, ErrorHistograms)
    wandb_dir = None
    for logger in trainer.loggers if trainer.is_global_zero else []:
        if isinstance(logger, WandbLogger):
            wandb_dir = str(Path(logger.experiment.dir).parent)
    paths = {
        "run_dir": str(run_dir),
        "best_checkpoint": checkpoint.best_model_path if checkpoint else None,
        "last_checkpoint": checkpoint.last_model_path if checkpoint else None,
        "csv": str(run_dir / "csv" / "metrics.csv"),
        "last_grid": str(grids.last_path) if grids and grids.last_path else None,
        "loss_curves": str(history_cb.curves_path) if history_cb else None,
        "error_histograms": str(hists.path) if hists else None,
        "wandb_run": wandb_dir,
    }
    report = {
        "model": trainer.lightning_module.net.name,
        "beta": cfg.beta,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "final": final,
        "best": best,
        "best_per_metric": best_per_metric,
        "paths": paths,
        "note": "validation figures on held-out images; stego and revealed quantized to 8 bits",
    }
    if trainer.is_global_zero:
        tmp = run_dir / ".metrics.json.tmp"
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, run_dir / "metrics.json")
    return report


def print_summary(report: dict[str, Any]) -> None:
    final, best = report["final"], report["best"]

    def fmt(row: dict[str, float]) -> str:
        if not row:
            return "(no validation epoch ran)"
        return (
            f"stego PSNR {row.get('val/psnr_stego', float('nan')):.2f} dB, SSIM {row.get('val/ssim_stego', float('nan')):.4f} | "
            f"secret PSNR {row.get('val/psnr_secret', float('nan')):.2f} dB, SSIM {row.get('val/ssim_secret', float('nan')):.4f}"
        )

    lines = [
        "",
        f"== steg: {report['model']} beta={report['beta']} after {report['epochs']} epochs, {report['steps']} steps ==",
        f"final validation (8-bit): {fmt(final)}",
    ]
    if best:
        lines.append(f"best ({best['monitor']}, epoch {best['epoch']}): {fmt(best)}")
    paths = report["paths"]
    for key in ("run_dir", "best_checkpoint", "last_checkpoint", "csv", "last_grid", "loss_curves", "error_histograms"):
        if paths.get(key):
            lines.append(f"  {key:17s} {paths[key]}")
    lines.append(f"  {'metrics':17s} {Path(paths['run_dir']) / 'metrics.json'}")
    if paths.get("wandb_run"):
        lines.append(f"  {'wandb (offline)':17s} upload with: wandb sync {paths['wandb_run']}")
    print("\n".join(lines), flush=True)
