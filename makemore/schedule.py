"""The learning rate as one pure function of the step, shared by every backend and by resume."""

from __future__ import annotations

import math

from makemore.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based) of a run of cfg.steps steps.

    - "step" (the lecture): cfg.lr, times cfg.lr_factor once for every milestone <= step
      (the lecture's `lr = 0.1 if i < 100000 else 0.01`).
    - "cosine": from cfg.lr down to cfg.min_lr along half a cosine over the steps after warm-up
      (Loshchilov & Hutter 2017, SGDR, without restarts).
    - "constant": cfg.lr throughout.
    Any schedule is preceded by cfg.warmup_steps of linear warm-up: lr·(step+1)/warmup_steps.
    """
    if cfg.schedule == "step":
        lr = cfg.lr * cfg.lr_factor ** sum(step >= m for m in cfg.lr_milestones)
    elif cfg.schedule == "cosine":
        span = max(cfg.steps - cfg.warmup_steps, 1)
        progress = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
        lr = cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))
    else:
        lr = cfg.lr
    if step < cfg.warmup_steps:
        lr *= (step + 1) / cfg.warmup_steps
    return lr
