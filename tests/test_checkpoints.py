"""Checkpoints, run status and the report: atomic writes, last.ckpt every epoch, max_steps, Ctrl-C,
failures, strict JSON, config restore on resume (in-process, tiny CPU runs)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from conftest import compose_train, tiny
from steg.training.checkpoints import AtomicCheckpointIO, read_checkpoint
from steg.io import json_safe
from steg.training.summary import write_report
from steg.training.loop import _optimized_value, instantiate_run, restore_config, train


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_failed_checkpoint_write_keeps_the_previous_file_and_no_temp_file(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "best.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()

    def half_then_fail(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"\x00" * 10)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.ckpt"]


def test_last_checkpoint_is_written_every_epoch_when_val_loss_plateaus(tiny_cfg, tmp_path):
    cfg = tiny_cfg(["optimizer.lr=0", "scheduler=none"])  # nothing learns: val/loss never improves
    with open_dict(cfg):
        cfg.trainer.max_epochs = 3
    train(cfg)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert _ckpt(checkpoints / "last.ckpt")["epoch"] == 2
    assert _ckpt(checkpoints / "best.ckpt")["epoch"] == 0
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["status"] == "finished" and report["epochs"] == 3 and report["wall_time_s"] > 0
    assert [row["epoch"] for row in report["history"]] == [0, 1, 2] and "step" in report["history"][0]


def test_max_steps_mid_epoch_validates_and_saves_the_last_steps(tiny_cfg, tmp_path, monkeypatch):
    from lightning.pytorch.utilities import rank_zero_only

    cfg = tiny_cfg()
    with open_dict(cfg):
        cfg.data.train_repeats = 4  # 6 steps per epoch
        cfg.trainer.max_epochs = 5
        cfg.trainer.max_steps = 8  # ends 2 steps into epoch 1
    monkeypatch.setattr(rank_zero_only, "rank", 1)  # as a DDP process other than rank 0: no config.yaml
    train(cfg)
    run = tmp_path / "run"
    last = _ckpt(run / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 8
    report = json.loads((run / "metrics.json").read_text())
    assert report["steps"] == 8 and report["final"]["step"] == 8 and report["final"]["epoch"] == 1
    assert not (run / "config.yaml").exists()


class _StopAt(L.Callback):
    def __init__(self, epoch: int, exc: BaseException):
        self.epoch, self.exc = epoch, exc

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise self.exc


def _train_with(cfg, callback):
    import steg.training.loop as training

    original = training.instantiate_run

    def patched(*args, **kwargs):
        parts = original(*args, **kwargs)
        parts["trainer"].callbacks.insert(0, callback)
        return parts

    training.instantiate_run = patched
    try:
        return train(cfg)
    finally:
        training.instantiate_run = original


def test_ctrl_c_writes_summary_report_and_plots(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg()
    with open_dict(cfg):
        cfg.trainer.max_epochs = 3
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        _train_with(cfg, _StopAt(1, KeyboardInterrupt()))
    run = tmp_path / "run"
    report = json.loads((run / "metrics.json").read_text())
    assert report["status"] == "interrupted" and report["epochs"] == 1
    assert report["error"] == "interrupted by Ctrl-C (SIGINT)"  # not "SystemExit: 1"
    assert (run / "plots" / "loss_curves.png").is_file() and (run / "plots" / "error_histograms.png").is_file()
    assert _ckpt(run / "checkpoints" / "last.ckpt")["epoch"] == 0
    assert "(INTERRUPTED)" in capsys.readouterr().out


def test_failed_run_is_marked_failed_and_its_wandb_run_exits_non_zero(tiny_cfg, tmp_path, monkeypatch):
    from wandb.sdk.wandb_run import Run

    codes = []
    original = Run.finish
    monkeypatch.setattr(Run, "finish", lambda self, *a, exit_code=None, **k: (codes.append(exit_code),
                                                                              original(self, exit_code=exit_code)))
    cfg = tiny(compose_train(["logger=wandb"]), tmp_path / "run")
    with open_dict(cfg):
        cfg.trainer.max_epochs = 2
    with pytest.raises(RuntimeError, match="boom"):
        _train_with(cfg, _StopAt(1, RuntimeError("boom")))
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["status"] == "failed" and "boom" in report["error"]
    assert codes == [1]
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))


def test_failed_wandb_login_still_writes_a_failed_report(tmp_path, monkeypatch, capsys):
    import wandb

    def no_login(*args, **kwargs):
        raise wandb.errors.UsageError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])")

    monkeypatch.setattr(wandb, "init", no_login)
    cfg = tiny(compose_train(["logger=wandb", "logger.wandb.offline=false"]), tmp_path / "run")
    with pytest.raises(wandb.errors.UsageError):
        train(cfg)
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["status"] == "failed" and "api_key not configured" in report["error"]
    assert report["epochs"] == 0 and report["paths"]["wandb_run"] is None
    assert "(FAILED)" in capsys.readouterr().out


def test_resumed_runs_sync_line_names_every_wandb_folder(tmp_path, monkeypatch, capsys):
    """A run resumed in place and then into a new folder: one W&B id, three folders, all in the sync line."""
    first, second = tmp_path / "first", tmp_path / "second"
    train(tiny(compose_train(["logger=wandb"]), first))
    for folder, epochs in ((first, 2), (second, 3)):
        monkeypatch.setattr("steg.training.loop._command_line_overrides", lambda e=epochs: [f"trainer.max_epochs={e}"])
        cfg = tiny(compose_train(["logger=wandb"]), folder)
        with open_dict(cfg):
            cfg.trainer.max_epochs = epochs
            cfg.ckpt_path = str(first / "checkpoints" / "last.ckpt")
        capsys.readouterr()
        train(cfg)
    folders = sorted([*(first / "wandb").glob("offline-run-*"), *(second / "wandb").glob("offline-run-*")])
    assert len(folders) == 3 and len({p.name.rsplit("-", 1)[-1] for p in folders}) == 1
    sync = [line for line in capsys.readouterr().out.splitlines() if "wandb sync" in line]
    assert len(sync) == 1 and all(str(p) in sync[0] for p in folders), sync
    report = json.loads((second / "metrics.json").read_text())
    assert sorted(report["paths"]["wandb_runs"]) == [str(p) for p in folders] and report["epochs"] == 3


def test_run_stopped_by_max_time_says_so_and_how_far_it_got(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg(["scheduler=step"])
    with open_dict(cfg):
        cfg.trainer.max_epochs = 500
        cfg.trainer.max_time = "00:00:00:02"
    train(cfg)
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    limit = report["time_limit"]
    assert report["status"] == "time_limit" and 0 < limit["steps"] == report["steps"] < limit["planned_steps"]
    assert limit["planned_steps"] == 500 * 3 and limit["max_time_s"] == 2
    out = capsys.readouterr().out
    assert "(TIME_LIMIT)" in out
    assert f"stopped by trainer.max_time (2 s) at step {limit['steps']} of 1500" in out
    assert "warning: the learning-rate schedule was laid out over 1500 steps" in out


def test_bad_learning_rate_is_refused_before_anything_is_written(tiny_cfg, tmp_path):
    with pytest.raises(ValueError, match=r"optimizer.lr must be a number >= 0 \(the learning rate\), got -1"):
        train(tiny_cfg(["optimizer.lr=-1"]))
    assert not (tmp_path / "run").exists()


def test_optimized_metric_that_was_never_logged_is_an_error():
    cfg = OmegaConf.create({"optimized_metric": "val/psnr_secrte"})
    report = {"final": {"val/loss": 1.0}, "history": [{"epoch": 0, "val/loss": 1.0, "val/psnr_secret": 30.0}]}
    with pytest.raises(ValueError, match="optimized_metric=val/psnr_secrte was never logged.*val/psnr_secret"):
        _optimized_value(cfg, report)
    assert _optimized_value(OmegaConf.create({"optimized_metric": "val/loss"}), report) == 1.0


def test_metrics_json_is_strict_json_without_infinity(tmp_path):
    report = {"final": {"val/psnr_stego": float("inf"), "val/loss": 0.5}, "history": [{"x": float("nan")}],
              "note": "n"}
    write_report(report, tmp_path)

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    data = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=refuse)
    assert data["final"]["val/psnr_stego"] is None and data["final"]["val/loss"] == 0.5
    assert data["non_finite"] == ["final.val/psnr_stego", "history[0].x"]
    assert json_safe([1.0, float("-inf")]) == [1.0, None]


def test_image_size_not_a_multiple_of_the_net_is_a_config_error(tiny_cfg):
    cfg = tiny_cfg(["model=unet", "data.image_size=62"])
    with pytest.raises(ValueError, match="data.image_size=62 is not a multiple of 4, which model unet needs"):
        instantiate_run(cfg)


@pytest.mark.parametrize("override, message", [("channels=2", "channels must be 1"),
                                                ("beta=abc", "beta must be a number >= 0 .*got 'abc'"),
                                                ("beta=-1", "beta must be a number >= 0")])
def test_bad_top_level_settings_are_named(tiny_cfg, tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        train(tiny_cfg([override]))
    assert not (tmp_path / "run").exists()  # nothing written


def test_bad_checkpoint_file_is_named(tiny_cfg, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="ckpt_path=.*bad.ckpt is not a readable training checkpoint"):
        train(tiny_cfg([f"ckpt_path={bad}"]))
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        read_checkpoint(tmp_path / "nope.ckpt")


def test_resume_restores_the_runs_config_and_the_command_line_wins(tmp_path):
    cfg = compose_train(["model=qim"])
    saved = compose_train(["model=unet", "beta=0.5"])
    with open_dict(saved):
        saved.run_name, saved.paths.run_dir, saved.data.batch_size = "old", str(tmp_path), 8
    saved = OmegaConf.to_container(saved, resolve=True)
    restored = restore_config(cfg, saved, overrides=[])
    assert restored.model._target_.endswith("UnshuffleUNet") and restored.beta == 0.5
    assert restored.data.batch_size == 8 and restored.module.beta == 0.5
    restored = restore_config(compose_train(["beta=0.25", "data.batch_size=2"]), saved,
                              overrides=["beta=0.25", "data.batch_size=2"])
    assert restored.beta == 0.25 and restored.module.beta == 0.25  # interpolation kept: module follows beta
    assert restored.data.batch_size == 2 and restored.model._target_.endswith("UnshuffleUNet")
    assert restore_config(compose_train(["model=cnn"]), saved, ["model=cnn"]).model._target_.endswith("CNN")


def test_resume_restores_the_trainer_settings_but_not_the_machine(tmp_path):
    saved = compose_train(["trainer=gpu", "trainer.max_epochs=3", "trainer.gradient_clip_val=0.5"])
    with open_dict(saved):
        saved.run_name, saved.paths.run_dir = "old", str(tmp_path)
    saved = OmegaConf.to_container(saved, resolve=True)
    restored = restore_config(compose_train([]), saved, overrides=[])
    assert restored.trainer.max_epochs == 3 and restored.trainer.gradient_clip_val == 0.5  # not the default 24
    assert restored.trainer.accelerator == compose_train([]).trainer.accelerator  # this machine's (cpu)
    overrides = ["trainer.max_epochs=5"]
    restored = restore_config(compose_train(overrides), saved, overrides=overrides)
    assert restored.trainer.max_epochs == 5 and restored.trainer.gradient_clip_val == 0.5  # the command line wins
