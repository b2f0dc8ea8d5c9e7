"""Tests for steg.inference.model: model files, export, any-size and tiled inference, the Python API.

A small randomly initialised Subpixel net saved in tmp_path stands in for a
trained model, so nothing here depends on the shipped model (except
``test_shipped_model_round_trip``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from steg.data import sample_photo_paths
from steg.inference.model import StegModel, default_margin, load_model
from steg.io import square_image, to_tensor
from steg.inference.files import DEFAULT_MODEL, FORMAT, FORMAT_VERSION, PRETRAINED_DIR, ModelError, export_checkpoint, load_net
from steg.quantize import quantize
from steg.nets import CNN, Baluja, Payload, QIMNet, Subpixel, UnshuffleUNet
from conftest import gradient_noise, impulse_radius, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
SHIPPED = PRETRAINED_DIR / f"{DEFAULT_MODEL}.safetensors"


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def tiny_net(channels: int = 3, widths=(4, 8), seed: int = 0) -> Subpixel:
    torch.manual_seed(seed)
    return Subpixel(channels=channels, prep_width=4, widths=widths).eval()


def photo(index: int, size: int) -> Image.Image:
    """Centre size x size crop of a held-out sample photo (shorter side scaled to 2 * size first)."""
    with Image.open(sample_photo_paths("val")[index]) as img:
        img = img.convert("RGB")
    img = square_image(img, 2 * size)
    left = (img.width - size) // 2
    return img.crop((left, left, left + size, left + size))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    ckpt = save_checkpoint(tiny_net(), root / "tiny.ckpt")
    export = export_checkpoint(ckpt, root / "tiny.safetensors")
    return {"root": root, "ckpt": ckpt, "export": export}


@pytest.fixture(scope="module")
def model(files) -> StegModel:
    return load_model(files["export"])


# --------------------------------------------------------------------------- #
# Export and loading
# --------------------------------------------------------------------------- #


def test_export_and_checkpoint_give_identical_outputs(files):
    from_ckpt = load_model(files["ckpt"])
    from_export = load_model(files["export"])
    for k, v in from_ckpt.net.state_dict().items():
        assert torch.equal(v, from_export.net.state_dict()[k]), k
    torch.manual_seed(1)
    cover, secret = torch.rand(1, 3, 40, 56), torch.rand(1, 3, 40, 56)
    stego_a, stego_b = from_ckpt.hide(cover, secret), from_export.hide(cover, secret)
    assert torch.equal(stego_a, stego_b)
    assert torch.equal(from_ckpt.reveal(stego_a), from_export.reveal(stego_b))
    assert from_export.channels == 3 and from_export.size_multiple == 2


def test_export_metadata(files):
    from safetensors import safe_open

    with safe_open(str(files["export"]), framework="pt") as fh:
        meta = fh.metadata()
    assert meta["format"] == FORMAT
    assert meta["format_version"] == str(FORMAT_VERSION)
    assert json.loads(meta["arch_config"]) == tiny_net().arch_config
    assert meta["source_checkpoint"] == "tiny.ckpt"
    assert len(meta["source_sha256"]) == 64
    assert meta["epoch"] == "3" and meta["global_step"] == "42"
    desc = load_model(files["export"]).describe()
    assert "subpixel" in desc and "tiny.safetensors" in desc and "tiny.ckpt" in desc
    assert os.stat(files["export"]).st_mode & 0o044  # not left private by mkstemp


def test_export_refuses_overwrite_and_bad_names(files, tmp_path):
    with pytest.raises(ModelError, match="already exists"):
        export_checkpoint(files["ckpt"], files["export"])
    with pytest.raises(ModelError, match=r"\.safetensors"):
        export_checkpoint(files["ckpt"], tmp_path / "model.pt")
    with pytest.raises(ModelError, match="not a training checkpoint"):
        export_checkpoint(files["export"], tmp_path / "again.safetensors")
    assert not list(tmp_path.iterdir())


def test_exported_model_loads_without_lightning_or_hydra(files):
    code = (
        "import sys\n"
        "sys.modules['lightning'] = None; sys.modules['hydra'] = None\n"
        "sys.modules['pytorch_lightning'] = None; sys.modules['omegaconf'] = None\n"
        "import torch, steg\n"
        "m = steg.load_model(sys.argv[1])\n"
        "x = torch.rand(3, 12, 20)\n"
        "assert m.reveal(m.hide(x, x)).shape == (3, 12, 20)\n"
        "assert 'lightning' not in str([k for k, v in sys.modules.items() if v is not None])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(files["export"])],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_import_steg_is_light():
    code = "import sys, steg; assert 'torch' not in sys.modules and 'lightning' not in sys.modules; print(steg.__version__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def _bad_model_cases(root: Path, files: dict[str, Path]) -> dict[str, tuple[Path, str]]:
    """name -> (model file, regex the one-line error must match)."""
    cases: dict[str, tuple[Path, str]] = {}
    png = root / "picture.png"
    gradient_noise(20, 20).save(png)
    cases["png"] = (png, "not a model file")
    text = root / "notes.ckpt"
    text.write_text("hello, I am not a checkpoint\n")
    cases["text"] = (text, "not a model file")
    empty = root / "empty.safetensors"
    empty.write_bytes(b"")
    cases["empty"] = (empty, "empty file")
    data = files["ckpt"].read_bytes()
    (root / "cut.ckpt").write_bytes(data[: len(data) // 2])
    cases["truncated ckpt"] = (root / "cut.ckpt", "corrupt or truncated")
    data = files["export"].read_bytes()
    (root / "cut.safetensors").write_bytes(data[: len(data) - 100])
    cases["truncated export"] = (root / "cut.safetensors", "corrupt or truncated")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(root / "plain.safetensors"))
    cases["foreign safetensors"] = (root / "plain.safetensors", "without steg metadata")
    torch.save({"weights": torch.zeros(2)}, root / "other.ckpt")
    cases["no arch_config"] = (root / "other.ckpt", "without 'state_dict' and 'arch_config'")
    net = tiny_net()
    save_checkpoint(net, root / "unknown.ckpt", arch_config={**net.arch_config, "name": "transformer"})
    cases["unknown architecture"] = (root / "unknown.ckpt", "unknown architecture 'transformer'")
    save_checkpoint(net, root / "wider.ckpt", arch_config={**net.arch_config, "widths": [8, 16]})
    cases["mismatched weights"] = (root / "wider.ckpt", "weights do not match")
    save_checkpoint(net, root / "deeper.ckpt", arch_config={**net.arch_config, "widths": [4, 8, 8]})
    cases["missing weights"] = (root / "deeper.ckpt", "missing")
    save_checkpoint(net, root / "baluja.ckpt", arch_config={"name": "baluja", "channels": 3, "filters": 2, "depth": 1})
    cases["other architecture"] = (root / "baluja.ckpt", "weights do not match")
    save_checkpoint(net, root / "badargs.ckpt", arch_config={**net.arch_config, "colour": True})
    cases["bad arch_config"] = (root / "badargs.ckpt", "invalid arch_config")
    meta = {"format": FORMAT, "format_version": "99", "arch_config": json.dumps(net.arch_config)}
    save_file(dict(net.state_dict()), str(root / "future.safetensors"), metadata=meta)
    cases["newer format"] = (root / "future.safetensors", "newer")
    cases["missing file"] = (root / "nowhere.ckpt", "not found")
    return cases


def test_bad_model_files_give_one_line_errors(files, tmp_path):
    for name, (path, pattern) in _bad_model_cases(tmp_path, files).items():
        with pytest.raises(ModelError, match=pattern) as info:
            load_model(path)
        message = str(info.value)
        assert "\n" not in message, name
        assert str(path) in message, name


def test_missing_shipped_model_message(monkeypatch, tmp_path):
    monkeypatch.setattr("steg.inference.files.PRETRAINED_DIR", tmp_path / "pretrained")
    with pytest.raises(ModelError) as info:
        load_model()
    message = str(info.value)
    assert "\n" not in message
    assert "shipped model 'default' not found" in message
    assert str(tmp_path / "pretrained" / "default.safetensors") in message


def test_shipped_model_by_name(files, monkeypatch, tmp_path):
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    (shipped / "tiny.safetensors").write_bytes(files["export"].read_bytes())
    monkeypatch.setattr("steg.inference.files.PRETRAINED_DIR", shipped)
    assert load_model("tiny").net.arch_config == tiny_net().arch_config
    with pytest.raises(ModelError, match="shipped models: tiny"):
        load_model("nosuch")


# --------------------------------------------------------------------------- #
# Any size, tiling
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("size", [(45, 67), (5, 3), (1, 1), (64, 64)])
def test_odd_sizes_round_trip_shape(size):
    model = StegModel(tiny_net(widths=(4, 4, 4)))  # size_multiple 4
    assert model.size_multiple == 4
    h, w = size
    cover, secret = torch.rand(3, h, w), torch.rand(3, h, w)
    stego = model.hide(cover, secret)
    assert stego.shape == (3, h, w)
    assert model.reveal(stego).shape == (3, h, w)
    pil = model.hide(gradient_noise(w, h, 1), gradient_noise(w + 5, h + 2, 2))
    assert pil.size == (w, h) and pil.mode == "RGB"
    assert model.reveal(pil).size == (w, h)


@pytest.mark.parametrize("widths", [(4, 8), (4, 4, 4)])
def test_tiled_matches_untiled(widths):
    net = tiny_net(widths=widths, seed=3)
    whole = StegModel(net, tile=None)
    tiled = StegModel(net, tile=32)
    torch.manual_seed(0)
    cover = to_tensor(gradient_noise(190, 150, 4)).unsqueeze(0)
    secret = torch.rand(1, 3, 150, 190)
    a = whole.hide_tensor(cover, secret)
    b = tiled.hide_tensor(cover, secret)
    assert whole.calls == 1 and tiled.calls > 9
    assert (a - b).abs().max().item() < 1e-4
    assert (quantize(a) != quantize(b)).float().mean().item() < 1e-3
    stego = quantize(a)
    ra, rb = whole.reveal_tensor(stego), tiled.reveal_tensor(stego)
    assert (ra - rb).abs().max().item() < 1e-4


def test_qim_tiled_matches_untiled():
    """The dither pattern follows absolute pixel positions, so tiles line up with the whole image."""
    torch.manual_seed(5)
    net = QIMNet(width=8, depth=1, encoder=True)
    for body in (net.hide_net, net.reveal_net):  # leave the zero start: make both nets matter
        torch.nn.init.normal_(body.head[0].weight, std=0.01)
    whole, tiled = StegModel(net, tile=None), StegModel(net, tile=32)
    cover = to_tensor(gradient_noise(190, 150, 4)).unsqueeze(0)
    secret = to_tensor(gradient_noise(190, 150, 9)).unsqueeze(0)
    a, b = quantize(whole.hide_tensor(cover, secret)), quantize(tiled.hide_tensor(cover, secret))
    assert tiled.calls > 9 and (a != b).float().mean().item() < 1e-3
    ra, rb = whole.reveal_tensor(a), tiled.reveal_tensor(a)
    assert (ra - rb).abs().max().item() < 1e-4
    assert (quantize(ra) - secret).abs().mean() < 0.05  # and the secret does come back


def test_tiles_bound_the_work_per_call():
    """Every net call sees at most (tile + 2 * margin)**2 pixels, whatever the image size."""
    net = tiny_net(widths=(2, 2))
    model = StegModel(net, tile=64)
    seen = []
    reveal = net.reveal

    def spy(x):
        seen.append(x.shape[-2] * x.shape[-1])
        return x[:, :3] * 0.5  # stand-in: keep the test fast

    net.reveal = spy
    try:
        out = model.reveal_tensor(torch.rand(1, 3, 700, 1000))
    finally:
        net.reveal = reveal
    assert out.shape == (1, 3, 700, 1000)
    assert len(seen) > 20
    assert max(seen) <= (64 + 2 * model.margin) ** 2


def test_auto_tile_bounds_activation_memory():
    from steg.inference.model import ACTIVATION_BUDGET, BYTES_PER_PIXEL_CHANNEL, auto_tile

    small = Subpixel()
    full = Subpixel(prep_width=50, widths=(50, 100, 150))
    for net in (small, full, Baluja(filters=50), CNN()):
        model = StegModel(net)
        assert model.tile == auto_tile(net) and model.tile % net.size_multiple == 0
        tile_bytes = (model.tile + 2 * model.margin) ** 2 * BYTES_PER_PIXEL_CHANNEL * net.feature_channels()
        assert tile_bytes <= ACTIVATION_BUDGET
    assert small.feature_channels() == 48 and full.feature_channels() == 300
    assert auto_tile(full) < auto_tile(small)
    assert StegModel(small, tile=None).tile is None and StegModel(small, tile=0).tile is None
    assert StegModel(small, tile=30).tile == 32  # rounded up to size_multiple 4
    with pytest.raises(ValueError, match="tile"):
        StegModel(small, tile=-1)


def _empirical_radius(net, which: str) -> int:
    """Support of the response to a unit impulse, with all conv weights 1 and biases 0 (exact RF)."""
    net = net.double().eval()
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.weight.fill_(1.0)
                mod.bias.zero_()
    side = 2 * (net.receptive_radius() + 2 * net.size_multiple) + 8
    side = -(-side // net.size_multiple) * net.size_multiple  # the nets need multiples of it
    return impulse_radius(net, which, side=side, offsets=net.size_multiple)


@pytest.mark.parametrize(
    "net",
    [
        Subpixel(prep_width=1, widths=(1, 1)),
        Subpixel(prep_width=1, widths=(1, 1, 1)),
        Baluja(filters=1, depth=1),
        CNN(widths=(1, 1, 1), prep_layers=1, hide_layers=2, reveal_layers=3),
        UnshuffleUNet(width=1, depth=1),
        UnshuffleUNet(width=1, depth=2),
        QIMNet(width=1, depth=1, encoder=True, dither=False),
        QIMNet(width=1, depth=2, encoder=False),
        Payload(net={"name": "unet", "width": 1, "depth": 1}, factor=2),
        Payload(net={"name": "unet", "width": 1, "depth": 1}, factor=3, grayscale=True),
    ],
    ids=["subpixel2", "subpixel3", "baluja", "cnn", "unet1", "unet2", "qim_encoder", "qim", "payload2", "payload3"],
)
def test_receptive_radius_is_a_tight_bound(net):
    measured = max(_empirical_radius(net, which) for which in ("reveal", "secret", "cover"))
    assert net.receptive_radius() == measured
    assert default_margin(net) >= measured and default_margin(net) % net.size_multiple == 0


# --------------------------------------------------------------------------- #
# Python API
# --------------------------------------------------------------------------- #


def test_api_returns_the_kind_it_was_given(model, tmp_path):
    cover, secret = gradient_noise(48, 32, 1), gradient_noise(30, 50, 2)
    stego = model.hide(cover, secret)
    assert isinstance(stego, Image.Image) and stego.size == (48, 32) and stego.mode == "RGB"
    revealed = model.reveal(stego)
    assert isinstance(revealed, Image.Image) and revealed.size == (48, 32)
    # paths give PIL images
    cover.save(tmp_path / "c.png")
    secret.save(tmp_path / "s.png")
    assert np.array_equal(np.asarray(model.hide(tmp_path / "c.png", str(tmp_path / "s.png"))), np.asarray(stego))
    # tensors: (C, H, W) and (B, C, H, W), 8-bit values by default
    c, s = to_tensor(cover), to_tensor(secret.resize((48, 32), Image.BICUBIC))
    t = model.hide(c, s)
    assert t.shape == (3, 32, 48)
    assert torch.equal(t, to_tensor(stego))
    assert torch.allclose(t * 255, (t * 255).round(), atol=1e-4)
    batch = model.hide(torch.stack([c, c]), torch.stack([s, s]))
    assert batch.shape == (2, 3, 32, 48) and torch.equal(batch[1], t)
    raw = model.hide(c, s, quantize=False)
    assert torch.equal(quantize(raw), t)
    assert model.reveal(torch.stack([t, t])).shape == (2, 3, 32, 48)
    # a secret of another size or kind is fitted to the cover
    assert model.hide(c, torch.rand(3, 10, 90), fit="crop").shape == (3, 32, 48)
    assert model.hide(cover, secret, fit="crop").size == (48, 32)


def test_api_channel_conversion(files, tmp_path):
    rgb_model = load_model(files["export"])
    gray_cover = gradient_noise(24, 20, 5, mode="L")
    out = rgb_model.hide(gray_cover, gradient_noise(24, 20, 6))
    assert out.mode == "RGB" and out.size == (24, 20)
    gray_model = StegModel(tiny_net(channels=1))
    assert gray_model.channels == 1
    stego = gray_model.hide(gradient_noise(24, 20, 1), gradient_noise(24, 20, 2, mode="L"))
    assert stego.mode == "L" and stego.size == (24, 20)
    assert gray_model.reveal(stego).mode == "L"
    assert gray_model.hide(torch.rand(3, 20, 24), torch.rand(1, 20, 24)).shape == (1, 20, 24)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        gray_model.hide(torch.rand(4, 20, 24), torch.rand(1, 20, 24))
    with pytest.raises(TypeError, match="float tensor"):
        rgb_model.hide(torch.zeros(3, 8, 8, dtype=torch.uint8), torch.rand(3, 8, 8))


def test_reveal_sharpen(model):
    stego = model.hide(gradient_noise(40, 40, 1), gradient_noise(40, 40, 2))
    plain, sharp = model.reveal(stego), model.reveal(stego, sharpen=True)
    assert sharp.size == plain.size and sharp.mode == plain.mode
    assert not np.array_equal(np.asarray(plain), np.asarray(sharp))
    t = model.reveal(to_tensor(stego), sharpen=True)
    assert t.min() >= 0 and t.max() <= 1


def test_sharpen_in_strips_matches_whole_image():
    from steg.inference.images import sharpen_image

    torch.manual_seed(0)
    x = torch.rand(1, 3, 57, 40) * 1.2 - 0.1
    whole = sharpen_image(x, rows_per_strip=1000)
    strips = sharpen_image(x, rows_per_strip=7)
    assert (whole - strips).abs().max().item() < 1e-6
    assert whole.min() >= 0 and whole.max() <= 1


def test_load_net_info(files):
    net, info = load_net(files["ckpt"])
    assert info["kind"] == "checkpoint" and info["epoch"] == 3
    assert not net.training
    net, info = load_net(files["export"])
    assert info["kind"] == "export" and info["source_checkpoint"] == "tiny.ckpt"


# --------------------------------------------------------------------------- #
# The shipped model
# --------------------------------------------------------------------------- #


def test_shipped_model_round_trip(tmp_path):
    """The shipped model hides a 128x128 photo in another and reveals it from the saved PNG.

    Thresholds sit a little under what the shipped model measures (README: about
    36.7 dB stego and 36.6 dB revealed at 256x256): the stego image must stay
    close to the cover, and the revealed image close to the secret.
    """
    import steg

    assert SHIPPED.is_file(), f"the shipped model {SHIPPED} is missing"
    model = steg.load_model()
    covers = [photo(0, 128), photo(1, 128)]
    for i, (cover, secret) in enumerate([(covers[0], covers[1]), (covers[1], covers[0])]):
        stego = model.hide(cover, secret)
        assert stego.size == (128, 128)
        path = tmp_path / f"stego_{i}.png"
        stego.save(path)
        with Image.open(path) as img:
            loaded = img.convert(stego.mode)
        revealed = model.reveal(loaded)
        secret_t = to_tensor(secret.convert(revealed.mode))
        assert psnr(to_tensor(loaded), to_tensor(cover.convert(loaded.mode))) > 35.0
        revealed_psnr = psnr(to_tensor(revealed), secret_t)
        assert revealed_psnr > 32.0
        assert revealed_psnr > psnr(to_tensor(loaded), secret_t) + 10.0
