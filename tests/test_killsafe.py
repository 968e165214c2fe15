"""kill -9 at any moment never leaves an unreadable checkpoint.

Training runs in a child process that writes a checkpoint after every step (eval_interval = 1),
so much of its time is spent inside checkpoint writes; it is sent SIGKILL after a random delay,
a dozen times (most after the first checkpoint exists, some at any moment from the start). Every checkpoint left behind must load (runs.load_checkpoint) and build
its model, and the run must resume.

To keep the test short, one helper process imports torch and makemore once and forks a fresh
training process per trial (it runs no torch work itself, so forking it is safe); each child
runs the real command line, `makemore train`, and is killed by its parent with SIGKILL.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from makemore import runs
from makemore.cli import app
from tests.conftest import training, wait_for

TRIALS = 12

WORDS = [
    "ava", "ben", "cara", "dan", "eli", "fay", "gus", "hana", "ian", "jo",
    "kai", "lea", "max", "nia", "otto", "pia", "quin", "rey", "sam", "tia",
    "uma", "vic", "wes", "xia", "yan", "zoe", "abel", "bea", "cole", "dina",
]

FORK_AND_KILL = r"""
import json, os, random, signal, sys, time

import torch  # imported before forking, so each child starts at once; no torch work happens here
import makemore.backends.torch_backend, makemore.evaluate, makemore.runs, makemore.training  # noqa: F401
from makemore.cli import app

config, root, trials, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
results = []
for i in range(trials):
    run = os.path.join(root, f"run{i}")
    pid = os.fork()
    if pid == 0:  # the training process
        try:
            app(["train", "--config", config, "--run-dir", run, "-q"], prog_name="makemore")
        finally:
            os._exit(0)
    # every fourth trial is killed any time from its start (perhaps before its first checkpoint);
    # the others once their first checkpoint exists, so that there is a previous one to keep
    early = i % 4 == 0
    deadline = time.monotonic() + 30
    while not early and not os.path.exists(os.path.join(run, makemore.runs.CHECKPOINT)) and time.monotonic() < deadline:
        time.sleep(0.002)
    delay = rng.uniform(0.0, 0.6 if early else 0.3)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    results.append({"run": run, "early": early, "delay": delay, "killed": killed})
print(json.dumps(results))
"""


def endless_config(directory: Path, eval_interval: int) -> Path:
    """A tiny model trained (practically) forever, a checkpoint and a metrics record every `eval_interval` steps."""
    words = directory / "words.txt"
    words.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    config = directory / "tiny.toml"
    config.write_text(f"""
[data]
path = {json.dumps(str(words))}
[model]
n_embd = 4
n_hidden = 32
[train]
device = "cpu"
steps = 100000000
batch_size = 16
eval_interval = {eval_interval}
log_interval = {eval_interval}
threads = 1
""", encoding="utf-8")
    return config


def test_kill_9_at_random_moments_never_leaves_an_unreadable_checkpoint(tmp_path):
    config = endless_config(tmp_path, eval_interval=1)
    done = subprocess.run([sys.executable, "-c", FORK_AND_KILL, str(config), str(tmp_path), str(TRIALS), "20261121"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == TRIALS and all(r["killed"] for r in results), results

    steps, torn_writes = [], 0
    for r in results:
        run = Path(r["run"])
        torn_writes += len(list(run.glob(".*.tmp"))) if run.is_dir() else 0
        if not (run / runs.CHECKPOINT).exists():
            assert r["early"], f"{run}: the checkpoint it had is gone"
            continue  # killed before its first checkpoint: there is no previous one to keep
        loaded = runs.load_run(run)  # torch.load(weights_only=True), then the model is built from it
        steps.append(loaded.checkpoint["step"])
        records = runs.read_metrics(run)  # a record is written before its step's checkpoint
        assert loaded.checkpoint["step"] <= max((rec["step"] for rec in records), default=0)
    assert len(steps) >= sum(not r["early"] for r in results)
    assert len(set(steps)) > 1, f"the kills all landed at the same step: {steps}"

    # the last killed run carries on from its checkpoint
    last = [Path(r["run"]) for r in results if (Path(r["run"]) / runs.CHECKPOINT).exists()][-1]
    step = runs.load_checkpoint(last)["step"]
    result = CliRunner().invoke(app, ["train", "--resume", str(last), "--set", f"train.steps={step + 3}", "-q", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == step + 3
    assert not list(last.glob(".*.tmp"))  # resuming clears what a kill inside a write left
    print(f"checkpoint steps at the kills: {steps}; temporary files left by kills inside a write: {torn_writes}")


def test_kill_9_inside_a_checkpoint_write_keeps_the_previous_one(tmp_path):
    """Every checkpoint write is slowed to a minute (MAKEMORE_TEST_SLOW_WRITE) and the process is
    killed once a checkpoint's temporary file exists, i.e. inside the write, for certain: the
    previous checkpoint stays readable, the torn temporary file stays behind, and resuming removes it."""
    import signal

    config = endless_config(tmp_path, eval_interval=5)
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--run-dir", str(run), "--set", "train.steps=5", "-q"])
    assert result.exit_code == 0, result.output  # the previous checkpoint: step 5
    with training("--resume", run, "--set", "train.steps=100000000", slow_write=60) as proc:
        wait_for(lambda: list(run.glob(f".{runs.CHECKPOINT}.*.tmp")), "the step-10 checkpoint write", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(list(run.glob(f".{runs.CHECKPOINT}.*.tmp"))) == 1  # the write it was killed in
    assert runs.load_run(run, checkpoint="last").checkpoint["step"] == 5  # the previous checkpoint: loads, builds its model
    assert max(r["step"] for r in runs.read_metrics(run)) == 10  # the step whose checkpoint was being written

    result = CliRunner().invoke(app, ["train", "--resume", str(run), "--set", "train.steps=8", "-q", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 8
    assert not list(run.glob(".*.tmp"))  # the resumed run cleared the torn write
