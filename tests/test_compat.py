"""Run directories made by makemore 0.1 (tests/fixtures/v0.1, made before the redesign) keep working.

Each fixture run is evaluated, sampled, plotted and resumed by today's code, and compared with
what 0.1 printed for it (expected.json, recorded when the fixtures were made).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def old_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fixture folder as the working directory (data.path = "words.txt" is relative)."""
    work = tmp_path / "v0.1"
    shutil.copytree(FIXTURES, work)
    monkeypatch.chdir(work)
    return work


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


@pytest.mark.parametrize("run", ["mlp", "torch-adamw", "numpy-adamw", "bigram"])
def test_an_old_run_evaluates_and_samples_as_it_did(old_runs: Path, run: str) -> None:
    """The losses were recorded on another machine: a float32 forward pass whose matmul kernels
    round in another order there differs in the last bits (~1e-7 relative), hence rel=1e-6, far
    below any change of weights or split (~1e-2). A sample flips only if a uniform draw falls within
    ~1e-7 of a boundary between two characters' cumulative probabilities: about one draw in ten
    million, so the samples are compared exactly."""
    evaluated = json.loads(invoke("evaluate", run, "--split", "all", "--json"))
    for split, nll in EXPECTED[run]["evaluate_all"].items():
        assert evaluated[split] == pytest.approx(nll, rel=1e-6), split
    assert json.loads(invoke("sample", run, "-n", "10", "--seed", "0", "--json")) == EXPECTED[run]["sample_seed0_n10"]


#: How far a continuation may land from the losses 0.1 recorded on the machine that made the fixtures.
#: Both backends train in float32, and NumPy's and torch's BLAS pick their matmul kernels per
#: processor, so sums are rounded in another order on another machine (last-bit differences,
#: ~1e-7 relative per product). Twenty AdamW steps carry those differences into the weights: on a
#: second 2-core x86-64 machine the NumPy run ended 1.3e-5 from the recorded loss. 1e-4 allows ~8x
#: that, and stays ~100x below what one step of training moves the loss here (~1e-2), so a resume
#: that restored the wrong step, optimizer state or batches still fails. Bit-exactness is asserted
#: below, between two continuations this test makes on its own machine.
RECORDED_TOLERANCE = 1e-4


@pytest.mark.parametrize("run", ["mlp", "torch-adamw", "numpy-adamw"])
def test_an_old_run_resumes_to_where_0_1_resumed_it(old_runs: Path, run: str) -> None:
    """0.1's runs continue from their checkpoints to the losses 0.1 reached (RECORDED_TOLERANCE: the
    fixtures were made on another machine), and two continuations of the same old run made here agree
    to the last bit."""
    shutil.copytree(old_runs / run, old_runs / f"{run}-again")
    first = json.loads(invoke("train", "--resume", run, "--set", "train.steps=60", "--json").strip().splitlines()[-1])
    again = json.loads(invoke("train", "--resume", f"{run}-again", "--set", "train.steps=60", "--json").strip().splitlines()[-1])
    expected = EXPECTED[run]["resume_to_60"]
    assert first["steps"] == expected["steps"] == 60
    assert first["train_loss"] == pytest.approx(expected["train_loss"], abs=RECORDED_TOLERANCE)
    assert first["dev_loss"] == pytest.approx(expected["dev_loss"], abs=RECORDED_TOLERANCE)
    assert (again["train_loss"], again["dev_loss"]) == (first["train_loss"], first["dev_loss"])


def test_old_runs_plot(old_runs: Path) -> None:
    assert "wrote" in invoke("plot-emb", "mlp", "--out", "emb.png")
    assert "wrote" in invoke("plot-loss", "mlp", "numpy-adamw", "bigram", "--out", "loss.png")
    assert (old_runs / "emb.png").stat().st_size > 10_000 and (old_runs / "loss.png").stat().st_size > 10_000


def test_a_finished_old_bigram_run_is_not_refitted(old_runs: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--resume", "bigram"])
    assert result.exit_code == 2 and "nothing to resume" in result.stderr


def test_a_sweep_directory_of_0_1_is_continued_not_refused(old_runs: Path) -> None:
    """A run of a sweep made by 0.1 has a config.toml without the keys added since; a rerun of the
    same sweep still recognises it as finished (configs are compared, not their text)."""
    sweep = old_runs / "sweep"
    sweep.mkdir()
    shutil.copytree(old_runs / "mlp", sweep / "model.n_hidden=16")
    assert "max_len" not in (sweep / "model.n_hidden=16" / "config.toml").read_text()
    base = old_runs / "base.toml"  # the old run's own config as the sweep's base
    base.write_text((old_runs / "mlp" / "config.toml").read_text(), encoding="utf-8")
    args = ["sweep", "--config", str(base), "--out", str(sweep), "--grid", "model.n_hidden=16", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "skipped" in (sweep / "results.md").read_text()
