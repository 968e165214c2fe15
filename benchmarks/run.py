"""makemore's benchmark suite: each figure is makemore against a plain reference, side by side.

    python -m benchmarks.run                    # every figure; writes BENCHMARKS.md's table and its JSON
    python -m benchmarks.run --only 2,3         # some figures only (results in benchmarks/out/ only)
    python -m benchmarks.run --render FILE      # rewrite BENCHMARKS.md's table from a results JSON

Every timed command runs in a fresh subprocess of this Python, one at a time, from the repository
root, on the CPU (`--set train.device=cpu` for makemore, the reference is CPU-only), with
OPENBLAS_NUM_THREADS=1 (NumPy's BLAS on one thread, as the plain reference runs torch on one
thread; the threads each side trained on are recorded). Each run writes
benchmarks/out/results-<UTC time>.json and latest.json (every figure's rows and details, with the
machine, its load, the git commit and the date) and latest.md (the table). A full run (no
--only) also writes benchmarks/results/latest.json, the committed JSON behind BENCHMARKS.md, and
rewrites the table in BENCHMARKS.md between its two marker lines.

The figures (FIGURES; `--only` takes their keys):

1. time to quality, at equal quality: `makemore train --config configs/fast.toml` (twice, the
   faster counts) against the lecture's plain loop (benchmarks/plain.py), which evaluates its dev
   loss every 1 000 steps with its clock stopped. The plain loop's time is the training time (and
   the whole process's time) at which it *first* reaches fast.toml's final dev loss (1a, 1b), and
   the lecture's 2.17 (1c, 1d).
2. throughput at batch 32: `makemore train --config configs/names.toml` (NumPy backend) with its
   progress bar drawn and its metrics, evaluations and checkpoints written, against the plain loop
   for as many steps; alternately, twice, the fastest of each.
3. sampling 10 000 names: makemore.sample.sample against the lecture's one-name-at-a-time loop
   (3a, functions, both on one torch thread), and the whole `makemore sample RUN -n 10000` process
   against a whole one-at-a-time script process (3b).
4. data at scale: makemore's data path on generated 100 000-, 1 000 000- and 2 000 000-line words
   files (time per line, peak memory), and a whole `makemore train` process on the 1M file.
5. evaluation: makemore.evaluate.mean_nll over 1M and 4M windows: memory above the windows
   stays flat as the split grows, and no loss tensor carries an autograd graph.
6. the NumPy backend (hand-written backward) against the torch backend (autograd + torch.optim),
   both `makemore train --config configs/names.toml`, same steps, fastest of two each.
7. the cost of training statistics (benchmarks/stats_overhead.py); 8. one process against two,
   and sweep --jobs 2 against 1 (benchmarks/scale.py), for the record.
9. the Transformer against the peer's way of training it (benchmarks/transformer.py): time to
   the plain loop's dev loss after 5,000 steps, and steps/s at batch 32, both on one torch thread.
10. the best model, an ensemble of configs/best.toml and the LSTM (BEST_MEMBERS): its dev loss,
    and its members' training time against the plain lecture loop's 200,000 steps (figure 1's
    plain run when it ran them all, else a run of its own); then the same recipe and the same
    loop on another names file, the 1990 US Census surnames (benchmarks/other_names.py).
11. answers without torch: `makemore sample RUN -n 20` on a NumPy-trained run, NumPy alone
    against the torch path (MAKEMORE_TORCH_ANSWERS=1), whole processes.
12. 10,000 Transformer names with the key/value cache against re-reading every prefix
    (benchmarks/sampling.py), whole processes and the function.
13. the anytime frontier (benchmarks/frontier.py): configs/anytime.toml fitted to 30 s, 2 and 8
    minutes of training against the best dev the peer's Transformer loop reaches within each.

A new figure is one function registered with @figure(key, title) that returns rows (see `row`);
a standalone benchmark module (python -m benchmarks.NAME, printing one JSON object as its last
line) becomes one with `ctx.module(NAME, ...)`.

Ratios are taken within one run of this command (the cores may be shared: each pair is measured
close together in time); BENCHMARKS.md records the run behind its table with machine, load and date.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
DOC = ROOT / "BENCHMARKS.md"
TABLE_START = "<!-- results table: written by python -m benchmarks.run from benchmarks/results/latest.json -->"
TABLE_END = "<!-- end of results table -->"

#: Every subprocess runs with these on top of the environment: NumPy's BLAS on one thread.
ENV = {"OPENBLAS_NUM_THREADS": "1"}
#: Every makemore training run is pinned to the CPU, as the reference.
CPU = ["train.device=cpu"]

PLAIN_STEPS = 200_000
PLAIN_EVAL_EVERY = 1_000
LECTURE_DEV = 2.17
THROUGHPUT_STEPS = 20_000
PLAIN_SAMPLE_NAMES = 500
SAMPLE_NAMES = 10_000
DATA_LINES = (100_000, 1_000_000, 2_000_000)
EVAL_ROWS = (1_000_000, 4_000_000)


# ---------------------------------------------------------------------------------------------
# Running things
# ---------------------------------------------------------------------------------------------


def py(*args: str) -> list[str]:
    return [sys.executable, *args]


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """Run `cmd` from the repository root with ENV; return the finished process and its wall time (s).

    Raises:
        RuntimeError: the command failed (its stderr's end is in the message).
    """
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **ENV, **(env or {})})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc, wall


def set_args(sets: list[str] | tuple[str, ...]) -> list[str]:
    """The `--set SECTION.KEY=VALUE` arguments of makemore for each of `sets`."""
    return [a for s in sets for a in ("--set", s)]


def last_json(text: str) -> Any:
    """The JSON value on the last non-empty line of `text`."""
    return json.loads([line for line in text.splitlines() if line.strip()][-1])


@dataclass
class Context:
    """What a figure function gets: the options, a place for its details, and runs shared between figures."""

    plain_steps: int = PLAIN_STEPS
    details: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def module(self, name: str, *args: str) -> Any:
        """Run `python -m benchmarks.NAME ARGS` and return the JSON object on its last line."""
        proc, _ = run(py("-m", f"benchmarks.{name}", *args))
        return last_json(proc.stdout)

    def makemore_train(self, config: str, name: str, sets: list[str] = (), progress: bool = False) -> dict:
        """`makemore train --config CONFIG --set train.device=cpu --set ...` in a fresh process:
        its summary.json with the process's wall time ("wall_s") and run directory. With
        `progress`, rich is told stderr is a terminal (TTY_COMPATIBLE=1), so the live progress bar
        is drawn as a user sees it; else -q."""
        run_dir = OUT / "runs" / name
        shutil.rmtree(run_dir, ignore_errors=True)
        sets = [*CPU, *sets]
        cmd = py("-m", "makemore", "train", "--config", config, "--run-dir", str(run_dir), *set_args(sets))
        _, wall = run(cmd if progress else [*cmd, "-q"], env={"TTY_COMPATIBLE": "1", "COLUMNS": "120"} if progress else None)
        summary = json.loads((run_dir / "summary.json").read_text())  # makemore.runs.read_summary, without importing torch here
        return {**summary, "wall_s": wall, "run_dir": str(run_dir), "config": config, "sets": sets}

    def threads(self, config: str, sets: list[str] = ()) -> dict:
        """The torch and BLAS threads `makemore train --config CONFIG --set ...` trains on."""
        key = json.dumps([config, *sets])
        if key not in self.shared:
            self.shared[key] = self.module("probe", "threads", config, *CPU, *sets)
        return self.shared[key]

    def plain_train(self, steps: int, eval_every: int = 0, stop_below: float | None = None, data: str | None = None) -> dict:
        """benchmarks.plain's training loop on 1 torch thread in a fresh process (on `data`, default
        data/names.txt), with the process's wall time."""
        args = ["train", "--steps", str(steps), "--threads", "1", "--eval-every", str(eval_every)]
        if data is not None:
            args += ["--data", data]
        if stop_below is not None:
            args += ["--stop-below", repr(stop_below)]
        proc, wall = run(py("-m", "benchmarks.plain", *args))
        return {**last_json(proc.stdout), "wall_s": wall}


