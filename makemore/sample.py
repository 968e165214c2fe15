"""Autoregressive sampling: start from an all-boundary context, draw the next character from the
model's softmax, slide the context, stop at the boundary token (lecture part 2, last cell).

All samples of a batch advance together, one character per model call, so sampling 10 000
names costs about as many model calls as the longest name has characters; a finished sample
leaves the batch, so later calls only run the samples still being written. A sequence model
reads each sample once, one character per call, carrying its state from one character to the
next (a Transformer's key/value cache, a recurrent model's state, a bag of words' running sum:
each family's `step`, used by NextLogits); a window model reads its last block_size characters at
each call. Each character is drawn by inverse-CDF sampling (one uniform number per sample,
`draw`), and the work runs on one CPU thread: the model is small, and splitting its steps over
threads costs more than it saves (benchmarks/run.py measures sampling, see BENCHMARKS.md;
benchmarks/sampling.py times a Transformer with its steps and without).

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
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from makemore.constraints import Automaton, Constraints, Guide, compile_constraints
from makemore.data import View, Vocab, Windows
from makemore.errors import MakemoreError
from makemore.runs import Run
from makemore.threads import scoped

#: Set this environment variable (to anything non-empty) to sample a sequence model by re-reading
#: every sample's whole prefix at each character, as before incremental steps: for
#: benchmarks/sampling.py's comparison; the samples are the same (see NextLogits).
REREAD_ENV = "MAKEMORE_SAMPLE_REREAD"

#: Samples advanced together in one model call.
SAMPLE_BATCH = 16384

#: The draw bound of selective sampling: at most this many draws for each sample asked for.
DRAWS_PER_SAMPLE = 50

#: The fewest draws selective sampling makes at once: a model call costs about the same for 1 row as for a few hundred.
MIN_ROUND = 256


def check_sampling_options(n: int, temperature: float, top_k: int | None, vocab_size: int, max_len: int,
                           min_len: int = 0, prefix: str = "", top_p: float | None = None) -> None:
    """Raises MakemoreError for n < 1, temperature ≤ 0 or non-finite, top_k outside 1..vocab_size,
    top_p outside (0, 1], max_len < 1, min_len < 0, min_len > max_len, or a prefix longer than max_len."""
    if n < 1:
        raise MakemoreError(f"-n must be at least 1, got {n}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise MakemoreError(f"--temperature must be a finite number > 0, got {temperature}")
    if top_k is not None and not 1 <= top_k <= vocab_size:
        raise MakemoreError(f"--top-k must be between 1 and the vocabulary size {vocab_size}, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise MakemoreError(f"--top-p must be above 0 and at most 1, got {top_p}")
    if max_len < 1:
        raise MakemoreError(f"--max-len must be at least 1, got {max_len}")
    if min_len < 0:
        raise MakemoreError(f"--min-len must be at least 0, got {min_len}")
    if min_len > max_len:
        raise MakemoreError(f"--min-len {min_len} is above the longest length allowed, {max_len} (--max-len)")
    if len(prefix) > max_len:
        raise MakemoreError(f"--prefix {prefix!r} has {len(prefix)} characters, more than the longest length allowed, {max_len} (--max-len)")


class Uniforms:
    """Uniform numbers in [0, 1), float32, exactly as torch.rand(k, generator=g) draws them for
    g = torch.Generator().manual_seed(seed), from NumPy alone: both use the Mersenne Twister
    (Matsumoto & Nishimura 1998) seeded by the same init_genrand, and torch makes a float32 from
    the low 24 bits of each 32-bit draw. So a seed gives the same samples with or without torch
    (tests/test_numpy_answers.py checks the two streams agree).

    Args:
        seed: any int (torch keeps its low 32 bits for the CPU generator, as this does).
    """

    def __init__(self, seed: int):
        key, pos = np.random.RandomState(seed & 0xFFFFFFFF).get_state()[1:3]
        self.bits = np.random.MT19937()
        self.bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}

    def __call__(self, k: int) -> np.ndarray:
        """float32 (k,) uniforms in [0, 1)."""
        raw = self.bits.random_raw(k)  # (k,) 32-bit draws
        return (raw & 0xFFFFFF).astype(np.float32) * np.float32(2.0**-24)  # (k,)


def uniforms(generator: Any) -> Any:
    """A callable k → float32 (k,) uniforms from `generator`: an int seed (`Uniforms`), a
    `Uniforms`, or a seeded torch.Generator (its own torch.rand draws)."""
    if isinstance(generator, int):
        return Uniforms(generator)
    if not hasattr(generator, "manual_seed"):  # a Uniforms, or any k → uniforms callable
        return generator

    def torch_rand(k: int) -> np.ndarray:
        import torch

        return torch.rand(k, generator=generator, dtype=torch.float32).numpy()  # (k,)

    return torch_rand


def sample(
    model: Any,
    vocab: Vocab,
    n: int,
    generator: Any,
    temperature: float = 1.0,
    top_k: int | None = None,
    max_len: int = 64,
    batch: int = SAMPLE_BATCH,
    view: type[View] = Windows,
    top_p: float | None = None,
    labels: np.ndarray | None = None,
) -> list[tuple[str, bool]]:
    """Draw `n` words from `model`.

    Args:
        model: a makemore model in eval mode with a `block_size` attribute: for a window model the
            context it reads, for a sequence model the longest input it takes.
        vocab: the run's vocabulary (id 0 = boundary).
        n: how many words.
        generator: an int seed, or a seeded torch.Generator (see `uniforms`): the same seed gives
            the same words, with either.
        temperature: logits are divided by it before the softmax (< 1 sharper, > 1 flatter).
        top_k: if set, only the k most likely characters may be drawn at each position.
        max_len: length cap, so sampling always ends.
        batch: samples advanced together (bounds memory: a batch's logits are (batch, vocab_size)).
        view: the family's data view type (makemore.models.Family.view): Windows feeds the model
            the last block_size characters (boundary-padded), Sequences the boundary and every
            character so far.
        top_p: if set, nucleus sampling: only the smallest set of most likely characters whose
            probabilities sum to at least top_p may be drawn (see `draw`).
        labels: int64 (n,) the label id of each sample, for a conditional model (see `draw_labels`); None otherwise.

    Returns:
        n pairs (word, finished): finished is False for a word cut at max_len.

    Raises:
        MakemoreError: an option out of range (see check_sampling_options).
    """
    check_sampling_options(n, temperature, top_k, vocab.vocab_size, max_len, top_p=top_p)
    draws = uniforms(generator)
    with scoped(1):  # one CPU thread (the module docstring), the counts restored after
        pad = view.start_padding(model.block_size)
        out: list[tuple[str, bool]] = []
        for first in range(0, n, batch):
            b = min(batch, n - first)
            label = None if labels is None else labels[first : first + b]  # (b,)
            out.extend(_sample_batch(model, vocab, b, draws, temperature, top_k, max_len, pad, top_p=top_p, label=label))
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
    automaton: Automaton | None = None
    """--suffix, --contains, --match with the prefix and length bounds, compiled
    (makemore.constraints): when set, every draw is masked to fit them instead of redrawn."""


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


def sample_wanted(
    model: Any,
    vocab: Vocab,
    n: int,
    generator: Any,
    wanted: Wanted,
    temperature: float = 1.0,
    top_k: int | None = None,
    batch: int = SAMPLE_BATCH,
    view: type[View] = Windows,
    draws_per_sample: int = DRAWS_PER_SAMPLE,
    top_p: float | None = None,
    label_probs: np.ndarray | None = None,
) -> Selection:
    """Draw until `n` words fit `wanted` (rejection sampling), or until draws_per_sample · n draws.

    Draws are made in rounds, all samples of a round advancing together as in `sample`; a round
    draws enough for the words still missing at the share of draws kept so far (at least
    MIN_ROUND, at most `batch` and the draws left). A sample is written up to max_len + 1
    characters, so one that would be longer is recognised, stopped and redrawn; nothing is cut.
    Thrown away, in this order: unfinished beyond max_len (TOO_LONG), shorter than min_len
    (TOO_SHORT), in `wanted.exclude` (EXCLUDED), already kept with `wanted.unique` (REPEATED).
    With `wanted.automaton`, each draw is masked instead (makemore.constraints.Guide): every
    character that cannot end in a word meeting the constraints is given probability 0, so no
    draw is too long, too short or off the pattern; only EXCLUDED and REPEATED are redrawn.
    The same generator state and arguments give the same words.

    Args:
        model, vocab, generator, temperature, top_k, top_p, batch, view: as for `sample`.
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
    check_sampling_options(n, temperature, top_k, vocab.vocab_size, wanted.max_len, wanted.min_len, wanted.prefix, top_p)
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
    draws = uniforms(generator)
    with scoped(1):  # one CPU thread (the module docstring), the counts restored after
        pad = view.start_padding(model.block_size)
        while len(out.words) < n and out.drawn < max_draws:
            need = n - len(out.words)
            guess = need if not out.redrawn else math.ceil(1.25 * need * (out.drawn + 1) / (len(out.words) + 1))
            size = min(max(guess, MIN_ROUND), batch, max_draws - out.drawn)
            label = None if label_probs is None else draw_labels(label_probs, size, draws)  # (size,)
            batch_out = _sample_batch(model, vocab, size, draws, temperature, top_k, wanted.max_len + 1, pad, prefix,
                                      top_p=top_p, automaton=wanted.automaton, label=label)
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


def draw_labels(probs: np.ndarray, n: int, draws: Any) -> np.ndarray:
    """n label ids int64 (n,) drawn from probs float64 (n_labels,) by inverse CDF, one uniform of
    `draws` each (one-hot probs: that label every time)."""
    cdf = np.cumsum(probs)  # (n_labels,)
    u = uniforms(draws)(n).astype(np.float64) * cdf[-1]  # (n,)
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1).astype(np.int64)  # (n,)


