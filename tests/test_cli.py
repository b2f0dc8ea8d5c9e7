"""Tests for the ``steg`` command line (hide, reveal, eval, export), run in-process via ``steg.cli.main``.

A small randomly initialised Subpixel net saved in tmp_path stands in for a
trained model. Every failure must be one line ``steg: error: ...`` on stderr
naming the file, exit status 2, and leave no output (not even a temp file).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
import torch
from PIL import Image

from steg.cli import GRID_NAME, HISTOGRAM_NAME, main
from steg.inference.files import export_checkpoint
from steg.nets import Subpixel
from conftest import gradient_noise, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
STEG_KEYS = ("n", "psnr_stego", "ssim_stego", "apd_stego", "psnr_secret", "ssim_secret", "apd_secret")


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def tiny_net(channels: int = 3, widths=(4, 8), seed: int = 0) -> Subpixel:
    torch.manual_seed(seed)
    return Subpixel(channels=channels, prep_width=4, widths=widths).eval()


def sample_crop(index: int, size: int) -> Image.Image:
    from steg.data import sample_photo_paths

    with Image.open(sample_photo_paths("val")[index]) as img:
        img = img.convert("RGB")
        img.thumbnail((3 * size, 3 * size))
    return img.crop((0, 0, size + 7 * index, size))


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *names) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("steg: error: "), line
    assert "Traceback" not in err
    for name in names:
        assert str(name) in line, f"{name} not named in: {line}"
    return line


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    ckpt = save_checkpoint(tiny_net(), root / "tiny.ckpt")
    gray = save_checkpoint(tiny_net(channels=1, seed=1), root / "gray.ckpt")
    return {
        "ckpt": ckpt,
        "export": export_checkpoint(ckpt, root / "tiny.safetensors"),
        "gray": gray,
        "root": root,
    }


@pytest.fixture()
def images(tmp_path) -> dict[str, Path]:
    """A cover (PNG, 60x44), a secret of another size (JPEG), a grayscale secret, in tmp_path/in."""
    folder = tmp_path / "in"
    folder.mkdir()
    paths = {
        "cover": folder / "cover.png",
        "secret": folder / "secret.jpg",
        "gray": folder / "gray.png",
    }
    gradient_noise(60, 44, 1).save(paths["cover"])
    sample_crop(0, 40).save(paths["secret"], quality=95)
    gradient_noise(30, 30, 2, mode="L").save(paths["gray"])
    return paths


# --------------------------------------------------------------------------- #
# hide / reveal
# --------------------------------------------------------------------------- #


def test_hide_reveal_round_trip(models, images, tmp_path, capsys):
    stego, revealed = tmp_path / "stego.png", tmp_path / "revealed.png"
    code, out, err = run(capsys, "hide", images["cover"], images["secret"], "-o", stego, "--model", models["export"])
    assert code == 0, err
    assert "stego.png" in out
    with Image.open(stego) as img:
        assert img.format == "PNG" and img.size == (60, 44) and img.mode == "RGB"
    code, out, err = run(capsys, "reveal", stego, "-o", revealed, "--model", models["ckpt"])
    assert code == 0, err
    with Image.open(revealed) as img:
        assert img.format == "PNG" and img.size == (60, 44) and img.mode == "RGB"
    # the CLI writes exactly what the API computes
    from steg import load_model

    model = load_model(models["export"])
    from steg.io import load_image

    expected = model.hide(load_image(images["cover"]), load_image(images["secret"]))
    assert np.array_equal(np.asarray(Image.open(stego)), np.asarray(expected))
    assert listing(tmp_path) == {"in", "stego.png", "revealed.png"}


def test_hide_fit_crop_sharpen_and_tiling(models, images, tmp_path, capsys):
    stego, sharp = tmp_path / "stego.png", tmp_path / "sharp.png"
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", stego,
                       "--model", models["ckpt"], "--fit", "crop", "--tile", "16")
    assert code == 0, err
    code, out, err = run(capsys, "reveal", stego, "-o", sharp, "--model", models["ckpt"], "--sharpen")
    assert code == 0, err
    assert "sharpened" in out
    with Image.open(sharp) as img:
        assert img.size == (60, 44)


def test_grayscale_model_and_images(models, images, tmp_path, capsys):
    stego, revealed = tmp_path / "stego.png", tmp_path / "revealed.png"
    # grayscale model: RGB cover and grey secret -> 'L' stego and revealed
    code, _, err = run(capsys, "hide", images["cover"], images["gray"], "-o", stego, "-m", models["gray"])
    assert code == 0, err
    code, _, err = run(capsys, "reveal", stego, "-o", revealed, "-m", models["gray"])
    assert code == 0, err
    for path in (stego, revealed):
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (60, 44)
    # RGB model: grey cover and secret -> RGB stego
    code, _, err = run(capsys, "hide", images["gray"], images["gray"], "-o", stego, "-m", models["ckpt"], "--force")
    assert code == 0, err
    with Image.open(stego) as img:
        assert img.mode == "RGB" and img.size == (30, 30)


@pytest.mark.parametrize("name", ["stego.jpg", "stego.JPEG", "stego.webp", "stego.gif", "stego.bmp", "stego"])
def test_hide_refuses_lossy_or_non_png_output(models, images, tmp_path, capsys, name):
    out = tmp_path / name
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "-m", models["ckpt"])
    line = assert_one_line_error(code, err, out)
    assert "lossy compression destroys the hidden image" in line and ".png" in line
    assert listing(tmp_path) == {"in"}


def test_reveal_refuses_non_png_output(models, images, tmp_path, capsys):
    out = tmp_path / "secret.jpg"
    code, _, err = run(capsys, "reveal", images["cover"], "-o", out, "-m", models["ckpt"])
    assert_one_line_error(code, err, out)
    assert not out.exists()


def test_existing_output_needs_force(models, images, tmp_path, capsys):
    out = tmp_path / "stego.png"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "-m", models["ckpt"])
    line = assert_one_line_error(code, err, out)
    assert "--force" in line
    assert out.read_bytes() == b"precious"
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "-m", models["ckpt"], "--force")
    assert code == 0, err
    with Image.open(out) as img:
        assert img.size == (60, 44)
    revealed = tmp_path / "revealed.png"
    revealed.write_bytes(b"precious")
    code, _, err = run(capsys, "reveal", out, "-o", revealed, "-m", models["ckpt"])
    assert_one_line_error(code, err, revealed)
    assert revealed.read_bytes() == b"precious"


def test_output_equal_to_input_is_refused_even_with_force(models, images, tmp_path, capsys):
    before = images["cover"].read_bytes()
    for out in (images["cover"], images["cover"].parent / ".." / "in" / "cover.png"):
        code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "-m", models["ckpt"], "--force")
        line = assert_one_line_error(code, err, out)
        assert "input" in line
    assert images["cover"].read_bytes() == before
    secret = images["gray"]
    before = secret.read_bytes()
    code, _, err = run(capsys, "hide", images["cover"], secret, "-o", secret, "-m", models["ckpt"], "--force")
    assert_one_line_error(code, err, secret)
    code, _, err = run(capsys, "reveal", secret, "-o", secret, "-m", models["ckpt"], "--force")
    assert_one_line_error(code, err, secret)
    assert secret.read_bytes() == before


def test_missing_and_corrupt_images(models, images, tmp_path, capsys):
    out = tmp_path / "stego.png"
    missing = tmp_path / "nope.png"
    code, _, err = run(capsys, "hide", missing, images["secret"], "-o", out, "-m", models["ckpt"])
    assert_one_line_error(code, err, missing)
    code, _, err = run(capsys, "hide", images["cover"], missing, "-o", out, "-m", models["ckpt"])
    assert_one_line_error(code, err, missing)
    code, _, err = run(capsys, "reveal", missing, "-o", out, "-m", models["ckpt"])
    assert_one_line_error(code, err, missing)

    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(images["cover"].read_bytes()[:300])
    text = tmp_path / "text.jpg"
    text.write_text("not an image at all")
    for bad in (garbage, truncated, text):
        code, _, err = run(capsys, "hide", images["cover"], bad, "-o", out, "-m", models["ckpt"])
        line = assert_one_line_error(code, err, bad)
        assert "unreadable or corrupt" in line
        code, _, err = run(capsys, "reveal", bad, "-o", out, "-m", models["ckpt"])
        assert_one_line_error(code, err, bad)
    assert not out.exists()
    assert listing(tmp_path) == {"in", "garbage.png", "truncated.png", "text.jpg"}


@pytest.mark.parametrize("limit", [2000, 1000], ids=["warning", "error"])
def test_decompression_bomb_is_an_error(models, images, tmp_path, capsys, monkeypatch, limit):
    # cover is 60x44 = 2640 pixels: above 2000 Pillow warns, above 2 * 1000 it raises
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    out = tmp_path / "stego.png"
    code, _, err = run(capsys, "hide", images["cover"], images["gray"], "-o", out, "-m", models["ckpt"])
    line = assert_one_line_error(code, err, images["cover"])
    assert "decompression bomb" in line
    assert not out.exists()


def test_bad_model_files(models, images, tmp_path, capsys):
    out = tmp_path / "stego.png"
    root = tmp_path / "models"
    root.mkdir()
    text = root / "notes.txt"
    text.write_text("not a model\n")
    data = models["ckpt"].read_bytes()
    cut_ckpt = root / "cut.ckpt"
    cut_ckpt.write_bytes(data[: len(data) // 3])
    data = models["export"].read_bytes()
    cut_export = root / "cut.safetensors"
    cut_export.write_bytes(data[: len(data) - 64])
    net = tiny_net()
    wrong = save_checkpoint(net, root / "wrong.ckpt", arch_config={**net.arch_config, "prep_width": 6})
    other = save_checkpoint(net, root / "other.ckpt", arch_config={"name": "cnn", "channels": 3, "widths": [2, 2, 2]})
    unknown = save_checkpoint(net, root / "unknown.ckpt", arch_config={**net.arch_config, "name": "vit"})
    cases = {
        images["cover"]: "not a model file",
        text: "not a model file",
        cut_ckpt: "corrupt or truncated",
        cut_export: "corrupt or truncated",
        wrong: "weights do not match",
        other: "weights do not match",
        unknown: "unknown architecture",
        root / "missing.ckpt": "not found",
    }
    for model, expected in cases.items():
        code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "-m", model)
        line = assert_one_line_error(code, err, model)
        assert expected in line, line
    code, _, err = run(capsys, "reveal", images["cover"], "-o", out, "-m", cut_export)
    assert_one_line_error(code, err, cut_export)
    assert not out.exists()
    assert listing(tmp_path) == {"in", "models"}


def test_missing_shipped_model(images, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("steg.inference.files.PRETRAINED_DIR", tmp_path / "pretrained")
    out = tmp_path / "stego.png"
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "--model", "default")
    line = assert_one_line_error(code, err, "default", tmp_path / "pretrained" / "default.safetensors")
    assert "not found" in line
    code, _, err = run(capsys, "reveal", images["cover"], "-o", out, "--model", "mystery")
    assert_one_line_error(code, err, "mystery.safetensors")
    assert not out.exists()


def test_failed_write_leaves_no_partial_output(models, images, tmp_path, capsys, monkeypatch):
    out = tmp_path / "stego.png"
    original = Image.Image.save

    def broken_save(self, fp, *args, **kwargs):
        original(self, fp, *args, **kwargs)  # the bytes are on disk ...
        raise OSError(28, "No space left on device")  # ... then the disk fills up

    monkeypatch.setattr(Image.Image, "save", broken_save)
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "-m", models["ckpt"])
    assert_one_line_error(code, err)
    assert "No space left" in err
    assert listing(tmp_path) == {"in"}


def test_usage_errors_are_one_line(capsys):
    for argv in (["hide"], ["hide", "a.png", "b.png"], ["bogus"], ["eval"], ["hide", "a", "b", "-o", "c.png", "--fit", "zoom"],
                 ["reveal", "a", "-o", "c.png", "--tile", "big"], ["reveal", "a", "-o", "c.png", "--tile", "-5"]):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err)
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "hide" in out and "reveal" in out and "eval" in out and "export" in out


def test_python_dash_m_steg_errors_without_traceback(tmp_path):
    """A real process: exit status 2, one line on stderr, no traceback (the lossy check needs no torch)."""
    cover = tmp_path / "cover.png"
    gradient_noise(8, 8).save(cover)
    result = subprocess.run(
        [sys.executable, "-m", "steg", "hide", str(cover), str(cover), "-o", str(tmp_path / "stego.jpg")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("steg: error: ")
    assert "stego.jpg" in result.stderr and "lossy" in result.stderr


# --------------------------------------------------------------------------- #
# export
# --------------------------------------------------------------------------- #


def test_export_command(models, images, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    code, stdout, err = run(capsys, "export", models["ckpt"], "-o", out)
    assert code == 0, err
    assert "subpixel" in stdout
    hide_a, hide_b = tmp_path / "a.png", tmp_path / "b.png"
    assert run(capsys, "hide", images["cover"], images["secret"], "-o", hide_a, "-m", out)[0] == 0
    assert run(capsys, "hide", images["cover"], images["secret"], "-o", hide_b, "-m", models["ckpt"])[0] == 0
    assert hide_a.read_bytes() == hide_b.read_bytes()

    before = out.read_bytes()
    code, _, err = run(capsys, "export", models["ckpt"], "-o", out)
    assert "--force" in assert_one_line_error(code, err, out)
    assert out.read_bytes() == before
    assert run(capsys, "export", models["ckpt"], "-o", out, "--force")[0] == 0

    code, _, err = run(capsys, "export", models["ckpt"], "-o", tmp_path / "model.pt")
    assert_one_line_error(code, err, tmp_path / "model.pt")
    code, _, err = run(capsys, "export", images["cover"], "-o", tmp_path / "x.safetensors")
    assert_one_line_error(code, err, images["cover"])
    code, _, err = run(capsys, "export", tmp_path / "none.ckpt", "-o", tmp_path / "x.safetensors")
    assert_one_line_error(code, err, tmp_path / "none.ckpt")
    assert listing(tmp_path) == {"in", "model.safetensors", "a.png", "b.png"}


# --------------------------------------------------------------------------- #
# eval
# --------------------------------------------------------------------------- #


def _folder(path: Path, specs) -> Path:
    path.mkdir(parents=True)
    for i, (w, h, mode) in enumerate(specs):
        img = sample_crop(i % 4, min(w, h)).resize((w, h)) if i % 2 else gradient_noise(w, h, i)
        img.convert(mode).save(path / f"img_{i:02d}.png")
    return path


def _check_report(report: dict, n: int) -> None:
    for key in STEG_KEYS:
        assert key in report, key
        assert key == "n" or math.isfinite(report[key]), (key, report[key])
        if key != "n":
            assert math.isfinite(report[f"{key}_median"])
            values = [row[key] for row in report["images"]]  # the 95% CI of the mean, per image spread
            half = float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
            assert report[f"{key}_ci95"] == pytest.approx(half, rel=1e-9, abs=1e-12)
    assert report["n"] == n == len(report["images"])
    assert 0 <= report["apd_stego"] <= 255 and -1 <= report["ssim_secret"] <= 1
    assert report["psnr_stego"] > 0
    assert "subpixel" in report["model"]
    for row in report["images"]:
        assert {"cover", "secret", "psnr_stego", "ssim_secret", "apd_secret"} <= set(row)


def test_eval_one_folder(models, tmp_path, capsys):
    covers = _folder(tmp_path / "covers", [(40, 32, "RGB"), (36, 36, "L"), (48, 30, "RGB")])
    report_path, out_dir = tmp_path / "report.json", tmp_path / "figures"
    code, out, err = run(capsys, "eval", "--model", models["export"], "--covers", covers,
                         "--json", report_path, "--out", out_dir)
    assert code == 0, err
    assert "PSNR" in out and "SSIM" in out and "median" in out and "95% CI" in out and "tie" in out
    report = json.loads(report_path.read_text())
    _check_report(report, 3)
    # one folder: image i hides image i + 1, wrapping
    names = [(Path(r["cover"]).name, Path(r["secret"]).name) for r in report["images"]]
    assert names == [("img_00.png", "img_01.png"), ("img_01.png", "img_02.png"), ("img_02.png", "img_00.png")]
    assert [(r["width"], r["height"]) for r in report["images"]] == [(40, 32), (36, 36), (48, 30)]
    assert (out_dir / GRID_NAME).is_file() and (out_dir / HISTOGRAM_NAME).is_file()
    with Image.open(out_dir / GRID_NAME) as grid:
        assert grid.size[0] > 4 * 32
    # the report is not overwritten without --force
    code, _, err = run(capsys, "eval", "--model", models["export"], "--covers", covers, "--json", report_path)
    assert_one_line_error(code, err, report_path)


def test_eval_two_folders_and_size(models, tmp_path, capsys):
    covers = _folder(tmp_path / "covers", [(40, 32, "RGB"), (36, 36, "RGB"), (48, 30, "RGB")])
    secrets = _folder(tmp_path / "secrets", [(20, 50, "RGB"), (64, 64, "L")])
    report_path = tmp_path / "report.json"
    code, _, err = run(capsys, "eval", "-m", models["ckpt"], "--covers", covers, "--secrets", secrets,
                       "--size", 24, "--json", report_path)
    assert code == 0, err
    report = json.loads(report_path.read_text())
    _check_report(report, 2)
    assert report["size"] == 24
    assert all((r["width"], r["height"]) == (24, 24) for r in report["images"])
    assert [Path(r["secret"]).parent.name for r in report["images"]] == ["secrets", "secrets"]


def test_eval_grayscale_model(models, tmp_path, capsys):
    covers = _folder(tmp_path / "covers", [(32, 32, "RGB"), (32, 32, "L")])
    report_path = tmp_path / "gray.json"
    code, _, err = run(capsys, "eval", "-m", models["gray"], "--covers", covers, "--json", report_path)
    assert code == 0, err
    assert json.loads(report_path.read_text())["n"] == 2


def test_eval_errors(models, tmp_path, capsys):
    one = _folder(tmp_path / "one", [(32, 32, "RGB")])
    code, _, err = run(capsys, "eval", "-m", models["ckpt"], "--covers", one)
    assert_one_line_error(code, err, one)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "eval", "-m", models["ckpt"], "--covers", empty)
    assert_one_line_error(code, err, empty)
    code, _, err = run(capsys, "eval", "-m", models["ckpt"], "--covers", tmp_path / "nowhere")
    assert_one_line_error(code, err, tmp_path / "nowhere")
    code, _, err = run(capsys, "eval", "-m", models["ckpt"], "--covers", one, "--secrets", one, "--size", 0)
    assert_one_line_error(code, err, "--size")


def test_eval_skips_unreadable_images(models, tmp_path, capsys):
    covers = _folder(tmp_path / "covers", [(32, 32, "RGB"), (32, 32, "RGB"), (32, 32, "RGB")])
    (covers / "img_01.png").write_bytes(b"broken")
    report_path = tmp_path / "report.json"
    code, _, err = run(capsys, "eval", "-m", models["ckpt"], "--covers", covers, "--json", report_path)
    assert code == 0, err
    assert "warning" in err and "img_01.png" in err
    assert err.count("img_01.png") == 1  # one warning line for the one bad file
    report = json.loads(report_path.read_text())
    # one bad image costs one pair: 00 hides 02 and 02 hides 00 (once 2 of 3 pairs were dropped)
    assert report["n"] == 2 and len(report["skipped"]) == 1 and "img_01.png" in report["skipped"][0]
    assert [(Path(r["cover"]).name, Path(r["secret"]).name) for r in report["images"]] == [
        ("img_00.png", "img_02.png"), ("img_02.png", "img_00.png")]


def test_samples_writes_the_held_out_photos_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "photos"
    assert main(["samples", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["chelsea.png", "coffee.png", "grace_hopper.png", "rocket.png"]
    before = (out / "coffee.png").stat().st_mtime_ns
    assert main(["samples", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "coffee.png").stat().st_mtime_ns == before


# --------------------------------------------------------------------------- #
# Inputs are never outputs; bad outputs refused before any work; warnings
# --------------------------------------------------------------------------- #


def test_eval_never_overwrites_an_input_even_with_force(models, tmp_path, capsys):
    covers = _folder(tmp_path / "covers", [(32, 32, "RGB"), (32, 32, "RGB")])
    target = covers / "img_00.png"
    before = target.read_bytes()
    code, _, err = run(capsys, "eval", "-m", models["ckpt"], "--covers", covers, "--json", target, "--force")
    assert_one_line_error(code, err, target, "input")
    gradient_noise(32, 32, 9).save(covers / GRID_NAME)  # a cover that --out would overwrite
    grid_before = (covers / GRID_NAME).read_bytes()
    code, _, err = run(capsys, "eval", "-m", models["ckpt"], "--covers", covers, "--out", covers, "--force")
    assert_one_line_error(code, err, covers / GRID_NAME, "input")
    assert target.read_bytes() == before and (covers / GRID_NAME).read_bytes() == grid_before


def test_eval_skips_images_too_small_for_ssim(models, tmp_path, capsys):
    covers = _folder(tmp_path / "covers", [(32, 32, "RGB"), (5, 40, "RGB"), (32, 32, "RGB")])
    report_path = tmp_path / "report.json"
    code, _, err = run(capsys, "eval", "-m", models["ckpt"], "--covers", covers, "--json", report_path)
    assert code == 0, err
    warnings_ = [line for line in err.splitlines() if line.startswith("steg: warning: ")]
    assert len(warnings_) == 1 and "img_01.png" in warnings_[0] and "5x40" in warnings_[0]
    report = json.loads(report_path.read_text())
    assert report["n"] == 2 and len(report["skipped"]) == 1


def _unwritable_folder(tmp_path: Path) -> Path:
    import os

    if os.geteuid() == 0:  # root writes through permissions: use a file system that refuses everyone
        return Path("/sys")
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


def test_unwritable_output_is_refused_before_the_model_runs(models, images, tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr("steg.cli.images.load_model", no_model)
    out = _unwritable_folder(tmp_path) / "stego.png"
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "-m", models["ckpt"])
    line = assert_one_line_error(code, err, out, "cannot be written")
    assert ".tmp" not in line


def test_hide_write_failure_names_the_output(models, images, tmp_path, capsys, monkeypatch):
    def full_disk(path, write, suffix=None, exclusive=False):
        raise OSError(28, "No space left on device", f"{path.parent}/.{path.name}.abc.tmp")

    monkeypatch.setattr("steg.io.write_atomic", full_disk)
    out = tmp_path / "stego.png"
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "-m", models["ckpt"])
    line = assert_one_line_error(code, err, out, "No space left")
    assert ".tmp" not in line and not out.exists()


def test_hide_never_replaces_an_output_that_appears_while_it_runs(models, images, tmp_path, capsys, monkeypatch):
    """Two `steg hide` to one output without --force: the one that publishes second fails, nothing is lost."""
    import steg.cli.images as images_cli

    out = tmp_path / "stego.png"
    load = images_cli.load_model

    def load_then_other_writer(args):
        model = load(args)
        Image.new("RGB", (8, 8), (1, 2, 3)).save(out)  # the other `steg hide` finishes first
        return model

    monkeypatch.setattr(images_cli, "load_model", load_then_other_writer)
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "-m", models["ckpt"])
    line = assert_one_line_error(code, err, out, "--force")
    assert "appeared" in line
    with Image.open(out) as img:
        assert img.size == (8, 8)  # the other writer's file is kept
    assert listing(tmp_path) == {"in", "stego.png"}  # no temporary file left
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", out, "-m", models["ckpt"], "--force")
    assert code == 0, err
    with Image.open(out) as img:
        assert img.size == (60, 44)


def test_hide_and_reveal_refuse_an_image_over_the_stated_size_before_decoding(models, images, tmp_path, capsys):
    """A small PNG declaring 9000x9000 (once a 5.45 GB peak) is refused in one line from its header."""
    from steg.cli.images import MAX_PIXELS

    big = tmp_path / "big.png"
    Image.new("L", (9000, 9000), 128).save(big)
    assert big.stat().st_size < 200_000 and 9000 * 9000 > MAX_PIXELS
    for argv in (["hide", big, images["secret"]], ["hide", images["cover"], big], ["reveal", big]):
        out = tmp_path / "out.png"
        code, _, err = run(capsys, *argv, "-o", out, "-m", models["ckpt"])
        line = assert_one_line_error(code, err, big, "9000x9000", "81.0 megapixels", f"{MAX_PIXELS / 1e6:.1f}")
        assert "resize" in line and not out.exists()


def test_hide_refuses_a_cover_too_small_and_says_how_the_secret_is_fitted(models, images, tmp_path, capsys):
    for size in ((1, 1), (2000, 3)):
        tiny_cover = tmp_path / f"cover_{size[0]}x{size[1]}.png"
        gradient_noise(*size, 3).save(tiny_cover)
        out = tmp_path / "out.png"
        code, _, err = run(capsys, "hide", tiny_cover, images["secret"], "-o", out, "-m", models["ckpt"])
        line = assert_one_line_error(code, err, tiny_cover, f"{size[0]}x{size[1]}", "too small")
        assert not out.exists()
    # how the 40x40 secret is fitted to the 60x44 cover is said; no warning for a mild change
    code, printed, err = run(capsys, "hide", images["cover"], images["secret"], "-o", tmp_path / "a.png",
                             "-m", models["ckpt"])
    assert code == 0 and "warning" not in err
    assert "resized to 60x44 (aspect ratio not kept; --fit crop keeps it)" in printed
    code, printed, _ = run(capsys, "hide", images["cover"], images["secret"], "-o", tmp_path / "b.png",
                           "-m", models["ckpt"], "--fit", "crop")
    assert code == 0 and "centre-cropped (aspect ratio kept)" in printed
    # a secret shrunk more than 4x on a side: one warning line
    big_secret = tmp_path / "big_secret.png"
    gradient_noise(400, 100, 4).save(big_secret)
    code, _, err = run(capsys, "hide", images["cover"], big_secret, "-o", tmp_path / "c.png", "-m", models["ckpt"])
    warned = [line for line in err.splitlines() if line.startswith("steg: warning: ")]
    assert code == 0 and len(warned) == 1 and "400x100" in warned[0] and "shrunk 7x" in warned[0], err


def _png_chunks(path: Path) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk of a PNG file but the pixel data (IDAT), in order."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        chunks.append((kind, b"" if kind == b"IDAT" else data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


def test_stego_png_carries_nothing_a_plain_png_lacks(models, images, tmp_path, capsys):
    """A stego PNG's chunks and metadata are those of a plain PNG Pillow writes of the same pixels."""
    stego = tmp_path / "stego.png"
    assert run(capsys, "hide", images["cover"], images["secret"], "-o", stego, "-m", models["ckpt"])[0] == 0
    plain = tmp_path / "plain.png"
    with Image.open(stego) as img:
        Image.fromarray(np.asarray(img)).save(plain)
        stego_info, stego_text = dict(img.info), dict(img.text)
    with Image.open(plain) as img:
        plain_info, plain_text = dict(img.info), dict(img.text)
    assert _png_chunks(stego) == _png_chunks(plain)
    assert stego_info == plain_info and stego_text == plain_text == {}