def row(key: str, name: str, makemore: float, reference: float | None, unit: str, ratio: float | None, *,
        min_ratio: float | None = None, goal: str | None = None, met: bool | None = None, note: str = "") -> dict:
    """One line of the table. `ratio` is how many times better makemore is (reference time /
    makemore time, or makemore rate / reference rate). The goal is `min_ratio` (met when ratio
    ≥ min_ratio), or a `goal` text with `met` given; neither: the figure is reported, not judged."""
    if min_ratio is not None:
        goal = f"≥ {min_ratio:g}×"
        met = ratio is not None and ratio >= min_ratio
    return {"key": key, "name": name, "makemore": makemore, "reference": reference, "unit": unit, "ratio": ratio,
            "goal": goal, "met": met, "note": note}


# ---------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    measure: Callable[[Context], list[dict]]


FIGURES: dict[str, Figure] = {}


def figure(key: str, title: str) -> Callable[[Callable[[Context], list[dict]]], Callable[[Context], list[dict]]]:
    """Register a figure function under `key` (in the order figures run)."""

    def register(measure: Callable[[Context], list[dict]]) -> Callable[[Context], list[dict]]:
        FIGURES[key] = Figure(key, title, measure)
        return measure

    return register


def first_crossing(curve: list[list[float]], target: float) -> list[float] | None:
    """The first [step, train_s, dev] of a plain-loop curve with dev ≤ target, or None."""
    return next((point for point in curve if point[2] <= target), None)


