"""The README's "Add your own architecture": a StegNet subclass outside the package, named only by
its ``_target_``, trains, exports, evaluates, hides and reveals like a built-in one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from conftest import compose_train, gradient_noise, tiny
from steg.cli import main
from steg.inference.files import ModelError, load_net
from steg.nets import allow_target, registry
from steg.training.loop import train

REPO = Path(__file__).resolve().parents[1]


def test_own_architecture_trains_exports_evaluates_and_hides(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "_ALLOWED", set())  # what allow_target adds here ends with the test
    cfg = tiny(compose_train(["logger=csv"]), tmp_path / "run")
    with open_dict(cfg):
        cfg.model = OmegaConf.create({"_target_": "examples.mynet.ResidualNet", "channels": "${channels}",
                                      "width": 4})
        cfg.trainer.max_steps = 2
    train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    target = "examples.mynet.ResidualNet"
    with pytest.raises(ModelError, match="--allow-arch examples.mynet.ResidualNet"):
        load_net(ckpt)  # a model file's own class is imported only when the user names it
    allow_target(target)
    net, _ = load_net(ckpt)
    assert type(net).__module__ == "examples.mynet" and net.arch_config["target"] == "examples.mynet.ResidualNet"
    assert net.arch_config["width"] == 4

    model = tmp_path / "mine.safetensors"
    assert main(["export", str(ckpt), "-o", str(model), "--allow-arch", target]) == 0
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        gradient_noise(40, 32, i).save(photos / f"{i}.png")
    assert main(["eval", "--covers", str(photos), "--model", str(model), "--allow-arch", target,
                 "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["arch_config"]["target"] == "examples.mynet.ResidualNet"
    capsys.readouterr()

    # the steg command line, as a user runs it, in a fresh process
    stego, revealed = tmp_path / "stego.png", tmp_path / "revealed.png"
    for argv in (["hide", str(photos / "0.png"), str(photos / "1.png"), "-o", str(stego), "--model", str(model),
                  "--allow-arch", target],
                 ["reveal", str(stego), "-o", str(revealed), "--model", str(model), "--allow-arch", target]):
        proc = subprocess.run([sys.executable, "-m", "steg", *argv], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert stego.is_file() and revealed.is_file()
