"""Sampling a Transformer with its key/value cache against re-reading every prefix, side by side.

    python -m benchmarks.sampling                  # trains a run first (~15 s); prints one JSON object last
    python -m benchmarks.sampling --run RUN_DIR    # an existing Transformer run instead

The run is configs/transformer.toml's model (4 blocks of 4 heads, n_embd 64, ~205,000 parameters
on data/names.txt) after a short training (--steps, default 200, on the CPU), so its words have
realistic lengths. The timed command is the whole process `makemore sample RUN -n 10000 --seed 0`,
once with the incremental steps (the default) and once with MAKEMORE_SAMPLE_REREAD=1 (the full
re-read of every prefix at each character, as before them), alternately, --rounds times, the
fastest of each; both must print the same samples. For the record it also times the process's
fixed cost (the same command with -n 1: start-up, imports, loading the run) and
makemore.sample.sample alone in this process, both ways, fastest of --rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from benchmarks.run import ROOT, git_state, machine, py, run, set_args

OUT = ROOT / "benchmarks" / "out" / "sampling"
CONFIG = "configs/transformer.toml"
N = 10_000
SEED = 0
GOAL = 5.0


def train(steps: int) -> Path:
    """A fresh run of configs/transformer.toml for `steps` steps on the CPU, in benchmarks/out/sampling/run."""
    run_dir = OUT / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run(py("-m", "makemore", "train", "--config", CONFIG, "--run-dir", str(run_dir), "-q",
           *set_args([f"train.steps={steps}", f"train.eval_interval={steps}", "train.device=cpu"])))
    return run_dir


def command(run_dir: Path, n: int) -> list[str]:
    return py("-m", "makemore", "sample", str(run_dir), "-n", str(n), "--seed", str(SEED))


def whole_process(run_dir: Path, rounds: int) -> dict:
    """The fastest wall time of each way (and of each way's -n 1 start-up), alternately; checks both print the same samples."""
    best = {"cached": float("inf"), "reread": float("inf"), "startup": float("inf")}
    outputs = {}
    for _ in range(rounds):
        for way, env in (("cached", {}), ("reread", {"MAKEMORE_SAMPLE_REREAD": "1"})):
            proc, wall = run(command(run_dir, N), env)
            outputs.setdefault(way, proc.stdout)
            if proc.stdout != outputs[way]:
                raise RuntimeError(f"{way}: the same seed printed different samples")
            best[way] = min(best[way], wall)
        best["startup"] = min(best["startup"], run(command(run_dir, 1))[1])
    if outputs["cached"] != outputs["reread"]:
        raise RuntimeError("the cached and the re-reading runs printed different samples")
    return best


def less_startup(process: dict) -> float | None:
    """(reread − startup) / (cached − startup): the sampling part of the process, or None when the
    fastest start-up was not below both (a busy machine during the -n 1 runs)."""
    cached, reread = process["cached"] - process["startup"], process["reread"] - process["startup"]
    return round(reread / cached, 2) if cached > 0 and reread > 0 else None


def in_process(run_dir: Path, rounds: int) -> dict:
    """makemore.sample.sample of N words, seed SEED, each way: the fastest of `rounds`, alternately."""
    import torch

    from makemore.data import Sequences
    from makemore.runs import load_run
    from makemore.sample import REREAD_ENV, sample

    loaded = load_run(run_dir)
    cap = Sequences.longest_readable(loaded.block_size)
    best = {"cached": float("inf"), "reread": float("inf")}
    words = {}
    for _ in range(rounds):
        for way in ("cached", "reread"):
            if way == "reread":
                os.environ[REREAD_ENV] = "1"
            t0 = time.perf_counter()
            words[way] = sample(loaded.model, loaded.vocab, N, torch.Generator().manual_seed(SEED), max_len=cap, view=Sequences)
            best[way] = min(best[way], time.perf_counter() - t0)
            os.environ.pop(REREAD_ENV, None)
    if words["cached"] != words["reread"]:
        raise RuntimeError("sample(): the cached and the re-reading paths drew different words")
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing Transformer run (default: train one)")
    parser.add_argument("--steps", type=int, default=200, help="training steps of the run made here")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    started = machine()
    run_dir = args.run if args.run is not None else train(args.steps)
    process = whole_process(run_dir, args.rounds)
    function = in_process(run_dir, args.rounds)
    result = {
        "command": " ".join(["makemore", "sample", str(run_dir), "-n", str(N), "--seed", str(SEED)]),
        "run": str(run_dir), "rounds": args.rounds, "goal": GOAL,
        "process_s": {way: round(process[way], 3) for way in ("cached", "reread")},
        "process_speedup": round(process["reread"] / process["cached"], 2),
        "startup_s": round(process["startup"], 3),
        "process_less_startup_speedup": less_startup(process),
        "sample_function_s": {way: round(function[way], 3) for way in ("cached", "reread")},
        "sample_function_speedup": round(function["reread"] / function["cached"], 2),
        "same_samples": True,
        "machine": {**started, "loadavg_end": os.getloadavg()},
        "git": git_state(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
