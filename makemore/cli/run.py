"""The commands around one run: train, evaluate, sample. They parse options, call the library and render.

No maths here. Ctrl-C during training exits with 130 after writing a checkpoint. torch and the
library are imported inside the commands, so `makemore --help` starts quickly.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Optional

import typer

from makemore.cli.common import ProgressBar, RunDirArgument, SetOption, console, fail, note
from makemore.errors import MakemoreError


def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config with [data] [model] [train]."),
    set_: Optional[list[str]] = SetOption,
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write the run; default runs/<config name>-<timestamp>."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run from its last checkpoint."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Train a model; write config, vocabulary, metrics, checkpoint and loss curve into a run directory."""
    from makemore import runs
    from makemore.config import apply_overrides, load_config
    from makemore.models import unused_options
    from makemore.train import TrainingInterrupted, train as run_training

    overrides = set_ or []
    if resume is not None:
        if config is not None or run_dir is not None:
            fail("--resume continues a run with its own config: drop --config and --run-dir (use --set to change a key)")
        checkpoint = runs.load_checkpoint(runs.resolve_run(resume))
        cfg = apply_overrides(runs.checkpoint_config(resume, checkpoint), overrides)
        target = resume
        if runs.data_changed(checkpoint, cfg.data.path):
            note(f"warning: {cfg.data.path} is not the file this run was trained on: the resumed run will not match an uninterrupted one")
    else:
        if config is None:
            fail("no config: pass --config FILE (e.g. --config configs/names.toml), or --resume RUN_DIR")
        cfg = load_config(config, overrides)
        target = run_dir or runs.new_run_dir(config.stem)
    unused = unused_options(cfg.model)
    if unused:
        note(f"note: model.type = {cfg.model.type!r} does not read {', '.join(unused)}: {'it is' if len(unused) == 1 else 'they are'} ignored")
    err = console(stderr=True)
    fresh = resume is None and not Path(target).exists()  # a new run: remove it again if it fails before its first checkpoint
    try:
        summary = run_training(cfg, target, resume=resume is not None, listener=ProgressBar(enabled=not quiet and not as_json, announce=True))
    except TrainingInterrupted as e:
        err.print(f"interrupted at step {e.step}: checkpoint saved. Resume with: makemore train --resume {e.run_dir}", markup=False, soft_wrap=True)
        raise typer.Exit(130)
    except KeyboardInterrupt:  # a Ctrl-C outside the training loop (loading data, or a second one)
        if fresh:
            runs.discard_unstarted(Path(target))
        if runs.has_checkpoint(target):
            err.print(f"interrupted: the last checkpoint is kept. Resume with: makemore train --resume {target}", markup=False, soft_wrap=True)
        else:
            err.print("interrupted before the first checkpoint: nothing was saved")
        raise typer.Exit(130)
    except BaseException:
        if fresh:
            runs.discard_unstarted(Path(target))
        raise
    if as_json:
        typer.echo(json.dumps(summary.to_dict()))
        return
    typer.echo(f"run directory: {summary.run_dir}")
    how = (f"{summary.steps} steps in {summary.train_time_s:.1f} s, {summary.steps_per_s:,.0f} steps/s" if summary.steps
           else f"counted in {summary.train_time_s:.1f} s")  # the bigram takes no steps
    typer.echo(
        f"final loss (mean NLL, nats/char, whole splits): train {summary.train_loss:.4f}  dev {summary.dev_loss:.4f}   [{how}]"
    )


def evaluate(
    run_dir: Optional[Path] = RunDirArgument,
    split: str = typer.Option("train,dev", "--split", help="train, dev, test, or all; comma-separated for several."),
    as_json: bool = typer.Option(False, "--json", help='Print {"train": NLL, "dev": NLL} as one JSON object.'),
) -> None:
    """Mean NLL (nats per character) of a run on whole splits, with perplexity and bits per character.

    The test split is reported only when asked for (--split test or all): touch it rarely.
    """
    from makemore.evaluate import describe, evaluate_splits
    from makemore.runs import load_run

    names = ["train", "dev", "test"] if split == "all" else [s.strip() for s in split.split(",") if s.strip()]
    for name in names:
        if name not in ("train", "dev", "test"):
            fail(f"--split {name!r}: choose train, dev, test or all")
    run = load_run(run_dir)
    if run.data_changed:
        note(f"warning: {run.config.data.path} changed since this run was trained; splits may differ")
    results = evaluate_splits(run, names)  # split → (NLL, windows)
    if as_json:
        typer.echo(json.dumps({name: nll for name, (nll, _) in results.items()}))
        return
    from rich.table import Table

    table = Table(title=f"{run.path}  (step {run.step})")
    for column in ("split", "NLL (nats/char)", "perplexity", "bits/char", "targets"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name, (nll, count) in results.items():
        d = describe(nll)
        table.add_row(name, f"{d['nll']:.4f}", f"{d['perplexity']:.3f}", f"{d['bits_per_char']:.4f}", f"{count:,}")
    console().print(table)


def sample(
    run_dir: Optional[Path] = RunDirArgument,
    n: int = typer.Option(20, "-n", "--num", help="How many samples."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for repeatable samples; default: a fresh random seed."),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Divide the logits by this (>0): <1 safer, >1 wilder."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Draw only from the k most likely characters."),
    max_len: Optional[int] = typer.Option(None, "--max-len", help="Cut samples at this length; default twice the longest training word."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of the samples only."),
) -> None:
    """Generate new words from a trained run, marking those that already occur in the training words."""
    import torch

    from makemore.models import family
    from makemore.runs import load_run
    from makemore.sample import check_sampling_options, sample as draw

    check_sampling_options(n, temperature, top_k, 10**9, 1 if max_len is None else max_len)
    run = load_run(run_dir)
    seed = secrets.randbits(31) if seed is None else seed
    cap = max_len if max_len is not None else 2 * int(run.checkpoint.get("max_word_len", 32))
    try:
        train_words = set(run.dataset.split_words("train"))
    except MakemoreError as e:
        train_words = None
        note(f"warning: cannot mark samples seen in training: {e}")
    results = draw(run.model, run.vocab, n, torch.Generator().manual_seed(seed), temperature, top_k, cap,
                   view=family(run.config.model).view)
    if as_json:
        typer.echo(json.dumps([w for w, _ in results], ensure_ascii=False))
        return
    from rich.markup import escape

    out = console()
    seen = 0
    for word, finished in results:
        notes = []
        if train_words is not None and word in train_words:
            seen += 1
            notes.append("in training data")
        if not finished:
            notes.append(f"cut at {cap} characters")
        out.print(escape(word) + (f"  [dim]({', '.join(notes)})[/dim]" if notes else ""), markup=True, soft_wrap=True)
    sys.stdout.flush()  # the samples before the summary on stderr, also when both go to one pipe
    if train_words is not None:
        console(stderr=True).print(f"{seen} of {n} samples ({seen / n:.0%}) occur in the training words; seed {seed}")
