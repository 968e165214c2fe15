"""Sweeps on Optuna (makemore.search): workers sharing one study, TPE, pruning; and TensorBoard scalars."""

from __future__ import annotations

import csv
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from makemore import runs, search, tensorboard_log
from makemore.cli import app
from makemore.config import load_config
from makemore.training import train

from tests.conftest import wait_for, write_tiny_config

ROOT = Path(__file__).resolve().parent.parent
#: The tests that run a sweep on Optuna; the others (one line without the extras, TensorBoard) run without it.
needs_optuna = pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="Optuna not installed: pip install 'makemore[sweep]'")


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    return write_tiny_config(tmp_path, 60, eval_interval=20, milestone=40)


def rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "results.csv").open()))


@needs_optuna
def test_two_workers_share_one_study_and_run_each_grid_point_once(tiny_config: Path, tmp_path: Path) -> None:
    out, db = tmp_path / "sweep", tmp_path / "shared.db"
    cmd = [sys.executable, "-m", "makemore", "sweep", "--config", str(tiny_config), "--grid", "train.lr=0.2,0.1,0.05",
           "--grid", "model.n_hidden=8,16", "--out", str(out), "--storage", f"sqlite:///{db}", "--study", "shared", "-q"]
    workers = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trained = [line.split(": training")[0].split("] ", 1)[1] for _, err in outputs for line in err.splitlines() if ": training" in line]
    assert len(trained) == 6 and len(set(trained)) == 6, outputs  # every point once, by one worker or the other
    assert all(err.count(": training") > 0 for _, err in outputs), "one worker did everything: no sharing was tested"
    dirs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(dirs) == 6
    for d in dirs:  # each trained once: one run's records, 60 steps
        assert [r["step"] for r in runs.read_metrics(out / d)] == list(range(10, 61, 10))
    table = rows(out)  # gathered from the study: all six, best dev first
    assert sorted(r["run"] for r in table) == dirs and {r["status"] for r in table} == {"trained"}
    devs = [float(r["dev_loss"]) for r in table]
    assert devs == sorted(devs)
    for r in table:
        assert float(r["dev_loss"]) == runs.read_summary(r["run_dir"])["dev_loss"]


