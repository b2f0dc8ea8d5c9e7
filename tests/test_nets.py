"""steg.nets: layers, every registered architecture (shapes, gradients), the registry, and qim's coding."""

import hashlib

import numpy as np
import pytest
import torch

from steg.training.losses import ImageLoss
from steg.nets import (ARCHITECTURES, Baluja, Branches, CNN, GaussianNoise, QIMNet, SameConv, StegNet, Subpixel,
                       build_net, net_class, register, wrap_period)
from steg.nets.qim import DITHER_LABEL
from steg.quantize import quantize


def small_net(name: str, channels: int = 3, **kw) -> StegNet:
    """The registered architecture ``name`` at its tiny() size (the registry, not a list here)."""
    cls = ARCHITECTURES[name]
    return cls(channels=channels, **{**cls.tiny(), **kw})


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
def test_every_parameter_learns_through_the_training_path(name):
    """hide -> quantize_ste -> noise -> reveal, loss on both: every parameter tensor gets a gradient.

    Zero-initialised output layers (unet, qim) block the gradient to the layers
    before them at step 0, so the check is on the second step, as in training.
    """
    torch.manual_seed(0)
    net = small_net(name, **({"encoder": True} if name == "qim" else {})).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    cover, secret = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    for _ in range(2):
        optimizer.zero_grad()
        out = net(cover, secret, quantize=True)
        loss = ImageLoss()(out["stego"], cover)["loss"] + 0.75 * ImageLoss()(out["revealed"], secret)["loss"]
        loss.backward()
        optimizer.step()
    params = dict(net.named_parameters())
    assert params
    dead = [k for k, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_rebuild_from_arch_config(name):
    net = small_net(name)
    twin = build_net(**net.arch_config)
    assert type(twin) is type(net) and twin.arch_config == net.arch_config
    twin.load_state_dict(net.state_dict())
    assert net.arch_config["name"] == name and "target" not in net.arch_config  # built-ins: by name
    assert isinstance(net.receptive_radius(), int) and net.feature_channels() > 0


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


def test_registry_is_open_but_instantiates_only_stegnets():
    class Mine(StegNet):
        name = "mine_test"

        def __init__(self, channels: int = 3, gain: float = 1.0):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(gain))

        def hide(self, cover, secret):
            return cover + 0.01 * self.scale * secret

        def reveal(self, stego):
            return stego

    net = Mine(gain=2.0)
    assert net.arch_config == {"name": "mine_test", "target": f"{__name__}.Mine", "channels": 3, "gain": 2.0} or \
        net.arch_config["target"].endswith("Mine")
    assert register(Mine) is Mine and net_class("mine_test") is Mine
    del ARCHITECTURES["mine_test"]
    with pytest.raises(ValueError, match="not a steg.nets.StegNet subclass"):
        net_class({"target": "collections.OrderedDict"})
    with pytest.raises(ValueError, match="dotted import path"):
        net_class({"target": "/tmp/evil.py"})
    with pytest.raises(ValueError, match="cannot import"):
        net_class({"target": "no_such_module_xyz.Net"})
    with pytest.raises(ValueError, match="unknown architecture"):
        build_net("nope")
    with pytest.raises(TypeError, match="not a StegNet"):
        register(dict)
    assert net_class({"_target_": "steg.nets.QIMNet"}) is QIMNet  # a Hydra config's target


def test_base_class_needs_no_prep_hide_reveal_nets():
    class Bare(StegNet):
        pass

    net = Bare()
    assert list(net.children()) == [net.noise]
    with pytest.raises(NotImplementedError, match="hide"):
        net.hide(torch.zeros(1), torch.zeros(1))


def _levels(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * 255)


@pytest.mark.parametrize("period", [2, 7, 13, 16])
@pytest.mark.parametrize("dither", [False, True])
def test_qim_stego_error_bound_holds_for_every_seed(period, dither):
    """|stego - cover| <= P // 2 levels where the cover is P // 2 from 0 and 255, <= P - 1 everywhere,
    with the right residue, for 500 seeds (covers crowd the extremes)."""
    net = QIMNet(period=period, width=4, depth=1, encoder=False, dither=dither).eval()
    half = period // 2
    for seed in range(500):
        g = torch.Generator().manual_seed(seed)
        levels = torch.randint(0, 256, (1, 3, 8, 8), generator=g).float()
        levels[..., :2, :] = torch.randint(0, half + 1, (1, 3, 2, 8), generator=g).float()  # near 0
        levels[..., 2:4, :] = 255 - torch.randint(0, half + 1, (1, 3, 2, 8), generator=g).float()  # near 255
        cover, secret = levels / 255, torch.rand(1, 3, 8, 8, generator=g)
        with torch.no_grad():
            stego = net.hide(cover, secret)
            code = torch.round(net.code(cover, secret))
        assert torch.equal(quantize(stego), stego), seed  # already 8-bit: nothing left to round
        err = (_levels(stego) - levels).abs()
        inside = (levels >= half) & (levels <= 255 - half)
        assert err[inside].max() <= half, seed
        assert err.max() <= period - 1, seed
        assert torch.equal(torch.remainder(_levels(stego) - code, period), torch.zeros_like(code)), seed


@pytest.mark.parametrize("period", [2, 7, 13, 16])
def test_qim_plain_decode_is_within_half_a_step(period):
    net = QIMNet(period=period, width=4, depth=1, encoder=False).eval()
    cover, secret = quantize(torch.rand(2, 3, 32, 32)), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        revealed = net.reveal(quantize(net.hide(cover, secret)))  # decoder starts at zero: the plain decode
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


