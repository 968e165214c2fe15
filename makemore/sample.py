"""Autoregressive sampling: start from an all-boundary context, draw the next character from the
model's softmax, slide the context, stop at the boundary token (lecture part 2, last cell).

All samples of a batch advance together, one character per model call, so sampling 10 000
names costs about as many model calls as the longest name has characters; a finished sample
leaves the batch, so later calls only run the samples still being written. Each character is
drawn by inverse-CDF sampling (one uniform number per sample, `draw`), and the work runs on one
CPU thread: the model is small, and splitting its steps over threads costs more than it saves
(benchmarks/run.py measures sampling, see BENCHMARKS.md).

Two ways to sample:

- `sample`: plain sampling, n draws as they come; a sample still unfinished at `max_len`
  characters is cut there (the safety cap that makes sampling end).
- `sample_wanted`: selective sampling (the names a user asked for, docs/names.md): every sample
  starts with a prefix the model continues, and a draw that does not fit (too short, too long,
  in an excluded list, a repeat) is thrown away and redrawn, never cut, until n fit or the draw
  bound (DRAWS_PER_SAMPLE · n draws) is reached. Rejection keeps the model's distribution: the
  kept samples are distributed as the model's samples given that they fit.

A run trained on a labelled words file samples for one label (`label_probs` one-hot) or, without
one, draws each sample's label from the train split's label frequencies before its characters;
every model call then takes the samples' label ids.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from makemore.data import View, Vocab, Windows
from makemore.errors import MakemoreError
from makemore.runs import Run
from makemore.threads import scoped

#: Samples advanced together in one model call.
SAMPLE_BATCH = 16384

#: The draw bound of selective sampling: at most this many draws for each sample asked for.
DRAWS_PER_SAMPLE = 50

#: The fewest draws selective sampling makes at once: a model call costs about the same for 1 row as for a few hundred.
MIN_ROUND = 256


def check_sampling_options(n: int, temperature: float, top_k: int | None, vocab_size: int, max_len: int,
                           min_len: int = 0, prefix: str = "") -> None:
    """Raises MakemoreError for n < 1, temperature ≤ 0 or non-finite, top_k outside 1..vocab_size,
    max_len < 1, min_len < 0, min_len > max_len, or a prefix longer than max_len."""
    if n < 1:
        raise MakemoreError(f"-n must be at least 1, got {n}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise MakemoreError(f"--temperature must be a finite number > 0, got {temperature}")
    if top_k is not None and not 1 <= top_k <= vocab_size:
        raise MakemoreError(f"--top-k must be between 1 and the vocabulary size {vocab_size}, got {top_k}")
    if max_len < 1:
        raise MakemoreError(f"--max-len must be at least 1, got {max_len}")
    if min_len < 0:
        raise MakemoreError(f"--min-len must be at least 0, got {min_len}")
    if min_len > max_len:
        raise MakemoreError(f"--min-len {min_len} is above the longest length allowed, {max_len} (--max-len)")
    if len(prefix) > max_len:
        raise MakemoreError(f"--prefix {prefix!r} has {len(prefix)} characters, more than the longest length allowed, {max_len} (--max-len)")


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
    view: type[View] = Windows,
    labels: torch.Tensor | None = None,
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
        view: the family's data view type (makemore.models.Family.view): Windows feeds the model
            the last block_size characters (boundary-padded), Sequences the boundary and every
            character so far.
        labels: int64 (n,) the label id of each sample, for a conditional model (see `draw_labels`); None otherwise.

    Returns:
        n pairs (word, finished): finished is False for a word cut at max_len.

    Raises:
        MakemoreError: an option out of range (see check_sampling_options).
    """
    check_sampling_options(n, temperature, top_k, vocab.vocab_size, max_len)
    with scoped(1):  # one CPU thread (the module docstring), the counts restored after
        pad = view.start_padding(model.block_size)
        out: list[tuple[str, bool]] = []
        for first in range(0, n, batch):
            b = min(batch, n - first)
            label = None if labels is None else labels[first : first + b]  # (b,)
            out.extend(_sample_batch(model, vocab, b, generator, temperature, top_k, max_len, pad, label=label))
        return out


@dataclass(frozen=True)
class Wanted:
    """Which samples selective sampling keeps (`sample_wanted`); every other draw is redrawn."""

    prefix: str = ""
    """Every sample starts with it: the model continues from its characters."""
    min_len: int = 1
    """Fewest characters of a sample, prefix included (1: an empty sample is never kept)."""
    max_len: int = 64
    """Most characters of a sample, prefix included; a draw still unfinished beyond it is redrawn."""
    exclude: frozenset[str] = frozenset()
    """Words never kept (e.g. every word of the run's words file, for --new-only)."""
    unique: bool = False
    """Keep no word twice."""


#: Why a draw was thrown away, in the order `sample_wanted` checks.
TOO_LONG, TOO_SHORT, EXCLUDED, REPEATED = "too long", "too short", "in the words file", "repeated"


