"""The README's results table, measured: every row's command run as shipped, one after another.

    python -m benchmarks.readme_table                    # ~20 minutes on 2 CPU cores
    python -m benchmarks.readme_table --only mlp,bigram  # some rows

Each row is `makemore train <its arguments> --run-dir benchmarks/out/readme/<row> -q --json` in a
fresh process from the repository root (benchmarks.run.run: OPENBLAS_NUM_THREADS=1, as every benchmark),
then `makemore evaluate RUN --json` for the train and dev NLL (nats per character, whole splits).
Time is summary.json's train_time_s: the training loop with its evaluations and checkpoints.
Parameters are counted from the checkpoint (running statistics of BatchNorm are not parameters).
Prints the markdown table and, as the last line, one JSON object with every row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from benchmarks.run import last_json, py, run
from makemore import runs
from makemore.config import load_config

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "readme"

#: (key, the README's label, the arguments of `makemore train`), in the README's order.
ROWS = [
    ("bigram", "`bigram`: counts, add-1 smoothing", ["--config", "configs/names.toml", "--set", "model.type=bigram"]),
    ("mlp", "`mlp`: the lecture's MLP", ["--config", "configs/names.toml"]),
    ("mlp-randn", "`mlp`, the video's `randn` init", ["--config", "configs/names.toml", "--set", "model.init=lecture"]),
    ("mlp-fast", "`mlp`, fast recipe", ["--config", "configs/fast.toml"]),
    ("wavenet", "`wavenet` (lecture part 5)", ["--config", "configs/wavenet.toml"]),
    ("bow", "`bow`", ["--config", "configs/gru.toml", "--set", "model.type=bow"]),
    ("rnn", "`rnn`", ["--config", "configs/gru.toml", "--set", "model.type=rnn"]),
    ("gru", "`gru`", ["--config", "configs/gru.toml"]),
    ("lstm", "`lstm`", ["--config", "configs/gru.toml", "--set", "model.type=lstm"]),
    ("transformer", "`transformer`, makemore.py's size", ["--config", "configs/transformer.toml"]),
    ("best", "`transformer`: **best** ([sweeps](docs/sweeps.md))", ["--config", "configs/best.toml"]),
]


def makemore(*args: str) -> dict:
    """`python -m makemore ARGS` from the repository root (benchmarks.run.run); its last stdout line as JSON."""
    proc, _ = run(py("-m", "makemore", *args))
    return last_json(proc.stdout)


def params_in(run_dir: Path) -> int:
    """Trainable parameters of a run's model, from its checkpoint."""
    state = runs.load_checkpoint(run_dir)["model"]
    return sum(v.numel() for k, v in state.items() if "running_" not in k and "num_batches" not in k)


def measure(key: str, args: list[str]) -> dict:
    run_dir = OUT / key
    shutil.rmtree(run_dir, ignore_errors=True)
    summary = makemore("train", *args, "--run-dir", str(run_dir), "-q", "--json")
    losses = makemore("evaluate", str(run_dir), "--json")
    batch = load_config(run_dir / "config.toml").train.batch_size
    return {"key": key, "command": "makemore train " + " ".join(args), "params": params_in(run_dir), "steps": summary["steps"],
            "batch_size": batch, "train": losses["train"], "dev": losses["dev"], "train_time_s": summary["train_time_s"]}


def table(rows: list[dict]) -> str:
    labels = {key: label for key, label, _ in ROWS}
    lines = ["| model | params | steps × batch | train | dev | time | command |", "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        steps = "counts" if r["key"] == "bigram" else f"{r['steps']:,} × {r['batch_size']}"
        lines.append(f"| {labels[r['key']]} | {r['params']:,} | {steps} | {r['train']:.4f} | {r['dev']:.4f} | "
                     f"{r['train_time_s']:.1f} s | `{r['command']}` |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help=f"comma-separated rows ({','.join(k for k, _, _ in ROWS)}); default: all")
    args = parser.parse_args(argv)
    keys = [k for k, _, _ in ROWS] if args.only is None else args.only.split(",")
    unknown = sorted(set(keys) - {k for k, _, _ in ROWS})
    if unknown:
        parser.error(f"unknown rows: {', '.join(unknown)}")
    rows = []
    for key, _, train_args in ROWS:
        if key in keys:
            rows.append(measure(key, train_args))
            print(f"{key}: dev {rows[-1]['dev']:.4f} in {rows[-1]['train_time_s']:.1f} s", file=sys.stderr, flush=True)
    print(table(rows))
    print(json.dumps({"rows": rows, "loadavg_end": os.getloadavg()}))


if __name__ == "__main__":
    main()
