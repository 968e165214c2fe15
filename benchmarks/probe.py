"""Measurements the benchmark runs in fresh subprocesses, so each one's peak memory is its own.

    python -m benchmarks.probe words OUT N           # write an N-line words file (seeded)
    python -m benchmarks.probe data PATH             # time makemore's data path, cold and warm
    python -m benchmarks.probe eval N                # makemore.evaluate.mean_nll over N random windows
    python -m benchmarks.probe sample RUN_DIR N      # time makemore.sample.sample for N names
    python -m benchmarks.probe threads CONFIG SET...  # the threads `makemore train` would train on
    python -m benchmarks.probe maxrss -- CMD...      # run CMD, report its wall time and peak memory

Each prints one JSON line. Peak memory is resource.getrusage's ru_maxrss (KiB on Linux): the most
resident memory the process ever held.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory of this process (or of its waited-for children), in MiB (Linux: KiB units)."""
    kb = resource.getrusage(who).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def write_words(out: str, n: int, seed: int = 0) -> dict:
    """An n-line words file made from data/names.txt: each line a name, or two names joined (1 in 4),
    drawn with a seeded NumPy generator, so lengths and characters look like the real file."""
    import numpy as np

    names = np.array(open("data/names.txt", encoding="utf-8").read().split())
    rng = np.random.default_rng(seed)
    first = names[rng.integers(0, len(names), n)]  # (n,)
    second = names[rng.integers(0, len(names), n)]  # (n,)
    joined = np.where(rng.random(n) < 0.25, np.char.add(first, second), first)  # (n,)
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(joined.tolist()) + "\n")
    return {"path": out, "lines": n}


def data_path(path: str, repeats: int = 3) -> dict:
    """Time makemore's data path on `path`: read, vocabulary, split, windows of every split, and one
    chunk of minibatches gathered. First in this fresh process ("cold": every page of new memory
    is first touched, which on a VM costs more than the arithmetic), then `repeats` more times in
    the same process ("warm", the fastest reported: the cores may be shared). Peak memory is the
    cold pass's."""
    from makemore.config import Config
    from makemore.prepare import check, read_data
    from makemore.training import chunk_indices

    cfg = Config()
    cfg.data.path = path
    cfg.train.backend, cfg.train.device = "numpy", "cpu"  # the checks below, outside the timing, need no torch
    checked = check(cfg)  # the config's checks (no data): done once, before the data path is timed

    def once() -> tuple[float, dict]:
        t0 = time.perf_counter()
        dataset = read_data(checked).dataset
        windows = {split: dataset.windows(split) for split in ("train", "dev", "test")}
        ix = chunk_indices(cfg.train.seed, 0, len(windows["train"]), cfg.train.batch_size)  # (steps_per_chunk, B)
        Xc, _ = windows["train"][ix]  # (steps_per_chunk, B, block_size), (steps_per_chunk, B)
        seconds = time.perf_counter() - t0
        return seconds, {"lines": len(dataset.words), "windows": sum(len(w) for w in windows.values()), "chunk_shape": list(Xc.shape)}

    cold, info = once()
    rss = maxrss_mb()
    warm = [once()[0] for _ in range(repeats)]
    return {**info, "data_s": cold, "data_warm_s": min(warm), "data_warm_all_s": warm, "maxrss_mb_after_data": rss}


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux /proc/self/statm)."""
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def eval_memory(n: int) -> dict:
    """makemore.evaluate.mean_nll of a fresh lecture-size MLP over n random windows: time, and how
    far memory rose above what the windows themselves take (bounded if evaluation is chunked: an
    unchunked pass over n rows would hold (n, n_hidden + vocab_size) activations, 908 bytes a row).

    No autograd: every loss tensor mean_nll computes is recorded (makemore.models.base.lm_loss is
    wrapped) and must have no grad_fn, i.e. no graph was built that could hold the activations."""
    import numpy as np
    import torch

    import makemore.models.base as base
    from makemore.config import ModelConfig
    from makemore.data import Windows
    from makemore.evaluate import mean_nll
    from makemore.models import build_model

    torch.set_num_threads(1)
    losses: list[tuple[bool, bool]] = []  # (has a grad_fn, requires grad) of each loss tensor; the tensors are not kept
    real_lm_loss = base.lm_loss

    def recorded_lm_loss(*args, **kwargs):
        loss = real_lm_loss(*args, **kwargs)
        losses.append((loss.grad_fn is not None, loss.requires_grad))
        return loss

    base.lm_loss = recorded_lm_loss
    model = build_model(ModelConfig(), 27, 3, torch.Generator().manual_seed(0))
    stream = np.random.default_rng(0).integers(0, 27, size=n + 3, dtype=np.uint8)  # (n+3,) random ids
    windows = Windows(stream, np.arange(3, n + 3), 3)  # every window of 3 ids and the id after them
    before = max(rss_mb(), maxrss_mb())
    t0 = time.perf_counter()
    nll = mean_nll(model, windows)
    seconds = time.perf_counter() - t0
    return {"rows": n, "seconds": seconds, "rows_per_s": n / seconds, "nll": nll, "mb_before": before,
            "extra_peak_mb": maxrss_mb() - before, "unchunked_activations_mb": n * (200 + 27) * 4 / 2**20,
            "loss_tensors": len(losses), "loss_tensors_with_grad_fn": sum(g for g, _ in losses),
            "loss_tensors_requiring_grad": sum(r for _, r in losses)}


def threads(config: str, sets: list[str]) -> dict:
    """The threads a `makemore train --config config --set ...` process trains on: torch's thread
    count in the backend's thread scope (makemore sets it from train.threads, see
    makemore.backends.torch_backend.choose_threads), and the BLAS library's as the environment sets it."""
    import os

    import torch

    from makemore.backends import make_backend
    from makemore.config import load_config
    from makemore.prepare import check

    checked = check(load_config(config, sets))
    with make_backend(checked.cfg, checked.family, 27, checked.device).threads():  # the scope the training driver holds while it trains
        torch_threads = torch.get_num_threads()
    return {"config": config, "sets": sets, "backend": checked.backend, "device": checked.device,
            "torch_threads": torch_threads, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}