def test_qim_dither_is_pinned_to_shake256_and_repeats_on_its_grid():
    a, b = QIMNet(width=8, depth=1), QIMNet(width=8, depth=1)
    assert torch.equal(a.dither, b.dither)  # part of the architecture, not of the weights
    assert "dither" not in a.state_dict()
    # Computed here independently of steg and torch: SHAKE-256 words / 65536 - 1/2.
    raw = hashlib.shake_256(DITHER_LABEL).digest(2 * 192)
    expected = [int.from_bytes(raw[2 * i : 2 * i + 2], "little") / 65536 - 0.5 for i in range(192)]
    assert a.dither.flatten().tolist() == expected
    assert DITHER_LABEL == b"steg.nets.qim.dither"
    assert a.dither.flatten()[:3].tolist() == [0.195220947265625, -0.2001800537109375, -0.4033660888671875]
    torch.manual_seed(123)  # the torch random stream plays no part
    assert torch.equal(QIMNet(width=8, depth=1).dither, a.dither)
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
    assert w.tolist() == pytest.approx([6.0, -6.5, -6.4, 0.0, 6.4, -6.5, 0.0, -6.0])


# --- keyed mode of every learned architecture (model.keyed=true) -------------------------------

# every architecture not keyed by construction (qim and learned: their key sets the dither), and a user's own class
LEARNED = sorted(n for n, c in ARCHITECTURES.items() if not c.keyed) + ["examples.mynet.ResidualNet"]


def _keyed_class(name: str):
    return net_class({"target": name} if "." in name else {"name": name})


@pytest.mark.parametrize("name", LEARNED)
def test_every_learned_architecture_has_a_keyed_mode(name):
    from steg.security.scramble import scramble, unscramble

    cls = _keyed_class(name)
    plain, net = cls(**cls.tiny()), cls(**cls.tiny(), keyed=True)
    assert not plain.keyed and "keyed" not in plain.arch_config and plain.training_keys(2) is None
    assert net.keyed and net.arch_config["keyed"] is True
    twin = build_net(**net.arch_config)  # what a model file rebuilds
    assert twin.keyed and twin.arch_config == net.arch_config
    twin.load_state_dict(net.state_dict())

    # The training path hides the secret scrambled under a fresh key per image and unscrambles
    # what it reveals: the losses see the real secret.
    net.eval()  # no noise: the same path twice
    cover, secret = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    torch.manual_seed(0)
    out = net(cover, secret, quantize=True)
    torch.manual_seed(0)
    keys = net.training_keys(2)
    assert len(set(keys)) == 2 and net.training_keys(2) != keys
    with torch.no_grad():
        stego = quantize(net.hide(cover, scramble(secret, keys)))
        expected = unscramble(net.reveal(stego), keys)
    assert torch.equal(out["target"], secret)
    assert torch.allclose(out["stego"], stego) and torch.allclose(out["revealed"], expected, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(net.reveal_with_key(stego, keys), expected, atol=1e-6)
        assert torch.allclose(net.hide_with_key(cover, secret, keys), net.hide(cover, scramble(secret, keys)))
    assert net.validation_keys(2, 5) == net.validation_keys(2, 5) != net.validation_keys(2, 6)


def test_keyed_option_is_checked_and_the_raw_nets_refuse_a_key():
    with pytest.raises(ValueError, match="keyed must be true or false"):
        small_net("unet", keyed="yes")
    net = small_net("unet", keyed=True)
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="take no key.*hide_with_key") as info:
        net.hide(x, x, key=b"k")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="no keyed mode.*model.keyed=true"):
        small_net("unet").hide_with_key(x, x, b"k")
    qim = small_net("qim", keyed=True)  # natively keyed: the option changes nothing
    assert qim.keyed and qim.training_keys(2) is None and "keyed" not in qim.arch_config


def test_keyed_training_learns_through_the_scrambling():
    """Every parameter of a keyed net gets a gradient through scramble -> hide -> reveal -> unscramble."""
    torch.manual_seed(0)
    net = small_net("unet", keyed=True).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    cover, secret = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    for _ in range(2):
        optimizer.zero_grad()
        out = net(cover, secret, quantize=True)
        (ImageLoss()(out["stego"], cover)["loss"] + ImageLoss()(out["revealed"], out["target"])["loss"]).backward()
        optimizer.step()
    dead = [k for k, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


def test_constructor_arguments_are_recorded_for_a_users_subclasses():
    """__init_subclass__ records the outermost __init__'s arguments and takes keyed=/key_block= for any class."""

    class Plain(StegNet):  # no __init__ of its own: StegNet's
        pass

    class Mine(StegNet):
        def __init__(self, width: int = 4, noise_std: float = 0.0):
            super().__init__(noise_std)
            self.conv = torch.nn.Conv2d(3, width, 1)

    class Wider(Mine):
        def __init__(self, extra: int = 2):
            super().__init__(width=8)

    assert Plain(noise_std=0.5).arch_config["noise_std"] == 0.5
    mine = Mine(width=6, keyed=True, key_block=2)
    assert mine.keyed and mine.key_block == 2
    assert {k: v for k, v in mine.arch_config.items() if k not in ("name", "target")} == {
        "width": 6, "noise_std": 0.0, "keyed": True, "key_block": 2}
    wider = Wider()
    assert not wider.keyed and "width" not in wider.arch_config and wider.arch_config["extra"] == 2
    with pytest.raises(TypeError, match="unexpected keyword"):
        Mine(depth=3)
    with pytest.raises(ValueError, match="key_block"):
        Mine(keyed=True, key_block=0)
