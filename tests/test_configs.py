"""Every config group composes, and each option instantiates what it names."""

from pathlib import Path

import hydra
import pytest
import torch
from PIL import Image

from conftest import compose_train, tiny
from steg.nets import StegNet

GROUPS = {
    "model": ["baluja", "baluja_paper", "subpixel", "subpixel_full", "cnn", "unet", "qim", "hinet", "hinet_cpu",
              "hinet_paper", "payload", "robust", "learned", "learned_robust"],
    "loss": ["mse", "compound", "logmse", "charbonnier"],
    "distortion": ["none", "jpeg", "noise", "resize", "blur", "crop", "dropout", "combined", "robust", "baluja_noise",
                   "jpeg_light"],
    "optimizer": ["adam"],
    "scheduler": ["step", "halving", "cosine", "warmup_cosine", "plateau", "none"],
    "trainer": ["default", "cpu", "gpu", "ddp"],
    "logger": ["wandb", "csv", "none"],
    "callbacks": ["default", "guarded", "none"],
    "debug": ["fast", "overfit", "limit", "profiler", "none"],
    "hparams_search": ["none", "optuna", "optuna_baluja", "optuna_cnn", "optuna_subpixel",
                       "optuna_subpixel_full", "optuna_unet"],
}


def test_help_lists_only_options_not_base_files():
    """`train.py --help` lists what a user can choose: no shared base file, no W&B sweep file."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "train.py", "--help"], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    groups = proc.stdout.split("== Configuration groups ==", 1)[1].split("== Config ==", 1)[0]
    listed = {line.split(":", 1)[0]: line.split(":", 1)[1] for line in groups.splitlines() if ": " in line}
    assert "hparams_search" in listed and "optuna_cnn" in listed["hparams_search"]
    assert "optuna_base" not in groups and "wandb_sweep" not in groups and "sweeps" not in listed


def options(group: str) -> list[str]:
    conf = Path(__file__).resolve().parents[1] / "conf" / group
    return sorted(p.stem for p in conf.glob("*.yaml"))


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_groups_are_all_covered(group):
    assert options(group) == sorted(GROUPS[group])


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_option_composes(group, option, tmp_path):
    if group == "hparams_search":
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason='needs pip install -e ".[optuna]"')
    cfg = compose_train([f"{group}={option}"])
    cfg = tiny(cfg, tmp_path)
    assert cfg.beta == 0.75
    if group == "model":
        net = hydra.utils.instantiate(cfg.model)
        assert isinstance(net, StegNet)
    elif group in ("loss", "optimizer"):
        obj = hydra.utils.instantiate(cfg[group])
        if group == "optimizer":
            obj(params=[torch.nn.Parameter(torch.zeros(1))])
    elif group == "scheduler" and option != "none":
        opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
        factory = hydra.utils.instantiate(cfg.scheduler)
        factory(optimizer=opt, total_steps=100) if option != "plateau" else factory(optimizer=opt)
    elif group == "callbacks":
        assert all(hydra.utils.instantiate(c) is not None for c in cfg.callbacks.values())


def _tree(root: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (80, 72), (i * 20 % 255, 90, 160)).save(path)


@pytest.mark.parametrize("data", ["sample", "folder", "div2k", "tiny_imagenet"])
def test_data_options_compose_and_set_up(data, tmp_path):
    root = tmp_path / "data"
    if data == "folder":
        _tree(root, [f"a/{i}.png" for i in range(12)])
    elif data == "div2k":
        _tree(root, [f"DIV2K_train_HR/{i:04d}.png" for i in range(4)] + [f"DIV2K_valid_HR/{i:04d}.png" for i in range(2)])
    elif data == "tiny_imagenet":
        _tree(root / "tiny-imagenet-200", [f"train/n01/images/n01_{i}.JPEG" for i in range(4)] + [f"val/images/val_{i}.JPEG" for i in range(2)])
        root = root / "tiny-imagenet-200"
    overrides = [f"data={data}"] + ([f"data.root={root}"] if data != "sample" else [])
    cfg = tiny(compose_train(overrides + ["channels=1"]), tmp_path / "run")
    cfg.data.batch_size = 2
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    cover, secret = next(iter(dm.val_dataloader()))
    assert cover.shape[1] == 1 and cover.shape[-1] == cfg.data.image_size


def test_top_level_keys_flow_into_groups():
    cfg = compose_train(["beta=0.25", "channels=1", "model=cnn"])
    assert cfg.module.beta == 0.25
    assert cfg.model.channels == 1 and cfg.data.channels == 1
    assert cfg.trainer.precision == 32 and compose_train(["trainer=gpu"]).trainer.precision == "bf16-mixed"
    assert compose_train(["trainer=ddp"]).trainer.strategy == "ddp"


LIGHTNING_FLAGS = ["max_steps=7", "fast_dev_run=true", "gradient_clip_val=0.5", "limit_train_batches=3",
                   "limit_val_batches=2", "accumulate_grad_batches=2", "val_check_interval=0.5", "strategy=ddp_spawn",
                   "overfit_batches=1", "profiler=simple"]


@pytest.mark.parametrize("preset", ["cpu", "gpu", "ddp"])
def test_lightning_flags_override_without_plus(preset):
    cfg = compose_train([f"trainer={preset}", *(f"trainer.{flag}" for flag in LIGHTNING_FLAGS)])
    for flag in LIGHTNING_FLAGS:
        key, value = flag.split("=")
        assert str(cfg.trainer[key]).lower() == value, key
    import inspect

    import lightning

    accepted = set(inspect.signature(lightning.Trainer.__init__).parameters)
    assert set(cfg.trainer) - {"_target_"} <= accepted  # every listed flag is a real Trainer argument


def test_null_groups_and_debug_presets(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", Path(__file__).resolve().parents[1] / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = script.null_groups(["train.py", "logger=null", "scheduler=null", "model=unet", "beta=null"])
    assert argv == ["train.py", "logger=none", "scheduler=none", "model=unet", "beta=null"]
    cfg = compose_train(argv[1:])
    assert not cfg.get("logger") and not cfg.get("scheduler")  # no loggers, constant learning rate
    # a sweep over the logger keeps `null` inside the config: every value of the list composes
    sweep = script.null_groups(["logger=null,csv", "debug=null"])
    assert sweep == ["logger=none,csv", "debug=none"]
    values = sweep[0].split("=", 1)[1].split(",")
    loggers = [compose_train([f"logger={v}", sweep[1]]).get("logger") for v in values]
    assert not loggers[0] and list(loggers[1]) == ["csv"]
    assert compose_train(["debug=none", "experiment=none", "hparams_search=none", "callbacks=none"]).get("callbacks") == {}
    assert compose_train(["debug=fast"]).trainer.fast_dev_run is True
    overfit = compose_train(["debug=overfit"])
    assert overfit.trainer.overfit_batches == 1 and overfit.logger.get("wandb") is None


def test_optuna_search_spaces_are_per_model():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason='needs pip install -e ".[optuna]"')
    from conftest import CONF_DIR
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    for model in ["qim", "unet", "subpixel", "subpixel_full", "cnn", "baluja"]:
        GlobalHydra.instance().clear()
        name = "optuna" if model == "qim" else f"optuna_{model}"
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("train", overrides=[f"hparams_search={name}"], return_hydra_config=True)
        assert cfg.hydra.runtime.choices.model == model
        for key in cfg.hydra.sweeper.params:  # every searched key exists in this model's config
            assert OmegaConf_select(cfg, key) is not None, (model, key)


def OmegaConf_select(cfg, key):
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key)


def test_logger_none_trains_without_loggers(tmp_path):
    """logger=none (what train.py reads logger=null as) trains with the default callbacks and no logger."""
    import json

    from steg.training.loop import instantiate_run, train

    cfg = tiny(compose_train(["logger=none"]), tmp_path / "run")
    parts = instantiate_run(cfg)
    assert parts["trainer"].loggers == []
    train(cfg)
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["status"] == "finished" and not (tmp_path / "run" / "csv").exists()
