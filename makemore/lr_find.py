"""The learning-rate finder of "makemore part 2", and its grid-search companion.

Sweep (the lecture's): a freshly initialised model takes one minibatch step at each of `steps`
learning rates whose base-10 exponents are spaced linearly from `min_exp` to `max_exp`
(lre = linspace(-3, 0, 1000), lrs = 10**lre in the lecture), and the minibatch loss of every step
is recorded. The loss first falls (the rate is too small to do much, then just right), then rises
and turns noisy (too large). The sweep stops early when the loss blows up: non-finite, or its
trailing mean more than `stop_factor` times the lowest trailing mean so far.

Grid (the lecture's exercise): a few independent short runs, each from the same fresh
initialisation at one constant rate of a log-spaced grid; the dev NLL at the end of each run,
plotted against the rate, shows which rate trains best in that budget.

Both use the run's config as given (model, optimizer, data, seed) and every gradient backend,
through makemore.prepare.prepare, makemore.training.minibatches (the same seeded minibatches as a
training run) and the backend's train_step; the schedule and warm-up are ignored, since the rate is what
is being varied.

Source: A. Karpathy, "Building makemore Part 2: MLP" (2022); the idea of a rate range test is
L. N. Smith, "Cyclical Learning Rates for Training Neural Networks" (WACV 2017).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from makemore import runs
from makemore.backends import make_backend
from makemore.errors import MakemoreError
from makemore.plots import plot_lr_grid, plot_lr_sweep, smooth
from makemore.prepare import Prepared
from makemore.training import minibatches

#: What `find` runs: the lecture's one-run sweep, or a grid of short runs.
MODES = ("sweep", "grid")
#: Relative tolerance of the valley: exponents whose smoothed loss is within this fraction of its minimum.
VALLEY_TOLERANCE = 0.05
#: The sweep stops once its trailing-mean loss exceeds this many times the lowest trailing mean so far.
STOP_FACTOR = 4.0


@dataclass
class Suggestion:
    """A learning rate read off a sweep's loss curve (see `suggest_lr` for the rule)."""

    suggested_lr: float
    """The middle of the valley (geometric mean of its edges): the rate to train with."""
    min_loss_lr: float
    """Where the smoothed loss is lowest."""
    steepest_lr: float
    """Where the smoothed loss falls fastest per decade (before the minimum)."""
    valley: tuple[float, float]
    """(lowest, highest) rate of the valley."""
    min_loss: float
    """The smoothed loss at its minimum, nats/char."""
    note: str | None = None
    """A warning when the valley touches an end of the sweep (widen the range), else None."""


def suggest_lr(lrs: np.ndarray, losses: np.ndarray, window: int, tolerance: float = VALLEY_TOLERANCE) -> Suggestion:
    """The rule: the middle of the valley of the smoothed loss-vs-exponent curve.

    1. Smooth the losses (nats/char) with a centred moving average of `window` points.
    2. Find the minimum of the smoothed curve, s_min.
    3. The valley is the contiguous stretch of exponents around that minimum whose smoothed loss
       is at most (1 + tolerance) · s_min (5 % above the lowest loss by default).
    4. Suggest the rate at the middle of the valley in exponent: 10**((e_lo + e_hi) / 2).

    This is the lecture's reading of the plot ("the loss is lowest around lre = -1, so lr = 0.1"),
    made robust: the argmin of a noisy, flat-bottomed curve wanders by a few tenths of a decade
    between seeds, while the middle of the valley hardly moves. To its left the rate is too small
    (the loss still falling), to its right too large (rising, noisy). The steepest descent (per
    decade) and the argmin are reported as well.

    Args:
        lrs: (n,) positive rates, increasing (a sweep's, in step order).
        losses: (n,) the minibatch NLL at each rate, nats/char; non-finite entries are ignored.
        window: points of the centred moving average (1: no smoothing).
        tolerance: the valley's relative height above the minimum.

    Raises:
        MakemoreError: fewer than 3 finite losses.
    """
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)  # (n,), (n,)
    keep = np.isfinite(losses)
    lrs, losses = lrs[keep], losses[keep]
    if len(losses) < 3:
        raise MakemoreError(f"only {len(losses)} finite losses in the sweep: too few to suggest a rate (lower --min-exp or raise --steps)")
    e = np.log10(lrs)  # (n,) exponents
    s = smooth(losses, window, centered=True)  # (n,)
    i_min = int(np.argmin(s))
    ceiling = s[i_min] + tolerance * abs(s[i_min])
    lo = hi = i_min
    while lo > 0 and s[lo - 1] <= ceiling:
        lo -= 1
    while hi < len(s) - 1 and s[hi + 1] <= ceiling:
        hi += 1
    slope = np.gradient(s[: i_min + 1], e[: i_min + 1]) if i_min >= 1 else np.zeros(1)  # (i_min+1,) nats/char per decade
    i_steep = int(np.argmin(slope))
    note = None
    if hi == len(s) - 1:
        note = "the loss was still low at the largest rate tried: the valley may go on; raise --max-exp"
    elif lo == 0:
        note = "the loss was already near its minimum at the smallest rate tried: lower --min-exp"
    return Suggestion(
        suggested_lr=float(10 ** ((e[lo] + e[hi]) / 2)),
        min_loss_lr=float(lrs[i_min]),
        steepest_lr=float(lrs[i_steep]),
        valley=(float(lrs[lo]), float(lrs[hi])),
        min_loss=float(s[i_min]),
        note=note,
    )


