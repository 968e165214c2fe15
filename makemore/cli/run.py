"""The commands around one run: train, evaluate, sample. They parse options, call the library and render.

No maths here. Ctrl-C during training exits with 130 after writing a checkpoint, SIGTERM (a
cluster scheduler's notice) with 143. torch and the library are imported inside the commands, so
`makemore --help` starts quickly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

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
    nproc: int = typer.Option(1, "--nproc", min=1, help="Train with this many processes on this machine (torchrun, data parallel; torch backend)."),
) -> None:
    """Train a model; write config, vocabulary, metrics, checkpoint and loss curve into a run directory."""
    from makemore import api, distributed
    from makemore.training import TrainingInterrupted, draw_loss

    world = distributed.launched()
    with distributed.said_once(world):
        job = api.training_job(config, set_, run_dir=run_dir, resume=resume, processes=nproc, world=world)
    if world.is_main and nproc == 1:  # under --nproc, the job's rank 0 says them
        for line in job.notes:
            note(line)
    if nproc > 1:
        launch(nproc, ["--config", str(config)] if resume is None else [], set_ or [], job.run_dir, resume, quiet, as_json)
        return
    # a diverging run is reported in one line below; NumPy's overflow warnings on the way there are noise
    warnings.filterwarnings("ignore", message=r"(overflow|invalid value|divide by zero) encountered", category=RuntimeWarning)
    try:
        summary = api.run_job(job, listener=ProgressBar(enabled=not quiet and not as_json, announce=world.is_main), plot=False)
    except TrainingInterrupted as e:
        if world.is_main:
            how = "" if e.exit_code == 130 else " by SIGTERM"
            note(f"interrupted{how} at step {e.step}: checkpoint saved. Resume with: makemore train --resume {e.run_dir}")
        raise typer.Exit(e.exit_code)
    except KeyboardInterrupt:  # a Ctrl-C outside the training loop (loading data, or a second one)
        if world.is_main:
            _interrupted_outside_loop(job.run_dir)
        raise typer.Exit(130)
    if world.is_main:
        _print_summary(summary, as_json)
        if job.checked.cfg.train.plot:  # after the result is out: the plot holds nobody up
            sys.stdout.flush()
            draw_loss(summary.run_dir)


def _interrupted_outside_loop(run_dir: Path) -> None:
    """Say what a Ctrl-C outside the training loop left behind."""
    from makemore import runs

    if runs.has_checkpoint(run_dir):
        note(f"interrupted: the last checkpoint is kept. Resume with: makemore train --resume {run_dir}")
    else:
        note("interrupted before the first checkpoint: nothing was saved")


def _print_summary(summary: Any, as_json: bool) -> None:
    """The end of `makemore train`: the summary as JSON, or two lines."""
    if as_json:
        typer.echo(json.dumps(summary.to_dict()))
        return
    typer.echo(f"run directory: {summary.run_dir}")
    how = (f"{summary.steps} steps in {summary.train_time_s:.1f} s, {summary.steps_per_s:,.0f} steps/s" if summary.steps
           else f"counted in {summary.train_time_s:.1f} s")  # the bigram takes no steps
    typer.echo(
        f"final loss (mean NLL, nats/char, whole splits): train {summary.train_loss:.4f}  dev {summary.dev_loss:.4f}   [{how}]"
    )
    extra = summary.extra
    if extra.get("best_step", -1) >= 0:
        stopped = f"stopped early at step {summary.steps} (train.patience); " if extra.get("stopped_early") else ""
        typer.echo(f"{stopped}best dev {extra['best_dev_loss']:.4f} at step {extra['best_step']} (best.safetensors: what evaluate, sample and score read)")


def launch(nproc: int, source: list[str], overrides: list[str], target: Path, resume: Optional[Path], quiet: bool, as_json: bool) -> None:
    """`makemore train --nproc N`: the same command in N processes started by torchrun on this
    machine (`torchrun --standalone --nproc_per_node=N -m makemore train ...`), run from here.

    The run directory is named here, once, for all of them. Exits with the job's code: 130 or
    143 when it was interrupted, 2 for a mistake its rank 0 has reported, else 1 with one line.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run as torchrun

    from makemore import distributed

    if distributed.launched().size > 1:
        fail("--nproc starts torchrun itself: drop it when the command already runs under torchrun")
    args = [*source, *(a for o in overrides for a in ("--set", o))]
    args += ["--resume", str(target)] if resume is not None else ["--run-dir", str(target)]
    args += ["--quiet"] * quiet + ["--json"] * as_json
    for name in list(logging.root.manager.loggerDict):  # torchrun's notes would bury the workers' lines
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default, set here to spare its banner
    try:
        torchrun(parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "makemore", "train", *args]))
    except SignalException as e:  # the workers got the signal too: they checkpoint and say so
        raise typer.Exit(128 + int(e.sigval))
    except ChildFailedError as e:
        # the first process to fail says why; torchrun then ends the others (exit code -15)
        first_rank, first = e.get_first_failure()
        codes = [first.exitcode] + [f.exitcode for rank, f in sorted(e.failures.items()) if rank != first_rank]
        code = next((c for c in codes if c in (2, 130, 143)), None)  # a mistake a rank reported, or an interruption
        if code is None:
            fail(f"training stopped: process {first_rank} of {nproc} ended with exit code {first.exitcode}; the output above says why", 1)
        raise typer.Exit(code)


