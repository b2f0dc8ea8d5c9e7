"""`make gpu-check` (experiments/gpu/check.py) and the fast-path switches it measures, on the CPU.

The check itself runs end to end with ``--device cpu --tiny`` (slow), so the
script is known to work before a GPU sees it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _check_module():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "experiments" / "gpu" / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_imports_are_named_on_one_line(monkeypatch, capsys, tmp_path):
    check = _check_module()
    monkeypatch.setattr(check, "REQUIRED", [("torch", "torch"), ("no_such_module_xyz", "no-such-package"),
                                            ("another_missing_abc", "another-package")])
    assert check.main(["--device", "cpu", "--tiny", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-package another-package" in err[0] and "torch" not in err[0].split(":")[1]
    assert not (tmp_path / "check.json").exists()


def test_cuda_requested_without_cuda_is_one_line(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # the check then runs; covered by the slow test's CPU twin
    check = _check_module()
    assert check.main(["--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_markdown_summary_has_date_card_and_versions():
    check = _check_module()
    result = {"command": "python experiments/gpu/check.py", "seconds": 12.0,
              "env": {"date": "2026-12-04 17:00:00 UTC", "card": "NVIDIA H200", "device": "cuda", "torch": "2.11.0",
                      "cuda": "13.0", "lightning": "2.6.6", "torchmetrics": "1.9.0"},
              "stages": {"smoke": {"status": "ok", "seconds": 3.0, "steps": 200, "rows": [
                  {"model": "qim", "bf16-mixed": {"steps": 200, "val/psnr_stego": 36.7, "val/psnr_secret": 32.4},
                   "32": {"steps": 200, "val/psnr_stego": 36.8, "val/psnr_secret": 32.4},
                   "delta": {"val/psnr_stego": -0.1, "val/psnr_secret": 0.0}, "host_syncs_per_step": 0}]},
                         "bench": {"status": "error", "seconds": 1.0, "error": "RuntimeError: boom"}}}
    text = check.markdown(result)
    assert "NVIDIA H200" in text and "2026-12-04" in text and "torch 2.11.0" in text
    assert "| qim | 200 / 200 | 36.70 / 32.40 dB" in text and "RuntimeError: boom" in text


def test_gpu_utilisation_is_a_number_or_none():
    from steg.bench.speed import gpu_utilisation_now

    value = gpu_utilisation_now()
    assert value is None or 0 <= value <= 100
    if not torch.cuda.is_available():
        assert value is None


# -- the fast-path switches -------------------------------------------------------------------
def _module(**kwargs):
    from steg.training.losses import ImageLoss
    from steg.training.module import StegModule
    from steg.nets import net_class

    cls = net_class("unet")
    return StegModule(cls(**cls.tiny()), ImageLoss(), **kwargs)


def test_fused_optimizer_switch():
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    assert _module(optimizer=adam, fused_optimizer=True).configure_optimizers().defaults["fused"] is True
    assert not _module(optimizer=adam, fused_optimizer=None).configure_optimizers().defaults["fused"]  # CPU: auto = off
    assert not _module(optimizer=adam, fused_optimizer=False).configure_optimizers().defaults["fused"]
    given = functools.partial(torch.optim.Adam, lr=1e-3, fused=False)  # the optimizer config wins
    assert not _module(optimizer=given, fused_optimizer=True).configure_optimizers().defaults["fused"]
    sgd = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)  # takes fused too in recent torch: fine either way
    _module(optimizer=sgd, fused_optimizer=True).configure_optimizers()


def test_fused_optimizer_trains_on_cpu(tiny_cfg):
    from steg.training.loop import train

    cfg = tiny_cfg(["module.fused_optimizer=true", "model=unet"])
    train(cfg)
    report = json.loads((Path(cfg.paths.run_dir) / "metrics.json").read_text())
    assert report["status"] == "finished"


def test_data_workers_follow_the_trainer():
    from steg.data.sample import SampleDataModule

    dm = SampleDataModule(num_workers=None, image_size=32, batch_size=4)
    assert dm.workers() == 0 and not dm.persistent_workers  # no trainer: the CPU default
    gpu = types.SimpleNamespace(strategy=types.SimpleNamespace(root_device=torch.device("cuda", 0)), num_devices=1)
    dm.trainer = gpu
    expected = max(0, min(8, (__import__("os").cpu_count() or 1) - 1))
    assert dm.workers() == expected and dm.persistent_workers == (expected > 0)
    dm.trainer = types.SimpleNamespace(strategy=types.SimpleNamespace(root_device=torch.device("cpu")), num_devices=1)
    assert dm.workers() == 0
    assert SampleDataModule(num_workers=3).workers() == 3  # an explicit number wins


@pytest.mark.slow
def test_compile_switch_trains_on_cpu(tiny_cfg):
    """``module.compile=true`` composes and trains (torch.compile on the CPU, a tiny net)."""
    from steg.training.loop import train

    cfg = tiny_cfg(["module.compile=true", "model=cnn"])
    train(cfg)
    assert json.loads((Path(cfg.paths.run_dir) / "metrics.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_on_cpu(tmp_path):
    """`python experiments/gpu/check.py --device cpu --tiny`: every stage ok, one JSON and one summary."""
    proc = subprocess.run([sys.executable, "experiments/gpu/check.py", "--device", "cpu", "--tiny", "--out",
                           str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "check.json").read_text())
    assert result["ok"] and set(result["stages"]) == {"smoke", "cli", "bench", "hinet_div2k"}
    from steg.nets import ARCHITECTURES

    rows = result["stages"]["smoke"]["rows"]
    assert [r["model"] for r in rows] == list(ARCHITECTURES)
    assert all(r["bf16-mixed"]["status"] == r["32"]["status"] == "finished" and "delta" in r for r in rows)
    assert [r["model"] for r in result["stages"]["bench"]["rows"]] == ["unet"]  # --tiny: one net
    assert result["stages"]["cli"]["analyze"]["steganalyser"] is not None
    assert (tmp_path / "check.md").read_text().startswith("# steg GPU check")


def test_device_crops_give_the_host_crops_seed_for_seed():
    """``data.device_crops=true``: the loader yields crop parameters, cut where the batch goes; same images."""
    from steg.data.sample import CropParams, SampleDataModule

    kwargs = dict(image_size=48, batch_size=4, train_repeats=2, val_tiles=4, seed=3, pairing="random")
    host, device = SampleDataModule(**kwargs), SampleDataModule(device_crops=True, **kwargs)
    for dm in (host, device):
        dm.setup("fit")
    assert isinstance(device.train_dataset, CropParams)
    for epoch in (0, 1):
        host.train_dataloader().sampler.set_epoch(epoch)
        loader = device.train_dataloader()
        loader.sampler.set_epoch(epoch)
        host_loader = host.train_dataloader()
        host_loader.sampler.set_epoch(epoch)
        for (hc, hs), params in zip(host_loader, loader):
            assert params[0].dtype == torch.int64 and params[0].shape == (4, 5)
            cover, secret = device.transfer_batch_to_device(params, torch.device("cpu"), 0)
            assert cover.shape == hc.shape == (4, 3, 48, 48) and cover.dtype == torch.float32
            assert torch.equal(cover, hc) and torch.equal(secret, hs)
    val = next(iter(device.val_dataloader()))  # validation: images, passed through unchanged
    assert torch.equal(device.transfer_batch_to_device(val, torch.device("cpu"), 0)[0], val[0])


def test_device_crops_train(tiny_cfg):
    from steg.training.loop import train

    cfg = tiny_cfg(["data.device_crops=true", "model=unet"])
    train(cfg)
    assert json.loads((Path(cfg.paths.run_dir) / "metrics.json").read_text())["status"] == "finished"
