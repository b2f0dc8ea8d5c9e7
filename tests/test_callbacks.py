"""steg.callbacks.DivergenceGuard: a blown-up validation loss rolls the run back to its best epoch."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from steg.callbacks import DivergenceGuard


class Regression(L.LightningModule):
    """Least squares on a fixed linear target; ``wreck_at``: the epoch whose validation sees wrecked weights."""

    def __init__(self, wreck_at: int | None = None, wreck_value: float = 1e3):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.wreck_at, self.wreck_value = wreck_at, wreck_value

    def loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def training_step(self, batch, batch_idx):
        return self.loss(batch)

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.loss(batch))

    def on_validation_epoch_start(self):
        if self.current_epoch == self.wreck_at and not self.trainer.sanity_checking:
            with torch.no_grad():
                self.layer.weight.fill_(self.wreck_value)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=0.05)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class Probe(L.Callback):
    """After each validation (and after the guard): the weights and the learning rate."""

    def __init__(self):
        self.weights, self.lrs = {}, {}

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.weights[trainer.current_epoch] = pl_module.layer.weight.detach().clone()
            self.lrs[trainer.current_epoch] = trainer.optimizers[0].param_groups[0]["lr"]


def loaders():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=16), DataLoader(data, batch_size=64)


def fit(module, guard, epochs=6):
    probe = Probe()
    trainer = L.Trainer(max_epochs=epochs, callbacks=[guard, probe], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, *loaders())
    return trainer, probe


def test_a_blown_up_loss_restores_the_best_weights_and_halves_the_learning_rate(capsys):
    torch.manual_seed(0)
    guard = DivergenceGuard(ratio=2.0, lr_factor=0.5)
    trainer, probe = fit(Regression(wreck_at=3), guard)
    said = [line for line in capsys.readouterr().err.splitlines() if "divergence guard" in line]
    assert len(said) == 1 and "at epoch 3" in said[0] and "restored epoch 2's weights" in said[0]
    assert len(guard.events) == 1
    event = guard.events[0]
    assert event["epoch"] == 3 and event["restored_epoch"] == 2 and event["value"] > 2 * event["best"]
    assert torch.equal(probe.weights[3], probe.weights[2])  # the wreck is gone: epoch 2's weights are back
    # the rate drops from where the schedule was (epoch 3's) to half of it, and stays on the lowered schedule
    lr_before = trainer.lr_scheduler_configs[0].scheduler.base_lrs[0] / 0.5
    assert probe.lrs[3] == pytest.approx(event["lr"]) and probe.lrs[3] < probe.lrs[2] * 0.55
    assert lr_before == pytest.approx(0.05)
    assert trainer.current_epoch == 6  # training went on
    assert probe.weights[5].abs().max() < 100  # and did not return to the wreck


def test_a_healthy_run_is_left_alone():
    torch.manual_seed(0)
    guard = DivergenceGuard()
    _, probe = fit(Regression(), guard)
    assert guard.events == [] and guard.best_epoch == 5
    assert probe.lrs[5] > 0.5 * 0.05 * 0.5  # the cosine schedule's own rate, not halved


def test_past_max_rollbacks_a_divergence_stops_the_run():
    torch.manual_seed(0)
    guard = DivergenceGuard(max_rollbacks=0)
    trainer, probe = fit(Regression(wreck_at=2, wreck_value=float("nan")), guard, epochs=8)
    assert guard.events == [] and trainer.current_epoch < 8 and max(probe.weights) == 2


def test_the_divergence_rule_scales_with_the_best_value_whatever_its_sign():
    guard = DivergenceGuard(ratio=2.0)
    guard.best = 0.005
    assert not guard.diverged(0.0099) and guard.diverged(0.0101) and guard.diverged(float("nan"))
    guard.best = -30.0  # a compound loss with PSNR terms can be negative: a rise of 30 is a doubling
    assert not guard.diverged(-29.0) and not guard.diverged(-1.0) and guard.diverged(0.5)


def test_state_survives_a_checkpoint_round_trip():
    guard = DivergenceGuard()
    guard.best, guard.best_epoch, guard.events = 0.1, 4, [{"epoch": 7, "lr": 1e-4}]
    again = DivergenceGuard()
    again.load_state_dict(guard.state_dict())
    assert (again.best, again.best_epoch, again.events) == (0.1, 4, [{"epoch": 7, "lr": 1e-4}])


@pytest.mark.parametrize("kwargs", [{"ratio": 1.0}, {"lr_factor": 1.5}, {"lr_factor": 0.0}])
def test_bad_settings_are_one_line_errors(kwargs):
    with pytest.raises(ValueError, match="divergence_guard"):
        DivergenceGuard(**kwargs)
