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

__all__ = ["step_decay", "cosine", "run_steps"]


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
