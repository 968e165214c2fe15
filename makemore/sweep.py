"""Experiment sweeps: train every combination of a grid of config values, one run after another,
and tabulate the results sorted by dev loss (the lecture's "loss log", as a command).

This module is the one sweep engine: `plan` checks every combination, `run_trial` skips, resumes
or trains one of them and reads back its result, `write_results` tabulates. `run_sweep` drives a
grid with them in one process; makemore.search drives the same two steps from an Optuna study
(a grid on several workers, random and TPE searches).

    out/
        model.n_hidden=256,train.lr=0.01/     a normal run directory (makemore.runs) per combination
        model.n_hidden=256,train.lr=0.003/
        ...
        results.csv                           one row per run: grid values, parameters, losses, time
        results.md                            the same table in Markdown, best dev loss first

A combination whose run directory already holds summary.json is not trained again, so a sweep
that was interrupted (Ctrl-C) or extended with more grid values continues where it stopped; a
run that was interrupted mid-training is resumed from its checkpoint (exactly, see
makemore.training).
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from makemore import runs
from makemore.config import Config, parse_override
from makemore.errors import MakemoreError
from makemore.models import context_length, count_params
from makemore.prepare import Checked, check, read_data
from makemore.quality import METRICS, sample_quality
from makemore.training import Listener, TrainingDiverged, TrainingInterrupted, train_checked

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"

#: Characters allowed in a run directory's name; anything else becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+,-]")


def split_values(text: str) -> list[str]:
    """Split "v1,v2,..." at the commas that are not inside brackets or quotes ("[1,2],[3]" → 2 values)."""
    values, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i])
            start = i + 1
    values.append(text[start:])
    return [v.strip() for v in values]


def parse_grid(items: list[str] | tuple[str, ...]) -> list[tuple[str, list[Any]]]:
    """Parse `--grid section.key=v1,v2,...` items into [(key, [values])], each value read as TOML
    (a bare word is a string), as `--set` reads its value.

    Raises:
        MakemoreError: no "=", an empty value, or the same key given twice.
    """
    grid: list[tuple[str, list[Any]]] = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MakemoreError(f"--grid {item!r}: expected section.key=v1,v2,..., e.g. --grid train.lr=0.1,0.03")
        if any(key == k for k, _ in grid):
            raise MakemoreError(f"--grid {key}: given twice; list all its values in one --grid")
        texts = split_values(text)
        if any(not t for t in texts):
            raise MakemoreError(f"--grid {item!r}: empty value; separate values with single commas")
        grid.append((key, [parse_override(f"{key}={t}")[1] for t in texts]))
    return grid


def format_value(value: Any) -> str:
    """A grid value as written in a run's name and the tables (1e-3 stays short, lists keep brackets)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def run_name(combo: dict[str, Any]) -> str:
    """The directory name of one combination: "key=value" pairs joined by commas, filesystem-safe;
    "base" for the empty grid."""
    if not combo:
        return "base"
    return _UNSAFE.sub("_", ",".join(f"{k}={format_value(v)}" for k, v in combo.items()))


@dataclass
class Planned:
    """One combination of the grid: its values, its checked config and its run directory."""

    combo: dict[str, Any]
    checked: Checked
    run_dir: Path

    @property
    def config(self) -> Config:
        """The combination's config, train.backend resolved."""
        return self.checked.cfg


def plan(base: Config, grid: list[tuple[str, list[Any]]], out: Path) -> list[Planned]:
    """Every combination of `grid` applied to a copy of `base` (itertools.product order: the last
    key varies fastest), each checked before anything is trained.

    Raises:
        MakemoreError: an unknown key, a value of the wrong type or out of range, a model the
            backend cannot train, two combinations whose names coincide after making them
            filesystem-safe.
    """
    keys = [k for k, _ in grid]
    planned: list[Planned] = []
    names: set[str] = set()
    for values in itertools.product(*(vals for _, vals in grid)):
        combo = dict(zip(keys, values))
        cfg = copy.deepcopy(base)
        for key, value in combo.items():
            cfg.set(key, value, source="--grid")
        cfg.validate(f"--grid {run_name(combo)}")
        try:
            checked = check(cfg)
        except MakemoreError as e:
            raise MakemoreError(f"--grid {run_name(combo)}: {e}") from None
        name = run_name(combo)
        if name in names:
            raise MakemoreError(f"--grid: two combinations share the run name {name!r}; give distinct values")
        names.add(name)
        planned.append(Planned(combo, checked, out / name))
    return planned