def test_reveal_warns_about_lossy_or_resized_stego_images(models, images, tmp_path, capsys):
    stego = tmp_path / "stego.png"
    assert run(capsys, "hide", images["cover"], images["secret"], "-o", stego, "-m", models["ckpt"])[0] == 0
    code, _, err = run(capsys, "reveal", stego, "-o", tmp_path / "r0.png", "-m", models["ckpt"])
    assert code == 0 and "warning" not in err  # as steg hide wrote it
    with Image.open(stego) as img:
        img.save(tmp_path / "stego.jpg", quality=95)
        img.resize((61, 45)).save(tmp_path / "resized.png")
        tagged = img.copy()
    for name, words in (("stego.jpg", ["JPEG", "lossy"]), ("resized.png", ["61x45", "grid"])):
        code, _, err = run(capsys, "reveal", tmp_path / name, "-o", tmp_path / f"r_{name}.png", "-m", models["ckpt"])
        assert code == 0, err  # still revealed
        lines = [line for line in err.splitlines() if line.startswith("steg: warning: ")]
        assert len(lines) == 1 and all(w in lines[0] for w in words), err
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("steg-stego", "60x44")
    tagged.crop((0, 0, 58, 44)).save(tmp_path / "cropped.png", pnginfo=info)  # an editor that keeps the tag
    code, _, err = run(capsys, "reveal", tmp_path / "cropped.png", "-o", tmp_path / "r3.png", "-m", models["ckpt"])
    assert code == 0 and "58x44" in err and "60x44" in err


