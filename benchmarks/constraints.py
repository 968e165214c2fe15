"""Constrained sampling by masking against rejection: `makemore sample RUN -n 100 --suffix ella`.

    python -m benchmarks.constraints                  # trains configs/names.toml first (~1 min here)
    python -m benchmarks.constraints --run RUN_DIR    # an existing run instead
    python -m benchmarks.constraints --run RUN_DIR --max-len 8   # both sides bounded to 8 characters

Masking is makemore.sample.sample_words with suffix="ella": every draw masked to end in "ella"
within the default --max-len, so 100 draws give 100 words. Rejection draws unconstrained words
(makemore.sample.sample, batches of SAMPLE_BATCH, as plain sampling draws them) and keeps those
that end in "ella", until 100 are kept; its draws are counted up to the one that gave the 100th
word. Both are timed in this process, the fastest of --rounds each, alternately, with a fixed seed
per round. For the record, each side's words are described too: mean length, mean NLL per
character under the model (makemore.evaluate.word_nll: the model's own, unconstrained), and the
share of words of the run's words file: masking samples a locally renormalised distribution, not
the model's own given the suffix (docs/names.md), and these show the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from benchmarks.run import ROOT, git_state, machine, py, run

OUT = ROOT / "benchmarks" / "out" / "constraints"
CONFIG = "configs/names.toml"
N = 100
SUFFIX = "ella"


def train() -> Path:
    """A fresh run of configs/names.toml in benchmarks/out/constraints/run."""
    run_dir = OUT / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run(py("-m", "makemore", "train", "--config", CONFIG, "--run-dir", str(run_dir), "-q"))
    return run_dir


def masking(loaded, seed: int, max_len: int | None) -> tuple[list[str], int, float]:
    """(words, draws, seconds) of sample_words(..., suffix=SUFFIX, max_len=max_len)."""
    from makemore.sample import sample_words

    t0 = time.perf_counter()
    found = sample_words(loaded, N, seed, suffix=SUFFIX, max_len=max_len)
    return [w for w, _ in found.words], found.selection.drawn, time.perf_counter() - t0


def rejection(loaded, seed: int, max_len: int | None) -> tuple[list[str], int, float]:
    """(words, draws, seconds): unconstrained batches until N words end in SUFFIX (and have at most max_len characters)."""
    import torch

    from makemore.sample import SAMPLE_BATCH, plain_cap, sample

    generator = torch.Generator().manual_seed(seed)
    cap = plain_cap(loaded)
    kept: list[str] = []
    drawn = 0
    t0 = time.perf_counter()
    while len(kept) < N:
        for word, finished in sample(loaded.model, loaded.vocab, SAMPLE_BATCH, generator, max_len=cap, view=loaded.family.view):
            drawn += 1
            if finished and word.endswith(SUFFIX) and (max_len is None or len(word) <= max_len):
                kept.append(word)
                if len(kept) == N:
                    break
    return kept, drawn, time.perf_counter() - t0


def describe(loaded, words: list[str]) -> dict:
    """Mean length, mean NLL per character (the model's own), share in the words file, a few examples."""
    from makemore.evaluate import word_nll

    nll = word_nll(loaded.model, loaded.vocab, loaded.family.view, words)
    known = set(loaded.dataset.words)
    return {"mean_length": round(statistics.mean(map(len, words)), 2), "mean_nll": round(float(nll.mean()), 4),
            "in_words_file": round(sum(w in known for w in words) / len(words), 3), "examples": words[:8]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing run (default: train configs/names.toml)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-len", type=int, help="--max-len for both sides (default: sampling's default bound)")
    args = parser.parse_args(argv)
    started = machine()
    run_dir = args.run if args.run is not None else train()
    from makemore.runs import load_run

    loaded = load_run(run_dir)
    best = {"masking": (None, 0, float("inf")), "rejection": (None, 0, float("inf"))}
    draws: dict[str, list[int]] = {"masking": [], "rejection": []}
    for seed in range(args.rounds):
        for way, method in (("masking", masking), ("rejection", rejection)):
            words, drawn, seconds = method(loaded, seed, args.max_len)
            draws[way].append(drawn)
            if seconds < best[way][2]:
                best[way] = (words, drawn, seconds)
    result = {
        "command": f"makemore sample {run_dir} -n {N} --suffix {SUFFIX}" + (f" --max-len {args.max_len}" if args.max_len else ""),
        "run": str(run_dir), "rounds": args.rounds, "max_len": args.max_len,
        **{way: {"draws": drawn, "draws_each_round": draws[way], "seconds": round(seconds, 4), **describe(loaded, words)}
           for way, (words, drawn, seconds) in best.items()},
        "machine": {**started, "loadavg_end": os.getloadavg()}, "git": git_state(),
    }
    result["draws_ratio"] = round(result["rejection"]["draws"] / result["masking"]["draws"], 1)
    result["seconds_ratio"] = round(result["rejection"]["seconds"] / result["masking"]["seconds"], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
