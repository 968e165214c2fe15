"""The plain references the benchmark compares makemore against: the lecture's code, as written.

"Building makemore Part 2: MLP" (A. Karpathy, 2022) builds the dataset with Python loops, trains
with autograd and `p.data += -lr * p.grad` on minibatches of 32 for 200 000 steps (lr 0.1, then
0.01 from step 100 000), evaluates with one forward pass, and samples one name at a time. This
module is that code, made runnable, with one change that only helps it: the weights start with
part 3's scaled initialisation (makemore's default, init = "kaiming") instead of plain randn,
so both start alike and the reference reaches a better dev loss (~2.10 instead of ~2.17) in the
same time. It runs on one torch thread by default: on 2 shared cores that is its faster setting.

    python -m benchmarks.plain train --steps 200000 --threads 1   # prints one JSON line
    python -m benchmarks.plain sample --n 500 --run RUN_DIR       # one-at-a-time sampling of a run

It uses makemore only to read and split the words (so both train on the same 80/10/10 split) and,
for `sample`, to load a trained run's weights; everything measured is the lecture's own loop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


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


def train(steps: int, threads: int, path: str = "data/names.txt") -> dict:
    """The lecture's training loop; returns timings (s), steps/s and the whole-dev-split NLL (nats/char)."""
    t_process = time.perf_counter()
    import torch
    import torch.nn.functional as F

    from makemore.data import read_words, split_words

    if threads:
        torch.set_num_threads(threads)
    words = read_words(path)
    train_words, dev_words, _ = split_words(words, 42)
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    Xtr, Ytr = build_dataset(train_words, stoi, 3)
    Xdev, Ydev = build_dataset(dev_words, stoi, 3)

    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, 10), generator=g)
    W1 = torch.randn((30, 200), generator=g) * (5 / 3) / 30**0.5  # the part-3 init, as makemore's default
    b1 = torch.randn(200, generator=g) * 0.01
    W2 = torch.randn((200, 27), generator=g) * 0.01
    b2 = torch.randn(27, generator=g) * 0
    parameters = [C, W1, b1, W2, b2]
    for p in parameters:
        p.requires_grad = True

    t0 = time.perf_counter()
    for i in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (32,))
        emb = C[Xtr[ix]]  # (32, 3, 10)
        h = torch.tanh(emb.view(-1, 30) @ W1 + b1)  # (32, 200)
        logits = h @ W2 + b2  # (32, 27)
        loss = F.cross_entropy(logits, Ytr[ix])
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < 100000 else 0.01
        for p in parameters:
            p.data += -lr * p.grad
    train_s = time.perf_counter() - t0

    with torch.no_grad():
        emb = C[Xdev]  # (N, 3, 10)
        h = torch.tanh(emb.view(-1, 30) @ W1 + b1)  # (N, 200)
        dev = F.cross_entropy(h @ W2 + b2, Ydev).item()
    return {"steps": steps, "threads": torch.get_num_threads(), "train_s": train_s, "steps_per_s": steps / train_s,
            "dev_loss": dev, "in_process_s": time.perf_counter() - t_process}


def sample_one_at_a_time(run_dir: str, n: int, seed: int = 2147483647, repeats: int = 3) -> dict:
    """The lecture's sampling cell: one name at a time, one character per forward pass of one context.
    After a 20-name warm-up, `repeats` timings of n names; names/s of the fastest (the cores may be shared)."""
    import torch
    import torch.nn.functional as F

    from makemore.runs import load_run

    run = load_run(run_dir)
    model, block_size = run.model, run.config.data.block_size
    g = torch.Generator().manual_seed(seed)

    def names(count: int) -> list[str]:
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
                out_names.append(run.vocab.decode(out))
        return out_names

    names(20)  # warm-up, as for the batched sampler
    times, drawn = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        drawn += names(n)
        times.append(time.perf_counter() - t0)
    return {"n": n, "seconds": min(times), "all_seconds": times, "names_per_s": n / min(times),
            "mean_len": sum(map(len, drawn)) / len(drawn)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="the lecture's training loop")
    t.add_argument("--steps", type=int, default=200_000)
    t.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    t.add_argument("--data", default="data/names.txt")
    s = sub.add_parser("sample", help="one-at-a-time sampling of a trained run")
    s.add_argument("--run", required=True)
    s.add_argument("--n", type=int, default=500)
    args = parser.parse_args(argv)
    result = train(args.steps, args.threads, args.data) if args.command == "train" else sample_one_at_a_time(args.run, args.n)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
