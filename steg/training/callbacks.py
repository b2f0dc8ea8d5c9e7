"""Lightning callbacks that write the run's pictures and keep its history.

- :class:`ImageGrids`: every validation epoch, a cover | secret | stego |
  revealed | residual grid as PNG, also logged to W&B.
- :class:`ErrorHistograms`: absolute pixel errors (0-255) of stego vs cover and
  revealed vs secret over the validation set; PNG at the end of training.
- :class:`MetricHistory`: epoch-level metrics, kept in the checkpoint so that a
  resumed run's curves cover the whole run; loss curves PNG at the end.
- :class:`DivergenceGuard`: when the validation loss blows up, put back the
  best epoch's weights and optimizer state and go on at a lower learning rate;
  when the training loss does (non-finite, or far above its running level)
  between validations, put back the last good snapshot (kept every N steps).

All files are written by global rank 0 only.
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from steg.report.plots import comparison_grid, plot_curves, plot_error_histograms, save_image_atomic

__all__ = ["ImageGrids", "ErrorHistograms", "MetricHistory", "DivergenceGuard"]


class ImageGrids(L.Callback):
    """Save the first validation batch as a comparison grid every validation epoch."""

    def __init__(self, dirpath: str, rows: int = 4, amplify: float = 10.0):
        self.dirpath = Path(dirpath)
        self.rows = rows
        self.amplify = amplify
        self.last_path: Path | None = None
        self._batch: dict[str, torch.Tensor] | None = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0 and isinstance(outputs, dict):
            self._batch = {k: v[: self.rows].detach().cpu() for k, v in outputs.items()}

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or self._batch is None or not trainer.is_global_zero:
            return
        grid = comparison_grid(**self._batch, amplify=self.amplify, max_rows=self.rows)
        self.last_path = save_image_atomic(grid, self.dirpath / f"epoch_{trainer.current_epoch:03d}.png")
        caption = f"epoch {trainer.current_epoch}: cover | secret | stego | revealed | residual x{self.amplify:g}"
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/grid", [grid], step=trainer.global_step, caption=[caption])
        self._batch = None


class ErrorHistograms(L.Callback):
    """Count absolute 8-bit pixel errors over each validation epoch; plot the last."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.counts: dict[str, torch.Tensor] = {}
        self.epoch = 0

    def on_validation_epoch_start(self, trainer, pl_module):
        self.counts = {}

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not isinstance(outputs, dict):
            return
        pairs = {"stego vs cover": ("stego", "cover"), "revealed vs secret": ("revealed", "secret")}
        for name, (pred, target) in pairs.items():
            err = ((outputs[pred].float() - outputs[target].float()).abs() * 255.0).round().long().clamp(0, 255)
            counts = torch.bincount(err.flatten(), minlength=256)
            self.counts[name] = self.counts.get(name, 0) + counts

    def on_validation_epoch_end(self, trainer, pl_module):
        # Sum the counts over processes so the histogram covers the whole set.
        self.counts = {k: trainer.strategy.reduce(v.float(), reduce_op="sum").cpu() for k, v in self.counts.items()}
        self.epoch = trainer.current_epoch

    def on_fit_end(self, trainer, pl_module):
        self.write_plot(trainer)

    def write_plot(self, trainer) -> None:
        """Plot the last validation epoch's counts (also called by train() after Ctrl-C or a failure)."""
        if trainer.is_global_zero and self.counts:
            plot_error_histograms(self.counts, self.path,
                                  title=f"validation pixel errors after epoch {self.epoch}")


class MetricHistory(L.Callback):
    """Epoch-level metrics (one dict per epoch); saved in checkpoints for resume."""

    def __init__(self, curves_path: str):
        self.curves_path = Path(curves_path)
        self.history: list[dict[str, float]] = []

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1 and k.startswith("val/")})
        self._merge(row)

    def on_train_epoch_end(self, trainer, pl_module):
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items()
                    if v.numel() == 1 and k.startswith("train/") and not k.endswith("_step")})
        row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else float("nan")
        self._merge(row)

    def _merge(self, row: dict[str, float]) -> None:
        if self.history and self.history[-1]["epoch"] == row["epoch"]:
            self.history[-1].update(row)
        else:
            self.history.append(row)

    def on_fit_end(self, trainer, pl_module):
        self.write_plot(trainer)

    def write_plot(self, trainer) -> None:
        """Loss curves of the whole history (also called by train() after Ctrl-C or a failure)."""
        if trainer.is_global_zero and self.history:
            plot_curves(self.history, self.curves_path)

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(r) for r in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(r) for r in state_dict.get("history", [])]