#: --checkpoint of evaluate, sample and score.
CheckpointOption = typer.Option(None, "--checkpoint", help="best: the best-dev checkpoint (the default when the run has one); last: the last one written.")


def evaluate(
    run_dir: Optional[Path] = RunDirArgument,
    split: Optional[str] = typer.Option(None, "--split", help="train, dev, test, or all; comma-separated for several. Default train,dev (dev with --classify)."),
    classify: bool = typer.Option(False, "--classify", help="A labelled run: the accuracy of p(label | word) (Bayes' rule) at finding each word's own label, and the confusion table."),
    as_json: bool = typer.Option(False, "--json", help='Print {"train": NLL, "dev": NLL} as one JSON object (with --classify, {"dev": {"accuracy", "confusion", ...}}).'),
    checkpoint: Optional[str] = CheckpointOption,
    samples: int = typer.Option(0, "--samples", min=0, help="Also draw this many samples and report their quality (docs/commands.md: share new, duplicates, length TV, character KL, NLL)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --samples draw."),
) -> None:
    """Mean NLL (nats per character) of a run on whole splits, with perplexity and bits per character.

    The test split is reported only when asked for (--split test or all): touch it rarely. A run
    trained on a labelled words file is evaluated given each word's own label. With --samples N,
    also the quality of N plain samples (makemore.quality.SampleQuality); with --json under the
    key "samples".
    """
    from makemore import api
    from makemore.evaluate import describe

    split = split if split is not None else "dev" if classify else "train,dev"
    names = ["train", "dev", "test"] if split == "all" else [s.strip() for s in split.split(",") if s.strip()]
    for name in names:
        if name not in ("train", "dev", "test"):
            fail(f"--split {name!r}: choose train, dev, test or all")
    run = api.load(run_dir, checkpoint=checkpoint)
    if run.loaded.data_changed:
        note(f"warning: {run.config.data.path} changed since this run was trained; splits may differ")
    if classify:
        _print_classification(run, [run.classification(name) for name in names], as_json)
        return
    results = run.evaluate_counted(names)  # split → (NLL, targets)
    quality = run.sample_quality(samples, seed) if samples else None
    if as_json:
        extra = {"samples": dataclasses.asdict(quality)} if quality else {}
        typer.echo(json.dumps({**{name: nll for name, (nll, _) in results.items()}, **extra}))
        return
    from rich.table import Table

    given = "" if run.labels is None else ", given each word's label"
    table = Table(title=f"{run.path}  (step {run.step}{given})")
    for column in ("split", "NLL (nats/char)", "perplexity", "bits/char", "targets"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name, (nll, count) in results.items():
        d = describe(nll)
        table.add_row(name, f"{d['nll']:.4f}", f"{d['perplexity']:.3f}", f"{d['bits_per_char']:.4f}", f"{count:,}")
    console().print(table)
    if quality:
        _print_quality(quality)


def _print_quality(q: Any) -> None:
    """The --samples table of `evaluate`."""
    from rich.table import Table

    table = Table(title=f"{q.n:,} samples (seed {q.seed}) against the dev words")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, value in (("share new (not training words)", q.share_new), ("share duplicates", q.share_duplicates),
                         ("length TV distance", q.length_tv), ("character KL (nats)", q.char_kl), ("mean NLL (nats/char)", q.nll)):
        table.add_row(label, f"{value:.4f}")
    console().print(table)


#: --top-p's help: its exact definition.
TOP_P_HELP = ("Nucleus sampling, 0 < P ≤ 1: after --temperature and --top-k, draw only from the smallest set of the most "
              "likely characters (ties: the lower id first) whose probabilities sum to at least P, renormalised; 1 changes nothing.")


def _print_classification(run: Any, results: list[Any], as_json: bool) -> None:
    """`evaluate --classify`: per split, the accuracy and the confusion table (or one JSON object)."""
    if as_json:
        typer.echo(json.dumps({c.split: c.to_dict() for c in results}, ensure_ascii=False))
        return
    from rich.markup import escape
    from rich.table import Table

    out = console()
    for c in results:
        table = Table(title=f"{run.path}  (step {run.step}): {c.split}, {c.words:,} words, rows true label, columns predicted")
        table.add_column("true \\ predicted")
        for label in c.labels:
            table.add_column(escape(label), justify="right")
        for label, row in zip(c.labels, c.confusion):
            table.add_row(escape(label), *(f"{k:,}" for k in row))
        out.print(table)
        out.print(f"{c.split} accuracy {c.accuracy:.2%} (always the most common label: {c.majority:.2%})", markup=False, soft_wrap=True)


def sample(
    run_dir: Optional[Path] = RunDirArgument,
    n: int = typer.Option(20, "-n", "--num", help="How many samples."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for repeatable samples; default: a fresh random seed."),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Divide the logits by this (>0): <1 safer, >1 wilder."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Draw only from the k most likely characters."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help=TOP_P_HELP),
    prefix: str = typer.Option("", "--prefix", help="Every sample starts with this text; the model continues it."),
    suffix: Optional[str] = typer.Option(None, "--suffix", help="Every sample ends with this text (masked: see above)."),
    contains: Optional[str] = typer.Option(None, "--contains", help="Every sample contains this text (masked)."),
    match: Optional[str] = typer.Option(None, "--match", metavar="REGEX", help="Every sample matches this regular expression, over the whole word (Python syntax, no back-references or look-behinds; masked)."),
    new_only: bool = typer.Option(False, "--new-only", help="Only samples that are not in the run's words file (any split)."),
    unique: bool = typer.Option(False, "--unique", help="No sample twice."),
    min_len: Optional[int] = typer.Option(None, "--min-len", help="Fewest characters (prefix included); shorter samples are redrawn. Default 1 when selecting."),
    max_len: Optional[int] = typer.Option(None, "--max-len", help="Most characters (prefix included); longer samples are redrawn, not cut. Default: twice the longest training word, a sequence model's longest (plain sampling cuts there)."),
    best: Optional[int] = typer.Option(None, "--best", metavar="N", help="Instead of sampling: the N most probable words (total probability) meeting every constraint, most probable first, by beam search; deterministic."),
    beam: Optional[int] = typer.Option(None, "--beam", metavar="W", help="--best's beam width: partial words kept at each length (default 1024); widen it when the result is not proven exact."),
    scores: bool = typer.Option(False, "--scores", help="Show each sample's mean NLL per character under the model (nats; lower is more name-like)."),
    sort: Optional[str] = typer.Option(None, "--sort", help="nll: the most name-like (lowest NLL per character) first."),
    label: Optional[str] = typer.Option(None, "--label", help="A labelled run: sample for this label. Without it each sample's label is drawn from the training frequencies and printed."),
    as_json: bool = typer.Option(False, "--json", help='Print a JSON list of the samples only; with --scores, a list of {"word", "nll"} objects (a labelled run without --label: {"word", "label"[, "nll"]}).'),
    checkpoint: Optional[str] = CheckpointOption,
) -> None:
    """Generate new words from a trained run, marking those that already occur in the training words.

    Plain sampling (none of --prefix, --new-only, --unique, --min-len, --max-len, --suffix,
    --contains, --match) prints n samples as drawn; one still unfinished at twice the longest
    training word is cut there and marked.

    Selective sampling (any of them): every sample starts with --prefix, and a draw that does not
    fit (too short, too long, in the words file, a repeat) is thrown away and redrawn, never cut,
    up to 50 draws per sample asked for. If that bound is reached first, the samples found are
    printed, one line on stderr says how many and why, and the exit code is 1.

    Masking (--suffix, --contains or --match): all constraints, lengths and prefix included, are
    one automaton, and at each step every character that cannot lead to a matching word within
    --max-len gets probability 0: every draw matches (only --new-only and --unique redraw). This
    samples a locally renormalised distribution, not the model's own given the constraints.
    """
    from makemore import api

    if sort not in (None, "nll"):
        fail(f"--sort {sort!r}: the one order is nll (the most name-like first)")
    if best is not None and (temperature != 1.0 or top_k is not None or top_p is not None):
        fail("--best ranks words by the model's own probabilities: drop --temperature, --top-k and --top-p")
    if beam is not None and best is None:
        fail("--beam is the width of --best's search: give --best N too")
    run = api.load(run_dir, checkpoint=checkpoint)
    wanted = dict(prefix=prefix, suffix=suffix, contains=contains, match=match, new_only=new_only, min_len=min_len, max_len=max_len)
    if best is not None:
        _sample_best(run, run.best(best, beam=beam, label=label, **wanted), scores, sort, as_json)
        return
    found = run.samples(n, seed=seed, temperature=temperature, top_k=top_k, top_p=top_p, unique=unique, label=label, **wanted)
    results, train_words = _show_words(run, found, scores, sort, as_json, label)
    if found.shortfall:
        fail(found.shortfall, code=1)
    if train_words is not None:
        seen = sum(word in train_words for word, _ in results)
        sel = found.selection
        why = ", ".join(f"{count:,} {reason}" for reason, count in sel.redrawn.most_common()) if sel else ""
        kept = f"; kept {len(results)} of {sel.drawn:,} draws ({why or 'none redrawn'})" if sel else ""
        console(stderr=True).print(f"{seen} of {len(results)} samples ({seen / len(results):.0%}) occur in the training words{kept}; seed {found.seed}",
                                   markup=False, soft_wrap=True)


def _show_words(run: Any, found: Any, scores: bool, sort: Optional[str], as_json: bool,
                label: Optional[str] = None) -> tuple[list[tuple[str, bool]], set[str] | None]:
    """Print the words of `found` (makemore.sample.Samples, or anything with words, labels, cap),
    sorted by NLL per character with --sort nll, as JSON or one per line, with each sample's drawn
    label when a labelled run sampled without --label; return them as printed, and the run's
    training words (None under --json, or when unreadable)."""
    results = found.words
    labels = found.labels if found.labels is not None and label is None else None  # shown: each sample's drawn label
    nll = run.word_nll([w for w, _ in results], found.labels) if scores or sort else []
    if sort == "nll":  # stable: equal scores keep the draw order; a sample that cannot be scored goes last
        order = sorted(range(len(results)), key=lambda i: (nll[i] is None, nll[i] or 0.0))
        results, nll = [results[i] for i in order], [nll[i] for i in order]
        labels = None if labels is None else [labels[i] for i in order]
    if as_json:
        typer.echo(json.dumps(_samples_json(results, nll if scores else None, labels), ensure_ascii=False))
        return results, None
    train_words = _train_words(run)
    _print_samples(results, nll if scores else None, train_words, found.cap, labels)
    sys.stdout.flush()  # the samples before the summary on stderr, also when both go to one pipe
    return results, train_words


def _sample_best(run: Any, found: Any, scores: bool, sort: Optional[str], as_json: bool) -> None:
    """`makemore sample --best N`: the words (makemore.best.Best), then one line on stderr saying how
    they were found; exit code 1 when fewer than N were found."""
    from types import SimpleNamespace

    label = getattr(found, "label", None)
    words = SimpleNamespace(words=[(w, True) for w in found.words], labels=None if label is None else [label] * len(found.words), cap=0)
    _show_words(run, words, scores, sort, as_json, label)
    if found.shortfall:
        fail(found.shortfall, code=1)
    if not as_json:
        order = "by NLL per character (--sort nll)" if sort else "most probable first"
        how = ("exact: no word left out is more probable" if found.exact
               else "not proven exact: a word the beam left out may be more probable; widen --beam")
        note(f"the {len(found.words)} most probable words (total probability), {order}; beam {found.beam}, {how}")


def _train_words(run: Any) -> set[str] | None:
    """The run's training words, to mark samples seen in training; None (with a warning) when unreadable."""
    try:
        return run.training_words()
    except MakemoreError as e:
        note(f"warning: cannot mark samples seen in training: {e}")
        return None


def _samples_json(results: list[tuple[str, bool]], nll: list[float | None] | None, labels: list[str] | None) -> list[Any]:
    """The JSON of `sample --json`: the words, or {"word"[, "label"][, "nll"]} objects with --scores or drawn labels."""
    if nll is None and labels is None:
        return [w for w, _ in results]
    return [{"word": w, **({} if labels is None else {"label": labels[i]}), **({} if nll is None else {"nll": nll[i]})}
            for i, (w, _) in enumerate(results)]


def _print_samples(results: list[tuple[str, bool]], nll: list[float | None] | None, train_words: set[str] | None, cap: int,
                   labels: list[str] | None = None) -> None:
    """One sample per line, verbatim (not read as markup), with its drawn label and its score when
    given ("-": one the model cannot score) and notes: "in training data", "cut at N characters"."""
    from rich.markup import escape

    out = console()
    width = max((len(word) for word, _ in results), default=0)
    seen = [train_words is not None and word in train_words for word, _ in results]
    if labels is not None:  # the label beside each word, in a column of its own
        label_width = max(map(len, labels), default=0)
        results = [(f"{word}{' ' * (width - len(word))}  {lab:<{label_width}}".rstrip(), finished)
                   for (word, finished), lab in zip(results, labels)]
        width = max((len(word) for word, _ in results), default=0)
    for i, (word, finished) in enumerate(results):
        notes = ["in training data"] * seen[i]
        if not finished:
            notes.append(f"cut at {cap} characters")
        score = f"{' ' * (width - len(word))}  {'-' if nll[i] is None else format(nll[i], '.3f'):>5}" if nll is not None else ""
        out.print(escape(word) + score + (f"  [dim]({', '.join(notes)})[/dim]" if notes else ""), markup=True, soft_wrap=True)


def score(
    args: Optional[list[str]] = typer.Argument(None, metavar="[RUN] WORD", show_default=False,
                                               help="A run directory (default: the most recent run under runs/), then the words to score."),
    as_json: bool = typer.Option(False, "--json", help='Print a JSON list of {"word", "nll", "perplexity", "percentile"} objects (with --labels, {"word", "labels": {label: p}}).'),
    checkpoint: Optional[str] = CheckpointOption,
    chars: bool = typer.Option(False, "--chars", help='Each character\'s probability and NLL (nats), the end token\'s last, the least expected marked; with --json, {"word", "nll", "chars": [{"char", "p", "nll", "worst"}]} objects.'),
    labels: bool = typer.Option(False, "--labels", help="A labelled run: which label fits each word, p(label | word) by Bayes' rule."),
) -> None:
    """How likely each word is under a run's model: "how name-like is my name?".

    For each word: its mean NLL per character (nats, over its characters and its end token; lower
    is more name-like), the perplexity exp(NLL), and its percentile: the share of the training
    words that score worse. Without words on the command line they are read from standard input,
    one per line. The first argument is the run when it is a directory or contains a "/".
    A word the model cannot score (a character outside the run's vocabulary; for a sequence model,
    longer than its longest training word) gets an error line on stderr; the others are still
    scored, and the exit code is 1.
    """
    from makemore import api

    words = list(args or [])
    run_arg = Path(words.pop(0)) if words and ("/" in words[0] or Path(words[0]).is_dir()) else None
    if not words:
        if sys.stdin is None or sys.stdin.isatty():
            fail("no words to score: give them after the run, or one per line on standard input")
        words = [w for w in (line.strip() for line in sys.stdin) if w]
        if not words:
            fail("no words to score on standard input")
    run = api.load(run_arg, checkpoint=checkpoint)
    if labels:
        _print_label_fit(run, words, run.classify(words), as_json)
        return
    if chars:
        _score_chars(run, words, as_json)
        return
    report = run.score_report(words)
    for line in report.warnings:
        note(line)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in report.scores], ensure_ascii=False))
    elif report.scores:
        _print_scores(run, report)
    errors = report.errors
    if errors:
        sys.stdout.flush()
        for line in errors:
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(1)


