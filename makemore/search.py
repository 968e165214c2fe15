"""Sweeps on Optuna: a grid, random or TPE search whose trials live in a study that any number of
worker processes, on one machine or many, share through a database.

    makemore sweep --config C --grid train.lr=0.1,0.03 --jobs 2             # a grid, 2 workers here
    makemore sweep --config C --search tpe --trials 40 --space train.lr=log:1e-3:0.3 --prune
    makemore sweep ... --storage postgresql://host/db --study names        # on every machine

Every trial is a normal training run (makemore.training) into OUT/<run name>/, and the study keeps
what the results table needs (losses, steps, time, parameters) in each trial's user attributes,
so OUT/results.csv and results.md are gathered from the study, whichever worker ran a trial.

- grid: the process that creates the study puts one trial per combination in the study's queue
  (Optuna's enqueue_trial); workers pop them (a pop is one database transaction, so no
  combination is run twice) until the queue is empty.
- random, tpe: Optuna's RandomSampler or TPESampler (Bergstra et al. 2011) suggests the values
  of the --space dimensions, until the study holds --trials trials.
- --prune: each evaluation's dev loss is reported to the trial, and Optuna's MedianPruner stops
  a trial whose dev loss is worse than the median of earlier trials at the same step.

A run interrupted by Ctrl-C or SIGTERM goes back into the queue and is resumed from its
checkpoint by the next worker; a worker killed outright stops sending its heartbeat, and after
GRACE_S its trial is put back in the queue the same way (Optuna's RetryHeartbeatStaleTrialCallback).
Optuna is an optional extra (pip install 'makemore[sweep]'); without it `makemore sweep` runs a
grid one run after another in one process (makemore.sweep), as before.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import multiprocessing
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from makemore.config import Config, parse_override
from makemore.errors import MakemoreError, first_line
from makemore.prepare import check
from makemore.sweep import (Announce, Result, SweepOutcome, check_rank_by, longest_words, parse_grid, plan, rank_results, result_of, run_name,
                            run_sweep, run_trial, split_values, write_results)
from makemore.training import Listener, TrainingInterrupted

SEARCHES = ("grid", "random", "tpe")
#: The study's SQLite file in the sweep directory, when no --storage is given.
STUDY_DB = "study.db"
#: Seconds between a running trial's heartbeats, and without one before its trial is retried.
HEARTBEAT_S = 20
GRACE_S = 60
#: Trials that must finish before the median pruner prunes anything.
PRUNE_AFTER = 2


def require_optuna(why: str) -> None:
    """Raises MakemoreError (one line naming the extra) when Optuna is not installed."""
    if importlib.util.find_spec("optuna") is None:
        raise MakemoreError(f"{why} needs Optuna: pip install 'makemore[sweep]'")


@dataclass(frozen=True)
class Dimension:
    """One --space dimension: a range of numbers or a list of choices for a config key."""

    key: str
    kind: str
    """"log" (float, log-uniform), "float" (uniform), "int" (uniform integers) or "choice"."""
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()

    def suggest(self, trial: Any) -> Any:
        """The value Optuna's sampler suggests for this dimension in `trial`."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")


