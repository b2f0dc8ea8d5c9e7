import pytest
import torch

from steg.losses import ImageLoss
from steg.metrics import quantize
from steg.nets import ARCHITECTURES, Baluja, Branches, CNN, GaussianNoise, QIMNet, SameConv, Subpixel, build_net, wrap_period

SMALL = {
    "baluja": dict(filters=4, depth=2),
    "subpixel": dict(prep_width=4, widths=(4, 8, 8)),
    "cnn": dict(widths=(6, 3, 2)),
    "unet": dict(width=8, depth=1),
    "qim": dict(width=8, depth=1, encoder=True),
}


def small_net(name: str, channels: int = 3, **kw) -> torch.nn.Module:
    return build_net(name, channels=channels, **{**SMALL[name], **kw})


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("size", [(7, 9), (8, 8), (13, 4)])
def test_same_conv_keeps_size_for_every_kernel(kernel, size):
    out = SameConv(3, 5, kernel)(torch.rand(2, 3, *size))
    assert out.shape == (2, 5, *size)


def test_even_kernel_pads_like_tensorflow():
    # TF 'same' for k=4 pads 1 before and 2 after, so out[i] sums x[i-1 .. i+2]:
    # a delta at (2, 2) lights outputs 0..3 in both directions (not 1..4).
    conv = SameConv(1, 1, 4, relu=False)
    conv[1].weight.data.fill_(1.0)
    conv[1].bias.data.zero_()
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, 2, 2] = 1.0
    lit = {tuple(p) for p in torch.nonzero(conv(x)[0, 0]).tolist()}
    assert lit == {(r, c) for r in range(4) for c in range(4)}


def test_branches_read_the_same_input():
    # Each branch must see the block input (a seed fed branch 2 with branch 1's output).
    block = Branches(3, [2, 2, 2], depth=1)
    x = torch.rand(1, 3, 8, 8)
    out = block(x)
    for i, branch in enumerate(block.branches):
        assert torch.equal(out[:, 2 * i : 2 * i + 2], branch(x))


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(16, 16), (32, 48), (64, 64)])
def test_output_shapes(name, channels, size):
    net = small_net(name, channels)
    cover, secret = torch.rand(2, channels, *size), torch.rand(2, channels, *size)
    out = net(cover, secret)
    assert out["stego"].shape == cover.shape
    assert out["revealed"].shape == secret.shape
    assert net.hide(cover, secret).shape == cover.shape
    assert net.reveal(cover).shape == cover.shape


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_reveal_loss_reaches_prep_and_hide_weights(name):
    net = small_net(name)
    cover, secret = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    revealed = net(cover, secret)["revealed"]
    ImageLoss()(revealed, secret)["loss"].backward()
    parts = [part for part in (net.prep_net, net.hide_net, net.reveal_net) if list(part.parameters())]
    assert len(parts) >= 2  # unet has no separate prep parameters: its hide net reads the secret
    for part in parts:
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum().item() for g in grads) > 0


def test_full_size_architectures_match_the_papers():
    baluja = Baluja()
    # prep: 3 branches x 4 layers + mixing layer, 50 filters each -> 150 channels.
    prep_trunk, prep_mix = baluja.prep_net
    assert [len(b) for b in prep_trunk.branches] == [4, 4, 4]
    assert prep_trunk.out_channels == prep_mix.out_channels == 150
    kernels = [b[0][1].kernel_size for b in prep_trunk.branches]
    assert kernels == [(3, 3), (4, 4), (5, 5)]
    assert baluja.hide_net[0].branches[0][0][1].in_channels == 153
    assert baluja.hide_net[-1].kernel_size == (1, 1) and baluja.hide_net[-1].out_channels == 3
    cnn = CNN()
    assert len(cnn.prep_net) == 2
    assert len(cnn.hide_net) == 6 and len(cnn.reveal_net) == 6  # 5 layers + 1x1 output
    assert all(layer.out_channels == 65 for layer in cnn.hide_net[:-1])
    assert Subpixel().size_multiple == 4