def _print_label_fit(run: Any, words: list[str], posteriors: list[dict[str, float]], as_json: bool) -> None:
    """`score --labels`: p(label | word) of each word, one column per label, and the likeliest label."""
    if as_json:
        typer.echo(json.dumps([{"word": w, "labels": p} for w, p in zip(words, posteriors)], ensure_ascii=False))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{run.path}  (step {run.step}): p(label | word) = p(word | label)·p(label), normalised")
    table.add_column("word")
    for label in run.labels:
        table.add_column(f"p({escape(label)})", justify="right")
    table.add_column("likeliest")
    for word, p in zip(words, posteriors):
        table.add_row(escape(word), *(f"{p[label]:.3f}" for label in run.labels), escape(max(p, key=p.get)))
    console().print(table)


def _print_scores(run: Any, report: Any) -> None:
    """The score table, and what the percentile means."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{run.path}  (step {run.step})")
    for column in ("word", "NLL (nats/char)", "perplexity", "percentile"):
        table.add_column(column, justify="left" if column == "word" else "right")
    for r in report.scores:
        table.add_row(escape(r.word), f"{r.nll:.4f}", f"{r.perplexity:.3f}", "-" if r.percentile is None else f"{r.percentile:.1f}")
    out = console()
    out.print(table)
    if report.reference_words:
        out.print(f"percentile: the share of the {report.reference_words:,} training words that score worse (higher NLL per character)",
                  markup=False, soft_wrap=True)


def ensemble(
    members: list[Path] = typer.Argument(..., metavar="RUN...", help="The member runs (any families, one vocabulary)."),
    out: Path = typer.Option(..., "--out", "-o", help="The ensemble directory to create."),
    weights: str = typer.Option("fitted", "--weights", help="fitted (on the dev split, the default) or equal."),
) -> None:
    """Make an ensemble of runs: a directory that evaluate, sample and score read like a run, whose
    model mixes the members' next-character distributions with weights fitted on dev, or equal."""
    from makemore import api
    from makemore.evaluate import describe

    run = api.ensemble(members, out, weights)
    spec = run.loaded
    for member, w in zip(spec.members, spec.model.weights.tolist()):
        typer.echo(f"{w:.4f}  {member.path}  ({member.config.model.type}, {member.which} checkpoint)")
    dev = run.evaluate(("dev",))["dev"]
    typer.echo(f"ensemble {out}: dev {describe(dev)['nll']:.4f} nats/char")