def parse_space(items: list[str] | tuple[str, ...]) -> list[Dimension]:
    """Parse `--space` items: section.key=log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH or v1,v2,...
    (choices, read as TOML like --set).

    Raises:
        MakemoreError: no "=", a malformed range, LOW >= HIGH (or <= 0 for log), a key given twice.
    """
    dims: list[Dimension] = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        example = "e.g. --space train.lr=log:1e-4:1e-1, --space model.n_hidden=int:64:1024 or --space model.type=mlp,bigram"
        if not sep or not key or not text.strip():
            raise MakemoreError(f"--space {item!r}: expected section.key=RANGE or section.key=v1,v2,...; {example}")
        if any(d.key == key for d in dims):
            raise MakemoreError(f"--space {key}: given twice")
        kind, _, bounds = text.strip().partition(":")
        if kind in ("log", "float", "int") and bounds:
            low_text, _, high_text = bounds.partition(":")
            try:
                low, high = (int(low_text), int(high_text)) if kind == "int" else (float(low_text), float(high_text))
            except ValueError:
                raise MakemoreError(f"--space {item!r}: {kind}:LOW:HIGH needs two {'integers' if kind == 'int' else 'numbers'}; {example}") from None
            if not low < high or (kind == "log" and low <= 0):
                raise MakemoreError(f"--space {item!r}: needs LOW < HIGH{' and LOW > 0 on a log scale' if kind == 'log' else ''}")
            dims.append(Dimension(key, kind, low, high))
            continue
        choices = tuple(parse_override(f"{key}={t}")[1] for t in split_values(text))
        if any(isinstance(c, (list, dict)) for c in choices):
            raise MakemoreError(f"--space {item!r}: choices must be single values (lists only in --grid with --search grid)")
        dims.append(Dimension(key, "choice", choices=choices))
    return dims


def check_space(base: Config, space: list[Dimension]) -> None:
    """Refuse a space whose ends or choices make an invalid config, before anything runs. (A point
    inside the space that clashes with another dimension, e.g. an n_embd that n_head does not
    divide, is found when it is drawn: that trial is listed as invalid and the search goes on.)

    Raises:
        MakemoreError: an unknown key, a value of the wrong type or out of range, a model or
            backend that cannot train it.
    """
    for d in space:
        for value in d.choices or (d.low, d.high):
            cfg = copy.deepcopy(base)
            cfg.set(d.key, value, source="--space")
            cfg.validate(f"--space {d.key}={value}")
            try:
                check(cfg)
            except MakemoreError as e:
                raise MakemoreError(f"--space {d.key}={value}: {e}") from None


@dataclass
class Search:
    """What a study searches, and how; the same in every worker of a study."""

    base: Config
    out: Path
    search: str
    grid: list[tuple[str, list[Any]]]
    space: list[Dimension]
    trials: int
    """Trials of a random or TPE search (a grid has one per combination)."""
    prune: bool
    storage: str
    study_name: str
    seed: int | None = None
    """Seed of the random/TPE sampler (worker i of --jobs uses seed + i): with one worker, the same
    seed draws the same trials. None: Optuna seeds it afresh."""

    @property
    def keys(self) -> list[str]:
        return [k for k, _ in self.grid] if self.search == "grid" else [d.key for d in self.space]

    def fingerprint(self) -> str:
        """What a worker must agree on to join the study: base config, search and its space."""
        space = [[d.key, d.kind, d.low, d.high, list(d.choices)] for d in self.space]
        return json.dumps({"base": self.base.to_toml(), "search": self.search, "grid": self.grid, "space": space, "prune": self.prune})


def default_storage(out: Path) -> str:
    """The SQLite database in the sweep directory: embedded, nothing to start."""
    return f"sqlite:///{(out / STUDY_DB).resolve()}"


def _storage(url: str) -> Any:
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental" in Optuna 5
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None  # wait for a busy SQLite file
    attempts = 0
    while True:
        try:
            return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=None))
        except (ImportError, ModuleNotFoundError) as e:  # e.g. no PostgreSQL driver installed
            raise MakemoreError(f"--storage {url}: {e}") from None
        except Exception as e:  # noqa: BLE001 - SQLAlchemy's errors, e.g. two workers creating the tables at once
            attempts += 1
            if attempts == 3:
                raise MakemoreError(f"--storage {url}: cannot open the database ({first_line(e)})") from None
            time.sleep(attempts)


