"""The digital hiding method (steg.digital): coding, costs, cipher, embedding, profiles, API and CLI."""

from __future__ import annotations

import io
import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from steg.data.photos import sample_photo_paths
from steg.digital import PROFILES, DigitalError, DigitalMethod
from steg.digital.cipher import PUBLIC_KEY, keyed_permutation, user_key
from steg.digital.codec import decode, encode, fit_codec, psnr8
from steg.digital.costs import hill, ternary_costs
from steg.digital.embed import embed_residue, layout, read_residue
from steg.digital.stc import parity_check_matrix, stc_embed, stc_extract
from steg.io import load_image, square_image
from steg.security.keys import derive_key

KEY = derive_key("digital tests")
NONCE = bytes(range(12))


def photo(i: int, side: int) -> np.ndarray:
    """Held-out photo i, centre square at ``side`` pixels: (side, side, 3) uint8."""
    return np.asarray(square_image(load_image(sample_photo_paths("val")[i], 3), side)).copy()


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).copy()


# --------------------------------------------------------------------------- STC
@pytest.mark.parametrize("n,m", [(40, 13), (300, 37), (256, 256), (1000, 101)])
def test_stc_message_is_the_syndrome_of_the_parity_check_matrix(n, m):
    rng = np.random.default_rng(n + m)  # test data only; the method itself never uses a seeded RNG
    x, rho, msg = rng.integers(0, 2, n), rng.random(n), rng.integers(0, 2, m)
    y = stc_embed(x, rho, msg)
    H = parity_check_matrix(n, m)
    assert np.array_equal(H.astype(np.int64) @ y % 2, msg)
    assert np.array_equal(stc_extract(y, m), msg)


def test_stc_changes_fewer_values_than_plain_lsb_at_equal_payload():
    rng = np.random.default_rng(1)
    n, m = 6000, 1500
    x, msg = rng.integers(0, 2, n), rng.integers(0, 2, m)
    y = stc_embed(x, np.ones(n), msg)
    stc_changes = int((y != x).sum())
    lsb_changes = int((x[:m] != msg).sum())  # plain LSB replacement of the same bits
    assert stc_changes < 0.7 * lsb_changes, (stc_changes, lsb_changes)


def test_stc_avoids_expensive_values():
    rng = np.random.default_rng(2)
    n, m = 2000, 200
    x, msg = rng.integers(0, 2, n), rng.integers(0, 2, m)
    rho = np.where(np.arange(n) % 2 == 0, 1000.0, 1.0)  # even positions cost 1000x more
    y = stc_embed(x, rho, msg)
    changed = np.nonzero(y != x)[0]
    assert len(changed) > 0 and np.mean(changed % 2 == 0) < 0.05


# --------------------------------------------------------------------------- costs
def test_costs_are_finite_inside_and_infinite_off_the_range():
    cover = photo(0, 32)
    cover[0, 0] = (0, 255, 128)
    plus, minus = ternary_costs(cover)
    assert np.isinf(plus[0, 0, 1]) and np.isfinite(minus[0, 0, 1])  # 255 cannot go up
    assert np.isinf(minus[0, 0, 0]) and np.isfinite(plus[0, 0, 0])  # 0 cannot go down
    assert np.isfinite(plus[0, 0, 2]) and np.isfinite(minus[0, 0, 2])
    inside = (cover > 0) & (cover < 255)
    assert np.all(np.isfinite(plus[inside])) and np.all(np.isfinite(minus[inside]))
    assert np.all(hill(cover) > 0) and np.all(np.isfinite(hill(cover)))


def test_hill_costs_more_in_smooth_areas():
    cover = np.full((64, 64, 3), 120, np.uint8)
    cover[:, 32:] = np.asarray(Image.effect_noise((32, 64), 60).convert("RGB"))
    rho = hill(cover)
    assert rho[:, :16].mean() > 10 * rho[:, 48:].mean()


