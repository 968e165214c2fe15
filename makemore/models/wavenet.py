"""The hierarchical model of "makemore part 5": a WaveNet-like tree that fuses the context two by two.

    idx (B, 8) ──C[idx]──▶ (B, 8, n_embd)
        ──fuse pairs──▶ (B, 4, 2·n_embd) ──@ W, BatchNorm, tanh──▶ (B, 4, n_hidden)   level 1
        ──fuse pairs──▶ (B, 2, 2·n_hidden) ──@ W, BatchNorm, tanh──▶ (B, 2, n_hidden)  level 2
        ──fuse pairs──▶ (B, 1, 2·n_hidden) ──@ W, BatchNorm, tanh──▶ (B, 1, n_hidden)  level 3
        ──@ W_out + b_out──▶ logits (B, vocab_size)

A window model (the "windows" view), like the MLP, but instead of squashing all block_size
characters into one hidden layer at once, it merges neighbours slowly: each level concatenates
two consecutive vectors (`FlattenConsecutive`) and mixes them with one linear layer, so a model
with block_size = 2^L characters of context has L levels and each level's weights are shared by
every pair it fuses (a block_size between powers of two is padded up to the next one with the
boundary token, so every block_size works). This is the dilated causal convolution of WaveNet, written out for the one
position being predicted. The linear layers have no bias, since the BatchNorm after each adds its
own (lecture part 3); BatchNorm takes its statistics over the batch and the pairs of a level.

Source: A. van den Oord, S. Dieleman, H. Zen, K. Simonyan, O. Vinyals, A. Graves,
N. Kalchbrenner, A. Senior, K. Kavukcuoglu, "WaveNet: A Generative Model for Raw Audio" (2016);
A. Karpathy, "Building makemore Part 5: Building a WaveNet" (2022).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from makemore.config import ModelConfig
from makemore.models.base import BN_MOMENTUM, GAINS, NORM_EPS, OUTPUT_SCALE, Dropout, label_table, label_vectors, lm_loss


def levels(block_size: int) -> int:
    """How many levels fuse a context of block_size characters down to one vector: log2 of the
    smallest power of two ≥ block_size (at least 1). A context that is not a power of two is
    left-padded with the boundary token up to it (see `WaveNet.forward`)."""
    return max(1, (block_size - 1).bit_length())


class FlattenConsecutive(nn.Module):
    """Concatenate every n consecutive vectors: (B, T, C) → (B, T/n, n·C) (lecture part 5).

    Vector j of the output is [x[:, n·j], x[:, n·j + 1], ..., x[:, n·j + n − 1]] side by side; it is
    a view of the input (no copy).
    """

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T // self.n, self.n * C)  # (B, T/n, n·C)


class Level(nn.Module):
    """One level of the tree: fuse pairs, then a linear layer (no bias), BatchNorm and tanh.

    Args:
        fan_in: the width of one fused pair (2·n_embd for the first level, 2·n_hidden after).
        n_hidden: output units. dropout: probability of zeroing a unit in training.
        generator: seeded generator for W.

    Shapes: W (fan_in, n_hidden); norm: BatchNorm1d(n_hidden) (weight, bias, running statistics).
    """

    def __init__(self, fan_in: int, n_hidden: int, dropout: float, generator: torch.Generator | None):
        super().__init__()
        self.fuse = FlattenConsecutive(2)
        self.W = nn.Parameter(torch.randn(fan_in, n_hidden, generator=generator) * (GAINS["tanh"] / math.sqrt(fan_in)))  # (fan_in, n_hidden)
        self.norm = nn.BatchNorm1d(n_hidden, eps=NORM_EPS, momentum=BN_MOMENTUM)
        self.act = nn.Tanh()
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) → (B, T/2, n_hidden)."""
        x = self.fuse(x)  # (B, T/2, 2·C): neighbours side by side
        B, T2, _ = x.shape
        a = x @ self.W  # (B, T/2, n_hidden)
        a = self.norm(a.reshape(B * T2, -1)).view(B, T2, -1)  # (B, T/2, n_hidden): statistics over batch and pairs
        return self.drop(self.act(a))  # (B, T/2, n_hidden)


class WaveNet(nn.Module):
    """The lecture-part-5 hierarchical language model over a window of block_size characters,
    fused in L = `levels(block_size)` levels (the lecture's block_size 8: 3 levels).

    Args:
        cfg: model options n_embd, n_hidden, dropout (dropout after each level's tanh).
        vocab_size: tokens, boundary included.
        block_size: characters of context; one that is not a power of two (2, 4, 8, ...) is read
            as the next power of two, 2^L, whose first positions always hold the boundary token.
        generator: seeded torch.Generator for the initialisation.

    Shapes: C (vocab_size, n_embd); levels[0].W (2·n_embd, n_hidden); levels[i].W (2·n_hidden,
    n_hidden) for i ≥ 1; W_out (n_hidden, vocab_size); b_out (vocab_size,); with n_labels > 0,
    label_emb (n_labels, n_embd).
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, block_size: int, generator: torch.Generator | None = None,
                 n_labels: int = 0):
        super().__init__()
        self.vocab_size, self.block_size, self.n_labels = vocab_size, block_size, n_labels
        g = generator
        L = levels(block_size)
        self.width = 2**L  # positions the tree fuses: block_size, rounded up to a power of two
        self.C = nn.Parameter(torch.randn(vocab_size, cfg.n_embd, generator=g))  # (vocab_size, n_embd)
        widths = [2 * cfg.n_embd] + [2 * cfg.n_hidden] * (L - 1)
        self.levels = nn.ModuleList(Level(fan_in, cfg.n_hidden, cfg.dropout, g) for fan_in in widths)
        self.W_out = nn.Parameter(torch.randn(cfg.n_hidden, vocab_size, generator=g) * OUTPUT_SCALE)  # (n_hidden, vocab_size)
        self.b_out = nn.Parameter(torch.zeros(vocab_size))  # (vocab_size,)
        self.label_emb = label_table(n_labels, cfg.n_embd)  # (n_labels, n_embd), added at every position; None unlabelled

    def outer_matrices(self) -> tuple[str, ...]:
        """The 2-D parameters that are not hidden weight matrices: the embedding table C and the output head W_out.
        Every other 2-D parameter is a hidden matrix, which train.optimizer = "muon" updates with
        Muon (makemore.backends.torch_backend.muon_split)."""
        return ("C", "W_out")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for the next character of each context, and the mean NLL if targets are given.

        Args:
            idx: int64 (B, block_size) context ids (or (B, 2^L): already padded).
            targets: int64 (B,) next-character ids, or None.
            label: int64 (B,) label ids (a conditional model only): label_emb[label] is added to
                the embedding of every position the first level reads, padding included.

        Returns:
            logits (B, vocab_size); loss: mean NLL in nats per character (scalar), or None.
        """
        pad = self.width - idx.shape[1]
        if pad > 0:  # a context that is not a power of two: boundary tokens (id 0) in front
            idx = torch.nn.functional.pad(idx, (pad, 0))  # (B, 2^L)
        x = self.C[idx]  # (B, 2^L, n_embd)
        lab = label_vectors(self.label_emb, label)  # (B, n_embd) or None
        if lab is not None:
            x = x + lab[:, None]  # (B, 2^L, n_embd)
        for level in self.levels:
            x = level(x)  # (B, T/2, n_hidden): T halves at every level, down to 1
        h = x[:, 0]  # (B, n_hidden): the whole context in one vector
        logits = h @ self.W_out + self.b_out  # (B, vocab_size)
        loss = lm_loss(logits, targets) if targets is not None else None
        return logits, loss
