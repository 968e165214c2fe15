"""Evaluation: mean negative log-likelihood of whole splits, in nats per character.

NLL = −(1/N) Σ ln p(y_i | context_i) over every window of the split. Perplexity is exp(NLL);
bits per character is NLL / ln 2.
"""

from __future__ import annotations

import math
from pathlib import Path

from makemore.errors import MakemoreError
from makemore.models.base import mean_nll
from makemore.runs import Run, load_run

__all__ = ["describe", "evaluate_run", "evaluate_splits", "mean_nll"]

#: The splits of a run, in the order they are reported.
SPLITS = ("train", "dev", "test")


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
        out[split] = (mean_nll(run.model, view), view.n_targets)
    return out


def evaluate_run(run_dir: str | Path, splits: list[str]) -> dict[str, float]:
    """Mean NLL (nats/char) of a run's checkpoint on each of `splits` ("train", "dev", "test").

    Raises:
        MakemoreError: unreadable checkpoint, an unknown split, or data that no longer fits the run's vocabulary.
    """
    return {split: nll for split, (nll, _) in evaluate_splits(load_run(run_dir), splits).items()}