def sample_timing(run_dir: str, n: int, seed: int = 2147483647, repeats: int = 3) -> dict:
    """Time makemore.sample.sample (all samples advanced together) for n names of a trained run:
    after a 20-name warm-up, `repeats` timings; names/s of the fastest (the cores may be shared)."""
    import torch

    from makemore.runs import load_run
    from makemore.sample import sample

    run = load_run(run_dir)
    g = torch.Generator().manual_seed(seed)
    seen_threads = set()
    hook = run.model.register_forward_pre_hook(lambda module, args: seen_threads.add(torch.get_num_threads()))
    sample(run.model, run.vocab, 20, g)  # warm-up, as the plain reference's; records the threads it runs on
    hook.remove()
    times, drawn = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        drawn += sample(run.model, run.vocab, n, g)
        times.append(time.perf_counter() - t0)
    return {"n": n, "threads": sorted(seen_threads), "seconds": min(times), "all_seconds": times, "names_per_s": n / min(times),
            "mean_len": sum(len(w) for w, _ in drawn) / len(drawn)}


def run_with_maxrss(cmd: list[str]) -> dict:
    """Run `cmd` as the only child of this process; its wall time, exit code and peak memory."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return {"cmd": cmd, "rc": proc.returncode, "wall_s": time.perf_counter() - t0, "maxrss_mb": maxrss_mb(resource.RUSAGE_CHILDREN),
            "stdout_tail": proc.stdout[-2000:], "stderr_tail": proc.stderr[-2000:]}


def main(argv: list[str]) -> None:
    command, args = argv[0], argv[1:]
    if command == "words":
        result = write_words(args[0], int(args[1]))
    elif command == "data":
        result = data_path(args[0])
    elif command == "eval":
        result = eval_memory(int(args[0]))
    elif command == "sample":
        result = sample_timing(args[0], int(args[1]))
    elif command == "threads":
        result = threads(args[0], args[1:])
    elif command == "maxrss":
        result = run_with_maxrss(args[1:] if args[:1] == ["--"] else args)
    else:
        raise SystemExit(f"unknown probe {command!r}: words, data, eval, sample, threads or maxrss")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
