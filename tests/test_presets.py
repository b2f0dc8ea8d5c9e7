"""Every documented preset runs: each `experiment=` trains two steps, each `debug=` preset end to end.

Composing is not enough (`experiment=hinet_div2k` composed and then failed at its first step).
The presets run on the embedded sample photos at tiny model sizes; the DIV2K and Tiny ImageNet
presets get `data=sample`, which also checks that their data keys fit another data option.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import open_dict

from conftest import compose_train, tiny
from steg.nets import net_class
from steg.training.loop import train

CONF = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
DEBUG_PRESETS = sorted(p.stem for p in (CONF / "debug").glob("*.yaml"))
SCHEDULERS = sorted(p.stem for p in (CONF / "scheduler").glob("*.yaml"))


def report(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow  # ~5-15 s each on 2 shared cores
@pytest.mark.parametrize("experiment,extra", [(e, []) for e in EXPERIMENTS] + [("hinet_div2k", ["scheduler=cosine"])],
                         ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_every_experiment_preset_trains_two_steps(experiment, extra, tmp_path):
    cfg = tiny(compose_train([f"experiment={experiment}", "data=sample", "logger=csv", *extra]), tmp_path / "run")
    with open_dict(cfg):
        cfg.data.image_size = 32
        cfg.trainer.max_steps = 2
        cfg.trainer.limit_val_batches = 1
        cfg.trainer.num_sanity_val_steps = 0
    train(cfg)
    result = report(tmp_path / "run")
    assert result["status"] == "finished" and result["steps"] == 2
    # (a fresh hinet's stego image is the cover: its stego PSNR is infinite, null in the JSON)
    assert math.isfinite(result["final"]["val/loss"]) and result["final"]["val/psnr_secret"] > 0


GROUP_OPTIONS = {"model": ["unet", "qim"], "distortion": ["none", "jpeg"], "loss": ["mse", "compound"],
                 "callbacks": ["default"], "optimizer": ["adam"]}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_keys_never_leak_into_an_overridden_group(experiment):
    """`experiment=X model=Y` (or distortion=, loss=, ...) gives that group exactly as its own file has it.

    A preset keeps its group values in group files (conf/model/hinet_cpu.yaml, ...), so a user who
    overrides the group gets the option they named, not the option with the preset's keys merged in.
    """
    for group, options in GROUP_OPTIONS.items():
        for option in options:
            cfg = compose_train([f"experiment={experiment}", f"{group}={option}"])
            alone = compose_train([f"{group}={option}"])
            if group == "optimizer":  # a preset may tune the optimizer's values (lr): the class stays
                assert cfg.optimizer._target_ == alone.optimizer._target_
                continue
            assert cfg.get(group) == alone.get(group), (experiment, group, option)
    cfg = compose_train([f"experiment={experiment}", "model=unet", "distortion=jpeg"])
    hydra.utils.instantiate(cfg.model), hydra.utils.instantiate(cfg.distortion)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_keys_never_leak_into_an_overridden_scheduler(experiment):
    """`experiment=X scheduler=Y` gives scheduler Y exactly as conf/scheduler/Y.yaml has it."""
    for option in SCHEDULERS:
        cfg = compose_train([f"experiment={experiment}", f"scheduler={option}"])
        alone = compose_train([f"scheduler={option}"])
        assert cfg.get("scheduler") == alone.get("scheduler"), (experiment, option)
        if option != "none":
            factory = hydra.utils.instantiate(cfg.scheduler)
            opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
            factory(optimizer=opt) if option == "plateau" else factory(optimizer=opt, total_steps=100)


def test_hinet_div2k_halves_the_rate_at_each_fifth_of_the_run():
    """The paper: Adam 10^-4.5, halved every 1000 of 5000 epochs."""
    cfg = compose_train(["experiment=hinet_div2k", "data.root=/nowhere"])
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optimizer.lr)
    scheduler = hydra.utils.instantiate(cfg.scheduler)(optimizer=opt, total_steps=5000)
    rates = []
    for _ in range(5000):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert rates[0] == pytest.approx(10 ** -4.5, rel=1e-4)
    for k, step in enumerate([999, 1999, 2999, 3999, 4999]):
        assert rates[step] == pytest.approx(10 ** -4.5 * 0.5 ** k, rel=1e-4), step
    assert cfg.trainer.max_epochs == 5000 and "divergence_guard" in cfg.callbacks


def small(cfg, run_dir: Path):
    """Tiny model and data, the preset's own trainer settings left as they are."""
    with open_dict(cfg):
        cfg.paths.run_dir = str(run_dir)
        cfg.run_name = "test"
        cfg.trainer.enable_progress_bar = False
        cfg.data.update(num_workers=0, batch_size=4, image_size=32, train_repeats=2, val_tiles=8)
        for key, value in net_class(cfg.model).tiny().items():
            cfg.model[key] = value
    return cfg


@pytest.mark.slow  # debug=overfit: 30 epochs
@pytest.mark.parametrize("preset", DEBUG_PRESETS)
def test_every_debug_preset_runs_end_to_end(preset, tmp_path):
    """`python train.py debug=X` as documented (debug=fast failed: a learning-rate monitor without a logger)."""
    overrides = [f"debug={preset}"] + ([] if preset == "fast" else ["logger=csv"])
    if preset == "overfit":  # the default qim starts near its floor (its code is exact); a unet has to learn
        overrides.append("model=unet")
    cfg = small(compose_train(overrides), tmp_path / "run")
    train(cfg)
    result = report(tmp_path / "run")
    assert result["status"] == "finished"
    if preset == "fast":  # one training and one validation batch
        assert cfg.get("logger") is None and result["steps"] == 1
    elif preset == "overfit":  # one batch, 30 epochs: the loss falls (tiny net, 30 steps: by 10% or more)
        losses = [row["train/loss"] for row in result["history"] if "train/loss" in row]
        assert result["epochs"] == 30 and losses[-1] < 0.9 * losses[0]
    elif preset == "limit":
        assert result["epochs"] == 3 and result["steps"] == 3 * min(3, 3)
    elif preset == "profiler":
        assert result["epochs"] == 1 and result["steps"] == 3  # 6 pairs x 2 repeats / batch 4
