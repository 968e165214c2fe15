"""The plain references the benchmark compares makemore against: the lecture's code, as written.

"Building makemore Part 2: MLP" (A. Karpathy, 2022) builds the dataset with Python loops, trains
with autograd and `p.data += -lr * p.grad` on minibatches of 32 for 200 000 steps (lr 0.1, then
0.01 from step 100 000), evaluates with one forward pass, and samples one name at a time. This
module is that code, made runnable, with one change that only helps it: the weights start with
part 3's scaled initialisation (makemore's default, init = "kaiming") instead of plain randn,
so both start alike and the reference reaches a better dev loss (~2.10 instead of ~2.17) in the
same number of steps. Everything runs on the CPU, on `--threads` torch threads (1 by default: on
2 shared cores that is its faster setting, and the thread count makemore uses for these models).

    python -m benchmarks.plain train --steps 200000 --eval-every 1000   # prints one JSON line
    python -m benchmarks.plain sample --run RUN_DIR --n 500             # one-at-a-time sampling, timed
    python -m benchmarks.plain names --run RUN_DIR --n 10000            # the same, as a whole process

`train` evaluates the whole dev split every `--eval-every` steps with the training clock stopped,
so the training time at which the loop first reaches a dev loss can be read off its curve
(`--stop-below` ends it there). It uses makemore only to read and split the words (so both train
on the same 80/10/10 split) and, for `sample` and `names`, to load a trained run's weights;
everything measured is the lecture's own loop. tests/test_plain_baseline.py checks that this
loop takes makemore's steps (same weights, same minibatches, same losses).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

#: The lecture's minibatch size, and the step from which its learning rate drops from 0.1 to 0.01.
BATCH = 32
LR_DROP_STEP = 100_000


def build_dataset(words: list[str], stoi: dict[str, int], block_size: int):
    """The lecture's build_dataset: a Python loop over every character. Returns X (N, block_size), Y (N,)."""
    import torch

    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def lecture_vocab(words: list[str]) -> dict[str, int]:
    """The lecture's stoi: the sorted characters from 1, the boundary "." as 0."""
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    return stoi


def lecture_parameters(seed: int = 2147483647) -> list:
    """[C, W1, b1, W2, b2] of the lecture's MLP (27 characters, block_size 3, n_embd 10, n_hidden
    200) with part 3's initialisation, drawn from torch.Generator().manual_seed(seed)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    C = torch.randn((27, 10), generator=g)  # (27, 10)
    W1 = torch.randn((30, 200), generator=g) * (5 / 3) / 30**0.5  # (30, 200) the part-3 init, as makemore's default
    b1 = torch.randn(200, generator=g) * 0.01  # (200,)
    W2 = torch.randn((200, 27), generator=g) * 0.01  # (200, 27)
    b2 = torch.randn(27, generator=g) * 0  # (27,)
    return [C, W1, b1, W2, b2]


def dev_loss(parameters: list, Xdev, Ydev) -> float:
    """The lecture's evaluation: one forward pass over the whole split, mean NLL in nats/char."""
    import torch
    import torch.nn.functional as F

    C, W1, b1, W2, b2 = parameters
    with torch.no_grad():
        emb = C[Xdev]  # (N, 3, 10)
        h = torch.tanh(emb.view(-1, 30) @ W1 + b1)  # (N, 200)
        return F.cross_entropy(h @ W2 + b2, Ydev).item()


def train_loop(parameters: list, Xtr, Ytr, steps: int, *, batches=None, losses: list | None = None,
               eval_every: int = 0, evaluate=None, stop_below: float | None = None) -> dict:
    """The lecture's training loop over `parameters` (updated in place).

    Args:
        parameters: [C, W1, b1, W2, b2] (see lecture_parameters).
        Xtr, Ytr: int64 (N, 3), (N,): the training windows.
        steps: optimizer steps.
        batches: None for the lecture's torch.randint minibatches; else the indices of each step
            (steps, 32), so a test can feed makemore's minibatches.
        losses: if a list, each step's minibatch loss is appended to it (.item(): for tests).
        eval_every: every that many steps, `evaluate()` (the dev NLL) is called with the training
            clock stopped and (step, training s, dev NLL) is added to the curve; 0: never.
        stop_below: end the loop at the first evaluation whose dev NLL is at most this.

    Returns:
        {"steps": steps taken, "train_s": seconds of training (evaluations excluded),
         "eval_s": seconds of evaluation, "curve": [[step, train_s, dev], ...]}.
    """
    import torch
    import torch.nn.functional as F

    C, W1, b1, W2, b2 = parameters
    for p in parameters:
        p.requires_grad = True
    curve, train_s, eval_s = [], 0.0, 0.0
    t0 = time.perf_counter()
    for i in range(steps):
        # minibatch construct
        ix = torch.randint(0, Xtr.shape[0], (BATCH,)) if batches is None else batches[i]
        # forward pass
        emb = C[Xtr[ix]]  # (32, 3, 10)
        h = torch.tanh(emb.view(-1, 30) @ W1 + b1)  # (32, 200)
        logits = h @ W2 + b2  # (32, 27)
        loss = F.cross_entropy(logits, Ytr[ix])
        # backward pass
        for p in parameters:
            p.grad = None
        loss.backward()
        # update
        lr = 0.1 if i < LR_DROP_STEP else 0.01
        for p in parameters:
            p.data += -lr * p.grad
        if losses is not None:
            losses.append(loss.item())
        if eval_every and (i + 1) % eval_every == 0:
            t1 = time.perf_counter()
            train_s += t1 - t0
            dev = evaluate()
            curve.append([i + 1, train_s, dev])
            t0 = time.perf_counter()
            eval_s += t0 - t1
            if stop_below is not None and dev <= stop_below:
                return {"steps": i + 1, "train_s": train_s, "eval_s": eval_s, "curve": curve}
    train_s += time.perf_counter() - t0
    return {"steps": steps, "train_s": train_s, "eval_s": eval_s, "curve": curve}


