"""makemore's benchmark suite: six figures, each makemore against a plain reference, side by side.

    python -m benchmarks.run                 # everything, ~4 minutes on 2 busy cores
    python -m benchmarks.run --plain-steps 20000   # time 20k plain steps and extrapolate to 200k (marked)
    python -m benchmarks.run --only 2,3      # some figures only (1 and 2 share the plain run)

Prints a table and writes benchmarks/out/results-<UTC time>.json (and latest.json, and latest.md:
the table in Markdown, for BENCHMARKS.md). Every timed
command runs in a fresh subprocess of this Python, one at a time, from the repository root:

1. time to quality: `makemore train --config configs/fast.toml` (the lecture's model size) against
   the lecture's plain loop (benchmarks/plain.py) for 200 000 steps of 32: training time and whole
   process time, and the dev NLL each reaches (the fast run's confirmed by `makemore evaluate --json`).
2. throughput at batch 32: `makemore train --config configs/names.toml` for THROUGHPUT_STEPS steps
   with its progress bar drawn (a terminal is simulated) and its metrics, evaluations and checkpoints
   written, against the plain loop timed for as many steps; the two alternate, twice, and the
   fastest of each is compared (the cores may be shared).
3. sampling: makemore.sample.sample for 10 000 names against the lecture's one-name-at-a-time loop
   (timed for PLAIN_SAMPLE_NAMES names; the rate is names/s; each the fastest of three timings after
   a warm-up), and the `makemore sample -n 10000` process.
4. data at scale: makemore's data path on generated 100 000-, 1 000 000- and 2 000 000-line words
   files (time per line, peak memory; two fresh processes each (one for 2M), three warm repeats in
   each: the fastest of each kind is reported, as the cores may be busy), and a whole
   `makemore train` process on the 1M file (peak memory).
5. evaluation: makemore.evaluate.mean_nll over 1M and 4M windows: rows/s and how far memory rises
   (bounded, against what one unchunked pass would hold).
6. the NumPy backend (hand-written backward) against the torch backend, both at batch 32 through
   `makemore train`, same steps, fastest of two runs each.

Ratios are taken within one run of this command (the cores may be shared: each pair is measured
close together in time); BENCHMARKS.md records a run with its machine, load and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
PLAIN_STEPS = 200_000
THROUGHPUT_STEPS = 20_000
PLAIN_SAMPLE_NAMES = 500
SAMPLE_NAMES = 10_000
DATA_LINES = (100_000, 1_000_000, 2_000_000)
EVAL_ROWS = (1_000_000, 4_000_000)

GOALS = {
    "1a": ("training time, plain 200k steps / makemore fast.toml", 25.0),
    "1b": ("whole process, plain / makemore train", 8.0),
    "2": ("steps/s at batch 32, makemore / plain", 1.5),
    "3": ("names/s, batched / one at a time", 20.0),
    "6": ("steps/s at batch 32, numpy backend / torch backend", 1.0),
}


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> tuple[subprocess.CompletedProcess, float]:
    """Run `cmd` from the repository root; return the finished process and its wall time (s)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc, wall


def last_json(text: str) -> Any:
    """The last line of `text` that is a JSON value."""
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    raise ValueError(f"no JSON in output: {text[-500:]}")


def py(*args: str) -> list[str]:
    return [sys.executable, *args]


def makemore_train(config: str, run_dir: Path, sets: list[str], progress: bool) -> tuple[dict, float]:
    """`makemore train` in a subprocess: (summary.json, wall s). With `progress`, rich is told the
    output is a terminal (TTY_COMPATIBLE=1), so the live progress bar is drawn as a user sees it."""
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = py("-m", "makemore", "train", "--config", config, "--run-dir", str(run_dir), *[a for s in sets for a in ("--set", s)])
    if not progress:
        cmd.append("-q")
    _, wall = run(cmd, env={"TTY_COMPATIBLE": "1", "COLUMNS": "120"} if progress else None)
    return json.loads((run_dir / "summary.json").read_text()), wall


def plain_train(steps: int) -> tuple[dict, float]:
    proc, wall = run(py("-m", "benchmarks.plain", "train", "--steps", str(steps), "--threads", "1"))
    return last_json(proc.stdout), wall


