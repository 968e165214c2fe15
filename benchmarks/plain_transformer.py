"""The plain Transformer reference: a training loop written the way the peer's makemore.py trains
its default model, for benchmarks/transformer.py to race against `makemore train --config
configs/transformer.toml`.

karpathy/makemore's makemore.py trains a GPT-2-style decoder: its own multi-head attention (a
causal mask registered as a buffer, softmax(q·kᵀ/√d) with −∞ above the diagonal), nn.Linear,
nn.Embedding and nn.LayerNorm layers at torch's default initialisation, a GELU written out with
tanh, no bias on the output layer, no dropout. Every word is padded to the longest word of the
file + 1 (inputs with 0, targets with −1 after the end token) by a torch Dataset, and an endless
torch DataLoader draws minibatches of 32 from it with replacement. The optimizer is AdamW with lr
5e-4, betas (0.9, 0.99), eps 1e-8 and weight decay 0.01 on every parameter, at a constant rate;
each step reads its loss with `.item()` (makemore.py prints it every 10 steps). Its default size:
4 layers, 4 heads, n_embd 64 (MLP 4·n_embd). This module is that loop, written anew.

Differences, each stated so the comparison stays fair to the reference:

- The data comes from makemore's reader and 80/10/10 split (makemore.data.split_words, seed 42),
  so both sides train on the same words and are judged on the same dev split; makemore.py's own
  split keeps 1,000 test words. Its vocabulary is makemore.py's: the sorted characters from 1, 0
  for the start/end token.
- The DataLoader runs in the training process (num_workers 0): makemore.py's default of 4 worker
  processes would compete with the training threads on a small machine, and the benchmark pins
  both sides to the same thread count.
- Its periodic evaluation (10 batches every 500 steps) and samples (every 200 steps) are left out
  of the loop; instead, `--eval-every N` evaluates the whole dev split every N steps with the
  training clock stopped: the mean NLL in nats per character over every target (what makemore
  reports), not makemore.py's mean over batches.

    python -m benchmarks.plain_transformer --steps 5000 --threads 1     # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

#: makemore.py's defaults: model size, minibatch, AdamW settings, seed.
N_LAYER, N_HEAD, N_EMBD = 4, 4, 64
BATCH = 32
LR, BETAS, EPS, WEIGHT_DECAY = 5e-4, (0.9, 0.99), 1e-8, 0.01
SEED = 3407
#: makemore.py prints the loss every this many steps.
PRINT_EVERY = 10


class PaddedWords(Dataset):
    """Words as fixed-length (x, y) pairs, makemore.py's layout: x = 0, the word, 0-padding;
    y = the word, 0 (the end token), −1 padding (no loss). Both int64 (max_len + 1,)."""

    def __init__(self, words: list[str], stoi: dict[str, int], max_len: int):
        self.words, self.stoi, self.max_len = words, stoi, max_len

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.tensor([self.stoi[c] for c in self.words[i]], dtype=torch.long)  # (L,)
        x = torch.zeros(self.max_len + 1, dtype=torch.long)  # (max_len + 1,)
        y = torch.full((self.max_len + 1,), -1, dtype=torch.long)  # (max_len + 1,)
        x[1 : 1 + len(ids)] = ids
        y[: len(ids)] = ids
        y[len(ids)] = 0
        return x, y


class Gelu(nn.Module):
    """GELU, tanh approximation, written out (Hendrycks & Gimpel 2016)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention with an explicit causal mask (a lower-triangular buffer)."""

    def __init__(self, n_embd: int, n_head: int, block_size: int):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.register_buffer("mask", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, E = x.shape
        q, k, v = self.qkv(x).split(E, dim=2)  # (B, T, E) each
        q, k, v = (a.view(B, T, self.n_head, E // self.n_head).transpose(1, 2) for a in (q, k, v))  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])  # (B, nh, T, T)
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf")).softmax(dim=-1)  # (B, nh, T, T)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, E)  # (B, T, E): heads side by side
        return self.proj(y)


class Block(nn.Module):
    """x + attention(LN(x)), then + MLP(LN(x)) with a 4·n_embd hidden layer."""

    def __init__(self, n_embd: int, n_head: int, block_size: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = MaskedSelfAttention(n_embd, n_head, block_size)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), Gelu(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class PlainTransformer(nn.Module):
    """Token and position embeddings, n_layer blocks, a final LayerNorm, a bias-free output layer."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int = N_LAYER, n_head: int = N_HEAD, n_embd: int = N_EMBD):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, block_size) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))[None]  # (B, T, E)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))  # (B, T, vocab_size)
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1)
        return logits, loss