def _sample_batch(model: Any, vocab: Vocab, b: int, draws: Any, temperature: float,
                  top_k: int | None, max_len: int, pad: int, prefix: list[int] | None = None, *,
                  top_p: float | None = None, automaton: Automaton | None = None, label: np.ndarray | None = None) -> list[tuple[str, bool]]:
    """One batch of b samples, all advancing together. `seq` holds `pad` boundary tokens and then each
    sample's characters, starting with the `prefix` ids; the model reads at most block_size tokens
    ending where the next one goes (see NextLogits), and for a conditional model each sample's
    label, label int64 (b,); `draws`: k → float32 (k,) uniforms. With an `automaton`, the logits
    are masked before each draw (makemore.constraints.Guide); without one, nothing else runs."""
    start = len(prefix) if prefix else 0  # the first position drawn
    seq = np.zeros((b, pad + max_len), dtype=np.int64)  # (b, pad + max_len) boundary padding, then characters
    if start:
        seq[:, pad : pad + start] = prefix  # (b, start) every sample begins with the prefix
    length = np.full(b, max_len, dtype=np.int64)  # (b,) characters before the boundary
    rows = np.arange(b)  # (a,) the samples still being written: only these are run through the model
    next_logits = NextLogits(model, seq, pad, label)
    guide = Guide(automaton, b, prefix or []) if automaton is not None else None
    for t in range(start, max_len):
        logits = next_logits(rows, t)  # (a, vocab_size)
        if guide is not None:
            logits = guide.mask(logits, rows, t)  # (a, vocab_size), −inf where no accepted word follows
        nxt = draw(logits, temperature, top_k, draws, top_p)  # (a,)
        if guide is not None:
            nxt = guide.advance(rows, nxt)
        seq[rows, pad + t] = nxt
        ended = nxt == 0  # (a,)
        length[rows[ended]] = t
        rows = rows[~ended]
        if len(rows) == 0:
            break
    return decode_rows(seq[:, pad:], length, vocab, max_len)


