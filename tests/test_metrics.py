import pytest
import torch

from steg.metrics import PixelError, pair_metrics
from steg.quantize import quantize, quantize_ste


def test_quantize_gives_8bit_levels_and_clamps():
    x = torch.tensor([-0.3, 0.0, 0.5, 0.50196, 1.2, 0.1234])
    q = quantize(x)
    assert q.min() >= 0 and q.max() <= 1
    assert torch.allclose(q * 255, (q * 255).round(), atol=1e-5)
    assert q[0] == 0 and q[4] == 1
    assert torch.equal(quantize(q), q)


def test_straight_through_gradient():
    x = torch.rand(10, requires_grad=True)
    y = quantize_ste(x)
    assert torch.equal(y.detach(), quantize(x.detach()))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(10))


def test_pixel_error_on_0_255_scale():
    m = PixelError()
    m.update(torch.full((1, 3, 4, 4), 10 / 255), torch.zeros(1, 3, 4, 4))
    assert m.compute().item() == pytest.approx(10.0)


def test_pair_metrics_names_and_values():
    metrics = pair_metrics("val/", "_stego")
    a = torch.rand(4, 3, 32, 32)
    b = (a + 0.01).clamp(0, 1)
    metrics.update(b, a)
    out = metrics.compute()
    assert set(out) == {"val/psnr_stego", "val/ssim_stego", "val/apd_stego"}
    assert 38 < out["val/psnr_stego"] < 42  # ~ -10 log10(1e-4) = 40 dB less clamping
    assert out["val/ssim_stego"] > 0.95


def test_psnr_is_the_mean_over_images():
    metrics = pair_metrics("", "")
    target = torch.zeros(2, 1, 8, 8)
    pred = torch.stack([torch.full((1, 8, 8), 0.1), torch.full((1, 8, 8), 0.01)])
    metrics.update(pred, target)
    assert metrics.compute()["psnr"].item() == pytest.approx((20 + 40) / 2, abs=1e-3)


def test_quantize_under_bf16_autocast_lands_on_the_8bit_grid():
    # A conv layer's output under bf16 autocast is bf16, which cannot hold most of the 256 levels.
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = torch.rand(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = torch.sigmoid(conv(x))
        assert y.dtype == torch.bfloat16
        q = quantize(y)
    assert q.dtype == torch.float32
    levels = q * 255
    assert torch.equal(levels, levels.round())  # exactly on the grid
    assert len(levels.unique()) > 50  # and not collapsed onto bf16's coarse values
    expected = torch.round(y.float().clamp(0, 1) * 255) / 255
    assert torch.equal(q, expected)
