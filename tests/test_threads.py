"""No leaked thread state: training, lr-find, evaluation and sampling run on their own CPU thread
counts (torch's intra-op pool, NumPy's BLAS) and leave the process's counts as they found them.

Each test first puts the process on KNOWN threads in both pools (more than the one thread a small
step trains on), so that a count left behind by a run, or a run on someone else's count, shows on
any machine, whatever its number of cores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import makemore.sample
from makemore import lr_find
from makemore.prepare import prepare
from makemore.backends import torch_backend
from makemore.backends.numpy_mlp import NumpyBackend
from makemore.backends.base import small_step
from makemore.config import Config
from makemore.data import View
from makemore.evaluate import evaluate_run
from makemore.models import build_model
from makemore.runs import load_run
from makemore.sample import sample
from makemore.threads import scoped
from makemore.training import Listener, Record, TrainingDiverged, train
from tests.conftest import TINY_WORDS, tiny_cfg, with_mlx, write_tiny_words

#: The process's thread count in both pools while a test runs: above 1, so that a small run's one
#: thread left behind, or a run on one thread that should not be, is seen.
KNOWN = 3

VOCAB_SIZE = len(set("".join(TINY_WORDS))) + 1  # TINY_WORDS' letters and the boundary


def counts() -> dict[str, int]:
    """The process's CPU thread counts now: each loaded BLAS library's (by file) and torch's."""
    out = {info["filepath"]: info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}
    return {**out, "torch": torch.get_num_threads()}


def blas(observed: dict[str, int]) -> set[int]:
    """The BLAS libraries' counts in `observed` (a `counts()`)."""
    return {n for name, n in observed.items() if name != "torch"}


@pytest.fixture
def known_counts() -> Iterator[dict[str, int]]:
    """The process on KNOWN threads in both pools for the test (restored after it); yields counts()."""
    torch_before = torch.get_num_threads()
    with threadpool_limits(limits=KNOWN, user_api="blas"):
        torch.set_num_threads(KNOWN)
        try:
            observed = counts()
            assert blas(observed) == {KNOWN} and observed["torch"] == KNOWN
            yield observed
        finally:
            torch.set_num_threads(torch_before)


class Observer(Listener):
    """Records the process's thread counts at every metrics record, i.e. inside the training loop."""

    def __init__(self) -> None:
        self.seen: list[dict[str, int]] = []

    def record(self, record: Record, steps_per_s: float) -> None:
        self.seen.append(counts())


def observed_run(cfg: Config, run_dir: Path) -> dict[str, int]:
    """Train `cfg` into run_dir; the thread counts the loop ran on (the same at every record)."""
    observer = Observer()
    train(cfg, run_dir, listener=observer)
    assert observer.seen and all(seen == observer.seen[0] for seen in observer.seen)
    return observer.seen[0]


def small_and_large(words: Path, backend: str) -> tuple[Config, Config]:
    """Two short runs of `backend`: steps small enough for one thread (small_step), and steps that are not."""
    small = tiny_cfg(words, 4, f"train.backend={backend}", "train.log_interval=1")
    large = tiny_cfg(words, 2, f"train.backend={backend}", "train.log_interval=1", "model.n_hidden=1000", "train.batch_size=512")
    for cfg, is_small in ((small, True), (large, False)):
        n_params = sum(p.numel() for p in build_model(cfg.model, VOCAB_SIZE, cfg.data.block_size, torch.Generator()).parameters())
        assert small_step(cfg, n_params) == is_small
    return small, large


def test_a_small_numpy_run_leaves_a_later_large_one_on_the_processs_blas_threads(tmp_path, known_counts, no_loss_plot) -> None:
    """The defect of issue 21: the first run's one BLAS thread held for every later NumPy run."""
    small, large = small_and_large(write_tiny_words(tmp_path), "numpy")
    assert blas(observed_run(small, tmp_path / "small")) == {1}
    assert counts() == known_counts
    assert blas(observed_run(large, tmp_path / "large")) == {KNOWN}  # the process's own: large steps keep them
    assert counts() == known_counts


