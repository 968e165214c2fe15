"""Evaluation: mean negative log-likelihood of whole splits, in nats per character, and of single words.

NLL = −(1/N) Σ ln p(y_i | context_i) over every window of the split. Perplexity is exp(NLL);
bits per character is NLL / ln 2.

A word's score is the same mean over its own targets, its characters and then its end token:
(1/(L+1)) Σ −ln p, L = len(word). Its percentile ranks it among the training words' scores, so
"how name-like is my name?" has an answer on a scale the user knows (docs/names.md).

A run trained on a labelled words file is a conditional model p(word | label). A split's NLL is
given each word's own label. A word scored without a label gets the NLL of its marginal,
p(word) = Σ_label p(word | label)·p(label), with p(label) the train split's label frequencies;
and Bayes' rule gives which label fits it, p(label | word) = p(word | label)·p(label) / p(word)
(`classify_words`, `classify_split`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from typing import Any

import numpy as np

from makemore.data import View, Vocab
from makemore.errors import MakemoreError
from makemore.runs import Run, load_run

__all__ = ["Classification", "WordScore", "classify_split", "classify_words", "describe", "evaluate_run", "evaluate_splits",
           "label_nll", "log_posterior", "marginal_nll", "mean_nll", "percentile_rank", "per_word_mean", "require_labels",
           "score_words", "training_word_nll", "unscorable", "word_nll", "word_nll_or_none"]

#: The splits of a run, in the order they are reported.
SPLITS = ("train", "dev", "test")


def mean_nll(model: Any, view: View, **options: Any) -> float:
    """Mean NLL (nats/char) of a run's model over every target of `view`: a torch model through
    makemore.models.base.mean_nll (`options`: its device, chunk), a NumPy-trained MLP's twin
    (makemore.backends.numpy_mlp.NumpyMLP) on NumPy alone."""
    if getattr(model, "numpy_inference", False):
        return float(model.nll_per_target(view).sum() / max(view.n_targets, 1))
    from makemore.models.base import mean_nll as torch_mean_nll

    return torch_mean_nll(model, view, **options)


def nll_per_target(model: Any, view: View) -> np.ndarray:
    """−ln p(target) of every target of `view` (nats), float64 (n_targets,), in the view's order:
    makemore.models.base.nll_per_target for a torch model, the NumPy twin's own otherwise."""
    if getattr(model, "numpy_inference", False):
        return model.nll_per_target(view)
    from makemore.models.base import nll_per_target as torch_nll_per_target

    return torch_nll_per_target(model, view)


def describe(nll: float) -> dict[str, float]:
    """NLL (nats/char) → {"nll", "perplexity", "bits_per_char"}."""
    return {"nll": nll, "perplexity": math.exp(nll), "bits_per_char": nll / math.log(2)}


def evaluate_splits(run: Run, splits: list[str]) -> dict[str, tuple[float, int]]:
    """(mean NLL in nats/char, number of targets) of a loaded run on each of `splits` ("train",
    "dev", "test"). The data is re-read from the run's data.path and split with its data.seed.

    Raises:
        MakemoreError: an unknown split, or data that no longer fits the run's vocabulary.
    """
    out: dict[str, tuple[float, int]] = {}
    for split in splits:
        if split not in SPLITS:
            raise MakemoreError(f"unknown split {split!r}: choose train, dev or test")
        view = run.view(split)
        out[split] = (mean_nll(run.inference, view), view.n_targets)
    return out


def evaluate_run(run_dir: str | Path, splits: list[str]) -> dict[str, float]:
    """Mean NLL (nats/char) of a run's checkpoint on each of `splits` ("train", "dev", "test").

    Raises:
        MakemoreError: unreadable checkpoint, an unknown split, or data that no longer fits the run's vocabulary.
    """
    return {split: nll for split, (nll, _) in evaluate_splits(load_run(run_dir), splits).items()}


