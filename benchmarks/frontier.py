"""The anytime frontier (issue 25): for each training budget, the best dev loss each side reaches.

    python -m benchmarks.frontier                         # budgets 30, 120, 480 s; about 11 minutes
    python -m benchmarks.frontier --budgets 30,120 --one-at-a-time

makemore's side, for each budget B: `makemore train --config configs/anytime.toml --set
train.time_budget_s=B` on the CPU, one torch thread (the config's schedule is fitted to B:
makemore.config.TrainConfig.time_budget_s); its result is the whole-dev NLL at the end of the run
and its training time summary.json's train_time_s (its steps, the evaluation it timed, its
checkpoints). The peer's side: benchmarks/plain_transformer.py (makemore.py's Transformer trained
its own way: AdamW lr 5e-4, batch 32) for the longest budget of training time, one torch thread,
evaluating the whole dev split every --eval-every steps and when it stops, with its clock stopped;
its result for each budget is the lowest of those evaluations at a training time within it (the
best dev it reaches in that time, with its evaluations free).

Runs, each a fresh process: by default two at a time on the machine's cores (the peer's run beside
makemore's longest one, then makemore's others in pairs), so both sides share the machine alike;
--one-at-a-time runs them in turn. Writes benchmarks/out/frontier/frontier.json and the plot
(--plot, default benchmarks/results/frontier.png: dev loss against training time, the peer's
evaluations and its best-so-far curve, makemore's result at each budget), and prints one JSON
object as its last line. The goal: makemore ahead by at least GOAL_NATS at every budget.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.run import Context, last_json, py, run

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "frontier"
PLOT = ROOT / "benchmarks" / "results" / "frontier.png"
CONFIG = "configs/anytime.toml"
BUDGETS = (30.0, 120.0, 480.0)
EVAL_EVERY = 200
GOAL_NATS = 0.05


def makemore_run(config: str, budget: float, threads: int) -> dict:
    """`makemore train --config CONFIG` fitted to `budget` seconds, in a fresh process: its summary.json."""
    sets = [f"train.threads={threads}", f"train.time_budget_s={budget:g}", "train.plot=false"]
    return {"budget_s": budget, **Context().makemore_train(config, f"frontier-{budget:g}s", sets)}


def peer_run(budget: float, threads: int, eval_every: int) -> dict:
    """benchmarks.plain_transformer for `budget` seconds of training, its dev split every `eval_every` steps."""
    proc, _ = run(py("-m", "benchmarks.plain_transformer", "--steps", str(10**9), "--time-s", f"{budget:g}",
                     "--threads", str(threads), "--eval-every", str(eval_every), "--quiet"))
    return last_json(proc.stdout)


def best_within(curve: list[list[float]], budget: float) -> tuple[float, float, int]:
    """The lowest dev NLL of `curve` ([[step, training s, dev], ...]) at a training time within
    `budget` seconds (1% over is allowed for the evaluation at the budget itself), with its time and step."""
    within = [point for point in curve if point[1] <= budget * 1.01]
    step, seconds, dev = min(within, key=lambda point: point[2])
    return dev, seconds, int(step)


def measure(budgets: list[float], config: str, threads: int, eval_every: int, jobs: int) -> dict:
    """Every run (the peer's for the longest budget, makemore's for each), `jobs` at a time, longest first."""
    longest = max(budgets)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        peer = pool.submit(peer_run, longest, threads, eval_every)
        ours = {b: pool.submit(makemore_run, config, b, threads) for b in sorted(budgets, reverse=True)}
        peer_result, ours_result = peer.result(), {b: f.result() for b, f in ours.items()}
    rows = []
    for b in sorted(budgets):
        dev, at_s, step = best_within(peer_result["curve"], b)
        m = ours_result[b]
        rows.append({"budget_s": b, "makemore_dev": m["dev_loss"], "makemore_train_s": m["train_time_s"],
                     "makemore_steps": m["steps"], "peer_best_dev": dev, "peer_best_at_s": at_s, "peer_best_step": step,
                     "lead_nats": dev - m["dev_loss"], "met": dev - m["dev_loss"] >= GOAL_NATS})
    return {"config": config, "threads": threads, "eval_every": eval_every, "jobs": jobs, "goal_nats": GOAL_NATS,
            "rows": rows, "makemore": ours_result, "peer": peer_result}


def plot(result: dict, path: Path) -> None:
    """Dev loss against training time: the peer's evaluations and best-so-far, makemore's runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = result["peer"]["curve"]
    times, devs = [p[1] for p in curve], [p[2] for p in curve]
    best = [min(devs[: i + 1]) for i in range(len(devs))]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(times, devs, ".", color="tab:gray", alpha=0.5, markersize=3, label="peer loop: dev at each evaluation")
    ax.step(times, best, where="post", color="tab:gray", label="peer loop: best dev so far")
    rows = result["rows"]
    ax.plot([r["makemore_train_s"] for r in rows], [r["makemore_dev"] for r in rows], "o-", color="tab:blue",
            label=f"makemore, {Path(result['config']).name} fitted to each budget")
    for r in rows:
        ax.axvline(r["budget_s"], color="tab:blue", alpha=0.15, linestyle=":")
        ax.annotate(f"{r['budget_s']:g} s: {r['makemore_dev']:.3f} vs {r['peer_best_dev']:.3f}",
                    (r["makemore_train_s"], r["makemore_dev"]), textcoords="offset points", xytext=(-6, -13), ha="right", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(right=max(r["budget_s"] for r in rows) * 1.25)
    ax.set_xlabel("training time, s (one torch thread each; log scale; dotted: the budgets)")
    ax.set_ylabel("whole-dev NLL, nats/char")
    ax.set_ylim(min(min(devs), *(r["makemore_dev"] for r in rows)) - 0.035, min(max(devs), 2.4))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("The anytime frontier: best dev loss within a training budget")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default=",".join(f"{b:g}" for b in BUDGETS), help="training budgets, seconds")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, help="the peer's evaluations, in steps")
    parser.add_argument("--one-at-a-time", action="store_true", help="one run at a time instead of two")
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args(argv)
    budgets = [float(b) for b in args.budgets.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    result = measure(budgets, args.config, args.threads, args.eval_every, 1 if args.one_at_a_time else 2)
    plot(result, args.plot)
    result["plot"] = str(args.plot.relative_to(ROOT) if args.plot.is_relative_to(ROOT) else args.plot)
    (OUT / "frontier.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    for r in result["rows"]:
        print(f"{r['budget_s']:>5g} s: makemore {r['makemore_dev']:.4f} ({r['makemore_train_s']:.1f} s, {r['makemore_steps']:,} steps)"
              f"  peer {r['peer_best_dev']:.4f} (at {r['peer_best_at_s']:.1f} s, step {r['peer_best_step']:,})"
              f"  lead {r['lead_nats']:+.4f}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
