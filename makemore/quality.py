"""Sample quality: how good a model's samples are, beyond the loss (issue 25, item 5).

The dev loss says how well a model predicts held-out words; it does not say whether the words it
writes are new, varied, of the right lengths and made of the right characters. `sample_quality`
draws n plain samples (temperature 1, no selection: makemore.sample.sample_words) and measures:

- share_new: the share of the n samples (repeats counted) that are not words of the train split.
- share_duplicates: 1 − distinct / n, the share of samples that repeat an earlier one.
- length_tv: the total-variation distance ½ Σ_L |p_samples(L) − p_dev(L)| between the length
  distributions (L: characters of a word) of the samples and of the dev words; 0 = identical,
  1 = disjoint. A sample cut at the length cap counts at its cut length.
- char_kl: KL(p_samples ‖ p_dev) = Σ_c p_samples(c) ln(p_samples(c) / p_dev(c)) in nats, over the
  characters of the vocabulary (the boundary excluded), each distribution from the characters'
  counts in all words plus 1 (add-one smoothing, so every term is finite); 0 = identical.
- nll: the samples' mean NLL per character under the model (nats), over every target of the
  finished, non-empty samples (each word's characters and its end token), as a split's NLL is
  computed.
  A model sampling at temperature 1 has this near its entropy rate; far below the dev NLL means
  it writes its safest words, far above means it wanders.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from makemore.errors import MakemoreError
from makemore.evaluate import nll_per_target
from makemore.runs import Run
from makemore.sample import sample_words

#: The metrics of SampleQuality, each with whether a higher value is better (for ranking runs).
METRICS = {"share_new": True, "share_duplicates": False, "length_tv": False, "char_kl": False, "nll": False}


@dataclass(frozen=True)
class SampleQuality:
    """The sample-quality metrics of one run (see the module docstring for their exact definitions)."""

    n: int
    """Samples drawn."""
    seed: int
    share_new: float
    share_duplicates: float
    length_tv: float
    char_kl: float
    """Nats."""
    nll: float
    """Nats per character; NaN when no sample finished."""
    unfinished: int
    """Samples cut at the length cap (not in nll; nor are empty samples)."""


def length_tv(a: list[str], b: list[str]) -> float:
    """½ Σ_L |p_a(L) − p_b(L)|: total-variation distance between the word-length distributions of a and b."""
    pa, pb = Counter(map(len, a)), Counter(map(len, b))
    return 0.5 * sum(abs(pa[L] / len(a) - pb[L] / len(b)) for L in set(pa) | set(pb))


def char_kl(a: list[str], b: list[str], chars: str) -> float:
    """KL(p_a ‖ p_b) in nats between the character distributions of the words a and b over `chars`,
    each from counts + 1 (add-one smoothing)."""
    ca, cb = Counter("".join(a)), Counter("".join(b))
    pa = np.array([ca[c] + 1.0 for c in chars])  # (V-1,)
    pb = np.array([cb[c] + 1.0 for c in chars])  # (V-1,)
    pa, pb = pa / pa.sum(), pb / pb.sum()
    return float(np.sum(pa * np.log(pa / pb)))


def sample_quality(run: Run, n: int, seed: int = 0) -> SampleQuality:
    """Draw n plain samples from a loaded run with `seed` and measure them against its train and
    dev words (module docstring). The same run, n and seed give the same numbers.

    Raises:
        MakemoreError: n < 1; the words file is gone or no longer fits the run's vocabulary.
    """
    if n < 1:
        raise MakemoreError(f"--samples must be at least 1, got {n}")
    drawn = sample_words(run, n, seed).words
    words = [w for w, _ in drawn]
    finished = [w for w, done in drawn if done and w]  # an empty sample has no characters to score
    train, dev = set(run.dataset.split_words("train")), run.dataset.split_words("dev")
    nll = math.nan
    if finished:
        view = run.family.view.of_words(finished, run.vocab, run.block_size)
        nll = float(nll_per_target(run.inference, view).mean())  # nats per target, pooled over the words
    return SampleQuality(n=n, seed=seed, share_new=sum(w not in train for w in words) / n,
                         share_duplicates=1.0 - len(set(words)) / n, length_tv=length_tv(words, dev),
                         char_kl=char_kl(words, dev, "".join(run.vocab.itos[1:])), nll=nll, unfinished=sum(not done for _, done in drawn))