@needs_optuna
def test_a_tpe_search_ranks_its_trials_and_a_rerun_adds_none(tiny_config: Path, tmp_path: Path, runner) -> None:
    out = tmp_path / "tpe"
    args = ["sweep", "--config", str(tiny_config), "--search", "tpe", "--trials", "4", "--space", "train.lr=log:0.01:0.5",
            "--space", "model.n_hidden=int:4:24", "--out", str(out), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = rows(out)
    assert len(table) == 4 and [r["rank"] for r in table] == ["1", "2", "3", "4"]
    devs = [float(r["dev_loss"]) for r in table]
    assert devs == sorted(devs)
    for r in table:
        cfg = load_config(Path(r["run_dir"]) / "config.toml")
        assert 0.01 <= cfg.train.lr <= 0.5 and 4 <= cfg.model.n_hidden <= 24
        assert float(r["train.lr"]) == pytest.approx(cfg.train.lr, rel=1e-5) and int(r["model.n_hidden"]) == cfg.model.n_hidden
    assert (out / search.STUDY_DB).is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "training" not in again.output
    assert len(rows(out)) == 4


@needs_optuna
def test_a_drawn_point_the_model_refuses_is_listed_invalid_and_the_search_goes_on(tiny_config: Path, tmp_path: Path, runner) -> None:
    """n_head 2 divides n_embd 8 and 10 but not 9: each end of the range is valid, the point inside
    is not. Such a trial is listed as invalid; the others train."""
    out = tmp_path / "clash"
    result = runner.invoke(app, ["sweep", "--config", str(tiny_config), "--set", "model.type=transformer", "--set", "model.n_head=2",
                                 "--set", "train.backend=torch", "--search", "random", "--trials", "6", "--seed", "0",
                                 "--space", "model.n_embd=int:8:10", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    table = rows(out)
    assert len(table) == 6
    for r in table:
        assert r["status"] == ("trained" if int(r["model.n_embd"]) % 2 == 0 else "invalid"), r
    assert {r["status"] for r in table} == {"trained", "invalid"}  # with --seed 0 both kinds are drawn


@needs_optuna
def test_the_same_seed_draws_the_same_trials(tiny_config: Path, tmp_path: Path, runner) -> None:
    drawn = []
    for name in ("a", "b"):
        result = runner.invoke(app, ["sweep", "--config", str(tiny_config), "--search", "random", "--trials", "3", "--seed", "7",
                                     "--space", "train.lr=log:0.01:0.5", "--set", "train.steps=10", "--out", str(tmp_path / name), "-q"])
        assert result.exit_code == 0, result.output
        drawn.append(sorted(r["train.lr"] for r in rows(tmp_path / name)))
    assert drawn[0] == drawn[1] and len(set(drawn[0])) == 3


@needs_optuna
def test_a_space_end_the_model_refuses_fails_before_anything_runs(tiny_config: Path, tmp_path: Path, runner) -> None:
    out = tmp_path / "refused"
    result = runner.invoke(app, ["sweep", "--config", str(tiny_config), "--set", "train.backend=numpy", "--search", "random",
                                 "--trials", "2", "--space", "model.type=mlp,transformer", "--out", str(out), "-q"])
    assert result.exit_code == 2 and "--space model.type=transformer" in result.stderr and "train.backend = 'torch'" in result.stderr
    assert not (out / search.STUDY_DB).exists()


@needs_optuna
def test_prune_stops_a_bad_trial(tiny_config: Path, tmp_path: Path, runner) -> None:
    out = tmp_path / "pruned"
    result = runner.invoke(app, ["sweep", "--config", str(tiny_config), "--grid", "train.lr=0.2,0.1,0.00001", "--prune",
                                 "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    table = {r["train.lr"]: r for r in rows(out)}
    assert table["1e-05"]["status"] == "pruned" and int(table["1e-05"]["steps"]) < 60  # stopped at its first evaluation
    assert table["0.2"]["status"] == table["0.1"]["status"] == "trained"
    assert not runs.is_finished(out / "train.lr=1e-05") and runs.has_checkpoint(out / "train.lr=1e-05")


def test_without_the_extras_one_line_names_them(tiny_config: Path, tmp_path: Path, runner, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("optuna", "tensorboard") else real(name, *a))
    result = runner.invoke(app, ["sweep", "--config", str(tiny_config), "--search", "random", "--space", "train.lr=log:0.01:0.1",
                                 "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.output == "error: --search random needs Optuna: pip install 'makemore[sweep]'\n"
    result = runner.invoke(app, ["train", "--config", str(tiny_config), "--set", "train.tensorboard=true", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "pip install 'makemore[tensorboard]'" in result.output and len(result.output.splitlines()) == 1
    assert not (tmp_path / "r").exists()
    result = runner.invoke(app, ["sweep", "--config", str(tiny_config), "--grid", "train.lr=0.1", "--out", str(tmp_path / "g"), "-q"])
    assert result.exit_code == 0, result.output  # a plain grid needs neither


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="the [tensorboard] extra is not installed")
def test_tensorboard_scalars_follow_the_metrics_across_a_resume(tiny_config: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    train(load_config(tiny_config, ["train.tensorboard=true", "train.steps=40"]), run_dir)
    train(load_config(tiny_config, ["train.tensorboard=true"]), run_dir, resume=True)
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert {"loss/train", "loss/dev", "lr", "steps_per_s"} <= set(events.Tags()["scalars"])
    metrics = runs.read_metrics(run_dir)
    train_curve = [(e.step, e.value) for e in events.Scalars("loss/train")]
    assert train_curve == [(r["step"], pytest.approx(r["train_loss"])) for r in metrics]
    assert [e.step for e in events.Scalars("loss/dev")] == [r["step"] for r in metrics if r["dev_loss"] is not None]
    assert tensorboard_log.tag("dev_loss") == "loss/dev"


@needs_optuna
def test_ctrl_c_queues_the_run_again_and_the_next_worker_resumes_it(tiny_config: Path, tmp_path: Path) -> None:
    from makemore.sweep import parse_grid
    from makemore.training import Listener

    out = tmp_path / "sweep"
    s = search.Search(load_config(tiny_config), out, "grid", parse_grid(["train.lr=0.2,0.1,0.05"]), [], 0, False,
                      search.default_storage(out), "ctrl-c")
    seen: list[int] = []

    class CtrlCInSecondRun(Listener):
        def record(self, record, steps_per_s) -> None:
            seen.append(record.step)
            if seen.count(60) == 1 and record.step == 30:  # step 30 of the second run
                os.kill(os.getpid(), signal.SIGINT)

    stopped = search.run_search(s, listener=CtrlCInSecondRun())
    assert stopped.interrupted and stopped.exit_code == 130
    assert {r.name: r.status for r in stopped.results} == {"train.lr=0.2": "trained", "train.lr=0.1": "interrupted"}
    assert runs.load_checkpoint(out / "train.lr=0.1")["step"] == 31  # the step after the signal
    actions: list[tuple[str, str]] = []
    done = search.run_search(s, announce=lambda i, n, p, action: actions.append((p.run_dir.name, action)))
    assert sorted(actions) == [("train.lr=0.05", "train"), ("train.lr=0.1", "resume")]  # queue order: the re-queued run last
    assert not done.interrupted and {r.status for r in done.results} == {"trained"} and len(done.results) == 3
    assert [r["step"] for r in runs.read_metrics(out / "train.lr=0.1")] == [10, 20, 30, 31, 40, 50, 60]  # resumed, not restarted


def sweep_command(config: Path, out: Path, *grid: str) -> list[str]:
    """`makemore sweep` of a grid on an Optuna study in out/study.db, quiet."""
    return ["sweep", "--config", str(config), *(a for g in grid for a in ("--grid", g)), "--out", str(out),
            "--storage", search.default_storage(out), "--study", "s", "-q"]


def same_params(a: Path, b: Path) -> bool:
    pa, pb = runs.load_checkpoint(a)["model"], runs.load_checkpoint(b)["model"]
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


@needs_optuna
def test_jobs_2_runs_every_grid_point_once_with_a_second_worker_process(tiny_config: Path, tmp_path: Path) -> None:
    """run_search with jobs=2, as `makemore sweep --jobs 2` runs it: this process and one helper
    process share the study. This process's first run waits (at its first record) until the helper
    holds a trial of its own, so the helper provably takes part, whatever the machine's speed."""
    import optuna

    from makemore.sweep import parse_grid
    from makemore.training import Listener

    out = tmp_path / "jobs"
    s = search.Search(load_config(tiny_config), out, "grid", parse_grid(["train.lr=0.2,0.1"]), [], 0,
                      False, search.default_storage(out), "jobs")
    announced: list[str] = []
    running_together: list[int] = []

    class WaitForTheHelper(Listener):
        def record(self, record, steps_per_s) -> None:
            if running_together:
                return
            study = optuna.load_study(study_name="jobs", storage=s.storage)
            deadline = time.monotonic() + 120
            while len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))) < 2:
                assert time.monotonic() < deadline, "the helper process never took a trial"
                time.sleep(0.05)
            running_together.append(record.step)

    outcome = search.run_search(s, jobs=2, listener=WaitForTheHelper(),
                                announce=lambda i, n, p, action: announced.append(p.run_dir.name))
    assert running_together  # two trials ran at once: this process's and the helper's
    assert not outcome.interrupted and len(outcome.results) == 2 and {r.status for r in outcome.results} == {"trained"}
    assert len(announced) == 1  # this process trained one run, the helper the other
    for r in outcome.results:  # each trained once, from step 0 to 60
        assert [m["step"] for m in runs.read_metrics(r.run_dir)] == list(range(10, 61, 10))
    assert sorted(r["run"] for r in rows(out)) == sorted(r.name for r in outcome.results)


@needs_optuna
def test_sigterm_to_a_sweep_worker_queues_its_run_again_and_the_next_worker_resumes_it(tiny_config: Path, tmp_path: Path,
                                                                                      runner) -> None:
    """A worker process gets SIGTERM inside its first run's first checkpoint write (every write
    slowed, so the signal lands there for certain): it stops that run after its next step with a
    checkpoint, queues it again and exits 143. The same command then resumes it (not from step 0)
    and trains the other; the resumed run ends as an uninterrupted run of its config does."""
    out = tmp_path / "sweep"
    args = sweep_command(tiny_config, out, "train.lr=0.2,0.1")
    first = out / "train.lr=0.2"
    worker = subprocess.Popen([sys.executable, "-m", "makemore", *args], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, runs.SLOW_WRITE_ENV: "1"})
    try:
        wait_for(lambda: list(first.glob(f".{runs.CHECKPOINT}.*.tmp")), "the first run's first checkpoint write", worker)
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 143, err
    assert "Traceback" not in err
    assert {r["run"]: r["status"] for r in rows(out)} == {"train.lr=0.2": "interrupted"}
    stopped_at = runs.load_checkpoint(first)["step"]
    assert 0 < stopped_at < 60
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "train.lr=0.2: resuming" in again.stderr and "train.lr=0.1: training" in again.stderr
    assert {r["run"]: r["status"] for r in rows(out)} == {"train.lr=0.2": "trained", "train.lr=0.1": "trained"}
    assert [m["step"] for m in runs.read_metrics(first)] == [stopped_at, *range(10, 61, 10)]  # resumed, not restarted
    train(load_config(tiny_config, ["train.lr=0.2"]), tmp_path / "straight")
    assert same_params(first, tmp_path / "straight")


#: Runs in a worker process that is then killed: its checkpoint writes after step 20 never end (the
#: kill lands inside the step-40 write, leaving the step-20 checkpoint).
HANGING_WORKER = """
import sys, time
from makemore import runs
_save = runs.save_checkpoint

def save(run_dir, checkpoint, *name):
    if checkpoint["step"] > 20:
        time.sleep(3600)
    _save(run_dir, checkpoint, *name)

runs.save_checkpoint = save
sys.argv = ["makemore", *sys.argv[1:]]
from makemore.cli import main
main()
"""


def kill_a_worker_inside_its_run(args: list[str], run_dir: Path) -> None:
    """Start a worker of `makemore ARGS` whose checkpoint writes after step 20 never end, kill -9 it
    inside its step-40 write (run_dir keeps step 20's checkpoint), then wait until its trial's
    heartbeat is past the grace period: the study stores heartbeats to the second, so GRACE_S + 2 s
    after the kill, for certain."""
    worker = subprocess.Popen([sys.executable, "-c", HANGING_WORKER, *args], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: runs.has_checkpoint(run_dir) and any(r["step"] == 40 for r in runs.read_metrics(run_dir)),
                 "the worker inside its step-40 checkpoint write", worker)
    finally:
        worker.kill()  # SIGKILL: no handler runs, no trial is re-queued, heartbeats stop
        worker.communicate(timeout=60)
    killed = time.monotonic()
    assert runs.load_checkpoint(run_dir)["step"] == 20
    while time.monotonic() < killed + search.GRACE_S + 2:
        time.sleep(0.1)


@needs_optuna
def test_a_killed_workers_run_is_taken_up_by_another_worker_once_its_heartbeat_is_stale(tiny_config: Path, tmp_path: Path,
                                                                                        runner, monkeypatch) -> None:
    """kill -9 of a worker in the middle of its first run: its trial stays "running" in the study
    with no more heartbeats. Once the grace period has passed (GRACE_S, set to 1 s here, as
    HEARTBEAT_S), the next worker fails the stale trial, Optuna queues it again, and that worker
    resumes the run from its last checkpoint (step 20) after training the other run; the run ends
    as an uninterrupted one does."""
    monkeypatch.setattr(search, "HEARTBEAT_S", 1)
    monkeypatch.setattr(search, "GRACE_S", 1)
    out = tmp_path / "sweep"
    args = sweep_command(tiny_config, out, "train.lr=0.2,0.1")
    first = out / "train.lr=0.2"
    kill_a_worker_inside_its_run(args, first)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "train.lr=0.1: training" in result.stderr and "train.lr=0.2: resuming" in result.stderr
    assert {r["run"]: r["status"] for r in rows(out)} == {"train.lr=0.2": "trained", "train.lr=0.1": "trained"}
    assert [m["step"] for m in runs.read_metrics(first)] == list(range(10, 61, 10))  # from 20 on, once
    train(load_config(tiny_config, ["train.lr=0.2"]), tmp_path / "straight")
    assert same_params(first, tmp_path / "straight")


@needs_optuna
def test_a_killed_workers_run_left_alone_is_taken_up_by_the_same_command_again(tiny_config: Path, tmp_path: Path,
                                                                               runner, monkeypatch) -> None:
    """As above, but the killed worker's run is the study's only one: no other trial is waiting."""
    monkeypatch.setattr(search, "HEARTBEAT_S", 1)
    monkeypatch.setattr(search, "GRACE_S", 1)
    out = tmp_path / "sweep"
    args = sweep_command(tiny_config, out, "train.lr=0.2")
    kill_a_worker_inside_its_run(args, out / "train.lr=0.2")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert {r["run"]: r["status"] for r in rows(out)} == {"train.lr=0.2": "trained"}