@figure("1", "time to quality")
def time_to_quality(ctx: Context) -> list[dict]:
    fast = [ctx.makemore_train("configs/fast.toml", "fast-1")]
    proc, _ = run(py("-m", "makemore", "evaluate", fast[0]["run_dir"], "--json"))
    target = last_json(proc.stdout)["dev"]  # fast.toml's final dev loss, as `makemore evaluate` reports it
    plain = ctx.plain_train(ctx.plain_steps, PLAIN_EVAL_EVERY, stop_below=min(target, LECTURE_DEV))
    fast.append(ctx.makemore_train("configs/fast.toml", "fast-2"))
    assert fast[0]["dev_loss"] == fast[1]["dev_loss"], "fast.toml is not reproducible"
    train_s, process_s = min(f["train_time_s"] for f in fast), min(f["wall_s"] for f in fast)
    startup = plain["wall_s"] - plain["in_process_s"]  # the interpreter, before the plain script's first line
    threads = ctx.threads("configs/fast.toml")
    ctx.details["1"] = {"fast": fast, "fast_dev_evaluate": target, "plain": plain, "plain_startup_s": startup, "threads": threads}
    ctx.shared["fast_run"] = fast[0]["run_dir"]
    rows = []
    for keys, goal_dev, label, goals in ((("1a", "1b"), target, f"fast.toml's dev {target:.4f}", (50, 15)),
                                         (("1c", "1d"), LECTURE_DEV, f"the lecture's dev {LECTURE_DEV}", (None, None))):
        cross = first_crossing(plain["curve"], goal_dev)
        if cross is None:
            for key, what in zip(keys, ("training", "process")):
                rows.append(row(key, f"time to {label}: {what}", train_s if what == "training" else process_s, None, "s", None,
                                min_ratio=goals[0 if what == "training" else 1],
                                note=f"the plain loop did not reach {goal_dev:.4f} in {plain['steps']:,} steps"))
            continue
        step, plain_train_s, plain_dev = cross
        plain_process_s = startup + plain["setup_s"] + plain_train_s  # its evaluations excluded
        common = (f"plain loop first at dev ≤ {goal_dev:.4f} after {step:,} steps (dev {plain_dev:.4f}, evaluated every "
                  f"{PLAIN_EVAL_EVERY:,} steps off the clock); makemore fast.toml {fast[0]['steps']:,} steps, dev {target:.4f}, "
                  f"fastest of 2")
        rows.append(row(keys[0], f"time to {label}: training", train_s, plain_train_s, "s", plain_train_s / train_s, min_ratio=goals[0],
                        note=f"{common}; training loops (makemore's with its evaluation and checkpoints)"))
        rows.append(row(keys[1], f"time to {label}: process", process_s, plain_process_s, "s", plain_process_s / process_s,
                        min_ratio=goals[1], note=f"{common}; whole processes, start-up included (the plain one up to its crossing)"))
    return rows


@figure("2", "throughput, batch 32")
def throughput(ctx: Context, rounds: int = 2) -> list[dict]:
    plains, ours = [], []
    for i in range(rounds):  # alternately, so both sides see the same load
        plains.append(ctx.plain_train(THROUGHPUT_STEPS))
        ours.append(ctx.makemore_train("configs/names.toml", f"names-numpy-{i}", [f"train.steps={THROUGHPUT_STEPS}"], progress=True))
    plain = max(plains, key=lambda p: p["steps_per_s"])
    best = max(ours, key=lambda s: s["steps_per_s"])
    ctx.shared["names_numpy"] = ours
    threads = ctx.threads("configs/names.toml")
    ctx.details["2"] = {"plain": plains, "makemore": ours, "threads": threads}
    return [row("2", "throughput, batch 32 (NumPy backend)", best["steps_per_s"], plain["steps_per_s"], "steps/s",
                best["steps_per_s"] / plain["steps_per_s"], min_ratio=1.5,
                note=f"configs/names.toml ({threads['backend']} backend: {'BLAS on 1 thread' if threads['backend'] == 'numpy' else str(threads['torch_threads']) + ' torch thread(s)'}) "
                     f"vs plain loop (1 torch thread), {THROUGHPUT_STEPS:,} steps each, alternately, fastest of {rounds}; makemore "
                     "with progress bar, metrics, 2 dev evaluations, 3 checkpoints")]


@figure("6", "NumPy vs torch backend")
def numpy_vs_torch(ctx: Context, rounds: int = 2) -> list[dict]:
    ours = ctx.shared.get("names_numpy", [])
    torch_runs = []
    for i in range(rounds):
        torch_runs.append(ctx.makemore_train("configs/names.toml", f"names-torch-{i}",
                                             [f"train.steps={THROUGHPUT_STEPS}", "train.backend=torch"], progress=True))
        if len(ours) < rounds:
            ours.append(ctx.makemore_train("configs/names.toml", f"names-numpy-{i}", [f"train.steps={THROUGHPUT_STEPS}"], progress=True))
    best, ref = max(ours, key=lambda s: s["steps_per_s"]), max(torch_runs, key=lambda s: s["steps_per_s"])
    threads = ctx.threads("configs/names.toml", ["train.backend=torch"])
    ctx.details["6"] = {"numpy": ours, "torch": torch_runs, "threads_torch": threads}
    return [row("6", "NumPy backend vs torch autograd, batch 32", best["steps_per_s"], ref["steps_per_s"], "steps/s",
                best["steps_per_s"] / ref["steps_per_s"], min_ratio=1.0,
                note=f"configs/names.toml, numpy (hand-derived backward) vs --set train.backend=torch (autograd + torch.optim, "
                     f"{threads['torch_threads']} torch thread(s)), {THROUGHPUT_STEPS:,} steps, fastest of {rounds} each; "
                     f"dev {best['dev_loss']:.4f} vs {ref['dev_loss']:.4f}")]


