"""Shared fixtures: small words files and a CLI runner."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from typer.testing import CliRunner

from makemore import runs
from makemore.training import Listener
from makemore.config import Config, load_config

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
HAS_MLX = _has_mlx()
needs_mlx = pytest.mark.skipif(not HAS_MLX, reason="MLX not installed: pip install 'makemore[mlx]'")


def with_mlx(*values: object) -> object:
    """A parametrisation that needs MLX: pytest.param(*values), skipped (and reported) without it."""
    return pytest.param(*values, marks=needs_mlx)


def write_tiny_words(directory: Path) -> Path:
    """TINY_WORDS, one per line, written to directory/words.txt."""
    path = directory / "words.txt"
    path.write_text("\n".join(TINY_WORDS) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_words_file(tmp_path: Path) -> Path:
    return write_tiny_words(tmp_path)


@pytest.fixture
def no_loss_plot(monkeypatch):
    """Skip drawing loss.png at the end of each run in this process (half a second each), for
    tests that never look at it."""
    import makemore.training

    monkeypatch.setattr(makemore.training, "plot_loss", lambda *args, **kwargs: None)


def mutant(owner: object, name: str, old: str, new: str) -> Callable[..., Any]:
    """`owner.name` (a function of a module, or a method of one of its classes) recompiled from its
    source with `old` replaced by `new`, in its module's namespace: a plausible one-line mistake
    that a test must catch. `old` must occur exactly once."""
    function = getattr(owner, name)
    source = textwrap.dedent(inspect.getsource(function))
    assert source.count(old) == 1, f"{name}: the mutated line {old!r} is not in the source (update the mutant)"
    namespace = dict(vars(sys.modules[function.__module__]))
    exec(compile(source.replace(old, new), f"<mutant of {name}>", "exec"), namespace)  # noqa: S102 - the test's own source edit
    return namespace[name]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def tiny_family_run(root: Path, family: str) -> Path:
    """A seconds-long run of model.type `family` on the forty tiny words in `root` (torch trains every family)."""
    words = write_tiny_words(root)
    run = root / "run"
    from makemore.cli import app

    result = CliRunner().invoke(app, ["train", "--config", "configs/names.toml", *tiny_overrides(words, steps=60),
                                      "--set", f"model.type={family}", "--set", "train.backend=torch",
                                      "--set", "data.block_size=4", "--run-dir", str(run), "-q"])
    assert result.exit_code == 0, result.output
    return run


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


def tiny_cfg(words_file: Path, steps: int = 60, *extra: str) -> Config:
    """The Config of `tiny_overrides` (on the default config), with `extra` "section.key=value" overrides after them."""
    return load_config(None, tiny_overrides(words_file, steps)[1::2] + list(extra))


@contextlib.contextmanager
def training(*args: str | Path, slow_write: float = 0.0, ignore_sigint: bool = False) -> Iterator[subprocess.Popen]:
    """`makemore train ARGS -q` in its own process, every checkpoint write slowed by `slow_write` s
    (tests only, runs.SLOW_WRITE_ENV); started with SIGINT as a terminal's job gets it, or ignored,
    as a shell's background job gets it (ignore_sigint); killed if the block fails before it ends."""
    env = {**os.environ, runs.SLOW_WRITE_ENV: str(slow_write)} if slow_write else None
    disposition = signal.SIG_IGN if ignore_sigint else signal.SIG_DFL  # SIG_DFL: Python installs its own handler
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "train", *map(str, args), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def exit_130(proc: subprocess.Popen) -> str:
    """Wait for `proc`; check it stopped as after Ctrl-C (exit 130, no traceback); return its stderr."""
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    return err


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
    words = write_tiny_words(directory)
    config = directory / "tiny.toml"
    config.write_text(tiny_config_text(words, steps, eval_interval) + f"lr_milestones = [{milestone}]\n", encoding="utf-8")
    return config


def copy_run(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run without its best-dev checkpoint, so that every command reads
    checkpoint.safetensors (or an old checkpoint.pt), the file a damage test damages."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / runs.BEST_CHECKPOINT).unlink(missing_ok=True)
    return run


class CtrlCAt(Listener):
    """A Listener that sends this process SIGINT (Ctrl-C) at the record of `step`."""

    def __init__(self, step: int):
        self.step = step

    def record(self, record: Any, steps_per_s: float) -> None:
        if record.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)
