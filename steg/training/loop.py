"""``train(cfg)``: build everything from a composed Hydra config, fit, report.

Called by the thin ``train.py`` at the repository root; tests call it directly
with a config composed by Hydra's ``compose``. What a checkpoint holds and how a
run resumes: :mod:`steg.training.checkpoints`; what a run reports: :mod:`steg.training.summary`.
"""

from __future__ import annotations

import logging
import numbers
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelSummary, ProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from steg.training.callbacks import ErrorHistograms, MetricHistory
from steg.training.checkpoints import AtomicCheckpointIO, EpochSeed, FinishAtMaxSteps, RunState, continue_csv, read_checkpoint
from steg.io import lock_folder, one_line, write_text
from steg.metrics import higher_is_better
from steg.training.module import check_beta
from steg.training.summary import build_report, callback, log_to_wandb, print_summary, wandb_started, write_report

__all__ = ["train", "instantiate_run", "restore_config", "SweepConfigError", "configure_sweep_job", "RESTORED"]

#: Top-level keys a resume takes from the checkpoint's own config (the command line still wins).
RESTORED = ("model", "data", "loss", "module", "optimizer", "scheduler", "beta", "channels", "seed", "trainer")
#: Trainer settings of the machine, not of the run: a resume keeps this machine's (this command's) values.
MACHINE_KEYS = ("accelerator", "devices", "strategy", "num_nodes")


def instantiate_run(cfg: DictConfig, resolved: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build data, net, loss, LightningModule, callbacks, loggers and trainer (config checked first)."""
    instantiate = hydra.utils.instantiate
    _check_config(cfg)
    net = instantiate(cfg.model)
    _check_image_size(cfg, net)
    datamodule = instantiate(cfg.data)
    loss = instantiate(cfg.loss)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    distortion = instantiate(cfg.distortion) if cfg.get("distortion") else None
    module = instantiate(cfg.module, net=net, loss=loss, optimizer=instantiate(cfg.optimizer), scheduler=scheduler,
                         distortion=distortion)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    callbacks += [EpochSeed(cfg.get("seed")), RunState(resolved), FinishAtMaxSteps()]
    if cfg.trainer.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(StegProgressBar())
    if cfg.trainer.get("enable_model_summary", True) and not any(isinstance(c, ModelSummary) for c in callbacks):
        callbacks.append(StegModelSummary())
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    if not loggers:  # logger=none, debug=fast: Lightning refuses a learning-rate monitor with nothing to log to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()])
    return {"datamodule": datamodule, "module": module, "trainer": trainer}


class StegProgressBar(TQDMProgressBar):
    """Lightning's progress bar with every float shown to 4 significant digits (a loss of 0.001234, not 0.001)."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in super().get_metrics(trainer, pl_module).items()}


class StegModelSummary(ModelSummary):
    """Lightning's model summary without FLOPs when they were not counted (no example input: "Total FLOPs: 0")."""

    @staticmethod
    def summarize(summary_data, total_parameters, trainable_parameters, model_size, total_training_modes,
                  total_flops, **summarize_kwargs) -> None:
        from lightning.pytorch.utilities.model_summary.model_summary import _format_summary_table

        if total_flops:
            return ModelSummary.summarize(summary_data, total_parameters, trainable_parameters, model_size,
                                          total_training_modes, total_flops, **summarize_kwargs)
        columns = [c for c in summary_data if c[0] != "FLOPs"]
        table = _format_summary_table(total_parameters, trainable_parameters, model_size, total_training_modes,
                                      0, *columns)
        table = "\n".join(line for line in table.splitlines() if not line.endswith("Total Flops"))
        logging.getLogger("lightning.pytorch.callbacks.model_summary").info("\n" + table)


def _check_config(cfg: DictConfig) -> None:
    """One-line errors naming the setting, before anything is built or written."""
    if cfg.channels not in (1, 3) or isinstance(cfg.channels, bool):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {cfg.channels!r}")
    check_beta(cfg.beta)
    lr = (cfg.get("optimizer") or {}).get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr >= 0):
        raise ValueError(f"optimizer.lr must be a number >= 0 (the learning rate), got {lr!r}")
    if cfg.get("ckpt_path") and not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint file at {cfg.ckpt_path}")


