"""The training options the learned-net diagnosis needs (issue 21): rounding modes, Charbonnier,
the stego-PSNR constraint and the warm-up + cosine schedule. Tiny nets, a few steps each."""

from __future__ import annotations

import math

import hydra
import lightning as L
import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from torch.utils.data import DataLoader, TensorDataset

from conftest import compose_train
from steg.nets import UnshuffleUNet
from steg.quantize import ROUNDING_MODES
from steg.training.losses import CHARBONNIER_EPS, ImageLoss
from steg.training.module import LAMBDA_RANGE, StegModule, dual_ascent
from steg.training.schedules import warmup_cosine


def _net() -> UnshuffleUNet:
    torch.manual_seed(0)
    return UnshuffleUNet(**UnshuffleUNet.tiny())


def _on_grid(x: torch.Tensor) -> torch.Tensor:
    """Per value: whether it is one of the 256 8-bit levels."""
    return (x * 255 - torch.round(x * 255)).abs() < 1e-4


# -- rounding ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_each_rounding_mode_gives_what_it_says_and_passes_the_gradient_to_the_hide_net(mode):
    """ste: the 8-bit grid; noise: off the grid, within half a level of the float stego; both: half each;
    none: the float stego itself. In every mode the secret's loss alone reaches the hide net."""
    net = _net().train()
    cover, secret = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        float_stego = net.hide(cover, secret)
    out = net(cover, secret, quantize=mode)
    stego = out["stego"].detach()
    grid, half_level = _on_grid(stego), 0.5 / 255 + 1e-6
    ste_rows, noise_rows = {"ste": (slice(0, 4), None), "noise": (None, slice(0, 4)),
                            "both": (slice(0, 2), slice(2, 4)), "none": (None, None)}[mode]
    if ste_rows is not None:
        assert grid[ste_rows].all()
        assert (stego[ste_rows] - float_stego[ste_rows].clamp(0, 1)).abs().max() <= half_level
    if noise_rows is not None:
        assert grid[noise_rows].float().mean() < 0.01  # uniform noise: (almost) never a level
        assert not torch.equal(stego[noise_rows], float_stego[noise_rows])
        assert (stego[noise_rows] - float_stego[noise_rows].clamp(0, 1)).abs().max() <= half_level
    if mode == "none":
        assert torch.equal(stego, float_stego)
    torch.nn.functional.mse_loss(out["revealed"], secret).backward()  # the secret's loss only
    hide_grads = [p.grad for p in net.hide_net.parameters() if p.grad is not None]
    assert hide_grads and any(g.abs().sum() > 0 for g in hide_grads)


def test_rounding_is_a_module_option_with_quantize_train_as_its_alias():
    """module.rounding from train.yaml reaches the module and its hparams; quantize_train true/false = ste/none;
    a contradiction or an unknown mode is one line naming the setting."""
    for overrides, expected in ((["model=unet"], "ste"), (["model=unet", "module.rounding=noise"], "noise"),
                                (["model=unet", "module.quantize_train=false"], "none"),
                                (["model=unet", "module.rounding=both", "module.quantize_train=true"], None)):
        cfg = compose_train(overrides)

        def build():
            return hydra.utils.instantiate(cfg.module, net=_net(), loss=ImageLoss(), optimizer=None, scheduler=None)

        if expected is None:
            with pytest.raises(InstantiationException, match=r"quantize_train=true .*contradicts module.rounding=both"):
                build()
            continue
        module = build()
        assert module.rounding == expected and module.hparams["rounding"] == expected
        assert module.quantize_train is (expected == "ste")
    with pytest.raises(ValueError, match="module.rounding must be one of ste, noise, both, none, got 'round'"):
        StegModule(_net(), ImageLoss(), rounding="round")


# -- Charbonnier ---------------------------------------------------------------------------------
def test_charbonnier_term_is_the_hand_formula_in_fp32():
    """mean(sqrt(d^2 + eps^2)), eps = 1e-3, against numpy in float64; bf16 inputs still give a float32 term."""
    torch.manual_seed(1)
    pred, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    d = pred.double().numpy() - target.double().numpy()
    expected = float(np.mean(np.sqrt(d**2 + CHARBONNIER_EPS**2)))
    loss = ImageLoss(mse=0.0, charbonnier=1.0)
    terms = loss(pred, target)
    assert terms["charbonnier"].dtype == torch.float32
    assert terms["charbonnier"].item() == pytest.approx(expected, rel=1e-5)
    assert terms["loss"].item() == pytest.approx(expected, rel=1e-5) and "mse" not in terms
    same = loss(target, target)["charbonnier"].item()
    assert same == pytest.approx(CHARBONNIER_EPS, rel=1e-5)  # a perfect match costs eps, not 0
    assert loss(pred.bfloat16(), target.bfloat16())["charbonnier"].dtype == torch.float32
    for name in ("charbonnier", "logmse"):  # the presets compose and build
        assert isinstance(hydra.utils.instantiate(compose_train([f"loss={name}"]).loss), ImageLoss)


