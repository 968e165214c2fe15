"""Interrupt and resume exactly; the same config twice gives bit-identical results (on the CPU).

A run stopped by Ctrl-C and continued with `makemore train --resume` must end with exactly the
parameters (torch.equal) and optimizer state of a run that was never interrupted: the minibatches
are recomputed from (seed, chunk), and the checkpoint carries the optimizer, schedule position
and dropout generator.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from makemore import runs
from makemore import training as train_module
from makemore.cli import app
from makemore.config import load_config
from makemore.training import TrainingInterrupted
from tests.conftest import exit_130, tiny_config_text, training, wait_for, with_mlx

WORDS = [
    "ava", "ben", "cara", "dan", "eli", "fay", "gus", "hana", "ian", "jo",
    "kai", "lea", "max", "nia", "otto", "pia", "quin", "rey", "sam", "tia",
    "uma", "vic", "wes", "xia", "yan", "zoe", "abel", "bea", "cole", "dina",
]

STEPS = 30
REAL_CHUNK_WINDOWS = train_module.CHUNK_WINDOWS

#: Model/optimizer setups that each keep different state across a resume.
SETUPS = {
    "lecture sgd, lr drop mid-run": ["train.optimizer=sgd", "train.schedule=step", "train.lr_milestones=[17]"],
    "adamw, dropout, batchnorm, cosine with warm-up": [
        "train.optimizer=adamw", "train.lr=0.01", "train.weight_decay=0.01", "model.dropout=0.2",
        "model.norm=batchnorm", "train.schedule=cosine", "train.warmup_steps=5", "train.min_lr=0.001"],
    "momentum, layernorm, gelu, 2 layers": [
        "train.optimizer=momentum", "model.norm=layernorm", "model.activation=gelu", "model.n_layers=2"],
}

BACKENDS = ["torch", "numpy", with_mlx("mlx")]


pytestmark = pytest.mark.usefixtures("no_loss_plot")


def write_words(directory: Path) -> Path:
    path = directory / "words.txt"
    path.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    return path


def tiny_config(directory: Path, words: Path, extra: list[str], steps: int = STEPS) -> Path:
    """conftest's tiny MLP on `words`, evaluated every 10 steps and logged every 5, with `extra`
    overrides applied and written out whole."""
    text = tiny_config_text(words, steps, eval_interval=10, log_interval=5)
    path = directory / "tiny.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path, extra)
    path.write_text(cfg.to_toml(), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Minibatches are drawn 4 steps at a time, so an interruption lands inside a chunk and resume
    crosses chunk boundaries."""
    monkeypatch.setattr(train_module, "CHUNK_WINDOWS", 64)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # train.threads = 1 in these configs


def cli(*args) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


def interrupt_at(step: int) -> train_module.Listener:
    """A training listener that sends this process a real SIGINT at the record of `step`."""

    class Interrupter(train_module.Listener):
        def record(self, record, steps_per_s) -> None:
            if record.step == step:
                os.kill(os.getpid(), signal.SIGINT)

    return Interrupter()


def assert_same_state(a: dict, b: dict) -> None:
    """Two checkpoints hold exactly equal parameters, buffers and optimizer/generator state."""
    assert a["step"] == b["step"]
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert_equal_tree(a.get("backend_state"), b.get("backend_state"), "backend_state")


def assert_equal_tree(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_equal_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_equal_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


#: Every setup on torch; the one with the most state (adamw moments, dropout generator, batchnorm
#: running statistics) on the other backends.
CASES = [(setup, "torch") for setup in SETUPS] + [
    ("adamw, dropout, batchnorm, cosine with warm-up", "numpy"), with_mlx("adamw, dropout, batchnorm, cosine with warm-up", "mlx")]


@pytest.mark.parametrize("setup,backend", CASES)
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, setup, backend):
    extra = SETUPS[setup] + [f"train.backend={backend}"]
    config = tiny_config(tmp_path, write_words(tmp_path), extra)
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    cli("train", "--config", config, "--run-dir", straight, "-q")
    handler = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job

    # a real SIGINT at step 10's record: the loop finishes step 11, checkpoints it and stops
    with pytest.raises(TrainingInterrupted) as info:
        train_module.train(load_config(config), stopped , listener=interrupt_at(10))
    assert info.value.step == 11
    assert runs.load_checkpoint(stopped)["step"] == 11
    assert signal.getsignal(signal.SIGINT) is handler  # the handler was put back

    result = cli("train", "--resume", stopped, "-q", "--json")
    assert json.loads(result.stdout)["steps"] == STEPS
    a, b = runs.load_checkpoint(straight), runs.load_checkpoint(stopped)
    assert_same_state(a, b)

    # every dev evaluation agrees, and the training-loss records from the first full interval after the resume
    ma = {r["step"]: r for r in runs.read_metrics(straight)}
    mb = {r["step"]: r for r in runs.read_metrics(stopped)}
    for step in (10, 20, 30):
        assert ma[step]["dev_loss"] == mb[step]["dev_loss"]
    for step in range(20, STEPS + 1, 5):
        assert ma[step]["train_loss"] == mb[step]["train_loss"]
    assert json.loads((stopped / runs.SUMMARY).read_text())["train_loss"] == json.loads((straight / runs.SUMMARY).read_text())["train_loss"]