@dataclass
class Selection:
    """What `sample_wanted` found: the kept words in draw order, and what the other draws were."""

    words: list[str]
    """At most n words, each fitting the Wanted."""
    drawn: int
    """Draws examined: len(words) + sum(redrawn.values())."""
    redrawn: Counter = field(default_factory=Counter)
    """Reason (TOO_LONG, TOO_SHORT, EXCLUDED, REPEATED) → draws thrown away for it."""
    labels: list[int] = field(default_factory=list)
    """The label id of each kept word (a conditional model's), in order; empty otherwise."""


@torch.inference_mode()
def sample_wanted(
    model: torch.nn.Module,
    vocab: Vocab,
    n: int,
    generator: torch.Generator,
    wanted: Wanted,
    temperature: float = 1.0,
    top_k: int | None = None,
    batch: int = SAMPLE_BATCH,
    view: type[View] = Windows,
    draws_per_sample: int = DRAWS_PER_SAMPLE,
    label_probs: torch.Tensor | None = None,
) -> Selection:
    """Draw until `n` words fit `wanted` (rejection sampling), or until draws_per_sample · n draws.

    Draws are made in rounds, all samples of a round advancing together as in `sample`; a round
    draws enough for the words still missing at the share of draws kept so far (at least
    MIN_ROUND, at most `batch` and the draws left). A sample is written up to max_len + 1
    characters, so one that would be longer is recognised, stopped and redrawn; nothing is cut.
    Thrown away, in this order: unfinished beyond max_len (TOO_LONG), shorter than min_len
    (TOO_SHORT), in `wanted.exclude` (EXCLUDED), already kept with `wanted.unique` (REPEATED).
    The same generator state and arguments give the same words.

    Args:
        model, vocab, generator, temperature, top_k, batch, view: as for `sample`.
        n: how many words to find.
        wanted: the prefix and the conditions a kept word meets.
        draws_per_sample: the draw bound, per word asked for.
        label_probs: float (n_labels,) for a conditional model: each draw's label is drawn from it
            first (`draw_labels`; one-hot for one label); None otherwise.

    Returns:
        A Selection: fewer than n words only when the draw bound was reached.

    Raises:
        MakemoreError: an option out of range (see check_sampling_options), a max_len beyond what a
            sequence model reads whole (the view's `longest_readable`), or a prefix character
            that is not in the vocabulary (naming it).
    """
    check_sampling_options(n, temperature, top_k, vocab.vocab_size, wanted.max_len, wanted.min_len, wanted.prefix)
    limit = view.longest_readable(model.block_size)
    if limit is not None and wanted.max_len > limit:
        raise MakemoreError(f"--max-len {wanted.max_len}: this model reads words of at most {limit} characters "
                            "(a sequence model's context is its longest training word + 1)")
    try:
        prefix = vocab.encode_concat(wanted.prefix).tolist()  # the prefix's ids
    except MakemoreError as e:
        raise MakemoreError(f"--prefix {wanted.prefix!r}: {e}") from None
    out = Selection(words=[], drawn=0)
    kept: set[str] = set()
    max_draws = draws_per_sample * n
    with scoped(1):  # one CPU thread (the module docstring), the counts restored after
        pad = view.start_padding(model.block_size)
        while len(out.words) < n and out.drawn < max_draws:
            need = n - len(out.words)
            guess = need if not out.redrawn else math.ceil(1.25 * need * (out.drawn + 1) / (len(out.words) + 1))
            size = min(max(guess, MIN_ROUND), batch, max_draws - out.drawn)
            label = None if label_probs is None else draw_labels(label_probs, size, generator)  # (size,)
            batch_out = _sample_batch(model, vocab, size, generator, temperature, top_k, wanted.max_len + 1, pad, prefix, label)
            for i, (word, finished) in enumerate(batch_out):
                reason = (TOO_LONG if not finished else TOO_SHORT if len(word) < wanted.min_len
                          else EXCLUDED if word in wanted.exclude else REPEATED if wanted.unique and word in kept else None)
                out.drawn += 1
                if reason is not None:
                    out.redrawn[reason] += 1
                    continue
                out.words.append(word)
                if label is not None:
                    out.labels.append(int(label[i]))
                kept.add(word)
                if len(out.words) == n:
                    break
    return out


