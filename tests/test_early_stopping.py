"""Early stopping (train.patience) and the best-dev checkpoint (issue 25, item 5).

A run stops after train.patience evaluations in a row without a new best dev loss, at the step an
uninterrupted patience-0 run's own dev losses say; best.safetensors holds the best evaluation's
checkpoint; resume keeps the best and the count, bit for bit; evaluate, sample and score read the
best checkpoint by default and `--checkpoint last|best` chooses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from makemore import api, runs
from makemore import training as train_module
from makemore.cli import app
from makemore.training import TrainingInterrupted, train
from tests.conftest import CtrlCAt, tiny_cfg

pytestmark = pytest.mark.usefixtures("no_loss_plot")

STEPS, PATIENCE = 200, 5
#: A tiny MLP that overfits 32 training words: dev improves for a while, then gets worse.
OVERFITS = ("train.eval_interval=5", "train.log_interval=5", "train.backend=torch", "train.optimizer=adamw", "train.lr=0.01",
            "train.schedule=constant", "model.n_hidden=64", "train.threads=1", "model.dropout=0.1")


def cfg_for(words: Path, patience: int):
    return tiny_cfg(words, STEPS, *OVERFITS, f"train.patience={patience}")


def expected_stop(dev: list[tuple[int, float]], patience: int) -> tuple[int, int]:
    """(stop step, best step) from a whole run's dev losses, counted here independently."""
    best, best_step, since = float("inf"), -1, 0
    for step, loss in dev:
        if loss < best:
            best, best_step, since = loss, step, 0
        else:
            since += 1
            if since == patience:
                return step, best_step
    raise AssertionError("the run never stopped early: the test's config no longer overfits")


def dev_losses(run_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["dev_loss"]) for r in runs.read_metrics(run_dir) if r.get("dev_loss") is not None]


def cli(*args: object, code: int = 0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result


@pytest.fixture
def full_run(tiny_words_file: Path, tmp_path: Path) -> Path:
    train(cfg_for(tiny_words_file, 0), tmp_path / "full")
    return tmp_path / "full"


def test_a_run_stops_after_patience_evaluations_without_a_better_dev_loss(tiny_words_file, tmp_path, full_run):
    stop, best_step = expected_stop(dev_losses(full_run), PATIENCE)
    assert stop < STEPS
    summary = train(cfg_for(tiny_words_file, PATIENCE), tmp_path / "early")
    assert summary.steps == stop and summary.extra["stopped_early"] and summary.extra["best_step"] == best_step
    assert json.loads((tmp_path / "early" / runs.SUMMARY).read_text())["stopped_early"] is True
    assert runs.load_checkpoint(tmp_path / "early")["step"] == stop
    best = runs.load_checkpoint(tmp_path / "early", "best")
    assert best["step"] == best_step
    # the best checkpoint holds the parameters the full run had at that step: its dev loss is the best one
    assert dict(dev_losses(full_run))[best_step] == summary.extra["best_dev_loss"]
    assert api.load(tmp_path / "early").evaluate(("dev",))["dev"] == pytest.approx(summary.extra["best_dev_loss"], abs=1e-12)
    # and a patience-0 run went on to the end, keeping its own best beside its last checkpoint
    assert runs.load_checkpoint(full_run)["step"] == STEPS
    assert runs.load_checkpoint(full_run, "best")["step"] == best_step


def test_resume_with_early_stopping_is_bit_exact(tiny_words_file, tmp_path, full_run):
    stop, best_step = expected_stop(dev_losses(full_run), PATIENCE)
    straight = train(cfg_for(tiny_words_file, PATIENCE), tmp_path / "straight")
    at = best_step + 10  # a record after the best evaluation and before the stop: the count is under way
    assert at < stop
    with pytest.raises(TrainingInterrupted):
        train(cfg_for(tiny_words_file, PATIENCE), tmp_path / "stopped", listener=CtrlCAt(at))
    assert runs.load_checkpoint(tmp_path / "stopped")["best"]["evals_since"] > 0
    resumed = train(cfg_for(tiny_words_file, PATIENCE), tmp_path / "stopped", resume=True)
    assert resumed.steps == straight.steps == stop and resumed.extra["best_step"] == best_step
    for which in ("last", "best"):
        a, b = runs.load_checkpoint(tmp_path / "straight", which), runs.load_checkpoint(tmp_path / "stopped", which)
        assert a["step"] == b["step"] and a["best"] == b["best"], which
        for key, value in a["model"].items():
            assert torch.equal(value, b["model"][key]), (which, key)


def test_a_run_that_stopped_early_resumes_only_with_more_patience(tiny_words_file, tmp_path):
    train(cfg_for(tiny_words_file, PATIENCE), tmp_path / "early")
    result = cli("train", "--resume", tmp_path / "early", "-q", code=2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "stopped early" in lines[0] and "train.patience" in lines[0], lines
    cli("train", "--resume", tmp_path / "early", "--set", "train.patience=0", "-q")
    assert runs.load_checkpoint(tmp_path / "early")["step"] == STEPS


def test_checkpoint_option_chooses_and_best_is_the_default(tiny_words_file, tmp_path, full_run):
    last_dev = dev_losses(full_run)[-1][1]
    best_dev = min(loss for _, loss in dev_losses(full_run))
    assert best_dev < last_dev  # the two checkpoints differ, so the choice is visible
    default = json.loads(cli("evaluate", full_run, "--split", "dev", "--json").stdout)["dev"]
    best = json.loads(cli("evaluate", full_run, "--split", "dev", "--json", "--checkpoint", "best").stdout)["dev"]
    last = json.loads(cli("evaluate", full_run, "--split", "dev", "--json", "--checkpoint", "last").stdout)["dev"]
    assert default == best == pytest.approx(best_dev, abs=1e-12) and last == pytest.approx(last_dev, abs=1e-12)
    a = json.loads(cli("score", full_run, "emma", "--json").stdout)[0]["nll"]
    b = json.loads(cli("score", full_run, "emma", "--json", "--checkpoint", "last").stdout)[0]["nll"]
    assert a != b
    assert cli("sample", full_run, "-n", "3", "--seed", "1", "--checkpoint", "last").stdout
    assert api.load(full_run).checkpoint == "best" and api.load(full_run, checkpoint="last").step == STEPS


def test_checkpoint_best_on_a_run_without_one_is_one_line_exit_2(tiny_words_file, tmp_path):
    train(tiny_cfg(tiny_words_file, 10, "model.type=bigram"), tmp_path / "counted")  # fitted in one pass: no best
    for command in (["evaluate", tmp_path / "counted"], ["sample", tmp_path / "counted"], ["score", tmp_path / "counted", "emma"]):
        result = cli(*command, "--checkpoint", "best", code=2)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "no best-dev checkpoint" in lines[0], lines
    cli("evaluate", tmp_path / "counted", "--checkpoint", "last")
    cli("evaluate", tmp_path / "counted")  # the default reads the last checkpoint of a run without a best one
    assert cli("evaluate", tmp_path / "counted", "--checkpoint", "newest", code=2).output.count("\n") == 1


def test_an_old_run_without_a_best_checkpoint_reads_as_before(tmp_path):
    fixtures = sorted(p for p in (Path(__file__).parent / "fixtures").glob("*/*") if (p / runs.CONFIG).is_file())
    if not fixtures:
        pytest.skip("no fixture runs")
    run = api.load(fixtures[0])
    assert run.checkpoint == "last" and not runs.has_best_checkpoint(fixtures[0])