def figure_time_to_quality(results: dict, plain_steps: int) -> None:
    plain, plain_wall = plain_train(plain_steps)
    extrapolated = plain_steps != PLAIN_STEPS
    train_s = plain["train_s"] * PLAIN_STEPS / plain_steps
    process_s = plain_wall - plain["train_s"] + train_s
    results["plain_200k"] = {**plain, "wall_s": plain_wall, "train_s_200k": train_s, "process_s_200k": process_s,
                             "extrapolated_from_steps": plain_steps if extrapolated else None}
    fast_dir = OUT / "runs" / "fast"
    summary, wall = makemore_train("configs/fast.toml", fast_dir, [], progress=False)
    proc, eval_wall = run(py("-m", "makemore", "evaluate", str(fast_dir), "--json"))
    evaluated = last_json(proc.stdout)
    results["fast"] = {"summary": summary, "wall_s": wall, "evaluate": evaluated, "evaluate_wall_s": eval_wall}
    results["figures"]["1a"] = {"makemore": summary["train_time_s"], "plain": train_s, "ratio": train_s / summary["train_time_s"],
                                "unit": "s", "note": f"dev {evaluated['dev']:.4f} (makemore evaluate) vs plain dev {plain['dev_loss']:.4f}"
                                + (f"; plain extrapolated from {plain_steps} steps" if extrapolated else ""),
                                "quality_ok": evaluated["dev"] <= 2.17}
    results["figures"]["1b"] = {"makemore": wall, "plain": process_s, "ratio": process_s / wall, "unit": "s",
                                "note": "whole processes, start-up included" + (" (plain extrapolated)" if extrapolated else "")}


def figure_throughput(results: dict, rounds: int = 2) -> None:
    """Plain loop and makemore, alternately, `rounds` times each; the fastest of each is compared."""
    plains, summaries = [], []
    for _ in range(rounds):
        plains.append(plain_train(THROUGHPUT_STEPS)[0])
        summaries.append(makemore_train("configs/names.toml", OUT / "runs" / "lecture-torch", [f"train.steps={THROUGHPUT_STEPS}"],
                                        progress=True)[0])
    plain = max(plains, key=lambda p: p["steps_per_s"])
    summary = max(summaries, key=lambda s: s["steps_per_s"])
    results["throughput"] = {"plain": plain, "makemore": summary, "plain_all": [p["steps_per_s"] for p in plains],
                             "makemore_all": [s["steps_per_s"] for s in summaries]}
    results["figures"]["2"] = {"makemore": summary["steps_per_s"], "plain": plain["steps_per_s"],
                               "ratio": summary["steps_per_s"] / plain["steps_per_s"], "unit": "steps/s",
                               "note": f"{THROUGHPUT_STEPS:,} steps each, alternately, fastest of {rounds}; makemore with progress "
                               "bar, metrics, 2 dev evals, 3 checkpoints"}


def figure_numpy(results: dict) -> None:
    torch_summary = results.get("throughput", {}).get("makemore")
    if torch_summary is None:
        torch_summary, _ = makemore_train("configs/names.toml", OUT / "runs" / "lecture-torch", [f"train.steps={THROUGHPUT_STEPS}"], progress=True)
    if not (ROOT / "makemore" / "backends" / "numpy_mlp.py").exists():
        results["figures"]["6"] = {"note": "no NumPy backend in this checkout"}
        return
    summaries = [makemore_train("configs/names.toml", OUT / "runs" / "lecture-numpy",
                                [f"train.steps={THROUGHPUT_STEPS}", "train.backend=numpy"], progress=True)[0] for _ in range(2)]
    summary = max(summaries, key=lambda s: s["steps_per_s"])
    results["numpy"] = {"numpy": summary, "torch": torch_summary, "numpy_all": [s["steps_per_s"] for s in summaries]}
    results["figures"]["6"] = {"makemore": summary["steps_per_s"], "plain": torch_summary["steps_per_s"],
                               "ratio": summary["steps_per_s"] / torch_summary["steps_per_s"], "unit": "steps/s",
                               "note": f"numpy (makemore) vs torch backend (reference column), {THROUGHPUT_STEPS:,} steps, fastest of 2 each, "
                               f"dev {summary['dev_loss']:.4f} vs {torch_summary['dev_loss']:.4f}"}


def figure_sampling(results: dict) -> None:
    fast_dir = OUT / "runs" / "fast"
    if not (fast_dir / "checkpoint.pt").exists():
        makemore_train("configs/fast.toml", fast_dir, [], progress=False)
    proc, _ = run(py("-m", "benchmarks.plain", "sample", "--run", str(fast_dir), "--n", str(PLAIN_SAMPLE_NAMES)))
    plain = last_json(proc.stdout)
    proc, _ = run(py("-m", "benchmarks.probe", "sample", str(fast_dir), str(SAMPLE_NAMES)))
    batched = last_json(proc.stdout)
    _, cli_wall = run(py("-m", "makemore", "sample", str(fast_dir), "-n", str(SAMPLE_NAMES), "--seed", "1", "--json"))
    results["sampling"] = {"plain": plain, "batched": batched, "cli_wall_s": cli_wall}
    results["figures"]["3"] = {"makemore": batched["names_per_s"], "plain": plain["names_per_s"],
                               "ratio": batched["names_per_s"] / plain["names_per_s"], "unit": "names/s",
                               "note": f"{SAMPLE_NAMES:,} names batched vs {PLAIN_SAMPLE_NAMES} one at a time (fastest of 3 each); "
                               f"`makemore sample -n {SAMPLE_NAMES}` process {cli_wall:.2f} s; mean length "
                               f"{batched['mean_len']:.2f} vs {plain['mean_len']:.2f}"}


