"""steg.distortions.layers: each distortion's effect on known images, gradients, eval identity, configs."""

from __future__ import annotations

from pathlib import Path

import hydra.utils
import pytest
import torch
from omegaconf import OmegaConf

from steg.distortions import layers as D

CONF = Path(__file__).resolve().parents[1] / "conf" / "distortion"


def noisy(b=2, c=3, h=32, w=32, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((b, c, h, w), generator=g)


def gradient(b=1, c=3, h=32, w=32) -> torch.Tensor:
    y = torch.linspace(0.1, 0.9, h).view(h, 1)
    x = torch.linspace(0.1, 0.9, w).view(1, w)
    return ((x + y) / 2).expand(b, c, h, w).contiguous()


def checkerboard(b=1, c=3, h=32, w=32) -> torch.Tensor:
    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((ii + jj) % 2).float().expand(b, c, h, w).contiguous()


def high_freq_energy(x: torch.Tensor) -> float:
    """Mean squared horizontal + vertical pixel difference."""
    return float((x.diff(dim=-1) ** 2).mean() + (x.diff(dim=-2) ** 2).mean())


def rmse_levels(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).mean().sqrt() * 255)


# --------------------------------------------------------------------------- #
# The feature itself: effect on known images
# --------------------------------------------------------------------------- #


class TestJPEG:
    def test_changes_noise_more_than_a_flat_image(self):
        x = noisy()
        flat = torch.full_like(x, 0.5)
        assert rmse_levels(D.jpeg(x, 50.0), x) > 20  # uniform noise is what JPEG throws away
        assert rmse_levels(D.jpeg(flat, 50.0), flat) < 2

    def test_lower_quality_loses_more(self):
        x = gradient(h=64, w=64) + 0.05 * noisy(b=1, h=64, w=64)
        assert rmse_levels(D.jpeg(x, 30.0), x) > rmse_levels(D.jpeg(x, 95.0), x)

    def test_grey_images(self):
        x = noisy(c=1)
        y = D.jpeg(x, 75.0)
        assert y.shape == x.shape and rmse_levels(y, x) > 5


class TestNoise:
    def test_std_in_levels(self):
        x = torch.full((4, 3, 64, 64), 0.5)
        y = D.gaussian_noise(x, 2.0, generator=torch.Generator().manual_seed(0))
        assert (y - x).std().item() * 255 == pytest.approx(2.0, rel=0.03)

    def test_per_image_sigma(self):
        x = torch.zeros(2, 3, 64, 64)
        y = D.gaussian_noise(x, torch.tensor([1.0, 8.0]))
        s = (y * 255).flatten(1).std(dim=1)
        assert s[0].item() == pytest.approx(1.0, rel=0.05) and s[1].item() == pytest.approx(8.0, rel=0.05)

    def test_module_sigma_range(self):
        layer = D.GaussianNoise(sigma=[3.0, 3.0], quantize=False).train()
        x = torch.full((2, 3, 64, 64), 0.5)
        assert (layer(x).image - x).std().item() * 255 == pytest.approx(3.0, rel=0.05)


class TestResize:
    def test_smooth_gradient_survives_checkerboard_does_not(self):
        g, c = gradient(), checkerboard()
        assert rmse_levels(D.resize(g, 0.5), g) < 3
        assert rmse_levels(D.resize(c, 0.5), c) > 100  # the 1-pixel pattern averages to grey

    def test_scale_one_is_identity(self):
        x = noisy()
        assert torch.equal(D.resize(x, 1.0), x)

    def test_bad_scale(self):
        with pytest.raises(ValueError, match="resize scale"):
            D.resize(noisy(), 1.5)


class TestBlur:
    def test_lowers_high_frequencies_more_with_larger_sigma(self):
        x = noisy()
        e0, e1, e2 = high_freq_energy(x), high_freq_energy(D.blur(x, 0.8)), high_freq_energy(D.blur(x, 2.0))
        assert e1 < 0.5 * e0 and e2 < 0.5 * e1

    def test_keeps_flat_image(self):
        flat = torch.full((1, 3, 16, 16), 0.3)
        assert torch.allclose(D.blur(flat, 1.0), flat, atol=1e-6)


