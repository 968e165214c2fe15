"""The counting bigram: the baseline every model must beat ("makemore part 1").

    P(next = j | last = i) = (N[i, j] + k) / Σ_j' (N[i, j'] + k)

N[i, j] counts how often character j follows character i in the train split (the boundary token
"." both starts and ends every word), and k (model.smoothing, default 1) is add-k smoothing: it
keeps every probability above zero, so no dev or test pair costs infinitely many nats. The model
is "trained" by counting: the counts are the maximum-likelihood estimate (k = 0) of a model that
sees only the last character of the context, whatever data.block_size is.

The lecture reports a train NLL of 2.454 nats/char on its names file with k = 1.

Source: A. Karpathy, "The spelled-out intro to language modeling: building makemore" (2022);
add-k (Laplace, Lidstone) smoothing: D. Jurafsky & J. H. Martin, "Speech and Language
Processing", ch. 3.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from makemore.config import Config, ModelConfig
from makemore.data import Vocab, Windows


def count_bigrams(windows: Windows, vocab_size: int) -> np.ndarray:
    """N (vocab_size, vocab_size) int64: N[i, j] = how many windows have last context char i and target j.

    Counted EVAL_CHUNK windows at a time, so memory is bounded for any split.
    """
    N = np.zeros(vocab_size * vocab_size, dtype=np.int64)  # (V·V,)
    for X, Y in windows.chunks():  # (b, block_size), (b,)
        pair = X[:, -1] * vocab_size + Y  # (b,) flat index i·V + j of each (last char, next char) pair
        N += np.bincount(pair, minlength=vocab_size * vocab_size)
    return N.reshape(vocab_size, vocab_size)  # (V, V)


class Bigram(nn.Module):
    """The counting bigram as a torch module, so evaluate and sample treat it like any model.

    Args:
        cfg: [model]; cfg.smoothing is k of add-k smoothing.
        vocab_size: tokens, boundary included.
        block_size: characters of context in each input row; only the last one is used.

    State: the buffer `counts` (vocab_size, vocab_size), float32 (set by `fit_bigram`); the
    smoothing is read from the config, so the checkpoint holds the raw counts.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, block_size: int):
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.smoothing = cfg.smoothing
        self.register_buffer("counts", torch.zeros(vocab_size, vocab_size))  # (V, V)

    def log_probs(self) -> torch.Tensor:
        """ln P(next | last) (vocab_size, vocab_size): each row a distribution over the next character.

        A row with no counts at all (a character never seen in the train split) and k = 0 is
        uniform, so sampling stays defined.
        """
        n = self.counts.double() + self.smoothing  # (V, V)
        totals = n.sum(1, keepdim=True)  # (V, 1)
        n = torch.where(totals > 0, n, torch.ones_like(n))  # (V, V)
        return (n / n.sum(1, keepdim=True)).log().float()  # (V, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for the next character of each context, and the mean NLL if targets are given.

        Args:
            idx: int64 (B, block_size) context ids; only idx[:, -1] matters.
            targets: int64 (B,) next-character ids, or None.

        Returns:
            logits (B, vocab_size): the log-probabilities themselves (softmax of them gives P back);
            loss: mean NLL in nats per character (scalar), or None.
        """
        logits = self.log_probs()[idx[:, -1]]  # (B, V)
        loss = None
        if targets is not None:
            loss = -logits.gather(1, targets.view(-1, 1)).mean()  # scalar: mean −ln P(target | last char)
        return logits, loss


def fit_bigram(
    cfg: Config, run_dir: Path, vocab: Vocab, train: Windows, dev: Windows, provenance: dict[str, Any]
) -> Any:
    """"Train" the counting bigram on the train split and write a complete run into `run_dir`.

    Writes what every other run has, so `makemore evaluate`, `sample` and the loss plots work:
    checkpoint.pt (model state_dict {"counts"}, config, vocab, step 0, ...), one metrics.jsonl
    record with the whole-split train and dev NLL, summary.json and loss.png.

    Args:
        cfg: the config (model.type = "bigram"; model.smoothing is k).
        run_dir: the run directory, already created with config.toml and vocab.json.
        vocab: the run's vocabulary.
        train, dev: the windows of the train and dev splits.
        provenance: extra checkpoint entries the driver records for every run (data digest, ...).

    Returns:
        makemore.train.Summary with the whole-split train and dev NLL (nats/char); steps = 0.
    """
    from makemore import runs
    from makemore.evaluate import mean_nll
    from makemore.train import Record, Summary, finish

    t0 = time.perf_counter()
    vocab_size = vocab.vocab_size
    model = Bigram(cfg.model, vocab_size, cfg.data.block_size)
    model.counts.copy_(torch.from_numpy(count_bigrams(train, vocab_size)))  # (V, V)
    model.eval()
    train_loss, dev_loss = mean_nll(model, train), mean_nll(model, dev)
    elapsed = time.perf_counter() - t0
    runs.save_checkpoint(run_dir, {
        "model": {k: v.numpy() for k, v in model.state_dict().items()}, "config": cfg.to_dict(),
        "vocab": list(vocab.itos), "step": 0, "backend": "counting", "backend_state": {},
        "elapsed_s": elapsed, **provenance,
    })
    runs.atomic_write_text(run_dir / runs.METRICS, Record(0, train_loss, dev_loss, 0.0, round(elapsed, 4)).to_json() + "\n")
    summary = Summary(run_dir, 0, train_loss, dev_loss, elapsed, 0.0, {"model": "bigram", "smoothing": cfg.model.smoothing})
    finish(run_dir, summary)
    return summary
