"""The one training driver: minibatches, learning-rate schedule, evaluation, checkpoints, progress.

Every model family and backend is trained by `train`: a backend only takes steps (or, for the
counting bigram, fits in one pass) and exports its state (makemore.backends). The loop is the
lecture's:

    for step in range(steps):
        ix = random minibatch indices            # (B,)
        loss = forward(Xtr[ix], Ytr[ix])         # mean NLL, nats/char
        backward; p -= lr_at(step) * grad

Minibatches are drawn by a generator seeded from (train.seed, chunk number), a chunk of steps at
a time, so the batch of any step can be recomputed from the step alone: a resumed run sees
exactly the batches an uninterrupted one would. Progress is reported to a `Listener`; drawing
it is the command line's business.

Under torchrun the same loop runs in W processes (makemore.distributed): each takes its B/W rows
of every minibatch, DistributedDataParallel averages their gradients, and rank 0 alone writes
the run directory and reports progress.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from makemore import distributed, runs, tensorboard_log
from makemore.backends import make_backend
from makemore.backends.base import Backend
from makemore.config import Config, TrainConfig
from makemore.data import View, Vocab
from makemore.errors import MakemoreError, first_line
from makemore.plots import plot_loss
from makemore.prepare import Checked, Prepared, check, read_data
from makemore.schedule import fit_steps, lr_at
from makemore.stats import is_recorded

#: A time budget's steps are timed over this share of it (at most FIT_SPAN_MAX_S seconds) before they are fixed.
FIT_SPAN = 0.02
FIT_SPAN_MAX_S = 5.0

#: Minibatch indices are drawn for about this many windows at a time (a chunk of steps).
CHUNK_WINDOWS = 65_536


class TrainingInterrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM stopped training; a checkpoint of the last completed step was written."""

    def __init__(self, run_dir: Path, step: int, signum: int = signal.SIGINT):
        super().__init__(f"interrupted at step {step}")
        self.run_dir, self.step, self.signum = run_dir, step, int(signum)

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process the signal ended: 130 for Ctrl-C, 143 for SIGTERM."""
        return 128 + self.signum


class TrainingDiverged(MakemoreError):
    """The training loss became non-finite; the last good checkpoint is kept."""


def steps_per_chunk(batch_size: int) -> int:
    """How many steps' minibatches are drawn at once (a function of batch_size only, so fixed for a run)."""
    return max(1, CHUNK_WINDOWS // batch_size)


def chunk_indices(seed: int, chunk: int, n: int, batch_size: int) -> np.ndarray:
    """Minibatch indices of every step of chunk number `chunk`: int64 (steps_per_chunk, batch_size) in [0, n).

    Drawn by np.random.default_rng([seed, chunk]), so they depend on nothing but their arguments.
    """
    rng = np.random.default_rng([seed, chunk])
    return rng.integers(0, n, size=(steps_per_chunk(batch_size), batch_size))


def minibatches(backend: Any, t: TrainConfig, view: View, start: int, stop: int,
                rows: slice = slice(None)) -> Iterator[tuple[Any, ...]]:
    """The minibatches of steps start..stop-1 as (X, Y) in the backend's arrays (windows: X (B,
    block_size), Y (B,)), or (X, Y, L) on labelled data (L (B,) the label ids), or only their
    `rows` (one process's share, see makemore.distributed).

    Indices come from `chunk_indices`, a chunk of steps at a time, gathered from `view` in bulk:
    the batch of a step is the same however the run got there (from step 0, or resumed mid-chunk).
    """
    per_chunk = steps_per_chunk(t.batch_size)
    step = start
    while step < stop:
        chunk, offset = divmod(step, per_chunk)
        ix = chunk_indices(t.seed, chunk, len(view), t.batch_size)[offset : offset + stop - step, rows]  # (k, B) or (k, B/W)
        for batch in view.batches(ix):  # (X, Y) or (X, Y, L)
            yield tuple(backend.asarray(a) for a in batch)
        step += len(ix)


@dataclass
class Record:
    """One line of metrics.jsonl."""

    step: int
    train_loss: float
    """Mean minibatch NLL (nats/char) over the steps since the previous record."""
    dev_loss: float | None
    """Mean NLL of the whole dev split, or None where it was not computed."""
    lr: float
    elapsed_s: float
    """Seconds of training since the run began (across resumes)."""

    def to_dict(self) -> dict[str, Any]:
        """The metrics.jsonl object."""
        return dict(self.__dict__)


@dataclass
class Summary:
    """What `train` returns and writes to summary.json."""

    run_dir: Path
    steps: int
    train_loss: float
    """Whole train split, nats/char."""
    dev_loss: float
    """Whole dev split, nats/char."""
    train_time_s: float
    """Seconds spent in the training loop (steps, periodic evaluation and checkpoints)."""
    steps_per_s: float
    """Steps per second in this session's training loop."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "steps": self.steps, "train_loss": self.train_loss, "dev_loss": self.dev_loss,
                "train_time_s": self.train_time_s, "steps_per_s": self.steps_per_s, **self.extra}


@dataclass
class BestDev:
    """The early-stopping record of a run (train.patience): the best whole-dev NLL so far, the step
    it was reached at, and how many evaluations in a row since have not improved it. Stored in
    every checkpoint ("best"), so a resumed run stops exactly where an uninterrupted one would."""

    dev_loss: float = math.inf
    step: int = -1
    evals_since: int = 0

    @classmethod
    def of(cls, checkpoint: dict[str, Any] | None) -> BestDev:
        """The record a checkpoint holds; a fresh one for a new run or one made before issue 25."""
        stored = (checkpoint or {}).get("best")
        return cls(float(stored["dev_loss"]), int(stored["step"]), int(stored["evals_since"])) if stored else cls()

    def update(self, step: int, dev_loss: float) -> bool:
        """Count the evaluation of `step`; True when it is a new best (strictly lower dev NLL)."""
        if dev_loss < self.dev_loss:
            self.dev_loss, self.step, self.evals_since = dev_loss, step, 0
            return True
        self.evals_since += 1
        return False

    def exhausted(self, patience: int) -> bool:
        """Whether early stopping with `patience` evaluations (0: off) stops the run now."""
        return patience > 0 and self.evals_since >= patience

    def to_dict(self) -> dict[str, Any]:
        return {"dev_loss": self.dev_loss, "step": self.step, "evals_since": self.evals_since}


class _InterruptFlag:
    """While active, the first Ctrl-C (SIGINT) or SIGTERM only records its signal number, which
    the loop checks between steps; a second one (or any outside the main thread) behaves as
    usual, unless `persistent`: under torchrun, which forwards a Ctrl-C the worker also got from
    the terminal, and ends a worker that does not stop in time itself."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, persistent: bool = False) -> None:
        self.signum = 0
        self.persistent = persistent
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _stop_now(self, signum: int) -> Any:
        """What a second signal does: the handler the process had, if it was a Python one;
        otherwise stop at once (KeyboardInterrupt for SIGINT, the default action for SIGTERM),
        even in a process that started with the signal ignored (a background job): having
        answered the first signal, the second one must not be ignored."""
        previous = self._previous.get(signum)
        if callable(previous):
            return previous
        return signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = self.signum or signum
        if not self.persistent:
            signal.signal(signum, self._stop_now(signum))

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():  # exactly the handlers the process had
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)


