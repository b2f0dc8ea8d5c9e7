"""The smaller payload: what the wrapped net is given to hide, and what reveal can return."""

import kornia
import pytest
import torch

from steg.nets import Payload, build_net, reduce_secret


def checkerboard(h: int, w: int) -> torch.Tensor:
    """(1, 1, h, w) of +1/-1 alternating pixels: the highest spatial frequency."""
    idx = torch.arange(h)[:, None] + torch.arange(w)[None, :]
    return (1 - 2 * (idx % 2)).float()[None, None]


def test_reduce_drops_detail_finer_than_the_factor():
    base = torch.rand(2, 3, 1, 1).expand(2, 3, 16, 16)
    detailed = base + 0.1 * checkerboard(16, 16)
    assert torch.allclose(reduce_secret(detailed, 2), base, atol=1e-6)
    assert torch.equal(reduce_secret(detailed, 1), detailed)  # factor 1: untouched


def test_reduce_keeps_smooth_content():
    ramp = torch.linspace(0, 1, 32)[None, None, None, :].expand(1, 3, 32, 32)
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # away from the clamped borders
    assert (reduce_secret(ramp, 2) - ramp)[inner].abs().max() < 1e-5


def test_grayscale_is_the_luma_in_every_channel():
    secret = torch.rand(2, 3, 8, 8)
    gray = reduce_secret(secret, 1, grayscale=True)
    assert torch.allclose(gray, kornia.color.rgb_to_grayscale(secret).expand_as(secret))
    assert not torch.allclose(gray, secret)


@pytest.fixture
def payload():
    torch.manual_seed(0)
    return Payload(net={"name": "unet", "width": 8, "depth": 1}, factor=2).eval()


def test_hide_sees_only_the_reduced_secret(payload):
    cover, secret = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    torch.nn.init.normal_(payload.net.hide_net.head[0].weight, std=0.1)  # let the secret reach the stego
    with torch.no_grad():
        a = payload.hide(cover, secret)
        b = payload.hide(cover, secret + 0.2 * checkerboard(32, 32))
        c = payload.hide(cover, secret.flip(-1))
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)


def test_reveal_projects_out_what_the_payload_cannot_hold(payload, monkeypatch):
    smooth = torch.rand(1, 3, 1, 1).expand(1, 3, 32, 32)
    noisy = smooth + 0.2 * checkerboard(32, 32)
    monkeypatch.setattr(payload.net, "reveal", lambda stego, key=None: noisy)
    assert torch.allclose(payload.reveal(torch.rand(1, 3, 32, 32)), smooth, atol=1e-6)


def test_model_file_config_rebuilds_inner_net_and_settings(payload):
    twin = build_net(**payload.arch_config)
    assert twin.arch_config == payload.arch_config
    assert (twin.factor, twin.grayscale, type(twin.net)) == (2, False, type(payload.net))
    assert twin.size_multiple == 4  # lcm(unet's 4, factor 2)
    assert Payload(net={"name": "unet"}, factor=3).size_multiple == 12


@pytest.mark.parametrize("kwargs,match", [
    ({"net": {"name": "unet"}, "factor": 0}, "model.factor"),
    ({"net": {"width": 8}}, "model.net must name"),
    ({"net": {"name": "payload", "net": {"name": "unet"}}}, "another payload"),
])
def test_bad_settings_name_the_setting(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Payload(**kwargs)
