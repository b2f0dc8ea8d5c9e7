"""steg.distortions.attacks: real codecs and resampling, spec errors, per-attack measurement, steg eval --attack."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from steg.distortions import attacks as A
from steg.inference.evaluation import evaluate_attacks
from steg.cli import main
from steg.io import to_pil, to_tensor
from conftest import gradient_noise

EXAMPLE = "jpeg:90,jpeg:75,webp:80,noise:2,resize:0.5,blur:1,crop:0.9"


def arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


def rmse(a: Image.Image, b: Image.Image) -> float:
    return float(np.sqrt(((arr(a) - arr(b)) ** 2).mean()))


def smooth(size=64) -> Image.Image:
    x = np.linspace(40, 200, size)
    base = (x[None, :] + x[:, None]) / 2
    return Image.fromarray(np.stack([base, base[::-1], base.T], -1).astype(np.uint8), "RGB")


def checkerboard(size=64) -> Image.Image:
    ii, jj = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return Image.fromarray((((ii + jj) % 2) * 255).astype(np.uint8), "L").convert("RGB")


# --------------------------------------------------------------------------- #
# Parsing
# --------------------------------------------------------------------------- #


def test_parse_example():
    attacks = A.parse_attacks(EXAMPLE)
    assert [a.spec for a in attacks] == EXAMPLE.split(",")
    assert A.parse_attacks("jpeg:90, jpeg:90 ,noise:2") == [A.Attack("jpeg", 90.0), A.Attack("noise", 2.0)]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("jpeg:abc", "jpeg:Q"), ("jpeg:0", "jpeg:Q"), ("jpeg:101", "jpeg:Q"), ("jpeg:90.5", "jpeg:Q"),
        ("jpeg", "jpeg:Q"), ("webp:-1", "webp:Q"), ("noise:-1", "noise:SIGMA"), ("noise:nan", "noise:SIGMA"),
        ("resize:0", "resize:SCALE"), ("resize:1.5", "resize:SCALE"), ("blur:0", "blur:RADIUS"),
        ("crop:2", "crop:FRACTION"), ("rotate:5", "jpeg:Q, webp:Q"),
    ],
)
def test_bad_spec_is_one_line_naming_spec_and_form(spec, expected):
    with pytest.raises(A.AttackError) as info:
        A.parse_attacks(f"jpeg:90,{spec}")
    message = str(info.value)
    assert "\n" not in message and repr(spec) in message and expected in message


@pytest.mark.parametrize("text", ["", " , ", "jpeg:90,,noise:2"])
def test_empty_entries(text):
    with pytest.raises(A.AttackError, match="empty"):
        A.parse_attacks(text)


# --------------------------------------------------------------------------- #
# Real codecs
# --------------------------------------------------------------------------- #


def test_jpeg_attack_goes_through_a_real_jpeg(monkeypatch):
    written = []
    real_encode = A.encode
    monkeypatch.setattr(A, "encode", lambda img, fmt, q: written.append(real_encode(img, fmt, q)) or written[-1])
    img = gradient_noise(64, 48)
    out = A.apply_attack(img, "jpeg:75")
    (data,) = written
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    with Image.open(io.BytesIO(data)) as reopened:
        assert reopened.format == "JPEG" and reopened.size == (64, 48)
        assert np.array_equal(arr(reopened.convert("RGB")), arr(out.image))
    assert out.box is None and out.image.mode == "RGB"


def test_webp_attack_goes_through_a_real_webp(monkeypatch):
    written = []
    real_encode = A.encode
    monkeypatch.setattr(A, "encode", lambda img, fmt, q: written.append(real_encode(img, fmt, q)) or written[-1])
    out = A.apply_attack(gradient_noise(64, 48), "webp:80")
    (data,) = written
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    with Image.open(io.BytesIO(data)) as reopened:
        assert reopened.format == "WEBP"
        assert np.array_equal(arr(reopened.convert("RGB")), arr(out.image))


def test_jpeg_changes_noise_by_quality_and_keeps_flat_images():
    noisy = gradient_noise(64, 64)
    flat = Image.new("RGB", (64, 64), (120, 130, 140))
    e90, e50 = rmse(A.apply_attack(noisy, "jpeg:90").image, noisy), rmse(A.apply_attack(noisy, "jpeg:50").image, noisy)
    assert 2 < e90 < e50
    assert rmse(A.apply_attack(flat, "jpeg:50").image, flat) < 1.5


def test_grey_images_stay_grey():
    img = gradient_noise(32, 32, mode="L")
    for attack in A.parse_attacks(EXAMPLE):
        assert attack(img).image.mode == "L"


def test_noise_std_in_levels_and_seeded():
    grey = Image.new("RGB", (128, 128), (128, 128, 128))
    out = A.apply_attack(grey, "noise:3", np.random.default_rng(1)).image
    assert (arr(out) - 128).std() == pytest.approx(3.0, rel=0.05)
    again = A.apply_attack(grey, "noise:3", np.random.default_rng(1)).image
    assert np.array_equal(arr(out), arr(again))


def test_resize_keeps_smooth_and_destroys_checkerboard():
    assert rmse(A.apply_attack(smooth(), "resize:0.5").image, smooth()) < 3
    assert rmse(A.apply_attack(checkerboard(), "resize:0.5").image, checkerboard()) > 90
    assert A.apply_attack(smooth(), "resize:0.5").image.size == (64, 64)


def test_blur_lowers_high_frequencies():
    img = gradient_noise(64, 64)

    def energy(im):
        a = arr(im)
        return (np.diff(a, axis=0) ** 2).mean() + (np.diff(a, axis=1) ** 2).mean()

    assert energy(A.apply_attack(img, "blur:2").image) < 0.5 * energy(A.apply_attack(img, "blur:0.5").image) < energy(img)


def test_crop_keeps_the_centre_and_windows_match():
    img = gradient_noise(100, 60)
    out = A.apply_attack(img, "crop:0.5")
    assert out.box == (15, 25, 30, 50) and out.image.size == (50, 30)
    assert np.array_equal(arr(out.image), arr(img)[15:45, 25:75])
    assert np.array_equal(arr(out.window(img)), arr(out.image))
    t = to_tensor(img)
    assert torch.equal(out.window(t), to_tensor(out.image))


# --------------------------------------------------------------------------- #
# Measuring
# --------------------------------------------------------------------------- #


class SecretIsStego:
    """A fake model whose stego image is the secret and whose reveal is the identity:
    what it reveals after an attack is the attacked secret itself."""

    channels = 3

    def hide_tensor(self, cover, secret, key=None):
        return secret.clone()

    def reveal_tensor(self, stego, key=None):
        return stego.clone()


def test_attack_pair_measures_the_right_images():
    cover, secret = (to_tensor(gradient_noise(64, 64, seed=s)).unsqueeze(0) for s in (0, 1))
    rows = A.attack_pair(SecretIsStego(), cover, secret, A.parse_attacks("jpeg:75,crop:0.5"), keep_images=True)
    assert [r["attack"] for r in rows] == ["clean", "jpeg:75", "crop:0.5"]
    secret_img = to_pil(secret[0])
    jpeg = A.apply_attack(secret_img, "jpeg:75").image
    expected = 10 * np.log10(255.0**2 / ((arr(jpeg) - arr(secret_img)) ** 2).mean())
    assert rows[1]["psnr_secret"] == pytest.approx(expected, abs=1e-3)
    assert rows[0]["psnr_secret"] == float("inf") and rows[0]["ssim_secret"] == pytest.approx(1.0)
    assert rows[2]["psnr_secret"] == float("inf")  # the secret is cut to the crop's window
    assert rows[2]["secret"].shape == (3, 32, 32)
    grid = A.attack_grid(rows)
    assert grid.height > 3 * 64


def test_shipped_model_is_fragile_and_crop_survives():
    import steg

    model = steg.load_model()
    pairs = [(gradient_noise(64, 64, seed=0), gradient_noise(64, 64, seed=1))]
    report = evaluate_attacks(model, pairs, "jpeg:75,crop:0.75", size=64)
    s = report.summary
    assert list(s) == ["clean", "jpeg:75", "crop:0.75"] and s["clean"]["n"] == 1
    assert s["clean"]["psnr_secret"] > 28
    assert s["jpeg:75"]["psnr_secret"] < s["clean"]["psnr_secret"] - 10
    assert "jpeg:75" in report.table and report.grid is not None


def test_evaluate_attacks_is_evaluate_with_attacks(tmp_path):
    """One loop over pairs: evaluate_attacks gives evaluate's attack figures, takes PIL images
    like paths, and skips an unreadable pair with a warning as steg eval does."""
    import steg
    from steg.inference.evaluation import evaluate

    model = steg.load_model()
    path = tmp_path / "secret.png"
    gradient_noise(64, 64, seed=1).save(path)
    pairs = [(gradient_noise(64, 64, seed=0), path), (tmp_path / "missing.png", path)]
    with pytest.warns(UserWarning, match="missing.png"):
        report = evaluate_attacks(model, pairs, "jpeg:90,noise:2", size=64, seed=3)
    with pytest.warns(UserWarning, match="missing.png"):
        result = evaluate(model, pairs, size=64, attacks="jpeg:90,noise:2", attack_seed=3)
    assert report.summary == result.attack_summary and report.summary["clean"]["n"] == 1
    assert [(r["pair"], r["attack"]) for r in report.rows] == [(0, "clean"), (0, "jpeg:90"), (0, "noise:2")]
    assert report.grid is not None


# --------------------------------------------------------------------------- #
# steg eval --attack
# --------------------------------------------------------------------------- #


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        gradient_noise(64, 64, seed=i).save(folder / f"p{i}.png")
    return folder


def test_eval_attack_table_json_and_grid(photo_dir, tmp_path, capsys):
    out, report = tmp_path / "out", tmp_path / "eval.json"
    code = main(["eval", "--covers", str(photo_dir), "--size", "64", "--attack", "jpeg:90,crop:0.5",
                 "--json", str(report), "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "jpeg:90" in stdout and "crop:0.5" in stdout
    data = json.loads(report.read_text())
    assert set(data["attacks"]) == {"clean", "jpeg:90", "crop:0.5"}
    assert data["attacks"]["clean"]["psnr_secret"] == pytest.approx(data["psnr_secret"], abs=1e-4)
    assert len(data["attack_images"]) == 2 * 3
    with Image.open(out / "eval_attacks.png") as grid:
        assert grid.format == "PNG"


def test_eval_bad_attack_is_one_line_and_writes_nothing(photo_dir, tmp_path, capsys):
    report = tmp_path / "eval.json"
    code = main(["eval", "--covers", str(photo_dir), "--attack", "jpeg:90,jpeg:200", "--json", str(report)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--attack" in err and "'jpeg:200'" in err and "jpeg:Q" in err
    assert not report.exists()


def test_eval_bad_attack_fails_before_the_model_loads(photo_dir, capsys):
    code = main(["eval", "--covers", str(photo_dir), "--model", "no-such-model", "--attack", "gif:3"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--attack" in err and "no-such-model" not in err


def test_eval_existing_attack_grid_is_kept_without_force(photo_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "eval_attacks.png").write_bytes(b"mine")
    code = main(["eval", "--covers", str(photo_dir), "--size", "64", "--attack", "jpeg:90", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "eval_attacks.png" in err
    assert (out / "eval_attacks.png").read_bytes() == b"mine"
    assert not (out / "eval_grid.png").exists()