class NextLogits:
    """The logits for the next character of each sample still being written: `next_logits(rows, t)`
    → (a, vocab_size) for the rows `rows` (a,) of `seq` (b, pad + max_len), whose tokens before
    pad + t are written, with t one more at each call and rows the same or fewer.

    Two ways, the same logits up to float rounding (tests/test_cached_sampling.py):

    - incremental, for a model with `step(idx_t, state) -> (logits, state)` (the sequence models:
      a Transformer's key/value cache, a recurrent model's state, a bag of words' running sum):
      each sample's tokens are read once, one step per token, and the state is kept, its rows
      following the samples still being written; so a call computes one position per sample;
    - re-reading, for every other model (a window model), when the environment variable
      REREAD_ENV is set (the path before incremental steps, for benchmarks/sampling.py), or when
      a sample could outgrow block_size (the context is then cut to the last block_size tokens,
      which a step does not do): each call runs the model on the last block_size tokens.
    """

    def __init__(self, model: Any, seq: np.ndarray, pad: int, label: np.ndarray | None = None):
        self.model, self.seq, self.pad = model, seq, pad
        self.label = label  # int64 (b,) each row's label id (a conditional model), or None
        self.numpy = getattr(model, "numpy_inference", False)  # a NumPy-trained MLP's twin: no torch
        never_cut = seq.shape[1] - 1 <= model.block_size  # the longest context read: every token but the last
        self.incremental = callable(getattr(model, "step", None)) and never_cut and not os.environ.get(REREAD_ENV)
        self.state: object = None  # the model's step state for the rows self.rows, after the tokens before pad + t
        self.rows = np.arange(seq.shape[0])  # (a,) ascending, as `rows` always is

    def __call__(self, rows: np.ndarray, t: int) -> np.ndarray:
        if self.numpy:
            context = self.seq[rows, max(0, self.pad + t - self.model.block_size) : self.pad + t]  # (a, ≤ block_size)
            return self.model(context)[0]  # (a, vocab_size)
        import torch

        with torch.inference_mode():
            label = None if self.label is None else torch.from_numpy(self.label[rows])  # (a,)
            return self._torch_logits(torch, rows, t, label).float().numpy()  # (a, vocab_size)

    def _torch_logits(self, torch: Any, rows: np.ndarray, t: int, label: Any) -> Any:
        """The logits of a torch model, as a tensor (a, vocab_size); label: int64 (a,) or None."""
        given = {} if label is None else {"label": label}
        if not self.incremental:
            context = torch.from_numpy(self.seq[rows, max(0, self.pad + t - self.model.block_size) : self.pad + t])  # (a, ≤ block_size)
            logits, _ = self.model(context, **given)  # (a, vocab_size), or (a, T, vocab_size) from a sequence model
            return logits[:, -1] if logits.dim() == 3 else logits  # (a, vocab_size): after the last token
        if self.state is None:
            return self._first(torch, rows, t, given)
        if len(rows) < len(self.rows):  # samples finished since the last call: drop their rows of the state
            self.state = _select_rows(self.state, torch.from_numpy(np.searchsorted(self.rows, rows)))  # rows' places in self.rows
            self.rows = rows
        logits, self.state = self.model.step(torch.from_numpy(self.seq[rows, self.pad + t - 1]), self.state, **given)  # (a, vocab_size)
        return logits

    def regroup(self, seq: np.ndarray, parents: np.ndarray) -> None:
        """For a search that branches (makemore.best): from now on the rows of `seq` (b', pad + max_len)
        are asked for, all of them, and row i continues row parents[i] (int64 (b',), repeats allowed)
        of the rows last asked for; the model's step state follows them."""
        self.seq = seq
        self.label = None if self.label is None else self.label[parents]  # (b',)
        if self.state is not None:
            import torch

            self.state = _select_rows(self.state, torch.from_numpy(np.searchsorted(self.rows, parents)))  # parents' places in self.rows
        self.rows = np.arange(len(parents))

    def _first(self, torch: Any, rows: np.ndarray, t: int, given: dict[str, Any]) -> Any:
        """The first call reads the padding and the prefix, positions 0 .. pad + t − 1. Nothing is
        drawn yet, so they are the same tokens in every row: with one label for all (or none),
        they are read for one row, and its state and logits are repeated (as views) for every row."""
        self.rows = rows
        known = self.seq[rows, : self.pad + t]  # (a, pad + t)
        label = given.get("label")
        shared = bool((known == known[:1]).all()) and (label is None or bool((label == label[:1]).all()))
        reader = rows[:1] if shared else rows  # (1,) or (a,)
        if shared and label is not None:
            given = {"label": label[:1]}  # (1,)
        logits = None
        for position in range(self.pad + t):
            logits, self.state = self.model.step(torch.from_numpy(self.seq[reader, position]), self.state, **given)  # (1 or a, vocab_size)
        if shared:
            self.state = _repeat_rows(self.state, len(rows))
            logits = logits.expand(len(rows), -1)  # (a, vocab_size)
        return logits


