"""What a checkpoint holds, how it is written, and how a run resumes from it.

- :class:`AtomicCheckpointIO`: every checkpoint goes through :func:`steg.io.write_atomic`
  (temporary file next to the target, fsync, rename): a kill during a write leaves the
  previous file.
- :class:`StegCheckpoint`: Lightning's ``ModelCheckpoint`` that writes ``last.ckpt`` after
  every epoch (Lightning 2.6 writes it only when the top-k file changes) and keeps
  ``best.ckpt`` truly best across a resume into another or a moved folder.
- :class:`RunState`: the run's resolved config, W&B run id and training wall time,
  kept in every checkpoint so that ``ckpt_path=...`` needs no override repeated.
- :class:`EpochSeed`: reseeds Python, NumPy and torch from (seed, epoch, batch, rank)
  before every training step.
- :class:`ContinuedCSVLogger`: Lightning's CSV logger, appending to an existing
  ``metrics.csv`` instead of deleting it.

**Exact resume, by construction.** Rather than saving and restoring generator states and
a sampler position, every source of randomness is a function of (``seed``, epoch): the
training order and each pair's crops, flips and random partner come from
:class:`steg.data.pairs.EpochSampler` (seeded per epoch and per item, so DataLoader
workers and DDP ranks do not matter), and the global generators (noise layers, anything
else) are reseeded by :class:`EpochSeed` before each training step. ``last.ckpt`` is written at
every epoch end, so a run killed at any point and resumed from it replays exactly the
epochs an uninterrupted run would (``tests/test_resume.py`` kills one with SIGKILL). With
``seed: null`` nothing is seeded and a resume is not exact.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only

from steg.io import write_atomic

__all__ = [
    "AtomicCheckpointIO",
    "StegCheckpoint",
    "RunState",
    "EpochSeed",
    "FinishAtMaxSteps",
    "ContinuedCSVLogger",
    "epoch_seed",
    "read_checkpoint",
    "continue_csv",
]


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into a temporary file next to the target, fsync, rename (:func:`steg.io.write_atomic`)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        write_atomic(path, lambda tmp: torch.save(checkpoint, tmp))


class StegCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` with a last checkpoint after every epoch and a best one that survives a resume.

    Same arguments as Lightning's; ``enable_version_counter`` defaults to False so
    that a resumed run overwrites ``best.ckpt``/``last.ckpt`` rather than writing
    ``best-v1.ckpt`` beside a stale one.

    On resume from a checkpoint written in another folder (a new run folder, or
    the same folder moved or copied), the best score is restored and the best
    file is found in, or copied into, this run's folder, so that ``best.ckpt``
    stays the best epoch of the whole run.
    """

    def __init__(self, *args: Any, enable_version_counter: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, enable_version_counter=enable_version_counter, **kwargs)
        self._last_saved_at: int | None = None

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_saved_at = trainer.global_step

    def _ensure_last(self, trainer: L.Trainer) -> None:
        skip = trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING
        if self.save_last and not skip and self._last_saved_at != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):  # else top-k is saved at epoch end, then last
            self._ensure_last(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._ensure_last(trainer)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_dir = state_dict.get("dirpath", self.dirpath)
        if old_dir == self.dirpath or self.dirpath is None:
            super().load_state_dict(state_dict)
            return
        best, score = state_dict.get("best_model_path"), state_dict.get("best_model_score")
        self.best_model_path = ""
        if not best or score is None:
            return
        here = Path(self.dirpath) / Path(best).name
        if not here.is_file() and Path(best).is_file() and rank_zero_only.rank == 0:
            write_atomic(here, lambda tmp: shutil.copyfile(best, tmp))  # resume into a new folder
        if here.is_file():  # copied above, or the same folder moved / copied
            self.best_model_path = self.kth_best_model_path = str(here)
            self.best_model_score = self.kth_value = score
            self.best_k_models = {str(here): score}


class FinishAtMaxSteps(L.Callback):
    """At ``trainer.max_steps`` mid-epoch, stop the way ``max_time`` does: validate, then save.

    Lightning otherwise ends the run at ``max_steps`` without validating or
    writing a checkpoint for the steps since the last epoch end.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if 0 < trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True


def epoch_seed(seed: int, epoch: int, *more: int) -> int:
    """A 32-bit seed that depends on ``seed``, ``epoch`` and ``more`` (e.g. the rank or an item index).

    >>> epoch_seed(42, 0) == epoch_seed(42, 0) != epoch_seed(42, 1)
    True
    """
    return int(np.random.SeedSequence([int(seed), int(epoch), *map(int, more)]).generate_state(1)[0])


class EpochSeed(L.Callback):
    """Reseed Python, NumPy and torch (CPU and CUDA) from (seed, epoch, batch, global rank) before every step.

    Makes the global generators' use in a training step (noise layers, anything
    not seeded per item) independent of what ran before it (a resumed run's
    sanity check and DataLoader set-up draw from them in another order), so a
    resumed run draws what the uninterrupted run drew. ``seed=None``: nothing is done.
    """

    def __init__(self, seed: int | None):
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self.seed is None:
            return
        value = epoch_seed(self.seed, trainer.current_epoch, batch_idx, trainer.global_rank)
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)


class RunState(L.Callback):
    """Keeps the run's resolved config, W&B run id and training wall time in every checkpoint.

    ``wall_time_s`` counts training time (fit start to now) over every resumed
    segment. Before each checkpoint is written, the CSV loggers are flushed so
    that ``csv/metrics.csv`` holds every row the checkpoint's history holds.
    """

    def __init__(self, config: dict[str, Any] | None = None):
        self.config = config
        self.wandb_id: str | None = None
        self.elapsed_before = 0.0
        self._started: float | None = None

    @property
    def wall_time_s(self) -> float:
        return self.elapsed_before + (time.monotonic() - self._started if self._started is not None else 0.0)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.monotonic()

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger):
                logger.save()

    def state_dict(self) -> dict[str, Any]:
        return {"config": self.config, "wandb_id": self.wandb_id, "wall_time_s": self.wall_time_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.elapsed_before = float(state_dict.get("wall_time_s") or 0.0)
        self.wandb_id = self.wandb_id or state_dict.get("wandb_id")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The steg parts of a training checkpoint: ``config``, ``wandb_id``, ``global_step``, ``arch_config``.

    Raises ValueError (one line, naming ``ckpt_path``) for a missing file or one
    that is not a training checkpoint written by train.py.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint file at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (pickle/zip/torch errors alike)
        raise ValueError(f"ckpt_path={path} is not a readable training checkpoint ({type(exc).__name__})") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "global_step" not in ckpt:
        raise ValueError(f"ckpt_path={path} is not a training checkpoint written by train.py (no state_dict/global_step)")
    state = next((v for k, v in (ckpt.get("callbacks") or {}).items() if str(k).startswith("RunState")), {})
    return {
        "config": state.get("config"),
        "wandb_id": state.get("wandb_id"),
        "global_step": int(ckpt["global_step"]),
        "arch_config": ckpt.get("arch_config"),
    }


def continue_csv(target: Path, source: Path | None, before_step: int) -> None:
    """Make ``target`` (a run's ``csv/metrics.csv``) hold the rows of ``source`` logged before ``before_step``.

    ``source`` is the resumed run's CSV (the same file when resuming in place).
    Rows at or after ``before_step`` (logged after the checkpoint was written, by
    a run that was then killed) are dropped, so that rows are not repeated.
    """
    source = source if source is not None and source.is_file() else (target if target.is_file() else None)
    if source is None:
        return
    with open(source, newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames or [], [r for r in reader if _step(r) < before_step]

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(target, write)


def _step(row: dict[str, str]) -> int:
    try:
        return int(float(row.get("step") or 0))
    except ValueError:
        return 0


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer without its deletion of an existing ``metrics.csv``: it appends."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as fh:
                self.metrics_keys = list(csv.DictReader(fh).fieldnames or [])


class ContinuedCSVLogger(CSVLogger):
    """``CSVLogger`` that continues an existing ``metrics.csv`` (resume) instead of deleting it."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
