"""Shared fixtures: small words files and a CLI runner."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

#: Forty short made-up words: enough for an 80/10/10 split, trains in a blink.
TINY_WORDS = [
    "ava", "ben", "cara", "dan", "eli", "fay", "gus", "hana", "ian", "jo",
    "kai", "lea", "max", "nia", "otto", "pia", "quin", "rey", "sam", "tia",
    "uma", "vic", "wes", "xia", "yan", "zoe", "abel", "bea", "cole", "dina",
    "emma", "finn", "gia", "hugo", "ivy", "jade", "kim", "liam", "mia", "noah",
]


def _has_mlx() -> bool:
    try:
        import mlx.core  # noqa: F401
    except ImportError:
        return False
    return True


#: Whether the [mlx] extra is installed. Tests and parametrisations that need it are marked with
#: `needs_mlx` / `with_mlx`, so without it they are reported as skipped, never silently left out.
HAS_MLX = importlib.util.find_spec("mlx") is not None and _has_mlx()
needs_mlx = pytest.mark.skipif(not HAS_MLX, reason="MLX not installed: pip install 'makemore[mlx]'")


def with_mlx(*values: object) -> object:
    """A parametrisation that needs MLX: pytest.param(*values), skipped (and reported) without it."""
    return pytest.param(*values, marks=needs_mlx)


@pytest.fixture
def tiny_words_file(tmp_path: Path) -> Path:
    path = tmp_path / "words.txt"
    path.write_text("\n".join(TINY_WORDS) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def tiny_overrides(words_file: Path, steps: int = 60) -> list[str]:
    """--set arguments for a seconds-long run of a tiny model on `words_file`."""
    pairs = {
        "data.path": f'"{words_file.as_posix()}"', "data.block_size": "3", "model.n_embd": "4", "model.n_hidden": "16",
        "train.steps": str(steps), "train.batch_size": "16", "train.eval_interval": str(max(steps // 2, 1)),
        "train.log_interval": "10", "train.lr_milestones": f"[{steps // 2}]", "train.device": "cpu",
    }
    args: list[str] = []
    for key, value in pairs.items():
        args += ["--set", f"{key}={value}"]
    return args


def wait_for(condition: Callable[[], Any], what: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll `condition()` every 2 ms until it holds; fail if `proc` ends or `timeout` s pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def tiny_config_text(words: Path, steps: int, eval_interval: int, log_interval: int = 10) -> str:
    """The TOML of a tiny MLP (n_embd 4, n_hidden 16, no dropout, no batchnorm) on the words file
    `words`: batches of 16 on the CPU, one thread."""
    return f"""
[data]
path = {json.dumps(words.as_posix())}
[model]
n_embd = 4
n_hidden = 16
[train]
device = "cpu"
steps = {steps}
batch_size = 16
eval_interval = {eval_interval}
log_interval = {log_interval}
threads = 1
"""


def write_tiny_config(directory: Path, steps: int, eval_interval: int, milestone: int) -> Path:
    """A TOML config of a tiny MLP (tiny_config_text) on TINY_WORDS, both written into `directory`."""
    words = directory / "words.txt"
    words.write_text("\n".join(TINY_WORDS) + "\n", encoding="utf-8")
    config = directory / "tiny.toml"
    config.write_text(tiny_config_text(words, steps, eval_interval) + f"lr_milestones = [{milestone}]\n", encoding="utf-8")
    return config
