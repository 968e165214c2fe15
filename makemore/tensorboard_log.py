"""TensorBoard event files of a run's metrics (train.tensorboard = true), so that
`tensorboard --logdir runs/` draws and compares the loss curves of many runs and sweeps.

The event files are written by torch.utils.tensorboard.SummaryWriter (the `tensorboard` package,
the optional extra `[tensorboard]`) into the run directory, next to metrics.jsonl: one scalar per
number of each metrics record, at the record's step.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from makemore.errors import MakemoreError

#: Seconds between writes of the event file to disk (TensorBoard reads it while training runs).
FLUSH_S = 5


def require() -> None:
    """Check that TensorBoard can be written.

    Raises:
        MakemoreError: the tensorboard package is not installed (naming the extra that installs it).
    """
    if importlib.util.find_spec("tensorboard") is None:
        raise MakemoreError("train.tensorboard = true needs the tensorboard package: pip install 'makemore[tensorboard]' (or set train.tensorboard = false)")


def tag(key: str) -> str:
    """The TensorBoard tag of a metrics field: train_loss → loss/train, dev_loss → loss/dev (one
    section, so the two curves sit side by side); other fields keep their name."""
    return f"loss/{key.removesuffix('_loss')}" if key.endswith("_loss") else key


class TensorBoardLog:
    """A training listener (makemore.training.Listener) that passes every call on to `inner` and
    also writes each metrics record as TensorBoard scalars into the run directory.

    A resumed run purges the events after its checkpoint's step (SummaryWriter's purge_step),
    as metrics.jsonl drops the records after it, so the curves show each step once.

    Args:
        inner: the listener that also hears the run (e.g. the command line's progress bar).
    """

    def __init__(self, inner: Any):
        self.inner = inner
        self._writer: Any = None

    def started(self, run_dir: Path, step: int, steps: int, resumed: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(run_dir), purge_step=step + 1 if resumed else None, flush_secs=FLUSH_S)
        self.inner.started(run_dir, step, steps, resumed)

    def record(self, record: Any, steps_per_s: float) -> None:
        for key, value in record.to_dict().items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(tag(key), value, record.step)
        self._writer.add_scalar("steps_per_s", steps_per_s, record.step)
        self.inner.record(record, steps_per_s)

    def fitted(self, steps: int) -> None:
        self.inner.fitted(steps)

    def ended(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.inner.ended()