def figure_data(results: dict) -> None:
    data = {}
    for lines in DATA_LINES:
        path = OUT / f"words-{lines}.txt"
        if not path.exists():
            run(py("-m", "benchmarks.probe", "words", str(path), str(lines)))
        probes = [last_json(run(py("-m", "benchmarks.probe", "data", str(path)))[0].stdout) for _ in range(2 if lines <= 1_000_000 else 1)]
        data[lines] = {**min(probes, key=lambda p: p["data_s"]), "data_warm_s": min(p["data_warm_s"] for p in probes),
                       "maxrss_mb_after_data": max(p["maxrss_mb_after_data"] for p in probes), "runs": probes}
    small, big, bigger = (data[n] for n in DATA_LINES)
    big_path = OUT / f"words-{DATA_LINES[1]}.txt"
    run_dir = OUT / "runs" / "big"
    shutil.rmtree(run_dir, ignore_errors=True)
    proc, _ = run(py("-m", "benchmarks.probe", "maxrss", "--", *py("-m", "makemore", "train", "--config", "configs/names.toml",
                                                                   "--set", f"data.path={big_path.relative_to(ROOT)}", "--set", "train.steps=200",
                                                                   "--set", "train.eval_interval=200", "-q", "--run-dir", str(run_dir))))
    whole = last_json(proc.stdout)
    if whole["rc"] != 0:
        raise RuntimeError(f"makemore train on {big_path} failed: {whole['stderr_tail']}")
    peak = max(big["maxrss_mb_after_data"], whole["maxrss_mb"])
    results["data"] = {"probe": {str(k): v for k, v in data.items()}, "train_process": whole}
    scale = DATA_LINES[1] / DATA_LINES[0]
    cold, warm = big["data_s"] / small["data_s"], big["data_warm_s"] / small["data_warm_s"]
    beyond = bigger["data_warm_s"] / big["data_warm_s"]
    results["figures"]["4"] = {
        "makemore": peak, "unit": "MB peak", "goal_text": f"≤ 1536 MB; time ×{scale:g} lines ≤ ×{1.25 * scale:g}",
        "ratio": warm, "ok": peak <= 1536 and warm <= 1.25 * scale,
        "note": f"data path, {DATA_LINES[0]:,} → {DATA_LINES[1]:,} lines ({big['windows']:,} windows): warm "
                f"{small['data_warm_s']:.2f} → {big['data_warm_s']:.2f} s (×{warm:.1f}, the ratio column); cold, fresh process "
                f"{small['data_s']:.2f} → {big['data_s']:.2f} s (×{cold:.1f}); {DATA_LINES[1]:,} → {DATA_LINES[2]:,} lines, warm: "
                f"{big['data_warm_s']:.2f} → {bigger['data_warm_s']:.2f} s (×{beyond:.2f} for ×{DATA_LINES[2] / DATA_LINES[1]:g}); "
                f"whole `makemore train` on 1M lines (200 steps): {whole['wall_s']:.1f} s, peak {whole['maxrss_mb']:.0f} MB",
    }


def figure_eval(results: dict) -> None:
    probes = {}
    for rows in EVAL_ROWS:
        proc, _ = run(py("-m", "benchmarks.probe", "eval", str(rows)))
        probes[rows] = last_json(proc.stdout)
    big = probes[EVAL_ROWS[-1]]
    extra = max(p["extra_peak_mb"] for p in probes.values())
    results["eval"] = {str(k): v for k, v in probes.items()}
    results["figures"]["5"] = {
        "makemore": extra, "plain": big["unchunked_activations_mb"], "unit": "MB above data",
        "ratio": big["unchunked_activations_mb"] / max(extra, 1e-9), "goal_text": "bounded; no gradients",
        "ok": all(p["grads"] == 0 for p in probes.values()) and extra < 0.25 * big["unchunked_activations_mb"],
        "note": "; ".join(f"{r:,} rows: {p['seconds']:.2f} s ({p['rows_per_s']:,.0f} rows/s), +{p['extra_peak_mb']:.0f} MB"
                          for r, p in probes.items()) + "; reference column: one unchunked pass's activations",
    }