@figure("3", "sampling 10k names")
def sampling(ctx: Context, rounds: int = 2) -> list[dict]:
    run_dir = ctx.shared.get("fast_run")
    if run_dir is None:
        run_dir = ctx.shared["fast_run"] = ctx.makemore_train("configs/fast.toml", "fast-1")["run_dir"]
    plain = ctx.module("plain", "sample", "--run", run_dir, "--n", str(PLAIN_SAMPLE_NAMES), "--threads", "1")
    batched = ctx.module("probe", "sample", run_dir, str(SAMPLE_NAMES))
    ours_s, plain_s = [], []
    for _ in range(rounds):
        proc, wall = run(py("-m", "makemore", "sample", run_dir, "-n", str(SAMPLE_NAMES), "--seed", "1", "--json"))
        assert len(json.loads(proc.stdout)) == SAMPLE_NAMES
        ours_s.append(wall)
        proc, wall = run(py("-m", "benchmarks.plain", "names", "--run", run_dir, "--n", str(SAMPLE_NAMES), "--threads", "1"))
        assert len(last_json(proc.stdout)) == SAMPLE_NAMES
        plain_s.append(wall)
    ctx.details["3"] = {"plain": plain, "batched": batched, "makemore_sample_process_s": ours_s, "plain_names_process_s": plain_s}
    return [
        row("3a", "sampling 10k names: function", batched["names_per_s"], plain["names_per_s"], "names/s",
            batched["names_per_s"] / plain["names_per_s"], min_ratio=20,
            note=f"makemore.sample.sample, {SAMPLE_NAMES:,} names batched (torch threads {batched['threads']}) vs the lecture's loop, "
                 f"{PLAIN_SAMPLE_NAMES} names one at a time (torch threads {plain['threads']}); fastest of 3 each after a warm-up; "
                 f"mean length {batched['mean_len']:.2f} vs {plain['mean_len']:.2f}"),
        row("3b", "sampling 10k names: process", min(ours_s), min(plain_s), "s", min(plain_s) / min(ours_s),
            note=f"`makemore sample RUN -n {SAMPLE_NAMES} --json` vs `python -m benchmarks.plain names --run RUN --n {SAMPLE_NAMES} "
                 f"--threads 1` (one at a time), whole processes, fastest of {rounds} each"),
    ]


@figure("11", "answers without torch")
def answers(ctx: Context, rounds: int = 3) -> list[dict]:
    """`makemore sample RUN -n 20` on a NumPy-trained run of configs/names.toml, whole processes:
    NumPy alone (the default) against the torch path (MAKEMORE_TORCH_ANSWERS=1), alternately."""
    trained = ctx.shared.get("names_numpy") or [ctx.makemore_train("configs/names.toml", "names-numpy-0", [f"train.steps={THROUGHPUT_STEPS}"])]
    run_dir = trained[0]["run_dir"]
    cmd = py("-m", "makemore", "sample", run_dir, "-n", "20", "--seed", "1", "--json")
    numpy_s, torch_s = [], []
    for _ in range(rounds):
        numpy_proc, wall = run(cmd)
        numpy_s.append(wall)
        torch_proc, wall = run(cmd, env={"MAKEMORE_TORCH_ANSWERS": "1"})
        torch_s.append(wall)
    same = json.loads(numpy_proc.stdout) == json.loads(torch_proc.stdout)
    ctx.details["11"] = {"numpy_s": numpy_s, "torch_s": torch_s, "same_samples": same, "run": run_dir}
    return [row("11", "`makemore sample -n 20`, NumPy run: process", min(numpy_s), min(torch_s), "s", min(torch_s) / min(numpy_s),
                goal="≤ 0.5 s", met=min(numpy_s) <= 0.5,
                note=f"configs/names.toml run ({trained[0]['steps']:,} steps), whole processes, fastest of {rounds} each, alternately; "
                     f"reference: the same command on the torch path (MAKEMORE_TORCH_ANSWERS=1); same samples: {same}")]


@figure("12", "Transformer sampling: key/value cache")
def cached_sampling(ctx: Context) -> list[dict]:
    r = ctx.module("sampling", "--rounds", "3")
    ctx.details["12"] = r
    process, function = r["process_s"], r["sample_function_s"]
    return [
        row("12a", "10k Transformer names: process", process["cached"], process["reread"], "s", r["process_speedup"], min_ratio=5,
            note=f"`{r['command']}` with the cache vs re-reading every prefix (MAKEMORE_SAMPLE_REREAD=1), whole processes, fastest of "
                 f"{r['rounds']} each, alternately; start-up (-n 1) {r['startup_s']:.2f} s; a transformer.toml-size run of 200 steps"),
        row("12b", "10k Transformer names: function", function["cached"], function["reread"], "s", r["sample_function_speedup"],
            note="makemore.sample.sample in one process, the same words both ways"),
    ]


