"""Lightning callbacks that write the run's pictures and keep its history.

- :class:`ImageGrids`: every validation epoch, a cover | secret | stego |
  revealed | residual grid as PNG, also logged to W&B.
- :class:`ErrorHistograms`: absolute pixel errors (0-255) of stego vs cover and
  revealed vs secret over the validation set; PNG at the end of training.
- :class:`MetricHistory`: epoch-level metrics, kept in the checkpoint so that a
  resumed run's curves cover the whole run; loss curves PNG at the end.

All files are written by global rank 0 only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger

from steg.plots import comparison_grid, plot_curves, plot_error_histograms, save_image_atomic

__all__ = ["ImageGrids", "ErrorHistograms", "MetricHistory"]


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
            err = ((outputs[pred] - outputs[target]).abs() * 255.0).round().long().clamp(0, 255)
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
