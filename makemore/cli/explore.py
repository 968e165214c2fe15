"""Exploration commands: lr-find, plot-emb, plot-loss, inspect.

Each command writes PNG files through matplotlib's Agg backend and prints the paths it wrote.
The work is done in makemore.lr_find, makemore.inspect and makemore.plots; this module parses
options and renders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import typer

from makemore.cli.common import RunDirArgument, SetOption, console, fail
from makemore.errors import MakemoreError


def lr_find(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config of the model and data to sweep (e.g. configs/names.toml)."),
    set_: Optional[list[str]] = SetOption,
    min_exp: float = typer.Option(-3.0, "--min-exp", help="Smallest rate as a base-10 exponent: 10**min-exp."),
    max_exp: float = typer.Option(0.0, "--max-exp", help="Largest rate as a base-10 exponent: 10**max-exp."),
    steps: int = typer.Option(1000, "--steps", help="sweep: rates tried, one minibatch step each; grid: steps of each run."),
    mode: str = typer.Option("sweep", "--mode", help="sweep: the lecture's one-run exponential sweep; grid: short independent runs at log-spaced rates."),
    rates: int = typer.Option(7, "--rates", help="grid: how many rates (log-spaced from 10**min-exp to 10**max-exp)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the PNG, CSV and JSON; default runs/lr-find-<config name>-<timestamp>."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object (suggested_lr, min_loss_lr, plot, csv, ...)."),
) -> None:
    """Find a learning rate: sweep rates on a fresh model (or train a grid of short runs) and plot loss against rate.

    sweep: one minibatch step at each of --steps rates 10**e, e spaced linearly from --min-exp to
    --max-exp, stopping early if the loss blows up. Suggests the middle of the valley of the
    smoothed curve: the exponents whose smoothed loss is within 5% of its minimum.

    grid: --rates fresh runs of --steps steps each at one constant rate; suggests the rate with the
    lowest dev loss.
    """
    from makemore import lr_find as finder
    from makemore import runs
    from makemore.config import load_config
    from makemore.prepare import prepare

    if config is None:
        fail("no config: pass --config FILE (e.g. --config configs/names.toml)")
    if mode not in finder.MODES:
        fail(f"--mode {mode!r}: choose sweep or grid")
    prepared = prepare(load_config(config, set_ or []))  # a bad model, backend, device or data fails before any message
    folder = out or runs.new_run_dir(f"lr-find-{config.stem}")
    if folder.exists() and not folder.is_dir():
        fail(f"--out {folder}: exists and is not a folder")
    err = console(stderr=True)
    if not as_json:
        err.print(f"sweeping {steps} rates from {10 ** min_exp:.3g} to {10 ** max_exp:.3g}, one step each" if mode == "sweep" else
                  f"training {rates} fresh models for {steps} steps each, at rates {10 ** min_exp:.3g} to {10 ** max_exp:.3g}")
    result = finder.find(prepared, folder, mode, min_exp, max_exp, steps, rates)
    if as_json:
        typer.echo(json.dumps(result))
        return
    if mode == "sweep":
        lo, hi = result["valley"]
        typer.echo(f"suggested learning rate: {result['suggested_lr']:.3g}   (middle of the valley {lo:.3g} to {hi:.3g}; "
                   f"lowest smoothed loss {result['min_loss']:.4f} nats/char at lr {result['min_loss_lr']:.3g})")
        if result["stopped"]:
            err.print(f"stopped early: {result['stopped']}")
        if result["note"]:
            err.print(f"note: {result['note']}")
    else:
        for r in result["runs"]:
            dev = f"{r['dev_loss']:.4f}" if r["dev_loss"] is not None else "diverged"
            typer.echo(f"lr {r['lr']:<10.3g} dev {dev}")
        typer.echo(f"best learning rate: {result['suggested_lr']:.3g} (lowest dev NLL after {steps} steps)")
    typer.echo(f"wrote {result['plot']}")
    typer.echo(f"wrote {result['csv']}")


def _parse_dims(dims: str) -> tuple[int, int]:
    parts = [p.strip() for p in dims.split(",")]
    try:
        i, j = (int(p) for p in parts)
    except ValueError:
        raise MakemoreError(f"--dims {dims!r}: give two dimension numbers, e.g. --dims 0,1") from None
    return i, j


def plot_emb(
    run_dir: Optional[Path] = RunDirArgument,
    out: Optional[Path] = typer.Option(None, "--out", help="PNG to write; default RUN_DIR/embedding.png."),
    dims: Optional[str] = typer.Option(None, "--dims", metavar="I,J", help="Plot these two dimensions of C (0-based)."),
    pca: bool = typer.Option(False, "--pca", help="Project on the first two principal components (the default when n_embd > 2)."),
) -> None:
    """Scatter the learned character embeddings (rows of C), each labelled with its character.

    n_embd = 2: the raw dimensions; larger: PCA (NumPy SVD), with the explained variance in the
    title, or --dims I,J. Vowels, consonants and the boundary token are coloured apart.
    """
    from makemore import api

    chosen = _parse_dims(dims) if dims is not None else None
    typer.echo(f"wrote {api.load(run_dir).plot_embedding(out, chosen, pca or None)}")


def plot_loss(
    run_dirs: Optional[list[Path]] = typer.Argument(None, help="Run directories to overlay; default: the most recent run.", show_default=False, metavar="RUN_DIR"),
    out: Optional[Path] = typer.Option(None, "--out", help="PNG to write; default RUN_DIR/loss.png for one run, loss-compare.png for several."),
    label: Optional[list[str]] = typer.Option(None, "--label", metavar="NAME", help="Legend name of each run, in order; repeatable. Default: the folder names."),
) -> None:
    """Plot train loss (smoothed, log scale) and dev loss against step, several runs overlaid."""
    from makemore import api, runs

    paths = list(run_dirs) if run_dirs else [runs.latest_run()]
    target = out or (runs.loss_png(paths[0]) if len(paths) == 1 else Path("loss-compare.png"))
    typer.echo(f"wrote {api.plot_loss(paths, target, label)}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def inspect(
    run_dir: Optional[Path] = RunDirArgument,
    step: Optional[int] = typer.Option(None, "--step", help="The recorded step to show (the nearest recorded one); default: the last."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the PNGs; default: the run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the numbers, flags and PNG paths as one JSON object."),
) -> None:
    """Look inside training (lecture part 3): activations, gradients, update-to-data ratios, saturation.

    Reads the statistics recorded with train.stats_interval > 0 (e.g. makemore train --config
    configs/names.toml --set train.stats_interval=100), prints one row per hidden layer and per
    parameter with plain-words flags where a number is out of its healthy range, and writes
    activations.png, gradients.png, update_ratio.png and saturation.png.
    """
    from rich.markup import escape
    from rich.table import Table

    from makemore.inspect import inspect_run, write_figures
    from makemore.runs import load_run

    run = load_run(run_dir)
    ins = inspect_run(run, step)
    figures = write_figures(ins, run, out or run.path)
    if as_json:
        typer.echo(json.dumps(ins.to_dict()))
        return
    con = console()
    steps = ins.recorded_steps
    con.print(f"run {escape(str(ins.run_dir))}: step {ins.step:,}"
              + (f" (the recorded step nearest --step {step:,})" if step is not None and step != ins.step else "")
              + f"; {len(steps):,} recorded steps, {steps[0]:,} to {steps[-1]:,}")
    con.print(f"loss at step {ins.first_step:,}: {ins.first_loss:.3f} nats/char; a uniform guess over {ins.vocab_size} "
              f"tokens scores ln({ins.vocab_size}) = {ins.ln_vocab_size:.3f}")
    layers = Table(title=f"hidden layers at step {ins.step:,}", title_justify="left")
    for column in ("layer", "kind", "mean", "std", "saturated", "dead", "flag"):
        layers.add_column(column, justify="left" if column in ("layer", "kind", "flag") else "right")
    for row in ins.layers:
        layers.add_row(escape(row["name"]), row["kind"], f"{row['mean']:+.3f}", f"{row['std']:.3f}", _pct(row["saturated"]),
                       _pct(row["dead"]), f"[yellow]{escape(row['flag'])}[/]" if row["flag"] else "")
    if ins.layers:
        con.print(layers)
    else:
        con.print("no hidden layers found (hidden layers are found by their nn.Tanh, nn.ReLU or nn.GELU modules)")
    params = Table(title=f"parameters at step {ins.step:,}", title_justify="left")
    for column in ("parameter", "shape", "grad std", "grad:data", "update ratio (log10)", "flag"):
        params.add_column(column, justify="left" if column in ("parameter", "shape", "flag") else "right")
    for row in ins.params:
        params.add_row(escape(row["name"]), "×".join(map(str, row["shape"])), _num(row["grad_std"], ".2e"), _num(row["grad_data"], ".2e"),
                       _num(row["update_ratio"], "+.2f"), f"[yellow]{escape(row['flag'])}[/]" if row["flag"] else "")
    con.print(params)
    if ins.loss_flag:
        con.print(f"[yellow]loss: {escape(ins.loss_flag)}[/]")
    for text in ins.notes:
        con.print(escape(text))
    for path in figures:
        con.print(f"wrote {escape(str(path))}")