# --------------------------------------------------------------------------- codec
def test_codec_picks_exact_lossless_when_it_fits_and_fits_the_budget_otherwise():
    secret = photo(1, 64)
    exact = fit_codec(secret, 10**6)
    assert exact.name == "webp-lossless" and exact.param == 1
    assert np.array_equal(decode(exact.data, exact.codec, exact.param, exact.coded_size), secret)
    small = fit_codec(secret, 600, codecs=("webp",))
    assert len(small.data) <= 600 and small.psnr > 20
    assert len(encode(secret, "webp", min(small.param + 1, 100), small.coded_size)) > 600 or small.param == 100


# --------------------------------------------------------------------------- key stream
def test_positions_and_stego_do_not_depend_on_seeded_generators():
    cover, data = photo(0, 64), b"no seeded RNG here"
    method = DigitalMethod("default")
    outs = []
    for seed in (0, 12345):
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
        outs.append((keyed_permutation(KEY, "digital/positions", 5000), method.hide_bytes(cover, data, KEY, NONCE)))
    assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[0][1], outs[1][1])
    other = derive_key("another key")
    assert not np.array_equal(keyed_permutation(other, "digital/positions", 5000), outs[0][0])
    assert not np.array_equal(method.hide_bytes(cover, data, other, NONCE), outs[0][1])
    assert not np.array_equal(layout(KEY, cover.size)[0], layout(other, cover.size)[0])


def test_the_package_uses_no_seeded_generator():
    import steg.digital

    for path in Path(steg.digital.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"np\.random|import random|default_rng|manual_seed|torch\.rand", text), path.name


def test_no_key_is_the_public_key():
    assert user_key(None) == PUBLIC_KEY
    cover, data = photo(2, 64), b"anyone can read this"
    method = DigitalMethod()
    assert method.reveal_bytes(method.hide_bytes(cover, data)) == data


# --------------------------------------------------------------------------- profiles
@pytest.mark.parametrize("profile", list(PROFILES))
def test_bit_exact_payload_round_trip(profile):
    side = 128 if profile == "robust" else 64
    cover = photo(3, side)
    method = DigitalMethod(profile)
    data = os.urandom(min(200, method.capacity(cover.shape)))
    stego = method.hide_bytes(cover, data, key=KEY)
    assert stego.shape == cover.shape and stego.dtype == np.uint8
    assert method.reveal_bytes(stego, key=KEY) == data
    assert method.reveal_bytes(stego, key=derive_key("wrong")) is None


def test_default_profile_changes_each_value_by_at_most_one():
    cover = photo(0, 96)
    cover[:8, :8] = 255
    cover[8:16, :8] = 0
    method = DigitalMethod("default")
    stego = method.hide_array(cover, photo(1, 64), key=KEY)
    diff = stego.astype(int) - cover
    assert np.abs(diff).max() == 1 and 0 < np.mean(diff != 0) < 0.6
    assert method.last_info[-1]["bits_per_value"] > 0.3


def test_capacity_profile_is_bit_exact_when_the_lossless_file_fits():
    cover, secret = photo(0, 128), photo(2, 96)  # the lossless file needs 3 bits a value here
    method = DigitalMethod("capacity")
    stego = method.hide_array(cover, secret, key=KEY)
    info = method.last_info[-1]
    assert info["codec"] == "webp-lossless" and info["param"] == 1 and info["channel"] == "3 bits a value"
    assert np.array_equal(method.reveal_array(stego, key=KEY), secret)
    assert np.abs(stego.astype(int) - cover).max() <= 7 and psnr8(stego, cover) > 37


