"""The LightningModule: 8-bit validation, logged terms, and exact metrics under DDP."""

import hydra
import lightning as L
import pytest
import torch
from omegaconf import open_dict

from conftest import compose_train, tiny
from steg.training.losses import ImageLoss
from steg.training.module import StegModule
from steg.nets import Subpixel
from steg.training.loop import instantiate_run


class RecordingNet(Subpixel):
    """Records what the reveal net is fed."""

    def __init__(self):
        super().__init__(prep_width=4, widths=(4, 8))
        self.seen = []

    def reveal(self, stego):
        self.seen.append(stego.detach().clone())
        return super().reveal(stego)


def test_validation_quantizes_stego_before_reveal():
    net = RecordingNet()
    module = StegModule(net, ImageLoss())
    batch = (torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    out = module.validation_step(batch, 0)
    fed = net.seen[-1]
    assert fed.min() >= 0 and fed.max() <= 1
    assert torch.allclose(fed * 255, (fed * 255).round(), atol=1e-4)
    assert torch.equal(out["stego"], fed)
    for key in ("stego", "revealed"):
        assert torch.allclose(out[key] * 255, (out[key] * 255).round(), atol=1e-4)


def test_training_step_uses_8bit_stego_with_gradient():
    net = RecordingNet()
    module = StegModule(net, ImageLoss(), quantize_train=True)
    loss = module.training_step((torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)), 0)
    fed = net.seen[-1]
    assert torch.allclose(fed * 255, (fed * 255).round(), atol=1e-4)
    loss.backward()
    # The straight-through quantizer passes the reveal loss back: every prep and hide weight tensor
    # gets a non-zero gradient (a plain rounding would leave them at zero, or None).
    for name, p in [*net.prep_net.named_parameters(), *net.hide_net.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_channels_last_gives_the_same_step():
    torch.manual_seed(0)
    net = Subpixel(prep_width=4, widths=(4, 8))
    twin = Subpixel(prep_width=4, widths=(4, 8))
    twin.load_state_dict(net.state_dict())
    plain, fast = StegModule(net, ImageLoss()), StegModule(twin, ImageLoss(), channels_last=True)
    assert twin.hide_net.head.weight.is_contiguous(memory_format=torch.channels_last)
    batch = (torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    losses = [m.training_step(batch, 0) for m in (plain, fast)]
    assert losses[1].item() == pytest.approx(losses[0].item(), rel=1e-5)
    for m, loss in zip((plain, fast), losses):
        loss.backward()
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6)
    # A channels-last module's checkpoint loads into a plain net and computes the same images.
    fresh = Subpixel(prep_width=4, widths=(4, 8))
    fresh.load_state_dict(fast.net.state_dict())
    cover, secret = batch
    assert torch.allclose(fresh.hide(cover, secret), twin.hide(cover.contiguous(memory_format=torch.channels_last),
                                                                secret.contiguous(memory_format=torch.channels_last)),
                          atol=1e-6)


def test_compile_keeps_parameter_names():
    net = Subpixel(prep_width=4, widths=(4, 8))
    names = list(net.state_dict())
    StegModule(net, ImageLoss(), compile=True)  # compiles lazily, at the first call
    assert list(net.state_dict()) == names


def test_objective_is_cover_plus_beta_secret():
    torch.manual_seed(0)
    net = Subpixel(prep_width=4, widths=(4, 8))
    module = StegModule(net, ImageLoss(mse=1.0), beta=0.25)
    cover, secret = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    stego, revealed = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    total = module._objective(cover, secret, stego, revealed, "val")
    expected = ((stego - cover) ** 2).mean() + 0.25 * ((revealed - secret) ** 2).mean()
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


def _validate(tmp_path, devices: int) -> dict[str, float]:
    cfg = tiny(compose_train(["logger=csv"]), tmp_path / f"run{devices}")
    with open_dict(cfg):
        cfg.data.val_tiles = 8  # 4 pairs: 2 per process, nothing padded by the sampler
        cfg.data.batch_size = 2
        cfg.trainer.devices = devices
        if devices > 1:
            cfg.trainer.strategy = "ddp_spawn"
    L.seed_everything(0)
    parts = instantiate_run(cfg)
    results = parts["trainer"].validate(parts["module"], datamodule=parts["datamodule"], verbose=False)
    return results[0]


@pytest.mark.slow
def test_ddp_metrics_equal_single_process(tmp_path):
    single = _validate(tmp_path, 1)
    double = _validate(tmp_path, 2)
    keys = [k for k in single if k.split("/")[-1].split("_")[0] in ("psnr", "ssim", "apd", "ci95")] + ["val/loss"]
    assert len(keys) == 9  # with the 95% intervals, from every process's per-image PSNRs
    for key in keys:
        assert double[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key


def test_training_learns_one_batch():
    """Overfit one fixed batch: the training loss must fall clearly (to under half)."""
    L.seed_everything(0)
    cfg = compose_train(["model=unet", "model.width=8", "model.depth=1", "logger=csv"])
    module = hydra.utils.instantiate(cfg.module, net=hydra.utils.instantiate(cfg.model),
                                     loss=hydra.utils.instantiate(cfg.loss), optimizer=None, scheduler=None)
    module.log = module.log_dict = lambda *a, **k: None  # no trainer here
    cover, secret = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = module.training_step((cover, secret), 0)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_epoch_train_loss_is_synced_across_processes():
    cfg = compose_train(["model=unet", "model.width=8", "model.depth=1"])
    module = hydra.utils.instantiate(cfg.module, net=hydra.utils.instantiate(cfg.model),
                                     loss=hydra.utils.instantiate(cfg.loss), optimizer=None, scheduler=None)
    calls = {}
    module.log = lambda name, value, **kwargs: calls.setdefault(name, kwargs)
    module.log_dict = lambda *a, **k: None
    module.training_step((torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)), 0)
    assert calls["train/loss"]["on_epoch"] and calls["train/loss"]["sync_dist"]


def test_load_from_checkpoint_rebuilds_the_module_from_its_hyperparameters(tmp_path):
    """save_hyperparameters: a checkpoint alone rebuilds net (arch_config), loss and options, with the weights."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    net = Subpixel(prep_width=4, widths=(4, 8), keyed=True, key_block=2)
    module = StegModule(net, ImageLoss(mse=1.0, ssim=0.5), beta=0.4, quantize_train=False,
                        optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    images = TensorDataset(torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16))
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", limit_val_batches=0)
    trainer.fit(module, DataLoader(images, batch_size=2))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = StegModule.load_from_checkpoint(tmp_path / "m.ckpt")
    assert type(loaded.net) is Subpixel and loaded.net.arch_config == net.arch_config and loaded.net.keyed
    assert loaded.loss.config == module.loss.config and loaded.beta == 0.4 and loaded.quantize_train is False
    for name, value in module.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    cover, secret = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    module.eval(), loaded.eval()
    assert torch.equal(loaded(cover, secret)["revealed"], module(cover, secret)["revealed"])


@pytest.mark.parametrize("beta", [-1, True, "x", float("nan")])
def test_beta_is_checked_by_the_one_validator(beta):
    """StegModule and the config check share steg.training.module.check_beta: one line naming the setting."""
    with pytest.raises(ValueError, match="beta must be a number >= 0 .*weight of the secret loss"):
        StegModule(Subpixel(prep_width=4, widths=(4, 8)), ImageLoss(), beta=beta)