def open_study(s: Search, timeout: float = 60.0, worker: int = 0) -> Any:
    """Create the study in its storage, or join it if another worker created it first.

    The creator records the search's fingerprint and, for a grid, queues one trial per
    combination; a joining worker waits (up to `timeout` s) until that is done.

    Raises:
        MakemoreError: the study exists for another base config or search, or the storage cannot be used.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the sweep reports its runs itself
    storage = _storage(s.storage)
    seed = None if s.seed is None else s.seed + worker
    sampler = optuna.samplers.TPESampler(seed=seed) if s.search == "tpe" else optuna.samplers.RandomSampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER) if s.prune else optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(storage=storage, study_name=s.study_name, direction="minimize", sampler=sampler, pruner=pruner)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=s.study_name, storage=storage, sampler=sampler, pruner=pruner)
        deadline = time.monotonic() + timeout
        while "makemore" not in study.user_attrs and time.monotonic() < deadline:
            time.sleep(0.2)
        if study.user_attrs.get("makemore") != s.fingerprint():
            raise MakemoreError(
                f"study {s.study_name!r} in {s.storage} holds a search with another base config, search or space; "
                "give this one its own --study (or --out)"
            ) from None
        return study
    if s.search == "grid":
        for p in plan(s.base, s.grid, s.out):
            study.enqueue_trial({}, user_attrs={"combo": p.combo, "run": p.run_dir.name})
    study.set_user_attr("makemore", s.fingerprint())  # last: joining workers wait for it
    return study


class _Reporter(Listener):
    """Passes a run's progress on to `inner`, and reports each dev loss to the Optuna trial,
    raising optuna.TrialPruned when the pruner says the trial is not worth finishing."""

    def __init__(self, trial: Any, inner: Listener):
        self.trial, self.inner = trial, inner

    def started(self, run_dir: Path, step: int, steps: int, resumed: bool) -> None:
        self.inner.started(run_dir, step, steps, resumed)

    def fitted(self, steps: int) -> None:
        self.inner.fitted(steps)

    def record(self, record: Any, steps_per_s: float) -> None:
        self.inner.record(record, steps_per_s)
        if record.dev_loss is not None:
            self.trial.report(record.dev_loss, record.step)
            if self.trial.should_prune():
                import optuna

                raise optuna.TrialPruned(f"dev loss {record.dev_loss:.4f} at step {record.step}")

    def ended(self) -> None:
        self.inner.ended()


class _Surplus(Exception):
    """The study has all its trials: this one was asked for in a race with another worker."""


class _Invalid(Exception):
    """The drawn point makes a config the model or backend refuses: the trial fails, the search goes on."""


class _Diverged(Exception):
    """The trial's run diverged: the trial fails (recorded as "diverged"), the search goes on."""


def _started(study: Any, but: int) -> int:
    """Runs the study has started, finished or not (an interrupted run and its retry count once)."""
    import optuna

    names = {t.user_attrs["run"] for t in study.get_trials(deepcopy=False)
             if t.number != but and "run" in t.user_attrs and t.state != optuna.trial.TrialState.WAITING}
    return len(names)


def _keep(trial: Any, result: Result) -> float:
    """Keep what the results table needs in the trial's user attributes (so that any worker can
    tabulate it); return the dev loss (of the whole split, or the last evaluated one of a pruned run)."""
    for name in ("status", "params", "steps", "train_loss", "dev_loss", "time_s"):
        trial.set_user_attr(name, getattr(result, name))
    return result.dev_loss