def endless(loader: DataLoader):
    """Minibatches from `loader` for ever (makemore.py's InfiniteDataLoader)."""
    while True:
        yield from loader


@torch.no_grad()
def split_nll(model: nn.Module, data: PaddedWords, batch: int = 500) -> float:
    """Mean NLL in nats per character over every target of `data` (evaluation mode)."""
    model.eval()
    total, count = 0.0, 0
    for X, Y in DataLoader(data, batch_size=batch):
        logits, _ = model(X)
        total += F.cross_entropy(logits.view(-1, logits.shape[-1]), Y.view(-1), ignore_index=-1, reduction="sum").item()
        count += int((Y != -1).sum())
    model.train()
    return total / count


def setup(path: str = "data/names.txt") -> tuple[PaddedWords, PaddedWords, int]:
    """(train, dev, vocab_size): makemore's split of the words, padded as makemore.py pads them."""
    from makemore.data import read_words, split_words

    words = read_words(path)
    train_words, dev_words, _ = split_words(words, 42)
    stoi = {c: i + 1 for i, c in enumerate(sorted(set("".join(words))))}
    max_len = max(map(len, words))
    return PaddedWords(train_words, stoi, max_len), PaddedWords(dev_words, stoi, max_len), len(stoi) + 1


def train(steps: int, threads: int, path: str = "data/names.txt", eval_every: int = 0, batch: int = BATCH,
          quiet: bool = False, time_s: float = 0.0) -> dict:
    """Train makemore.py's default Transformer for `steps` steps, or until `time_s` seconds of
    training (0: no limit); timings in seconds, the dev curve [[step, training s, dev NLL], ...]
    (evaluations off the clock) and the final dev NLL (nats/char)."""
    t_process = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    train_data, dev_data, vocab_size = setup(path)
    model = PlainTransformer(vocab_size, train_data.max_len + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)
    sampler = RandomSampler(train_data, replacement=True, num_samples=10**10)
    batches = endless(DataLoader(train_data, sampler=sampler, batch_size=batch, num_workers=0))
    setup_s = time.perf_counter() - t_process
    losses, curve, train_s, eval_s = [], [], 0.0, 0.0
    t0 = time.perf_counter()
    for step in range(steps):
        X, Y = next(batches)
        _, loss = model(X, Y)
        model.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # the per-step log
        if not quiet and step % PRINT_EVERY == 0:
            print(f"step {step} | loss {losses[-1]:.4f}", file=sys.stderr)
        out_of_time = bool(time_s) and train_s + time.perf_counter() - t0 >= time_s
        if (eval_every and (step + 1) % eval_every == 0) or out_of_time:
            t1 = time.perf_counter()
            train_s += t1 - t0
            curve.append([step + 1, train_s, split_nll(model, dev_data)])
            t0 = time.perf_counter()
            eval_s += t0 - t1
        if out_of_time:
            break
    steps = step + 1
    train_s += time.perf_counter() - t0
    dev = curve[-1][2] if curve and curve[-1][0] == steps else split_nll(model, dev_data)
    return {"steps": steps, "batch_size": batch, "train_s": train_s, "eval_s": eval_s, "steps_per_s": steps / train_s,
            "dev_loss": dev, "curve": curve, "final_train_minibatch_loss": sum(losses[-100:]) / len(losses[-100:]),
            "params": sum(p.numel() for p in model.parameters()), "threads": torch.get_num_threads(),
            "setup_s": setup_s, "in_process_s": time.perf_counter() - t_process}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--data", default="data/names.txt")
    parser.add_argument("--eval-every", type=int, default=0, help="evaluate the dev split every N steps, off the clock (0: at the end)")
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--time-s", type=float, default=0.0, help="stop after this many seconds of training (0: after --steps)")
    parser.add_argument("--quiet", action="store_true", help="no loss lines on stderr")
    args = parser.parse_args(argv)
    json.dump(train(args.steps, args.threads, args.data, args.eval_every, args.batch_size, args.quiet, args.time_s), sys.stdout)
    print()


if __name__ == "__main__":
    main()