@dataclass
class Result:
    """One row of the results table. Losses are mean NLL over whole splits, nats/char."""

    name: str
    combo: dict[str, Any]
    run_dir: Path
    status: str
    """"trained", "skipped" (finished in an earlier invocation), "diverged" or "interrupted"; on
    Optuna (makemore.search) also "pruned" or "running" (in another worker)."""
    params: int | None = None
    steps: int | None = None
    train_loss: float = math.nan
    dev_loss: float = math.nan
    time_s: float = math.nan
    """Seconds of training (summary.json's train_time_s, across resumes)."""
    quality: float = math.nan
    """The sample-quality metric the table is ranked by (`rank_results`); NaN when not asked for."""

    @property
    def gap(self) -> float:
        """dev − train loss: how much the model overfits (nats/char)."""
        return self.dev_loss - self.train_loss


@dataclass
class SweepOutcome:
    """What `run_sweep` returns: one Result per combination reached, best dev loss first."""

    out: Path
    keys: list[str]
    planned: int
    """How many combinations the grid has."""
    results: list[Result] = field(default_factory=list)
    interrupted: bool = False
    exit_code: int = 130
    """What the command exits with when interrupted: 130 after Ctrl-C, 143 after SIGTERM."""
    rank_by: str = "dev"
    """What the rows are sorted by: "dev" (the dev loss) or a makemore.quality metric (`rank_results`)."""


def result_of(p: Planned, status: str) -> Result:
    """The results-table row of p's run as its directory holds it: the whole splits' losses from
    summary.json, or for a run stopped early (pruned, interrupted) its last metrics record."""
    summary = runs.read_summary(p.run_dir) if runs.is_finished(p.run_dir) else {}
    metrics = runs.read_metrics(p.run_dir)
    devs = [r["dev_loss"] for r in metrics if r.get("dev_loss") is not None]
    last = metrics[-1] if metrics else {}
    block_size = context_length(p.config, int(runs.load_checkpoint(p.run_dir).get("max_word_len", 0)))
    return Result(run_name(p.combo), p.combo, p.run_dir, status, count_params(p.config, runs.read_vocab_size(p.run_dir), block_size),
                  int(summary.get("steps", last.get("step", 0))), float(summary.get("train_loss", math.nan)),
                  float(summary.get("dev_loss", devs[-1] if devs else math.nan)), float(summary.get("train_time_s", last.get("elapsed_s", math.nan))))


def check_same_config(p: Planned) -> None:
    """Refuse to reuse a run directory that was trained with a different config (compared as
    configs, so a directory written by an older makemore, whose config.toml lacks newer keys, fits).

    Raises:
        MakemoreError: the directory holds a run of another config.
    """
    if runs.stored_config(p.run_dir) not in (None, p.config):
        raise MakemoreError(
            f"{p.run_dir}: this run was trained with a different config than the sweep now asks for "
            f"(was the base config or a --set changed?); use another --out, or delete that directory"
        )


def ready_to_train(p: Planned) -> bool:
    """Make p's run directory ready for training: refuse one that holds a run of another config
    (check_same_config), remove one created but never checkpointed (stopped before its first
    step: it starts afresh). Returns whether to resume it (it has a checkpoint).

    Raises:
        MakemoreError: the directory holds a run of another config.
    """
    check_same_config(p)
    resume = runs.has_checkpoint(p.run_dir)
    if not resume and p.run_dir.exists():
        shutil.rmtree(p.run_dir)
    return resume


