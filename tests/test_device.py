"""Device-agnostic code, tested without a GPU (tests/placement.py says how the second device is simulated).

- the training path of every architecture (keyed or not, every distortion) runs
  on the ``meta`` device: no tensor made on the CPU meets a device tensor, and
  no device value is read back on the host (``bool()``, ``.item()``) per step;
- ``steg analyze`` (thief, steganalyser, key reuse), the bench's speed
  measurement and the keyed nonce follow a model whose parameters are on
  another "device" (float64 under :class:`StrictPlacement`);
- the ONNX export traces with inputs on the model's device.
"""

from __future__ import annotations

import pytest
import torch

from placement import PlacementError, StrictPlacement
from steg.distortions.layers import Blur, Combined, Crop, Dropout, GaussianNoise, JPEG, Resize
from steg.nets import ARCHITECTURES, net_class

DISTORTIONS = {"none": None, "blur": Blur, "noise": GaussianNoise, "dropout": Dropout, "resize": Resize,
               "crop": Crop, "jpeg": JPEG, "combined": lambda: Combined([Blur(), JPEG(), GaussianNoise()])}


def _nets():
    for name in ARCHITECTURES:
        cls = net_class(name)
        yield pytest.param(name, False, id=name)
        if not cls.keyed:
            yield pytest.param(name, True, id=f"{name}-keyed")


@pytest.mark.parametrize("name, keyed", list(_nets()))
def test_training_path_runs_on_another_device_without_host_reads(name, keyed):
    cls = net_class(name)
    net = cls(**cls.tiny(), keyed=keyed).to("meta").train()
    cover, secret = (torch.rand(2, 3, 32, 32, device="meta") for _ in range(2))
    mse = torch.nn.functional.mse_loss  # the losses' own autocast guards do not run on meta
    for dname, make in DISTORTIONS.items():
        distortion = None if make is None else make().to("meta").train()  # moved with the module, as in training
        out = net(cover, secret, quantize=True, distortion=distortion)
        total = mse(out["stego"], cover) + mse(out["revealed"], out["target"])
        assert total.device.type == "meta", dname
        total.backward()


def test_meta_catches_a_host_read_and_a_cpu_tensor():
    """The stand-in device fails as a GPU step would: on a host read, and on a CPU tensor meeting it."""
    x = torch.rand(2, 3, 8, 8, device="meta")
    with pytest.raises(RuntimeError):
        bool((x > 0).all())
    with pytest.raises(RuntimeError):
        x + torch.rand(2, 3, 8, 8)


def test_strict_placement_catches_a_host_tensor():
    net = torch.nn.Conv2d(3, 3, 1).to(torch.float64)
    with StrictPlacement():
        net(torch.rand(1, 3, 4, 4, dtype=torch.float64))
        with pytest.raises((PlacementError, RuntimeError)):
            net(torch.rand(1, 3, 4, 4))
        with pytest.raises(PlacementError):
            torch.rand(4, dtype=torch.float64) + torch.rand(4)


def _model(name: str, keyed: bool = False):
    from steg.inference.model import StegModel

    cls = net_class(name)
    torch.manual_seed(0)
    kwargs = {} if cls.keyed else {"keyed": keyed}
    return StegModel(cls(**cls.tiny(), **kwargs).to(torch.float64))


@pytest.mark.parametrize("name, keyed", [("qim", True), ("unet", True), ("unet", False)])
def test_analyze_follows_the_model_device(name, keyed):
    from steg.security.analysis import analyze, load_pairs
    from steg.data import sample_photo_paths

    model = _model(name, keyed)
    pairs = load_pairs(sample_photo_paths("val")[:3], 64, 3)
    with StrictPlacement():
        result = analyze(model, pairs, key="pass" if keyed else None, thief_steps=2, detector_steps=2, batch=2)
    report = result.report
    assert report["thief"]["steps"] == 2 and "steganalyser" in report["detect"]
    assert 0 <= report["detect"]["steganalyser"]["auroc"] <= 1
    if name == "qim":
        assert report["key_reuse_psnr"] is not None


def test_bench_speed_quality_follows_the_net():
    """What crashed ``--parts speed --device cuda``: held-out images sent to a device the net was not on."""
    from steg.bench.speed import held_out_psnr

    net = _model("unet").net
    cover, secret = torch.rand(2, 2, 3, 32, 32).unbind(0)
    with StrictPlacement():
        stego_db, secret_db = held_out_psnr(net, cover, secret)
    assert stego_db > 0 and secret_db > 0


def test_keyed_nonce_follows_the_image_device():
    from steg.nets.qim import embed_nonce, patch_nonce_pixels, read_nonce

    stego = torch.round(torch.rand(1, 3, 32, 32, dtype=torch.float64) * 255) / 255
    nonce = bytes(range(12))
    with StrictPlacement():
        out = embed_nonce(stego, b"k" * 32, nonce, 8)
        assert read_nonce(out, b"k" * 32, 8) == nonce
        assert patch_nonce_pixels(out).dtype == torch.float64


def test_onnx_traces_on_the_model_device(monkeypatch, tmp_path):
    import steg.browser.onnx as onnx_mod
    from steg.inference.model import StegModel

    cls = net_class("unet")
    model = StegModel(cls(**cls.tiny()), device="meta")
    seen = []

    def record(module, args, inputs, outputs, path):
        seen.extend(a.device.type for a in args)
        raise RuntimeError("stop: recorded")

    monkeypatch.setattr(onnx_mod, "_export_graph", record)
    with pytest.raises(RuntimeError, match="stop: recorded"):
        onnx_mod.export_onnx(model, tmp_path / "m.onnx")
    assert seen and set(seen) == {"meta"}
