"""Scaling figures: data-parallel training with 1 and 2 processes, and sweep throughput with
--jobs 1 and --jobs 2, each pair measured side by side in one run of this command.

    python -m benchmarks.scale                  # ~3-5 minutes on 2 busy cores
    python -m benchmarks.scale --steps 200      # shorter runs

Prints a few lines and, as its last line, one JSON object. Every timed command is a fresh
`makemore` subprocess run from the repository root, one at a time:

1. `makemore train` of the same config (names.txt, a 2-hidden-layer MLP, global batch 256,
   AdamW) with 1 process × 2 torch threads, 1 process × 1 thread, and `--nproc 2` (2 processes ×
   1 thread, gloo). The processes compute the same steps (the same global batches; the
   parameters agree to float rounding), so equal steps are equal quality: the figure is
   steps/s of the training loop (summary.json), and the dev loss each reached is shown beside it.
2. `makemore sweep` of a grid of 6 short runs (each into a fresh directory): the plain sweep
   (--jobs 1, one process, no Optuna), then on Optuna (a SQLite study in the sweep directory)
   with --jobs 1 and --jobs 2: the whole command's wall time, and runs per minute.

On a machine with 2 cores shared with other work the figures move with the load: the load
average is recorded at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.run import py, run, set_args
from makemore import runs

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "scale"

TRAIN_SETS = ["data.path=\"data/names.txt\"", "model.n_embd=16", "model.n_hidden=256", "model.n_layers=2", "train.backend=\"torch\"",
              "train.device=\"cpu\"", "train.optimizer=\"adamw\"", "train.lr=0.003", "train.batch_size=256", "train.schedule=\"constant\"",
              "train.log_interval=50"]
SWEEP_SETS = ["data.path=\"data/names.txt\"", "model.n_embd=8", "model.n_hidden=64", "train.backend=\"torch\"", "train.device=\"cpu\"",
              "train.batch_size=64", "train.threads=1", "train.log_interval=100"]
SWEEP_GRID = ["train.lr=0.1,0.05,0.02", "model.n_hidden=32,64"]


def train_figure(steps: int) -> dict[str, Any]:
    """Steps/s of the same training with 1 process (2 threads, then 1) and 2 processes (1 thread each)."""
    common = set_args(TRAIN_SETS + [f"train.steps={steps}", f"train.eval_interval={steps}"])
    sides = {"1 process, 2 threads": (["train.threads=2"], 1), "1 process, 1 thread": (["train.threads=1"], 1),
             "2 processes, 1 thread each": (["train.threads=1"], 2)}
    out: dict[str, Any] = {}
    for name, (extra, nproc) in sides.items():
        run_dir = OUT / f"train-{nproc}-{extra[0][-1]}"
        shutil.rmtree(run_dir, ignore_errors=True)
        _, wall = run(py("-m", "makemore", "train", "--config", "configs/names.toml", "--run-dir", str(run_dir), "-q", "--nproc", str(nproc),
                         *common, *set_args(extra)))
        summary = runs.read_summary(run_dir)
        out[name] = {"steps_per_s": summary["steps_per_s"], "train_time_s": summary["train_time_s"], "dev_loss": summary["dev_loss"],
                     "wall_s": wall}
        print(f"{name}: {summary['steps_per_s']:.1f} steps/s, dev {summary['dev_loss']:.4f}, whole command {wall:.1f} s", flush=True)
    base = out["1 process, 2 threads"]["steps_per_s"]
    out["ratio_2proc_vs_1proc_2threads"] = out["2 processes, 1 thread each"]["steps_per_s"] / base
    out["ratio_2proc_vs_1proc_1thread"] = out["2 processes, 1 thread each"]["steps_per_s"] / out["1 process, 1 thread"]["steps_per_s"]
    return out


def sweep_figure(steps: int) -> dict[str, Any]:
    """Wall time of a 6-run grid sweep: plain (one process), and on Optuna with --jobs 1 and --jobs 2."""
    out: dict[str, Any] = {}
    grid = [a for g in SWEEP_GRID for a in ("--grid", g)]
    sides = {"plain, --jobs 1": ["--jobs", "1"], "optuna, --jobs 1": ["--jobs", "1", "--study", "bench"],
             "optuna, --jobs 2": ["--jobs", "2", "--study", "bench"]}
    for name, extra in sides.items():
        sweep_dir = OUT / f"sweep-{name.replace(', --', '-').replace(' ', '')}"
        shutil.rmtree(sweep_dir, ignore_errors=True)
        _, wall = run(py("-m", "makemore", "sweep", "--config", "configs/names.toml", "--out", str(sweep_dir), "-q", *extra, *grid,
                         *set_args(SWEEP_SETS + [f"train.steps={steps}", f"train.eval_interval={steps}"])))
        n = len(list(sweep_dir.glob("*/summary.json")))
        out[name] = {"wall_s": wall, "runs": n, "runs_per_min": 60 * n / wall}
        print(f"sweep {name}: {n} runs in {wall:.1f} s ({60 * n / wall:.1f} runs/min)", flush=True)
    out["speedup_jobs2_vs_jobs1_optuna"] = out["optuna, --jobs 1"]["wall_s"] / out["optuna, --jobs 2"]["wall_s"]
    out["speedup_jobs2_vs_plain"] = out["plain, --jobs 1"]["wall_s"] / out["optuna, --jobs 2"]["wall_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps of figure 1")
    parser.add_argument("--sweep-steps", type=int, default=5000, help="steps of each sweep run in figure 2")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python {platform.python_version()}",
                              "load_start": os.getloadavg()[0]}
    result["train_1_vs_2_processes"] = train_figure(args.steps)
    result["sweep_jobs_1_vs_2"] = sweep_figure(args.sweep_steps)
    result["load_end"] = os.getloadavg()[0]
    result["seconds"] = time.perf_counter() - t0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
