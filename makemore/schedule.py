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


def fit_steps(step: int, step_s: float, seconds_left: float, eval_s: float, eval_interval: int, ceiling: int) -> int:
    """The number of steps a run given a time budget (train.time_budget_s) takes in all.

    Args:
        step: steps taken so far. step_s: seconds per step, as timed so far.
        seconds_left: the budget's seconds not yet spent. eval_s: seconds one whole-dev
            evaluation with its checkpoint takes. eval_interval: steps between evaluations.
        ceiling: train.steps, the most the run may take.

    Returns:
        The largest step count N (step < N <= ceiling, at least one more step) whose remaining
        steps and evaluations (one every eval_interval steps, and the last one at N) fit in
        seconds_left.
    """
    n = step + int(max(seconds_left, 0.0) / max(step_s, 1e-9))
    for _ in range(3):  # the evaluations' share depends on n: a few fixed-point passes settle it
        evals = n // eval_interval - step // eval_interval + 1
        n = step + int(max(seconds_left - evals * eval_s, 0.0) / max(step_s, 1e-9))
    return max(step + 1, min(n, ceiling))
