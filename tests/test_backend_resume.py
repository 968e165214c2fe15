"""Resuming a run with a config its checkpoint does not fit is one error line for every backend,
and leaves the checkpoint as it was (found by reading the docs against the code: the NumPy and MLX
backends used to train on, or crash with, weights of another shape)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore import runs
from makemore.cli import app

from tests.conftest import tiny_overrides, with_mlx


@pytest.mark.parametrize("backend", ["torch", "numpy", with_mlx("mlx")])
@pytest.mark.parametrize("change", ["model.n_hidden=24", "data.block_size=4"])
def test_resume_with_another_model_shape_is_refused(backend: str, change: str, tiny_words_file: Path, tmp_path: Path) -> None:
    cli = CliRunner()
    run = tmp_path / "run"
    result = cli.invoke(app, ["train", "--config", "configs/names.toml", *tiny_overrides(tiny_words_file, steps=20), "--set",
                              f"train.backend={backend}", "--run-dir", str(run), "-q"])
    assert result.exit_code == 0, result.output
    before = (run / runs.CHECKPOINT).read_bytes()
    result = cli.invoke(app, ["train", "--resume", str(run), "--set", change, "--set", "train.steps=40", "-q"])
    assert result.exit_code == 2, (result.output, result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "does not fit this config" in errors[0], result.stderr
    assert "Traceback" not in result.output
    assert (run / runs.CHECKPOINT).read_bytes() == before
    assert runs.load_run(run).step == 20
