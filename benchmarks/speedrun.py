"""The Transformer's architecture options (docs/models.md), each alone and all together, on a
short recipe: dev loss after a fixed number of steps, side by side in one sitting.

    python -m benchmarks.speedrun                        # every option alone and together, 2 runs at a time
    python -m benchmarks.speedrun --steps 1500 --lr 0.004 --variants base,all
    python -m benchmarks.speedrun --config configs/speedrun.toml --variants base --set train.steps=1000

Each variant is `makemore train --config CONFIG` on the CPU, one torch thread, in a fresh process,
with the recipe's --set overrides (by default transformer.toml's model without dropout, AdamW on
a short cosine schedule: --steps, --batch-size, --lr, 100 warm-up steps) plus the variant's options.
The dev split is evaluated every --eval-every steps; the first evaluation at or below --target (the
plain makemore.py-style loop's dev after 5,000 steps, figure 9a of BENCHMARKS.md) is reported with
its step and its elapsed training time (metrics.jsonl's elapsed_s, which counts the evaluations
before it: a time for comparing variants run together, not figure 9a's). Prints one JSON line per
variant, then a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.run import py, run, set_args

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "speedrun"

#: The plain loop's whole-dev NLL after 5,000 steps (BENCHMARKS.md, figure 9a).
TARGET = 2.0356

#: Each option on, as --set overrides; "all": every one together; "base": none.
OPTIONS = {
    "rotary": ["model.pos=rotary"],
    "qk_norm": ["model.qk_norm=true"],
    "relu2": ["model.mlp_act=relu2"],
    "zero_init": ["model.zero_init=true"],
    "softcap": ["model.softcap=15"],
    "embed_skip": ["model.embed_skip=true"],
    "value_embed": ["model.value_embed=true"],
}
VARIANTS = {"base": [], **OPTIONS, "all": [s for sets in OPTIONS.values() for s in sets]}


def recipe(args: argparse.Namespace) -> list[str]:
    """The --set overrides every variant shares."""
    sets = ["train.device=cpu", "train.threads=1", f"train.eval_interval={args.eval_every}", "train.log_interval=50"]
    if args.config == "configs/transformer.toml":
        sets += ["model.dropout=0", "train.warmup_steps=100", f"train.steps={args.steps}",
                 f"train.batch_size={args.batch_size}", f"train.lr={args.lr}"]
    return sets + list(args.set)


def one(name: str, sets: list[str], args: argparse.Namespace) -> dict:
    """Train variant `name` and read its dev curve back."""
    from makemore import runs

    run_dir = OUT / name
    shutil.rmtree(run_dir, ignore_errors=True)
    run(py("-m", "makemore", "train", "--config", args.config, "--run-dir", str(run_dir), "-q",
           *set_args([*recipe(args), *sets])))
    curve = [(r["step"], r["elapsed_s"], r["dev_loss"]) for r in runs.read_metrics(run_dir) if r["dev_loss"] is not None]
    summary = runs.read_summary(run_dir)
    cross = next((c for c in curve if c[2] <= args.target), None)
    return {"variant": name, "sets": sets, "dev": summary["dev_loss"], "train_loss": summary["train_loss"],
            "steps": summary["steps"], "train_s": summary["train_time_s"], "steps_per_s": summary["steps_per_s"],
            "target_step": cross and cross[0], "target_s": cross and cross[1], "curve": curve}


def table(results: list[dict], target: float) -> str:
    """The Markdown table of docs/sweeps.md."""
    lines = [f"| variant | dev at the last step | first step at dev ≤ {target} | its time (s) | steps/s |",
             "|---|---:|---:|---:|---:|"]
    for r in results:
        step = "—" if r["target_step"] is None else f"{r['target_step']:,}"
        time = "—" if r["target_s"] is None else f"{r['target_s']:.1f}"
        lines.append(f"| {r['variant']} | {r['dev']:.4f} | {step} | {time} | {r['steps_per_s']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/transformer.toml")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=2100, help="with transformer.toml: steps of the cosine schedule")
    parser.add_argument("--batch-size", type=int, default=32, help="with transformer.toml: words per minibatch")
    parser.add_argument("--lr", type=float, default=0.003, help="with transformer.toml: peak learning rate")
    parser.add_argument("--eval-every", type=int, default=150, help="steps between dev evaluations")
    parser.add_argument("--target", type=float, default=TARGET, help="the dev loss to reach")
    parser.add_argument("--jobs", type=int, default=2, help="variants trained at a time, one thread each")
    parser.add_argument("--set", action="append", default=[], help="another override for every variant")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda n: one(n, VARIANTS[n], args), names))
    for r in results:
        print(json.dumps(r))
    print(table(results, args.target), file=sys.stderr)


if __name__ == "__main__":
    main()