@figure("4", "data at scale")
def data_at_scale(ctx: Context) -> list[dict]:
    data = {}
    for lines in DATA_LINES:
        path = OUT / f"words-{lines}.txt"
        if not path.exists():
            ctx.module("probe", "words", str(path), str(lines))
        probes = [ctx.module("probe", "data", str(path)) for _ in range(2 if lines <= 1_000_000 else 1)]
        data[lines] = {**min(probes, key=lambda p: p["data_s"]), "data_warm_s": min(p["data_warm_s"] for p in probes),
                       "maxrss_mb_after_data": max(p["maxrss_mb_after_data"] for p in probes), "runs": probes}
    small, big, bigger = (data[n] for n in DATA_LINES)
    big_path = OUT / f"words-{DATA_LINES[1]}.txt"
    run_dir = OUT / "runs" / "big"
    shutil.rmtree(run_dir, ignore_errors=True)
    whole = ctx.module("probe", "maxrss", "--", *py("-m", "makemore", "train", "--config", "configs/names.toml",
                                                    "--set", f"data.path={big_path.relative_to(ROOT)}", "--set", "train.steps=200",
                                                    "--set", "train.eval_interval=200", *set_args(CPU),
                                                    "-q", "--run-dir", str(run_dir)))
    if whole["rc"] != 0:
        raise RuntimeError(f"makemore train on {big_path} failed: {whole['stderr_tail']}")
    peak = max(big["maxrss_mb_after_data"], whole["maxrss_mb"])
    ctx.details["4"] = {"probe": {str(k): v for k, v in data.items()}, "train_process": whole}
    scale = DATA_LINES[1] / DATA_LINES[0]
    cold, warm = big["data_s"] / small["data_s"], big["data_warm_s"] / small["data_warm_s"]
    beyond = bigger["data_warm_s"] / big["data_warm_s"]
    return [row("4", "data at scale (1M lines)", peak, None, "MB peak", warm,
                goal=f"≤ 1536 MB; time ×{scale:g} lines ≤ ×{1.25 * scale:g}", met=peak <= 1536 and warm <= 1.25 * scale,
                note=f"data path, {DATA_LINES[0]:,} → {DATA_LINES[1]:,} lines ({big['windows']:,} windows): warm "
                     f"{small['data_warm_s']:.2f} → {big['data_warm_s']:.2f} s (×{warm:.1f}, the ratio column); cold, fresh process "
                     f"{small['data_s']:.2f} → {big['data_s']:.2f} s (×{cold:.1f}); {DATA_LINES[1]:,} → {DATA_LINES[2]:,} lines, warm: "
                     f"{big['data_warm_s']:.2f} → {bigger['data_warm_s']:.2f} s (×{beyond:.2f} for ×{DATA_LINES[2] / DATA_LINES[1]:g}); "
                     f"whole `makemore train` on 1M lines (200 steps): {whole['wall_s']:.1f} s, peak {whole['maxrss_mb']:.0f} MB")]


@figure("5", "evaluation, chunked")
def evaluation(ctx: Context) -> list[dict]:
    probes = {rows: ctx.module("probe", "eval", str(rows)) for rows in EVAL_ROWS}
    ctx.details["5"] = {str(k): v for k, v in probes.items()}
    small, big = probes[EVAL_ROWS[0]], probes[EVAL_ROWS[-1]]
    growth = big["extra_peak_mb"] - small["extra_peak_mb"]
    unchunked_growth = big["unchunked_activations_mb"] - small["unchunked_activations_mb"]
    no_graph = all(p["loss_tensors"] > 0 and p["loss_tensors_with_grad_fn"] == 0 and p["loss_tensors_requiring_grad"] == 0
                   for p in probes.values())
    flat = growth <= 0.05 * unchunked_growth
    return [row("5", "evaluation, chunked", big["extra_peak_mb"], big["unchunked_activations_mb"], "MB above data",
                big["unchunked_activations_mb"] / max(big["extra_peak_mb"], 1e-9),
                goal="flat peak as the split grows; no autograd graph", met=flat and no_graph,
                note="; ".join(f"{r:,} rows: {p['seconds']:.2f} s ({p['rows_per_s']:,.0f} rows/s), +{p['extra_peak_mb']:.0f} MB"
                               for r, p in probes.items())
                     + f"; peak grew {growth:+.0f} MB from {EVAL_ROWS[0]:,} to {EVAL_ROWS[-1]:,} rows, where one unchunked pass would "
                       f"grow {unchunked_growth:,.0f} MB (the reference column: its activations at {EVAL_ROWS[-1]:,} rows); "
                       f"{sum(p['loss_tensors'] for p in probes.values())} loss tensors, "
                       f"{sum(p['loss_tensors_with_grad_fn'] for p in probes.values())} with a grad_fn")]