@pytest.mark.parametrize("b", [1, 2, 3])
def test_residue_embedding_writes_b_bits_a_value_with_the_nearest_change(b):
    values = np.concatenate([np.arange(256), np.arange(256)]).astype(np.uint8)
    payload = np.frombuffer(os.urandom(len(values) * b), dtype=np.uint8) & 1
    out = embed_residue(values, payload, b)
    assert np.array_equal(read_residue(out, len(payload), b), payload)
    change = np.abs(out.astype(int) - values)
    inside = (values >= (1 << b)) & (values < 256 - (1 << b))
    assert change[inside].max() <= 1 << (b - 1) and change.max() < 1 << b


@pytest.mark.parametrize("profile", ["default", "stealth", "capacity"])
def test_wrong_key_and_no_key_give_noise_not_an_error(profile):
    cover, secret = photo(0, 64), photo(1, 64)
    method = DigitalMethod(profile)
    stego = method.hide_array(cover, secret, key=KEY)
    assert psnr8(method.reveal_array(stego, key=KEY), secret) > 20
    for key in (derive_key("wrong"), None):
        noise = method.reveal_array(stego, key=key)
        assert noise.shape == stego.shape and psnr8(noise, secret) <= 12


def test_a_cover_with_nothing_hidden_reveals_noise():
    cover = photo(2, 64)
    assert psnr8(DigitalMethod().reveal_array(cover, key=KEY), cover) <= 12