def per_word_mean(nll: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each word's mean NLL per character from the NLL of every target, word after word.

    Args:
        nll: float64 (Σ (L+1),) −ln p of each target in nats, as `nll_per_target` gives them: each
            word's L characters, then its end token.
        lengths: int (W,) each word's length L.

    Returns:
        float64 (W,) nats per character, each over the word's L + 1 targets.
    """
    counts = np.asarray(lengths, dtype=np.int64) + 1  # (W,) targets of each word
    if len(counts) == 0:
        return np.zeros(0)
    first = np.cumsum(counts) - counts  # (W,) index of each word's first target
    return np.add.reduceat(nll, first) / counts  # (W,)


def unscorable(word: str, vocab: Vocab, kind: type[View], block_size: int) -> str | None:
    """Why a model (of data view type `kind`, built with `block_size`) cannot score `word`, as a phrase
    for an error line; None when it can. Either a character outside the vocabulary (the boundary
    token included), or more characters than a sequence model reads whole (`longest_readable`)."""
    known = set(vocab.itos[1:])
    unknown = next((c for c in word if c not in known), None)
    if unknown is not None:
        return f"character {unknown!r} is not in the run's vocabulary ({''.join(vocab.itos[1:])!r})"
    limit = kind.longest_readable(block_size)
    if limit is not None and len(word) > limit:
        return f"{len(word)} characters, more than this model reads ({limit}: a sequence model's context is its longest training word + 1)"
    return None


def word_nll(model: torch.nn.Module, vocab: Vocab, kind: type[View], words: list[str], labels: np.ndarray | None = None,
             prior: np.ndarray | None = None) -> np.ndarray:
    """Mean NLL per character (nats) of each word under `model`, all words in one batched pass:
    float64 (len(words),). A word's targets are its characters and its end token, each predicted
    from what comes before it in the family's view, as in training (temperature 1).

    Args:
        kind: the model family's data view type (makemore.models.Family.view).
        labels: for a conditional model, int (W,) each word's label id: −ln p(word | label) per character.
        prior: for a conditional model without `labels`, p(label) float (n_labels,): the NLL of the
            marginal, −ln Σ_label p(word | label)·p(label), per character.

    Raises:
        MakemoreError: a word the model cannot score (see `unscorable`), named.
    """
    for word in words:
        why = unscorable(word, vocab, kind, model.block_size)
        if why is not None:
            raise MakemoreError(f"{word!r}: {why}")
    if not words:
        return np.zeros(0)
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))  # (W,)
    if prior is not None and labels is None:
        view = kind.of_words(words, vocab, model.block_size, np.zeros(len(words), dtype=np.int64))
        return marginal_nll(label_nll(model, view, lengths, len(prior)), prior) / (lengths + 1)
    view = kind.of_words(words, vocab, model.block_size, labels)
    return per_word_mean(nll_per_target(model, view), lengths)


def word_nll_or_none(model: torch.nn.Module, vocab: Vocab, kind: type[View], words: list[str], labels: list[int] | None = None,
                     prior: np.ndarray | None = None) -> list[float | None]:
    """`word_nll` of the words the model can score, None for the others (see `unscorable`), in order
    (labels: one id per word, as `words`)."""
    ok = [unscorable(w, vocab, kind, model.block_size) is None for w in words]
    kept = None if labels is None else np.array([lab for lab, good in zip(labels, ok) if good], dtype=np.int64)
    scores = iter(word_nll(model, vocab, kind, [w for w, good in zip(words, ok) if good], kept, prior).tolist())
    return [next(scores) if good else None for good in ok]


def label_nll(model: torch.nn.Module, view: View, lengths: np.ndarray, n_labels: int) -> np.ndarray:
    """−ln p(word | label) in nats (whole words, not per character) of every word of a labelled
    `view` under every label: float64 (W, n_labels). One pass over the view per label (`View.relabelled`).

    Args:
        lengths: int (W,) each word's length, in the view's order.
    """
    counts = np.asarray(lengths, dtype=np.int64) + 1  # (W,) targets of each word
    return np.stack([per_word_mean(nll_per_target(model, view.relabelled(k)), lengths) * counts
                     for k in range(n_labels)], axis=1)  # (W, n_labels)


def log_posterior(nll: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """ln p(label | word) by Bayes' rule, float64 (W, n_labels), from nll (W, n_labels) = −ln p(word | label)
    and prior (n_labels,) = p(label): ln p(word | label) + ln p(label), normalised over the labels."""
    with np.errstate(divide="ignore"):
        joint = -nll + np.log(np.asarray(prior, dtype=np.float64))  # (W, n_labels) ln p(word, label)
    return joint - _logsumexp(joint)[:, None]  # (W, n_labels)


def marginal_nll(nll: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """−ln p(word) = −ln Σ_label p(word | label)·p(label), nats per word, float64 (W,), from nll (W, n_labels)."""
    with np.errstate(divide="ignore"):
        return -_logsumexp(-nll + np.log(np.asarray(prior, dtype=np.float64)))  # (W,)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """ln Σ_j exp(a[:, j]), float64 (W,), computed stably (the row maximum taken out first)."""
    top = a.max(axis=1)  # (W,)
    return top + np.log(np.exp(a - top[:, None]).sum(axis=1))  # (W,)


def training_word_nll(run: Run) -> np.ndarray:
    """Mean NLL per character (nats) of every word of the run's train split, in one batched pass
    over the split's view: float64 (W_train,), in the split's order.

    Raises:
        MakemoreError: the words file is gone, unreadable, or no longer fits the run's vocabulary.
    """
    lengths = np.fromiter(map(len, run.dataset.split_words("train")), dtype=np.int64)  # (W_train,)
    if run.labels is not None:  # the marginal, as a word scored without its label is (`word_nll`)
        return marginal_nll(label_nll(run.inference, run.view("train"), lengths, len(run.labels)), run.label_prior) / (lengths + 1)
    return per_word_mean(nll_per_target(run.inference, run.view("train")), lengths)


#: Scores closer than this (nats/char) are a tie in `percentile_rank`: the same word scored in two
#: batches of different shapes (a training word, and the word a user asks about) can differ in
#: float32 by ~1e-7, e.g. through a recurrent model's matrix products.
TIE = 1e-6


def percentile_rank(nll: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Percentage of `reference` scores (e.g. `training_word_nll`) that are worse than each of
    `nll`: float64 (len(nll),), in [0, 100]; a tie (within TIE) counts half (the mid-rank percentile).

    100 means more name-like than every reference word, 0 less than every one. Lower NLL is better.
    """
    ref = np.sort(np.asarray(reference, dtype=np.float64))  # (R,)
    nll = np.asarray(nll, dtype=np.float64)  # (W,)
    better_or_tied = np.searchsorted(ref, nll + TIE, side="right")  # (W,) reference scores ≤ each (+ TIE)
    better = np.searchsorted(ref, nll - TIE, side="left")  # (W,) reference scores < each (− TIE)
    worse = len(ref) - better_or_tied  # (W,)
    return 100.0 * (worse + 0.5 * (better_or_tied - better)) / max(len(ref), 1)


@dataclass(frozen=True)
class WordScore:
    """How likely a word is under a run's model."""

    word: str
    nll: float
    """Mean NLL per character, nats, over the word's characters and its end token."""
    perplexity: float
    """exp(nll): the model was as unsure, on average, as a uniform choice among this many characters."""
    percentile: float | None
    """Percentage of the training words with a worse (higher) nll; None when not computed."""


def score_words(run: Run, words: list[str], reference: np.ndarray | None = None) -> list[WordScore]:
    """Score words under a loaded run's model (one batched pass), ranked against `reference`
    (`training_word_nll(run)`) when given.

    Raises:
        MakemoreError: a word the model cannot score (check each with `unscorable` to score the others).
    """
    prior = None if run.labels is None else run.label_prior  # a labelled run: the marginal over its labels
    nll = word_nll(run.inference, run.vocab, run.family.view, words, prior=prior)  # (W,)
    ranks = percentile_rank(nll, reference) if reference is not None else [None] * len(words)
    return [WordScore(w, float(x), math.exp(x), None if r is None else float(r)) for w, x, r in zip(words, nll, ranks)]


@dataclass
class ScoreReport:
    """What `score_report` returns: the scores of the words the model can score, and why not the others."""

    scores: list[WordScore]
    errors: list[str]
    """One line per word that cannot be scored: "'word': why"."""
    reference_words: int
    """How many training words the percentiles rank against (0: no percentiles)."""
    warnings: list[str]
    """Lines worth telling: the training words cannot be read; the words file changed."""


def score_report(run: Run, words: list[str]) -> ScoreReport:
    """`makemore score`: score every word the run's model can score, ranked against the training
    words when they can be read, and say why the others cannot be scored (`unscorable`)."""
    good, errors, warnings = [], [], []
    for word in words:
        why = unscorable(word, run.vocab, run.family.view, run.block_size)
        if why is None:
            good.append(word)
        else:
            errors.append(f"{word!r}: {why}")
    reference = None
    if good:
        try:
            reference = training_word_nll(run)
        except MakemoreError as e:
            warnings.append(f"warning: no percentiles, the training words cannot be read: {e}")
        if reference is not None and run.data_changed:
            warnings.append(f"warning: {run.config.data.path} changed since this run was trained; percentiles compare with today's file")
    return ScoreReport(score_words(run, good, reference), errors, 0 if reference is None else len(reference), warnings)


def char_nll(run: Run, word: str) -> list[tuple[str, float]]:
    """−ln p of each of `word`'s targets under a loaded run's model, in nats: one (character, NLL)
    pair per character of the word, then (the boundary token, NLL of the end token). Their mean is
    the word's NLL per character (`word_nll`); the largest marks the character the model least expected.

    Raises:
        MakemoreError: a word the model cannot score (see `unscorable`), named.
    """
    why = unscorable(word, run.vocab, run.family.view, run.block_size)
    if why is not None:
        raise MakemoreError(f"{word!r}: {why}")
    if run.labels is not None:
        raise MakemoreError(f"{run.path}: a labelled run scores a word under each label; per-character scores are for runs trained "
                            "without labels (makemore score WORD --labels gives p(label | word))")
    view = run.family.view.of_words([word], run.vocab, run.block_size)
    nll = nll_per_target(run.inference, view)  # (len(word) + 1,) each character, then the end token
    return list(zip([*word, run.vocab.itos[0]], nll.tolist()))


def require_labels(run: Run) -> tuple[str, ...]:
    """The run's label set. Raises MakemoreError for a run trained without labels."""
    if run.labels is None:
        raise MakemoreError(f"{run.path}: this run was trained without labels (no word<TAB>label lines): "
                            "there is no label to classify a word by")
    return run.labels


def classify_words(run: Run, words: list[str]) -> list[dict[str, float]]:
    """p(label | word) of each word by Bayes' rule, p(word | label)·p(label) normalised over the
    labels, p(label) the train split's label frequencies: one {label: probability} per word.

    Raises:
        MakemoreError: an unlabelled run; a word the model cannot score (see `unscorable`), named.
    """
    labels = require_labels(run)
    kind = run.family.view
    for word in words:
        why = unscorable(word, run.vocab, kind, run.model.block_size)
        if why is not None:
            raise MakemoreError(f"{word!r}: {why}")
    if not words:
        return []
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))  # (W,)
    view = kind.of_words(words, run.vocab, run.model.block_size, np.zeros(len(words), dtype=np.int64))
    post = np.exp(log_posterior(label_nll(run.model, view, lengths, len(labels)), run.label_prior))  # (W, n_labels)
    return [dict(zip(labels, row)) for row in post.tolist()]