@figure("7", "training statistics overhead")
def stats_overhead(ctx: Context) -> list[dict]:
    r = ctx.module("stats_overhead", "--rounds", "0")
    ctx.details["7"] = r
    b = r["blocks"]
    return [row("7", "training statistics: cost of stats_interval 100", 100 * r["overhead"], None, "% of training time", None,
                goal=f"< {100 * r['goal']:g}%", met=r["met"],
                note=f"configs/names.toml (NumPy backend), alternating blocks of {r['interval']} steps with and without one "
                     f"recorded step, medians of {b['blocks']} blocks each: {1000 * b['off_median_s']:.1f} ms "
                     f"off, {1000 * b['on_median_s']:.1f} ms on (`python -m benchmarks.stats_overhead`)")]


@figure("8", "scaling out on this 2-core machine (for the record)")
def scaling(ctx: Context) -> list[dict]:
    r = ctx.module("scale")
    ctx.details["8"] = r
    t, s = r["train_1_vs_2_processes"], r["sweep_jobs_1_vs_2"]
    one, two = t["1 process, 1 thread"], t["2 processes, 1 thread each"]
    j1, j2 = s["optuna, --jobs 1"], s["optuna, --jobs 2"]
    return [
        row("8a", "data parallel: 2 processes vs 1 (torchrun, gloo)", two["steps_per_s"], one["steps_per_s"], "steps/s",
            two["steps_per_s"] / one["steps_per_s"],
            note=f"`makemore train --nproc 2` vs `--nproc 1`, both 1 thread per process, a 2-layer MLP at global batch 256 "
                 f"(`python -m benchmarks.scale`); 1 process on 2 threads: {t['1 process, 2 threads']['steps_per_s']:,.1f} steps/s; "
                 f"dev {two['dev_loss']:.4f} vs {one['dev_loss']:.4f}. Not a goal: on 2 cores the gradient all-reduce costs more than it saves"),
        row("8b", "sweep: Optuna --jobs 2 vs --jobs 1", j2["wall_s"], j1["wall_s"], "s", j1["wall_s"] / j2["wall_s"],
            note=f"a 6-run grid of short runs, whole `makemore sweep` commands: {j1['runs']} runs in {j1['wall_s']:.1f} s vs "
                 f"{j2['runs']} in {j2['wall_s']:.1f} s; the plain grid loop (no Optuna): {s['plain, --jobs 1']['wall_s']:.1f} s"),
    ]


@figure("9", "Transformer vs the peer's training loop")
def transformer(ctx: Context) -> list[dict]:
    r = ctx.module("transformer")
    ctx.details["9"] = r
    q, s = r["time_to_quality"], r["throughput"]
    threads = f"both on {r['threads']} torch thread{'s' if r['threads'] != 1 else ''}"
    return [
        row("9a", "Transformer: time to the plain loop's dev at 5,000 steps", q["makemore_train_s"], q["plain"]["train_s"], "s",
            q["ratio"], min_ratio=r["time_goal"],
            note=f"`makemore train --config {r['config']}` first at dev ≤ {q['target']:.4f} (the plain makemore.py-style loop's "
                 f"whole-dev NLL after {r['plain_steps']:,} steps at batch 32) at step {q['crossing_step']:,} (dev {q['crossing_dev']:.4f}, "
                 f"evaluated every {r['eval_every']} steps in a twin run; time from the run as shipped); {threads} "
                 f"(`python -m benchmarks.transformer`)"),
        row("9b", "Transformer: steps/s at batch 32", s["makemore_best"], s["plain_best"], "steps/s", s["ratio"], min_ratio=r["speed_goal"],
            note=f"`{r.get('throughput_config', r['config'])}` with `--set train.batch_size=32 --set train.steps=3000` "
                 f"(its loop with 2 dev evaluations and checkpoints) vs the "
                 f"plain loop (DataLoader, explicit masked attention, AdamW, `.item()` each step) for 2,000 steps, alternately, "
                 f"fastest of {len(s['plain_steps_per_s'])} each; {threads}"),
    ]


BEST_DEV = 1.90
BEST_TIME_MULTIPLE = 8
#: The best model: an ensemble (makemore ensemble, weights fitted on dev) of these runs, each
#: `makemore train --config CONFIG --set ...`; its time is the members' training times added up.
BEST_MEMBERS = (("configs/best.toml", ()), ("configs/gru.toml", ("model.type=lstm",)))


def best_ensemble(ctx: Context, name: str, sets: list[str] = ()) -> dict:
    """Train every BEST_MEMBERS run (with `sets` on top), then their ensemble: its ensemble.json
    (dev_nll, weights, member_dev_nll) with the members' summaries and their total training time."""
    members = [ctx.makemore_train(config, f"{name}-{i}", [*extra, *sets]) for i, (config, extra) in enumerate(BEST_MEMBERS)]
    out = OUT / "runs" / f"{name}-ensemble"
    shutil.rmtree(out, ignore_errors=True)
    run(py("-m", "makemore", "ensemble", *(m["run_dir"] for m in members), "--out", str(out)))
    ensemble = json.loads((out / "ensemble.json").read_text(encoding="utf-8"))
    return {"dev_loss": ensemble["dev_nll"], "weights": ensemble["weights"], "members": members,
            "train_time_s": sum(m["train_time_s"] for m in members), "run_dir": str(out)}


