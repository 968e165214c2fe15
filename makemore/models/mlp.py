"""The multilayer perceptron language model of Bengio et al. (2003), as built in "makemore part 2".

    idx (B, block_size) ──C[idx]──▶ emb (B, block_size, n_embd) ──view──▶ (B, block_size·n_embd)
        ──@ W1 + b1, tanh──▶ h (B, n_hidden) ──@ W2 + b2──▶ logits (B, vocab_size)

Parameter names are the lecture's: C, W1, b1, W2, b2. With model.n_layers = L > 1 the hidden
layers are W1..WL, b1..bL and the output layer is W{L+1}, b{L+1}; with L = 1 that is exactly the
lecture's W2, b2. Options beyond the lecture (its sequels, parts 3 and 5): a normalisation after
each hidden linear layer (BatchNorm with running statistics, or LayerNorm), relu/gelu instead of
tanh, and dropout after each activation.

Source: Y. Bengio, R. Ducharme, P. Vincent, C. Jauvin, "A Neural Probabilistic Language Model",
JMLR 3 (2003); A. Karpathy, "Building makemore Part 2: MLP" (2022).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from makemore.config import ModelConfig
from makemore.models.base import BN_MOMENTUM, GAINS, NORM_EPS, OUTPUT_SCALE, Dropout, label_table, label_vectors, lm_loss

from makemore.models.constants import GELU_C, GELU_K, activation_name  # noqa: E402,F401 - re-exported (GELU's tanh approximation)


def activation_module(activation: str) -> nn.Module:
    """The hidden non-linearity as a module, elementwise: nn.Tanh, nn.ReLU, or nn.GELU (tanh
    approximation). A module rather than a function call, so that forward hooks find every hidden
    layer (makemore.models.base.HiddenCapture); it has no parameters, so the state_dict is unchanged."""
    if activation == "tanh":
        return nn.Tanh()
    if activation == "relu":
        return nn.ReLU()
    return nn.GELU(approximate="tanh")


class MLP(nn.Module):
    """Bengio et al. 2003 MLP: embedding table, concatenated context, tanh hidden layer(s), logits.

    Args:
        cfg: model options (n_embd, n_hidden, n_layers, activation, norm, dropout, init).
        vocab_size: number of tokens, boundary included.
        block_size: characters of context.
        generator: seeded torch.Generator for the initialisation (the lecture's `g`).

    Shapes: C (vocab_size, n_embd); W1 (block_size·n_embd, n_hidden); b1 (n_hidden,);
    W2 (n_hidden, vocab_size); b2 (vocab_size,); with n_labels > 0, label_emb (n_labels, n_hidden).
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, block_size: int, generator: torch.Generator | None = None,
                 n_labels: int = 0):
        super().__init__()
        self.vocab_size, self.block_size, self.n_labels = vocab_size, block_size, n_labels
        self.n_layers, self.activation, self.norm = cfg.n_layers, cfg.activation, cfg.norm
        g = generator
        lecture = cfg.init == "lecture"
        self.C = nn.Parameter(torch.randn(vocab_size, cfg.n_embd, generator=g))  # (vocab_size, n_embd)
        fan_in = block_size * cfg.n_embd
        for i in range(1, cfg.n_layers + 1):
            W = torch.randn(fan_in, cfg.n_hidden, generator=g)  # (fan_in, n_hidden)
            b = torch.randn(cfg.n_hidden, generator=g)  # (n_hidden,)
            if not lecture:
                W *= GAINS[cfg.activation] / math.sqrt(fan_in)  # Kaiming: unit-variance pre-activations
                b *= 0.01
            self.register_parameter(f"W{i}", nn.Parameter(W))
            self.register_parameter(f"b{i}", nn.Parameter(b))
            if cfg.norm == "batchnorm":
                self.add_module(f"norm{i}", nn.BatchNorm1d(cfg.n_hidden, eps=NORM_EPS, momentum=BN_MOMENTUM))
            elif cfg.norm == "layernorm":
                self.add_module(f"norm{i}", nn.LayerNorm(cfg.n_hidden, eps=NORM_EPS))
            self.add_module(activation_name(i), activation_module(cfg.activation))
            fan_in = cfg.n_hidden
        out = cfg.n_layers + 1
        W = torch.randn(fan_in, vocab_size, generator=g)  # (n_hidden, vocab_size)
        b = torch.randn(vocab_size, generator=g)  # (vocab_size,)
        if not lecture:
            W *= OUTPUT_SCALE
            b *= 0.0
        self.register_parameter(f"W{out}", nn.Parameter(W))
        self.register_parameter(f"b{out}", nn.Parameter(b))
        self.drop = Dropout(cfg.dropout)  # one mask per hidden layer, drawn in layer order
        self.label_emb = label_table(n_labels, cfg.n_hidden)  # (n_labels, n_hidden), added to W1's pre-activation; None unlabelled

    def outer_matrices(self) -> tuple[str, ...]:
        """The 2-D parameters that are not hidden weight matrices: the embedding table C and the output layer's W.
        Every other 2-D parameter is a hidden matrix, which train.optimizer = "muon" updates with
        Muon (makemore.backends.torch_backend.muon_split)."""
        return ("C", f"W{self.n_layers + 1}")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for the next character of each context, and the mean cross-entropy if targets are given.

        Args:
            idx: int64 (B, block_size) context ids.
            targets: int64 (B,) next-character ids, or None.
            label: int64 (B,) label ids (a conditional model only): label_emb[label] is added to
                the first hidden layer's pre-activation, so the label is seen whatever the window holds.

        Returns:
            logits (B, vocab_size); loss: mean NLL in nats per character (scalar), or None.
        """
        if self.label_emb is None:
            label_vectors(None, label)  # refuses a label
        emb = self.C[idx]  # (B, block_size, n_embd)
        x = emb.view(emb.shape[0], -1)  # (B, block_size·n_embd): the context concatenated
        for i in range(1, self.n_layers + 1):
            x = torch.addmm(getattr(self, f"b{i}"), x, getattr(self, f"W{i}"))  # (B, n_hidden) = x @ Wi + bi
            if i == 1 and self.label_emb is not None:
                x = x + label_vectors(self.label_emb, label)  # (B, n_hidden): + the label's vector
            if self.norm != "none":
                x = getattr(self, f"norm{i}")(x)  # (B, n_hidden)
            x = getattr(self, activation_name(i))(x)  # (B, n_hidden): h = tanh(x) (or relu, gelu)
            x = self.drop(x)  # (B, n_hidden): inverted dropout in training
        out = self.n_layers + 1
        logits = torch.addmm(getattr(self, f"b{out}"), x, getattr(self, f"W{out}"))  # (B, vocab_size) = h @ W2 + b2
        loss = lm_loss(logits, targets) if targets is not None else None
        return logits, loss