def test_noise_only_in_training():
    noise = GaussianNoise(0.1)
    x = torch.zeros(1000)
    assert noise(x).std() > 0.05
    noise.eval()
    assert torch.equal(noise(x), x)
    with pytest.raises(ValueError, match="noise_std"):
        GaussianNoise(-1)


def test_residual_hide_starts_near_cover():
    net = small_net("subpixel", residual=True)
    for p in net.hide_net.head.parameters():
        torch.nn.init.zeros_(p)
    cover = torch.rand(1, 3, 16, 16)
    assert torch.equal(net.hide(cover, torch.rand(1, 3, 16, 16)), cover)


def test_build_net_round_trips_arch_config():
    net = small_net("cnn")
    twin = build_net(**net.arch_config)
    assert twin.arch_config == net.arch_config
    twin.load_state_dict(net.state_dict())
    with pytest.raises(ValueError, match="unknown architecture"):
        build_net("nope")


def _levels(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * 255)


@pytest.mark.parametrize("period", [2, 7, 13, 16])
@pytest.mark.parametrize("dither", [False, True])
def test_qim_codes_the_secret_in_residues_within_half_a_period(period, dither):
    net = QIMNet(period=period, width=8, depth=1, encoder=False, dither=dither).eval()
    cover = quantize(0.1 + 0.8 * torch.rand(2, 3, 32, 32))  # at least 25 levels from 0 and 255
    cover[:, :, :4] = 0.0  # extremes force the stego value to the other side of the cover
    cover[:, :, 4:8] = 1.0
    secret = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        stego = quantize(net.hide(cover, secret))  # what the user saves
        err = (_levels(stego) - _levels(cover)).abs()
        assert err[:, :, 8:].max() <= period // 2  # nearest value with the right residue
        assert err.max() <= period  # near 0 or 255 it may move the other way
        assert err.float().mean() > 0
        revealed = net.reveal(stego)  # decoder starts at zero: the plain modulo decode
    # The secret comes back to within the rounding of its code: half a step of P - 1.
    assert (revealed - secret).abs().max() <= 0.5 / (period - 1) + 1e-5


def test_qim_residues_survive_only_exact_pixels():
    net = QIMNet(period=13, width=8, depth=1, encoder=False).eval()
    cover, secret = quantize(torch.rand(1, 3, 32, 32)), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        stego = quantize(net.hide(cover, secret))
        exact = (net.reveal(stego) - secret).abs().mean()
        shifted = (net.reveal(stego + 3 / 255) - secret).abs().mean()
    assert exact < 0.03 < shifted  # a 3-level change moves every residue


def test_qim_dither_is_fixed_and_repeats_on_its_grid():
    a, b = QIMNet(width=8, depth=1), QIMNet(width=8, depth=1)
    assert torch.equal(a.dither, b.dither)  # part of the architecture, not of the weights
    assert "dither" not in a.state_dict()
    x = torch.zeros(1, 3, 24, 16)
    d = a._dither_like(x)
    assert d.shape == x.shape and d.abs().max() <= 0.5 and d.std() > 0.2
    assert torch.equal(d[..., 8:16, :], d[..., :8, :]) and torch.equal(d[..., 8:16], d[..., :8])
    assert QIMNet.size_multiple % QIMNet.DITHER == 0


def test_qim_validates_period():
    for bad in (1, 257, 12.5, True):
        with pytest.raises(ValueError, match="period"):
            QIMNet(period=bad)


def test_wrap_period_folds_into_half_open_interval():
    x = torch.tensor([-7.0, -6.5, -6.4, 0.0, 6.4, 6.5, 13.0, 20.0])
    w = wrap_period(x, 13)
    assert torch.all((w >= -6.5) & (w < 6.5))
    assert torch.allclose(torch.remainder(w - x, 13), torch.zeros_like(x)) or torch.allclose(
        torch.remainder(w - x + 1e-6, 13) % 13, torch.zeros_like(x), atol=1e-4)