def longest_words(checked: list[Checked]) -> None:
    """Read each distinct [data] section of the checked configs once, so that bad data, or a word
    too long for a sequence model, fails before a sweep creates anything.

    Raises:
        MakemoreError: bad data, a word too long for a sequence model (data.max_len).
    """
    longest: dict[str, int] = {}
    for c in checked:
        key = json.dumps(c.cfg.to_dict()["data"])
        if key not in longest:
            longest[key] = read_data(c).provenance["max_word_len"]
        else:
            c.family.view.context_length(c.cfg.data, longest[key], c.family.name)


Announce = Callable[[int, int, "Planned", str], None]
"""announce(i, n, planned, "train" | "resume" | "skip"): told before each trial of n."""


def run_trial(p: Planned, position: int, total: int, announce: Announce | None = None, listener: Listener | None = None) -> Result:
    """One trial of a sweep, the same for every engine: skip a run finished earlier (its result is
    read back), resume one with a checkpoint, else train it afresh; then read its result.

    Raises:
        MakemoreError: p's directory holds a run of another config; what training raises.
        TrainingInterrupted: Ctrl-C or SIGTERM (the run keeps its checkpoint and resumes next time).
        Whatever the listener raises (an Optuna pruner's TrialPruned).
    """
    if runs.is_finished(p.run_dir):
        check_same_config(p)
        if announce:
            announce(position, total, p, "skip")
        return result_of(p, "skipped")
    resume = ready_to_train(p)
    if announce:
        announce(position, total, p, "resume" if resume else "train")
    try:
        train_checked(p.checked, p.run_dir, resume=resume, listener=listener)
    except TrainingDiverged:
        return Result(run_name(p.combo), p.combo, p.run_dir, "diverged")
    return result_of(p, "trained")


def run_sweep(
    base: Config,
    grid: list[tuple[str, list[Any]]],
    out: str | Path,
    *,
    announce: Announce | None = None,
    listener: Listener | None = None,
) -> SweepOutcome:
    """Train every combination of `grid` on `base`, one after another, each into out/<run name>/,
    then write out/results.csv and out/results.md (best dev loss first).

    Runs whose directory holds summary.json are skipped (their results are read back); a run
    directory with a checkpoint but no summary is resumed. Ctrl-C (TrainingInterrupted) stops the
    sweep after the current run's checkpoint, and the tables are still written for the finished
    runs. A diverging run (TrainingDiverged) is recorded as such and the sweep goes on.

    Args:
        base: the validated base config.
        grid: [(section.key, [values])] from parse_grid.
        out: the sweep's directory (created if needed).
        announce: called as announce(i, n, planned, "train" | "resume" | "skip") before each run.
        listener: hears every run's progress (makemore.training.Listener).

    Raises:
        MakemoreError: a bad grid, model or backend (before anything is trained), bad data, or a
            run directory that holds a run of a different config.
    """
    out = Path(out)
    planned = plan(base, grid, out)
    longest_words([p.checked for p in planned])
    out.mkdir(parents=True, exist_ok=True)
    outcome = SweepOutcome(out, [k for k, _ in grid], len(planned))
    try:
        for i, p in enumerate(planned, 1):
            outcome.results.append(run_trial(p, i, len(planned), announce, listener))
    except (TrainingInterrupted, KeyboardInterrupt) as e:
        outcome.interrupted = True
        outcome.exit_code = getattr(e, "exit_code", 130)
    outcome.results.sort(key=lambda r: (math.isnan(r.dev_loss), r.dev_loss))
    write_results(outcome)
    return outcome


#: What a sweep's table can be ranked by: the dev loss, or one of the sample-quality metrics.
RANKINGS = ("dev", *METRICS)


def check_rank_by(rank_by: str) -> None:
    """Raises MakemoreError for a --rank-by that is not one of RANKINGS."""
    if rank_by not in RANKINGS:
        raise MakemoreError(f"--rank-by {rank_by!r}: choose {', '.join(RANKINGS)}")