def smoothing_window(steps: int) -> int:
    """Points in the moving average of a sweep of `steps` rates: a twentieth of the sweep (50 of 1000)."""
    return max(1, round(steps / 20))


@dataclass
class Sweep:
    """The record of one learning-rate sweep."""

    lrs: np.ndarray
    """(n,) the rate of each step taken, increasing."""
    losses: np.ndarray
    """(n,) the minibatch NLL (nats/char) of each step, computed before that step's update."""
    planned_steps: int
    min_exp: float
    max_exp: float
    """The planned range of exponents (the sweep may have stopped before max_exp)."""
    window: int
    """Points of the moving average used for the suggestion and the plot."""
    suggestion: Suggestion
    stopped: str | None = None
    """Why the sweep stopped before its last rate, or None."""

    def exponents(self) -> np.ndarray:
        """(n,) log10 of the rates."""
        return np.log10(self.lrs)


def _check_range(min_exp: float, max_exp: float, steps: int, what: str = "--steps") -> None:
    if not (math.isfinite(min_exp) and math.isfinite(max_exp)) or min_exp >= max_exp:
        raise MakemoreError(f"--min-exp {min_exp:g} must be below --max-exp {max_exp:g} (rates 10**min-exp to 10**max-exp)")
    if steps < 2:
        raise MakemoreError(f"{what} {steps}: need at least 2")


def _gradient_trained(prepared: Prepared) -> None:
    """Raises MakemoreError for a family fitted by counting: it has no learning rate."""
    if prepared.family.counted:
        raise MakemoreError(f"model.type = {prepared.family.name!r} is fitted by counting, with no learning rate: "
                            "lr-find needs a model trained by gradient steps")


def _fresh_backend(prepared: Prepared) -> Any:
    """A freshly initialised backend for the prepared run (the same initialisation every time)."""
    return make_backend(prepared.cfg, prepared.family, prepared.vocab.vocab_size, prepared.device, prepared.block_size, prepared.n_labels)


def sweep(prepared: Prepared, min_exp: float = -3.0, max_exp: float = 0.0, steps: int = 1000, stop_factor: float = STOP_FACTOR) -> Sweep:
    """The lecture's learning-rate sweep on a freshly initialised model (see the module docstring).

    Args:
        prepared: the run (makemore.prepare.prepare): any gradient-trained family, backend, optimizer and device.
        min_exp, max_exp: base-10 exponents of the first and last rate.
        steps: rates tried, one minibatch step each.
        stop_factor: stop when the trailing mean loss exceeds this multiple of its lowest value so far.

    Raises:
        MakemoreError: a bigram model, an empty range, bad data or device, too few finite losses.
    """
    _check_range(min_exp, max_exp, steps)
    _gradient_trained(prepared)
    backend = _fresh_backend(prepared)
    lrs = 10.0 ** np.linspace(min_exp, max_exp, steps)  # (steps,)
    window = smoothing_window(steps)
    losses: list[float] = []
    stopped = None
    best = math.inf
    with backend.threads():  # the backend's thread counts, restored after
        for i, (X, Y, *L) in enumerate(minibatches(backend, prepared.cfg.train, prepared.view("train"), 0, steps)):
            loss = float(backend.train_step(X, Y, float(lrs[i]), *L))
            losses.append(loss)
            if not math.isfinite(loss):
                stopped = f"the loss became non-finite at lr {lrs[i]:.3g}"
                break
            trailing = float(np.mean(losses[-window:]))
            if i + 1 >= window:
                best = min(best, trailing)
                if trailing > stop_factor * best:
                    stopped = f"the loss blew up at lr {lrs[i]:.3g} (mean {trailing:.3g} > {stop_factor:g} x its minimum {best:.3g})"
                    break
    n = len(losses)
    losses_arr = np.array(losses)  # (n,)
    return Sweep(lrs[:n], losses_arr, steps, min_exp, max_exp, window, suggest_lr(lrs[:n], losses_arr, window), stopped)


@dataclass
class Grid:
    """Short independent runs at log-spaced constant rates."""

    lrs: np.ndarray
    """(k,) the rates."""
    train_loss: np.ndarray
    """(k,) mean minibatch NLL over the last tenth of each run's steps (nats/char; inf if it diverged)."""
    dev_loss: np.ndarray
    """(k,) whole-dev-split NLL at the end of each run (nats/char; inf if it diverged)."""
    steps: int
    best_lr: float = field(default=math.nan)
    """The rate with the lowest dev NLL."""


