"""steg.training.callbacks.DivergenceGuard: a blown-up validation loss rolls the run back to its best epoch."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from steg.training.callbacks import DivergenceGuard


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


@pytest.mark.parametrize("kwargs", [{"ratio": 1.0}, {"lr_factor": 1.5}, {"lr_factor": 0.0}, {"train_ratio": 0.5},
                                    {"snapshot_every": 0}])
def test_bad_settings_are_one_line_errors(kwargs):
    with pytest.raises(ValueError, match="divergence_guard"):
        DivergenceGuard(**kwargs)


# -- the training loss between validations ------------------------------------------------
class BlowUp(L.Callback):
    """Make the training loss explode mid-epoch: the weights are wrecked at the end of step ``at``.

    The step's own loss was good; the next step's is not. Placed before the guard in the callbacks,
    so that the guard's snapshot of step ``at`` is of the wreck (it must not be trusted).
    """

    def __init__(self, at: int, value: float = 1e3):
        self.at, self.value, self.wrecked = at, value, False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.at and not self.wrecked:
            self.wrecked = True
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(self.value)


class StepLosses(L.Callback):
    """The loss of every training step, and the weights and rate after it."""

    def __init__(self):
        self.losses, self.lrs = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def fit_steps(module, guard, blow_up, epochs=3):
    steps = StepLosses()
    trainer = L.Trainer(max_epochs=epochs, callbacks=[blow_up, guard, steps], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, *loaders())  # 4 steps an epoch: step 6 is mid-epoch 1
    return trainer, steps


@pytest.mark.parametrize("value", [1e3, float("nan")], ids=["exploding", "nan"])
def test_a_training_loss_that_blows_up_between_validations_rolls_back_to_the_last_good_step(value, capsys):
    torch.manual_seed(0)
    guard = DivergenceGuard(snapshot_every=2, train_warmup=3)
    trainer, steps = fit_steps(Regression(), guard, BlowUp(at=6, value=value))
    said = [line for line in capsys.readouterr().err.splitlines() if "divergence guard" in line]
    assert len(said) == 1 and "training loss" in said[0] and "at step 7" in said[0], said
    assert len(guard.events) == 1
    event = guard.events[0]
    # step 6's snapshot holds the wreck (its loss, step 7's, was never good): step 4's comes back
    assert event["kind"] == "train" and event["restored_step"] == 4 and event["epoch"] == 1
    assert not math.isfinite(steps.losses[6]) or steps.losses[6] > 100 * steps.losses[5]  # the blow-up
    assert steps.lrs[6] == pytest.approx(event["lr"]) and steps.lrs[6] < 0.55 * steps.lrs[5]
    assert trainer.global_step == 12  # training went on, from the good weights
    assert all(torch.isfinite(p).all() for p in trainer.lightning_module.parameters())
    assert max(steps.losses[7:]) < steps.losses[0]  # back where it was, not training on from the wreck


def test_without_the_training_check_the_run_trains_on_from_the_wreck():
    torch.manual_seed(0)
    guard = DivergenceGuard(train_ratio=None)
    trainer, steps = fit_steps(Regression(), guard, BlowUp(at=6, value=1e3), epochs=2)
    assert [e for e in guard.events if e.get("kind") == "train"] == []
    assert min(steps.losses[6:]) > 100 * steps.losses[5]  # what the guard prevents


def test_a_healthy_run_has_no_training_rollback():
    torch.manual_seed(0)
    guard = DivergenceGuard(snapshot_every=1, train_warmup=1)
    _, steps = fit_steps(Regression(), guard, BlowUp(at=10**6))
    assert guard.events == [] and guard.train_level is not None and len(steps.losses) == 12


def test_training_rollbacks_count_towards_max_rollbacks_and_then_stop_with_good_weights():
    torch.manual_seed(0)
    guard = DivergenceGuard(max_rollbacks=0, snapshot_every=1, train_warmup=1)
    trainer, steps = fit_steps(Regression(), guard, BlowUp(at=6, value=float("nan")), epochs=6)
    assert guard.events == [] and trainer.global_step < 24
    assert all(torch.isfinite(p).all() for p in trainer.lightning_module.parameters())


def test_train_with_callbacks_guarded_reports_a_training_rollback(tmp_path, capfd):
    """`python train.py callbacks=guarded` on the sample photos, its loss made to explode mid-epoch."""
    import json

    from omegaconf import open_dict

    from conftest import compose_train, tiny
    from steg.training.loop import train

    cfg = tiny(compose_train(["callbacks=guarded", "logger=csv", "model=unet"]), tmp_path / "run")
    with open_dict(cfg):
        cfg.data.train_repeats = 4  # 6 steps an epoch
        cfg.callbacks.divergence_guard.snapshot_every = 2
        cfg.callbacks.divergence_guard.train_warmup = 2
        cfg.callbacks.blow_up = {"_target_": "test_callbacks.BlowUp", "at": 3, "value": float("nan")}
    train(cfg)
    err = capfd.readouterr().err
    assert "divergence guard: training loss nan at step 4" in err and "restored step 2's weights" in err
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [(e["kind"], e["step"], e["restored_step"]) for e in report["rollbacks"]] == [("train", 4, 2)]
    assert report["status"] == "finished" and report["steps"] == 6
    assert report["final"]["val/psnr_stego"] > 20  # validated on the restored, finite weights


def test_a_non_finite_first_validation_is_a_rollback_not_a_crash(capsys):
    """Diverged before any good validation (hinet at the paper's size did): the rate drops, no weights to restore."""
    torch.manual_seed(0)
    guard = DivergenceGuard(train_ratio=None)
    trainer, _ = fit(Regression(wreck_at=0, wreck_value=float("nan")), guard, epochs=1)
    said = [line for line in capsys.readouterr().err.splitlines() if "divergence guard" in line]
    assert len(said) == 1 and "(best none yet)" in said[0] and "no weights to restore" in said[0]
    assert guard.events[0]["kind"] == "val" and guard.events[0]["restored_epoch"] is None
