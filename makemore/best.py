"""The most probable words (`makemore sample --best N`): beam search over a model's next-character
distributions, under the constraints' automaton (makemore.constraints), deterministic.

A word's probability is the product of the model's probabilities (temperature 1, no top-k or
top-p, unmasked) of its characters and its end token, each given what comes before it; the search
ranks complete words by it (total log-probability, not per character: `--sort nll` reorders).

All partial words of one length advance together, one model call per character (makemore.sample's
NextLogits, so a sequence model steps with its key/value cache or carried state). At each length,
every allowed continuation of every partial word is scored: the end token completes a word, kept
unless excluded; of the characters, the `beam` most probable continuations are kept (a stable sort:
equal scores keep the lower partial word and character id first), and those no more probable than
the N-th best word found so far are dropped, since a word's probability only falls as it grows.
The search stops when no partial word is left.

Beam search can miss a word whose prefix fell out of the beam. The search records the most
probable continuation it dropped for the width; when that is no more probable than the N-th word
returned, no word left out can be more probable than the ones returned, and the result is exact
(`Best.exact`). Otherwise widen the beam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from makemore.constraints import Automaton, Constraints
from makemore.data import View, Vocab
from makemore.errors import MakemoreError
from makemore.runs import Run
from makemore.sample import NextLogits, wanted_of
from makemore.threads import scoped

#: The default beam width: partial words kept at each length.
BEAM = 1024


@dataclass
class Best:
    """What `best_words` found: the most probable words, most probable first."""

    words: list[str]
    log_prob: list[float]
    """Each word's total ln p under the model (characters and end token), nats; ≤ 0, falling."""
    beam: int
    """The beam width searched with."""
    exact: bool
    """No word the beam left out is more probable than the last one returned (see the module docstring)."""
    shortfall: str | None = None
    """Why fewer words than asked for were found, or None."""
    label: str | None = None
    """A labelled run's label the words were searched for; None otherwise."""


def best_words(model: Any, vocab: Vocab, view: type[View], automaton: Automaton, n: int,
               beam: int = BEAM, exclude: frozenset[str] = frozenset(), label: int | None = None) -> Best:
    """The `n` most probable words that `automaton` accepts and `exclude` does not hold, by beam search.

    Args:
        model, vocab, view: as for makemore.sample.sample.
        automaton: the constraints, lengths included (makemore.constraints.compile_constraints).
        n: how many words. beam: partial words kept at each length (≥ 1).
        exclude: words never returned (they may still be prefixes of returned words).
        label: a conditional model's label id, given to every model call; None otherwise.

    Raises:
        MakemoreError: n or beam below 1.
    """
    if n < 1 or beam < 1:
        raise MakemoreError(f"--best and --beam must be at least 1, got {n} and {beam}")
    with scoped(1):  # one CPU thread, as sampling
        search = _Beam(model, vocab, view, automaton, beam, label)
        found: list[tuple[float, str]] = []
        for t in range(automaton.max_len + 1):
            scores = search.scores(t)  # (a, vocab_size) total ln p of each continuation, −inf where masked
            found += [(lp, word) for lp, word in search.ended(scores, t) if word not in exclude]
            found.sort(key=lambda f: (-f[0], f[1]))
            del found[n:]
            floor = found[-1][0] if len(found) == n else -math.inf  # the n-th best so far: nothing at or below it counts
            if not search.extend(scores, t, floor):
                break
    exact = search.dropped <= (found[-1][0] if len(found) == n else -math.inf)
    return Best([w for _, w in found], [lp for lp, _ in found], beam, exact)