def _members(ours: dict) -> str:
    return " + ".join(f"`{m['config']}`{''.join(f' --set {x}' for x in m['sets'] if x != 'train.device=cpu')} "
                      f"(dev {m['dev_loss']:.4f}, {m['train_time_s']:.0f} s, weight {w:.2f})" for m, w in zip(ours["members"], ours["weights"]))


@figure("10", "the best model: quality within a time budget")
def best(ctx: Context) -> list[dict]:
    plain = ctx.details.get("1", {}).get("plain")
    if plain is None or plain["steps"] != PLAIN_STEPS:  # figure 1 stopped its plain loop early, or did not run
        plain = ctx.plain_train(PLAIN_STEPS)
    ours = best_ensemble(ctx, "best")
    from benchmarks.other_names import surnames

    other = surnames()
    plain_other = ctx.plain_train(PLAIN_STEPS, data=str(other))
    ours_other = best_ensemble(ctx, "best-surnames", [f'data.path="{other.as_posix()}"'])
    ctx.details["10"] = {"best": ours, "plain": plain, "surnames": {"best": ours_other, "plain": plain_other}}
    multiple = ours["train_time_s"] / plain["train_s"]
    return [
        row("10a", "best model: dev loss", ours["dev_loss"], None, "nats/char", None, goal=f"≤ {BEST_DEV:.2f}",
            met=ours["dev_loss"] <= BEST_DEV,
            note=f"`makemore ensemble` (weights fitted on dev) of {_members(ours)}: whole dev split"),
        row("10b", "best model: training time", ours["train_time_s"], plain["train_s"], "s", None,
            goal=f"≤ {BEST_TIME_MULTIPLE}× reference", met=multiple <= BEST_TIME_MULTIPLE,
            note=f"the members' summary.json train_time_s (loops, evaluations, checkpoints) added up = {multiple:.1f}× the plain "
                 f"lecture loop's {PLAIN_STEPS:,} steps (`python -m benchmarks.plain train --threads 1`, its training time, "
                 f"evaluations excluded)"),
        *_other_file_rows(ours_other, plain_other),
    ]


def _other_file_rows(ours: dict, plain: dict) -> list[dict]:
    """Figure 10 on another names file: the same recipe against the lecture loop on the 1990 US Census surnames."""
    multiple = ours["train_time_s"] / plain["train_s"]
    where = "the 88,799 US Census 1990 surnames (`python -m benchmarks.other_names`)"
    return [
        row("10c", "best recipe on other names: dev loss", ours["dev_loss"], plain["dev_loss"], "nats/char", None,
            goal="below the lecture loop's", met=ours["dev_loss"] < plain["dev_loss"],
            note=f"the same members and ensemble on {where} (`--set data.path=...`): {_members(ours)}; "
                 f"reference: the plain lecture loop's dev after {PLAIN_STEPS:,} steps on the same split"),
        row("10d", "best recipe on other names: training time", ours["train_time_s"], plain["train_s"], "s", None,
            goal=f"≤ {BEST_TIME_MULTIPLE}× reference", met=multiple <= BEST_TIME_MULTIPLE,
            note=f"{multiple:.1f}× the plain lecture loop's {PLAIN_STEPS:,} steps on the same file"),
    ]


@figure("13", "the anytime frontier: best dev loss within a training budget")
def frontier(ctx: Context) -> list[dict]:
    r = ctx.module("frontier")
    ctx.details["13"] = r
    how = ("two runs at a time" if r["jobs"] == 2 else "one run at a time")
    return [
        row(f"13{'abcdef'[i]}", f"anytime frontier: dev within {b['budget_s']:g} s", b["makemore_dev"], b["peer_best_dev"], "nats/char",
            None, goal=f"≥ {r['goal_nats']:g} nats ahead", met=b["met"],
            note=f"`makemore train --config {r['config']} --set train.time_budget_s={b['budget_s']:g}`: {b['makemore_steps']:,} steps in "
                 f"{b['makemore_train_s']:.1f} s, dev at the end; the peer loop (makemore.py's Transformer, AdamW 5e-4, batch 32): its "
                 f"best whole-dev NLL within {b['budget_s']:g} s of training (evaluated every {r['eval_every']} steps, off the clock), "
                 f"at {b['peer_best_at_s']:.0f} s, step {b['peer_best_step']:,}; lead {b['lead_nats']:+.3f}; one torch thread each, "
                 f"{how} (`python -m benchmarks.frontier`; plot: {r['plot']})")
        for i, b in enumerate(r["rows"])
    ]


# ---------------------------------------------------------------------------------------------
# Machine facts, the table, the files
# ---------------------------------------------------------------------------------------------


