"""Keys: derivation, the key stream, keyed qim with the shipped model, keyed learned models (model.keyed=true)
through the API, model files, tiles, the CLI and steg analyze, and the CLI options."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from torchmetrics.functional.image import peak_signal_noise_ratio

from steg.security import keys
from steg.nets import qim
from steg.cli import main
from steg.data import sample_photo_paths
from steg.inference.model import StegModel, load_model
from steg.io import load_image, square_image, to_tensor
from steg.nets.qim import known_secret_dither
from steg.security.leakage import keyless_attacks
from steg.nets import StegNet, UnshuffleUNet
from steg.quantize import quantize
from conftest import save_checkpoint


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=1.0, dim=(1, 2, 3)))


@pytest.fixture(scope="module")
def shipped():
    return load_model()


@pytest.fixture(scope="module")
def photos():
    """Three held-out photos, 128 x 128, (1, 3, 128, 128) each."""
    return [to_tensor(square_image(load_image(p, 3), 128)).unsqueeze(0) for p in sample_photo_paths("val")[:3]]


# --- derivation and stream --------------------------------------------------------------------


def test_derive_key_is_deterministic_and_depends_on_the_passphrase():
    a = keys.derive_key("correct horse")
    assert a == keys.derive_key(b"correct horse") and len(a) == keys.KEY_BYTES
    assert a != keys.derive_key("correct horse!")
    assert isinstance(a, keys.DerivedKey) and "correct" not in repr(a)
    assert keys.resolve_key(a) is a and keys.resolve_key("correct horse") == a and keys.resolve_key(None) is None
    with pytest.raises(keys.StegKeyError, match="empty key"):
        keys.derive_key("")


def test_key_stream_does_not_depend_on_torch_or_python_rngs():
    key = keys.derive_key("pw")
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    stream, field = keys.key_stream(key, "demo", 64), keys.key_field(key, "demo", (2, 5, 7))
    torch.manual_seed(12345), random.seed(999), np.random.seed(7)
    torch.rand(100), random.random()
    assert keys.key_stream(key, "demo", 64) == stream
    assert torch.equal(keys.key_field(key, "demo", (2, 5, 7)), field)
    assert keys.key_stream(key, "other", 64) != stream
    assert keys.key_stream(keys.derive_key("pw2"), "demo", 64) != stream


def test_key_field_is_uniform_and_any_window_matches_the_whole():
    key = keys.derive_key("pw")
    whole = keys.key_field(key, "demo", (3, 40, 50), rows=(0, 48), width=56)  # beyond H, W: padding
    assert whole.shape == (3, 48, 56)
    assert torch.equal(keys.key_field(key, "demo", (3, 40, 50)), whole[:, :40, :50])
    assert torch.equal(keys.key_field(key, "demo", (3, 40, 50), rows=(17, 29), width=30), whole[:, 17:29, :30])
    assert 0 < float(whole.min()) and float(whole.max()) < 1 and abs(float(whole.mean()) - 0.5) < 0.03
    # another image size gives another stream
    assert not torch.equal(keys.key_field(key, "demo", (3, 41, 50))[:, :40], whole[:, :40, :50])
    dither = keys.keyed_dither(key, 13, (3, 40, 50))
    assert 0 <= float(dither.min()) and float(dither.max()) < 13 and float(dither.max()) > 12


def test_read_key_file(tmp_path):
    path = tmp_path / "k.txt"
    path.write_bytes(b"correct horse\n")
    assert keys.read_key_file(path) == keys.derive_key("correct horse")
    raw = tmp_path / "k.bin"
    raw.write_bytes(bytes(range(32)))
    assert keys.read_key_file(raw) == keys.derive_key(bytes(range(32)))
    (tmp_path / "empty").write_bytes(b"\n")
    (tmp_path / "big").write_bytes(b"x" * (keys.MAX_KEY_FILE_BYTES + 1))
    for name, expected in (("missing", "not found"), ("empty", "is empty"), ("big", "expected at most"), (".", "not a file")):
        with pytest.raises(keys.StegKeyError, match=expected) as info:
            keys.read_key_file(tmp_path / name)
        assert "\n" not in str(info.value) and str(tmp_path / name) in str(info.value)


def test_nonce_round_trip_and_wrong_key():
    key, nonce = keys.derive_key("pw"), bytes(range(12))
    stego = torch.randint(8, 248, (1, 3, 16, 40)) / 255.0  # away from 0/255, where a pixel moves by P
    marked = qim.embed_nonce(stego, key, nonce, 13)
    assert qim.read_nonce(marked, key, 13) == nonce
    assert qim.read_nonce(marked, keys.derive_key("other"), 13) != nonce
    changed = (marked - stego).abs() * 255
    assert int((changed > 0.5).sum()) <= qim.NONCE_BITS and float(changed.max()) <= 6.5
    assert qim.nonce_positions((1, 8, 8)) is None  # too small: no nonce


# --- keyed qim with the shipped model -----------------------------------------------------------


def test_right_key_reveals_wrong_or_no_key_gives_noise(shipped, photos):
    key = keys.derive_key("correct horse battery staple")
    for cover, secret in ((photos[0], photos[1]), (photos[1], photos[2])):
        plain = quantize(shipped.hide_tensor(cover, secret))
        stego = quantize(shipped.hide_tensor(cover, secret, key=key))
        today = psnr(quantize(shipped.reveal_tensor(plain)), secret)
        right = psnr(quantize(shipped.reveal_tensor(stego, key=key)), secret)
        assert psnr(stego, cover) > 35.0
        assert right > 33.0 and right > today - 1.0, (right, today)
        for wrong in (keys.derive_key("correct horse battery stapler"), None):
            got = shipped.reveal_tensor(stego, key=wrong)  # an image, never an error
            assert got.shape == secret.shape and psnr(quantize(got), secret) < 10.0


def test_keyless_residue_attack_reads_unkeyed_stego_but_not_keyed(shipped, photos):
    cover, secret = photos[0], photos[1]
    plain = quantize(shipped.hide_tensor(cover, secret))
    keyed = quantize(shipped.hide_tensor(cover, secret, key="pw"))
    attack = keyless_attacks(plain)
    assert psnr(attack["residue/13"], secret) > 25.0  # the attack works where there is something to read
    best = max(psnr(v, secret) for k, v in keyless_attacks(keyed).items() if k.startswith("residue/"))
    assert best < 10.0


def test_tiles_line_up_and_a_reused_key_leaks_no_stream(shipped, photos):
    cover, secret = photos[0][..., :120, :104], photos[1][..., :120, :104]
    tiled = StegModel(shipped.net, tile=32)
    nonce = b"n" * qim.NONCE_BYTES
    whole = shipped.hide_tensor(cover, secret, key="pw", nonce=nonce)
    assert torch.equal(tiled.hide_tensor(cover, secret, key="pw", nonce=nonce), whole)
    assert tiled.calls > 1
    stego = quantize(whole)
    assert torch.allclose(tiled.reveal_tensor(stego, key="pw"), shipped.reveal_tensor(stego, key="pw"), atol=1e-5)
    # key reuse: a known (stego, secret) pair gives the dither of that image only
    other = quantize(shipped.hide_tensor(photos[1][..., :120, :104], photos[2][..., :120, :104], key="pw"))
    dither = known_secret_dither(stego, secret, shipped.net.period)
    with torch.inference_mode():
        own = psnr(quantize(shipped.net.reveal(stego, key=dither)), secret)
        stolen = psnr(quantize(shipped.net.reveal(other, key=dither)), photos[2][..., :120, :104])
    assert own > 20.0  # the estimate is good for the image it came from
    assert stolen < 12.0


def test_unkeyed_architecture_refuses_a_key():
    model = StegModel(UnshuffleUNet(width=4, depth=1).eval(), tile=None)
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="no keyed mode"):
        model.hide_tensor(x, x, key="pw")
    with pytest.raises(ValueError, match="no keyed mode"):
        model.net.reveal(x, key=b"k")


# --- command line -----------------------------------------------------------------------------


def test_cli_key_options(tmp_path, capsys):
    from PIL import Image

    paths = sample_photo_paths("val")
    cover, secret = tmp_path / "c.png", tmp_path / "s.png"
    square_image(load_image(paths[0], 3), 64).save(cover)
    square_image(load_image(paths[1], 3), 64).save(secret)
    keyfile = tmp_path / "key.txt"
    keyfile.write_text("correct horse\n")

    assert main(["hide", str(cover), str(secret), "-o", str(tmp_path / "plain.png")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "anyone with the model can reveal" in err

    assert main(["hide", str(cover), str(secret), "-o", str(tmp_path / "st.png"), "--key", "correct horse"]) == 0
    assert "warning" not in capsys.readouterr().err
    s = to_tensor(load_image(secret, 3)).unsqueeze(0)
    for option, out in ((["--key-file", str(keyfile)], "r1.png"), (["--key", "wrong horse"], "r2.png"), ([], "r3.png")):
        assert main(["reveal", str(tmp_path / "st.png"), "-o", str(tmp_path / out), *option]) == 0
    right, wrong, none = (to_tensor(Image.open(tmp_path / n).convert("RGB")).unsqueeze(0) for n in ("r1.png", "r2.png", "r3.png"))
    assert psnr(right, s) > 30.0 and psnr(wrong, s) < 12.0 and psnr(none, s) < 12.0

    capsys.readouterr()
    assert main(["reveal", str(tmp_path / "st.png"), "-o", str(tmp_path / "r4.png"), "--key-file", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "key file" in err and "not found" in err and not (tmp_path / "r4.png").exists()
    assert main(["reveal", str(tmp_path / "st.png"), "-o", str(tmp_path / "r5.png"), "--key", "a", "--key-file", str(keyfile)]) == 2
    assert "not allowed with" in capsys.readouterr().err


def test_cli_eval_key_goes_through_the_library(tmp_path, capsys):
    import json

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, path in enumerate(sample_photo_paths("val")[:2]):
        square_image(load_image(path, 3), 64).save(folder / f"img_{i}.png")
    keyfile = tmp_path / "key.txt"
    keyfile.write_text("correct horse\n")
    figures = {}
    for name, option in (("plain", []), ("keyed", ["--key-file", str(keyfile)])):
        out = tmp_path / f"{name}.json"
        assert main(["eval", "--covers", str(folder), "--json", str(out), *option]) == 0
        figures[name] = json.loads(out.read_text())
    assert figures["keyed"]["keyed"] is True and figures["plain"]["keyed"] is False
    assert figures["keyed"]["psnr_stego"] != figures["plain"]["psnr_stego"]  # the key changed the stego images
    # the right key, end to end: the secret comes back about as well as without a key
    assert figures["keyed"]["psnr_secret"] > 30.0
    assert figures["keyed"]["psnr_secret"] > figures["plain"]["psnr_secret"] - 1.5
    capsys.readouterr()
    assert main(["eval", "--covers", str(folder), "--key", "k", "--model", str(tmp_path / "none.safetensors")]) == 2


# --- keyed learned models (model.keyed=true) ----------------------------------------------------


class Transparent(StegNet):
    """A perfect "learned" net: the stego image is the secret it is given, reveal gives it back.

    With a key it is given the scrambled secret, so it isolates the keyed pipeline (scrambling at
    whole-image level, nonce, model file, CLI) from how well a net learns.
    """

    name = "transparent_test"

    def __init__(self, channels: int = 3):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(()))

    def hide(self, cover, secret):
        return self.gain * secret

    def reveal(self, stego):
        return self.gain * stego

    def receptive_radius(self) -> int:
        return 0


def held_out(size: int) -> list[torch.Tensor]:
    return [to_tensor(square_image(load_image(p, 3), size)).unsqueeze(0) for p in sample_photo_paths("val")]


@pytest.fixture(autouse=True)
def _allow_transparent(monkeypatch):
    """Model files of this test's own net load only when named (steg.nets.registry's trust model)."""
    monkeypatch.setenv("STEG_ALLOW_ARCH", f"{Transparent.__module__}.{Transparent.__qualname__}")


@pytest.fixture(scope="module")
def keyed_ckpt(tmp_path_factory):
    return save_checkpoint(Transparent(keyed=True), tmp_path_factory.mktemp("keyed") / "transparent.ckpt")


def test_keyed_learned_model_right_key_reveals_wrong_or_no_key_gives_noise(keyed_ckpt):
    model = load_model(keyed_ckpt, tile=None)
    assert model.net.keyed and model.net.arch_config["keyed"] is True
    for size in (256, 64):  # with the per-image nonce, and too small for one
        photos = held_out(size)
        wrongs = []
        for i in range(len(photos)):
            cover, secret = photos[i], photos[(i + 1) % len(photos)]
            stego = quantize(model.hide_tensor(cover, secret, key="correct horse"))
            right = psnr(quantize(model.reveal_tensor(stego, key="correct horse")), secret)
            wrong = psnr(quantize(model.reveal_tensor(stego, key="correct horse!")), secret)
            none = psnr(quantize(model.reveal_tensor(stego)), secret)  # the public net alone: the scrambled secret
            grey = psnr(torch.full_like(secret, 0.5), secret)  # an image that knows nothing
            # right: the identity net's exact secret but for the ~1536 nonce pixels filled from their
            # neighbours, which land anywhere (random nonce): 34.9-37 dB seen
            assert right > 32.0 and max(wrong, none) < min(grey, 13.0), (size, i, right, wrong, none, grey)
            wrongs += [wrong, none]
        assert sum(wrongs) / len(wrongs) < 11.0, (size, wrongs)
    # one key, many images: the same secret hidden twice is scrambled twice differently (nonce)
    cover, secret = held_out(256)[:2]
    a, b = (quantize(model.hide_tensor(cover, secret, key="pw")) for _ in range(2))
    assert (a != b).float().mean() > 0.5
    assert psnr(quantize(model.reveal_tensor(b, key="pw")), secret) > 32.0


def test_a_briefly_trained_keyed_net_reveals_with_the_right_key_only():
    """A tiny keyed unet trained for 400 steps (scrambled secrets, a fresh key per image) on crops of the
    training photos reveals held-out secrets clearly better with the right key than with a wrong one."""
    torch.manual_seed(0)
    photos = [to_tensor(load_image(p, 3)) for p in sample_photo_paths("train")]

    def crops(n: int, side: int = 32) -> torch.Tensor:
        out = []
        for _ in range(n):
            p = photos[int(torch.randint(len(photos), (1,)))]
            y, x = (int(torch.randint(p.shape[i] - side, (1,))) for i in (1, 2))
            out.append(p[:, y : y + side, x : x + side])
        return torch.stack(out)

    net = UnshuffleUNet(width=16, depth=1, keyed=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(400):
        cover, secret = crops(8), crops(8)
        out = net(cover, secret, quantize=True)
        loss = torch.nn.functional.mse_loss(out["stego"], cover) + torch.nn.functional.mse_loss(out["revealed"], out["target"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model = StegModel(net.eval(), tile=None)
    test = held_out(64)
    right, wrong = [], []
    for i in range(len(test)):
        cover, secret = test[i], test[(i + 1) % len(test)]
        stego = quantize(model.hide_tensor(cover, secret, key="pw"))
        right.append(psnr(quantize(model.reveal_tensor(stego, key="pw")), secret))
        wrong.append(psnr(quantize(model.reveal_tensor(stego, key="not pw")), secret))
        assert right[-1] > wrong[-1] + 2.0, (right, wrong)
    assert sum(right) / len(right) > sum(wrong) / len(wrong) + 5.0 and sum(wrong) / len(wrong) < 12.0, (right, wrong)


def test_keyed_learned_model_tiles_line_up_with_the_whole_image():
    torch.manual_seed(0)
    net = UnshuffleUNet(width=4, depth=1, keyed=True).eval()
    for p in net.parameters():  # the residual head starts at zero: make the net see the secret
        torch.nn.init.normal_(p, std=0.3)
    cover, secret = held_out(256)[:2]
    whole, tiled = StegModel(net, tile=None), StegModel(net, tile=64)
    nonce = b"n" * 6
    stego = whole.hide_tensor(cover, secret, key="pw", nonce=nonce)
    assert torch.allclose(tiled.hide_tensor(cover, secret, key="pw", nonce=nonce), stego, atol=1e-5)
    assert tiled.calls > 4
    assert torch.allclose(tiled.reveal_tensor(quantize(stego), key="pw"), whole.reveal_tensor(quantize(stego), key="pw"),
                          atol=1e-5)


def test_keyed_model_files_keep_the_keyed_flag(keyed_ckpt, tmp_path):
    from steg.inference.files import export_checkpoint, load_net

    net, _ = load_net(keyed_ckpt)
    assert net.keyed and net.arch_config["keyed"] is True
    exported = export_checkpoint(keyed_ckpt, tmp_path / "t.safetensors")
    model = load_model(exported)
    assert model.net.keyed and model.net.arch_config == net.arch_config and "keyed=True" in model.describe()
    plain, _ = load_net(save_checkpoint(Transparent(), tmp_path / "plain.ckpt"))
    assert not plain.keyed and "keyed" not in plain.arch_config


def test_cli_hide_reveal_with_a_keyed_learned_checkpoint(keyed_ckpt, tmp_path, capsys):
    from PIL import Image

    cover, secret = tmp_path / "c.png", tmp_path / "s.png"
    for path, image in zip((cover, secret), sample_photo_paths("val")):
        square_image(load_image(image, 3), 256).save(path)
    model = ["--model", str(keyed_ckpt)]
    assert main(["hide", str(cover), str(secret), "-o", str(tmp_path / "plain.png"), *model]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "anyone with the model can reveal" in err
    assert main(["hide", str(cover), str(secret), "-o", str(tmp_path / "st.png"), "--key", "correct horse", *model]) == 0
    assert "warning" not in capsys.readouterr().err
    keyfile = tmp_path / "key.txt"
    keyfile.write_text("correct horse\n")
    for option, out in ((["--key-file", str(keyfile)], "r1.png"), (["--key", "wrong horse"], "r2.png"), ([], "r3.png")):
        assert main(["reveal", str(tmp_path / "st.png"), "-o", str(tmp_path / out), *option, *model]) == 0
    s = to_tensor(load_image(secret, 3)).unsqueeze(0)
    right, wrong, none = (to_tensor(Image.open(tmp_path / n).convert("RGB")).unsqueeze(0) for n in ("r1.png", "r2.png", "r3.png"))
    assert psnr(right, s) > 35.0 and psnr(wrong, s) < 12.0 and psnr(none, s) < 12.0


def test_steg_analyze_keyed_learned_model(keyed_ckpt, tmp_path, capsys):
    import json

    out = tmp_path / "report"
    assert main(["analyze", "--model", str(keyed_ckpt), "--key", "correct horse", "--out", str(out), "--size", "256",
                 "--limit", "3", "--thief-steps", "2", "--detector-steps", "2"]) == 0
    assert "reveal with a random wrong key" in capsys.readouterr().out
    report = json.loads((out / "analyze.json").read_text())
    assert report["keyed"] is True and report["arch_config"]["keyed"] is True
    assert report["quality"]["psnr_secret"] > 35.0
    assert report["wrong_key"]["wrong_key_psnr"] < 12.0 and report["wrong_key"]["no_key_psnr"] < 12.0
    assert report["thief"]["psnr"] is not None and report["thief"]["control_psnr"] is not None
    assert report["key_reuse_psnr"] is None  # the qim known-secret attack does not apply