def test_grayscale_cover_with_rgb_model_warns_and_gives_rgb(models, images, tmp_path, capsys):
    out = tmp_path / "stego.png"
    code, _, err = run(capsys, "hide", images["gray"], images["secret"], "-o", out, "-m", models["ckpt"])
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("steg: warning: ")]
    assert len(lines) == 1 and "grayscale" in lines[0] and "RGB" in lines[0]
    with Image.open(out) as img:
        assert img.mode == "RGB"
    code, _, err = run(capsys, "hide", images["cover"], images["secret"], "-o", tmp_path / "s2.png",
                       "-m", models["ckpt"])
    assert code == 0 and "warning" not in err


@pytest.mark.parametrize("arch", [{"name": "qim", "channels": 3, "width": 1500, "depth": 2},
                                  {"name": "qim", "depth": 200000},  # once 5 minutes, 3.2 GB
                                  {"name": "qim", "channels": 5_000_000}],  # once 25 s, 3.4 GB (the dither)
                         ids=["width", "depth", "channels"])
def test_model_config_is_checked_before_anything_is_allocated(tmp_path, arch):
    """A small file whose arch_config asks for a huge net fails at once, without building or allocating it."""
    from safetensors.torch import save_file

    from steg.inference.files import FORMAT

    bad = tmp_path / "huge.safetensors"
    meta = {"format": FORMAT, "format_version": "1", "arch_config": json.dumps(arch)}
    save_file({"reveal_net.head.0.weight": torch.zeros(1)}, str(bad), metadata=meta)
    code = (
        "import resource, sys, time, torch\n"
        "from steg.inference.files import ModelError, load_net\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "start = time.monotonic()\n"
        "try:\n"
        "    load_net(sys.argv[1])\n"
        "except ModelError as exc:\n"
        "    print(exc)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
        "print(time.monotonic() - start)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    message, grown_mb, seconds = proc.stdout.strip().splitlines()
    assert "weights do not match" in message and str(bad) in message
    assert int(grown_mb) < 100  # a width-1500 qim would take about 650 MB
    assert float(seconds) < 10  # on 2 shared cores; a few ms alone


@pytest.mark.parametrize("arch", [{"name": "zen", "target": "this.Zen"},
                                  {"name": "payload", "net": {"name": "zen", "target": "this.Zen"}}])
def test_model_file_target_is_refused_before_import(tmp_path, arch):
    """A model file naming a class that is neither built in nor allowed by the user imports nothing."""
    from safetensors.torch import save_file

    from steg.inference.files import FORMAT

    bad = tmp_path / "zen.safetensors"
    save_file({"w": torch.zeros(1)}, str(bad),
              metadata={"format": FORMAT, "format_version": "1", "arch_config": json.dumps(arch)})
    code = (
        "import sys\n"
        "from steg.inference.files import ModelError, load_net\n"
        "try:\n"
        "    load_net(sys.argv[1])\n"
        "except ModelError as exc:\n"
        "    print('ERROR', exc)\n"
        "print('imported' if 'this' in sys.modules else 'not imported')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "STEG_ALLOW_ARCH"}
    proc = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1], env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Beautiful is better" not in proc.stdout and proc.stdout.strip().endswith("not imported"), proc.stdout
    error = proc.stdout.splitlines()[0]
    assert error.startswith("ERROR") and str(bad) in error and "--allow-arch this.Zen" in error
    # the user names it: now it is imported (and then refused, not being a StegNet)
    proc = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1], env={**env, "STEG_ALLOW_ARCH": "this.Zen"})
    assert "Beautiful is better" in proc.stdout and "is not a steg.nets.StegNet subclass" in proc.stdout