class Listener:
    """Hears how a training run goes; this one ignores everything. The command line subclasses it
    to draw a progress bar; a sweep passes one to every run."""

    def started(self, run_dir: Path, step: int, steps: int, resumed: bool) -> None:
        """Training of run_dir begins at `step` of `steps` (0 of 0 for a run fitted in one pass)."""

    def record(self, record: Record, steps_per_s: float) -> None:
        """A metrics record was written; steps_per_s is this session's speed so far."""

    def fitted(self, steps: int) -> None:
        """A time budget (train.time_budget_s) fixed the run's length at `steps` steps."""

    def ended(self) -> None:
        """The training loop stopped (finished, interrupted or failed)."""


def train(cfg: Config, run_dir: str | Path, *, resume: bool = False, listener: Listener | None = None,
          checkpoint: dict[str, Any] | None = None) -> Summary:
    """Train a model as `cfg` says, writing everything into `run_dir` (see makemore.runs).

    The one driver for every model family and backend: `cfg` is checked once
    (makemore.prepare.check) and handed to `train_checked`. Gradient backends take
    cfg.train.steps minibatch steps; a family fitted by counting (the bigram) is fitted in one pass
    instead. Either way the run gets the same files: config (train.backend as resolved),
    vocabulary, metrics, checkpoint, summary, loss curve, and with train.tensorboard TensorBoard
    event files.

    Started by torchrun (makemore.distributed), every process calls this: they train one model
    together, rank 0's run_dir is the run directory, and only rank 0 writes it and tells `listener`.

    Args:
        cfg: a validated Config.
        run_dir: a new directory (created here), or an existing run when `resume` is True.
        resume: continue `run_dir` from its checkpoint: parameters, optimizer, schedule position
            and generator state, so the result equals an uninterrupted run's exactly.
        listener: told when the run starts and of every metrics record (the command line draws
            a progress bar from these); None: nobody listens.
        checkpoint: run_dir's checkpoint when the caller has read it already (resume only).

    Returns:
        The Summary: whole-split train and dev NLL (nats/char) and timings.

    Raises:
        MakemoreError: bad data, device or model/backend combination, a checkpoint that does not
            fit, a finished run, a setting torchrun cannot split, another process of the job failing.
        TrainingDiverged: the loss became non-finite (the last good checkpoint is kept).
        TrainingInterrupted: Ctrl-C or SIGTERM; a checkpoint of the last completed step was written.
    """
    world = distributed.launched()
    with distributed.said_once(world):  # these read only the config and this machine: the same on every rank
        checked = check(cfg, world)
    return train_checked(checked, run_dir, resume=resume, listener=listener, checkpoint=checkpoint)


