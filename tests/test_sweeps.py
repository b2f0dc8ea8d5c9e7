"""Sweeps: a Hydra multirun grid (one W&B run per job, grouped and tagged) compared with
`steg compare`, the Optuna preset, experiment presets, DDP from train.py, the multirun + ddp
guard, the SLURM launcher preset and the W&B sweep file.

Every train.py here is a subprocess with tiny settings and OMP_NUM_THREADS=1 (a few seconds a
job on 2 busy cores); the whole file takes about two minutes.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import hydra
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from conftest import CONF_DIR, compose_train

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "trainer.max_epochs=1",
    "trainer.max_time=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "data.train_repeats=2",
    "data.val_tiles=4",
    "data.batch_size=4",
    "data.image_size=32",
]
# Valid for both subpixel (3 levels) and cnn (3 kernel branches); "++" because Hydra first composes
# the sweep's base config, with the default model (qim), which has no widths key.
TINY_GRID = ["++model.widths=[4,4,4]"]
# The default model, qim.
TINY_DEFAULT = ["model.width=8", "model.depth=1"]
ENV = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
       "HYDRA_FULL_ERROR": "0"}
DDP_MESSAGE = ("multirun + ddp in one process tree re-launches sys.argv and breaks; "
               "use hydra/launcher=submitit_slurm, or trainer.strategy=ddp_spawn")


def run(cmd: list[str], check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    return proc


def train_py(*overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "train.py", *overrides], check=check)


def steg_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "steg.cli", *args], check=check)


def compose_with_hydra(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


# --------------------------------------------------------------------------- #
# 2 x 2 grid: model x beta
# --------------------------------------------------------------------------- #

GRID = {"0_subpixel_beta0.25": ("subpixel", 0.25), "1_subpixel_beta0.75": ("subpixel", 0.75),
        "2_cnn_beta0.25": ("cnn", 0.25), "3_cnn_beta0.75": ("cnn", 0.75)}


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory) -> Path:
    sweep = tmp_path_factory.mktemp("sweeps") / "sweep_grid"
    train_py("-m", "model=subpixel,cnn", "beta=0.25,0.75", *TINY, *TINY_GRID, "trainer.max_epochs=2",
             f"hydra.sweep.dir={sweep}")
    return sweep


def test_grid_multirun_one_run_folder_and_one_wandb_run_per_job(grid_sweep):
    runs = sorted(p.name for p in grid_sweep.iterdir() if p.is_dir())
    assert runs == sorted(GRID)
    run_ids = set()
    for name, (model, beta) in GRID.items():
        run_dir = grid_sweep / name
        report = json.loads((run_dir / "metrics.json").read_text())
        assert report["model"] == model and report["beta"] == beta and report["epochs"] == 2
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
        assert f"model={model}" in overrides and f"beta={beta}" in overrides
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        wandb_cfg = config["logger"]["wandb"]
        assert wandb_cfg["group"] == grid_sweep.name  # grouped by sweep
        assert wandb_cfg["tags"] == [f"model:{model}", f"beta:{beta}"]
        assert wandb_cfg["name"] == f"{model}_beta{beta}"
        # One offline W&B run per job, finished and separate: its own id, its own name only.
        offline = list((run_dir / "wandb").glob("offline-run-*"))
        assert len(offline) == 1, offline
        run_ids.add(offline[0].name.rsplit("-", 1)[-1])
        data = b"".join(p.read_bytes() for p in offline[0].glob("*.wandb"))
        assert f"model:{model}".encode() in data and f"beta:{beta}".encode() in data
        assert grid_sweep.name.encode() in data
        others = [f"{m}_beta{b}" for n, (m, b) in GRID.items() if n != name]
        assert f"{model}_beta{beta}".encode() in data
        assert not any(o.encode() in data for o in others), "W&B runs of the sweep merged"
    assert len(run_ids) == 4


def test_compare_the_grid_sweep(grid_sweep):
    proc = steg_cli("compare", str(grid_sweep))
    assert "Pareto front of (stego PSNR, revealed PSNR)" in proc.stdout
    assert "not comparable" not in proc.stderr  # the default ranking does not depend on beta
    with (grid_sweep / "compare.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert {r["run"] for r in rows} == {n.split("_", 1)[1] for n in GRID}
    assert {(r["model"], float(r["beta"])) for r in rows} == set(GRID.values())
    # Runs at or above the 30 dB stego floor first, each group by revealed PSNR at the best checkpoint.
    keys = [(-int(r["meets_floor"]), -float(r["val/psnr_secret at_best"])) for r in rows]
    assert keys == sorted(keys) and any(r["front"] == "1" for r in rows)
    assert all(int(r["steps"]) > 0 for r in rows)
    html = (grid_sweep / "compare.html").read_text()
    assert html.count("data:image/png;base64,") == 2 + 4  # Pareto plot, curves, each run's last grid
    for name in ("compare_curves.png", "compare_pareto.png"):
        assert (grid_sweep / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| rank | run | model | beta |" in (grid_sweep / "compare.md").read_text()
    again = steg_cli("compare", str(grid_sweep), check=False)
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and again.stderr.startswith("steg: error: ")
    assert "--force" in again.stderr
    by_loss = steg_cli("compare", str(grid_sweep), "--metric", "val/loss", "--force")
    assert "wins on val/loss" in by_loss.stdout
    assert "val/loss is not comparable across these runs" in by_loss.stderr and "beta (" in by_loss.stderr


# --------------------------------------------------------------------------- #
# Optuna
# --------------------------------------------------------------------------- #


def test_optuna_preset_runs_trials_and_writes_results(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason='needs pip install -e ".[optuna]"')
    sweep = tmp_path / "optuna"
    # model.width on the command line fixes that parameter (tiny); lr and period are searched.
    train_py("hparams_search=optuna", "hydra.sweeper.n_trials=2", *TINY, *TINY_DEFAULT, f"hydra.sweep.dir={sweep}")
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna"
    assert set(results["best_params"]) == {"optimizer.lr", "model.period"}
    assert 1e-4 <= results["best_params"]["optimizer.lr"] <= 3e-3
    assert results["best_params"]["model.period"] in (11, 12, 13, 14, 15)
    trials = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in trials] == ["0_qim_trial0", "1_qim_trial1"]
    finals = [json.loads((p / "metrics.json").read_text())["final"]["val/loss"] for p in trials]
    assert results["best_value"] == pytest.approx(min(finals))  # train() returned val/loss


def test_optuna_preset_composes_with_the_default_model():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason='needs pip install -e ".[optuna]"')
    cfg = compose_with_hydra(["hparams_search=optuna"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.storage is None and sweeper.n_trials == 20 and sweeper.direction == "minimize"
    assert cfg.optimized_metric == "val/loss"
    assert set(sweeper.params) == {"optimizer.lr", "model.period", "model.width"}
    # Every width choice is a valid override of the default model and builds a net.
    from hydra.core.override_parser.overrides_parser import OverridesParser

    default_model = cfg.hydra.runtime.choices.model
    choices = OverridesParser.create().parse_override(f"model.width={sweeper.params['model.width']}").value()
    assert len(choices.list) >= 2
    for value in choices.list:
        net = hydra.utils.instantiate(compose_train([f"model.width={value}"]).model)
        assert net.name == default_model == "qim"


def test_optuna_direction_must_match_the_metric():
    from steg.training.loop import SweepConfigError, _check_sweep

    cfg = compose_train(["optimized_metric=val/psnr_secret"])
    hydra_cfg = OmegaConf.create({"launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"},
                                  "sweeper": {"direction": "minimize"}})
    with pytest.raises(SweepConfigError, match="hydra.sweeper.direction=maximize"):
        _check_sweep(cfg, hydra_cfg)
    hydra_cfg.sweeper.direction = "maximize"
    _check_sweep(cfg, hydra_cfg)


# --------------------------------------------------------------------------- #
# Experiment presets
# --------------------------------------------------------------------------- #


def test_experiment_presets_compose(tmp_path):
    cfg = compose_train(["experiment=baluja_paper"])
    assert cfg.model._target_.endswith("Baluja") and cfg.beta == 0.75 and cfg.data.batch_size == 8
    assert cfg.distortion._target_.endswith("GaussianNoise") and cfg.distortion.sigma == 2.55 and cfg.model.noise_std == 0
    assert cfg.loss.mse == 1.0 and cfg.loss.ssim == 0 and cfg.loss.hist == 0
    assert cfg.module.beta == 0.75

    cfg = compose_train(["experiment=div2k_subpixel", f"data.root={tmp_path}"])
    assert cfg.data._target_.endswith("DIV2KDataModule") and cfg.data.root == str(tmp_path)
    assert cfg.model._target_.endswith("Subpixel") and list(cfg.model.widths) == [50, 100, 150]
    assert cfg.loss.ssim > 0 and cfg.loss.hist > 0 and cfg.loss.psnr > 0
    assert cfg.data.image_size == 64 and cfg.data.batch_size == 16
    assert cfg.scheduler._target_ == "steg.training.schedules.step_decay" and list(cfg.scheduler.milestones) == [0.5, 0.75, 0.9167]

    cfg = compose_train(["experiment=tiny_imagenet_cnn", f"data.root={tmp_path}"])
    assert cfg.data._target_.endswith("TinyImageNetDataModule") and cfg.model._target_.endswith("CNN")
    assert cfg.beta == 1.0 and cfg.module.beta == 1.0 and cfg.data.batch_size == 32

    # The command line still wins over a preset.
    cfg = compose_train(["experiment=tiny_imagenet_cnn", f"data.root={tmp_path}", "beta=0.5", "data.batch_size=4"])
    assert cfg.beta == 0.5 and cfg.data.batch_size == 4
    for name, root in (("baluja_paper", []), ("div2k_subpixel", [f"data.root={tmp_path}"]),
                       ("tiny_imagenet_cnn", [f"data.root={tmp_path}"])):
        cfg = compose_train([f"experiment={name}", *root])
        assert hydra.utils.instantiate(cfg.model).arch_config["channels"] == 3
        hydra.utils.instantiate(cfg.loss)


# --------------------------------------------------------------------------- #
# DDP: plain train.py, and the multirun guard
# --------------------------------------------------------------------------- #


def test_train_py_ddp_on_cpu(tmp_path):
    run_dir = tmp_path / "ddp"
    proc = train_py("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32",
                    *TINY, *TINY_DEFAULT, "data.batch_size=2", f"hydra.run.dir={run_dir}")
    out = proc.stdout + proc.stderr
    assert "Starting with 2 processes" in out and "distributed_backend=gloo" in out
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["epochs"] == 1 and report["steps"] == 3  # 12 pairs / (2 per device x 2 devices)
    assert report["final"]["val/psnr_stego"] > 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["logger"]["wandb"]["group"] is None  # a single run is in no group
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1


def test_multirun_with_ddp_fails_at_once_with_one_line(tmp_path):
    sweep = tmp_path / "sweep"
    start = time.monotonic()
    proc = train_py("-m", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32",
                    *TINY, *TINY_DEFAULT, f"hydra.sweep.dir={sweep}", check=False)
    assert proc.returncode != 0
    assert DDP_MESSAGE in proc.stderr
    assert [line for line in proc.stderr.splitlines() if "multirun + ddp" in line] == [
        f"error: SweepConfigError: {DDP_MESSAGE}"]
    assert time.monotonic() - start < 120
    assert not list(sweep.rglob("metrics.json")) and not list(sweep.rglob("offline-run-*"))


def test_multirun_ddp_guard_cases():
    from steg.training.loop import SweepConfigError, _check_sweep

    basic = OmegaConf.create({"launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}})
    slurm = OmegaConf.create({"launcher": {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher."
                                                       "SlurmLauncher"}})
    bad = [["trainer=ddp", "trainer.devices=2"], ["trainer=gpu", "trainer.devices=[0,1]", "trainer.strategy=auto"],
           ["trainer=ddp", "trainer.devices=1", "trainer.num_nodes=2"]]
    for overrides in bad:
        with pytest.raises(SweepConfigError, match="multirun \\+ ddp"):
            _check_sweep(compose_train(overrides), basic)
    good = [["trainer=ddp", "trainer.devices=2", "trainer.strategy=ddp_spawn"], ["trainer=ddp", "trainer.devices=1"],
            ["trainer=cpu"], ["trainer=gpu"]]
    for overrides in good:
        _check_sweep(compose_train(overrides), basic)
    _check_sweep(compose_train(["trainer=ddp", "trainer.devices=4"]), slurm)


# --------------------------------------------------------------------------- #
# SLURM launcher preset, W&B sweep file
# --------------------------------------------------------------------------- #


# Hydra 1.3 checks a config file named like a plugin's schema against it, with a deprecation warning.
@pytest.mark.filterwarnings("ignore:(?s).*validated against ConfigStore schema")
def test_submitit_slurm_launcher_preset(tmp_path, monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason='needs pip install -e ".[slurm]"')
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    cfg = compose_with_hydra(["hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.devices=4",
                              "trainer.num_nodes=2", "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path}"])
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params["tasks_per_node"] == 4 and params["gpus_per_node"] == 4 and params["nodes"] == 2
    assert params["partition"] == "gpu" and params["timeout_min"] > 0
    launcher = hydra.utils.instantiate(cfg.hydra.launcher)
    assert isinstance(launcher, SlurmLauncher)
    assert compose_with_hydra(["hydra/launcher=submitit_slurm"]).hydra.launcher.partition is None

    # The sbatch script submitit would submit (a fake srun stands in for a SLURM cluster).
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path / "submitit",
                                     slurm_max_num_timeout=params["max_num_timeout"])
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in launcher.params.items()
                                  if k not in ("submitit_folder", "max_num_timeout", "_target_")})
    from submitit.slurm.slurm import _make_sbatch_string

    script = _make_sbatch_string(command="python train.py", folder=tmp_path / "submitit",
                                 **executor._executor.parameters)
    for line in ("--ntasks-per-node=4", "--gpus-per-node=4", "--nodes=2", "--partition=gpu"):
        assert f"#SBATCH {line}" in script


def test_wandb_sweep_file_runs_valid_train_commands():
    sweep = yaml.safe_load((ROOT / "sweeps" / "wandb_sweep.yaml").read_text())
    assert sweep["program"] == "train.py" and (ROOT / sweep["program"]).is_file()
    assert sweep["method"] == "bayes" and sweep["metric"] == {"name": "val/loss", "goal": "minimize"}
    assert sweep["command"][:3] == ["${env}", "python", "${program}"] and sweep["command"][-1] == "${args_no_hyphens}"
    params = sweep["parameters"]
    assert {"optimizer.lr", "beta", "model"} <= set(params)
    for pick in (min, max):
        args = [f"{k}={pick(v['values']) if 'values' in v else pick(v['min'], v['max'])}" for k, v in params.items()]
        fixed = sweep["command"][3:-1]
        cfg = compose_train(fixed + args)
        assert cfg.logger.wandb.offline is False
        assert cfg.optimizer.lr == pick(params["optimizer.lr"]["min"], params["optimizer.lr"]["max"])