def _check_image_size(cfg: DictConfig, net: Any) -> None:
    multiple = int(getattr(net, "size_multiple", 1))
    size = cfg.data.get("image_size")
    if isinstance(size, int) and multiple > 1 and size % multiple:
        lower, upper = size - size % multiple, size - size % multiple + multiple
        raise ValueError(
            f"data.image_size={size} is not a multiple of {multiple}, which model {net.name} needs; "
            f"use data.image_size={lower if lower >= 16 else upper} or {upper}"
        )


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def restore_config(cfg: DictConfig, saved: dict[str, Any] | None, overrides: list[str]) -> DictConfig:
    """``cfg`` with the :data:`RESTORED` keys taken from the resumed run's ``saved`` (resolved) config.

    The trainer's settings come back too (``max_epochs``, ``max_time``, ...), but
    not where it runs (:data:`MACHINE_KEYS`). A command-line override wins: ``model=unet`` or ``beta=0.5`` replaces the key,
    ``data.batch_size=8`` changes that value of the restored group. Values that are
    interpolations in ``cfg`` (``data.channels: ${channels}``) stay interpolations.
    """
    if not saved:
        return cfg
    keys = [_override_key(o) for o in overrides]
    merged = cfg.copy()
    with open_dict(merged):
        for key in RESTORED:
            if key not in saved or key in keys:
                continue
            value = saved[key]
            raw = OmegaConf.to_container(cfg[key], resolve=False) if isinstance(cfg.get(key), DictConfig) else None
            if isinstance(value, dict) and raw is not None:
                value = dict(value)
                value.update({k: v for k, v in raw.items() if isinstance(v, str) and "${" in v and k in value})
            merged[key] = value
            if key == "trainer":  # where it runs is this machine's
                for name in MACHINE_KEYS:
                    if name in cfg[key]:
                        merged[key][name] = OmegaConf.to_container(cfg[key], resolve=False)[name]
            for dotted in (k for k in keys if k.startswith(key + ".")):
                OmegaConf.update(merged, dotted, OmegaConf.select(cfg, dotted), force_add=True)
    return merged


def _command_line_overrides() -> list[str]:
    hydra_cfg = _hydra_config()
    return list(hydra_cfg.overrides.task) if hydra_cfg is not None else []


def _resume_config(cfg: DictConfig) -> tuple[DictConfig, dict[str, Any] | None]:
    """Read ``ckpt_path`` and restore the run's config from it (or from its run folder's config.yaml)."""
    if not cfg.get("ckpt_path"):
        return cfg, None
    resume = read_checkpoint(cfg.ckpt_path)
    saved = resume["config"]
    if saved is None:  # a checkpoint from before RunState: its run folder's config.yaml
        folder_config = Path(cfg.ckpt_path).resolve().parent.parent / "config.yaml"
        saved = OmegaConf.to_container(OmegaConf.load(folder_config)) if folder_config.is_file() else None
    return restore_config(cfg, saved, _command_line_overrides()), resume


class SweepConfigError(ValueError):
    """A multirun (sweep) setting that cannot work; the message is one line."""


MULTIRUN_DDP_MESSAGE = (
    "multirun + ddp in one process tree re-launches sys.argv and breaks; "
    "use hydra/launcher=submitit_slurm, or trainer.strategy=ddp_spawn"
)
# Hydra launchers that run every job inside this process tree (Lightning's ddp would re-run sys.argv, i.e. the sweep).
_LOCAL_LAUNCHERS = ("BasicLauncher", "JoblibLauncher")


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
        wanted = "maximize" if higher_is_better(str(metric)) else "minimize"
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
    """Train hide + reveal nets as configured; return ``cfg.optimized_metric`` (final value).

    Writes into ``cfg.paths.run_dir``: checkpoints, the CSV log, the offline W&B
    run, per-epoch image grids, loss curves, pixel-error histograms,
    ``config.yaml`` (resolved) and ``metrics.json``; prints a summary. With
    ``ckpt_path`` the run continues (config, history, best checkpoint, CSV rows,
    W&B run). Ctrl-C or a failure during training still writes the report, plots
    and summary (``status`` "interrupted" / "failed"), then re-raises. A run that
    ``trainer.max_time`` stopped before its planned end has ``status`` "time_limit".

    Raises:
        ValueError / FileNotFoundError: a bad setting, named in one line, before
            anything is written; ``optimized_metric`` that was never logged.
        FolderLockedError: another run holds ``cfg.paths.run_dir`` (one line, at once).
    """
    configure_sweep_job(cfg)
    cfg, resume = _resume_config(cfg)
    _check_config(cfg)
    if resume and resume["wandb_id"] and (cfg.get("logger") or {}).get("wandb"):
        with open_dict(cfg):  # continue the same W&B run
            cfg.logger.wandb.id = resume["wandb_id"]
            cfg.logger.wandb.resume = "allow"
    run_dir = Path(cfg.paths.run_dir)
    if rank_zero_only.rank != 0:  # DDP's other processes: rank 0 holds the run folder
        return _train(cfg, resume, run_dir)
    # Two runs in one folder would mix their CSV rows, checkpoints and reports: the second stops here.
    with lock_folder(run_dir, "run folder (paths.run_dir)"):
        return _train(cfg, resume, run_dir)