@dataclass(frozen=True)
class Classification:
    """How well Bayes' rule over a labelled run's model (`classify_words`) finds each word's own
    label on a split: the most probable label a posteriori is the prediction."""

    split: str
    labels: tuple[str, ...]
    accuracy: float
    """Share of the split's words whose predicted label is their own."""
    confusion: list[list[int]]
    """confusion[i][j]: words of true label i predicted as label j (labels order)."""
    words: int
    majority: float
    """Share of the split's words carrying its most common label: what always guessing it scores."""

    def to_dict(self) -> dict[str, object]:
        """The JSON object of `makemore evaluate --classify --json`."""
        return {"split": self.split, "labels": list(self.labels), "accuracy": self.accuracy, "confusion": self.confusion,
                "words": self.words, "majority": self.majority}


def classify_split(run: Run, split: str = "dev") -> Classification:
    """Classify every word of a split of a labelled run (`classify_words`' rule) against its own label.

    Raises:
        MakemoreError: an unlabelled run; an unknown split; the words file is gone or no longer fits the run.
    """
    labels = require_labels(run)
    if split not in SPLITS:
        raise MakemoreError(f"unknown split {split!r}: choose train, dev or test")
    lengths = np.fromiter(map(len, run.dataset.split_words(split)), dtype=np.int64)  # (W,)
    truth = run.dataset.label_ids[run.dataset.order[split]]  # (W,)
    predicted = log_posterior(label_nll(run.model, run.view(split), lengths, len(labels)), run.label_prior).argmax(axis=1)  # (W,)
    K = len(labels)
    confusion = np.bincount(truth * K + predicted, minlength=K * K).reshape(K, K)  # (K, K) rows true, columns predicted
    n = max(len(truth), 1)
    return Classification(split, labels, float((truth == predicted).sum() / n), confusion.tolist(), len(truth),
                          float(np.bincount(truth, minlength=K).max() / n))
