"""Autoregressive sampling: start from an all-boundary context, draw the next character from the
model's softmax, slide the context, stop at the boundary token (lecture part 2, last cell).

All samples of a batch advance together, one character per model call, so sampling 10 000
names costs about as many model calls as the longest name has characters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from makemore.data import Vocab
from makemore.errors import MakemoreError

#: Samples advanced together in one model call.
SAMPLE_BATCH = 8192


def check_sampling_options(n: int, temperature: float, top_k: int | None, vocab_size: int, max_len: int) -> None:
    """Raises MakemoreError for n < 1, temperature ≤ 0 or non-finite, top_k outside 1..vocab_size, max_len < 1."""
    if n < 1:
        raise MakemoreError(f"-n must be at least 1, got {n}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise MakemoreError(f"--temperature must be a finite number > 0, got {temperature}")
    if top_k is not None and not 1 <= top_k <= vocab_size:
        raise MakemoreError(f"--top-k must be between 1 and the vocabulary size {vocab_size}, got {top_k}")
    if max_len < 1:
        raise MakemoreError(f"--max-len must be at least 1, got {max_len}")


@torch.inference_mode()
def sample(
    model: torch.nn.Module,
    vocab: Vocab,
    n: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    max_len: int = 64,
    batch: int = SAMPLE_BATCH,
) -> list[tuple[str, bool]]:
    """Draw `n` words from `model`.

    Args:
        model: maps contexts int64 (b, block_size) to (logits (b, vocab_size), None); eval mode.
        vocab: the run's vocabulary (id 0 = boundary).
        n: how many words.
        generator: seeded torch.Generator: the same seed gives the same words.
        temperature: logits are divided by it before the softmax (< 1 sharper, > 1 flatter).
        top_k: if set, only the k most likely characters may be drawn at each position.
        max_len: length cap, so sampling always ends.

    Returns:
        n pairs (word, finished): finished is False for a word cut at max_len.

    Raises:
        MakemoreError: an option out of range (see check_sampling_options).
    """
    check_sampling_options(n, temperature, top_k, vocab.vocab_size, max_len)
    block_size = model.block_size
    out: list[tuple[str, bool]] = []
    for first in range(0, n, batch):
        b = min(batch, n - first)
        context = torch.zeros(b, block_size, dtype=torch.long)  # (b, block_size) all boundary
        tokens = torch.zeros(b, max_len, dtype=torch.long)  # (b, max_len)
        length = torch.full((b,), max_len, dtype=torch.long)  # (b,) characters before the boundary
        alive = torch.ones(b, dtype=torch.bool)  # (b,)
        for t in range(max_len):
            logits, _ = model(context)  # (b, vocab_size)
            logits = logits / temperature  # (b, vocab_size)
            if top_k is not None:
                kth = torch.topk(logits, top_k, dim=1).values[:, -1:]  # (b, 1)
                logits = logits.masked_fill(logits < kth, float("-inf"))  # (b, vocab_size)
            probs = F.softmax(logits, dim=1)  # (b, vocab_size)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (b,)
            tokens[:, t] = nxt
            ended = alive & (nxt == 0)  # (b,)
            length[ended] = t
            alive &= ~ended
            if not alive.any():
                break
            context = torch.cat([context[:, 1:], nxt[:, None]], dim=1)  # (b, block_size) slide by one
        for row, L in zip(tokens.tolist(), length.tolist()):
            out.append((vocab.decode(row[:L]), L < max_len))
    return out
