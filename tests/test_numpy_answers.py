"""A run the NumPy backend trained answers on NumPy alone: `makemore sample`, `score` and
`evaluate` never import torch, and give what the torch path gives for the same seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from makemore import api, runs
from makemore.sample import Uniforms
from tests.conftest import write_tiny_words

ROOT = Path(__file__).resolve().parent.parent

#: Runs a makemore command in this Python and reports, on its last stderr line, whether torch was imported.
PROBE = """
import sys
from makemore.cli import main
sys.argv = ["makemore", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    code = e.code
print("torch imported" if "torch" in sys.modules else "no torch", file=sys.stderr)
"""


@pytest.fixture(scope="module")
def numpy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MLP trained by train.backend = "auto" (NumPy here) on a words file of 40 names."""
    folder = tmp_path_factory.mktemp("numpy-run")
    words = write_tiny_words(folder)
    api.train(ROOT / "configs" / "fast.toml", {"data.path": str(words), "train.steps": 60, "train.batch_size": 32},
              run_dir=folder / "run")
    assert runs.load_checkpoint(folder / "run")["backend"] == "numpy"
    return folder / "run"


def command(*args: str, torch_answers: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != runs.TORCH_ANSWERS_ENV}
    if torch_answers:
        env[runs.TORCH_ANSWERS_ENV] = "1"
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("args", [("sample", "-n", "30", "--seed", "2"), ("sample", "-n", "10", "--prefix", "a", "--unique", "--seed", "2"),
                                  ("score", "emma", "zyxq"), ("evaluate", "--split", "all", "--json")])
def test_sample_score_and_evaluate_never_import_torch(numpy_run: Path, args: tuple) -> None:
    result = command(args[0], str(numpy_run), *args[1:])
    assert result.stderr.strip().splitlines()[-1] == "no torch", result.stderr
    assert result.stdout.strip()
    forced = command(args[0], str(numpy_run), *args[1:], torch_answers=True)  # the check can tell the two apart
    assert forced.stderr.strip().splitlines()[-1] == "torch imported"


def test_the_numpy_path_draws_the_torch_paths_samples(numpy_run: Path) -> None:
    """Both paths draw the same uniforms (Uniforms replays torch's generator); their logits differ
    only in float rounding (two BLAS libraries), which changes a draw only when a uniform falls
    within ~1e-7 of a boundary of the cumulative distribution: a couple in a million draws."""
    numpy_side = json.loads(command("sample", str(numpy_run), "-n", "2000", "--seed", "11", "--json").stdout)
    torch_side = json.loads(command("sample", str(numpy_run), "-n", "2000", "--seed", "11", "--json", torch_answers=True).stdout)
    assert len(numpy_side) == len(torch_side) == 2000
    assert sum(a != b for a, b in zip(numpy_side, torch_side)) <= 2


def test_the_numpy_path_evaluates_and_scores_as_the_torch_path(numpy_run: Path) -> None:
    """Float32 forward passes by NumPy and by torch agree to ~1e-7 relative; the means over a split
    at 1e-6."""
    numpy_side = json.loads(command("evaluate", str(numpy_run), "--split", "all", "--json").stdout)
    torch_side = json.loads(command("evaluate", str(numpy_run), "--split", "all", "--json", torch_answers=True).stdout)
    assert numpy_side.keys() == torch_side.keys() == {"train", "dev", "test"}
    for split in numpy_side:
        assert numpy_side[split] == pytest.approx(torch_side[split], rel=1e-6)
    scores = [json.loads(command("score", str(numpy_run), "emma", "ava", "--json", torch_answers=t).stdout) for t in (False, True)]
    for a, b in zip(*scores):
        assert a["word"] == b["word"] and a["nll"] == pytest.approx(b["nll"], rel=1e-5) and a["percentile"] == pytest.approx(b["percentile"], abs=5)


@pytest.mark.parametrize("seed", [0, 1, 2**31 - 1, 2**40 + 7])
def test_uniforms_replay_torchs_cpu_generator(seed: int) -> None:
    """Uniforms(seed) gives torch.rand's float32 numbers for torch.Generator().manual_seed(seed),
    bit for bit, in calls of any size (both run here, on this machine)."""
    g, u = torch.Generator().manual_seed(seed), Uniforms(seed)
    for k in (1, 5, 16, 17, 1000, 16384, 3):
        assert np.array_equal(u(k), torch.rand(k, generator=g, dtype=torch.float32).numpy())
