"""Data-parallel training with torch.distributed: the one module that knows about ranks.

`torchrun --nproc_per_node=W -m makemore train ...` starts W copies of the command and tells
each, through environment variables (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT),
which one it is and where to meet the others. This module reads them (`launched`), starts and
ends the process group (`process_group`: gloo for CPU tensors, plus NCCL for CUDA ones), and
gives the training driver the few collective operations it needs (`World`):

- the rows of the global minibatch this rank takes (`World.rows`): train.batch_size stays the
  global batch B, and rank r takes rows [r·B/W, (r+1)·B/W) of the same seeded minibatch, so the
  gradient DistributedDataParallel averages over ranks is the one-process gradient (up to the
  order of float additions; for words of different lengths each rank's loss is weighted by its
  share of the batch's targets, `World.share`);
- agreeing on when to stop (`StopVote`), on a failure during set-up (`World.agreeing`),
  on a mean (`World.mean`) and on a run directory (`World.broadcast`).

The models know nothing of this; with one process every operation here is the identity.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from makemore.errors import MakemoreError, ReportedElsewhere, first_line

if TYPE_CHECKING:
    import torch


def _torch() -> Any:
    """torch, imported when a collective first needs it (one process never does)."""
    import torch

    return torch


def _dist() -> Any:
    """torch.distributed, imported when first needed."""
    import torch.distributed

    return torch.distributed


#: How long a collective waits for a rank that neither answers nor dies (a dead rank's closed
#: connections end the wait at once; this bounds a hung one).
TIMEOUT = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class World:
    """This process's place among the W processes of one training job (W = 1 without torchrun)."""

    rank: int = 0
    """0 .. size-1; rank 0 writes the run directory and reports progress."""
    size: int = 1
    """W, the number of processes."""
    local_rank: int = 0
    """The rank among the processes on this machine: which GPU this process uses."""

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    def rows(self, batch_size: int) -> slice:
        """The rows of a global minibatch of `batch_size` (divisible by size) that this rank trains on."""
        share = batch_size // self.size
        return slice(self.rank * share, (self.rank + 1) * share)

    def device(self, device: str) -> str:
        """The device this rank uses: its own GPU, cuda:local_rank, when the job runs on CUDA."""
        return f"cuda:{self.local_rank}" if self.size > 1 and device.startswith("cuda") else device


    def mean(self, value: float) -> float:
        """The mean of `value` over ranks (float64). Collective when size > 1."""
        return self.sum(value) / self.size

    def sum(self, value: float) -> float:
        """The sum of `value` over ranks (float64). Collective when size > 1."""
        if self.size == 1:
            return value
        total = _torch().tensor([value], dtype=_torch().float64)
        _dist().all_reduce(total)
        return float(total.item())

    def share(self, count: torch.Tensor) -> torch.Tensor:
        """W · count / Σ_ranks count, for this rank's `count` of targets in its rows (a float
        tensor): multiplying this rank's mean loss by it makes DistributedDataParallel's average
        over ranks the mean over the whole global batch when the ranks hold different numbers of
        targets (words of different lengths). Collective when size > 1."""
        if self.size == 1:
            return _torch().ones_like(count)
        total = count.clone()
        _dist().all_reduce(total)
        return count * self.size / total

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` (any picklable value) on every rank. Collective when size > 1."""
        if self.size == 1:
            return obj
        box = [obj]
        _dist().broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank. Collective when size > 1."""
        if self.size == 1:
            return [obj]
        out: list[Any] = [None] * self.size
        _dist().all_gather_object(out, obj)
        return out

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm's running statistics). Collective when size > 1."""
        if self.size > 1:
            for buffer in module.buffers():
                _dist().broadcast(buffer, src=0)

    @contextlib.contextmanager
    def agreeing(self) -> Iterator[None]:
        """Run a block of set-up work in which any rank may fail; afterwards every rank knows
        whether some rank failed, and if one did, every rank raises (no rank is left waiting).

        Rank 0 raises MakemoreError with every failing rank's message (its own as it is, another
        rank's prefixed "rank r:"); the other ranks raise ReportedElsewhere, which the command line
        does not print, except that an error which is not a user's mistake (a bug) keeps its
        traceback on the rank it happened on. The block must not itself run collectives.
        """
        error: BaseException | None = None
        try:
            yield
        except Exception as e:  # noqa: BLE001 - every rank must reach the gather below
            error = e
        if self.size == 1:
            if error is not None:
                raise error
            return
        messages = self.gather(None if error is None else first_line(error))
        failed = [(r, m) for r, m in enumerate(messages) if m is not None]
        if not failed:
            return
        if error is not None and not isinstance(error, MakemoreError):
            raise error  # a bug: its traceback, on the rank it happened on
        if self.is_main:
            if isinstance(error, MakemoreError) and len({m for _, m in failed}) == 1:
                raise error  # the same mistake everywhere (or only here): said once, as it is
            raise MakemoreError("; ".join(m if r == 0 else f"rank {r}: {m}" for r, m in failed))
        raise ReportedElsewhere(failed[0][1])


class StopVote:
    """Agreeing, step by step, on whether to stop: called once per step on every rank with the
    signal this rank has received (0: none), it returns the largest signal any rank had received
    one call earlier. Every rank gets the same answer at the same step, so all stop after the
    same step; the all-reduce behind it runs while the next step computes (gloo, on the CPU: no
    GPU synchronisation), so it costs the step almost no waiting. One process: the signal at once."""

    def __init__(self, world: World):
        self.world = world
        self._flag: torch.Tensor | None = None
        self._pending: Any = None

    def __call__(self, signum: int) -> int:
        if self.world.size == 1:
            return signum
        agreed = 0
        if self._pending is not None:
            self._pending.wait()
            agreed = int(self._flag.item())
        self._flag = _torch().tensor([signum], dtype=_torch().int64)
        self._pending = _dist().all_reduce(self._flag, op=_dist().ReduceOp.MAX, async_op=True)
        return agreed


def launched() -> World:
    """This process's World from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); the
    one-process World when they are not set. Starts nothing."""
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def joined() -> World:
    """The World of the process group this process has joined (see `process_group`); the
    one-process World when it has joined none."""
    if not _dist().is_available() or not _dist().is_initialized():
        return World()
    return World(_dist().get_rank(), _dist().get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def under_launcher() -> bool:
    """Whether torchrun (torch.distributed.run) started this process: it forwards Ctrl-C and
    SIGTERM to its workers, so a worker may receive the same signal twice."""
    return "TORCHELASTIC_RUN_ID" in os.environ


@contextlib.contextmanager
def said_once(world: World) -> Iterator[None]:
    """For checks whose outcome is the same on every rank (they read only the config and this
    machine): rank 0 reports a MakemoreError raised inside, the other ranks raise ReportedElsewhere."""
    try:
        yield
    except MakemoreError as e:
        if world.is_main or isinstance(e, ReportedElsewhere):
            raise
        raise ReportedElsewhere(str(e)) from None


def check(world: World, backend: str, batch_size: int, counted: bool) -> None:
    """Refuse what data-parallel training cannot do, before any process group exists.

    Raises:
        MakemoreError: a NumPy or MLX backend, a family fitted by counting, or a global batch
            not divisible by the number of processes, when there are several processes.
    """
    if world.size == 1:
        return
    if counted:
        raise MakemoreError(f"this model is fitted in one pass by counting: there is nothing to split over {world.size} processes; run it without torchrun")
    if backend != "torch":
        raise MakemoreError(f"train.backend = {backend!r} trains in one process only; under torchrun use train.backend = 'torch'")
    if batch_size % world.size:
        raise MakemoreError(
            f"train.batch_size = {batch_size} is the global batch and must split evenly over the {world.size} processes; "
            f"use a multiple of {world.size}"
        )


def _peer_failed(e: BaseException) -> bool:
    """Whether `e` says another process of the job went away (a collective lost its peer)."""
    text = str(e)
    return isinstance(e, _dist().DistError) or "Connection closed by peer" in text or "Connection reset by peer" in text or "gloo" in text


@contextlib.contextmanager
def process_group(world: World, device: str) -> Iterator[World]:
    """Join the job's process group for the block (nothing to do with one process), and leave it after.

    Collectives on CPU tensors go through gloo; on a CUDA device the group also has NCCL for the
    gradients, and this process uses GPU `world.local_rank`. A collective that fails because
    another rank died becomes, on rank 0, one line (MakemoreError) and on the others a
    ReportedElsewhere, so no rank hangs and the user reads one message per failure.
    """
    if world.size == 1:
        yield world
        return
    if device.startswith("cuda"):
        _torch().cuda.set_device(world.local_rank)
    backend = "cpu:gloo,cuda:nccl" if device.startswith("cuda") else "gloo"
    _dist().init_process_group(backend, rank=world.rank, world_size=world.size, timeout=TIMEOUT)
    try:
        yield world
        _dist().barrier()  # every rank is done with the group (rank 0 has written the run) before any leaves it
    except ReportedElsewhere:
        raise
    except MakemoreError as e:
        if world.is_main:
            raise
        raise MakemoreError(f"rank {world.rank}: {e}") from None
    except (RuntimeError, _dist().DistError) as e:
        if not _peer_failed(e):
            raise
        if not world.is_main:
            raise ReportedElsewhere(first_line(e)) from None
        raise MakemoreError("another process of this job stopped (its message is above), so training stopped too; the last checkpoint is kept") from None
    finally:
        gc.collect()  # DistributedDataParallel holds the group inside reference cycles: free it while Python is whole
        _dist().destroy_process_group()
