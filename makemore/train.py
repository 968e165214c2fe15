"""The one training driver: minibatches, learning-rate schedule, evaluation, checkpoints, progress.

Every backend (torch, numpy, mlx) is trained by `train`; a backend only takes steps and
exports its state (makemore.backends). The loop is the lecture's:

    for step in range(steps):
        ix = random minibatch indices            # (B,)
        loss = forward(Xtr[ix], Ytr[ix])         # mean NLL, nats/char
        backward; p -= lr_at(step) * grad

Minibatches are drawn by a generator seeded from (train.seed, chunk number), a chunk of steps at
a time, so the batch of any step can be recomputed from the step alone: a resumed run sees
exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from makemore import runs
from makemore.config import Config, TrainConfig
from makemore.data import Dataset, Vocab, Windows, file_digest, load_dataset
from makemore.errors import MakemoreError
from makemore.schedule import lr_at

#: Minibatch indices are drawn for about this many windows at a time (a chunk of steps).
CHUNK_WINDOWS = 65_536


class TrainingInterrupted(Exception):
    """Ctrl-C stopped training; a checkpoint of the last completed step was written."""

    def __init__(self, run_dir: Path, step: int):
        super().__init__(f"interrupted at step {step}")
        self.run_dir, self.step = run_dir, step


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


def minibatches(backend: Any, t: TrainConfig, windows: Windows, start: int, stop: int) -> Iterator[tuple[Any, Any]]:
    """The minibatches of steps start..stop-1 as (X (B, block_size), Y (B,)) in the backend's arrays.

    Indices come from `chunk_indices`, a chunk of steps at a time, gathered from `windows` in bulk:
    the batch of a step is the same however the run got there (from step 0, or resumed mid-chunk).
    """
    per_chunk = steps_per_chunk(t.batch_size)
    step = start
    while step < stop:
        chunk, offset = divmod(step, per_chunk)
        ix = chunk_indices(t.seed, chunk, len(windows), t.batch_size)[offset : offset + stop - step]  # (k, B)
        Xc, Yc = windows[ix]  # (k, B, block_size), (k, B)
        Xc, Yc = backend.asarray(Xc), backend.asarray(Yc)
        for k in range(len(ix)):
            yield Xc[k], Yc[k]
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

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


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
    """While active, the first Ctrl-C only sets a flag the loop checks between steps; a second one
    (or any outside the main thread) behaves as usual."""

    def __init__(self) -> None:
        self.set = False
        self._previous: Any = None

    def __enter__(self) -> _InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.set = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Progress:
    """A rich progress bar on stderr: step, loss, lr, steps/s. Updated only at log records."""

    def __init__(self, total: int, start: int, enabled: bool = True):
        self.enabled = enabled
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

        self._bar = RichProgress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss [cyan]{task.fields[loss]}"), TextColumn("dev [magenta]{task.fields[dev]}"),
            TextColumn("lr {task.fields[lr]}"), TextColumn("{task.fields[speed]} steps/s"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )
        self._task = self._bar.add_task("train", total=total, completed=start, loss="-", dev="-", lr="-", speed="-")
        self._bar.start()

    def update(self, record: Record, steps_per_s: float) -> None:
        if not self.enabled:
            return
        fields = {"loss": f"{record.train_loss:.4f}", "lr": f"{record.lr:.3g}", "speed": f"{steps_per_s:,.0f}"}
        if record.dev_loss is not None:
            fields["dev"] = f"{record.dev_loss:.4f}"
        self._bar.update(self._task, completed=record.step, **fields)

    def close(self) -> None:
        if self.enabled:
            self._bar.stop()


def prepare(cfg: Config, vocab: Vocab | None = None) -> Dataset:
    """Read and split the data for `cfg` (before any run directory exists, so bad data leaves nothing behind)."""
    return load_dataset(cfg.data.path, cfg.data.block_size, cfg.data.seed, cfg.data.boundary, vocab)


def train(
    cfg: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_record: Callable[[Record], None] | None = None,
    on_start: Callable[[Path], None] | None = None,
) -> Summary:
    """Train a model as `cfg` says, writing everything into `run_dir` (see makemore.runs).

    Args:
        cfg: a validated Config.
        run_dir: a new directory (created here), or an existing run when `resume` is True.
        resume: continue `run_dir` from its checkpoint: parameters, optimizer, schedule position
            and generator state, so the result equals an uninterrupted run's exactly.
        progress: show the rich progress bar on stderr.
        on_record: called with every metrics record (after it is written).
        on_start: called with run_dir once the data is checked and the directory exists.

    Returns:
        The Summary: whole-split train and dev NLL (nats/char) and timings.

    Raises:
        MakemoreError: bad data or device, a checkpoint that does not fit, a finished run.
        TrainingDiverged: the loss became non-finite (the last good checkpoint is kept).
        TrainingInterrupted: Ctrl-C; a checkpoint of the last completed step was written.
    """
    from makemore.backends import make_backend, resolve_device

    run_dir = Path(run_dir)
    if not resume and run_dir.exists():
        raise MakemoreError(f"{run_dir} already exists: choose a new run directory, or continue it with makemore train --resume {run_dir}")
    device = resolve_device(cfg.train.device, cfg.train.backend)
    checkpoint = runs.load_checkpoint(run_dir) if resume else None
    vocab = Vocab(tuple(checkpoint["vocab"])) if checkpoint else None
    dataset = prepare(cfg, vocab)
    if checkpoint and checkpoint["step"] >= cfg.train.steps:
        raise MakemoreError(
            f"{run_dir}: this run already finished at step {checkpoint['step']}; "
            f"to train longer: makemore train --resume {run_dir} --set train.steps=N"
        )
    vocab = dataset.vocab
    # recorded in every checkpoint: which data the run saw, and a length cap for sampling
    provenance = {"data_sha256": file_digest(cfg.data.path), "max_word_len": int(dataset.lengths.max())}

    train_windows, dev_windows = dataset.windows("train"), dataset.windows("dev")
    # the counting bigram has no parameters to optimise: no backend is built for it
    backend = None if cfg.model.type == "bigram" else make_backend(cfg, vocab.vocab_size, device)

    if not resume:
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
        except OSError as e:
            raise MakemoreError(f"{run_dir}: cannot create the run directory: {e.strerror or e}") from None
        runs.atomic_write_text(run_dir / runs.CONFIG, cfg.to_toml())
        runs.write_json(run_dir / runs.VOCAB, {"itos": list(vocab.itos), "vocab_size": vocab.vocab_size})
    if on_start:
        on_start(run_dir)
    if cfg.model.type == "bigram":
        from makemore.models.bigram import fit_bigram

        return fit_bigram(cfg, run_dir, vocab, train_windows, dev_windows, provenance)

    start_step, elapsed0 = 0, 0.0
    if checkpoint:
        try:
            backend.load(checkpoint["model"], checkpoint.get("backend_state"))
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
            raise MakemoreError(
                f"{run_dir}: the checkpoint does not fit this config ({runs.first_line(e)}); "
                "resume without --set for model, data.block_size or train.backend/optimizer keys"
            ) from None
        start_step, elapsed0 = int(checkpoint["step"]), float(checkpoint["elapsed_s"])
        kept = [r for r in runs.read_metrics(run_dir) if r["step"] <= start_step]
        runs.atomic_write_text(run_dir / runs.METRICS, "".join(json.dumps(r) + "\n" for r in kept))
        runs.remove_temporaries(run_dir)  # left behind by a process killed inside a write

    def save(step: int, elapsed: float) -> None:
        runs.save_checkpoint(run_dir, {
            "model": backend.export_params(), "config": cfg.to_dict(), "vocab": list(vocab.itos), "step": step,
            "backend": backend.name, "backend_state": backend.export_state(), "elapsed_s": elapsed, **provenance,
        })

    t = cfg.train
    bar = Progress(t.steps, start_step, progress)
    metrics = open(run_dir / runs.METRICS, "a", encoding="utf-8")
    t_start = time.perf_counter()
    step, running, count, last_dev = start_step, 0.0, 0, math.nan
    try:
        with _InterruptFlag() as interrupted:
            if start_step == 0:
                save(0, 0.0)
            for Xb, Yb in minibatches(backend, t, train_windows, start_step, t.steps):  # (B, block_size), (B,)
                lr = lr_at(step, t)
                running += backend.train_step(Xb, Yb, lr)
                count += 1
                step += 1
                at_eval = step % t.eval_interval == 0 or step == t.steps
                if at_eval or step % t.log_interval == 0 or interrupted.set:
                    stop = interrupted.set  # read once, so a Ctrl-C is raised only after its checkpoint is saved
                    train_loss = float(running) / count
                    dev = backend.mean_loss(dev_windows) if at_eval and math.isfinite(train_loss) else None
                    if not math.isfinite(train_loss) or (dev is not None and not math.isfinite(dev)):
                        raise TrainingDiverged(
                            f"training diverged at step {step} (loss {train_loss}); lower train.lr (now {t.lr:g}) "
                            f"or find one with makemore lr-find; the last good checkpoint is kept in {run_dir}"
                        )
                    elapsed = elapsed0 + time.perf_counter() - t_start
                    record = Record(step, train_loss, dev, lr, round(elapsed, 4))
                    metrics.write(record.to_json() + "\n")
                    metrics.flush()
                    running, count = 0.0, 0
                    if at_eval or stop:
                        save(step, elapsed)
                        last_dev = dev if dev is not None else last_dev
                    bar.update(record, (step - start_step) / max(time.perf_counter() - t_start, 1e-9))
                    if on_record:
                        on_record(record)
                    if stop:
                        raise TrainingInterrupted(run_dir, step)
    finally:
        metrics.close()
        bar.close()
    loop_s = time.perf_counter() - t_start
    summary = Summary(run_dir, step, backend.mean_loss(train_windows), last_dev, elapsed0 + loop_s, (step - start_step) / max(loop_s, 1e-9))
    finish(run_dir, summary)
    return summary


def finish(run_dir: Path, summary: Summary) -> None:
    """Write summary.json and the loss-curve PNG of a finished run."""
    runs.write_json(run_dir / runs.SUMMARY, summary.to_dict())
    from makemore.plots import plot_loss

    plot_loss([run_dir], run_dir / runs.LOSS_PNG)
