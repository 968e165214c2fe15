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

import numpy as np
import torch
from torch import nn

from makemore.config import ModelConfig
from makemore.data import Windows
from makemore.models.base import lm_loss


def count_bigrams(windows: Windows, vocab_size: int, n_labels: int = 0) -> np.ndarray:
    """N (vocab_size, vocab_size) int64: N[i, j] = how many windows have last context char i and target j;
    with n_labels > 0 (labelled windows), N (n_labels, vocab_size, vocab_size), one table per label.

    Counted EVAL_CHUNK windows at a time, so memory is bounded for any split.
    """
    V, K = vocab_size, max(n_labels, 1)
    N = np.zeros(K * V * V, dtype=np.int64)  # (K·V·V,)
    for batch in windows.chunks():  # (X (b, block_size), Y (b,)[, L (b,)])
        X, Y = batch[0], batch[1]
        pair = X[:, -1] * V + Y  # (b,) flat index i·V + j of each (last char, next char) pair
        if n_labels:
            pair = pair + batch[2] * (V * V)  # (b,) flat index l·V·V + i·V + j: the label's own table
        N += np.bincount(pair, minlength=K * V * V)
    return N.reshape(K, V, V) if n_labels else N.reshape(V, V)  # (K, V, V) or (V, V)


class Bigram(nn.Module):
    """The counting bigram as a torch module, so evaluate and sample treat it like any model.

    Args:
        cfg: [model]; cfg.smoothing is k of add-k smoothing.
        vocab_size: tokens, boundary included.
        block_size: characters of context in each input row; only the last one is used.
        generator: unused (counting starts from zeros); accepted like every family's.

    State: the buffer `counts` (vocab_size, vocab_size), float32 (set by `fit`), or with n_labels > 0
    (a labelled words file) one table per label, (n_labels, vocab_size, vocab_size); the
    smoothing is read from the config, so the checkpoint holds the raw counts.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, block_size: int, generator: torch.Generator | None = None,
                 n_labels: int = 0):
        super().__init__()
        self.vocab_size, self.block_size, self.n_labels = vocab_size, block_size, n_labels
        self.smoothing = cfg.smoothing
        shape = (n_labels, vocab_size, vocab_size) if n_labels else (vocab_size, vocab_size)
        self.register_buffer("counts", torch.zeros(shape))  # (V, V), or (n_labels, V, V): one table per label

    def log_probs(self) -> torch.Tensor:
        """ln P(next | last) (vocab_size, vocab_size), or (n_labels, V, V) per label: each row a
        distribution over the next character.

        A row with no counts at all (a character never seen in the train split) and k = 0 is
        uniform, so sampling stays defined.
        """
        n = self.counts.double() + self.smoothing  # (V, V)
        totals = n.sum(-1, keepdim=True)  # (..., V, 1)
        n = torch.where(totals > 0, n, torch.ones_like(n))  # (..., V, V)
        return (n / n.sum(-1, keepdim=True)).log().float()  # (..., V, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for the next character of each context, and the mean NLL if targets are given.

        Args:
            idx: int64 (B, block_size) context ids; only idx[:, -1] matters.
            targets: int64 (B,) next-character ids, or None.
            label: int64 (B,) label ids (a model with n_labels > 0 only): which label's table to read.

        Raises:
            ValueError: a label for a model without labels, or none for a model with them.

        Returns:
            logits (B, vocab_size): the log-probabilities themselves (softmax of them gives P back);
            loss: mean NLL in nats per character (scalar), or None.
        """
        if (label is None) != (self.n_labels == 0):
            raise ValueError("this bigram has one table per label: pass label (B,)" if self.n_labels else "this bigram takes no label")
        lp = self.log_probs()  # (V, V) or (n_labels, V, V)
        logits = lp[idx[:, -1]] if label is None else lp[label, idx[:, -1]]  # (B, V)
        loss = lm_loss(logits, targets) if targets is not None else None  # scalar: mean −ln P(target | last char)
        return logits, loss

    @torch.no_grad()
    def fit(self, windows: Windows) -> None:
        """"Train" by counting: set `counts` to the pairs (last context character, target) of `windows`.

        The counts are the maximum-likelihood bigram; the driver runs this once, in place of
        gradient steps (makemore.backends.counting).
        """
        self.counts.copy_(torch.from_numpy(count_bigrams(windows, self.vocab_size, self.n_labels)))  # (V, V) or (n_labels, V, V)