def _select_rows(state: object, index: Any) -> object:
    """The rows `index` (int64 (k,) tensor) of every tensor of a model's step state, whose tensors
    are (B, ...) in nested tuples; any other value (a count) as it is."""
    if isinstance(state, tuple):
        return tuple(_select_rows(s, index) for s in state)
    if hasattr(state, "index_select"):
        return state.index_select(0, index)  # (k, ...)
    return state


def _repeat_rows(state: object, a: int) -> object:
    """A model's step state of one row, its tensors (1, ...) in nested tuples, as `a` rows: (a, ...) views."""
    if isinstance(state, tuple):
        return tuple(_repeat_rows(s, a) for s in state)
    if hasattr(state, "expand"):
        return state.expand(a, *state.shape[1:])  # (a, ...)
    return state


def decode_rows(tokens: np.ndarray, length: np.ndarray, vocab: Vocab, max_len: int) -> list[tuple[str, bool]]:
    """Rows of ids (b, max_len) → (word of its first length[i] characters, length[i] < max_len).

    All rows are decoded as one UTF-32 string (every id mapped to its character's code point),
    then cut into words: one Python slice per word instead of one lookup per character.
    """
    code_points = np.array([ord(c) for c in vocab.itos], dtype="<u4")  # (vocab_size,)
    text = code_points[np.asarray(tokens)].tobytes().decode("utf-32-le")  # b·max_len characters
    return [(text[i * max_len : i * max_len + L], L < max_len) for i, L in enumerate(np.asarray(length).tolist())]


