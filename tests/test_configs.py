"""Every config group composes, and each option instantiates what it names."""

from pathlib import Path

import hydra
import pytest
import torch
from PIL import Image

from conftest import compose_train, tiny
from steg.nets import StegNet

GROUPS = {
    "model": ["baluja", "subpixel", "subpixel_full", "cnn", "unet", "qim"],
    "loss": ["mse", "compound"],
    "optimizer": ["adam"],
    "scheduler": ["step", "cosine", "plateau", "none"],
    "trainer": ["cpu", "gpu", "ddp"],
    "logger": ["wandb", "csv"],
    "callbacks": ["default"],
}


def options(group: str) -> list[str]:
    conf = Path(__file__).resolve().parents[1] / "conf" / group
    return sorted(p.stem for p in conf.glob("*.yaml"))


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_groups_are_all_covered(group):
    assert options(group) == sorted(GROUPS[group])


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_option_composes(group, option, tmp_path):
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
        hydra.utils.instantiate(cfg.scheduler)(optimizer=opt)
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
