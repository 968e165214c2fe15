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
        generator: unused (counting starts from zeros); accepted like every family's.

    State: the buffer `counts` (vocab_size, vocab_size), float32 (set by `fit`); the
    smoothing is read from the config, so the checkpoint holds the raw counts.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, block_size: int, generator: torch.Generator | None = None):
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
        loss = lm_loss(logits, targets) if targets is not None else None  # scalar: mean −ln P(target | last char)
        return logits, loss

    @torch.no_grad()
    def fit(self, windows: Windows) -> None:
        """"Train" by counting: set `counts` to the pairs (last context character, target) of `windows`.

        The counts are the maximum-likelihood bigram; the driver runs this once, in place of
        gradient steps (makemore.backends.counting).
        """
        self.counts.copy_(torch.from_numpy(count_bigrams(windows, self.vocab_size)))  # (V, V)

