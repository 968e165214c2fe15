"""train.time_budget_s: a run that fits its steps, and its schedule, to a wall-clock budget."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import tiny_cfg
from makemore import runs
from makemore.cli import app
from makemore.errors import MakemoreError
from makemore.schedule import fit_steps, lr_at
from makemore.training import Listener, TrainingInterrupted, train

CEILING = 10_000_000


def budgeted(words: Path, budget: float, *extra: str):
    """A tiny NumPy MLP with a budget of `budget` seconds and a ceiling no run reaches in it; its
    warm-up covers the first two records."""
    return tiny_cfg(words, CEILING, f"train.time_budget_s={budget}", "train.schedule=cosine", "train.lr=0.2",
                    "train.min_lr=0.002", "train.warmup_steps=20", "train.log_interval=10",
                    "train.eval_interval=1000000", "train.plot=false", *extra)


@given(step=st.integers(0, 10_000), step_s=st.floats(1e-5, 1.0), left=st.floats(-5.0, 1e3),
       eval_s=st.floats(0.0, 5.0), eval_interval=st.integers(1, 100_000), ceiling=st.integers(1, 10**8))
def test_fitted_steps_and_their_evaluations_fit_in_the_time_left(step, step_s, left, eval_s, eval_interval, ceiling):
    ceiling = max(ceiling, step + 1)
    n = fit_steps(step, step_s, left, eval_s, eval_interval, ceiling)
    assert step < n <= ceiling
    if n > step + 1:  # more than the one step every run takes: the steps and evaluations fit
        evals = n // eval_interval - step // eval_interval + 1
        assert (n - step) * step_s + evals * eval_s <= left * (1 + 1e-9)


def test_fitting_leaves_room_for_the_evaluations():
    plain = fit_steps(100, 0.01, 60.0, 0.0, 1000, CEILING)
    assert plain == 100 + 6000
    assert fit_steps(100, 0.01, 60.0, 1.0, 1000, CEILING) < plain - 5 * 100  # 5+ evaluations of a second each
    assert fit_steps(100, 0.01, 60.0, 0.0, 1000, 3000) == 3000  # train.steps stays the most


def test_a_time_budget_fixes_the_steps_and_the_schedule_ends_there(tmp_path, tiny_words_file):
    cfg = budgeted(tiny_words_file, 1.0)
    summary = train(cfg, tmp_path / "run")
    n = summary.extra["fitted_steps"]
    assert 20 < n < CEILING and summary.steps == n
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["step"] == 10 and records[0]["dev_loss"] is not None  # the evaluation timed for the fit
    assert records[-1]["step"] == n and records[-1]["dev_loss"] == pytest.approx(summary.dev_loss)
    fitted = dataclasses.replace(cfg.train, steps=n)
    assert records[-1]["lr"] == lr_at(n - 1, fitted)  # the cosine reached its end at the fitted step...
    assert records[-1]["lr"] < lr_at(n - 1, cfg.train) / 10  # ...not the ceiling's
    assert runs.load_checkpoint(tmp_path / "run")["fitted_steps"] == n


class CtrlCAfterFit(Listener):
    """Sends this process SIGINT (Ctrl-C) at the first record after the run fixed its steps."""

    def __init__(self) -> None:
        self.steps: int | None = None
        self.sent = False

    def fitted(self, steps: int) -> None:
        self.steps = steps

    def record(self, record: Any, steps_per_s: float) -> None:
        if self.steps is not None and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def test_a_budgeted_run_resumes_to_its_fitted_step_exactly(tmp_path, tiny_words_file):
    # a warm-up no run reaches before its fit: no step's learning rate depends on when the fit came
    cfg = budgeted(tiny_words_file, 1.0, "train.warmup_steps=5000")
    listener = CtrlCAfterFit()
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "a", listener=listener)
    checkpoint = runs.load_checkpoint(tmp_path / "a")
    n = checkpoint["fitted_steps"]
    assert n == listener.steps and checkpoint["step"] < n
    resumed = train(cfg, tmp_path / "a", resume=True)
    assert resumed.steps == n
    # the same recipe told its step count: the same parameters, bit for bit
    plain = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, time_budget_s=0.0, steps=n))
    train(plain, tmp_path / "b")
    a, b = runs.load_checkpoint(tmp_path / "a")["model"], runs.load_checkpoint(tmp_path / "b")["model"]
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(MakemoreError, match=f"already finished at step {n}"):
        train(cfg, tmp_path / "a", resume=True)


def test_a_negative_budget_is_one_line_and_exit_2(runner, tiny_words_file, tmp_path):
    result = runner.invoke(app, ["train", "--config", "configs/names.toml", "--set", "train.time_budget_s=-1",
                                 "--run-dir", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2 and "train.time_budget_s" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
