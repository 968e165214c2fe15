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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from makemore import distributed, runs, tensorboard_log
from makemore.backends import check_supported, make_backend, resolve_device
from makemore.config import Config, TrainConfig
from makemore.data import Dataset, View, Vocab, file_digest, load_dataset
from makemore.errors import MakemoreError, first_line
from makemore.models import Family, context_length
from makemore.plots import plot_loss
from makemore.schedule import lr_at
from makemore.stats import is_recorded

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
                rows: slice = slice(None)) -> Iterator[tuple[Any, Any]]:
    """The minibatches of steps start..stop-1 as (X, Y) in the backend's arrays (windows: X (B,
    block_size), Y (B,)), or only their `rows` (one process's share, see makemore.distributed).

    Indices come from `chunk_indices`, a chunk of steps at a time, gathered from `view` in bulk:
    the batch of a step is the same however the run got there (from step 0, or resumed mid-chunk).
    """
    per_chunk = steps_per_chunk(t.batch_size)
    step = start
    while step < stop:
        chunk, offset = divmod(step, per_chunk)
        ix = chunk_indices(t.seed, chunk, len(view), t.batch_size)[offset : offset + stop - step, rows]  # (k, B) or (k, B/W)
        for X, Y in view.batches(ix):
            yield backend.asarray(X), backend.asarray(Y)
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

    def ended(self) -> None:
        """The training loop stopped (finished, interrupted or failed)."""


def prepare(cfg: Config, vocab: Vocab | None = None) -> Dataset:
    """Check cfg's model family and backend, then read and split its data (before any run
    directory exists, so a mistake leaves nothing behind).

    Raises:
        MakemoreError: an unknown model.type, a combination train.backend cannot train, bad data,
            a word too long for a sequence model (data.max_len).
    """
    check_supported(cfg)
    return read_data(cfg, vocab)


def read_data(cfg: Config, vocab: Vocab | None = None) -> Dataset:
    """`prepare` for a config whose family and backend are already checked: read and split its
    data, and refuse a word too long for a sequence model.

    Raises:
        MakemoreError: bad data, a word too long for a sequence model (data.max_len).
    """
    dataset = load_dataset(cfg.data.path, cfg.data.block_size, cfg.data.seed, cfg.data.boundary, vocab)
    context_length(cfg, int(dataset.lengths.max()))  # a sequence model refuses a file with too long a word
    return dataset


