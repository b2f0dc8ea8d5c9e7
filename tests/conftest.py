"""Shared fixtures: Hydra configs composed and patched down to tiny CPU runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import pytest
from PIL import Image
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from steg.nets import net_class

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


#: Test files that run train.py / steg as subprocesses, DDP, Optuna or the benchmark: `make test-full` only.
SLOW_FILES = {"test_bench.py", "test_sweeps.py", "test_train_script.py", "test_resume.py"}


def pytest_collection_modifyitems(config, items):
    """Mark every test of :data:`SLOW_FILES` slow (`make test` runs ``-m "not slow"``)."""
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


def compose_train(overrides: list[str] | None = None) -> DictConfig:
    """Compose conf/train.yaml with overrides (no run dir: set paths.run_dir)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=overrides or [])


def tiny(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """Patch a composed config down to a seconds-long CPU run."""
    with open_dict(cfg):
        cfg.paths.run_dir = str(run_dir)
        cfg.run_name = "test"
        cfg.trainer.max_epochs = 1
        cfg.trainer.max_time = None
        cfg.trainer.log_every_n_steps = 1
        cfg.trainer.enable_progress_bar = False
        cfg.trainer.enable_model_summary = False
        cfg.data.num_workers = 0
        cfg.data.batch_size = 4
        if cfg.data._target_.endswith("SampleDataModule"):
            cfg.data.train_repeats = 2
            cfg.data.val_tiles = 8
        for key, value in net_class(cfg.model).tiny().items():  # each net knows its seconds-fast size
            cfg.model[key] = value
    return cfg


@pytest.fixture
def tiny_cfg(tmp_path):
    def make(overrides: list[str] | None = None) -> DictConfig:
        return tiny(compose_train((overrides or []) + ["logger=csv"]), tmp_path / "run")

    return make


def gradient_noise(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A test image: colour gradients plus seeded Gaussian noise ('RGB' or 'L')."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    base = np.stack([x, y, (x + y) / 2], axis=-1)
    arr = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, mode="RGB")
    return img.convert("L") if mode == "L" else img


def save_checkpoint(net, path: Path, **extra) -> Path:
    """What train.py writes, as far as steg needs it: net.* weights and arch_config."""
    ckpt = {
        "epoch": 3,
        "global_step": 42,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
        "arch_config": dict(net.arch_config),
        "beta": 0.75,
    }
    ckpt.update(extra)
    torch.save(ckpt, path)
    return path


def impulse_radius(net, which: str, side: int, offsets: int) -> int:
    """How far (pixels) the response of ``net`` to a unit impulse reaches: the measured receptive radius.

    ``which``: "reveal" (impulse in the stego image), "secret" or "cover" (impulse in that input of
    hide). The impulse is placed at ``offsets`` positions around the centre of a ``side`` x ``side``
    float64 image of zeros (so every phase of a strided or shuffled net is seen). Set the net's
    weights so that nothing cancels (e.g. all positive) before calling.
    """
    zero = torch.zeros(1, net.arch_config["channels"], side, side, dtype=torch.float64)
    radius = 0
    for offset in range(offsets):
        centre = side // 2 + offset
        impulse = zero.clone()
        impulse[..., centre, centre] = 1.0
        with torch.no_grad():
            if which == "reveal":
                diff = net.reveal(impulse) - net.reveal(zero)
            elif which == "secret":
                diff = net.hide(zero, impulse) - net.hide(zero, zero)
            else:
                diff = net.hide(impulse, zero) - net.hide(zero, zero)
        where = (diff.abs() > 0).any(dim=1)[0].nonzero()
        radius = max(radius, int((where - centre).abs().max()))
    return radius