def train_checked(checked: Checked, run_dir: str | Path, *, resume: bool = False, listener: Listener | None = None,
                  checkpoint: dict[str, Any] | None = None, plot: bool | None = None) -> Summary:
    """`train` for a config already checked (makemore.prepare.check): what sweeps, searches and
    the command line call once they have checked their configs. Arguments and errors as `train`;
    plot: draw loss.png at the end (default train.plot; the command line passes False and draws
    it with `draw_loss` after printing the result)."""
    plot = checked.cfg.train.plot if plot is None else plot
    world = checked.world
    listener = (listener or Listener()) if world.is_main else Listener()
    if checked.cfg.train.tensorboard and world.is_main:
        listener = tensorboard_log.TensorBoardLog(listener)
    fresh = not resume and not Path(run_dir).exists()
    try:
        with distributed.process_group(world, checked.device):
            run_dir = Path(world.broadcast(str(run_dir)))
            with world.agreeing():  # a mistake found by any process stops all of them; rank 0 says it
                checkpoint = _open_run(checked, run_dir, resume, checkpoint)
                prepared = read_data(checked, *_run_alphabet(checkpoint))
                backend = _backend(prepared, run_dir, checkpoint)
            if world.is_main:
                _start_files(prepared, run_dir, checkpoint)
            summary = (_fit_in_one_pass(prepared, backend, run_dir, listener) if not backend.takes_steps
                       else _Loop(prepared, backend, run_dir, checkpoint, listener).run())
        if plot and world.is_main:
            draw_loss(run_dir)
        return summary
    except BaseException:
        if fresh and world.is_main:  # a new run that failed before its first checkpoint leaves nothing behind
            runs.discard_unstarted(run_dir)
        raise


def _run_alphabet(checkpoint: dict[str, Any] | None) -> tuple[Vocab | None, tuple[str, ...] | None]:
    """A resumed run's (vocabulary, label set or None) that its words file must fit; (None, None) for a new run."""
    if not checkpoint:
        return None, None
    labels = checkpoint.get("labels")
    return Vocab(tuple(checkpoint["vocab"])), None if labels is None else tuple(labels)