def train(cfg: Config, run_dir: str | Path, *, resume: bool = False, listener: Listener | None = None) -> Summary:
    """Train a model as `cfg` says, writing everything into `run_dir` (see makemore.runs).

    The one driver for every model family and backend: gradient backends take cfg.train.steps
    minibatch steps; a family fitted by counting (the bigram) is fitted in one pass instead. Either
    way the run gets the same files: config, vocabulary, metrics, checkpoint, summary, loss curve,
    and with train.tensorboard TensorBoard event files.

    Started by torchrun (makemore.distributed), every process calls this: they train one model
    together, rank 0's run_dir is the run directory, and only rank 0 writes it and tells `listener`.

    Args:
        cfg: a validated Config.
        run_dir: a new directory (created here), or an existing run when `resume` is True.
        resume: continue `run_dir` from its checkpoint: parameters, optimizer, schedule position
            and generator state, so the result equals an uninterrupted run's exactly.
        listener: told when the run starts and of every metrics record (the command line draws
            a progress bar from these); None: nobody listens.

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
        fam = check_supported(cfg)
        device = world.device(resolve_device(cfg))
        distributed.check(world, cfg.train.backend, cfg.train.batch_size, fam.counted)
        if cfg.train.tensorboard:
            tensorboard_log.require()
    listener = (listener or Listener()) if world.is_main else Listener()
    if cfg.train.tensorboard and world.is_main:
        listener = tensorboard_log.TensorBoardLog(listener)
    with distributed.process_group(world, device):
        return _train(cfg, fam, Path(world.broadcast(str(run_dir))), resume, listener, world, device)


def _train(cfg: Config, fam: Family, run_dir: Path, resume: bool, listener: Listener, world: distributed.World, device: str) -> Summary:
    """`train` in one process of the job (the only one, without torchrun), for cfg's checked family `fam`."""
    with world.agreeing():  # a mistake found by any process stops all of them; rank 0 says it
        if not resume and run_dir.exists():
            raise MakemoreError(f"{run_dir} already exists: choose a new run directory, or continue it with makemore train --resume {run_dir}")
        checkpoint = runs.load_checkpoint(run_dir) if resume else None
        if checkpoint and fam.counted:
            raise MakemoreError(f"{run_dir}: a model.type = {fam.name!r} run is fitted in one pass: there is nothing to resume")
        dataset = read_data(cfg, Vocab(tuple(checkpoint["vocab"])) if checkpoint else None)  # cfg checked in train
        if checkpoint and checkpoint["step"] >= cfg.train.steps:
            raise MakemoreError(
                f"{run_dir}: this run already finished at step {checkpoint['step']}; "
                f"to train longer: makemore train --resume {run_dir} --set train.steps=N"
            )
        vocab = dataset.vocab
        # recorded in every checkpoint: which data the run saw, and its longest word (a sequence
        # model's context, and sampling's length cap)
        provenance = {"data_sha256": file_digest(cfg.data.path), "max_word_len": int(dataset.lengths.max())}
        train_view, dev_view = dataset.view("train", fam.view), dataset.view("dev", fam.view)
        backend = make_backend(cfg, vocab.vocab_size, device, context_length(cfg, provenance["max_word_len"]))
        start_step, elapsed0 = 0, 0.0
        if checkpoint:
            try:
                backend.load(checkpoint["model"], checkpoint.get("backend_state"))
            except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
                raise MakemoreError(
                    f"{run_dir}: the checkpoint does not fit this config ({first_line(e)}); "
                    "resume without --set for model, data.block_size or train.backend/optimizer keys"
                ) from None
            start_step, elapsed0 = int(checkpoint["step"]), float(checkpoint["elapsed_s"])
    if world.is_main:
        if not resume:
            runs.create_run(run_dir, cfg.to_toml(), list(vocab.itos))
        else:
            runs.truncate_metrics(run_dir, start_step)
            runs.remove_temporaries(run_dir)  # left behind by a process killed inside a write

    def save(step: int, elapsed: float) -> None:
        checkpoint = runs.make_checkpoint(  # on every rank: exporting the state is collective under torchrun
            params=backend.export_params(), config=cfg.to_dict(), itos=list(vocab.itos), step=step, backend=backend.name,
            backend_state=backend.export_state(), elapsed_s=elapsed, provenance=provenance)
        if world.is_main:
            runs.save_checkpoint(run_dir, checkpoint)

    if not backend.takes_steps:  # fitted in one pass: that pass is the run's one step
        listener.started(run_dir, 0, 0, resumed=False)
        t0 = time.perf_counter()
        backend.fit(train_view)
        train_loss, dev_loss = backend.mean_loss(train_view), backend.mean_loss(dev_view)
        elapsed = time.perf_counter() - t0
        save(0, elapsed)
        record = Record(0, train_loss, dev_loss, 0.0, round(elapsed, 4))
        log = runs.MetricsLog(run_dir)
        log.write(record.to_dict())
        log.close()
        listener.record(record, 0.0)
        listener.ended()
        return finish(run_dir, Summary(run_dir, 0, train_loss, dev_loss, elapsed, 0.0, backend.summary_extra))

    t = cfg.train
    rows = world.rows(t.batch_size)  # this process's share of each minibatch (all of it in one process)
    listener.started(run_dir, start_step, t.steps, resumed=resume)
    log = runs.MetricsLog(run_dir) if world.is_main else None
    # lecture part 3's statistics; under torchrun rank 0's (its rows' activations, the all-reduced gradients)
    stats_log = runs.StatsLog(run_dir, start_step) if t.stats_interval and world.is_main else None
    t_start = time.perf_counter()
    step, running, count, last_dev = start_step, 0.0, 0, math.nan
    vote = distributed.StopVote(world)
    try:
        with _InterruptFlag(persistent=distributed.under_launcher()) as interrupted, backend.threads():
            if start_step == 0:
                save(0, 0.0)
            for Xb, Yb in minibatches(backend, t, train_view, start_step, t.steps, rows):  # (B/W, block_size), (B/W,)
                lr = lr_at(step, t)
                if stats_log is not None and is_recorded(step + 1, t.stats_interval, t.steps):
                    loss, stats = backend.recorded_step(Xb, Yb, lr)
                    stats_log.write({"step": step + 1, "lr": lr, "loss": loss, **stats})
                    running += loss
                else:
                    running += backend.train_step(Xb, Yb, lr)
                count += 1
                step += 1
                stop = vote(interrupted.signum)  # read once (every rank the same), so it is raised only after its checkpoint
                at_eval = step % t.eval_interval == 0 or step == t.steps
                if at_eval or step % t.log_interval == 0 or stop:
                    train_loss = world.mean(float(running) / count)
                    dev = backend.mean_loss(dev_view) if at_eval and math.isfinite(train_loss) else None
                    if not math.isfinite(train_loss) or (dev is not None and not math.isfinite(dev)):
                        raise TrainingDiverged(
                            f"training diverged at step {step} (loss {train_loss}); lower train.lr (now {t.lr:g}) "
                            f"or find one with makemore lr-find; the last good checkpoint is kept in {run_dir}"
                        )
                    elapsed = elapsed0 + time.perf_counter() - t_start
                    record = Record(step, train_loss, dev, lr, round(elapsed, 4))
                    if log:
                        log.write(record.to_dict())
                    running, count = 0.0, 0
                    if at_eval or stop:
                        save(step, elapsed)
                        last_dev = dev if dev is not None else last_dev
                    listener.record(record, (step - start_step) / max(time.perf_counter() - t_start, 1e-9))
                    if stop:
                        raise TrainingInterrupted(run_dir, step, stop)
    finally:
        if log:
            log.close()
        if stats_log is not None:
            stats_log.close()
        listener.ended()
    loop_s = time.perf_counter() - t_start
    with backend.threads():  # the final evaluation on the training's thread counts too
        summary = Summary(run_dir, step, backend.mean_loss(train_view), last_dev, elapsed0 + loop_s,
                          (step - start_step) / max(loop_s, 1e-9), backend.summary_extra)
    return finish(run_dir, summary) if world.is_main else summary


def finish(run_dir: Path, summary: Summary) -> Summary:
    """Write summary.json and the loss-curve PNG of a finished run; return `summary`."""
    runs.write_summary(run_dir, summary.to_dict())
    plot_loss([(run_dir.name, runs.read_metrics(run_dir))], runs.loss_png(run_dir))
    return summary
