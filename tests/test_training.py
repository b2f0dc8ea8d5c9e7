"""train(): every documented variant runs and writes its artifacts (in-process, tiny)."""

import csv
import json

import pytest
import torch
from omegaconf import open_dict
from PIL import Image

from steg.training.loop import train


def _artifacts_ok(run_dir):
    report = json.loads((run_dir / "metrics.json").read_text())
    for key in ("val/psnr_stego", "val/ssim_stego", "val/apd_stego", "val/psnr_secret", "val/ssim_secret", "val/apd_secret"):
        assert key in report["final"]
    # the per-image spread of the validation PSNRs: the half-width of their mean's 95% interval (dB)
    # (null with under two validation images: no spread to measure)
    ci = report["final"]["val/ci95_psnr_secret"]
    assert ci is None or 0 < ci < 30
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "csv" / "metrics.csv").is_file()
    assert (run_dir / "plots" / "loss_curves.png").is_file()
    assert (run_dir / "plots" / "error_histograms.png").is_file()
    assert list((run_dir / "images").glob("epoch_*.png"))
    return report


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=subpixel", "beta=0.75"],
        [],  # the default model (qim)
        pytest.param(["model=baluja"], marks=pytest.mark.slow),
        pytest.param(["model=cnn", "loss=compound"], marks=pytest.mark.slow),
        ["channels=1", "scheduler=plateau"],
        pytest.param(["scheduler=cosine", "data.pairing=random"], marks=pytest.mark.slow),
        ["model=unet", "distortion=jpeg"],
        ["model=unet", "distortion=combined"],
        ["model=hinet"],
    ],
    ids=lambda o: " ".join(o),
)
def test_variants_train_and_report(tiny_cfg, overrides, tmp_path):
    cfg = tiny_cfg(overrides)
    value = train(cfg)
    report = _artifacts_ok(tmp_path / "run")
    # train() returns the optimized metric: the last val/loss the CSV logger wrote (an independent record).
    with open(tmp_path / "run" / "csv" / "metrics.csv", newline="") as fh:
        logged = [float(r["val/loss"]) for r in csv.DictReader(fh) if r.get("val/loss")]
    assert value == pytest.approx(logged[-1], rel=1e-6)
    assert report["beta"] == cfg.beta
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["arch_config"]["channels"] == cfg.channels


