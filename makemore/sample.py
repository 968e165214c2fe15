"""Autoregressive sampling: start from an all-boundary context, draw the next character from the
model's softmax, slide the context, stop at the boundary token (lecture part 2, last cell).

All samples of a batch advance together, one character per model call, so sampling 10 000
names costs about as many model calls as the longest name has characters; a finished sample
leaves the batch, so later calls only run the samples still being written. Each character is
drawn by inverse-CDF sampling (one uniform number per sample, `draw`), and the work runs on one
CPU thread: the model is small, and on 2 shared cores a second thread made 10 000 names 25×
slower (5.3 s against 0.21 s; benchmarks/run.py measures sampling, see BENCHMARKS.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from makemore.data import Vocab
from makemore.errors import MakemoreError

#: Samples advanced together in one model call.
SAMPLE_BATCH = 16384


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
    view: str = "windows",
) -> list[tuple[str, bool]]:
    """Draw `n` words from `model`.

    Args:
        model: a makemore model in eval mode with a `block_size` attribute: for a window model the
            context it reads, for a sequence model the longest input it takes.
        vocab: the run's vocabulary (id 0 = boundary).
        n: how many words.
        generator: seeded torch.Generator: the same seed gives the same words.
        temperature: logits are divided by it before the softmax (< 1 sharper, > 1 flatter).
        top_k: if set, only the k most likely characters may be drawn at each position.
        max_len: length cap, so sampling always ends.
        batch: samples advanced together (bounds memory: a batch's logits are (batch, vocab_size)).
        view: the family's data view (makemore.models.Family.view): "windows" feeds the model the
            last block_size characters (boundary-padded), a sequence view the boundary and every
            character so far.

    Returns:
        n pairs (word, finished): finished is False for a word cut at max_len.

    Raises:
        MakemoreError: an option out of range (see check_sampling_options).
    """
    check_sampling_options(n, temperature, top_k, vocab.vocab_size, max_len)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pad = model.block_size if view == "windows" else 1
        out: list[tuple[str, bool]] = []
        for first in range(0, n, batch):
            out.extend(_sample_batch(model, vocab, min(batch, n - first), generator, temperature, top_k, max_len, pad))
        return out
    finally:
        torch.set_num_threads(threads)


def _sample_batch(model: torch.nn.Module, vocab: Vocab, b: int, generator: torch.Generator, temperature: float,
                  top_k: int | None, max_len: int, pad: int) -> list[tuple[str, bool]]:
    """One batch of b samples, all advancing together. `seq` holds `pad` boundary tokens and then each
    sample's characters; the model reads at most block_size tokens ending where the next one goes."""
    block_size = model.block_size
    seq = torch.zeros(b, pad + max_len, dtype=torch.long)  # (b, pad + max_len) boundary padding, then characters
    length = torch.full((b,), max_len, dtype=torch.long)  # (b,) characters before the boundary
    rows = torch.arange(b)  # (a,) the samples still being written: only these are run through the model
    for t in range(max_len):
        context = seq[rows, max(0, pad + t - block_size) : pad + t]  # (a, ≤ block_size)
        logits, _ = model(context)  # (a, vocab_size), or (a, T, vocab_size) from a sequence model
        if logits.dim() == 3:
            logits = logits[:, -1]  # (a, vocab_size): the prediction after the last token
        nxt = draw(logits, temperature, top_k, generator)  # (a,)
        seq[rows, pad + t] = nxt
        ended = nxt == 0  # (a,)
        length[rows[ended]] = t
        rows = rows[~ended]
        if len(rows) == 0:
            break
    return decode_rows(seq[:, pad:], length, vocab, max_len)


def decode_rows(tokens: torch.Tensor, length: torch.Tensor, vocab: Vocab, max_len: int) -> list[tuple[str, bool]]:
    """Rows of ids (b, max_len) → (word of its first length[i] characters, length[i] < max_len).

    All rows are decoded as one UTF-32 string (every id mapped to its character's code point),
    then cut into words: one Python slice per word instead of one lookup per character.
    """
    code_points = torch.tensor([ord(c) for c in vocab.itos], dtype=torch.int32)  # (vocab_size,)
    text = code_points[tokens].numpy().tobytes().decode("utf-32-le")  # b·max_len characters
    return [(text[i * max_len : i * max_len + L], L < max_len) for i, L in enumerate(length.tolist())]


def draw(logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator) -> torch.Tensor:
    """One next character per row of logits (a, vocab_size), from softmax(logits / temperature),
    restricted to the top_k most likely if set. Returns int64 (a,).

    Inverse-CDF sampling: one uniform u per row, and the first character whose cumulative
    probability exceeds u. Exactly torch.multinomial's distribution, with one random number per row
    instead of one per character (multinomial draws vocab_size exponentials per row).
    """
    logits = logits / temperature  # (a, vocab_size)
    if top_k is not None:
        kth = torch.topk(logits, top_k, dim=1).values[:, -1:]  # (a, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))  # (a, vocab_size)
    cdf = F.softmax(logits, dim=1).cumsum_(dim=1)  # (a, vocab_size), last column ~1
    u = torch.rand(len(cdf), 1, generator=generator, dtype=cdf.dtype) * cdf[:, -1:]  # (a, 1) uniform below the total
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=cdf.shape[1] - 1)  # (a,)