def draw(logits: np.ndarray, temperature: float, top_k: int | None, draws: Any, top_p: float | None = None) -> np.ndarray:
    """One next character per row of logits float32 (a, vocab_size), from softmax(logits /
    temperature), restricted to the top_k most likely if set, then to the nucleus of top_p if set
    (below 1): the smallest set of the most likely characters (ties: the lower id first) whose
    probabilities sum to at least top_p, renormalised (Holtzman et al. 2020, "The Curious Case of
    Neural Text Degeneration"). top_p = 1 changes nothing. Returns int64 (a,).

    Inverse-CDF sampling: one uniform u per row (from `draws`: see `uniforms`), and the first
    character whose cumulative probability exceeds u. Exactly torch.multinomial's distribution,
    with one random number per row instead of one per character.
    """
    logits = np.asarray(logits, dtype=np.float32) / np.float32(temperature)  # (a, vocab_size)
    if top_k is not None:
        kth = np.partition(logits, -top_k, axis=1)[:, -top_k:-top_k + 1 or None]  # (a, 1) the k-th largest
        logits = np.where(logits < kth, np.float32(-np.inf), logits)  # (a, vocab_size)
    if top_p is not None and top_p < 1:
        logits = nucleus(logits, top_p)  # (a, vocab_size)
    e = np.exp(logits - logits.max(1, keepdims=True))  # (a, vocab_size)
    cdf = np.cumsum(e / e.sum(1, keepdims=True), axis=1, dtype=np.float32)  # (a, vocab_size), last column ~1
    u = uniforms(draws)(len(cdf))[:, None] * cdf[:, -1:]  # (a, 1) uniform below the total
    return np.minimum((cdf <= u).sum(1), cdf.shape[1] - 1).astype(np.int64)  # (a,) searchsorted(cdf, u, right=True)


def nucleus(logits: np.ndarray, top_p: float) -> np.ndarray:
    """logits float32 (a, vocab_size) with −inf outside each row's nucleus: sorted by probability,
    most likely first (a stable sort: ties keep the lower id first), a character is kept when the
    probabilities before it sum to less than top_p, so the kept set is the smallest leading one
    whose sum reaches top_p (at least the most likely character)."""
    e = np.exp(logits - logits.max(1, keepdims=True))  # (a, vocab_size)
    probs = e / e.sum(1, keepdims=True)  # (a, vocab_size)
    order = np.argsort(-probs, axis=1, kind="stable")  # (a, vocab_size) most likely first
    sorted_probs = np.take_along_axis(probs, order, axis=1)  # (a, vocab_size)
    before = np.cumsum(sorted_probs, axis=1) - sorted_probs  # (a, vocab_size) the sum of the more likely ones
    drop = np.zeros_like(probs, dtype=bool)  # (a, vocab_size) in id order
    np.put_along_axis(drop, order, before >= top_p, axis=1)
    return np.where(drop, np.float32(-np.inf), logits)


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


def label_probs(run: Run, label: str | None) -> np.ndarray | None:
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
        return np.asarray(run.label_prior, dtype=np.float64)  # (n_labels,)
    if label not in run.labels:
        raise MakemoreError(f"--label {label!r} is not a label of this run: its labels are {', '.join(run.labels)}")
    return np.eye(len(run.labels))[run.labels.index(label)]  # (n_labels,) one-hot