@pytest.mark.parametrize("family", ["transformer", "gru"])
def test_a_sequence_model_resumed_across_minibatch_chunks_equals_an_uninterrupted_run(tmp_path, family):
    """A sequence family (padded minibatches of whole words) with dropout and AdamW: minibatches are
    drawn 4 steps at a time (small_chunks: 64 // 16), the stop lands at step 11, inside the third
    chunk, and the resumed run crosses the chunk boundaries at steps 12 .. 28 to the end."""
    extra = [f"model.type={family}", "train.backend=torch", "model.n_embd=8", "model.n_head=2", "model.n_layers=1",
             "train.optimizer=adamw", "train.lr=0.01", "model.dropout=0.1", "train.schedule=cosine"]
    assert train_module.steps_per_chunk(16) == 4 and 11 % 4 != 0
    config = tiny_config(tmp_path, write_words(tmp_path), extra)
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    cli("train", "--config", config, "--run-dir", straight, "-q")
    with pytest.raises(TrainingInterrupted) as info:
        train_module.train(load_config(config), stopped, listener=interrupt_at(10))
    assert info.value.step == 11
    cli("train", "--resume", stopped, "-q")
    assert_same_state(runs.load_checkpoint(straight), runs.load_checkpoint(stopped))
    assert [r["train_loss"] for r in runs.read_metrics(stopped)][-2:] == [r["train_loss"] for r in runs.read_metrics(straight)][-2:]


def test_resume_continues_to_more_steps_exactly(tmp_path):
    """A finished run of 12 steps resumed to 30 equals a run of 30 (constant schedule)."""
    words = write_words(tmp_path)
    extra = ["train.optimizer=adamw", "train.lr=0.01", "model.dropout=0.1", "train.schedule=constant"]
    cli("train", "--config", tiny_config(tmp_path, words, extra), "--run-dir", tmp_path / "straight", "-q")
    cli("train", "--config", tiny_config(tmp_path, words, extra, steps=12), "--run-dir", tmp_path / "short", "-q")
    cli("train", "--resume", tmp_path / "short", "--set", f"train.steps={STEPS}", "-q")
    assert_same_state(runs.load_checkpoint(tmp_path / "straight"), runs.load_checkpoint(tmp_path / "short"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_config_twice_gives_bit_identical_losses(tmp_path, backend):
    words = write_words(tmp_path)
    extra = SETUPS["adamw, dropout, batchnorm, cosine with warm-up"] + [f"train.backend={backend}"]
    config = tiny_config(tmp_path, words, extra)
    for name in ("one", "two"):
        cli("train", "--config", config, "--run-dir", tmp_path / name, "-q")
    keys = ("step", "train_loss", "dev_loss", "lr")
    one = [[r[k] for k in keys] for r in runs.read_metrics(tmp_path / "one")]
    two = [[r[k] for k in keys] for r in runs.read_metrics(tmp_path / "two")]
    assert len(one) == STEPS // 5 and one == two
    assert_same_state(runs.load_checkpoint(tmp_path / "one"), runs.load_checkpoint(tmp_path / "two"))
    # and the comparison can fail: another seed gives other losses
    cli("train", "--config", config, "--set", "train.seed=7", "--run-dir", tmp_path / "three", "-q")
    three = [[r[k] for k in keys] for r in runs.read_metrics(tmp_path / "three")]
    assert three != one


def test_ctrl_c_in_a_real_process_checkpoints_exits_130_and_resumes(tmp_path, monkeypatch):
    """`makemore train` in its own process, sent SIGINT mid-training: exit code 130, a message
    naming the resume command, a checkpoint of the step it stopped at; resuming finishes the run
    with exactly the parameters of a run that was never interrupted."""
    monkeypatch.setattr(train_module, "CHUNK_WINDOWS", REAL_CHUNK_WINDOWS)  # as in the child process
    words = write_words(tmp_path)
    config = tiny_config(tmp_path, words, ["train.schedule=constant"], steps=10_000_000)
    run = tmp_path / "run"
    with training("--config", config, "--run-dir", run) as proc:
        wait_for(lambda: runs.read_metrics(run), "training under way", proc)
        proc.send_signal(signal.SIGINT)
        err = exit_130(proc)
    step = runs.load_checkpoint(run)["step"]
    assert 0 < step < 10_000_000
    assert f"interrupted at step {step}: checkpoint saved. Resume with: makemore train --resume {run}" in " ".join(err.split())
    assert runs.read_metrics(run)[-1]["step"] == step

    result = cli("train", "--resume", run, "--set", f"train.steps={step + 7}", "-q", "--json")
    assert json.loads(result.stdout)["steps"] == step + 7
    cli("train", "--config", config, "--set", f"train.steps={step + 7}", "--run-dir", tmp_path / "straight", "-q")
    assert_same_state(runs.load_checkpoint(run), runs.load_checkpoint(tmp_path / "straight"))


def test_ctrl_c_before_training_starts_leaves_nothing(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, write_words(tmp_path), [])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "read_data", interrupted)  # Ctrl-C while the words are read
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--run-dir", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 130, result.output
    assert "nothing was saved" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("ignore_sigint", [False, True], ids=["terminal", "background job"])
def test_second_ctrl_c_inside_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch, ignore_sigint):
    """A real process, real signals: the first SIGINT asks for a checkpoint; the second arrives while
    that checkpoint is being written (every checkpoint write waits a minute, and the signal is sent
    once the temporary file exists). The previous checkpoint stays whole, no temporary file is left,
    the process exits 130 naming the resume command, and the run resumes. The same in a process
    that started with SIGINT ignored, as a shell's background job does: the second SIGINT still stops it."""
    monkeypatch.setattr(train_module, "CHUNK_WINDOWS", REAL_CHUNK_WINDOWS)  # as in the child process
    config = tiny_config(tmp_path, write_words(tmp_path), ["train.schedule=constant"], steps=10)
    run = tmp_path / "run"
    cli("train", "--config", config, "--run-dir", run, "-q")  # the previous checkpoint: step 10
    # resumed in a process of its own, it writes no checkpoint until it is asked to stop
    with training("--resume", run, "--set", "train.steps=10000000", "--set", "train.eval_interval=10000000", slow_write=60,
                  ignore_sigint=ignore_sigint) as proc:
        wait_for(lambda: any(r["step"] > 10 for r in runs.read_metrics(run)), "training under way", proc)
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: list(run.glob(f".{runs.CHECKPOINT}.*.tmp")), "the interrupt's checkpoint write", proc)
        proc.send_signal(signal.SIGINT)
        err = exit_130(proc)
    assert f"interrupted: the last checkpoint is kept. Resume with: makemore train --resume {run}" in " ".join(err.split())
    assert runs.load_checkpoint(run)["step"] == 10
    assert not list(run.glob(".*.tmp"))
    cli("train", "--resume", run, "--set", "train.steps=22", "-q")
    assert runs.load_checkpoint(run)["step"] == 22


