"""A causal bag of words: each position sees the average of the embeddings of every character so far.

    idx (B, T) ──C[idx] + P[t]──▶ x (B, T, n_embd)
        ──causal mean over positions 0..t──▶ a (B, T, n_embd)
        ──@ W1 + b1, tanh──▶ h (B, T, n_hidden) ──@ W2 + b2──▶ logits (B, T, vocab_size)

A sequence model (the "sequences" view): the input is the boundary and then the whole word, and
position t predicts the character after the first t + 1 inputs. The average forgets the order
of the characters (a "bag"); the learned position embedding P tells the model how far into the
word it is. It is the simplest way to let every earlier character influence the next one: the
uniform weights that self-attention replaces with learned, data-dependent ones.

Source: A. Karpathy, makemore.py (the BoW model) and "Let's build GPT: from scratch, in code,
spelled out" (2023), the "mathematical trick in self-attention" section (xbow, a running
mean of the previous tokens computed with a lower-triangular matrix).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from makemore.config import ModelConfig
from makemore.models.base import GAINS, OUTPUT_SCALE, Dropout, label_table, label_vectors, lm_loss


class BoW(nn.Module):
    """Causal bag-of-words language model.

    Args:
        cfg: model options n_embd, n_hidden, dropout.
        vocab_size: tokens, boundary included.
        block_size: the longest input it takes (the longest word + 1).
        generator: seeded torch.Generator for the initialisation.

    Shapes: C (vocab_size, n_embd); P (block_size, n_embd); W1 (n_embd, n_hidden); b1 (n_hidden,);
    W2 (n_hidden, vocab_size); b2 (vocab_size,); with n_labels > 0, label_emb (n_labels, n_embd).
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, block_size: int, generator: torch.Generator | None = None,
                 n_labels: int = 0):
        super().__init__()
        self.vocab_size, self.block_size, self.n_labels = vocab_size, block_size, n_labels
        g = generator
        E, H = cfg.n_embd, cfg.n_hidden
        self.C = nn.Parameter(torch.randn(vocab_size, E, generator=g))  # (vocab_size, n_embd) character embeddings
        self.P = nn.Parameter(torch.randn(block_size, E, generator=g) * 0.1)  # (block_size, n_embd) position embeddings
        self.W1 = nn.Parameter(torch.randn(E, H, generator=g) * (GAINS["tanh"] / math.sqrt(E)))  # (n_embd, n_hidden)
        self.b1 = nn.Parameter(torch.randn(H, generator=g) * 0.01)  # (n_hidden,)
        self.W2 = nn.Parameter(torch.randn(H, vocab_size, generator=g) * OUTPUT_SCALE)  # (n_hidden, vocab_size)
        self.b2 = nn.Parameter(torch.zeros(vocab_size))  # (vocab_size,)
        self.act = nn.Tanh()
        self.drop = Dropout(cfg.dropout)
        self.label_emb = label_table(n_labels, E)  # (n_labels, n_embd), added at every position; None unlabelled

    def outer_matrices(self) -> tuple[str, ...]:
        """The 2-D parameters that are not hidden weight matrices: the embedding tables C and P and the output layer's W2.
        Every other 2-D parameter is a hidden matrix, which train.optimizer = "muon" updates with
        Muon (makemore.backends.torch_backend.muon_split)."""
        return ("C", "P", "W2")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for the character after every prefix of each row, and the mean NLL if targets are given.

        Args:
            idx: int64 (B, T) inputs, T ≤ block_size: the boundary, then the word (then boundary padding).
            targets: int64 (B, T) the next character at every position, IGNORE at padding; or None.
            label: int64 (B,) label ids (a conditional model only), added to every position's input.

        Returns:
            logits (B, T, vocab_size); loss: mean NLL in nats per character over the non-padded
            targets (scalar), or None. Position t depends only on idx[:, :t+1] (causal).
        """
        B, T = idx.shape
        x = self.C[idx] + self.P[:T]  # (B, T, n_embd)
        lab = label_vectors(self.label_emb, label)  # (B, n_embd) or None
        if lab is not None:
            x = x + lab[:, None]  # (B, T, n_embd)
        counts = torch.arange(1, T + 1, device=idx.device, dtype=x.dtype).view(1, T, 1)  # (1, T, 1) positions 0..t
        a = x.cumsum(dim=1) / counts  # (B, T, n_embd): mean of x[:, 0..t]
        h = self.drop(self.act(a @ self.W1 + self.b1))  # (B, T, n_hidden)
        logits = h @ self.W2 + self.b2  # (B, T, vocab_size)
        loss = lm_loss(logits, targets) if targets is not None else None
        return logits, loss

    def step(self, idx_t: torch.Tensor, state: tuple[torch.Tensor, int] | None = None,
             label: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, int]]:
        """Read one more input per row and return the logits for the character after it, carrying
        the running sum of the embeddings read so far (the mean is the sum / the count), so that
        each step computes one position: reading a row's inputs one at a time from state None
        gives, at each position, `forward`'s logits there, up to float rounding
        (tests/test_cached_sampling.py). For inference: dropout is applied as in `forward`, so only
        in eval mode do the two agree.

        Args:
            idx_t: int64 (B,) each row's next input (the first is the boundary, 0).
            state: what the previous step returned; None before the first.
            label: int64 (B,) label ids (a conditional model only), added to the input as in `forward`.

        Returns:
            logits (B, vocab_size) for the character after the t + 1 inputs read; the new state
            (total (B, n_embd), the sum of x over the inputs read, and t + 1, their count).

        Raises:
            ValueError: a step beyond the block_size positions the model has (P's rows).
        """
        t = 0 if state is None else state[1]  # inputs read before this one
        if t >= self.block_size:
            raise ValueError(f"step: position {t} is beyond the model's block_size {self.block_size}")
        x = self.C[idx_t] + self.P[t]  # (B, n_embd)
        lab = label_vectors(self.label_emb, label)  # (B, n_embd) or None
        if lab is not None:
            x = x + lab  # (B, n_embd)
        total = x if state is None else state[0] + x  # (B, n_embd): sum of x over inputs 0..t
        a = total / (t + 1)  # (B, n_embd): their mean
        h = self.drop(self.act(a @ self.W1 + self.b1))  # (B, n_hidden)
        logits = h @ self.W2 + self.b2  # (B, vocab_size)
        return logits, (total, t + 1)