def test_corrupted_stego_with_the_right_key_is_a_one_line_error():
    cover = photo(0, 64)
    method = DigitalMethod("default")
    stego = method.hide_bytes(cover, os.urandom(300), key=KEY, nonce=NONCE)
    _, rest = layout(KEY, cover.size)
    flat = stego.reshape(-1).copy()
    hit = rest[:: max(1, len(rest) // 8)][:8]  # 8 payload values, all outside the head
    flat[hit] ^= 1
    with pytest.raises(DigitalError) as err:
        method.reveal_bytes(flat.reshape(stego.shape), key=KEY)
    assert "\n" not in str(err.value) and "changed" in str(err.value)


def test_capacity_overflow_says_how_large_a_cover_it_needs():
    noise = np.asarray(Image.effect_noise((128, 128), 80).convert("RGB"))
    method = DigitalMethod("stealth")
    with pytest.raises(DigitalError) as err:
        method.hide_array(photo(0, 32), noise, key=KEY)
    text = str(err.value)
    assert "\n" not in text and re.search(r"at least about (\d+)x(\d+) pixels", text)
    w = int(re.search(r"at least about (\d+)x", text).group(1))
    assert w > 32
    with pytest.raises(DigitalError, match="too small"):
        method.hide_bytes(np.zeros((8, 8, 3), np.uint8), b"x")


def test_robust_profile_survives_jpeg_90_bit_exact():
    cover = photo(1, 128)
    method = DigitalMethod("robust")
    data = os.urandom(method.capacity(cover.shape))
    stego = method.hide_bytes(cover, data, key=KEY)
    assert psnr8(stego, cover) >= 40
    assert method.reveal_bytes(jpeg(stego, 90), key=KEY) == data


@pytest.mark.slow
def test_robust_profile_survives_jpeg_90_on_the_heldout_photos():
    method = DigitalMethod("robust")
    for i in range(4):
        cover, secret = photo(i, 256), photo((i + 1) % 4, 256)
        stego = method.hide_array(cover, secret, key=KEY)
        clean = method.reveal_array(stego, key=KEY)
        assert np.array_equal(method.reveal_array(jpeg(stego, 90), key=KEY), clean), i
        assert psnr8(stego, cover) >= 40


# --------------------------------------------------------------------------- API and CLI
def test_load_model_digital_has_the_stegmodel_api():
    from steg import load_model

    model = load_model("digital", profile="stealth")
    assert "stealth" in model.describe()
    cover, secret = Image.fromarray(photo(0, 96)), Image.fromarray(photo(1, 48))
    stego = model.hide(cover, secret, key="pw")
    assert isinstance(stego, Image.Image) and stego.size == cover.size
    revealed = model.reveal(stego, key="pw")
    assert revealed.size == secret.size and psnr8(np.asarray(revealed), np.asarray(secret)) > 20
    t = torch.from_numpy(photo(2, 64)).permute(2, 0, 1).float() / 255
    out = model.hide_tensor(t[None], t[None], key="pw")
    assert out.shape == (1, 3, 64, 64) and torch.equal(out, torch.round(out * 255) / 255)
    with pytest.raises(Exception, match="digital only"):
        load_model("default", profile="stealth")
    with pytest.raises(DigitalError, match="unknown digital profile"):
        load_model("digital", profile="fast")


def test_cli_hide_reveal_with_profile(tmp_path, capsys):
    from steg.cli import main

    Image.fromarray(photo(0, 96)).save(tmp_path / "cover.png")
    Image.fromarray(photo(1, 64)).save(tmp_path / "secret.png")
    args = ["--model", "digital", "--profile", "default", "--key", "pw"]
    assert main(["hide", str(tmp_path / "cover.png"), str(tmp_path / "secret.png"), "-o", str(tmp_path / "s.png"),
                 *args]) == 0
    assert main(["reveal", str(tmp_path / "s.png"), "-o", str(tmp_path / "r.png"), *args]) == 0
    revealed = np.asarray(Image.open(tmp_path / "r.png"))
    assert psnr8(revealed, photo(1, 64)) > 30
    # a damaged stego image with the right key: one line, exit 2
    stego = np.asarray(Image.open(tmp_path / "s.png")).copy()
    _, rest = layout(derive_key("pw"), stego.size)
    flat = stego.reshape(-1)
    flat[rest[:5]] ^= 1
    Image.fromarray(stego).save(tmp_path / "bad.png")
    capsys.readouterr()
    assert main(["reveal", str(tmp_path / "bad.png"), "-o", str(tmp_path / "r2.png"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("steg: error:") and "\n" not in err and not (tmp_path / "r2.png").exists()
    assert main(["hide", str(tmp_path / "cover.png"), str(tmp_path / "secret.png"), "-o", str(tmp_path / "x.png"),
                 "--model", "default", "--profile", "stealth"]) == 2
    assert "--model digital only" in capsys.readouterr().err
    assert main(["export", "digital", "-o", str(tmp_path / "d.onnx")]) == 2
    assert "Python only" in capsys.readouterr().err


def test_bench_measures_the_digital_profiles_like_shipped_models():
    from types import SimpleNamespace

    from steg.bench.common import DIGITAL_TARGETS, digital_payload, resolve_targets
    from steg.bench.quality import trained_model
    from steg.bench.tables import _model
    from steg.inference.model import load_model

    assert set(DIGITAL_TARGETS) <= {t.name for t in resolve_targets(None)}
    (target,) = resolve_targets("digital:stealth")
    source, where = trained_model(SimpleNamespace(), target)
    model = load_model(source)
    assert isinstance(model, DigitalMethod) and model.profile_name == "stealth" and "nothing to train" in where
    assert digital_payload(model) == {}
    model.hide_tensor(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 32, 32))
    row = {"model": target.name, "kind": target.kind, **digital_payload(model)}
    assert 0 < row["payload"]["bits_per_value"] <= 0.15 and "bit/value" in _model(row)
    # the attackers' own stego images (analyze's steganalyser training) are not the method's payload
    made = model.net.hide_with_key(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64), None)
    assert made.shape == (2, 3, 64, 64) and len(model.last_info) == 1


def test_cli_eval_reports_the_digital_payload(tmp_path, capsys):
    import json

    from steg.cli import main

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(photo(i, 64)).save(folder / f"{i}.png")
    assert main(["eval", "--model", "digital:stealth", "--key", "k", "--covers", str(folder), "--size", "64",
                 "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "profile stealth" in out and re.search(r"digital payload: 0\.1\d+ bits per value", out)
    report = json.loads((tmp_path / "e.json").read_text())
    assert len(report["digital"]) == 3 and report["psnr_secret"] > 20
    assert main(["eval", "--model", "digital:stealth", "--profile", "robust", "--covers", str(folder)]) == 2
    assert "disagree" in capsys.readouterr().err


def test_a_few_damaged_head_values_are_outvoted_by_the_other_copies():
    cover, data = photo(1, 64), os.urandom(100)
    method = DigitalMethod("default")
    stego = method.hide_bytes(cover, data, key=KEY)
    head, _ = layout(KEY, cover.size)
    flat = stego.reshape(-1).copy()
    flat[head[:6]] ^= 1  # the first copy's values only
    assert method.reveal_bytes(flat.reshape(stego.shape), key=KEY) == data


def test_cli_reveals_a_jpeg_90_copy_with_the_robust_profile(tmp_path, capsys):
    from steg.cli import main

    Image.fromarray(photo(2, 128)).save(tmp_path / "cover.png")
    Image.fromarray(photo(3, 48)).save(tmp_path / "secret.png")
    args = ["--model", "digital", "--profile", "robust", "--key", "pw"]
    assert main(["hide", str(tmp_path / "cover.png"), str(tmp_path / "secret.png"), "-o", str(tmp_path / "s.png"),
                 *args]) == 0
    Image.open(tmp_path / "s.png").save(tmp_path / "s.jpg", quality=90)
    capsys.readouterr()
    assert main(["reveal", str(tmp_path / "s.jpg"), "-o", str(tmp_path / "r.png"), *args]) == 0
    assert "lossy" not in capsys.readouterr().err
    assert psnr8(np.asarray(Image.open(tmp_path / "r.png")), photo(3, 48)) > 18  # noise scores about 8 dB


def test_steg_hide_and_reveal_use_the_digital_method_by_default(tmp_path, capsys):
    """Without --model, `steg hide`/`steg reveal` use the method that wins for a lossless PNG: digital, default profile."""
    from steg.cli import main

    Image.fromarray(photo(0, 96)).save(tmp_path / "cover.png")
    Image.fromarray(photo(1, 64)).save(tmp_path / "secret.png")
    assert main(["hide", str(tmp_path / "cover.png"), str(tmp_path / "secret.png"), "-o", str(tmp_path / "s.png"),
                 "--key", "pw"]) == 0
    cover = np.asarray(Image.open(tmp_path / "cover.png")).astype(int)
    stego = np.asarray(Image.open(tmp_path / "s.png")).astype(int)
    assert np.abs(stego - cover).max() <= 1  # the default profile's +-1 changes, not qim's up to 6 levels
    assert main(["reveal", str(tmp_path / "s.png"), "-o", str(tmp_path / "r.png"), "--key", "pw"]) == 0
    assert psnr8(np.asarray(Image.open(tmp_path / "r.png")), photo(1, 64)) > 30
    # the shipped qim net is one option away, and cannot read the digital stego image
    assert main(["reveal", str(tmp_path / "s.png"), "-o", str(tmp_path / "q.png"), "--key", "pw",
                 "--model", "default"]) == 0
    fitted = np.asarray(Image.open(tmp_path / "secret.png").resize((96, 96), Image.BICUBIC))  # qim reveals at cover size
    assert psnr8(np.asarray(Image.open(tmp_path / "q.png")), fitted) < 20


def test_the_codec_search_psnr_is_steg_psnr():
    """psnr8 (numpy, so that steg hide imports no torchmetrics) gives steg.metrics' figure."""
    import torch

    from steg.digital.codec import psnr8
    from steg.metrics import psnr_per_image

    a, b = photo(0, 64), photo(1, 64)
    as_tensor = [torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (a, b)]
    assert psnr8(a, b) == pytest.approx(float(psnr_per_image(*as_tensor)[0]), abs=1e-3)