class _Objective:
    """One trial of a study as Optuna calls it: take the queued combination (grid) or draw one
    (random, tpe), plan it, and run it through the sweep engine's `run_trial`."""

    def __init__(self, s: Search, study: Any, announce: Announce | None, listener: Listener):
        self.s, self.study, self.announce, self.listener = s, study, announce, listener
        self.total = len(plan(s.base, s.grid, s.out)) if s.search == "grid" else s.trials

    def _combo(self, trial: Any) -> tuple[dict[str, Any], str]:
        """The trial's values and run name: a retried run's own, the grid's queued ones, or drawn."""
        s, retry = self.s, trial.user_attrs.get("run")
        if s.search == "grid":
            if "combo" not in trial.user_attrs:
                raise _Surplus()
            combo = trial.user_attrs["combo"]
        else:
            if retry is None and _started(self.study, trial.number) >= s.trials:
                raise _Surplus()
            combo = {d.key: d.suggest(trial) for d in s.space}
        name = retry or (run_name(combo) if s.search == "grid" else f"{trial.number:03d}-{run_name(combo)}")
        trial.set_user_attr("combo", combo)
        trial.set_user_attr("run", name)
        return combo, name

    def __call__(self, trial: Any) -> float:
        import optuna

        combo, name = self._combo(trial)
        try:
            [p] = plan(self.s.base, [(k, [v]) for k, v in combo.items()], self.s.out)
        except MakemoreError as e:  # a point that clashes with another dimension: tell the sampler, go on
            trial.set_user_attr("status", "invalid")
            raise _Invalid(str(e)) from None
        p.run_dir = self.s.out / name
        position = min(_started(self.study, trial.number) + 1, self.total)
        try:
            result = run_trial(p, position, self.total, self.announce, _Reporter(trial, self.listener))
        except optuna.TrialPruned:
            _keep(trial, result_of(p, "pruned"))
            raise
        except (TrainingInterrupted, KeyboardInterrupt):
            trial.set_user_attr("status", "interrupted")
            self.study.enqueue_trial(trial.params, user_attrs={"combo": combo, "run": name})  # the next worker resumes it
            raise
        if result.status == "diverged":
            trial.set_user_attr("status", "diverged")
            raise _Diverged(name)
        return _keep(trial, result)


def work(s: Search, announce: Announce | None = None, listener: Listener | None = None, worker: int = 0) -> None:
    """One worker: take the study's trials one after another until none is left (grid) or the
    study holds s.trials of them (random, tpe). Returns on Ctrl-C/SIGTERM after re-queueing the
    interrupted run (TrainingInterrupted is re-raised).

    Raises:
        MakemoreError: as open_study; a run directory holding a different config.
        TrainingInterrupted: Ctrl-C or SIGTERM stopped the current run (it is queued again).
    """
    import optuna

    study = open_study(s, worker=worker)

    def done(study: optuna.Study) -> bool:
        if study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
            return False
        return s.search == "grid" or _started(study, -1) >= s.trials

    def stop_when_done(study: optuna.Study, trial: Any) -> None:
        if done(study):
            study.stop()

    optuna.storages.fail_stale_trials(study)  # a dead worker's run left alone is queued again, not left "running"
    if not done(study):
        study.optimize(_Objective(s, study, announce, listener or Listener()), callbacks=[stop_when_done],
                       catch=(_Diverged, _Surplus, _Invalid), gc_after_trial=False)


def gather(s: Search) -> SweepOutcome:
    """The results table from the study: one row per run (its latest trial), best dev loss first.
    Status: trained, pruned, diverged, invalid (a drawn point the model refuses), interrupted (queued
    to resume) or running (in another worker)."""
    import optuna

    study = optuna.load_study(study_name=s.study_name, storage=_storage(s.storage))
    latest: dict[str, Any] = {}
    for t in study.get_trials(deepcopy=False):
        if "run" in t.user_attrs and t.state != optuna.trial.TrialState.WAITING:
            latest[t.user_attrs["run"]] = t  # trials come in order of their number: the last one wins
    total = len(plan(s.base, s.grid, s.out)) if s.search == "grid" else s.trials
    outcome = SweepOutcome(s.out, s.keys, total)
    for name, t in latest.items():
        a = t.user_attrs
        status = "running" if t.state == optuna.trial.TrialState.RUNNING else a.get("status", "failed")
        outcome.results.append(Result(name, a["combo"], s.out / name, status, a.get("params"), a.get("steps"),
                                      float(a.get("train_loss", math.nan)), float(a.get("dev_loss", math.nan)),
                                      float(a.get("time_s", math.nan))))
    outcome.results.sort(key=lambda r: (r.status not in ("trained", "skipped"), math.isnan(r.dev_loss), r.dev_loss))
    return outcome


def _child(s: Search, worker: int) -> None:
    """A --jobs worker process: work quietly; an interruption is already re-queued."""
    try:
        work(s, worker=worker)
    except (TrainingInterrupted, KeyboardInterrupt):
        pass


