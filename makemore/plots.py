"""Figures, drawn with matplotlib's Agg backend (no display needed) and saved as PNG.

plot_loss: train/dev loss curves of one or more runs (train writes one into every run).
plot_lr_sweep / plot_lr_grid: the learning-rate finder's pictures (makemore.lr_find).
plot_embedding: the rows of the embedding table C as labelled points (lecture part 2).
plot_activations / plot_gradients / plot_update_ratios / plot_saturation: `makemore inspect`'s
pictures of training statistics (lecture part 3); each draws the figure made by the matching
*_figure function, which tests read.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from makemore.errors import MakemoreError

#: Colours of the embedding plot's three kinds of token.
VOWEL_COLOR, CONSONANT_COLOR, OTHER_COLOR, BOUNDARY_COLOR = "#d62728", "#1f77b4", "#7f7f7f", "#2ca02c"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def smooth(values: np.ndarray, window: int, centered: bool = False) -> np.ndarray:
    """Moving average over `window` points, same length as `values`.

    Trailing (default): point i averages points i-window+1..i, fewer at the start (what a live
    curve can know). Centred: points i-window//2 .. i+window-window//2-1, fewer at both ends, so a
    minimum is not shifted to the right.
    """
    values = np.asarray(values, dtype=float)  # (n,)
    n = len(values)
    if window <= 1 or n == 0:
        return values
    c = np.concatenate(([0.0], np.cumsum(values)))  # (n+1,)
    i = np.arange(n)
    if centered:
        lo, hi = np.maximum(i - window // 2, 0), np.minimum(i + window - window // 2, n)
    else:
        lo, hi = np.maximum(i + 1 - window, 0), i + 1
    return (c[hi] - c[lo]) / (hi - lo)


def _save(fig: Any, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(out)
    _pyplot().close(fig)
    return out


def _plain_log_axis(ax: Any, axis: str = "y") -> None:
    """Label a log axis with plain numbers (2.2, 2.4, ...) rather than powers of ten."""
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator, NullLocator

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
    target.set_major_formatter(FormatStrFormatter("%g"))
    target.set_minor_locator(NullLocator())


def plot_loss(series: Sequence[tuple[str, Sequence[dict[str, Any]]]], out: Path) -> Path:
    """Train loss (smoothed) and dev loss against step for one or more runs, on a log-scale axis.

    Args:
        series: (legend label, metrics records) per run; a record is a metrics.jsonl object with
            step, train_loss and dev_loss (nats/char; dev_loss None where not computed).
        out: the PNG to write.

    Train: each record's mean minibatch NLL, the raw records faint, and a moving average of their
    log10 over a window of records (the lecture averages log10 losses), drawn back in nats/char.
    Dev: the whole dev split at each evaluation, dashed with markers. A run without records is
    named in the legend as such. Returns `out`.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    plotted = False
    all_steps: list[float] = []
    for i, (label, run_records) in enumerate(series):
        records = [r for r in run_records if r.get("train_loss") is not None]
        color = colors[i % len(colors)]
        if not records:
            ax.plot([], [], color=color, label=f"{label}: no metrics recorded")
            continue
        steps = np.array([r["step"] for r in records], dtype=float)  # (n,)
        train = np.array([r["train_loss"] for r in records], dtype=float)  # (n,) nats/char
        ok = np.isfinite(train) & (train > 0)
        steps, train = steps[ok], train[ok]
        window = max(1, len(train) // 40)
        if window > 1:
            ax.plot(steps, train, color=color, alpha=0.18, linewidth=0.8)
        span = int(round(window * float(np.median(np.diff(steps))))) if window > 1 and len(steps) > 1 else 0
        ax.plot(steps, 10 ** smooth(np.log10(train), window), color=color, linewidth=1.8, marker="s" if len(train) < 3 else None,
                label=f"{label} train" + (f" (moving average over {span:,} steps)" if span else ""))
        dev = [(r["step"], r["dev_loss"]) for r in records if r.get("dev_loss") is not None and np.isfinite(r["dev_loss"])]
        if dev:
            ds, dl = zip(*dev)
            ax.plot(ds, dl, color=color, linestyle="--", marker="o", markersize=4, linewidth=1.2,
                    label=f"{label} dev (final {dl[-1]:.4f})")
        plotted = plotted or len(train) > 0
        all_steps.extend(steps.tolist())
    if all_steps and max(all_steps) == 0:  # e.g. a bigram run: fitted in one go, one record at step 0
        ax.set_xticks([0])
    if plotted:
        ax.set_yscale("log")
        _plain_log_axis(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("loss: mean NLL (nats/char, log scale)")
    ax.set_title("Training loss" if len(series) == 1 else f"Training loss: {len(series)} runs compared")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return _save(fig, out)


def plot_lr_sweep(result: Any, out: Path) -> Path:
    """A learning-rate sweep (makemore.lr_find.Sweep) as loss against log10(lr): raw steps faint, the centred moving average bold, the
    valley shaded and the suggested rate marked with a vertical line. Returns `out`."""
    plt = _pyplot()
    s = result.suggestion
    e = result.exponents()  # (n,)
    finite = np.isfinite(result.losses)
    smoothed = smooth(result.losses[finite], result.window, centered=True)  # (n_finite,)
    fig, ax = plt.subplots(figsize=(9, 6.5), dpi=110, layout="constrained")
    ax.plot(e[finite], result.losses[finite], color="#1f77b4", alpha=0.25, linewidth=0.7, label="loss of each step")
    ax.plot(e[finite], smoothed, color="#1f77b4", linewidth=2.2, label=f"moving average ({result.window} steps)")
    ax.axvspan(np.log10(s.valley[0]), np.log10(s.valley[1]), color="#2ca02c", alpha=0.12,
               label=f"valley: within 5% of the lowest average, lr {s.valley[0]:.3g} to {s.valley[1]:.3g}")
    ax.axvline(np.log10(s.suggested_lr), color="#2ca02c", linewidth=2, label=f"suggested lr = {s.suggested_lr:.3g} (middle of the valley)")
    ax.plot([np.log10(s.min_loss_lr)], [s.min_loss], marker="v", color="#d62728", markersize=9, linestyle="none",
            label=f"lowest average {s.min_loss:.3f} at lr {s.min_loss_lr:.3g}")
    # y range: the valley and where the curve starts; a blow-up may run off the top
    low = min(smoothed.min(), np.percentile(result.losses[finite], 0.5))
    top = min(np.percentile(result.losses[finite], 99.5), smoothed[0] + (smoothed[0] - s.min_loss))
    top = max(top, s.min_loss * 1.1)
    ax.set_ylim(low - 0.05 * (top - low), top + 0.05 * (top - low))
    if result.stopped:
        ax.axvline(e[-1], color="#d62728", linestyle=":", linewidth=1.5, label=f"sweep stopped at lr {result.lrs[-1]:.3g}: the loss blew up")
    ax.set_xlim(result.min_exp, result.max_exp)
    secondary = ax.secondary_xaxis("top", functions=(lambda x: 10 ** np.asarray(x), lambda v: np.log10(np.maximum(v, 1e-300))))
    secondary.set_xscale("log")
    secondary.set_xlabel("learning rate")
    ax.set_xlabel("log10(learning rate)   (one step at each rate, rates increasing)")
    ax.set_ylabel("minibatch loss: NLL (nats/char)")
    taken = f"{len(e)} steps" if len(e) == result.planned_steps else f"stopped after {len(e)} of {result.planned_steps} steps"
    ax.set_title(f"Learning-rate sweep: lr from $10^{{{result.min_exp:g}}}$ to $10^{{{result.max_exp:g}}}$, {taken}")
    ax.grid(True, alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncol=2)
    return _save(fig, out)


def plot_lr_grid(result: Any, out: Path) -> Path:
    """A learning-rate grid (makemore.lr_find.Grid): each run's final dev NLL (and its last-tenth train loss) against its rate, log x axis;
    diverged runs marked at the top. Returns `out`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    ok = np.isfinite(result.dev_loss)
    best = int(np.nanargmin(np.where(ok, result.dev_loss, np.nan)))
    # the y axis shows losses up to twice the best; higher ones (and diverged runs) sit on the top edge
    cap = 2.0 * result.dev_loss[best]
    shown = ok & (result.dev_loss <= cap)
    values = np.concatenate([result.dev_loss[shown], result.train_loss[shown]])
    top = values.max() + 0.08 * (values.max() - values.min() + 1e-3)
    ax.plot(result.lrs[shown], result.dev_loss[shown], marker="o", linewidth=2, color="#1f77b4", label="dev NLL at the end of the run")
    ax.plot(result.lrs[shown], result.train_loss[shown], marker="s", linewidth=1, linestyle="--", color="#ff7f0e",
            alpha=0.8, label=f"train: mean minibatch NLL, last {max(1, result.steps // 10)} steps")
    high = ok & ~shown
    if high.any():
        ax.plot(result.lrs[high], np.full(high.sum(), top), marker="^", color="#d62728", markersize=9, linestyle="none",
                label=f"dev NLL off the scale (> {cap:.2f})")
        for lr, dev in zip(result.lrs[high], result.dev_loss[high]):
            ax.annotate(f"{dev:.3g}", (lr, top), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8, color="#d62728")
    if (~ok).any():
        ax.plot(result.lrs[~ok], np.full((~ok).sum(), top), marker="x", color="#d62728", markersize=10, linestyle="none",
                label="diverged (non-finite loss)")
    ax.set_ylim(top=top + 0.04 * (top - values.min() + 1e-3))
    ax.axvline(result.best_lr, color="#2ca02c", linewidth=1.5, label=f"best: lr {result.best_lr:.3g}, dev {result.dev_loss[best]:.4f}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (constant for the whole run, log scale)")
    ax.set_ylabel("loss: NLL (nats/char)")
    ax.set_title(f"Learning-rate grid: {len(result.lrs)} fresh runs of {result.steps} steps each")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out)


def is_vowel(ch: str) -> bool:
    """True for a, e, i, o, u in either case, accented or not (é, Ö, ...)."""
    base = unicodedata.normalize("NFD", ch)[:1].lower()
    return len(ch) == 1 and base in "aeiou"


def embedding_2d(C: np.ndarray, dims: tuple[int, int] | None = None, pca: bool | None = None) -> tuple[np.ndarray, tuple[str, str], str]:
    """Two coordinates for every row of the embedding table C (vocab_size, n_embd).

    With n_embd = 2 and no choice: the raw dimensions. `dims` = (i, j): those two columns.
    Otherwise (or with `pca`): the projections on the first two principal components of the
    centred rows, from NumPy's SVD; signs are fixed so each component's largest loading is positive.

    Returns:
        (xy (vocab_size, 2), (x label, y label), a description for the title).

    Raises:
        MakemoreError: both dims and pca; a dimension out of range or repeated; PCA with n_embd < 2.
    """
    C = np.asarray(C, dtype=np.float64)  # (vocab_size, n_embd)
    n_embd = C.shape[1]
    if dims is not None and pca:
        raise MakemoreError("choose --dims I,J or --pca, not both")
    if dims is not None:
        i, j = dims
        if i == j or not (0 <= i < n_embd and 0 <= j < n_embd):
            raise MakemoreError(f"--dims {i},{j}: need two different dimensions in 0..{n_embd - 1} (n_embd = {n_embd})")
        return C[:, [i, j]], (f"C[:, {i}]", f"C[:, {j}]"), f"dimensions {i} and {j} of {n_embd}"
    if n_embd == 1:
        if pca:
            raise MakemoreError("n_embd = 1: a one-dimensional embedding has no second principal component")
        return np.column_stack([C[:, 0], np.zeros(len(C))]), ("C[:, 0]", ""), "the only dimension (n_embd = 1)"
    if n_embd == 2 and not pca:
        return C, ("C[:, 0]", "C[:, 1]"), "raw dimensions (n_embd = 2)"
    centred = C - C.mean(axis=0)  # (vocab_size, n_embd)
    _, S, Vt = np.linalg.svd(centred, full_matrices=False)  # S (k,), Vt (k, n_embd)
    top = Vt[:2]  # (2, n_embd)
    signs = np.sign(top[np.arange(2), np.argmax(np.abs(top), axis=1)])  # (2,)
    top = top * signs[:, None]
    var = S**2 / max(float(np.sum(S**2)), 1e-300)  # (k,) fraction of variance per component
    xy = centred @ top.T  # (vocab_size, 2)
    return (xy, (f"PC1 ({var[0]:.0%} of variance)", f"PC2 ({var[1]:.0%} of variance)"),
            f"PCA of n_embd = {n_embd}: PC1 + PC2 explain {var[0] + var[1]:.0%} of the variance")


def spread_labels(xy: np.ndarray, min_dist: float, iterations: int = 300) -> np.ndarray:
    """Marker positions near `xy` (n, 2) but at least about `min_dist` apart, so no label hides
    another: overlapping pairs are pushed apart along the line joining them (a few hundred
    relaxation sweeps; coincident points are split along a fixed direction). Returns (n, 2)."""
    pos = np.array(xy, dtype=float)  # (n, 2)
    n = len(pos)
    if n < 2 or min_dist <= 0:
        return pos
    fallback = np.stack([np.cos(np.arange(n) * 2.39996), np.sin(np.arange(n) * 2.39996)], axis=1)  # (n, 2) golden-angle directions
    for _ in range(iterations):
        diff = pos[:, None, :] - pos[None, :, :]  # (n, n, 2)
        dist = np.linalg.norm(diff, axis=2)  # (n, n)
        np.fill_diagonal(dist, np.inf)
        overlap = np.clip(min_dist - dist, 0.0, None)  # (n, n)
        if not overlap.any():
            break
        unit = np.where(dist[..., None] > 1e-12 * min_dist, diff / np.maximum(dist, 1e-300)[..., None], fallback[:, None, :])  # (n, n, 2)
        pos += 0.5 * (overlap[..., None] * unit).sum(axis=1)
    return pos


def plot_embedding(C: np.ndarray, itos: Sequence[str], out: Path, title: str, dims: tuple[int, int] | None = None,
                   pca: bool | None = None) -> Path:
    """Scatter of every row of C (vocab_size, n_embd) with its character written on the marker, as in
    the lecture; vowels, consonants, other characters and the boundary token (itos[0]) coloured apart.
    Coordinates from `embedding_2d`. Returns `out`."""
    from matplotlib.lines import Line2D

    plt = _pyplot()
    xy, (xlabel, ylabel), how = embedding_2d(C, dims, pca)  # (vocab_size, 2)
    kinds = ["boundary" if k == 0 else "vowel" if is_vowel(c) else "consonant" if c.isalpha() else "other" for k, c in enumerate(itos)]
    color = {"boundary": BOUNDARY_COLOR, "vowel": VOWEL_COLOR, "consonant": CONSONANT_COLOR, "other": OTHER_COLOR}
    fig, ax = plt.subplots(figsize=(8, 8), dpi=110)
    span = float(max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]), 1e-12))
    shown_at = spread_labels(xy, 0.042 * span)  # (vocab_size, 2): markers moved off each other
    moved = np.linalg.norm(shown_at - xy, axis=1) > 1e-3 * span  # (vocab_size,)
    for (x0, y0), (x1, y1) in zip(xy[moved], shown_at[moved]):
        ax.plot([x0, x1], [y0, y1], color="black", linewidth=0.8, zorder=1)
    if moved.any():
        ax.plot(xy[moved, 0], xy[moved, 1], "o", color="black", markersize=2.5, zorder=1)
    ax.scatter(shown_at[:, 0], shown_at[:, 1], s=380, c=[color[k] for k in kinds], alpha=0.9, edgecolors="white", linewidths=0.8, zorder=2)
    for (x, y), ch, kind in zip(shown_at, itos, kinds):
        shown = "·" if kind == "boundary" and ch == "." else ch
        ax.text(x, y, shown, ha="center", va="center_baseline", color="white", fontsize=16 if shown == "·" else 12,
                fontweight="bold", zorder=3)
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.08)
    ax.set_xlabel(xlabel + ("  (embedding units)" if xlabel else ""))
    ax.set_ylabel(ylabel + ("  (embedding units)" if ylabel else ""))
    if not ylabel:
        ax.set_yticks([])
    ax.set_title(f"{title}\n{how}", fontsize=11)
    ax.grid(True, alpha=0.3, zorder=0)
    present = [k for k in ("vowel", "consonant", "other", "boundary") if k in kinds]
    names = {"vowel": "vowel (a e i o u)", "consonant": "consonant", "other": "other character",
             "boundary": f"boundary token {itos[0]!r}"}
    handles = [Line2D([], [], marker="o", linestyle="none", markersize=11, color=color[k], label=names[k]) for k in present]
    if moved.any():
        handles.append(Line2D([], [], marker="o", color="black", markersize=2.5, linewidth=0.8,
                              label="true position (marker moved aside to stay legible)"))
    ax.legend(handles=handles, fontsize=9, loc="best")
    return _save(fig, out)


def _hist_curve(hist: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A recorded histogram {"lo", "hi", "counts"} as (bin centres, share of the entries in each bin)."""
    counts = np.asarray(hist["counts"], dtype=float)  # (bins,)
    width = (hist["hi"] - hist["lo"]) / len(counts)
    centres = hist["lo"] + width * (np.arange(len(counts)) + 0.5)  # (bins,)
    return centres, counts / max(counts.sum(), 1.0)


def _finish(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    """Axis labels, a two-line title, grid and legend, as every figure of `makemore inspect` has them."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def activations_figure(layers: Sequence[dict[str, Any]], step: int) -> Any:
    """One histogram curve per hidden layer (records of makemore.stats.layer_stats), its mean, std,
    saturated and dead shares in the legend (lecture part 3's activation plot)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), dpi=100)
    for layer in layers:
        x, y = _hist_curve(layer["hist"])
        label = f"{layer['name']} ({layer['kind']}): mean {layer['mean']:+.2f}, std {layer['std']:.2f}"
        if layer["saturated"] is not None:
            label += f", saturated {layer['saturated']:.1%}"
        if layer["dead"] is not None:
            label += f", dead {layer['dead']:.1%}"
        ax.plot(x, y, linewidth=1.6, label=label)
    _finish(ax, "activation value h (values beyond the axis are counted in the end bins)", "share of the batch's entries in each bin",
            f"Hidden-layer activations at step {step:,}: histogram of each layer's output over one batch\n"
            "saturated: |tanh| > 0.97; dead: a unit flat on every example (tanh saturated, relu zero)")
    return fig


def plot_activations(layers: Sequence[dict[str, Any]], step: int, out: Path) -> Path:
    """activations_figure, saved as a PNG. Returns `out`."""
    return _save(activations_figure(layers, step), out)


def gradients_figure(params: Sequence[dict[str, Any]], step: int) -> Any:
    """One histogram curve of log10|gradient| per parameter (records of makemore.stats.param_stats),
    its gradient std and gradient-to-data ratio std(grad)/std(param) in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), dpi=100)
    curves = [(p, *_hist_curve(p["grad_hist"])) for p in params if p["grad_hist"] is not None]
    for p, x, y in curves:
        shape = "×".join(str(n) for n in p["shape"])
        ratio = p["grad_std"] / p["std"] if p["std"] else float("nan")
        ax.plot(x, y, linewidth=1.6, label=f"{p['name']} ({shape}): grad std {p['grad_std']:.2e}, grad:data {ratio:.2e}")
    used = np.concatenate([x[y > 0] for _, x, y in curves] or [np.zeros(0)])  # centres of the bins that hold gradients
    if used.size:
        ax.set_xlim(used.min() - 0.5, used.max() + 0.5)
    _finish(ax, "log10 |gradient|   (-3 means 0.001)", "share of the entries in each bin",
            f"Gradients of the weight matrices at step {step:,}: histogram of log10 |grad|\n"
            "curves far apart: some layers learn much faster than others")
    return fig


def plot_gradients(params: Sequence[dict[str, Any]], step: int, out: Path) -> Path:
    """gradients_figure, saved as a PNG. Returns `out`."""
    return _save(gradients_figure(params, step), out)


def update_ratio_figure(series: Sequence[tuple[str, Sequence[int], Sequence[float]]], step: int) -> Any:
    """log10 update-to-data ratio, log10(std(update) / std(param)), of each weight matrix against
    step, with the lecture's guide line at −3 and the step shown by `makemore inspect` marked.

    series: (parameter name, recorded steps, log10 ratios, NaN where undefined) per matrix.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), dpi=100)
    for name, steps, ratios in series:
        ax.plot(steps, ratios, linewidth=1.4, marker="o" if len(steps) < 3 else None, label=name)
    ax.axhline(-3.0, color="black", linestyle="--", linewidth=1, label="-3: updates about 1/1000 of the values (rule of thumb)")
    ax.axvline(step, color="#7f7f7f", linestyle=":", linewidth=1, label=f"step {step:,} (the table's)")
    _finish(ax, "step", "log10( std(update) / std(parameter) )",
            "Update-to-data ratio of each weight matrix: how much one step changes it\n"
            "well above -3: the learning rate is too high; far below: the matrix learns slowly")
    return fig


def plot_update_ratios(series: Sequence[tuple[str, Sequence[int], Sequence[float]]], step: int, out: Path) -> Path:
    """update_ratio_figure, saved as a PNG. Returns `out`."""
    return _save(update_ratio_figure(series, step), out)


def saturation_figure(maps: Sequence[tuple[str, str, np.ndarray]], where: str) -> Any:
    """The lecture's white-cells picture: per hidden layer, a grid of examples (rows) × units
    (columns), white where the unit is in a flat part of its non-linearity (tanh |h| > 0.97,
    relu h = 0), so almost no gradient passes back through it; a white column is a dead unit.

    maps: (layer name, kind, flat bool (examples, units)) per layer; where: which parameters (title).
    """
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    fig, axes = plt.subplots(len(maps), 1, figsize=(10, 0.6 + 2.4 * len(maps)), dpi=100, squeeze=False)
    for ax, (name, kind, flat) in zip(axes[:, 0], maps):
        ax.imshow(flat, cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
        rule = "|h| > 0.97" if kind == "tanh" else "h = 0"
        dead = int(flat.all(axis=0).sum())
        ax.set_title(f"{name} ({kind}): {flat.mean():.0%} of cells white ({rule}), {dead} of {flat.shape[1]} units white in every row",
                     fontsize=9)
        ax.set_ylabel("example")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel("unit")
    fig.suptitle(f"Saturation on one batch of dev examples, {where}", fontsize=10)
    return fig


def plot_saturation(maps: Sequence[tuple[str, str, np.ndarray]], where: str, out: Path) -> Path:
    """saturation_figure, saved as a PNG. Returns `out`."""
    return _save(saturation_figure(maps, where), out)
