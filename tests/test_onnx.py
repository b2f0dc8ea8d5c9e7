"""ONNX export (steg.browser.onnx, `steg export ... -o NAME.onnx`): graphs, metadata, parity with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

try:
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
except ImportError as exc:  # a failure, not a skip: CI installs the extra
    pytest.fail(f"ONNX export needs the 'onnx' extra (pip install -e '.[onnx]'): {exc}", pytrace=False)

import steg  # noqa: E402
from steg.cli import main  # noqa: E402
from steg.data import sample_photo_paths  # noqa: E402
from steg.inference.model import StegModel  # noqa: E402
from steg.io import load_image  # noqa: E402
from steg.nets import build_net  # noqa: E402
from steg.browser.onnx import OPSET, OnnxError, export_onnx, onnx_paths, read_metadata, run_onnx  # noqa: E402


def _held_out_pairs(multiple: int, side: int = 200) -> list[tuple[np.ndarray, np.ndarray]]:
    """(cover, secret) uint8 (1, 3, H, W) pairs from the held-out photos, centre-cropped to a multiple."""
    photos = [load_image(p, 3) for p in sample_photo_paths("val")]

    def crop(img: Image.Image, w: int, h: int) -> np.ndarray:
        left, top = (img.width - w) // 2, (img.height - h) // 2
        arr = np.asarray(img.crop((left, top, left + w, top + h)), dtype=np.uint8)
        return arr.transpose(2, 0, 1)[None].copy()

    pairs = []
    for i, cover in enumerate(photos):
        secret = photos[(i + 1) % len(photos)]
        # two shapes: a square one and a non-square one (dynamic H and W)
        h = side // multiple * multiple
        w = (side + 56 * (i % 2)) // multiple * multiple
        pairs.append((crop(cover, w, h), crop(secret, w, h)))
    return pairs


def _torch_hide_reveal(model, cover: np.ndarray, secret: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    def u8(x: torch.Tensor) -> np.ndarray:
        return (x * 255.0).round().to(torch.uint8).numpy()

    stego = model.hide(torch.from_numpy(cover).float() / 255, torch.from_numpy(secret).float() / 255)
    revealed = model.reveal(stego)
    return u8(stego), u8(revealed)


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory):
    return export_onnx("default", tmp_path_factory.mktemp("onnx") / "default.onnx")


@pytest.fixture(scope="module")
def tiny_unet():
    torch.manual_seed(0)
    net = build_net("unet", width=8, depth=1)
    for p in net.parameters():  # untrained but not the identity (the hide head starts at zero)
        torch.nn.init.normal_(p, std=0.05)
    return StegModel(net)


def test_shipped_model_parity_on_held_out_photos(default_onnx):
    """qim (remainder, floor, where, the dither tiled over dynamic sizes): 8-bit stego equal, revealed within 1."""
    model = steg.load_model()
    shapes = set()
    for cover, secret in _held_out_pairs(model.size_multiple):
        shapes.add(cover.shape)
        want_stego, want_revealed = _torch_hide_reveal(model, cover, secret)
        stego = run_onnx(default_onnx["hide"], cover=cover, secret=secret)
        assert stego.dtype == np.uint8 and stego.shape == cover.shape
        np.testing.assert_array_equal(stego, want_stego)
        mse = np.mean((stego.astype(float) - cover) ** 2)
        assert 30 < 10 * np.log10(255**2 / mse) < 60  # a real stego image (about 36.7 dB for this model)
        revealed = run_onnx(default_onnx["reveal"], stego=stego)
        assert np.abs(revealed.astype(int) - want_revealed).max() <= 1
        assert np.abs(revealed.astype(int) - secret).mean() < 8  # and it is the secret
    assert len(shapes) == 2


def test_unet_parity(tiny_unet, tmp_path):
    paths = export_onnx(tiny_unet, tmp_path / "unet.onnx")
    differ = total = 0
    for cover, secret in _held_out_pairs(tiny_unet.size_multiple, side=120)[:2]:
        want_stego, want_revealed = _torch_hide_reveal(tiny_unet, cover, secret)
        stego = run_onnx(paths["hide"], cover=cover, secret=secret)
        assert np.abs(stego.astype(int) - cover).mean() > 1  # not the identity
        # convolutions sum in another order than PyTorch's, so a value at x.5 may round the other way
        assert np.abs(stego.astype(int) - want_stego).max() <= 1
        differ += int((stego != want_stego).sum())
        total += stego.size
        revealed = run_onnx(paths["reveal"], stego=want_stego)
        assert np.abs(revealed.astype(int) - want_revealed).max() <= 1
    assert differ / total < 1e-3


def test_metadata_and_dynamic_axes(default_onnx):
    import onnx

    meta = read_metadata(default_onnx["hide"])
    assert meta["graph"] == "hide" and meta["inputs"] == "cover,secret" and meta["outputs"] == "stego"
    model = steg.load_model()
    assert int(meta["size_multiple"]) == model.size_multiple
    assert (int(meta["tile"]), int(meta["margin"])) == (model.tile, model.margin)
    assert "/" not in meta["source"] and meta["source"] == "default.safetensors"
    proto = onnx.load(str(default_onnx["reveal"]))
    assert proto.opset_import[0].version == OPSET
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert read_metadata(default_onnx["reveal"])["graph"] == "reveal"


@pytest.mark.parametrize("width", [451, 452, 500])
def test_odd_sizes_run_and_match_pytorch(default_onnx, width):
    """Dynamic H, W means any size: the graph pads to the multiple inside (once only multiples of 8 ran)."""
    model = steg.load_model()
    photos = [load_image(p, 3) for p in sample_photo_paths("val")[:2]]
    cover, secret = (np.asarray(p.resize((width, 61)), dtype=np.uint8).transpose(2, 0, 1)[None].copy()
                     for p in photos)
    assert width % model.size_multiple or 61 % model.size_multiple
    stego = run_onnx(default_onnx["hide"], cover=cover, secret=secret)
    revealed = run_onnx(default_onnx["reveal"], stego=stego)
    assert stego.shape == cover.shape and revealed.shape == cover.shape
    want_stego = _torch_hide_reveal(model, cover, secret)[0]
    assert np.abs(stego.astype(int) - want_stego).max() <= 1
    assert np.abs(revealed.astype(int) - _torch_hide_reveal(model, stego, secret)[1]).max() <= 1
    assert np.abs(revealed.astype(float) - secret).mean() < 12  # the secret is really there


def test_output_names(tmp_path):
    assert onnx_paths(tmp_path / "m.onnx") == {"hide": tmp_path / "m.hide.onnx", "reveal": tmp_path / "m.reveal.onnx"}
    assert onnx_paths(tmp_path / "m.hide.onnx")["reveal"] == tmp_path / "m.reveal.onnx"
    with pytest.raises(OnnxError, match="NAME.onnx"):
        onnx_paths(tmp_path / "m.safetensors")


def test_cli_export_onnx(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "default", "-o", str(out)]) == 0
    assert "opset 17" in capsys.readouterr().out
    hide, reveal = tmp_path / "m.hide.onnx", tmp_path / "m.reveal.onnx"
    assert read_metadata(hide)["graph"] == "hide" and read_metadata(reveal)["graph"] == "reveal"
    before = reveal.read_bytes()
    # existing outputs are kept without --force, with a one-line error naming the file
    assert main(["export", "default", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "m.hide.onnx already exists" in err and len(err.strip().splitlines()) == 1
    assert reveal.read_bytes() == before
    assert main(["export", "default", "-o", str(out), "--force"]) == 0
    # --onnx with a name that is not NAME.onnx
    assert main(["export", "default", "--onnx", "-o", str(tmp_path / "m.safetensors")]) == 2
    assert "NAME.onnx" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()
    # a bad model leaves nothing behind
    assert main(["export", str(tmp_path / "missing.safetensors"), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "missing.safetensors" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.hide.onnx", "m.reveal.onnx"]


def test_keyed_learned_model_exports_its_net_without_the_key(tiny_unet, tmp_path, capsys):
    """model.keyed=true: the graphs are the net itself (no scrambling), equal to keyless Python, with a warning."""
    from conftest import save_checkpoint

    net = build_net(**{**tiny_unet.net.arch_config, "keyed": True})
    net.load_state_dict(tiny_unet.net.state_dict())
    ckpt = save_checkpoint(net, tmp_path / "keyed.ckpt")
    assert main(["export", str(ckpt), "-o", str(tmp_path / "k.onnx")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ONNX graphs hold only its net" in err
    assert '"keyed": true' in read_metadata(tmp_path / "k.hide.onnx")["arch_config"]
    cover, secret = _held_out_pairs(4, side=64)[0]
    want_stego, _ = _torch_hide_reveal(StegModel(net), cover, secret)
    assert np.abs(run_onnx(tmp_path / "k.hide.onnx", cover=cover, secret=secret).astype(int) - want_stego).max() <= 1


def test_read_metadata_refuses_other_files(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(OnnxError, match="x.onnx"):
        read_metadata(bad)