def sample_words(run: Run, n: int, seed: int, *, temperature: float = 1.0, top_k: int | None = None, prefix: str = "",
                 new_only: bool = False, unique: bool = False, min_len: int | None = None, max_len: int | None = None,
                 suffix: str | None = None, contains: str | None = None, match: str | None = None,
                 top_p: float | None = None, label: str | None = None) -> Samples:
    """`makemore sample` on a loaded run: plain sampling, or selective sampling when any of prefix,
    new_only, unique, min_len, max_len, suffix, contains, match is given (see `sample` and
    `sample_wanted`); with suffix, contains or match, every draw is masked to fit all of them
    (makemore.constraints), and only --new-only and --unique still redraw. A labelled run samples
    for `label`, or draws each sample's label from the train split's frequencies.

    Raises:
        MakemoreError: an option out of range; --new-only without the run's words file; a
            constraint that cannot be met or compiled (see makemore.constraints.compile_constraints);
            a label for an unlabelled run, or one the run does not have.
    """
    check_sampling_options(n, temperature, top_k, 10**9, 10**9 if max_len is None else max_len,
                           min_len or 0, prefix if max_len is not None else "", top_p)
    probs = label_probs(run, label)
    generator = Uniforms(seed)
    kind = run.family.view
    cap = plain_cap(run)
    constraints = Constraints(prefix, suffix, contains, match, 1 if min_len is None else min_len, max_len or 1)
    if not (prefix or new_only or unique or min_len is not None or max_len is not None or constraints.masking):
        ids = None if probs is None else draw_labels(probs, n, generator)  # (n,)
        words = sample(run.inference, run.vocab, n, generator, temperature, top_k, cap, view=kind, top_p=top_p, labels=ids)
        return Samples(words, seed, cap, labels=None if ids is None else [run.labels[i] for i in ids.tolist()])
    wanted = wanted_of(run, constraints, max_len, new_only, unique, constraints.masking)
    selection = sample_wanted(run.inference, run.vocab, n, generator, wanted, temperature, top_k, view=kind, top_p=top_p,
                              label_probs=probs)
    shortfall = None
    if len(selection.words) < n:
        why = ", ".join(f"{count:,} {reason}" for reason, count in selection.redrawn.most_common())
        shortfall = (f"found only {len(selection.words)} of {n} samples within the draw bound ({DRAWS_PER_SAMPLE} draws per sample, "
                     f"{selection.drawn:,} drawn): {why}; seed {seed}")
    labels = None if probs is None else [run.labels[i] for i in selection.labels]
    return Samples([(word, True) for word in selection.words], seed, cap, selection, shortfall, labels)


def plain_cap(run: Run) -> int:
    """Plain sampling's length cap: twice the longest training word, or what a sequence model reads whole."""
    limit = run.family.view.longest_readable(run.block_size)  # a sequence model reads at most its longest training word
    return 2 * int(run.checkpoint.get("max_word_len", 32)) if limit is None else limit


def wanted_of(run: Run, constraints: Constraints, max_len: int | None, new_only: bool, unique: bool, compiled: bool) -> Wanted:
    """The Wanted of selective sampling (or of makemore.best) on a loaded run: `constraints` with
    max_len = `max_len`, or by default the prefix's length + plain_cap (a sequence model: what it
    reads whole); the run's words excluded with new_only; the constraints compiled when `compiled`.

    Raises:
        MakemoreError: --new-only without the run's words file; a --max-len beyond what a sequence
            model reads; constraints that cannot be compiled or met (compile_constraints).
    """
    limit = run.family.view.longest_readable(run.block_size)
    if max_len is None:  # the default bound: the safety cap after the prefix, within what the model reads whole
        max_len = len(constraints.prefix) + plain_cap(run) if limit is None else limit
    if limit is not None and max_len > limit:
        raise MakemoreError(f"--max-len {max_len}: this model reads words of at most {limit} characters "
                            "(a sequence model's context is its longest training word + 1)")
    try:
        exclude = frozenset(run.dataset.words) if new_only else frozenset()
    except MakemoreError as e:
        raise MakemoreError(f"--new-only needs the run's words file: {e}") from None
    bounded = replace(constraints, max_len=max_len)
    automaton = compile_constraints(bounded, "".join(run.vocab.itos[1:])) if compiled else None
    return Wanted(constraints.prefix, constraints.min_len, max_len, exclude, unique, automaton)
