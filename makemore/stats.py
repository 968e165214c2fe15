"""Training statistics of "makemore part 3" (activations, gradients, update-to-data ratios): the
maths that turns one training step's arrays into the record stats.jsonl keeps.

With train.stats_interval = N > 0, the training driver takes the first step, every N-th step and
the last step with the backend's `recorded_step`, which hands this module the raw NumPy arrays
of that step and gets back one JSON-ready record (makemore.runs writes it):

- every hidden layer, from its output h (N rows, units), one row per example (and position):
  mean and std; `saturated`, the share of entries in a flat end of tanh (|h| > 0.97, where
  tanh' = 1 − h² < 0.06, so almost no gradient passes back); `dead`, the share of units flat
  on every row of the batch (tanh: saturated, relu: zero), which learn nothing from it; and a
  histogram of h on fixed bin edges.
- every parameter: the gradient's mean, std, share of exact zeros and a histogram of
  log10|grad| on fixed edges (gradients of different layers differ by orders of magnitude, so a
  log axis shows them side by side); the parameter's std; and the update-to-data ratio
  log10(std(update) / std(param)), where update is the parameter after the optimizer step minus
  before it: the change actually made, right for SGD, momentum and AdamW alike. The lecture's
  rule of thumb: about −3.

Standard deviations are the population ones (NumPy's ddof = 0), accumulated in float64; the
numbers are kept to 6 significant digits.
gelu has no flat region of this kind: its `saturated` and `dead` are None.

Source: A. Karpathy, "Building makemore Part 3: Activations & Gradients, BatchNorm" (2022).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

#: |tanh| above this counts as saturated (the lecture's threshold).
SATURATION = 0.97

#: Bins of every histogram.
HIST_BINS = 40

#: Fixed histogram range of a hidden layer's output, by kind; values beyond it are counted in
#: the end bins. tanh spans [−1, 1]; relu and gelu, unbounded above, use OTHER_ACTIVATION_RANGE.
ACTIVATION_RANGE = {"tanh": (-1.0, 1.0)}
OTHER_ACTIVATION_RANGE = (-2.0, 4.0)

#: Fixed histogram range of log10|gradient| (exact zeros are counted apart, as grad_zero).
GRAD_LOG10_RANGE = (-10.0, 0.0)


def _g(x: float | np.floating) -> float:
    """x rounded to 6 significant digits (the record keeps what a plot or table can show; stats.jsonl stays small)."""
    return float(f"{float(x):.6g}")


def is_recorded(step: int, interval: int, steps: int) -> bool:
    """Whether step number `step` (1 = the first step) is recorded at train.stats_interval =
    `interval` of a run of `steps` steps: the first, every interval-th and the last one."""
    return interval > 0 and (step == 1 or step % interval == 0 or step == steps)


def flat_mask(kind: str, h: np.ndarray) -> np.ndarray | None:
    """Where the non-linearity passes back (almost) no gradient, bool like h: tanh |h| > 0.97,
    relu h ≤ 0; None for a kind without such a region (gelu)."""
    if kind == "tanh":
        return np.abs(h) > SATURATION
    if kind == "relu":
        return h <= 0
    return None


def histogram(values: np.ndarray, lo: float, hi: float, bins: int = HIST_BINS) -> dict[str, Any]:
    """Counts of `values` in `bins` equal bins from lo to hi, values outside [lo, hi] counted in
    the end bins (NaN in none): {"lo", "hi", "counts": [int] * bins}.

    Bin i holds lo + i·w ≤ x < lo + (i+1)·w, w = (hi − lo)/bins, the last one x = hi too (as
    np.histogram, which takes several times longer for these equal bins).
    """
    with np.errstate(invalid="ignore"):  # NaN → a negative index, dropped below
        idx = ((np.clip(values, lo, hi).ravel() - lo) * (bins / (hi - lo))).astype(np.intp)  # (n,)
    np.minimum(idx, bins - 1, out=idx)
    if idx.size and idx.min() < 0:
        idx = idx[idx >= 0]
    return {"lo": lo, "hi": hi, "counts": np.bincount(idx, minlength=bins).tolist()}


def layer_stats(name: str, kind: str, h: np.ndarray) -> dict[str, Any]:
    """The record of one hidden layer from its output h (N, units) on one batch (see the module
    docstring): name, kind, mean, std, saturated (tanh only), dead (tanh, relu), hist."""
    h = h.reshape(-1, h.shape[-1])  # (N, units)
    flat = flat_mask(kind, h)  # (N, units) or None
    lo, hi = ACTIVATION_RANGE.get(kind, OTHER_ACTIVATION_RANGE)
    return {
        "name": name, "kind": kind, "mean": _g(h.mean(dtype=np.float64)), "std": _g(h.std(dtype=np.float64)),
        "saturated": _g(flat.mean()) if kind == "tanh" else None,
        "dead": _g(flat.all(axis=0).mean()) if flat is not None else None,  # units flat on every row
        "hist": histogram(h, lo, hi),
    }


def log10_ratio(numerator: float, denominator: float) -> float | None:
    """log10(numerator / denominator) of two standard deviations; None where either is 0 or not finite."""
    if not (numerator > 0 and denominator > 0 and math.isfinite(numerator) and math.isfinite(denominator)):
        return None
    return _g(math.log10(numerator / denominator))


def param_stats(name: str, param: np.ndarray, grad: np.ndarray | None, update: np.ndarray) -> dict[str, Any]:
    """The record of one parameter at a recorded step.

    Args:
        name: its state_dict name (C, W1, b1, ...).
        param: its value after the optimizer step, any shape.
        grad: the gradient the step used (same shape), or None if none reached it.
        update: param after minus param before the optimizer step (same shape).

    Returns:
        name, shape, std (of param), grad_mean, grad_std, grad_zero (share of exact zeros),
        grad_hist (of log10|grad|), update_ratio = log10(std(update) / std(param)) (None where
        undefined, e.g. a one-element parameter).
    """
    std = param.std(dtype=np.float64)
    record: dict[str, Any] = {"name": name, "shape": list(param.shape), "std": _g(std)}
    if grad is None:
        record.update(grad_mean=None, grad_std=None, grad_zero=None, grad_hist=None)
    else:
        magnitude = np.abs(grad)
        nonzero = magnitude[magnitude > 0]
        record.update(grad_mean=_g(grad.mean(dtype=np.float64)), grad_std=_g(grad.std(dtype=np.float64)),
                      grad_zero=_g(1.0 - nonzero.size / max(grad.size, 1)), grad_hist=histogram(np.log10(nonzero), *GRAD_LOG10_RANGE))
    record["update_ratio"] = log10_ratio(float(update.std(dtype=np.float64)), float(std))
    return record


def step_stats(hidden: Iterable[tuple[str, str, np.ndarray]],
               params: Iterable[tuple[str, np.ndarray, np.ndarray | None, np.ndarray]]) -> dict[str, Any]:
    """The statistics of one recorded step: {"layers": [layer_stats...], "params": [param_stats...]}.

    Args:
        hidden: (name, kind, h (N, units)) per hidden layer, in model order.
        params: (name, param after the step, grad or None, update) per trainable parameter, in
            state_dict order.
    """
    return {"layers": [layer_stats(*layer) for layer in hidden], "params": [param_stats(*p) for p in params]}