def run_search(s: Search, *, jobs: int = 1, announce: Announce | None = None,
               listener: Listener | None = None) -> SweepOutcome:
    """Run a sweep on Optuna with `jobs` workers on this machine (this process and jobs − 1
    more), then write OUT/results.csv and results.md from the study and return the table.

    Raises:
        MakemoreError: Optuna missing, a bad grid, space, model or data (before anything runs),
            a study of another search under the same name.
    """
    require_optuna(f"--search {s.search}" if s.search != "grid" else "a sweep with --storage, --study, --jobs or --prune")
    if s.search == "grid":
        if s.space:
            raise MakemoreError("--space is for --search random or tpe; a grid search takes --grid")
        checked = [p.checked for p in plan(s.base, s.grid, s.out)]
    else:
        if s.grid:
            raise MakemoreError(f"--grid is for --search grid; give --search {s.search} ranges or choices with --space")
        if not s.space:
            raise MakemoreError(f"--search {s.search} needs at least one --space, e.g. --space train.lr=log:1e-3:0.3")
        check_space(s.base, s.space)
        checked = [check(s.base)]
    longest_words(checked)  # bad data, or a word too long for a sequence model, fails here, before the sweep creates anything
    s.out.mkdir(parents=True, exist_ok=True)
    open_study(s)  # created (and a grid queued) before any helper starts
    ctx = multiprocessing.get_context("spawn")
    helpers = [ctx.Process(target=_child, args=(s, i), daemon=False) for i in range(1, jobs)]
    for h in helpers:
        h.start()
    interrupted, exit_code = False, 130
    try:
        work(s, announce, listener)
    except (TrainingInterrupted, KeyboardInterrupt) as e:
        interrupted, exit_code = True, getattr(e, "exit_code", 130)
        if isinstance(e, TrainingInterrupted) and e.signum != signal.SIGINT:
            for h in helpers:  # a scheduler's SIGTERM reached this process only: pass it on
                h.terminate()
    finally:
        for h in helpers:
            h.join()
    outcome = gather(s)
    outcome.interrupted, outcome.exit_code = interrupted, exit_code
    write_results(outcome)
    return outcome


def sweep(base: Config, out: Path, grid: list[str], *, search: str = "grid", trials: int | None = None, space: list[str] = (),
          prune: bool = False, storage: str | None = None, study: str | None = None, jobs: int = 1, seed: int | None = None,
          announce: Announce | None = None, listener: Listener | None = None, rank_by: str = "dev",
          samples: int = 1000) -> SweepOutcome:
    """`makemore sweep`: a plain grid in this process (makemore.sweep.run_sweep), or on an Optuna
    study when the search, --prune, --storage, --study or --jobs ask for one (`run_search`).

    Args:
        grid, space: the --grid and --space items as typed. trials: of a random/TPE search (default 20).
        rank_by, samples: the table's order, "dev" or a sample-quality metric measured on `samples`
            samples of each run (makemore.sweep.rank_results); the study itself still minimises dev loss.
        The others as `Search` and `run_search` take them.

    Raises:
        MakemoreError: an unknown search, --trials or --space with a grid, and what the engines raise.
    """
    if search not in SEARCHES:
        raise MakemoreError(f"--search {search!r}: choose grid, random or tpe")
    if search == "grid" and (trials is not None or space):
        raise MakemoreError("a grid search trains every --grid combination: --trials and --space are for --search random or tpe")
    check_rank_by(rank_by)
    parsed = parse_grid(grid)
    if search == "grid" and not (prune or storage or study or jobs > 1):
        outcome = run_sweep(base, parsed, out, announce=announce, listener=listener)
    else:
        s = Search(base, out, search, parsed, parse_space(space), trials or 20, prune,
                   storage or default_storage(out), study or out.resolve().name, seed)
        outcome = run_search(s, jobs=jobs, announce=announce, listener=listener)
    if rank_by != "dev":
        write_results(rank_results(outcome, rank_by, samples))
    return outcome