class _Beam:
    """The partial words of one length: `seq` (a, pad + max_len) tokens, `log_prob` (a,) float64
    their total ln p, `state` (a,) their automaton states."""

    def __init__(self, model: Any, vocab: Vocab, view: type[View], automaton: Automaton, beam: int, label: int | None = None):
        self.vocab, self.automaton, self.width = vocab, automaton, beam
        self.pad = view.start_padding(model.block_size)
        self.seq = np.zeros((1, self.pad + automaton.max_len), dtype=np.int64)  # (1, pad + max_len) the empty word
        self.log_prob = np.zeros(1, dtype=np.float64)  # (1,)
        self.state = np.full(1, automaton.initial, dtype=np.int64)  # (1,)
        self.next_logits = NextLogits(model, self.seq, self.pad, None if label is None else np.full(1, label, dtype=np.int64))
        self.dropped = -math.inf
        """The most probable continuation dropped for the beam's width (total ln p)."""

    def scores(self, t: int) -> np.ndarray:
        """(a, vocab_size) float64: each partial word's total ln p plus each next token's, −inf where masked."""
        logits = np.asarray(self.next_logits(np.arange(len(self.seq)), t), dtype=np.float64)  # (a, vocab_size)
        shifted = logits - logits.max(1, keepdims=True)  # (a, vocab_size)
        log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))  # (a, vocab_size) log-softmax
        scores = self.log_prob[:, None] + log_probs  # (a, vocab_size)
        return np.where(self.automaton.allowed[t][self.state], scores, -math.inf)

    def ended(self, scores: np.ndarray, t: int) -> list[tuple[float, str]]:
        """The words completed by the end token after t characters: (total ln p, word)."""
        done = np.flatnonzero(np.isfinite(scores[:, 0])).tolist()
        return [(float(scores[i, 0]), self.vocab.decode(self.seq[i, self.pad : self.pad + t].tolist())) for i in done]

    def extend(self, scores: np.ndarray, t: int, floor: float) -> bool:
        """Keep the `width` most probable character continuations above `floor`; False when none is left."""
        flat = scores[:, 1:].reshape(-1)  # (a · (vocab_size − 1),)
        order = np.argsort(-flat, kind="stable")  # most probable first; ties keep the lower index first
        values = flat[order]
        alive = int((values > floor).sum())
        if alive > self.width:
            self.dropped = max(self.dropped, float(values[self.width]))
        keep = order[: min(alive, self.width)]  # (a',)
        if len(keep) == 0:
            return False
        parents, chars = keep // (scores.shape[1] - 1), keep % (scores.shape[1] - 1) + 1  # (a',) each
        self.seq = self.seq[parents]  # (a', pad + max_len)
        self.seq[:, self.pad + t] = chars
        self.log_prob = flat[keep]
        self.state = self.automaton.trans[self.state[parents], chars]
        self.next_logits.regroup(self.seq, parents)
        return True


def best_of_run(run: Run, n: int, *, prefix: str = "", suffix: str | None = None, contains: str | None = None,
                match: str | None = None, min_len: int | None = None, max_len: int | None = None,
                new_only: bool = False, beam: int = BEAM, label: str | None = None) -> Best:
    """`makemore sample --best N` on a loaded run: the constraints as for selective sampling
    (makemore.sample.sample_words; max_len by default its bound), the run's words file excluded
    with new_only.

    Raises:
        MakemoreError: as best_words; constraints that cannot be compiled or met; --new-only without
            the words file; a --max-len beyond what a sequence model reads.
    """
    if max_len is not None and max_len < 1:
        raise MakemoreError(f"--max-len must be at least 1, got {max_len}")
    if min_len is not None and min_len < 0:
        raise MakemoreError(f"--min-len must be at least 0, got {min_len}")
    constraints = Constraints(prefix, suffix, contains, match, 1 if min_len is None else min_len, max_len or 1)
    wanted = wanted_of(run, constraints, max_len, new_only, False, compiled=True)
    label_id = _label_id(run, label)
    found = best_words(run.inference, run.vocab, run.family.view, wanted.automaton, n, beam, wanted.exclude, label_id)
    found.label = label
    if len(found.words) < n:
        found.shortfall = (f"found only {len(found.words)} of {n} words: " +
                           ("no other word meets the constraints" if found.exact else f"widen the beam (--beam, now {beam})"))
    return found


def _label_id(run: Run, label: str | None) -> int | None:
    """The id of `label` in a labelled run (whose search needs one); None for an unlabelled run.

    Raises:
        MakemoreError: a label for an unlabelled run; none, or an unknown one, for a labelled run.
    """
    if run.labels is None:
        if label is not None:
            raise MakemoreError(f"--label {label}: this run was trained without labels (its words file has no word<TAB>label lines)")
        return None
    if label not in run.labels:
        given = "no --label" if label is None else f"--label {label!r}"
        raise MakemoreError(f"{given}: --best on a labelled run searches the words of one label: choose one of {', '.join(run.labels)}")
    return run.labels.index(label)