def grid(prepared: Prepared, min_exp: float = -3.0, max_exp: float = 0.0, rates: int = 7, steps: int = 1000) -> Grid:
    """Train `rates` fresh models (same initialisation and minibatches), each `steps` steps at one
    constant rate 10**e, e in linspace(min_exp, max_exp, rates); measure each one's dev NLL.

    A run whose loss becomes non-finite stops there and counts as diverged (loss inf).

    Raises:
        MakemoreError: a bigram model, an empty range, bad data or device, every run diverged.
    """
    _check_range(min_exp, max_exp, rates, "--rates")
    if steps < 1:
        raise MakemoreError(f"--steps {steps}: need at least 1")
    _gradient_trained(prepared)
    train_view, dev_view = prepared.view("train"), prepared.view("dev")
    lrs = 10.0 ** np.linspace(min_exp, max_exp, rates)  # (rates,)
    tail = max(1, steps // 10)
    train_loss, dev_loss = np.full(rates, np.inf), np.full(rates, np.inf)  # (rates,), (rates,)
    for r, lr in enumerate(lrs):
        backend = _fresh_backend(prepared)
        last: list[float] = []
        with backend.threads():  # each run on its own thread counts, restored after it
            for X, Y, *L in minibatches(backend, prepared.cfg.train, train_view, 0, steps):
                last.append(float(backend.train_step(X, Y, float(lr), *L)))
                if not math.isfinite(last[-1]):
                    break
            else:
                dev = backend.mean_loss(dev_view)
                if math.isfinite(dev):
                    train_loss[r], dev_loss[r] = float(np.mean(last[-tail:])), dev
    if not np.isfinite(dev_loss).any():
        raise MakemoreError("every run of the grid diverged: lower --min-exp and --max-exp")
    return Grid(lrs, train_loss, dev_loss, steps, float(lrs[int(np.argmin(dev_loss))]))


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    """Atomically write a CSV file (makemore.runs.atomic_write_text)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    runs.atomic_write_text(Path(path), buf.getvalue())
    return Path(path)


def write_sweep_csv(result: Sweep, path: Path) -> Path:
    """CSV with columns step, lr, loss (nats/char), one row per step taken."""
    return _write_csv(path, ["step", "lr", "loss"], [[i, f"{lr:.6g}", f"{loss:.6f}"] for i, (lr, loss) in enumerate(zip(result.lrs, result.losses))])


def write_grid_csv(result: Grid, path: Path) -> Path:
    """CSV with columns lr, steps, train_loss, dev_loss (nats/char; inf for a diverged run)."""
    return _write_csv(path, ["lr", "steps", "train_loss", "dev_loss"],
                      [[f"{lr:.6g}", result.steps, f"{tr:.6f}", f"{dev:.6f}"] for lr, tr, dev in zip(result.lrs, result.train_loss, result.dev_loss)])


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def find(prepared: Prepared, folder: Path, mode: str = "sweep", min_exp: float = -3.0, max_exp: float = 0.0,
         steps: int = 1000, rates: int = 7) -> dict[str, Any]:
    """`makemore lr-find`: run the sweep (or the grid) and write its plot, CSV and JSON into `folder`.

    Returns:
        The JSON's object: mode, suggested_lr, min_loss_lr, and per mode the valley and stop
        reason (sweep) or every run's losses (grid, nats/char; None for a diverged run), plot, csv.

    Raises:
        MakemoreError: an unknown mode, and what `sweep` and `grid` raise.
    """
    if mode not in MODES:
        raise MakemoreError(f"--mode {mode!r}: choose sweep or grid")
    if mode == "sweep":
        result = sweep(prepared, min_exp, max_exp, steps)
        folder.mkdir(parents=True, exist_ok=True)
        s = result.suggestion
        out = {"mode": "sweep", "suggested_lr": s.suggested_lr, "min_loss_lr": s.min_loss_lr, "steepest_lr": s.steepest_lr,
               "valley": list(s.valley), "min_loss": s.min_loss, "steps_taken": len(result.losses), "steps_planned": steps,
               "stopped": result.stopped, "note": s.note, "plot": str(plot_lr_sweep(result, folder / "lr_find.png")),
               "csv": str(write_sweep_csv(result, folder / "lr_find.csv"))}
    else:
        found = grid(prepared, min_exp, max_exp, rates, steps)
        folder.mkdir(parents=True, exist_ok=True)
        out = {"mode": "grid", "suggested_lr": found.best_lr, "min_loss_lr": found.best_lr, "steps": steps,
               "runs": [{"lr": float(lr), "train_loss": _finite_or_none(tr), "dev_loss": _finite_or_none(dev)}
                        for lr, tr, dev in zip(found.lrs, found.train_loss, found.dev_loss)],
               "plot": str(plot_lr_grid(found, folder / "lr_grid.png")), "csv": str(write_grid_csv(found, folder / "lr_grid.csv"))}
    runs.write_json(folder / f"lr_{'find' if mode == 'sweep' else 'grid'}.json", out)
    return out
