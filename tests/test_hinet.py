"""Tests for steg.nets.hinet: the Haar transform, invertibility, shapes, gradient flow, the
low-frequency loss hook, receptive radius and tiling, model files and the CLI, and
training stability on the sample photos."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import compose_train, impulse_radius, save_checkpoint, tiny
from steg.nets.hinet import DenseBlock, HiNet, InvertibleBlock, haar_dwt, haar_idwt
from steg.inference.model import StegModel, default_margin, load_model
from steg.inference.files import export_checkpoint
from steg.training.losses import ImageLoss
from steg.quantize import quantize, quantize_ste
from steg.nets import ARCHITECTURES, build_net

SMALL = dict(blocks=2, growth=4, depth=2)


def _wake(net: HiNet, std: float = 0.05, seed: int = 0) -> HiNet:
    """Give the zero-started last layers of every dense block random weights (a trained-like net)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, DenseBlock):
                for p in mod[-1].parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
    return net


# --------------------------------------------------------------------------- #
# Haar transform
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("shape", [(2, 3, 8, 6), (1, 1, 2, 2), (3, 2, 32, 64)])
def test_haar_round_trip_and_energy(shape):
    x = torch.rand(shape)
    y = haar_dwt(x)
    assert y.shape == (shape[0], 4 * shape[1], shape[2] // 2, shape[3] // 2)
    assert (haar_idwt(y) - x).abs().max().item() < 1e-6
    assert torch.allclose(y.square().sum(), x.square().sum(), rtol=1e-5)  # orthonormal


def test_haar_bands():
    x = torch.rand(2, 3, 16, 16)
    y = haar_dwt(x)
    assert torch.allclose(y[:, :3], 2 * F.avg_pool2d(x, 2), atol=1e-6)  # LL first, per channel
    flat = torch.full((1, 1, 4, 4), 0.7)
    assert torch.allclose(haar_dwt(flat)[:, 1:], torch.zeros(1, 3, 2, 2))  # no detail in a flat image
    stripes = torch.tensor([[0.0, 1.0] * 2] * 4).reshape(1, 1, 4, 4)  # left - right detail only
    bands = haar_dwt(stripes)[0, :, 0, 0]
    assert torch.allclose(bands, torch.tensor([1.0, -1.0, 0.0, 0.0]))


def test_haar_gradcheck_and_bad_sizes():
    x = torch.rand(1, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(haar_dwt, (x,))
    assert torch.autograd.gradcheck(haar_idwt, (torch.rand(1, 4, 2, 3, dtype=torch.float64, requires_grad=True),))
    with pytest.raises(ValueError, match="even"):
        haar_dwt(torch.rand(1, 3, 5, 4))
    with pytest.raises(ValueError, match="multiple of 4"):
        haar_idwt(torch.rand(1, 6, 2, 2))


# --------------------------------------------------------------------------- #
# Invertibility and start
# --------------------------------------------------------------------------- #


def test_block_inverse_is_exact():
    torch.manual_seed(0)
    block = InvertibleBlock(12, growth=8, depth=3, clamp=2.0).double()
    for dense in (block.phi, block.rho, block.eta):
        torch.nn.init.normal_(dense[-1].weight, std=0.1)
    x1, x2 = torch.randn(2, 12, 8, 8, dtype=torch.float64), torch.randn(2, 12, 8, 8, dtype=torch.float64)
    y1, y2 = block(x1, x2)
    assert (y1 - x1).abs().max() > 0.01 and (y2 - x2).abs().max() > 0.01  # it does something
    back1, back2 = block.inverse(y1, y2)
    assert (back1 - x1).abs().max().item() < 1e-10 and (back2 - x2).abs().max().item() < 1e-10
    s = block.log_scale(y1)
    assert s.abs().max().item() < 2.0  # the clamp bounds the log-scale


def test_hide_then_exact_inverse_reproduces_the_secret():
    """No rounding, z = the true lost information r: reveal gives the secret (and the cover) back."""
    torch.manual_seed(1)
    net = _wake(HiNet(blocks=4, growth=8, depth=3), std=0.05).double().eval()
    cover, secret = torch.rand(2, 3, 32, 32, dtype=torch.float64), torch.rand(2, 3, 32, 32, dtype=torch.float64)
    stego, r = net.hide_with_lost(cover, secret)
    assert (stego - cover).abs().max() > 1e-3  # the secret did change the stego image
    assert (net.reveal_with(stego, r) - secret).abs().max().item() < 1e-4
    cover_back, _ = net.uncouple(haar_dwt(stego), r)
    assert (haar_idwt(cover_back) - cover).abs().max().item() < 1e-4


def test_fresh_net_starts_at_stego_equals_cover():
    net = HiNet(**SMALL)
    cover, secret = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    assert (net.hide(cover, secret) - cover).abs().max().item() < 1e-6


# --------------------------------------------------------------------------- #
# Shapes, z, gradient flow, loss hook
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(16, 16), (32, 48), (2, 6)])
def test_shapes(channels, size):
    net = _wake(HiNet(channels=channels, **SMALL))
    cover, secret = torch.rand(2, channels, *size), torch.rand(2, channels, *size)
    out = net(cover, secret)
    assert out["stego"].shape == cover.shape and out["revealed"].shape == secret.shape
    stego, r = net.hide_with_lost(cover, secret)
    assert r.shape == (2, 4 * channels, size[0] // 2, size[1] // 2)


def test_z_modes():
    cover, secret = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    gauss = _wake(HiNet(z="gaussian", **SMALL)).train()
    stego = gauss.hide(cover, secret)
    assert not torch.equal(gauss.reveal(stego), gauss.reveal(stego))  # a fresh N(0, I) draw each time
    gauss.eval()
    assert torch.equal(gauss.reveal(stego), gauss.reveal(stego))
    assert torch.equal(gauss.reveal(stego), gauss.reveal_with(stego, torch.zeros(1, 12, 8, 8)))
    zeros = _wake(HiNet(z="zeros", **SMALL)).train()
    assert torch.equal(zeros.reveal(stego), zeros.reveal(stego))
    with pytest.raises(ValueError, match="z must be one of gaussian, zeros"):
        HiNet(z="uniform")
    with pytest.raises(ValueError, match="blocks"):
        HiNet(blocks=0)


def test_every_parameter_gets_a_gradient_through_rounding():
    """hide -> quantize_ste -> reveal, loss on both images and the low-frequency term."""
    torch.manual_seed(2)
    net = _wake(HiNet(**SMALL), std=0.05).train()
    cover, secret = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    stego = net.hide(cover, secret)
    revealed = net.reveal(net.noise(quantize_ste(stego)))
    loss = ImageLoss()(stego, cover)["loss"] + ImageLoss()(revealed, secret)["loss"]
    loss = loss + sum(net.extra_loss_weights[k] * v for k, v in net.extra_losses(cover, secret, stego, revealed).items())
    loss.backward()
    params = dict(net.named_parameters())
    assert len(params) == 2 * 3 * 2 * 2  # blocks x (phi, rho, eta) x depth x (weight, bias)
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum().item() > 0, name


def test_lowfreq_term_sees_only_the_ll_band():
    net = HiNet(**SMALL)
    cover = torch.rand(1, 3, 16, 16)
    detail = haar_idwt(torch.cat([torch.zeros(1, 3, 8, 8), 0.1 * torch.randn(1, 9, 8, 8)], dim=1))
    assert net.extra_losses(cover, cover, cover + detail, cover)["lowfreq"].item() < 1e-12
    shifted = net.extra_losses(cover, cover, cover + 0.1, cover)["lowfreq"].item()
    assert shifted == pytest.approx(4 * 0.01, rel=1e-4)  # LL is twice the 2x2 mean


def test_module_adds_the_weighted_extra_term():
    from steg.training.module import StegModule

    net = _wake(HiNet(lowfreq_weight=3.0, **SMALL))
    module = StegModule(net, ImageLoss(), beta=0.5)
    module.log = module.log_dict = lambda *a, **k: None  # no trainer here
    cover, secret = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    stego = net.hide(cover, secret) + 0.05
    revealed = net.reveal(stego)
    total = module._objective(cover, secret, stego, revealed, "val")
    expected = (F.mse_loss(stego, cover) + 0.5 * F.mse_loss(revealed, secret)
                + 3.0 * net.extra_losses(cover, secret, stego, revealed)["lowfreq"])
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


# --------------------------------------------------------------------------- #
# Receptive radius and tiling
# --------------------------------------------------------------------------- #


def _empirical_radius(net: HiNet, which: str) -> int:
    """Support of the response to an impulse, with small positive conv weights (no cancellation)."""
    net = net.double().eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.weight.copy_(0.02 + 0.02 * torch.rand(mod.weight.shape, generator=gen, dtype=torch.float64))
                mod.bias.zero_()
    return impulse_radius(net, which, side=2 * net.receptive_radius() + 12, offsets=2)


@pytest.mark.parametrize("blocks,depth", [(1, 1), (1, 3), (2, 2), (3, 1)])
def test_receptive_radius_is_a_tight_bound(blocks, depth):
    net = HiNet(channels=1, blocks=blocks, growth=2, depth=depth)
    assert net.receptive_radius() == 2 * depth * (2 * blocks - 1) + 1
    measured = max(_empirical_radius(net, which) for which in ("reveal", "secret", "cover"))
    assert measured == net.receptive_radius()
    assert default_margin(net) >= measured and default_margin(net) % net.size_multiple == 0


def test_tiled_matches_untiled():
    torch.manual_seed(3)
    net = _wake(HiNet(blocks=2, growth=4, depth=3), std=0.05).eval()
    whole, tiled = StegModel(net, tile=None), StegModel(net, tile=32)
    cover, secret = torch.rand(1, 3, 150, 190), torch.rand(1, 3, 150, 190)
    a, b = whole.hide_tensor(cover, secret), tiled.hide_tensor(cover, secret)
    assert tiled.calls > 9 and (a - b).abs().max().item() < 1e-5
    stego = quantize(a)
    assert (whole.reveal_tensor(stego) - tiled.reveal_tensor(stego)).abs().max().item() < 1e-5


# --------------------------------------------------------------------------- #
# Model files and the command line
# --------------------------------------------------------------------------- #


def test_registered_and_rebuilt_from_arch_config():
    assert ARCHITECTURES["hinet"] is HiNet
    net = _wake(HiNet(channels=1, z="zeros", lowfreq_weight=0.5, **SMALL))
    twin = build_net(**net.arch_config)
    assert twin.arch_config == net.arch_config
    twin.load_state_dict(net.state_dict(), strict=True)


def test_export_parity_and_cli(tmp_path, capsys):
    from steg.cli import main
    from steg.data import sample_photo_paths

    net = _wake(HiNet(**SMALL), std=0.02)
    ckpt = save_checkpoint(net, tmp_path / "hinet.ckpt")
    export = export_checkpoint(ckpt, tmp_path / "hinet.safetensors")
    from_ckpt, from_export = load_model(ckpt), load_model(export)
    assert from_export.net.arch_config == net.arch_config and from_export.size_multiple == 2
    cover, secret = torch.rand(1, 3, 40, 58), torch.rand(1, 3, 40, 58)
    stego = from_ckpt.hide(cover, secret)
    assert torch.equal(stego, from_export.hide(cover, secret))
    assert torch.equal(from_ckpt.reveal(stego), from_export.reveal(stego))
    cover_path, secret_path = sample_photo_paths("val")[:2]
    out, rev = tmp_path / "stego.png", tmp_path / "revealed.png"
    for model in (ckpt, export):
        assert main(["hide", str(cover_path), str(secret_path), "-o", str(out), "--model", str(model), "--force"]) == 0
        assert main(["reveal", str(out), "-o", str(rev), "--model", str(model), "--force"]) == 0
        assert out.is_file() and rev.is_file()
    capsys.readouterr()


# --------------------------------------------------------------------------- #
# Training stability
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_200_training_steps_stay_finite(tmp_path):
    """The CPU preset (experiment=hinet_cpu: clipping, clamp) trains 200 steps on the sample photos without NaN."""
    import csv

    from omegaconf import open_dict

    from steg.training.loop import train

    cfg = tiny(compose_train(["experiment=hinet_cpu", "logger=csv"]), tmp_path / "run")
    with open_dict(cfg):
        cfg.data.image_size = 16
        cfg.data.batch_size = 3
        cfg.data.train_repeats = 100  # one epoch = 6 pairs x 100 crops / 3 = 200 steps, then validation
        cfg.trainer.log_every_n_steps = 10
        cfg.callbacks = {k: v for k, v in cfg.callbacks.items() if k in ("checkpoint", "history")}
    assert cfg.trainer.gradient_clip_val > 0 and cfg.model._target_.endswith("HiNet")
    value = train(cfg)
    assert math.isfinite(value)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 200
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["train/loss_step"]) for r in rows if r.get("train/loss_step")]
    assert len(losses) >= 19 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]  # and it learns something


@pytest.mark.parametrize("experiment", ["hinet_cpu", "hinet_div2k"])
def test_presets_compose_and_build(experiment, tmp_path):
    import hydra

    cfg = compose_train([f"experiment={experiment}"] + (["data.root=/data/DIV2K"] if "div2k" in experiment else []))
    net = hydra.utils.instantiate(cfg.model)
    assert isinstance(net, HiNet) and cfg.trainer.gradient_clip_val > 0
    hydra.utils.instantiate(cfg.optimizer)(params=net.parameters())
    if experiment == "hinet_div2k":
        assert len(net.blocks) == 16 and net.arch_config["growth"] == 32 and cfg.data.image_size == 256
        assert cfg.beta == 5.0 and cfg.optimizer.lr == pytest.approx(10**-4.5, rel=1e-4)
    else:  # the CPU preset rolls back when it diverges (steg.training.callbacks.DivergenceGuard)
        guard = hydra.utils.instantiate(cfg.callbacks.divergence_guard)
        assert guard.monitor == cfg.callbacks.checkpoint.monitor and guard.ratio > 1