def _open_run(checked: Checked, run_dir: Path, resume: bool, checkpoint: dict[str, Any] | None) -> dict[str, Any] | None:
    """The checkpoint to resume from (None for a new run), after the checks a run directory needs.

    Raises:
        MakemoreError: a new run into an existing directory; a resumed run that was fitted in one
            pass or has already finished; a missing or unreadable checkpoint.
    """
    if not resume:
        if run_dir.exists():
            raise MakemoreError(f"{run_dir} already exists: choose a new run directory, or continue it with makemore train --resume {run_dir}")
        return None
    checkpoint = checkpoint if checkpoint is not None else runs.load_checkpoint(run_dir)
    if checked.family.counted:
        raise MakemoreError(f"{run_dir}: a model.type = {checked.family.name!r} run is fitted in one pass: there is nothing to resume")
    if checkpoint["step"] >= _steps_of(checked.cfg.train, checkpoint):
        raise MakemoreError(f"{run_dir}: this run already finished at step {checkpoint['step']}; "
                            f"to train longer: makemore train --resume {run_dir} --set train.steps=N")
    patience = checked.cfg.train.patience
    if BestDev.of(checkpoint).exhausted(patience):
        raise MakemoreError(f"{run_dir}: this run stopped early at step {checkpoint['step']} (train.patience = {patience} evaluations "
                            f"without a better dev loss); to train on: makemore train --resume {run_dir} --set train.patience=N (N > {patience}, or 0)")
    return checkpoint


def _fitted_of(t: TrainConfig, checkpoint: dict[str, Any] | None) -> int | None:
    """The step count a run's time budget fixed, kept in its checkpoint; None before the fit, or
    when the run is resumed with train.time_budget_s = 0 (it goes back to train.steps)."""
    fitted = (checkpoint or {}).get("fitted_steps")
    return int(fitted) if fitted is not None and t.time_budget_s > 0 else None


def _steps_of(t: TrainConfig, checkpoint: dict[str, Any] | None) -> int:
    """The steps a run takes in all: the count its time budget fixed, else train.steps."""
    return _fitted_of(t, checkpoint) or t.steps


def _backend(prepared: Prepared, run_dir: Path, checkpoint: dict[str, Any] | None) -> Backend:
    """A fresh backend for the prepared run, restored from `checkpoint` when resuming.

    Raises:
        MakemoreError: the checkpoint does not fit the config (a changed model, block_size or backend).
    """
    cfg = prepared.cfg
    backend = make_backend(cfg, prepared.family, prepared.vocab.vocab_size, prepared.device, prepared.block_size, prepared.n_labels)
    if checkpoint:
        try:
            backend.load(checkpoint["model"], checkpoint.get("backend_state"))
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
            raise MakemoreError(
                f"{run_dir}: the checkpoint does not fit this config ({first_line(e)}); "
                "resume without --set for model, data.block_size or train.backend/optimizer keys"
            ) from None
    return backend


def _start_files(prepared: Prepared, run_dir: Path, checkpoint: dict[str, Any] | None) -> None:
    """Rank 0: create the run directory (config with the backend as resolved, vocabulary), or
    cut a resumed run's metrics back to its checkpoint and remove temporaries a killed write left."""
    if checkpoint is None:
        runs.create_run(run_dir, prepared.cfg.to_toml(), list(prepared.vocab.itos), prepared.dataset.labels)
    else:
        runs.truncate_metrics(run_dir, int(checkpoint["step"]))
        runs.remove_temporaries(run_dir)


def _save(prepared: Prepared, backend: Backend, run_dir: Path, step: int, elapsed: float, best: BestDev | None = None,
          is_best: bool = False, fitted_steps: int | None = None) -> None:
    """Write the checkpoint of `step` (exporting the state is collective under torchrun: every rank
    calls this), with the early-stopping record `best` and the step count a time budget fixed;
    when `is_best`, also as the best-dev checkpoint, written first, so the last checkpoint never
    names a best one that is not there."""
    checkpoint = runs.make_checkpoint(
        params=backend.export_params(), config=prepared.cfg.to_dict(), itos=list(prepared.vocab.itos), step=step,
        backend=backend.name, backend_state=backend.export_state(), elapsed_s=elapsed, provenance=prepared.provenance,
        best=None if best is None else best.to_dict(), fitted_steps=fitted_steps)
    if prepared.world.is_main:
        if is_best:
            runs.save_best_checkpoint(run_dir, checkpoint)
        runs.save_checkpoint(run_dir, checkpoint)


