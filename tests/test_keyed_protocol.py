"""The keyed protocol (steg.nets.base): a new keyed method is one class, and the shipped keyed model
still reads stego images written before the protocol existed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from steg.data import sample_photo_paths
from steg.inference.model import StegModel, load_model
from steg.io import load_image, square_image, to_tensor
from steg.security.keys import key_field, per_image
from steg.nets import StegNet
from steg.nets.base import run_whole
from steg.quantize import quantize
from conftest import save_checkpoint

ASSETS = Path(__file__).parent / "assets"


class ToyKeyedNet(StegNet):
    """A toy keyed method, defined here only: the key flips a keyed half of the secret's pixels (x -> 1 - x).

    The flips come per tile (``per_tile``: the tile's window of a whole-image keyed field), the
    "net" is a 1x1 conv that starts as the identity and copies the secret into the stego image.
    It ignores nonces (a key is used as given), which the protocol allows.
    """

    name = "toykeyed"
    keyed = True  # keyed by construction, like qim

    def __init__(self, channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(channels)[:, :, None, None])
            self.conv.bias.zero_()

    def hide(self, cover, secret, flip=None):
        return self.conv(secret if flip is None else torch.where(flip > 0.5, 1 - secret, secret))

    def reveal(self, stego, flip=None):
        out = self.conv(stego)
        return out if flip is None else torch.where(flip > 0.5, 1 - out, out)

    def _flips(self, key, shape):
        keys = per_image(key, 1) if isinstance(key, (bytes, bytearray)) else list(key)

        def per_tile(window, padded):
            y0, y1, x0, x1 = window
            field = torch.stack([key_field(k, "toy-flip", shape, rows=(y0, y1), width=padded[1]) for k in keys])
            return {"flip": field[..., x0:x1]}

        return per_tile

    def hide_with_key(self, cover, secret, key=None, *, run=run_whole, nonce=False):
        if key is None:
            return run(self.hide, [cover, secret])
        return run(self.hide, [cover, secret], per_tile=self._flips(key, tuple(secret.shape[1:])))

    def reveal_with_key(self, stego, key=None, *, run=run_whole, nonce=False):
        if key is None:
            return run(self.reveal, [stego])
        return run(self.reveal, [stego], per_tile=self._flips(key, tuple(stego.shape[1:])))


def _photos(side: int):
    paths = sample_photo_paths("val")
    return [to_tensor(square_image(load_image(p, 3), side)).unsqueeze(0) for p in paths[:2]]


def _mse(a, b) -> float:
    return float(((a - b) ** 2).mean())


def test_a_toy_keyed_method_works_through_load_model_with_tiles(tmp_path, monkeypatch):
    """One class, no other file: StegModel tiles it, a model file rebuilds it, only the right key reveals."""
    monkeypatch.setenv("STEG_ALLOW_ARCH", f"{__name__}.ToyKeyedNet")  # a user's own class, named by the user
    cover, secret = _photos(48)
    path = save_checkpoint(ToyKeyedNet(), tmp_path / "toy.ckpt")
    model = load_model(path, tile=None)
    assert isinstance(model.net, ToyKeyedNet) and model.net.keyed
    tiled = load_model(path, tile=16, margin=0)

    stego = model.hide(cover, secret, key="right")
    assert torch.equal(tiled.hide(cover, secret, key="right"), stego)
    assert tiled.calls > 1  # it did run in tiles, each with its window of the keyed field
    assert _mse(stego, secret) > 0.05  # the stego image is not the secret in clear
    revealed = model.reveal(stego, key="right")
    assert torch.equal(revealed, quantize(secret))
    assert torch.equal(tiled.reveal(stego, key="right"), revealed)
    for wrong in ("wrong", None):
        assert _mse(model.reveal(stego, key=wrong), secret) > 0.05  # a wrong or no key gives something else


def test_the_toy_method_trains_through_its_own_keyed_mode():
    """StegNet.forward goes through the method's hide_with_key / reveal_with_key with training keys."""
    net = ToyKeyedNet()
    cover, secret = _photos(32)
    calls = []
    original = net.hide_with_key

    def spy(*args, **kwargs):
        calls.append(args[2])
        return original(*args, **kwargs)

    net.hide_with_key = spy
    out = net(cover, secret)
    assert len(calls) == 1 and len(calls[0]) == 1  # one fresh key for the one image
    assert torch.allclose(out["revealed"], secret, atol=1e-6) and not torch.allclose(out["stego"], secret)


def test_the_shipped_keyed_model_reads_a_stego_made_before_the_protocol():
    """tests/assets/qim_keyed_stego.png: the shipped model, key 'golden key', nonce bytes(range(12)), hidden by
    the code before the keyed protocol (commit e163079); its revealed image beside it. Hiding again gives the
    same bytes, and the old stego reveals to the same image."""
    photos = [to_tensor(square_image(load_image(p, 3), 128)).unsqueeze(0) for p in sample_photo_paths("val")[:2]]
    old_stego = to_tensor(Image.open(ASSETS / "qim_keyed_stego.png")).unsqueeze(0)
    old_revealed = np.asarray(Image.open(ASSETS / "qim_keyed_revealed.png"), dtype=np.int16)
    for tile in (None, 32):
        model = StegModel(load_model().net, tile=tile)
        stego = quantize(model.hide_tensor(photos[0], photos[1], key="golden key", nonce=bytes(range(12))))
        assert torch.equal(stego, old_stego)
        assert (model.calls > 1) == (tile is not None)  # tile=32: the keyed dither comes in windows
        revealed = model.reveal(old_stego, key="golden key")
        assert np.abs(np.asarray(Image.fromarray((revealed[0].permute(1, 2, 0) * 255).round().byte().numpy()),
                                 dtype=np.int16) - old_revealed).max() <= 1
    wrong = load_model().reveal(old_stego, key="golden key!")
    assert _mse(wrong, to_tensor(Image.open(ASSETS / "qim_keyed_revealed.png")).unsqueeze(0)) > 0.02


def test_nothing_outside_the_nets_asks_what_a_method_is():
    """The callers (inference, training, export, analyze) name no method's private keyed parts."""
    root = Path(__file__).parents[1] / "steg"
    callers = ["inference/model.py", "training/module.py", "browser/onnx.py", "security/analysis.py",
               "training/loop.py", "inference/evaluation.py"]
    for name in callers:
        text = (root / name).read_text()
        for word in ("scrambles", "native_key", "period", "keyed_dither", "scramble_secret", "embed_nonce"):
            assert word not in text.replace("residue period", ""), f"{name} names {word}"


class ToyDigitalMethod(StegNet):
    """A method with no net and no weights (the digital kind): the secret's top bit, XOR a keyed bit
    stream, replaces the cover's lowest bit. Its keyed hide and reveal work on whole images and
    never call ``run``."""

    name = "toydigital"
    keyed = True

    def _stream(self, key, shape):
        from steg.security.keys import key_stream

        n = int(torch.tensor(shape).prod())
        bits = np.unpackbits(np.frombuffer(key_stream(key, "toy-digital", (n + 7) // 8), dtype=np.uint8))[:n]
        return torch.from_numpy(bits.astype(np.int64)).view(shape)

    def hide_with_key(self, cover, secret, key=None, *, run=run_whole, nonce=False):
        levels = torch.round(cover.clamp(0, 1) * 255).long()
        bits = (secret >= 0.5).long()
        if key is not None:
            bits = bits ^ torch.stack([self._stream(k, tuple(cover.shape[1:])) for k in per_image(key, len(cover))])
        return ((levels & ~1) | bits).float() / 255

    def reveal_with_key(self, stego, key=None, *, run=run_whole, nonce=False):
        bits = torch.round(stego.clamp(0, 1) * 255).long() & 1
        if key is not None:
            bits = bits ^ torch.stack([self._stream(k, tuple(stego.shape[1:])) for k in per_image(key, len(stego))])
        return bits.float()


def test_a_method_without_a_net_plugs_into_stegmodel():
    """The third kind (a digital method): the same two calls, used by StegModel's user API with a key."""
    cover, secret = _photos(40)
    model = StegModel(ToyDigitalMethod())
    stego = model.hide(cover, secret, key="right")
    assert float((stego - quantize(cover)).abs().max()) <= 1 / 255 + 1e-6
    want = (secret >= 0.5).float()
    assert torch.equal(model.reveal(stego, key="right"), want)
    assert float((model.reveal(stego, key="wrong") == want).float().mean()) < 0.6  # about half the bits