def machine() -> dict:
    import torch

    load = os.getloadavg()
    return {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu_count": os.cpu_count(),
            "cpu": _cpu_name(), "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "loadavg_start": load}


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"makemore benchmarks — {results['machine']['date_utc']}, {results['machine']['cpu_count']} cores, "
                    f"torch {results['machine']['torch']}, load {results['machine']['loadavg_start'][0]:.1f}→{results['machine']['loadavg_end'][0]:.1f}")
    for col in ("#", "figure", "makemore", "reference", "ratio", "goal", "met", "notes"):
        t.add_column(col, justify="right" if col in ("makemore", "reference", "ratio") else "left", overflow="fold")
    names = {"1a": "time to quality: training", "1b": "time to quality: process", "2": "throughput, batch 32",
             "3": "sampling 10k names", "4": "data at scale (1M lines)", "5": "evaluation, chunked", "6": "NumPy backend, batch 32"}
    for key in ("1a", "1b", "2", "3", "4", "5", "6"):
        f = results["figures"].get(key)
        if f is None:
            continue
        if "ratio" not in f:
            t.add_row(key, names[key], "-", "-", "-", "-", "-", f.get("note", ""))
            continue
        goal = GOALS.get(key)
        if goal:
            ok = f["ratio"] >= goal[1] and f.get("quality_ok", True)
            goal_text = f"≥ {goal[1]:g}×" + (" & dev ≤ 2.17" if key == "1a" else "")
        else:
            ok, goal_text = f["ok"], f["goal_text"]
        f["met"], f["name"] = ok, names[key]
        ref = f"{f['plain']:,.2f}" if "plain" in f else "-"
        t.add_row(key, names[key], f"{f['makemore']:,.2f} {f['unit']}", ref, f"{f['ratio']:.1f}×", goal_text,
                  "[green]yes[/green]" if ok else "[red]NO[/red]", f.get("note", ""))
    Console(width=200).print(t)


def markdown(results: dict) -> str:
    """The results as a Markdown table (for BENCHMARKS.md), after `table` has marked each figure met or not."""
    m = results["machine"]
    lines = [f"Run {m['date_utc']} on {m['cpu_count']} × {m['cpu']}, Python {m['python']}, torch {m['torch']}; "
             f"load average {m['loadavg_start'][0]:.1f} at the start, {m['loadavg_end'][0]:.1f} at the end; "
             f"`{results['command']}` took {results['total_s']:.0f} s.", "",
             "| # | figure | makemore | reference | ratio | goal | met | notes |", "|---|---|---:|---:|---:|---|---|---|"]
    for key in sorted(results["figures"]):
        f = results["figures"][key]
        if "ratio" not in f:
            lines.append(f"| {key} | | | | | | | {f.get('note', '')} |")
            continue
        goal = f"≥ {GOALS[key][1]:g}×" + (" and dev ≤ 2.17" if key == "1a" else "") if key in GOALS else f["goal_text"]
        ref = f"{f['plain']:,.2f}" if "plain" in f else "–"
        lines.append(f"| {key} | {f.get('name', '')} | {f['makemore']:,.2f} {f['unit']} | {ref} | {f['ratio']:.1f}× | {goal} | "
                     f"{'yes' if f.get('met') else 'NO'} | {f.get('note', '').replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain-steps", type=int, default=PLAIN_STEPS, help="plain-loop steps timed for figure 1 (extrapolated to 200k if fewer)")
    parser.add_argument("--only", default="1,2,3,4,5,6", help="comma-separated figure numbers")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": machine(), "figures": {}, "command": " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])])}
    t0 = time.perf_counter()
    steps = [("1", lambda: figure_time_to_quality(results, args.plain_steps)), ("2", lambda: figure_throughput(results)),
             ("6", lambda: figure_numpy(results)), ("3", lambda: figure_sampling(results)), ("4", lambda: figure_data(results)),
             ("5", lambda: figure_eval(results))]
    for key, step in steps:
        if key in only:
            print(f"[{time.perf_counter() - t0:6.1f} s] figure {key} ...", file=sys.stderr, flush=True)
            step()
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["total_s"] = time.perf_counter() - t0
    table(results)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    text = json.dumps(results, indent=2, default=str)
    (OUT / f"results-{stamp}.json").write_text(text)
    (OUT / "latest.json").write_text(text)
    (OUT / "latest.md").write_text(markdown(results))
    print(f"wrote {OUT / f'results-{stamp}.json'} (total {results['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