@pytest.mark.parametrize("schedule", [["train.schedule=step", "train.lr_milestones=[20]"],
                                      ["train.schedule=cosine", "train.warmup_steps=5", "train.min_lr=0.001"]],
                         ids=["step", "cosine"])
def test_resume_in_a_real_process_across_a_minibatch_chunk_boundary(tmp_path, schedule, monkeypatch):
    """`makemore train` stopped by a real SIGINT and resumed by `makemore train --resume`, each in
    its own process, with minibatches of 4096 (16 steps to a chunk of drawn indices): the resumed
    run crosses chunk boundaries and the schedule's changes, and ends exactly as an uninterrupted one."""
    monkeypatch.setattr(train_module, "CHUNK_WINDOWS", REAL_CHUNK_WINDOWS)  # as in the child processes
    steps, per_chunk = 40, train_module.steps_per_chunk(4096)
    assert per_chunk == 16
    config = tiny_config(tmp_path, write_words(tmp_path), [*schedule, "train.batch_size=4096", "train.eval_interval=5",
                                                           "train.log_interval=1"], steps=steps)
    stopped = tmp_path / "stopped"
    with training("--config", config, "--run-dir", stopped, slow_write=0.2) as proc:
        wait_for(lambda: any(r["step"] >= 2 for r in runs.read_metrics(stopped)), "training under way", proc)
        proc.send_signal(signal.SIGINT)
        exit_130(proc)
    step = runs.load_checkpoint(stopped)["step"]
    assert 0 < step < 2 * per_chunk, step  # the resumed part crosses at least one chunk boundary
    resumed = subprocess.run([sys.executable, "-m", "makemore", "train", "--resume", str(stopped), "-q", "--json"],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps"] == steps
    cli("train", "--config", config, "--run-dir", tmp_path / "straight", "-q")
    assert_same_state(runs.load_checkpoint(tmp_path / "straight"), runs.load_checkpoint(stopped))
    assert [r["lr"] for r in runs.read_metrics(stopped)] == [r["lr"] for r in runs.read_metrics(tmp_path / "straight")]


def test_resume_on_a_changed_words_file_warns(tmp_path):
    words = write_words(tmp_path)
    config = tiny_config(tmp_path, words, [], steps=10)
    cli("train", "--config", config, "--run-dir", tmp_path / "run", "-q")
    words.write_text("\n".join(reversed(WORDS)) + "\n", encoding="utf-8")  # same characters, other order
    result = cli("train", "--resume", tmp_path / "run", "--set", "train.steps=15", "-q")
    assert "is not the file this run was trained on" in " ".join(result.stderr.split())