@rank_zero_only
def _say(line: str) -> None:
    """One line on stderr from the first process only (a warning would add its source line)."""
    print(line, file=sys.stderr, flush=True)


class DivergenceGuard(L.Callback):
    """Roll a diverging run back to good weights and go on at a lower learning rate.

    At validation: while ``monitor`` (a loss, lower is better) improves, the module's
    weights and the optimizers' states are copied (on the CPU). When it is not finite or
    more than ``ratio`` times the best value (:meth:`diverged`), the copy is put back and
    every optimizer's learning rate (and each scheduler's base rates) is multiplied by
    ``lr_factor``, so the rest of the budget trains from the best point instead of from
    the wreck.

    Between validations (``train_ratio`` not None): after every training step the step's
    loss is checked (:meth:`train_diverged`). When it is not finite, or above its running
    level (an exponential average of the good steps' losses, once ``train_warmup`` of
    them are seen) by more than ``(train_ratio - 1)`` times that level, the last good
    snapshot is put back and the learning rate lowered the same way. Snapshots (weights
    and optimizer states, copied on their device) are taken at the start and every
    ``snapshot_every`` steps, and count as good once the next step's loss, which is that
    of the snapshot's weights, is good. Under DDP every process rolls back when any one
    sees a bad loss. The check reads the loss on the host once a step.

    After ``max_rollbacks`` rollbacks (both kinds) a further divergence stops the run
    (a training one after putting the good weights back). Each rollback is one line on
    stderr and a row of :attr:`events` (``kind`` "val" or "train"; in ``metrics.json``
    as ``rollbacks``).

    The invertible ``hinet`` needs it on a CPU budget: with Adam at 1e-4 its validation
    loss went from 0.005 to 0.012 in one epoch, then to 10^6 (experiments/hinet); at the
    paper's size on a GPU its training loss reached 10^19 before the first validation.
    """

    def __init__(self, monitor: str = "val/loss", ratio: float = 2.0, lr_factor: float = 0.5, max_rollbacks: int = 5,
                 train_ratio: float | None = 10.0, snapshot_every: int = 50, train_warmup: int = 10):
        if not ratio > 1.0:
            raise ValueError(f"callbacks.divergence_guard.ratio must be > 1, got {ratio}")
        if not 0.0 < lr_factor < 1.0:
            raise ValueError(f"callbacks.divergence_guard.lr_factor must be in (0, 1), got {lr_factor}")
        if train_ratio is not None and not train_ratio > 1.0:
            raise ValueError(f"callbacks.divergence_guard.train_ratio must be > 1 (or null: no training check), got {train_ratio}")
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"callbacks.divergence_guard.snapshot_every must be a whole number of steps >= 1, got {snapshot_every!r}")
        self.monitor, self.ratio, self.lr_factor, self.max_rollbacks = monitor, float(ratio), float(lr_factor), int(max_rollbacks)
        self.train_ratio = None if train_ratio is None else float(train_ratio)
        self.snapshot_every, self.train_warmup = snapshot_every, int(train_warmup)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.events: list[dict[str, Any]] = []
        self._snapshot: dict[str, Any] | None = None
        # training-loss check: running level, good snapshot, snapshot waiting for the next step's loss
        self.train_level: float | None = None
        self._good_steps = 0
        self._good: dict[str, Any] | None = None
        self._pending: dict[str, Any] | None = None

    @staticmethod
    def _copy(trainer, pl_module, device: str | None = None) -> dict[str, Any]:
        """The module's weights and the optimizers' states, copied (to ``device``, else where they are)."""
        return {
            "step": trainer.global_step,
            "module": {k: v.detach().to(device or v.device, copy=True) for k, v in pl_module.state_dict().items()},
            "optimizers": [copy.deepcopy(opt.state_dict()) for opt in trainer.optimizers],
        }

    @staticmethod
    def _restore_keeping_rates(trainer, pl_module, snapshot: dict[str, Any]) -> None:
        """Put back the snapshot's weights and optimizer states; the learning rates stay those in use now."""
        rates = [[group["lr"] for group in opt.param_groups] for opt in trainer.optimizers]
        pl_module.load_state_dict(snapshot["module"])
        for opt, state, lrs in zip(trainer.optimizers, snapshot["optimizers"], rates):
            opt.load_state_dict(copy.deepcopy(state))
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"] = lr

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if math.isfinite(value) and (self.best is None or value < self.best):
            self.best, self.best_epoch = value, trainer.current_epoch
            self._snapshot = self._copy(trainer, pl_module, "cpu")
        elif self.diverged(value):
            self._roll_back(trainer, pl_module, value)

    def diverged(self, value: float) -> bool:
        """Not finite, or above the best by more than (ratio - 1) x |best|: for a positive loss,
        more than ratio x best; a loss that can be negative (PSNR terms) is handled the same way."""
        return _rose(value, self.best, self.ratio)

    # -- the training loss, between validations ---------------------------------------
    def on_train_start(self, trainer, pl_module):
        if self.train_ratio is not None:
            self._good, self._pending = self._copy(trainer, pl_module), None

    def train_diverged(self, value: float) -> bool:
        """The training rule: not finite, or (after ``train_warmup`` good steps) above the running
        level by more than (train_ratio - 1) x |level|."""
        if not math.isfinite(value):
            return True
        level = self.train_level if self._good_steps >= self.train_warmup else None
        return _rose(value, level, self.train_ratio)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.train_ratio is None or self._good is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        value = float(loss.detach())
        bad = trainer.strategy.reduce_boolean_decision(self.train_diverged(value), all=False)
        if bad:
            self._roll_back_training(trainer, pl_module, value)
            return
        self._good_steps += 1
        self.train_level = value if self.train_level is None else 0.9 * self.train_level + 0.1 * value
        if self._pending is not None:  # this step's loss is that of the pending snapshot's weights: good
            self._good, self._pending = self._pending, None
        if trainer.global_step % self.snapshot_every == 0:
            self._pending = self._copy(trainer, pl_module)

    def _roll_back_training(self, trainer, pl_module, value: float) -> None:
        good = self._good
        level = "none yet" if self.train_level is None else f"{self.train_level:.4g}"
        where = f"training loss {value:.4g} at step {trainer.global_step} (running level {level})"
        self._restore_keeping_rates(trainer, pl_module, good)
        self._pending = None
        if len(self.events) >= self.max_rollbacks:
            _say(f"divergence guard: {where}, after {len(self.events)} rollbacks: restored step {good['step']}'s "
                 "weights and stopping the run")
            trainer.should_stop = True
            return
        new_lr = self._lower_learning_rates(trainer)
        self.events.append({"kind": "train", "epoch": trainer.current_epoch, "step": trainer.global_step,
                            "value": value, "level": self.train_level, "restored_step": good["step"], "lr": new_lr})
        _say(f"divergence guard: {where}: restored step {good['step']}'s weights, "
             f"learning rate x{self.lr_factor:g} -> {new_lr:.3g}")

    def _lower_learning_rates(self, trainer) -> float:
        """Multiply every optimizer's learning rates and every scheduler's base rates by ``lr_factor``."""
        for opt in trainer.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["lr"] * self.lr_factor
        for config in trainer.lr_scheduler_configs:
            if hasattr(config.scheduler, "base_lrs"):
                config.scheduler.base_lrs = [lr * self.lr_factor for lr in config.scheduler.base_lrs]
        return trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")

    def _roll_back(self, trainer, pl_module, value: float) -> None:
        best = "none yet" if self.best is None else f"{self.best:.4g}, epoch {self.best_epoch}"
        where = f"{self.monitor} {value:.4g} at epoch {trainer.current_epoch} (best {best})"
        if len(self.events) >= self.max_rollbacks:
            _say(f"divergence guard: {where}, after {len(self.events)} rollbacks: stopping the run")
            trainer.should_stop = True
            return
        if self._snapshot is not None:  # none right after a resume: then only the learning rate drops
            self._restore_keeping_rates(trainer, pl_module, self._snapshot)
        new_lr = self._lower_learning_rates(trainer)
        if self.train_ratio is not None:  # the restored weights are the good point of the training check too
            self._good, self._pending = self._copy(trainer, pl_module), None
        self.events.append({"kind": "val", "epoch": trainer.current_epoch, "step": trainer.global_step, "value": value,
                            "best": self.best, "restored_epoch": self.best_epoch if self._snapshot else None,
                            "lr": new_lr})
        restored = f"restored epoch {self.best_epoch}'s weights" if self._snapshot else "no weights to restore"
        _say(f"divergence guard: {where}: {restored}, learning rate x{self.lr_factor:g} -> {new_lr:.3g}")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "events": [dict(e) for e in self.events],
                "train_level": self.train_level, "good_steps": self._good_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best, self.best_epoch = state_dict.get("best"), state_dict.get("best_epoch")
        self.events = [dict(e) for e in state_dict.get("events", [])]
        self.train_level, self._good_steps = state_dict.get("train_level"), int(state_dict.get("good_steps", 0))


def _rose(value: float, reference: float | None, ratio: float) -> bool:
    """Not finite, or above ``reference`` by more than (ratio - 1) x |reference| (None: only non-finite counts)."""
    if not math.isfinite(value):
        return True
    return reference is not None and value - reference > (ratio - 1.0) * abs(reference)