def test_a_small_torch_run_then_a_large_one_each_on_its_own_threads(tmp_path, known_counts, no_loss_plot) -> None:
    small, large = small_and_large(write_tiny_words(tmp_path), "torch")
    assert observed_run(small, tmp_path / "small")["torch"] == 1
    assert counts() == known_counts
    assert observed_run(large, tmp_path / "large")["torch"] == torch_backend.DEFAULT_THREADS  # choose_threads
    assert counts() == known_counts


@pytest.mark.parametrize("backend", ["torch", "numpy", with_mlx("mlx")])
def test_train_threads_holds_during_training_only(tmp_path, known_counts, no_loss_plot, backend) -> None:
    cfg = tiny_cfg(write_tiny_words(tmp_path), 4, f"train.backend={backend}", "train.log_interval=1", "train.threads=2")
    during = observed_run(cfg, tmp_path / "run")
    if backend == "torch":
        assert during["torch"] == 2
    elif backend == "numpy":
        assert blas(during) == {2}
    assert counts() == known_counts


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_run_that_fails_inside_the_loop_restores_the_counts(tmp_path, known_counts, no_loss_plot) -> None:
    # relu does not saturate: the huge rate overflows the loss to nan
    cfg = tiny_cfg(write_tiny_words(tmp_path), 20, "train.backend=numpy", "train.lr=1e30", "model.activation=relu")
    with pytest.raises(TrainingDiverged):
        train(cfg, tmp_path / "run")
    assert counts() == known_counts


def test_lr_find_restores_the_counts_after_each_run(tmp_path, known_counts, monkeypatch) -> None:
    cfg = tiny_cfg(write_tiny_words(tmp_path), 4, "train.backend=numpy")
    lr_find.sweep(prepare(cfg), steps=5)
    assert counts() == known_counts
    seen: list[set[int]] = []
    mean_loss = NumpyBackend.mean_loss

    def recording(self: NumpyBackend, view: View) -> float:  # the grid's dev evaluation, after each run's steps
        seen.append(blas(counts()))
        return mean_loss(self, view)

    monkeypatch.setattr(NumpyBackend, "mean_loss", recording)
    lr_find.grid(prepare(cfg), rates=2, steps=3)
    assert seen == [{1}, {1}]  # each run of the grid on the small step's one thread...
    assert counts() == known_counts  # ...and the process's own after it


def test_evaluation_and_sampling_leave_the_counts_as_they_were(tmp_path, known_counts, no_loss_plot, monkeypatch) -> None:
    train(tiny_cfg(write_tiny_words(tmp_path), 4, "train.threads=1"), tmp_path / "run")
    assert counts() == known_counts
    evaluate_run(tmp_path / "run", ["train", "dev"])
    assert counts() == known_counts
    run = load_run(tmp_path / "run")
    seen: list[int] = []
    sample_batch = makemore.sample._sample_batch

    def recording(*args: Any, **kwargs: Any) -> Any:  # one batch of samples, inside sampling's scope
        seen.append(torch.get_num_threads())
        return sample_batch(*args, **kwargs)

    monkeypatch.setattr(makemore.sample, "_sample_batch", recording)
    sample(run.model, run.vocab, 5, torch.Generator().manual_seed(0), max_len=8)
    assert seen == [1]  # sampling on one thread (makemore.sample's docstring)...
    assert counts() == known_counts  # ...then the process's own again


def test_scoped_restores_what_was_there_even_after_an_exception(known_counts) -> None:
    with pytest.raises(RuntimeError, match="inside"):
        with scoped(1):
            assert blas(counts()) == {1} and torch.get_num_threads() == 1
            with scoped(2):
                assert blas(counts()) == {2} and torch.get_num_threads() == 2
            assert blas(counts()) == {1} and torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert counts() == known_counts
    with scoped(None):
        assert counts() == known_counts
    with pytest.raises(ValueError, match="at least 1"):
        with scoped(0):
            pass
    assert counts() == known_counts


def test_scoped_does_not_import_torch() -> None:
    """A NumPy-only process keeps torch out: the scope sets torch's count only when torch is loaded."""
    code = ("import sys, numpy; from threadpoolctl import threadpool_info; from makemore.threads import scoped\n"
            "with scoped(1):\n    assert {i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'} == {1}\n"
            "assert 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