def machine() -> dict:
    """What the numbers were measured on."""
    import numpy
    import torch

    return {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform(), "torch_default_threads": torch.get_num_threads(),
            "env": dict(ENV), "loadavg_start": os.getloadavg()}


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def git_state() -> dict:
    """The commit measured, and whether the working tree had uncommitted changes to tracked files."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def fmt(value: float | None, unit: str = "") -> str:
    """A table value: losses (nats/char) to 4 decimals, everything else to 2."""
    return "–" if value is None else f"{value:,.4f}" if unit == "nats/char" else f"{value:,.2f}"


def markdown(results: dict) -> str:
    """The results as BENCHMARKS.md's table, with a line saying when and where they were measured."""
    m, g = results["machine"], results["git"]
    lines = [f"Run {results['date_utc']} on {m['cores']} × {m['cpu']}, Python {m['python']}, torch {m['torch']}, numpy {m['numpy']}; "
             f"commit {g['commit'][:10]}{' (with uncommitted changes)' if g['dirty'] else ''}; load average "
             f"{m['loadavg_start'][0]:.1f} at the start, {m['loadavg_end'][0]:.1f} at the end; `{results['command']}` took "
             f"{results['total_s']:.0f} s. Every row is in "
             f"[benchmarks/results/latest.json](benchmarks/results/latest.json) with the runs behind it.", "",
             "| # | figure | makemore | reference | ratio | goal | met | notes |", "|---|---|---:|---:|---:|---|---|---|"]
    for r in sorted(results["rows"], key=lambda r: r["key"]):
        met = "–" if r["met"] is None else ("yes" if r["met"] else "**no**")
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:.1f}×"
        lines.append(f"| {r['key']} | {r['name']} | {fmt(r['makemore'], r['unit'])} {r['unit']} | {fmt(r['reference'], r['unit'])} | {ratio} | "
                     f"{r['goal'] or '–'} | {met} | {r['note'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    m = results["machine"]
    t = Table(title=f"makemore benchmarks — {results['date_utc']}, {m['cores']} cores, torch {m['torch']}, "
                    f"load {m['loadavg_start'][0]:.1f}→{m['loadavg_end'][0]:.1f}")
    for col in ("#", "figure", "makemore", "reference", "ratio", "goal", "met", "notes"):
        t.add_column(col, justify="right" if col in ("makemore", "reference", "ratio") else "left", overflow="fold")
    for r in sorted(results["rows"], key=lambda r: r["key"]):
        met = "-" if r["met"] is None else ("[green]yes[/green]" if r["met"] else "[red]NO[/red]")
        t.add_row(r["key"], r["name"], f"{fmt(r['makemore'], r['unit'])} {r['unit']}", fmt(r["reference"], r["unit"]),
                  "-" if r["ratio"] is None else f"{r['ratio']:.1f}×", r["goal"] or "-", met, r["note"])
    Console(width=200).print(t)


def render(results: dict, doc: Path = DOC) -> None:
    """Replace the table between TABLE_START and TABLE_END in `doc` with `results`' table."""
    text = doc.read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    doc.write_text(text[:start] + "\n\n" + markdown(results) + "\n" + text[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help=f"comma-separated figure keys ({','.join(FIGURES)}); default: all")
    parser.add_argument("--plain-steps", type=int, default=PLAIN_STEPS, help="most steps of the plain loop in figure 1")
    parser.add_argument("--render", type=Path, default=None, help="rewrite BENCHMARKS.md's table from this results JSON; run nothing")
    args = parser.parse_args(argv)
    if args.render is not None:
        render(json.loads(args.render.read_text(encoding="utf-8")))
        print(f"rewrote the table in {DOC} from {args.render}")
        return
    only = list(FIGURES) if args.only is None else [k.strip() for k in args.only.split(",")]
    unknown = [k for k in only if k not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}: choose from {', '.join(FIGURES)}")
    full = args.only is None and args.plain_steps == PLAIN_STEPS
    OUT.mkdir(parents=True, exist_ok=True)
    ctx = Context(plain_steps=args.plain_steps)
    results: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
        "git": git_state(), "command": " ".join(["python -m benchmarks.run", *(sys.argv[1:] if argv is None else argv)]),
        "rows": [], "details": ctx.details,
    }
    t0 = time.perf_counter()
    for key in FIGURES:
        if key in only:
            print(f"[{time.perf_counter() - t0:6.1f} s] figure {key}: {FIGURES[key].title} ...", file=sys.stderr, flush=True)
            results["rows"] += FIGURES[key].measure(ctx)
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["total_s"] = time.perf_counter() - t0
    print_table(results)
    text = json.dumps(results, indent=1, default=str)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    for path in (OUT / f"results-{stamp}.json", OUT / "latest.json"):
        path.write_text(text, encoding="utf-8")
    (OUT / "latest.md").write_text(markdown(results), encoding="utf-8")
    print(f"wrote {OUT / f'results-{stamp}.json'} and {OUT / 'latest.md'} (total {results['total_s']:.0f} s)")
    if full:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
        render(results)
        print(f"wrote {RESULTS.relative_to(ROOT)} and the table in {DOC.name}")


if __name__ == "__main__":
    main()
