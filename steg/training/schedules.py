"""Learning-rate schedules laid out over the whole run, so they fit any data size and run length.

Each factory takes ``total_steps`` (the run's optimizer steps, from
``trainer.estimated_stepping_batches``: ``max_steps``, or ``max_epochs`` x steps per
epoch) and returns a torch scheduler stepped every optimizer step
(:class:`steg.training.module.StegModule` passes it and sets ``interval: step``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["step_decay", "cosine", "warmup_cosine", "run_steps"]


def run_steps(total_steps: float, name: str) -> int:
    """``total_steps`` as an int; a one-line error when the run has no finite length."""
    if not math.isfinite(total_steps) or total_steps < 1:
        raise ValueError(f"scheduler={name} is laid out over the run: set trainer.max_epochs or trainer.max_steps "
                         f"(got {total_steps} steps), or use scheduler=plateau / scheduler=null")
    return int(total_steps)


def step_decay(optimizer: torch.optim.Optimizer, total_steps: float, milestones: Sequence[float] = (0.5, 0.75, 0.9167),
               gamma: float = 0.3) -> torch.optim.lr_scheduler.MultiStepLR:
    """``MultiStepLR`` with milestones given as fractions of the run (0.5 = half way).

    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sorted(step_decay(opt, 100, (0.5, 0.75)).milestones)
    [50, 75]
    """
    steps = run_steps(total_steps, "step")
    if any(not 0 < f < 1 for f in milestones):
        raise ValueError(f"scheduler.milestones are fractions of the run, each between 0 and 1, got {list(milestones)}")
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, [max(1, round(f * steps)) for f in milestones], gamma)


def cosine(optimizer: torch.optim.Optimizer, total_steps: float, eta_min: float = 1e-5
           ) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    """``CosineAnnealingLR`` over the whole run, down to ``eta_min`` at the last step."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=run_steps(total_steps, "cosine"), eta_min=eta_min)


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: float, warmup: float = 0.05, eta_min: float = 1e-5
                  ) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 over the first ``warmup`` (fraction) of the run, then cosine down to ``eta_min``.

    The warm-up lasts ``max(1, round(warmup * total_steps))`` steps; the cosine reaches
    ``eta_min`` at the last step.

    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched, lrs = warmup_cosine(opt, 100, warmup=0.1, eta_min=0.0), []
    >>> for _ in range(101):
    ...     lrs.append(round(opt.param_groups[0]["lr"], 6)); opt.step(); sched.step()
    >>> lrs[0], lrs[5], lrs[10], lrs[55], lrs[100]
    (0.0, 0.5, 1.0, 0.5, 0.0)
    """
    steps = run_steps(total_steps, "warmup_cosine")
    if isinstance(warmup, bool) or not 0 <= warmup < 1:
        raise ValueError(f"scheduler.warmup is a fraction of the run, >= 0 and < 1, got {warmup!r}")
    warm = max(1, round(warmup * steps))

    def factor(step: int, base_lr: float) -> float:
        if step < warm:
            return step / warm
        progress = min(1.0, (step - warm) / max(1, steps - warm))
        floor = eta_min / base_lr if base_lr > 0 else 0.0
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    lambdas = [lambda step, base_lr=group.get("initial_lr", group["lr"]): factor(step, base_lr)
               for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