class TestCrop:
    def test_window_shape_alignment_and_secret_window(self):
        torch.manual_seed(0)
        layer = D.Crop(fraction=[0.5, 0.9], multiple=8).train()
        stego = noisy(h=64, w=96)
        secret = torch.arange(64 * 96, dtype=torch.float32).view(1, 1, 64, 96).expand(2, 3, -1, -1)
        boxes = set()
        for _ in range(10):
            out = layer(stego)
            top, left, h, w = out.box
            assert out.image.shape == (2, 3, h, w)
            assert h % 8 == 0 and w % 8 == 0 and 32 <= h <= 64 * 0.9 and 48 <= w <= 96 * 0.9
            assert torch.equal(out.image, D.crop(stego, out.box).clamp(0, 1).mul(255).round().div(255))
            window = out.crop(secret)
            assert window[0, 0, 0, 0].item() == top * 96 + left  # same place in the secret
            boxes.add(out.box)
        assert len(boxes) > 1  # random position

    def test_bad_box(self):
        with pytest.raises(ValueError, match="does not fit"):
            D.crop(noisy(h=16, w=16), (8, 0, 16, 16))


class TestDropout:
    def test_fraction_replaced_by_cover(self):
        stego, cover = torch.ones(2, 3, 64, 64), torch.zeros(2, 3, 64, 64)
        y = D.dropout(stego, cover, 0.3, generator=torch.Generator().manual_seed(0))
        replaced = (y == 0).all(dim=1)  # whole pixels, all channels together
        assert ((y == 0) | (y == 1)).all() and (y == 0).any(dim=1).eq(replaced).all()
        assert replaced.float().mean().item() == pytest.approx(0.3, abs=0.02)

    def test_needs_cover(self):
        with pytest.raises(ValueError, match="needs the cover"):
            D.Dropout().train()(noisy())


class TestCombined:
    def test_picks_each_kind(self):
        torch.manual_seed(0)
        layer = D.Combined([D.Identity(), D.JPEG(90), D.Crop(0.5, multiple=8), D.Dropout(0.5)]).train()
        picked = set()
        for _ in range(40):
            out = layer(noisy(), noisy(seed=1))
            picked.add(layer.last)
            assert (out.box is not None) == (layer.last == 2)
        assert picked == {0, 1, 2, 3}

    def test_weights(self):
        torch.manual_seed(0)
        layer = D.Combined([D.Identity(), D.JPEG(90)], weights=[0, 1]).train()
        for _ in range(5):
            layer(noisy())
            assert layer.last == 1

    def test_bad_weights(self):
        with pytest.raises(ValueError, match="weights"):
            D.Combined([D.Identity()], weights=[1, 2])


# --------------------------------------------------------------------------- #
# Modules: training only, 8-bit output, parameter checks
# --------------------------------------------------------------------------- #

MODULES = [
    D.JPEG(quality=[50, 90]),
    D.GaussianNoise(sigma=[1, 4]),
    D.Resize(scale=[0.5, 0.8]),
    D.Blur(sigma=[0.5, 1.5]),
    D.Crop(fraction=[0.5, 0.9], multiple=8),
    D.Dropout(p=[0.2, 0.4]),
    D.Combined([D.JPEG(90), D.Blur(1.0)]),
]


@pytest.mark.parametrize("layer", MODULES, ids=lambda m: type(m).__name__)
def test_identity_in_eval_and_8bit_in_training(layer):
    torch.manual_seed(0)
    stego, cover = noisy(h=32, w=32), noisy(h=32, w=32, seed=1)
    out = layer.eval()(stego, cover)
    assert out.image is stego and out.box is None
    y = layer.train()(stego, cover).image
    assert not torch.equal(y, out.crop(stego)) or y.shape != stego.shape
    assert torch.equal(y, (y * 255).round() / 255)  # rounded to 8-bit levels


