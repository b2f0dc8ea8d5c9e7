import math

import pytest
import torch

from steg.training.losses import TERMS, ImageLoss, histogram_distance


def test_identical_images_give_zero_mse_ssim_hist():
    x = torch.rand(2, 3, 32, 32)
    terms = ImageLoss(mse=1, ssim=1, hist=1)(x, x.clone(), all_terms=True)
    assert terms["mse"] == 0
    assert terms["ssim"].abs() < 1e-4
    assert terms["hist"].abs() < 1e-6


def test_mse_and_psnr_on_known_inputs():
    a = torch.zeros(1, 3, 16, 16)
    b = torch.full_like(a, 0.1)
    terms = ImageLoss(mse=1, psnr=1)(b, a)
    assert terms["mse"].item() == pytest.approx(0.01)
    # -PSNR = 10 log10(MSE) = -20 dB, plus the floor (one 8-bit level's rounding power): -19.9994 dB
    assert terms["psnr"].item() == pytest.approx(10 * math.log10(0.01 + 1 / (12 * 255**2)), abs=1e-4)


def test_ssim_term_is_one_minus_ssim():
    torch.manual_seed(0)
    a = torch.rand(1, 1, 32, 32)
    b = torch.rand(1, 1, 32, 32)
    # unrelated noise images: SSIM near 0, term near 1
    assert 0.8 < ImageLoss(ssim=1)(a, b)["ssim"].item() < 1.2


def test_histogram_distance_measures_a_shift():
    # Constant images 0.2 and 0.6: the 1-D Wasserstein distance is 0.4.
    a = torch.full((1, 3, 16, 16), 0.2)
    b = torch.full((1, 3, 16, 16), 0.6)
    assert histogram_distance(a, b, bins=101).item() == pytest.approx(0.4, abs=0.02)
    # A permutation of pixels leaves the histogram unchanged.
    x = torch.rand(1, 3, 16, 16)
    perm = x.flatten(2)[..., torch.randperm(256)].reshape_as(x)
    assert histogram_distance(x, perm).item() < 1e-5


@pytest.mark.parametrize("term", TERMS)
def test_every_term_has_a_gradient(term):
    torch.manual_seed(0)
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    target = torch.rand(2, 3, 16, 16)
    loss = ImageLoss(**{t: (1.0 if t == term else 0.0) for t in TERMS})
    terms = loss(pred, target, all_terms=True)
    terms["loss"].backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0


def test_weights_combine_and_zero_weight_terms_are_logged_without_grad():
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    target = torch.rand(2, 3, 16, 16)
    terms = ImageLoss(mse=0.84, ssim=0.1, psnr=0.0005, hist=0.06)(pred, target)
    expected = 0.84 * terms["mse"] + 0.1 * terms["ssim"] + 0.0005 * terms["psnr"] + 0.06 * terms["hist"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(ImageLoss()(pred, target)) == {"mse", "loss"}
    only_mse = ImageLoss()(pred, target, all_terms=True)
    assert set(only_mse) == {*TERMS, "loss"}
    assert not only_mse["hist"].requires_grad
    assert math.isclose(only_mse["loss"].item(), only_mse["mse"].item())


def test_all_zero_weights_rejected():
    with pytest.raises(ValueError, match="non-zero weight"):
        ImageLoss(mse=0)


def test_psnr_term_is_finite_with_a_finite_gradient_where_the_images_are_equal():
    """A residual net's stego equals its cover at step 0: log-MSE must not be -inf there (it made
    `loss=logmse` NaN from the 4th step), and it is -PSNR elsewhere (floored at 8-bit rounding)."""
    from steg.training.losses import ROUNDING_POWER

    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    target = x.detach().clone()
    value = ImageLoss(mse=0.0, psnr=1.0)(x, target)["loss"]
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    assert float(value) == pytest.approx(10 * math.log10(ROUNDING_POWER), abs=1e-4)
    y = (target + 0.1).clamp(0, 1)
    mse = float(((y - target) ** 2).mean())
    got = float(ImageLoss(mse=0.0, psnr=1.0)(y, target)["loss"])
    assert got == pytest.approx(10 * math.log10(mse + ROUNDING_POWER), abs=1e-4)
