"""What recording training statistics costs: training configs/names.toml with
train.stats_interval = 100 against the same training with it 0 (off), side by side in one run.

    python -m benchmarks.stats_overhead                  # ~2 minutes on 2 cores
    python -m benchmarks.stats_overhead --steps 200000 --rounds 2 --backend torch

Two measurements, both alternating the two sides so that drift in the machine's load falls on both:

1. blocks (in one process, the headline): the config's backend takes blocks of 100 minibatch
   steps, alternately all with `train_step` (off) and with one of them a `recorded_step` whose
   statistics are written to a stats.jsonl (on), as the driver does at stats_interval 100. The
   median block time of each side gives overhead = on / off − 1. Fine-grained alternation and
   medians keep this figure steady on shared cores.
2. commands: whole `makemore train --config configs/names.toml --set train.steps=N` subprocesses
   with train.stats_interval = 0 and 100, alternately (the order swaps each round), compared by the
   driver's training time (summary.json's train_time_s: steps, dev evaluations, checkpoints and,
   when on, the statistics), fastest of the rounds on each side.

The goal (issue 13) is an overhead below 20 %. Also reported: the extra milliseconds per recorded
step and the size of stats.jsonl. The last line printed is one JSON object with every timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import py, run, set_args

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "configs/names.toml"
INTERVAL = 100
GOAL = 0.20


def blocks(backend_name: str | None, n_blocks: int, folder: Path) -> dict[str, Any]:
    """Median time of a block of INTERVAL steps without and with one recorded step (see the module docstring)."""
    from makemore import runs
    from makemore.backends import make_backend
    from makemore.config import load_config
    from makemore.prepare import prepare
    from makemore.training import minibatches

    cfg = load_config(ROOT / CONFIG, [f"train.backend={backend_name}"] if backend_name else [])
    cfg.data.path = str(ROOT / cfg.data.path)
    prepared = prepare(cfg)
    backend = make_backend(prepared.cfg, prepared.family, prepared.vocab.vocab_size, "cpu")
    batches = list(minibatches(backend, prepared.cfg.train, prepared.view("train"), 0, INTERVAL))
    log = runs.StatsLog(folder)
    lr = cfg.train.lr

    def block(record: bool) -> float:
        t0 = time.perf_counter()
        for i, (X, Y) in enumerate(batches):
            if record and i == 0:
                loss, stats = backend.recorded_step(X, Y, lr)
                log.write({"step": i + 1, "lr": lr, "loss": loss, **stats})
            else:
                backend.train_step(X, Y, lr)
        return time.perf_counter() - t0

    off, on = [], []
    with backend.threads():  # the thread counts the training driver trains on
        for record in (False, True):  # warm-up
            block(record)
        for k in range(n_blocks):
            for record in ((False, True) if k % 2 == 0 else (True, False)):
                (on if record else off).append(block(record))
    log.close()
    off_s, on_s = statistics.median(off), statistics.median(on)
    return {"backend": backend.name, "blocks": n_blocks, "steps_per_block": INTERVAL, "off_median_s": off_s, "on_median_s": on_s,
            "overhead": on_s / off_s - 1.0, "ms_per_recorded_step": 1000 * (on_s - off_s),
            "record_bytes": (folder / runs.STATS).stat().st_size / (n_blocks + 1)}


def train_once(run_dir: Path, steps: int, interval: int, backend: str | None) -> dict[str, Any]:
    """One `makemore train` subprocess; its summary.json, plus the recorded steps and stats.jsonl's size."""
    from makemore import runs

    sets = [f"train.steps={steps}", f"train.stats_interval={interval}"] + ([f"train.backend={backend}"] if backend else [])
    run(py("-m", "makemore", "train", "--config", CONFIG, "--run-dir", str(run_dir), "-q", *set_args(sets)))
    summary = runs.read_summary(run_dir)
    summary["recorded_steps"] = len(runs.read_stats(run_dir))
    stats = run_dir / runs.STATS
    summary["stats_bytes"] = stats.stat().st_size if stats.exists() else 0
    shutil.rmtree(run_dir)
    return summary


def commands(steps: int, rounds: int, backend: str | None, folder: Path) -> dict[str, Any]:
    """Whole training commands with statistics off and on, alternately; fastest of each side."""
    off: list[dict[str, Any]] = []
    on: list[dict[str, Any]] = []
    for r in range(rounds):
        for interval in ((0, INTERVAL) if r % 2 == 0 else (INTERVAL, 0)):
            summary = train_once(folder / f"run-{r}-{interval}", steps, interval, backend)
            (on if interval else off).append(summary)
            print(f"round {r + 1}: stats_interval {interval:>3}: {summary['train_time_s']:.2f} s "
                  f"({summary['steps_per_s']:,.0f} steps/s)", file=sys.stderr, flush=True)
    best_off = min(s["train_time_s"] for s in off)
    best_on = min(s["train_time_s"] for s in on)
    return {"command": f"makemore train --config {CONFIG} --set train.steps={steps} --set train.stats_interval=0|{INTERVAL}"
            + (f" --set train.backend={backend}" if backend else ""), "steps": steps, "rounds": rounds,
            "off_train_s": [s["train_time_s"] for s in off], "on_train_s": [s["train_time_s"] for s in on],
            "off_best_s": best_off, "on_best_s": best_on, "overhead": best_on / best_off - 1.0,
            "recorded_steps": on[0]["recorded_steps"], "stats_bytes": on[0]["stats_bytes"],
            "dev_loss_off": off[0]["dev_loss"], "dev_loss_on": on[0]["dev_loss"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=300, help="blocks of 100 steps on each side (in-process measurement)")
    parser.add_argument("--steps", type=int, default=20_000, help="training steps of each command")
    parser.add_argument("--rounds", type=int, default=3, help="commands with statistics off and on, alternately (0: skip)")
    parser.add_argument("--backend", choices=("torch", "numpy"), default=None, help="train.backend (default: the config's, numpy)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="stats-overhead-") as tmp:
        block_result = blocks(args.backend, args.blocks, Path(tmp))
        print(f"blocks of {INTERVAL} steps: off {1000 * block_result['off_median_s']:.1f} ms, "
              f"on {1000 * block_result['on_median_s']:.1f} ms (medians of {args.blocks})", file=sys.stderr, flush=True)
        command_result = commands(args.steps, args.rounds, args.backend, Path(tmp)) if args.rounds else None
    result = {
        "benchmark": "stats_overhead", "config": CONFIG, "interval": INTERVAL, "goal": GOAL,
        "overhead": block_result["overhead"], "met": block_result["overhead"] < GOAL,
        "blocks": block_result, "commands": command_result,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_before": load_before,
                    "load_after": os.getloadavg()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