@pytest.mark.parametrize("layer", MODULES, ids=lambda m: type(m).__name__)
def test_gradient_reaches_the_stego_image(layer):
    torch.manual_seed(0)
    stego = noisy(h=32, w=32).requires_grad_(True)
    layer.train()(stego, noisy(h=32, w=32, seed=1)).image.square().sum().backward()
    assert stego.grad is not None and stego.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: D.jpeg(x, 80.0),
        lambda x: D.resize(x, 0.5),
        lambda x: D.blur(x, torch.tensor([0.8], dtype=x.dtype)),
        lambda x: D.crop(x, (1, 2, 4, 4)),
        lambda x: D.dropout(x, torch.zeros_like(x), 0.5, generator=torch.Generator().manual_seed(0)),
        lambda x: D.gaussian_noise(x, 2.0, generator=torch.Generator().manual_seed(0)),
    ],
    ids=["jpeg", "resize", "blur", "crop", "dropout", "noise"],
)
def test_gradcheck(fn):
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-4, fast_mode=True)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: D.JPEG(quality=[90, 50]), "jpeg quality"),
        (lambda: D.JPEG(quality=[0, 50]), "jpeg quality"),
        (lambda: D.GaussianNoise(sigma=[1, 2, 3]), "noise sigma"),
        (lambda: D.Resize(scale=2.0), "resize scale"),
        (lambda: D.Crop(multiple=0), "crop multiple"),
        (lambda: D.Dropout(p="a"), "dropout p"),
        (lambda: D.Combined([]), "at least one"),
    ],
)
def test_bad_settings_name_themselves(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --------------------------------------------------------------------------- #
# Configs: conf/distortion/*.yaml map onto the constructors
# --------------------------------------------------------------------------- #

EXPECTED = {
    "none": D.Identity, "jpeg": D.JPEG, "noise": D.GaussianNoise, "resize": D.Resize, "blur": D.Blur,
    "crop": D.Crop, "dropout": D.Dropout, "combined": D.Combined,
    "robust": D.Combined, "baluja_noise": D.GaussianNoise,  # the presets' channels (experiment=robust, baluja_paper)
    "jpeg_light": D.Combined,  # experiment=learned_robust
}


def test_every_config_is_listed():
    assert {p.stem for p in CONF.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_instantiates_and_runs(name):
    from conftest import compose_train

    layer = hydra.utils.instantiate(compose_train([f"distortion={name}"]).distortion)  # as train.py composes it
    assert type(layer) is EXPECTED[name]
    torch.manual_seed(0)
    out = layer.train()(noisy(h=64, w=64), noisy(h=64, w=64, seed=1))
    assert out.image.shape[:2] == (2, 3)


def test_combined_config_holds_every_kind():
    layer = hydra.utils.instantiate(OmegaConf.load(CONF / "combined.yaml"))
    kinds = {type(d) for d in layer.distortions}
    assert kinds == set(EXPECTED.values()) - {D.Combined}


def test_training_step_reveals_from_the_distorted_stego_and_eval_does_not():
    """StegModule(distortion=...): the reveal net sees the distorted image in training only."""
    from steg.training.losses import ImageLoss
    from steg.training.module import StegModule
    from steg.nets import UnshuffleUNet
    from steg.quantize import quantize

    torch.manual_seed(0)
    net = UnshuffleUNet(width=8, depth=1)
    seen = []
    reveal = net.reveal
    net.reveal = lambda stego, key=None: (seen.append(stego.detach().clone()), reveal(stego))[1]
    module = StegModule(net, ImageLoss(), distortion=D.GaussianNoise(sigma=20.0))
    cover, secret = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    loss = module.training_step((cover, secret), 0)
    stego = quantize(net.hide(cover, secret))
    away = (seen[-1] - stego).abs().mean() * 255
    assert 10 < away < 25  # noise of 20 levels (|N(0, 20)| averages 16), not the clean stego
    loss.backward()
    assert all(p.grad is not None for p in net.hide_net.parameters())
    module.eval()
    module.validation_step((cover, secret), 0)
    assert torch.equal(seen[-1], stego)


def test_robust_preset_builds_the_robust_recipe():
    """experiment=robust: a half-resolution-payload unet, JPEG on half the batches, noise, none."""
    from conftest import compose_train
    from steg.nets import Payload, UnshuffleUNet

    cfg = compose_train(["experiment=robust"])
    net = hydra.utils.instantiate(cfg.model)
    assert isinstance(net, Payload) and isinstance(net.net, UnshuffleUNet) and net.factor == 2
    layer = hydra.utils.instantiate(cfg.distortion)
    assert [type(d) for d in layer.distortions] == [D.Identity, D.JPEG, D.GaussianNoise]
    assert layer.weights.tolist() == [1.0, 2.0, 1.0] and cfg.beta == 1.0
