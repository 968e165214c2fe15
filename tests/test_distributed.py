"""Data-parallel training under torchrun (gloo, CPU) and SIGTERM handled like Ctrl-C.

Two processes that each take half of every global minibatch must train the same model as one
process (up to the order of float additions); rank 0 alone writes the run directory; the
checkpoint they write resumes under one process; a failing rank ends the job with one line;
SIGTERM stops at a step every rank agrees on, with a checkpoint, exit code 143 and a resume that
is bit-exact; with dropout (each rank its own stream) an interrupted two-process run resumed by two
processes equals an uninterrupted two-process run bit for bit.

Each rank's rows are checked directly (World.rows, train.minibatches, and the rows each rank of a
real job trains on), because the results alone cannot tell data parallelism from every rank
training the whole batch: averaging W equal gradients gives the one-process gradient too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from makemore import runs
from makemore.backends.torch_backend import TorchBackend
from makemore.cli import app
from makemore.config import load_config
from makemore.distributed import World
from makemore.prepare import prepare
from makemore.training import minibatches, train

from tests.conftest import wait_for, write_tiny_config

STEPS = 200
ROOT = Path(__file__).resolve().parent.parent


#: How many of a run's first minibatches the row checks look at.
RECORDED = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A tiny config (no dropout, no batchnorm, the torch backend), its one-process run of STEPS
    steps, and the first RECORDED minibatches (X, Y) that run trained on."""
    d = tmp_path_factory.mktemp("ddp")
    config = write_tiny_config(d, STEPS, eval_interval=50, milestone=100)
    config.write_text(config.read_text(encoding="utf-8") + 'backend = "torch"\n', encoding="utf-8")
    one = d / "one"
    batches: list[tuple[np.ndarray, np.ndarray]] = []
    step = TorchBackend.train_step

    def recording(self, X, Y, lr):
        if len(batches) < RECORDED:
            batches.append((X.numpy().copy(), Y.numpy().copy()))
        return step(self, X, Y, lr)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TorchBackend, "train_step", recording)
        train(load_config(config), one)
    return {"dir": d, "config": config, "one": one, "batches": batches}


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


def with_hook(directory: Path, code: str) -> dict[str, str]:
    """The environment that loads `code` as sitecustomize in every Python process started with it."""
    (directory / "sitecustomize.py").write_text(code, encoding="utf-8")
    return {"PYTHONPATH": os.pathsep.join([str(directory), os.environ.get("PYTHONPATH", "")])}


#: Every rank of the job records the rows (X, Y) of its first RECORDED training steps.
RECORD_ROWS = """
import os

if "RANK" in os.environ:  # a worker of the job, not the launcher
    import numpy as np
    from makemore.backends import torch_backend

    _step = torch_backend.TorchBackend.train_step
    _calls = [0]

    def _recording(self, X, Y, lr):
        _calls[0] += 1
        if _calls[0] <= %d:
            name = "rank%%s-step%%d.npz" %% (os.environ["RANK"], _calls[0])
            np.savez(os.path.join(os.path.dirname(__file__), name), X=X.cpu().numpy(), Y=Y.cpu().numpy())
        return _step(self, X, Y, lr)

    torch_backend.TorchBackend.train_step = _recording
""" % RECORDED