def test_hide_and_reveal_never_import_lightning_hydra_or_torchmetrics(models, images, tmp_path):
    """The light path: steg hide / steg reveal / load_model().hide(PIL, PIL) with those packages unimportable."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('lightning', 'pytorch_lightning', 'hydra', 'omegaconf', 'torchmetrics'):\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    stego, revealed = tmp_path / "stego.png", tmp_path / "revealed.png"
    code = blocker + (
        "from steg.cli import main\n"
        f"assert main(['hide', {str(images['cover'])!r}, {str(images['secret'])!r}, '-o', {str(stego)!r}]) == 0\n"
        f"assert main(['reveal', {str(stego)!r}, '-o', {str(revealed)!r}]) == 0\n"
        "from PIL import Image\n"
        "from steg import load_model\n"
        f"m = load_model({str(models['export'])!r})\n"
        f"s = m.hide(Image.open({str(images['cover'])!r}), Image.open({str(images['secret'])!r}))\n"
        "assert m.reveal(s).size == s.size\n"
        "assert not [k for k in sys.modules if k.split('.')[0] in ('lightning', 'hydra', 'torchmetrics')]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert stego.is_file() and revealed.is_file()


@pytest.mark.slow
def test_readme_robustness_table_is_what_its_command_measures(tmp_path, capsys):
    """The robustness page's first row (docs/robustness.md), re-measured with the command written beside it (the shipped model)."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "docs" / "robustness.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| revealed PSNR (dB) | "))
    header = readme.splitlines()[readme.splitlines().index(row) - 2]
    attacks = [a.strip() for a in header.strip("|").split("|")[1:]]
    documented = dict(zip(attacks, (float(v) for v in row.strip("|").split("|")[1:])))
    assert main(["samples", str(tmp_path / "photos")]) == 0
    report = tmp_path / "r.json"
    assert main(["eval", "--covers", str(tmp_path / "photos"), "--size", "256", "--json", str(report),
                 "--attack", ",".join(a for a in attacks if a != "none")]) == 0
    capsys.readouterr()
    measured = json.loads(report.read_text())
    assert documented["none"] == round(measured["psnr_secret"], 2)
    for attack, value in documented.items():
        if attack != "none":
            assert value == pytest.approx(measured["attacks"][attack]["psnr_secret"], abs=0.011), attack
    assert re.search(r"--attack jpeg:90,jpeg:75,webp:80,noise:2,resize:0.5,blur:1,crop:0.9", readme)
