"""The LightningModule: hide + reveal nets, noise layer, compound loss, metrics.

Training objective::

    loss = lambda * L_cover(stego, cover) + beta * L_secret(revealed, secret)

where both ``L`` are the same :class:`steg.training.losses.ImageLoss`, and ``lambda``
is 1, or, with a stego-quality constraint (``stego_psnr``), a Lagrange multiplier
updated by dual ascent after every training step (:func:`dual_ascent`). One Adam (or any
configured) optimizer covers prep, hide and reveal nets, so the reveal loss
trains the prep and hide nets too.

Validation measures what a user gets: the stego image is quantized to 8 bits
(clamp, round to 1/255) before it is measured and before the reveal net sees it,
and the revealed image is quantized too before it is measured. A keyed net
(``model.keyed=true``) trains on secrets scrambled under a fresh key per image
and is validated under fixed keys (:meth:`steg.nets.StegNet.forward`,
:meth:`~steg.nets.StegNet.validation_keys`), unscrambled before any loss or metric.

Mixed precision (``trainer.precision=bf16-mixed``): the nets' convolutions run in
bf16, but every loss term (:class:`~steg.training.losses.ImageLoss`, the nets'
``extra_losses``) and every metric (:mod:`steg.metrics`) is computed in float32
with autocast off (:func:`steg.precision.fp32`), so a bf16 run logs the figures an
fp32 run would log for the same images.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Mapping
from typing import Any, Callable

import lightning as L
import torch
from torch import nn

from steg.training.losses import ImageLoss
from steg.metrics import CI_PREFIX, PSNRInterval, pair_metrics
from steg.quantize import check_rounding, quantize
from steg.nets import StegNet, build_net
from steg.precision import fp32, full

__all__ = ["StegModule", "check_beta", "check_stego_psnr", "dual_ascent", "LAMBDA_RANGE", "DUAL_STEP"]

#: Bounds of the cover loss's Lagrange multiplier under ``stego_psnr``.
LAMBDA_RANGE = (1e-3, 1e4)
#: Dual-ascent step of the multiplier, per dB of constraint violation (log scale).
DUAL_STEP = 0.05

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


def check_beta(beta: Any) -> float:
    """``beta`` (the weight of the secret loss) as a float, or one line naming the setting.

    >>> check_beta(0.75), check_beta(0)
    (0.75, 0.0)
    """
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not beta >= 0:
        raise ValueError(f"beta must be a number >= 0 (the weight of the secret loss), got {beta!r}")
    return float(beta)


def check_stego_psnr(value: Any) -> float | None:
    """``module.stego_psnr`` (dB) as a float, None for none, or one line naming the setting.

    >>> check_stego_psnr(35), check_stego_psnr(None)
    (35.0, None)
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"module.stego_psnr must be null or a finite number of dB > 0 "
                         f"(the stego image's target PSNR), got {value!r}")
    return float(value)


def dual_ascent(lam: torch.Tensor, mse: torch.Tensor, stego_psnr: float, eta: float = DUAL_STEP) -> torch.Tensor:
    """The next Lagrange multiplier of the constraint ``MSE(stego, cover) <= 10 ** (-stego_psnr / 10)``.

    ``lam * exp(eta * violation_dB)``, clamped to :data:`LAMBDA_RANGE`, where
    ``violation_dB = 10 log10(mse / target)`` is positive when the stego image is worse
    than the target (lambda grows: the cover loss weighs more) and negative when better.
    Shapes: scalars -> a scalar (float32).

    >>> round(float(dual_ascent(torch.tensor(1.0), torch.tensor(1e-3), 40.0)), 4)  # 10 dB worse: x e^0.5
    1.6487
    """
    violation = 10.0 * torch.log10(mse.float().clamp_min(1e-20) / 10.0 ** (-stego_psnr / 10.0))
    return (lam.float() * torch.exp(eta * violation)).clamp(*LAMBDA_RANGE)