def train(steps: int, threads: int, path: str = "data/names.txt", eval_every: int = 0, stop_below: float | None = None) -> dict:
    """Read and split the words, build the datasets, train; returns timings (s), steps/s, the dev
    curve and the final whole-dev-split NLL (nats/char).

    setup_s is the in-process time before the loop (imports, data); in_process_s the whole
    in-process time, evaluations included (the parent adds the interpreter's start-up)."""
    t_process = time.perf_counter()
    import torch

    from makemore.data import read_words, split_words

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(42)  # the lecture's torch.randint minibatches come from the global generator: seeded, so a run repeats
    words = read_words(path)
    train_words, dev_words, _ = split_words(words, 42)
    stoi = lecture_vocab(words)
    Xtr, Ytr = build_dataset(train_words, stoi, 3)
    Xdev, Ydev = build_dataset(dev_words, stoi, 3)
    parameters = lecture_parameters()
    setup_s = time.perf_counter() - t_process
    out = train_loop(parameters, Xtr, Ytr, steps, eval_every=eval_every, evaluate=lambda: dev_loss(parameters, Xdev, Ydev),
                     stop_below=stop_below)
    dev = out["curve"][-1][2] if out["curve"] and out["curve"][-1][0] == out["steps"] else dev_loss(parameters, Xdev, Ydev)
    return {**out, "threads": torch.get_num_threads(), "steps_per_s": out["steps"] / out["train_s"], "dev_loss": dev,
            "setup_s": setup_s, "in_process_s": time.perf_counter() - t_process}


def one_at_a_time(model, vocab, block_size: int, count: int, g) -> list[str]:
    """The lecture's sampling cell: one name at a time, one character per forward pass of one context."""
    import torch
    import torch.nn.functional as F

    out_names = []
    with torch.no_grad():
        for _ in range(count):
            out, context = [], [0] * block_size
            while True:
                logits, _ = model(torch.tensor([context]))  # (1, vocab_size)
                probs = F.softmax(logits, dim=1)
                ix = torch.multinomial(probs, num_samples=1, generator=g).item()
                context = context[1:] + [ix]
                if ix == 0:
                    break
                out.append(ix)
            out_names.append(vocab.decode(out))
    return out_names


def sample_timed(run_dir: str, n: int, threads: int, seed: int = 2147483647, repeats: int = 3) -> dict:
    """One-at-a-time sampling of a trained run on `threads` torch threads: after a 20-name warm-up,
    `repeats` timings of n names; names/s of the fastest (the cores may be shared)."""
    import torch

    from makemore.runs import load_run

    if threads:
        torch.set_num_threads(threads)
    run = load_run(run_dir)
    g = torch.Generator().manual_seed(seed)
    one_at_a_time(run.model, run.vocab, run.config.data.block_size, 20, g)  # warm-up, as for the batched sampler
    times, drawn = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        drawn += one_at_a_time(run.model, run.vocab, run.config.data.block_size, n, g)
        times.append(time.perf_counter() - t0)
    return {"n": n, "threads": torch.get_num_threads(), "seconds": min(times), "all_seconds": times,
            "names_per_s": n / min(times), "mean_len": sum(map(len, drawn)) / len(drawn)}


def names(run_dir: str, n: int, threads: int, seed: int = 2147483647) -> list[str]:
    """n names of a trained run, one at a time (the whole-process counterpart of `makemore sample -n N --json`)."""
    import torch

    from makemore.runs import load_run

    if threads:
        torch.set_num_threads(threads)
    run = load_run(run_dir)
    return one_at_a_time(run.model, run.vocab, run.config.data.block_size, n, torch.Generator().manual_seed(seed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="the lecture's training loop")
    t.add_argument("--steps", type=int, default=200_000)
    t.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    t.add_argument("--data", default="data/names.txt")
    t.add_argument("--eval-every", type=int, default=0, help="evaluate the dev split every N steps, off the clock (0: never)")
    t.add_argument("--stop-below", type=float, default=None, help="stop at the first evaluation with dev NLL at most this")
    for name, help_ in (("sample", "one-at-a-time sampling of a trained run, timed"), ("names", "print n one-at-a-time names as JSON")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--run", required=True)
        s.add_argument("--n", type=int, default=500)
        s.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.command == "train":
        result = train(args.steps, args.threads, args.data, args.eval_every, args.stop_below)
    elif args.command == "sample":
        result = sample_timed(args.run, args.n, args.threads)
    else:
        result = names(args.run, args.n, args.threads)
    json.dump(result, sys.stdout, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