# -- the stego-PSNR constraint -------------------------------------------------------------------
def _fit(module: StegModule, steps: int, tmp_path=None) -> L.Trainer:
    torch.manual_seed(0)
    images = TensorDataset(torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16))
    trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", limit_val_batches=0,
                        default_root_dir=tmp_path)
    trainer.fit(module, DataLoader(images, batch_size=2))
    return trainer


def _constrained(stego_psnr: float) -> StegModule:
    return StegModule(_net(), ImageLoss(), stego_psnr=stego_psnr,
                      optimizer=lambda params: torch.optim.Adam(params, lr=1e-3))


def test_dual_ascent_is_the_documented_update():
    """lambda * exp(0.05 * violation in dB), clamped to LAMBDA_RANGE."""
    target = 10 ** (-30 / 10)
    worse = dual_ascent(torch.tensor(2.0), torch.tensor(target * 10 ** 0.3), 30.0)  # 3 dB worse than 30 dB
    assert worse.item() == pytest.approx(2.0 * math.exp(0.05 * 3), rel=1e-5)
    better = dual_ascent(torch.tensor(2.0), torch.tensor(target / 10), 30.0)  # 10 dB better
    assert better.item() == pytest.approx(2.0 * math.exp(-0.5), rel=1e-5)
    assert dual_ascent(torch.tensor(9e3), torch.tensor(1.0), 60.0).item() == LAMBDA_RANGE[1]
    assert dual_ascent(torch.tensor(2e-3), torch.tensor(1e-12), 10.0).item() == pytest.approx(LAMBDA_RANGE[0])


def test_the_constraint_raises_lambda_when_the_stego_is_worse_and_lowers_it_when_better(tmp_path):
    """A tiny run against an unreachable target (90 dB) raises lambda above 1 at every step; against a
    trivial one (5 dB) lowers it; the lambda used is logged; the checkpoint carries lambda back."""
    high = _constrained(90.0)
    trainer = _fit(high, 3)
    assert high.cover_weight.item() > 1.0
    assert "train/lambda" in trainer.callback_metrics
    low = _constrained(5.0)
    trainer = _fit(low, 3)
    assert low.cover_weight.item() < 1.0
    # each step multiplies by exp(0.05 * violation): after 3 steps lambda < exp(-0.05 * 3 * (psnr_stego - 5))
    assert low.cover_weight.item() < math.exp(-0.05 * 3 * 10)
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    loaded = StegModule.load_from_checkpoint(tmp_path / "c.ckpt")
    assert loaded.stego_psnr == 5.0 and loaded.hparams["stego_psnr"] == 5.0
    assert loaded.cover_weight.item() == low.cover_weight.item() != 1.0
    plain = StegModule(_net(), ImageLoss())
    assert "cover_weight" not in plain.state_dict()  # unconstrained checkpoints keep their keys


@pytest.mark.parametrize("value", [0, -3.0, float("nan"), float("inf"), True, "35"])
def test_a_bad_stego_psnr_is_one_line(value):
    with pytest.raises(ValueError, match=r"module.stego_psnr must be null or a finite number of dB > 0"):
        StegModule(_net(), ImageLoss(), stego_psnr=value)


# -- warm-up + cosine ----------------------------------------------------------------------------
def test_warmup_cosine_starts_at_zero_peaks_after_the_warmup_and_ends_at_eta_min():
    """200 steps, warm-up 5% (10 steps): lr 0 at step 0, the base lr at step 10, eta_min at step 200; the
    preset (conf/scheduler/warmup_cosine.yaml) builds the same schedule."""
    for make in (lambda opt: warmup_cosine(opt, 200, warmup=0.05, eta_min=1e-5),
                 lambda opt: hydra.utils.instantiate(compose_train(["scheduler=warmup_cosine"]).scheduler)(
                     optimizer=opt, total_steps=200)):
        opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
        sched, lrs = make(opt), []
        for _ in range(201):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert lrs[0] == 0.0 and lrs[5] == pytest.approx(1e-3)
        assert lrs[10] == pytest.approx(2e-3) == max(lrs)
        assert lrs[200] == pytest.approx(1e-5) and all(b <= a for a, b in zip(lrs[10:], lrs[11:]))
    with pytest.raises(ValueError, match="scheduler.warmup is a fraction of the run"):
        warmup_cosine(opt, 200, warmup=1.5)


def test_the_options_train_together_through_train_py_config(tiny_cfg, tmp_path):
    """`python train.py model=unet module.rounding=both module.stego_psnr=30 loss=charbonnier
    scheduler=warmup_cosine`: trains, logs train/lambda and the Charbonnier terms, and the last
    checkpoint holds the options and the multiplier."""
    import csv

    from steg.training.loop import train

    cfg = tiny_cfg(["model=unet", "module.rounding=both", "module.stego_psnr=30", "loss=charbonnier",
                    "scheduler=warmup_cosine"])
    train(cfg)
    with open(tmp_path / "run" / "csv" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert any(r.get("train/lambda") for r in rows) and any(r.get("val/loss/secret_charbonnier") for r in rows)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    hparams = ckpt["hyper_parameters"]
    assert hparams["rounding"] == "both" and hparams["stego_psnr"] == 30.0 and hparams["loss"]["charbonnier"] == 1.0
    assert ckpt["state_dict"]["cover_weight"].item() != 1.0