def rank_results(outcome: SweepOutcome, rank_by: str, samples: int = 1000, seed: int = 0) -> SweepOutcome:
    """Sort `outcome`'s rows by `rank_by`: "dev" (lower first, as the sweep already is), or a
    sample-quality metric (makemore.quality.METRICS: share_new higher first, the others lower
    first), computed here from `samples` samples (seed `seed`) of every row's run that has a
    checkpoint (its best-dev one when it has one); rows without a value go last.

    Raises:
        MakemoreError: an unknown rank_by; a run's words file that cannot be read.
    """
    check_rank_by(rank_by)
    outcome.rank_by = rank_by
    if rank_by == "dev":
        return outcome
    for r in outcome.results:
        if runs.has_checkpoint(r.run_dir):
            r.quality = float(getattr(sample_quality(runs.load_run(r.run_dir), samples, seed), rank_by))
    sign = -1.0 if METRICS[rank_by] else 1.0
    outcome.results.sort(key=lambda r: (math.isnan(r.quality), sign * r.quality if not math.isnan(r.quality) else 0.0))
    return outcome


# ---------------------------------------------------------------------------------- tables

COLUMNS = ("params", "steps", "train", "dev", "dev−train", "time (s)", "status")


def table_rows(outcome: SweepOutcome) -> list[list[str]]:
    """The table as strings: rank, run-specific grid values, then COLUMNS (losses to 4 decimals)."""

    def num(x: float, fmt: str) -> str:
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)

    rows = []
    for rank, r in enumerate(outcome.results, 1):
        rows.append(
            [str(rank)] + [format_value(r.combo[k]) for k in outcome.keys]
            + [num(r.params, ","), num(r.steps, ","), num(r.train_loss, ".4f"), num(r.dev_loss, ".4f"),
               num(r.gap, "+.4f"), num(r.time_s, ".1f"), r.status]
            + ([num(r.quality, ".4f")] if outcome.rank_by != "dev" else [])
        )
    return rows


def header(outcome: SweepOutcome) -> list[str]:
    """Column names of the table: "#", the grid keys, then COLUMNS."""
    return ["#", *outcome.keys, *COLUMNS, *([outcome.rank_by] if outcome.rank_by != "dev" else [])]


def to_markdown(outcome: SweepOutcome) -> str:
    """The results as a GitHub Markdown table (losses: mean NLL over whole splits, nats/char)."""
    head = header(outcome)
    numeric = [False] * (1 + len(outcome.keys)) + [True] * 6 + [False] + [True] * (outcome.rank_by != "dev")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(outcome)]
    return "\n".join(lines) + "\n"


def to_csv(outcome: SweepOutcome) -> str:
    """The results as CSV with machine-readable full-precision numbers and the run directory."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    ranked = [outcome.rank_by] if outcome.rank_by != "dev" else []
    w.writerow(["rank", "run", *outcome.keys, "params", "steps", "train_loss", "dev_loss", "gap", "time_s", "status", "run_dir", *ranked])
    for rank, r in enumerate(outcome.results, 1):
        w.writerow([rank, r.name, *(format_value(r.combo[k]) for k in outcome.keys), r.params or "", r.steps or "",
                    *("" if math.isnan(x) else repr(x) for x in (r.train_loss, r.dev_loss, r.gap, r.time_s)),
                    r.status, str(r.run_dir), *(("" if math.isnan(r.quality) else repr(r.quality)) for _ in ranked)])
    return buf.getvalue()


def write_results(outcome: SweepOutcome) -> None:
    """Write out/results.csv and out/results.md atomically."""
    runs.atomic_write_text(outcome.out / RESULTS_CSV, to_csv(outcome))
    note = f"\n_Sweep interrupted: {len(outcome.results)} run(s) listed._\n" if outcome.interrupted else ""
    runs.atomic_write_text(outcome.out / RESULTS_MD, to_markdown(outcome) + note)