def draw_labels(probs: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """n label ids int64 (n,) drawn from probs (n_labels,) with `generator` (one-hot probs: that label every time)."""
    return torch.multinomial(probs.double(), n, replacement=True, generator=generator)  # (n,)


def _sample_batch(model: torch.nn.Module, vocab: Vocab, b: int, generator: torch.Generator, temperature: float,
                  top_k: int | None, max_len: int, pad: int, prefix: list[int] | None = None,
                  label: torch.Tensor | None = None) -> list[tuple[str, bool]]:
    """One batch of b samples, all advancing together. `seq` holds `pad` boundary tokens and then each
    sample's characters, starting with the `prefix` ids; the model reads at most block_size tokens
    ending where the next one goes (and, for a conditional model, each sample's label, label (b,))."""
    block_size = model.block_size
    start = len(prefix) if prefix else 0  # the first position drawn
    seq = torch.zeros(b, pad + max_len, dtype=torch.long)  # (b, pad + max_len) boundary padding, then characters
    if start:
        seq[:, pad : pad + start] = torch.tensor(prefix)  # (b, start) every sample begins with the prefix
    length = torch.full((b,), max_len, dtype=torch.long)  # (b,) characters before the boundary
    rows = torch.arange(b)  # (a,) the samples still being written: only these are run through the model
    for t in range(start, max_len):
        context = seq[rows, max(0, pad + t - block_size) : pad + t]  # (a, ≤ block_size)
        logits, _ = model(context) if label is None else model(context, label=label[rows])  # (a, vocab_size), or (a, T, vocab_size)
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


@dataclass
class Samples:
    """What `sample_words` returns: the words, and how they were found."""

    words: list[tuple[str, bool]]
    """(word, finished) pairs; finished is False for a plain sample cut at `cap` characters."""
    seed: int
    cap: int
    """Plain sampling's length cap: twice the longest training word, or what a sequence model reads."""
    selection: Selection | None = None
    """Selective sampling's draw counts (None for plain sampling)."""
    shortfall: str | None = None
    """Why fewer words than asked for were found (the draw bound was reached), or None."""
    labels: list[str] | None = None
    """A labelled run's: each word's label (the one asked for, or the one drawn), in order; None otherwise."""


def label_probs(run: Run, label: str | None) -> torch.Tensor | None:
    """What a sample's label is drawn from: float64 (n_labels,), one-hot on `label`, or the train
    split's label frequencies when it is None; None for an unlabelled run.

    Raises:
        MakemoreError: a label for a run trained without labels; a label the run does not have (listing its labels).
    """
    if run.labels is None:
        if label is not None:
            raise MakemoreError(f"--label {label}: this run was trained without labels (its words file has no word<TAB>label lines)")
        return None
    if label is None:
        return torch.from_numpy(run.label_prior)  # (n_labels,)
    if label not in run.labels:
        raise MakemoreError(f"--label {label!r} is not a label of this run: its labels are {', '.join(run.labels)}")
    return torch.nn.functional.one_hot(torch.tensor(run.labels.index(label)), len(run.labels)).double()  # (n_labels,)


def sample_words(run: Run, n: int, seed: int, *, temperature: float = 1.0, top_k: int | None = None, prefix: str = "",
                 new_only: bool = False, unique: bool = False, min_len: int | None = None, max_len: int | None = None,
                 label: str | None = None) -> Samples:
    """`makemore sample` on a loaded run: plain sampling, or selective sampling when any of prefix,
    new_only, unique, min_len, max_len is given (see `sample` and `sample_wanted`). A labelled run
    samples for `label`, or draws each sample's label from the train split's frequencies.

    Raises:
        MakemoreError: an option out of range; --new-only without the run's words file; a label
            for an unlabelled run, or one the run does not have.
    """
    check_sampling_options(n, temperature, top_k, 10**9, 10**9 if max_len is None else max_len,
                           min_len or 0, prefix if max_len is not None else "")
    probs = label_probs(run, label)
    generator = torch.Generator().manual_seed(seed)
    kind = run.family.view
    limit = kind.longest_readable(run.model.block_size)  # a sequence model reads at most its longest training word
    cap = 2 * int(run.checkpoint.get("max_word_len", 32)) if limit is None else limit  # plain sampling's safety cap
    if not (prefix or new_only or unique or min_len is not None or max_len is not None):
        ids = None if probs is None else draw_labels(probs, n, generator)  # (n,)
        words = sample(run.model, run.vocab, n, generator, temperature, top_k, cap, view=kind, labels=ids)
        return Samples(words, seed, cap, labels=None if ids is None else [run.labels[i] for i in ids.tolist()])
    try:
        exclude = frozenset(run.dataset.words) if new_only else frozenset()
    except MakemoreError as e:
        raise MakemoreError(f"--new-only needs the run's words file: {e}") from None
    if max_len is None:  # the default bound: the safety cap after the prefix, within what the model reads whole
        max_len = len(prefix) + cap if limit is None else limit
    wanted = Wanted(prefix, 1 if min_len is None else min_len, max_len, exclude, unique)
    selection = sample_wanted(run.model, run.vocab, n, generator, wanted, temperature, top_k, view=kind, label_probs=probs)
    shortfall = None
    if len(selection.words) < n:
        why = ", ".join(f"{count:,} {reason}" for reason, count in selection.redrawn.most_common())
        shortfall = (f"found only {len(selection.words)} of {n} samples within the draw bound ({DRAWS_PER_SAMPLE} draws per sample, "
                     f"{selection.drawn:,} drawn): {why}; seed {seed}")
    labels = None if probs is None else [run.labels[i] for i in selection.labels]
    return Samples([(word, True) for word in selection.words], seed, cap, selection, shortfall, labels)
