"""Data-parallel training under torchrun (gloo, CPU) and SIGTERM handled like Ctrl-C.

Two processes that each take half of every global minibatch must train the same model as one
process (up to the order of float additions); rank 0 alone writes the run directory; the
checkpoint they write resumes under one process; a failing rank ends the job with one line;
SIGTERM stops at a step every rank agrees on, with a checkpoint, exit code 143 and a resume that
is bit-exact.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from makemore import runs
from makemore.cli import app
from makemore.config import load_config
from makemore.training import train

from tests.conftest import wait_for, write_tiny_config

STEPS = 200
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A tiny config (no dropout, no batchnorm), and its one-process run of STEPS steps."""
    d = tmp_path_factory.mktemp("ddp")
    config = write_tiny_config(d, STEPS, eval_interval=50, milestone=100)
    one = d / "one"
    train(load_config(config), one)
    return {"dir": d, "config": config, "one": one}


def params(run_dir: Path) -> dict[str, torch.Tensor]:
    return runs.load_checkpoint(run_dir)["model"]


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], rel: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).norm() <= rel * a[k].norm(), (k, ((a[k] - b[k]).norm() / a[k].norm()).item())


def launch(args: list[str], **kwargs) -> subprocess.Popen:
    """A subprocess from the repository root, its own process group, output captured."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True, **kwargs)


def test_two_processes_train_what_one_does_and_their_checkpoint_resumes_under_one(setup, runner) -> None:
    two = setup["dir"] / "two"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "makemore", "train", "--config", str(setup["config"]), "--run-dir", str(two), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len([line for line in done.stdout.splitlines() if line.startswith("{")]) == 1  # rank 0 alone prints
    assert_close(params(setup["one"]), params(two))
    m1, m2 = runs.read_metrics(setup["one"]), runs.read_metrics(two)
    assert [r["step"] for r in m2] == [r["step"] for r in m1] == list(range(10, STEPS + 1, 10))  # written once
    for r1, r2 in zip(m1, m2):  # the logged loss is the mean over the whole global batch, as in one process
        assert r2["train_loss"] == pytest.approx(r1["train_loss"], rel=1e-5)
        assert (r2["dev_loss"] is None) == (r1["dev_loss"] is None)
    assert {p.name for p in two.iterdir()} == {p.name for p in setup["one"].iterdir()}

    # the two-process checkpoint resumes under one process, exactly: straight on, or stopped on the way
    straight, halting = setup["dir"] / "straight", setup["dir"] / "halting"
    shutil.copytree(two, straight)
    shutil.copytree(two, halting)
    for run_dir, steps in ((straight, 300), (halting, 250), (halting, 300)):
        result = runner.invoke(app, ["train", "--resume", str(run_dir), "--set", f"train.steps={steps}", "-q"])
        assert result.exit_code == 0, result.output
    assert all(torch.equal(a, b) for a, b in zip(params(straight).values(), params(halting).values()))
    one_300 = setup["dir"] / "one300"
    train(load_config(setup["config"], ["train.steps=300"]), one_300)
    assert_close(params(one_300), params(straight))


FAILING_RANK = """
import os

if os.environ.get("RANK") == "1":  # rank 1 of the job: its 30th step raises
    from makemore.backends import torch_backend
    from makemore.errors import MakemoreError

    _step = torch_backend.TorchBackend.train_step
    _calls = [0]

    def _failing(self, X, Y, lr):
        _calls[0] += 1
        if _calls[0] == 30:
            raise MakemoreError("cannot read the next batch (an injected failure)")
        return _step(self, X, Y, lr)

    torch_backend.TorchBackend.train_step = _failing