class StegModule(L.LightningModule):
    """Wraps a :class:`StegNet`, the train-time distortion between hide and reveal, and the loss.

    Args:
        net: the hide/reveal architecture, or its ``arch_config`` (what
            :meth:`load_from_checkpoint` passes back).
        loss: the per-image loss used for both the cover and the secret, or the
            keyword arguments of an :class:`ImageLoss`.
        beta: weight of the secret loss.
        optimizer: ``partial`` that takes ``params`` (Hydra ``_partial_: true``).
        scheduler: ``partial`` that takes ``optimizer`` (and ``total_steps``, for the
            :mod:`steg.training.schedules` laid out over the run, stepped every step), or None.
        scheduler_monitor: metric for schedulers that need one (ReduceLROnPlateau).
        scheduler_interval: "epoch" or "step".
        rounding: what the reveal net sees of the stego image in training
            (:func:`steg.quantize.round_channel`): ``ste`` (the default: the 8-bit image,
            straight-through gradient, what users save), ``noise`` (float stego + one
            8-bit level of uniform noise), ``both`` (half the batch each) or ``none``
            (the float stego). Validation always reveals the real 8-bit stego image.
        quantize_train: deprecated alias of ``rounding``: True = ``ste``, False = ``none``
            (an error if it contradicts ``rounding``).
        stego_psnr: None, or a target stego PSNR in dB: the cover loss's weight becomes a
            Lagrange multiplier (the buffer ``cover_weight``, saved in checkpoints, starting
            at 1) raised or lowered after every training step by :func:`dual_ascent` on the
            batch's 8-bit stego MSE (averaged over DDP processes), logged as ``train/lambda``.
        channels_last: keep weights and images in channels-last memory order
            (faster convolutions on CPUs and GPUs; ``experiments/bench``).
        compile: ``torch.compile`` the net's sub-modules (pays off on GPUs; on a
            2-core CPU it measured slower). Checkpoints are unchanged.
        distortion: a :mod:`steg.distortions.layers` module (``conf/distortion``) applied to
            the 8-bit stego image before the reveal net in training only; None: none.
            A crop distortion also crops the secret the revealed image is compared with.
        fused_optimizer: pass ``fused=True`` to an optimizer that takes it (Adam,
            AdamW): one kernel per step instead of one per tensor. None (default):
            on CUDA, unless gradients are clipped (Lightning refuses to clip the
            gradients of a fused optimizer under mixed precision); True: always
            (the CPU has fused Adam too); False: never. An optimizer config that
            names ``fused`` itself wins.

    The hyperparameters (``self.hparams``, saved in every checkpoint) are the net's
    ``arch_config``, the loss's arguments and the plain options, so that
    ``StegModule.load_from_checkpoint(path)`` rebuilds the module with its weights.
    The optimizer, scheduler and distortion are objects of the Hydra config (in the
    checkpoint's ``config``), not hyperparameters: pass them to ``load_from_checkpoint``
    to resume with them.
    """

    def __init__(
        self,
        net: StegNet | Mapping[str, Any],
        loss: ImageLoss | Mapping[str, Any],
        beta: float = 0.75,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str = "val/loss",
        scheduler_interval: str = "epoch",
        rounding: str | None = None,
        quantize_train: bool | None = None,
        stego_psnr: float | None = None,
        channels_last: bool = False,
        compile: bool = False,
        distortion: nn.Module | None = None,
        fused_optimizer: bool | None = None,
    ):
        super().__init__()
        beta = check_beta(beta)
        rounding = _rounding(rounding, quantize_train)
        stego_psnr = check_stego_psnr(stego_psnr)
        net = build_net(**net) if isinstance(net, Mapping) else net
        loss = ImageLoss(**loss) if isinstance(loss, Mapping) else loss
        self.save_hyperparameters(
            {"net": dict(net.arch_config), "loss": getattr(loss, "config", None), "beta": float(beta),
             "scheduler_monitor": scheduler_monitor, "scheduler_interval": scheduler_interval,
             "rounding": rounding, "stego_psnr": stego_psnr, "channels_last": channels_last, "compile": compile,
             "fused_optimizer": fused_optimizer},
            logger=False,  # train.py logs the whole resolved config
        )
        self.net = net
        self.loss = loss
        self.beta = float(beta)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_monitor = scheduler_monitor
        self.scheduler_interval = scheduler_interval
        self.rounding = rounding
        self.stego_psnr = stego_psnr
        if stego_psnr is not None:  # only then: checkpoints of unconstrained runs keep their keys
            self.register_buffer("cover_weight", torch.ones(()))
        self._stego_mse: torch.Tensor | None = None
        self.distortion = distortion
        self.fused_optimizer = fused_optimizer
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        if compile:
            for part in self.net.children():
                part.compile()  # in place: parameter names and checkpoints stay the same
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{pair}": pair_metrics(f"{stage}/", f"_{pair}")
                for stage in ("train", "val")
                for pair in ("stego", "secret")
            }
        )
        # the spread of the per-image validation PSNRs (synchronised under DDP): val/ci95_psnr_*
        self.val_intervals = nn.ModuleDict({pair: PSNRInterval() for pair in ("stego", "secret")})

    @property
    def quantize_train(self) -> bool:
        """Deprecated: whether training rounds the stego image to 8 bits (``rounding == "ste"``)."""
        return self.rounding == "ste"

    # -- forward ----------------------------------------------------------
    def forward(self, cover: torch.Tensor, secret: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inference: 8-bit stego image and the secret revealed from it, in [0, 1]."""
        stego = quantize(self.net.hide_with_key(cover, secret))
        return {"stego": stego, "revealed": self.net.reveal_with_key(stego).clamp(0, 1)}

    def _objective(self, cover, secret, stego, revealed, stage: str) -> torch.Tensor:
        all_terms = stage != "train"  # log-only terms are measured at validation
        cover_terms = self.loss(stego, cover, all_terms=all_terms)
        secret_terms = self.loss(revealed, secret, all_terms=all_terms)
        cover_weight = self.cover_weight.detach().clone() if self.stego_psnr is not None else 1.0
        total = cover_weight * cover_terms["loss"] + self.beta * secret_terms["loss"]
        on_step = stage == "train"
        logs = {}
        with fp32(cover):  # extra terms in float32 like the loss (e.g. hinet's lowfreq)
            extra = self.net.extra_losses(*(full(x) for x in (cover, secret, stego, revealed)))
        for name, value in extra.items():
            total = total + self.net.extra_loss_weights[name] * value
            logs[f"{stage}/loss/{name}"] = value
        logs[f"{stage}/loss"] = total
        # Loss terms live under {stage}/loss/ (val/loss/secret_psnr = -PSNR, a loss), so that none can be
        # mistaken for a metric (val/psnr_secret).
        for pair, terms in (("cover", cover_terms), ("secret", secret_terms)):
            for name, value in terms.items():
                logs[f"{stage}/loss/{pair}_{name}"] = value
        # sync_dist: the epoch-level train/loss is the mean over every DDP process, like its terms.
        self.log(f"{stage}/loss", total, on_step=on_step, on_epoch=True, prog_bar=True,
                 sync_dist=True, batch_size=cover.shape[0])
        logs.pop(f"{stage}/loss")
        self.log_dict({k: v.detach() for k, v in logs.items()}, on_step=False, on_epoch=True,
                      sync_dist=True, batch_size=cover.shape[0])
        return total

    def _update_metrics(self, stage, cover, secret, stego_q, revealed_q) -> None:
        stego_metrics, secret_metrics = self.metrics[f"{stage}_stego"], self.metrics[f"{stage}_secret"]
        # torchmetrics flattens with view(), which needs the default memory order.
        cover, secret, stego_q, revealed_q = (x.contiguous() for x in (cover, secret, stego_q, revealed_q))
        stego_metrics.update(stego_q, cover)
        secret_metrics.update(revealed_q, secret)
        if stage == "val":
            for pair, (pred, target) in {"stego": (stego_q, cover), "secret": (revealed_q, secret)}.items():
                self.val_intervals[pair].update(pred, target)
                self.log(f"val/{CI_PREFIX}psnr_{pair}", self.val_intervals[pair], on_step=False, on_epoch=True)
        self.log_dict(stego_metrics, on_step=False, on_epoch=True, prog_bar=(stage == "val"))
        self.log_dict(secret_metrics, on_step=False, on_epoch=True, prog_bar=(stage == "val"))

    # -- steps ------------------------------------------------------------
    def _images(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        cover, secret = batch
        return cover.contiguous(memory_format=self.memory_format), secret.contiguous(memory_format=self.memory_format)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        cover, secret = self._images(batch)
        out = self.net(cover, secret, quantize=self.rounding, distortion=self.distortion)
        stego, revealed, secret = out["stego"], out["revealed"], out["target"]
        total = self._objective(cover, secret, stego, revealed, "train")
        with torch.no_grad():
            stego_q = quantize(stego)
            self._update_metrics("train", cover, secret, stego_q, quantize(revealed))
            if self.stego_psnr is not None:
                self._stego_mse = (stego_q - cover.float()).square().mean()
                self.log("train/lambda", self.cover_weight.clone(), on_step=False, on_epoch=True,
                         batch_size=cover.shape[0])
        return total

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        """Under ``stego_psnr``: the dual-ascent step of the cover loss's multiplier (after the optimizer step)."""
        if self.stego_psnr is None or self._stego_mse is None:
            return
        mse = self._stego_mse
        if self._trainer is not None:  # DDP: the mean over every process, so that all keep one lambda
            mse = self.trainer.strategy.reduce(mse, reduce_op="mean")
        self.cover_weight.copy_(dual_ascent(self.cover_weight, mse, self.stego_psnr))
        self._stego_mse = None

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        cover, secret = self._images(batch)
        keys = self.net.validation_keys(cover.shape[0], batch_idx)  # keyed nets: fixed keys, else None
        stego_q = quantize(self.net.hide_with_key(cover, secret, keys))
        revealed = self.net.reveal_with_key(stego_q, keys)
        self._objective(cover, secret, stego_q, revealed, "val")
        revealed_q = quantize(revealed)
        self._update_metrics("val", cover, secret, stego_q, revealed_q)
        return {"cover": cover, "secret": secret, "stego": stego_q, "revealed": revealed_q}

    # -- optimisation -------------------------------------------------------
    def configure_optimizers(self):
        factory = self.optimizer_factory or torch.optim.Adam
        optimizer = factory(params=self.parameters(), **self._fused_kwargs(factory))
        if self.scheduler_factory is None:
            return optimizer
        interval = self.scheduler_interval
        if "total_steps" in inspect.signature(self.scheduler_factory).parameters:  # steg.training.schedules: over the run
            scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=self.trainer.estimated_stepping_batches)
            interval = "step"
        else:
            scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.scheduler_monitor, "interval": interval},
        }

    def _fused_kwargs(self, factory) -> dict[str, bool]:
        """``{"fused": True}`` where :attr:`fused_optimizer` asks for it and ``factory`` takes it, else ``{}``."""
        given = getattr(factory, "keywords", {}) or {}
        target = getattr(factory, "func", factory)
        try:
            takes = "fused" in inspect.signature(target).parameters
        except (TypeError, ValueError):
            takes = False
        if self.fused_optimizer is False or not takes or "fused" in given:
            return {}
        if self.fused_optimizer is None:
            on_cuda = any(p.is_cuda for p in self.parameters())
            clipped = bool(self._trainer is not None and self.trainer.gradient_clip_val)
            if not on_cuda or clipped:
                return {}
        return {"fused": True}

    # -- checkpoints ----------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Enough to rebuild the net without Hydra or this module (steg export).
        checkpoint["arch_config"] = dict(self.net.arch_config)
        checkpoint["beta"] = self.beta


def _rounding(rounding: str | None, quantize_train: bool | None) -> str:
    """The rounding mode from ``rounding`` and its deprecated alias ``quantize_train`` (one line if they disagree)."""
    if quantize_train is not None and not isinstance(quantize_train, bool):
        raise ValueError(f"module.quantize_train must be true, false or null, got {quantize_train!r}")
    alias = None if quantize_train is None else ("ste" if quantize_train else "none")
    if rounding is None:
        return alias or "ste"
    rounding = check_rounding(rounding)
    if alias is not None and alias != rounding:
        raise ValueError(f"module.quantize_train={str(quantize_train).lower()} (deprecated: = rounding {alias}) "
                         f"contradicts module.rounding={rounding}; set module.rounding only")
    return rounding