def _fit_in_one_pass(prepared: Prepared, backend: Backend, run_dir: Path, listener: Listener) -> Summary:
    """A family fitted by counting: one pass over the train split is the run's one step."""
    listener.started(run_dir, 0, 0, resumed=False)
    t0 = time.perf_counter()
    train_view, dev_view = prepared.view("train"), prepared.view("dev")
    backend.fit(train_view)
    train_loss, dev_loss = backend.mean_loss(train_view), backend.mean_loss(dev_view)
    elapsed = time.perf_counter() - t0
    _save(prepared, backend, run_dir, 0, elapsed)
    record = Record(0, train_loss, dev_loss, 0.0, round(elapsed, 4))
    log = runs.MetricsLog(run_dir)
    log.write(record.to_dict())
    log.close()
    listener.record(record, 0.0)
    listener.ended()
    return finish(run_dir, Summary(run_dir, 0, train_loss, dev_loss, elapsed, 0.0, {"backend": backend.name, **backend.summary_extra}))


class _Loop:
    """The minibatch loop of one gradient-trained run: steps, records, evaluations, checkpoints,
    divergence and signals. Built once per run by `train_checked`; `run` trains to train.steps."""

    def __init__(self, prepared: Prepared, backend: Backend, run_dir: Path, checkpoint: dict[str, Any] | None, listener: Listener):
        self.p, self.backend, self.run_dir, self.listener = prepared, backend, run_dir, listener
        self.start = int(checkpoint["step"]) if checkpoint else 0
        self.elapsed0 = float(checkpoint["elapsed_s"]) if checkpoint else 0.0
        self.resumed = checkpoint is not None
        self.train_view, self.dev_view = prepared.view("train"), prepared.view("dev")
        self.running, self.count, self.last_dev = 0.0, 0, math.nan
        self.t_start = 0.0
        self.best = BestDev.of(checkpoint)
        t = prepared.cfg.train
        self.fitted = _fitted_of(t, checkpoint)
        self.t = replace(t, steps=self.fitted) if self.fitted else t  # [train] as followed: steps as a time budget fixed them
        self.fit_mark: tuple[int, float, float] | None = None  # a budget's first record: (step, clock after it, evaluation s)

    def run(self) -> Summary:
        """Train from the start step to train.steps; the Summary of the whole splits.

        Raises:
            TrainingDiverged, TrainingInterrupted: as `train`.
        """
        t, world = self.t, self.p.world
        self.listener.started(self.run_dir, self.start, t.steps, resumed=self.resumed)
        self.log = runs.MetricsLog(self.run_dir) if world.is_main else None
        # lecture part 3's statistics; under torchrun rank 0's (its rows' activations, the all-reduced gradients)
        self.stats_log = runs.StatsLog(self.run_dir, self.start) if t.stats_interval and world.is_main else None
        self.t_start = time.perf_counter()
        try:
            with _InterruptFlag(persistent=distributed.under_launcher()) as interrupted, self.backend.threads():
                step = self._steps(interrupted)
                loop_s = time.perf_counter() - self.t_start
                train_loss = self.backend.mean_loss(self.train_view)
        finally:
            for log in (self.log, self.stats_log):
                if log is not None:
                    log.close()
            self.listener.ended()
        early = {"best_step": self.best.step, "best_dev_loss": self.best.dev_loss, "stopped_early": self.best.exhausted(t.patience),
                 **({"fitted_steps": self.fitted} if self.fitted is not None else {})}
        summary = Summary(self.run_dir, step, train_loss, self.last_dev, self.elapsed0 + loop_s,
                          (step - self.start) / max(loop_s, 1e-9), {"backend": self.backend.name, **self.backend.summary_extra, **early})
        return finish(self.run_dir, summary) if world.is_main else summary

    def _steps(self, interrupted: _InterruptFlag) -> int:
        """The loop itself (the lecture's): returns the last step taken."""
        t, world = self.p.cfg.train, self.p.world  # t.steps: the most steps, even with a time budget
        if self.start == 0:
            _save(self.p, self.backend, self.run_dir, 0, 0.0, self.best)
        vote = distributed.StopVote(world)
        step = self.start
        for Xb, Yb, *Lb in minibatches(self.backend, t, self.train_view, self.start, t.steps, world.rows(t.batch_size)):  # (B/W, block_size), (B/W,)[, (B/W,) labels]
            lr = lr_at(step, self.t)
            if self.stats_log is not None and is_recorded(step + 1, t.stats_interval, self.t.steps):
                loss, stats = self.backend.recorded_step(Xb, Yb, lr, *Lb)
                self.stats_log.write({"step": step + 1, "lr": lr, "loss": loss, **stats})
                self.running += loss
            else:
                self.running += self.backend.train_step(Xb, Yb, lr, *Lb)
            self.count += 1
            step += 1
            stop = vote(interrupted.signum)  # read once (every rank the same), so it is raised only after its checkpoint
            self._record(step, lr, stop)
            if self.best.exhausted(t.patience) or step >= self.t.steps:  # early stopping, or the end a time budget fixed
                break
        return step

    def _record(self, step: int, lr: float, stop: int) -> None:
        """After `step`: write a metrics record, evaluate and checkpoint when due; raise on a
        non-finite loss (TrainingDiverged) or, after its checkpoint, on a signal (TrainingInterrupted)."""
        t = self.t
        at_eval = step % t.eval_interval == 0 or step == t.steps
        if not (at_eval or step % t.log_interval == 0 or stop):
            return
        timing = t.time_budget_s > 0 and self.fitted is None and self.fit_mark is None  # a budget's first record: time an evaluation
        at_eval = at_eval or timing
        train_loss = self.p.world.mean(float(self.running) / self.count)
        t_eval = time.perf_counter()
        dev = self.backend.mean_loss(self.dev_view) if at_eval and math.isfinite(train_loss) else None
        if not math.isfinite(train_loss) or (dev is not None and not math.isfinite(dev)):
            raise TrainingDiverged(
                f"training diverged at step {step} (loss {train_loss}); lower train.lr (now {t.lr:g}) "
                f"or find one with makemore lr-find; the last good checkpoint is kept in {self.run_dir}"
            )
        elapsed = self.elapsed0 + time.perf_counter() - self.t_start
        if t.time_budget_s > 0 and self.fitted is None and not timing:
            self._fit(step, elapsed, t_eval)
        record = Record(step, train_loss, dev, lr, round(elapsed, 4))
        if self.log:
            self.log.write(record.to_dict())
        self.running, self.count = 0.0, 0
        if at_eval or stop:
            is_best = dev is not None and self.best.update(step, dev)
            _save(self.p, self.backend, self.run_dir, step, elapsed, self.best, is_best, self.fitted)
            self.last_dev = dev if dev is not None else self.last_dev
        if timing:  # marked after the checkpoint: an evaluation's cost includes its writes, the steps' does not
            now = time.perf_counter()
            self.fit_mark = (step, now, now - t_eval)
        self.listener.record(record, (step - self.start) / max(time.perf_counter() - self.t_start, 1e-9))
        if stop:
            raise TrainingInterrupted(self.run_dir, step, stop)

    def _fit(self, step: int, elapsed: float, now: float) -> None:
        """At a record of a budgeted run after its first, once FIT_SPAN of the budget has passed
        since that one: fix its steps so that the rest fits train.time_budget_s
        (schedule.fit_steps), from the seconds per step between the first record (`fit_mark`:
        step, clock after its checkpoint, its evaluation's and checkpoint's seconds) and `now`,
        the clock at this record before any evaluation (a session's first, slower, steps are left
        out). Every rank takes the same decision and count (their means)."""
        t, world = self.p.cfg.train, self.p.world
        mark_step, mark_clock, eval_s = self.fit_mark
        span = world.mean(now - mark_clock)
        if span < min(FIT_SPAN * t.time_budget_s, FIT_SPAN_MAX_S):
            return
        step_s = span / max(step - mark_step, 1)
        steps = fit_steps(step, step_s, t.time_budget_s - elapsed, eval_s, t.eval_interval, t.steps)
        self.fitted = int(world.mean(float(steps)))
        self.t = replace(t, steps=self.fitted)
        self.listener.fitted(self.fitted)


def finish(run_dir: Path, summary: Summary) -> Summary:
    """Write summary.json of a finished run; return `summary`."""
    runs.write_summary(run_dir, summary.to_dict())
    return summary


def draw_loss(run_dir: str | Path) -> Path:
    """Draw run_dir/loss.png from its metrics (makemore.plots.plot_loss); returns its path."""
    return plot_loss([(Path(run_dir).name, runs.read_metrics(run_dir))], runs.loss_png(run_dir))