@pytest.mark.parametrize("size", [1, 2, 4])
def test_each_rank_takes_its_own_rows_of_the_same_seeded_minibatch(setup, size) -> None:
    """World.rows: rank r takes rows [r·B/W, (r+1)·B/W), so the ranks' rows are disjoint and cover the
    global batch in rank order; train.minibatches with a rank's rows gives exactly those rows of the
    step's one-process minibatch, for steps inside a chunk and across a chunk boundary."""
    B = 16
    slices = [World(rank, size).rows(B) for rank in range(size)]
    assert [list(range(B))[s] for s in slices] == [list(range(r * B // size, (r + 1) * B // size)) for r in range(size)]
    cfg = load_config(setup["config"])
    view = prepare(cfg).view("train")

    class Arrays:  # the arrays minibatches yields, as NumPy
        asarray = staticmethod(np.asarray)

    steps = (4094, 4098)  # 4096 steps to a chunk of 16-row minibatches: crosses a chunk boundary
    whole = list(minibatches(Arrays, cfg.train, view, *steps))
    parts = [list(minibatches(Arrays, cfg.train, view, *steps, rows=s)) for s in slices]
    assert len(whole) == 4
    for i, (X, Y) in enumerate(whole):
        assert all(len(part[i][1]) == B // size for part in parts)
        np.testing.assert_array_equal(np.concatenate([part[i][0] for part in parts]), X)
        np.testing.assert_array_equal(np.concatenate([part[i][1] for part in parts]), Y)


#: The two-process dev loss against the one-process one, relative. Not bit-exact: evaluation
#: itself is exact (the ranks' float64 partial sums of whole chunks add to the mean,
#: data.mean_over), but the parameters differ, because DistributedDataParallel sums the ranks'
#: float32 gradients in another order than one process's backward does: each step rounds
#: differently (float32: ~6e-8 relative), and over STEPS steps the parameters drift apart by about
#: 1e-7 relative (measured: 0.4-2e-7 per tensor; checked below against 1e-5). The mean NLL is a
#: smooth function of the parameters, so it moves by as little (measured: at most 1.5e-7), and is
#: held to the same 1e-5 as they are. A wrong evaluation (half the dev split, one rank's share
#: counted twice) is off by 1e-3 or more on these 4 dev words.
DEV_REL = 1e-5


def test_two_processes_train_what_one_does_and_their_checkpoint_resumes_under_one(setup, runner, tmp_path) -> None:
    two = setup["dir"] / "two"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "makemore", "train", "--config", str(setup["config"]), "--run-dir", str(two), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **with_hook(tmp_path, RECORD_ROWS)})
    assert done.returncode == 0, done.stderr
    assert len([line for line in done.stdout.splitlines() if line.startswith("{")]) == 1  # rank 0 alone prints
    # each rank trained on its half of every global minibatch: rank 0 the first 8 rows, rank 1 the last 8
    for step, (X, Y) in enumerate(setup["batches"], start=1):
        ranks = [np.load(tmp_path / f"rank{rank}-step{step}.npz") for rank in (0, 1)]
        for rank, rows in ((0, slice(0, 8)), (1, slice(8, 16))):
            np.testing.assert_array_equal(ranks[rank]["X"], X[rows])
            np.testing.assert_array_equal(ranks[rank]["Y"], Y[rows])
    assert_close(params(setup["one"]), params(two))
    m1, m2 = runs.read_metrics(setup["one"]), runs.read_metrics(two)
    assert [r["step"] for r in m2] == [r["step"] for r in m1] == list(range(10, STEPS + 1, 10))  # written once
    for r1, r2 in zip(m1, m2):  # the logged loss is the mean over the whole global batch, as in one process
        assert r2["train_loss"] == pytest.approx(r1["train_loss"], rel=1e-5)
        assert (r2["dev_loss"] is None) == (r1["dev_loss"] is None)
        if r1["dev_loss"] is not None:  # the whole dev split, evaluated by both ranks together
            assert r2["dev_loss"] == pytest.approx(r1["dev_loss"], rel=DEV_REL), r1["step"]
    assert len([r for r in m1 if r["dev_loss"] is not None]) == STEPS // 50
    assert runs.read_summary(two)["dev_loss"] == pytest.approx(runs.read_summary(setup["one"])["dev_loss"], rel=DEV_REL)
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
    proc = launch([sys.executable, "-m", "makemore", "train", "--nproc", "2", "--config", str(setup["config"]),
                   "--run-dir", str(run_dir), "--set", "train.steps=100000000", "-q"],
                  env={"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])})
    out, _ = proc.communicate(timeout=300)  # a hang guard only: the failing rank ends the job at once
    assert proc.returncode == 2, out  # the code of a reported mistake
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert errors[0] == "error: rank 1: cannot read the next batch (an injected failure)", out
    assert [e for e in errors[1:] if not e.startswith("error: another process of this job stopped")] == [], out
    assert "Traceback" not in out
    assert runs.load_checkpoint(run_dir)["step"] == 0  # the checkpoint is kept


def test_two_processes_fit_a_time_budget_to_one_step_count(setup, tmp_path) -> None:
    # each rank times its own steps: they must still take one decision at one record and one count,
    # or one of them would wait for the other's evaluation forever
    run_dir = tmp_path / "run"
    proc = launch([sys.executable, "-m", "makemore", "train", "--nproc", "2", "--config", str(setup["config"]),
                   "--run-dir", str(run_dir), "--set", "train.steps=100000000", "--set", "train.time_budget_s=3",
                   "--set", "train.schedule=cosine", "--set", "train.log_interval=10", "--set", "train.plot=false", "-q"])
    out, _ = proc.communicate(timeout=300)  # a hang guard only
    assert proc.returncode == 0, out
    summary = runs.read_summary(run_dir)
    assert summary["steps"] == summary["fitted_steps"] == runs.load_checkpoint(run_dir)["fitted_steps"] < 100000000


def sigterm_inside_a_checkpoint_write(proc: subprocess.Popen, run_dir: Path) -> None:
    """Send SIGTERM to `proc` (the launcher only, as a scheduler does) while rank 0 is inside a
    checkpoint write after step 0's (every write slowed by conftest's slow_write hook), so that the
    run is stopped at a step after that checkpoint, whatever the machine's speed."""
    wait_for(lambda: runs.has_checkpoint(run_dir) and list(run_dir.glob(f".{runs.CHECKPOINT}.*.tmp")),
             "a checkpoint write after step 0's", proc, timeout=300)
    proc.send_signal(signal.SIGTERM)


def test_sigterm_to_the_launcher_stops_every_rank_at_one_step_and_the_run_resumes_under_one_process(setup, runner) -> None:
    """With a sequence model (words of different lengths: the ranks' rows hold different numbers of targets)."""
    run_dir = setup["dir"] / "stopped"
    proc = launch([sys.executable, "-m", "makemore", "train", "--nproc", "2", "--config", str(setup["config"]), "--set", "model.type=bow",
                   "--run-dir", str(run_dir), "--set", "train.steps=100000000", "--set", "train.eval_interval=20", "-q"],
                  env={runs.SLOW_WRITE_ENV: "1"})
    sigterm_inside_a_checkpoint_write(proc, run_dir)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 143, out
    step = runs.load_checkpoint(run_dir)["step"]
    assert f"interrupted by SIGTERM at step {step}: checkpoint saved. Resume with: makemore train --resume {run_dir}" in out
    assert out.count("interrupted") == 1
    assert step > 20 and runs.read_metrics(run_dir)[-1]["step"] == step
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--set", f"train.steps={step + 40}", "-q"])
    assert result.exit_code == 0, result.output
    one = setup["dir"] / "one-bow"
    train(load_config(setup["config"], ["model.type=bow", "train.eval_interval=20", f"train.steps={step + 40}"]), one)
    assert_close(params(one), params(run_dir))


def test_sigterm_stops_one_process_like_ctrl_c_and_resume_is_exact(setup, tmp_path, runner) -> None:
    run_dir = tmp_path / "run"
    proc = launch([sys.executable, "-m", "makemore", "train", "--config", str(setup["config"]), "--run-dir", str(run_dir),
                   "--set", "train.steps=100000000", "-q"])
    wait_for(lambda: runs.read_metrics(run_dir), "training under way (a metrics record)", proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
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


def test_with_dropout_an_interrupted_two_process_run_resumed_by_two_equals_an_uninterrupted_one(setup, tmp_path) -> None:
    """Dropout 0.2: each rank draws its masks from its own generator, and the checkpoint keeps every
    rank's generator state. A two-process run stopped by SIGTERM after a checkpoint and resumed by
    two processes ends with exactly the parameters, bit for bit, of a two-process run never stopped."""
    dropout = ["--set", "model.dropout=0.2", "--set", "train.eval_interval=20", "--set", "train.steps=60"]

    def job(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return launch([sys.executable, "-m", "makemore", "train", "--nproc", "2", *args, "-q"], env=env or {})

    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    straight = job("--config", str(setup["config"]), "--run-dir", str(whole), *dropout)
    out, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, out
    interrupted = job("--config", str(setup["config"]), "--run-dir", str(stopped), *dropout, env={runs.SLOW_WRITE_ENV: "1"})
    sigterm_inside_a_checkpoint_write(interrupted, stopped)
    out, _ = interrupted.communicate(timeout=300)
    assert interrupted.returncode == 143, out
    step = runs.load_checkpoint(stopped)["step"]
    assert 20 < step < 60, step  # stopped after the step-20 checkpoint, or the step-40 one
    assert len(runs.load_checkpoint(stopped)["backend_state"]["dropout_rng_ranks"]) == 2
    resumed = job("--resume", str(stopped))
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    a, b = params(whole), params(stopped)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in runs.read_metrics(stopped) if r["step"] > step + 10] == \
        [r["train_loss"] for r in runs.read_metrics(whole) if r["step"] > step + 10]