def _train(cfg: DictConfig, resume: dict[str, Any] | None, run_dir: Path) -> float | None:
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    parts = instantiate_run(cfg, resolved)
    trainer: L.Trainer = parts["trainer"]
    parts["datamodule"].trainer = trainer
    parts["datamodule"].setup("fit")  # data errors (bad root, too few images) before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # every DDP process runs this; one writes
        write_text(run_dir / "config.yaml", OmegaConf.to_yaml(resolved))
        if resume:
            old_csv = Path(cfg.ckpt_path).resolve().parent.parent / "csv" / "metrics.csv"
            continue_csv(run_dir / "csv" / "metrics.csv", old_csv, resume["global_step"])
    state = callback(trainer, RunState)
    status, error = "finished", None
    try:
        for logger in trainer.loggers:  # W&B starts here (an online login may fail): inside, so a report is written
            logger.log_hyperparams(resolved)
            if isinstance(logger, WandbLogger) and trainer.is_global_zero:
                state.wandb_id = logger.experiment.id
        trainer.fit(parts["module"], datamodule=parts["datamodule"], ckpt_path=cfg.get("ckpt_path"))
    except BaseException as exc:
        # Lightning turns Ctrl-C into SystemExit(1), and SIGTERM into a SystemExit subclass.
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        status, error = ("interrupted" if interrupted else "failed"), exc
        if interrupted:
            error = ("interrupted by SIGTERM" if type(exc).__name__ == "SIGTERMException"
                     else "interrupted by Ctrl-C (SIGINT)")
        for cb in (callback(trainer, MetricHistory), callback(trainer, ErrorHistograms)):
            if cb is not None:
                cb.write_plot(trainer)
        raise
    finally:
        stopped = _time_limit(trainer) if status == "finished" else None
        if stopped:
            status = "time_limit"
        report = build_report(trainer, run_dir, cfg, parts["module"].net.name, status,
                              None if error is None else one_line(error))
        if stopped:
            report["time_limit"] = {**stopped, "schedule": bool(cfg.get("scheduler"))}
        if trainer.is_global_zero:
            report = write_report(report, run_dir)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and trainer.is_global_zero and wandb_started(logger):
                log_to_wandb(trainer, report)
                logger.experiment.finish(exit_code=0 if status in ("finished", "time_limit") else 1)
        if trainer.is_global_zero:
            print_summary(report)
    return _optimized_value(cfg, report)


def _time_limit(trainer: L.Trainer) -> dict[str, Any] | None:
    """``max_time``, steps done and planned, when ``trainer.max_time`` ended the run before its planned end."""
    from lightning.pytorch.callbacks import Timer

    timer = callback(trainer, Timer)
    remaining = timer.time_remaining("train") if timer is not None else None
    if remaining is None or remaining > 0:
        return None
    try:
        planned = trainer.estimated_stepping_batches
    except Exception:  # noqa: BLE001 - no finite length (max_epochs=-1): any stop by time is early
        planned = float("inf")
    if trainer.global_step >= planned:
        return None
    return {"max_time_s": round(timer._duration, 3) if timer._duration else None, "steps": trainer.global_step,
            "planned_steps": planned if planned != float("inf") else None}


def _optimized_value(cfg: DictConfig, report: dict[str, Any]) -> float | None:
    metric = cfg.get("optimized_metric")
    if not metric:
        return None
    value = report["final"].get(metric, report["history"][-1].get(metric) if report["history"] else None)
    if metric not in report["final"] and not any(metric in row for row in report["history"]):
        logged = sorted({k for row in report["history"] for k in row if "/" in k})
        raise ValueError(f"optimized_metric={metric} was never logged; logged metrics: {', '.join(logged) or 'none'}")
    return None if value is None else float(value)