"""


def test_a_failing_rank_ends_the_job_with_one_line(setup, tmp_path) -> None:
    (tmp_path / "sitecustomize.py").write_text(FAILING_RANK, encoding="utf-8")  # loaded by every process started below
    run_dir = tmp_path / "run"
    t0 = time.monotonic()
    proc = launch([sys.executable, "-m", "makemore", "train", "--nproc", "2", "--config", str(setup["config"]),
                   "--run-dir", str(run_dir), "--set", "train.steps=100000000", "-q"],
                  env={"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])})
    out, _ = proc.communicate(timeout=90)
    assert time.monotonic() - t0 < 60
    assert proc.returncode == 2, out  # the code of a reported mistake
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert errors[0] == "error: rank 1: cannot read the next batch (an injected failure)", out
    assert [e for e in errors[1:] if not e.startswith("error: another process of this job stopped")] == [], out
    assert "Traceback" not in out
    assert runs.load_checkpoint(run_dir)["step"] == 0  # the checkpoint is kept


def test_sigterm_to_the_launcher_stops_every_rank_at_one_step_and_the_run_resumes_under_one_process(setup, runner) -> None:
    """With a sequence model (words of different lengths: the ranks' rows hold different numbers of targets)."""
    one = setup["dir"] / "one-bow"
    train(load_config(setup["config"], ["model.type=bow"]), one)
    run_dir = setup["dir"] / "stopped"
    proc = launch([sys.executable, "-m", "makemore", "train", "--nproc", "2", "--config", str(setup["config"]), "--set", "model.type=bow",
                   "--run-dir", str(run_dir), "--set", "train.steps=100000000", "--set", "train.eval_interval=100000", "-q"])
    wait_for((run_dir / runs.CHECKPOINT).exists, "the first checkpoint", proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)  # to the launcher only, as a scheduler does
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    step = runs.load_checkpoint(run_dir)["step"]
    assert f"interrupted by SIGTERM at step {step}: checkpoint saved. Resume with: makemore train --resume {run_dir}" in out
    assert out.count("interrupted") == 1
    assert 0 < step and runs.read_metrics(run_dir)[-1]["step"] == step
    assert step < STEPS, "the run went past the steps the comparison needs; send the signal sooner"
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--set", f"train.steps={STEPS}", "-q"])
    assert result.exit_code == 0, result.output
    assert_close(params(one), params(run_dir))


def test_sigterm_stops_one_process_like_ctrl_c_and_resume_is_exact(setup, tmp_path, runner) -> None:
    run_dir = tmp_path / "run"
    proc = launch([sys.executable, "-m", "makemore", "train", "--config", str(setup["config"]), "--run-dir", str(run_dir),
                   "--set", "train.steps=100000000", "-q"])
    wait_for((run_dir / runs.CHECKPOINT).exists, "the first checkpoint", proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    step = runs.load_checkpoint(run_dir)["step"]
    assert out.strip().endswith(f"interrupted by SIGTERM at step {step}: checkpoint saved. Resume with: makemore train --resume {run_dir}")
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--set", f"train.steps={step + 40}", "-q"])
    assert result.exit_code == 0, result.output
    whole = tmp_path / "whole"
    train(load_config(setup["config"], [f"train.steps={step + 40}"]), whole)
    assert all(torch.equal(a, b) for a, b in zip(params(whole).values(), params(run_dir).values()))


@pytest.mark.parametrize("rank", ["0", "1"])
def test_what_torchrun_cannot_split_is_one_line_from_rank_0(setup, runner, monkeypatch, rank) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", rank)
    for sets, message in ((["train.backend=numpy"], "error: train.backend = 'numpy' trains in one process only"),
                          (["train.batch_size=15"], "error: train.batch_size = 15 is the global batch and must split evenly"),
                          (["model.type=bigram"], "error: this model is fitted in one pass by counting")):
        result = runner.invoke(app, ["train", "--config", str(setup["config"]), "--run-dir", str(setup["dir"] / "never"),
                                     *(a for s in sets for a in ("--set", s))])
        assert result.exit_code == 2
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        if rank == "0":
            assert len(errors) == 1 and errors[0].startswith(message), result.output
        else:
            assert result.output == ""
    assert not (setup["dir"] / "never").exists()
