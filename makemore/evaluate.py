"""Evaluation: mean negative log-likelihood of whole splits, in nats per character.

NLL = −(1/N) Σ ln p(y_i | context_i) over every window of the split. Perplexity is exp(NLL);
bits per character is NLL / ln 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from makemore.data import EVAL_CHUNK, Windows
from makemore.errors import MakemoreError


def mean_nll(model: torch.nn.Module, windows: Windows, device: str | torch.device = "cpu", chunk: int = EVAL_CHUNK) -> float:
    """Mean NLL (nats/char) of `model` over every window (N of them), in evaluation mode.

    Runs without autograd, `chunk` windows at a time, so memory is bounded for any N; the
    model is put back in training mode if it was in it.
    """
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.inference_mode():
        for X, Y in windows.chunks(chunk):
            xb, yb = torch.from_numpy(X).to(device), torch.from_numpy(Y).to(device)  # (b, block_size), (b,)
            logits, _ = model(xb)  # (b, vocab_size)
            total += F.cross_entropy(logits.float(), yb, reduction="sum").item()
    model.train(was_training)
    return total / max(len(windows), 1)


def describe(nll: float) -> dict[str, float]:
    """NLL (nats/char) → {"nll", "perplexity", "bits_per_char"}."""
    return {"nll": nll, "perplexity": math.exp(nll), "bits_per_char": nll / math.log(2)}


def evaluate_splits(run: Any, splits: list[str]) -> dict[str, tuple[float, int]]:
    """(mean NLL in nats/char, number of windows) of a loaded run (makemore.runs.Run) on each of
    `splits` ("train", "dev", "test"). The data is re-read from the run's data.path and split
    with its data.seed.

    Raises:
        MakemoreError: an unknown split, or data that no longer fits the run's vocabulary.
    """
    out: dict[str, tuple[float, int]] = {}
    for split in splits:
        if split not in run.dataset.order:
            raise MakemoreError(f"unknown split {split!r}: choose train, dev or test")
        windows = run.dataset.windows(split)
        out[split] = (mean_nll(run.model, windows), len(windows))
    return out


def evaluate_run(run_dir: str | Path, splits: list[str]) -> dict[str, float]:
    """Mean NLL (nats/char) of a run's checkpoint on each of `splits` ("train", "dev", "test").

    Raises:
        MakemoreError: unreadable checkpoint, an unknown split, or data that no longer fits the run's vocabulary.
    """
    from makemore.runs import load_run

    return {split: nll for split, (nll, _) in evaluate_splits(load_run(run_dir), splits).items()}