def _score_chars(run: Any, words: list[str], as_json: bool) -> None:
    """`makemore score --chars`: each character's probability and NLL under the model, the end token
    last, the largest NLL marked; one error line per word that cannot be scored (then exit code 1)."""
    import math

    good, errors = [], []
    for word in words:
        try:
            good.append((word, run.char_scores(word)))
        except MakemoreError as e:
            errors.append(str(e))
    rows = [(word, [(c, math.exp(-x), x) for c, x in pairs], max(range(len(pairs)), key=lambda i: pairs[i][1])) for word, pairs in good]
    if as_json:
        typer.echo(json.dumps([{"word": word, "nll": sum(x for *_, x in cs) / len(cs),
                                "chars": [{"char": c, "p": p, "nll": x, "worst": i == worst} for i, (c, p, x) in enumerate(cs)]}
                               for word, cs, worst in rows], ensure_ascii=False))
    else:
        for word, cs, worst in rows:
            _print_char_table(run, word, cs, worst)
    if errors:
        sys.stdout.flush()
        for line in errors:
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(1)


def _print_char_table(run: Any, word: str, cs: list[tuple[str, float, float]], worst: int) -> None:
    """One word: a line with each character coloured by its NLL (green < 1.5 nats, yellow < 3, red
    above), then a table of each character's probability and NLL, the worst marked."""
    from rich.markup import escape
    from rich.table import Table

    def colour(x: float) -> str:
        return "green" if x < 1.5 else "yellow" if x < 3.0 else "red"

    end = run.vocab.itos[0]
    line = "".join(f"[{colour(x)}{' underline' if i == worst else ''}]{escape(c)}[/]" for i, (c, _, x) in enumerate(cs))
    table = Table(title=f"{escape(word)}: {sum(x for *_, x in cs) / len(cs):.4f} nats/char")
    for column in ("char", "p", "NLL (nats)", ""):
        table.add_column(column, justify="left" if column in ("char", "") else "right")
    for i, (c, p, x) in enumerate(cs):
        name = f"{escape(c)} (end)" if i == len(cs) - 1 and c == end else escape(c)
        table.add_row(name, f"{p:.4f}", f"[{colour(x)}]{x:.3f}[/]", "[bold red]◀ worst[/]" if i == worst else "")
    out = console()
    out.print(line)
    out.print(table)
