"""Figures, drawn with matplotlib's Agg backend (no display needed) and saved as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Moving average over `window` points (shorter at the start), same length as `values`."""
    if window <= 1 or len(values) == 0:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_loss(run_dirs: list[Path], out: Path, labels: list[str] | None = None) -> Path:
    """Train loss (smoothed, log scale) and dev loss against step for one or more runs.

    The train loss is each metrics record's mean minibatch NLL, smoothed over a window of records
    (as the lecture averages its per-step log10 losses); dev is the whole dev split.
    """
    from makemore.runs import read_metrics

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run_dir in enumerate(run_dirs):
        records = read_metrics(run_dir)
        label = labels[i] if labels else Path(run_dir).name
        color = colors[i % len(colors)]
        steps = np.array([r["step"] for r in records], dtype=float)
        train = np.array([r["train_loss"] for r in records], dtype=float)
        window = max(1, len(train) // 50)
        ax.plot(steps, train, color=color, alpha=0.2, linewidth=0.8)
        ax.plot(steps, smooth(train, window), color=color, linewidth=1.6, label=f"{label} train (smoothed)")
        dev = [(r["step"], r["dev_loss"]) for r in records if r.get("dev_loss") is not None]
        if dev:
            ds, dl = zip(*dev)
            ax.plot(ds, dl, color=color, linestyle="--", marker="o", markersize=3.5, label=f"{label} dev")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (NLL, nats/char, log scale)")
    ax.set_title("Training loss" if len(run_dirs) == 1 else "Training loss: runs compared")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)