def test_keyed_model_trains_and_its_model_file_stays_keyed(tiny_cfg, tmp_path):
    """`python train.py model=unet model.keyed=true`: trains on scrambled secrets, validates under fixed keys,
    and the checkpoint rebuilds a keyed net."""
    from steg.inference.files import load_net

    cfg = tiny_cfg(["model=unet", "model.keyed=true", "model.key_block=2"])
    train(cfg)
    report = _artifacts_ok(tmp_path / "run")
    assert report["final"]["val/psnr_secret"] > 0
    net, _ = load_net(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert net.keyed and net.key_block == 2 and net.arch_config["keyed"] is True
    plain = tiny_cfg(["model=unet"])
    assert plain.model.keyed is False  # every learned model's config names the option


def test_keyed_crop_distortion_compares_in_the_scrambled_domain():
    from steg.distortions.layers import Crop
    from steg.nets import UnshuffleUNet

    net = UnshuffleUNet(**UnshuffleUNet.tiny(), keyed=True)
    crop = Crop(fraction=0.5, multiple=8).train()
    cover, secret = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    out = net(cover, secret, quantize=True, distortion=crop)
    assert out["revealed"].shape == out["target"].shape == (2, 3, 16, 16)
    # a window of the scrambled secret holds scattered pieces of the secret: not a window of the secret
    windows = secret.unfold(2, 16, 1).unfold(3, 16, 1)
    assert not (windows == out["target"][:, :, None, None]).flatten(4).all(-1).all(1).any()


def test_crop_distortion_compares_the_revealed_window_with_the_same_window_of_the_secret():
    from steg.distortions.layers import Crop
    from steg.nets import UnshuffleUNet

    net = UnshuffleUNet(**UnshuffleUNet.tiny())
    crop = Crop(fraction=0.5, multiple=8).train()
    cover, secret = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    out = net(cover, secret, quantize=True, distortion=crop)
    assert out["stego"].shape == (2, 3, 32, 32)
    assert out["revealed"].shape == out["target"].shape == (2, 3, 16, 16)
    # the target is a window of the secret, not the secret resized
    windows = secret.unfold(2, 16, 1).unfold(3, 16, 1)  # (B, C, 17, 17, 16, 16)
    hits = (windows == out["target"][:, :, None, None]).flatten(4).all(-1).all(1)
    assert hits.any(-1).any(-1).all()


def test_folder_data(tiny_cfg, tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(12):
        Image.effect_mandelbrot((96, 80), (-2 + i * 0.1, -1, 1, 1), 50).convert("RGB").save(root / f"{i}.png")
    cfg = tiny_cfg(["data=folder", f"data.root={root}"])
    with open_dict(cfg):
        cfg.data.batch_size = 2
    train(cfg)
    _artifacts_ok(tmp_path / "run")


def test_missing_checkpoint_is_a_one_line_error(tiny_cfg, tmp_path):
    cfg = tiny_cfg([f"ckpt_path={tmp_path / 'nope.ckpt'}"])
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        train(cfg)


def test_second_run_in_a_locked_run_folder_stops_at_once(tiny_cfg, tmp_path):
    """Another process trains into the run folder: train() refuses in one line, writing nothing there."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from steg.io import FolderLockedError

    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom steg.io import lock_folder\n"
         "with lock_folder(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(120)\n", str(run_dir)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "locked"
        (run_dir / "csv").mkdir()
        (run_dir / "csv" / "metrics.csv").write_text("the other run's rows\n")
        start = time.monotonic()
        with pytest.raises(FolderLockedError) as info:
            train(tiny_cfg())
        assert time.monotonic() - start < 30  # before any data, net or epoch
        message = str(info.value)
        assert "\n" not in message and str(run_dir) in message and f"pid {holder.pid}" in message
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "csv"]
        assert (run_dir / "csv" / "metrics.csv").read_text() == "the other run's rows\n"
    finally:
        holder.kill()
        holder.wait()
    train(tiny_cfg())  # the lock ends with its process
    assert (run_dir / "metrics.json").is_file()


def test_progress_bar_shows_4_significant_digits_and_the_summary_no_zero_flops(tiny_cfg, monkeypatch, caplog):
    import logging

    from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

    from steg.training.loop import StegModelSummary, StegProgressBar, instantiate_run

    monkeypatch.setattr(ProgressBar, "get_metrics", lambda self, trainer, module: {
        "train/loss": 0.0012345678, "train/loss/secret_psnr": -34.56789, "v_num": 3})
    assert StegProgressBar().get_metrics(None, None) == {"train/loss": "0.001235", "train/loss/secret_psnr": "-34.57",
                                                         "v_num": 3}
    cfg = tiny_cfg()
    with open_dict(cfg):
        cfg.trainer.enable_progress_bar = True
        cfg.trainer.enable_model_summary = True
    parts = instantiate_run(cfg)
    trainer = parts["trainer"]
    assert isinstance(trainer.progress_bar_callback, StegProgressBar)
    summary = next(c for c in trainer.callbacks if isinstance(c, StegModelSummary))
    parts["module"].trainer = trainer
    with caplog.at_level(logging.INFO, logger="lightning.pytorch.callbacks.model_summary"):
        summary.on_fit_start(trainer, parts["module"])
    text = caplog.text
    assert "Total params" in text and "Flops" not in text and "FLOPs" not in text


def test_loss_terms_are_named_as_losses_not_like_metrics(tiny_cfg, tmp_path):
    """val/secret_psnr (-PSNR, a loss term) once sat beside val/psnr_secret (the metric): terms go under val/loss/."""
    train(tiny_cfg())
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    keys = set(report["final"])
    assert {"val/loss", "val/loss/cover_mse", "val/loss/secret_mse", "val/loss/secret_psnr", "val/psnr_secret"} <= keys
    assert report["final"]["val/loss/secret_psnr"] < 0 < report["final"]["val/psnr_secret"]
    stray = [k for k in keys if k.startswith(("val/cover_", "val/secret_", "train/cover_", "train/secret_"))]
    assert not stray, stray
    with open(tmp_path / "run" / "csv" / "metrics.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert "val/loss/secret_psnr" in header and "val/secret_psnr" not in header
