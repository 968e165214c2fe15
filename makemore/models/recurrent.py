"""Recurrent language models over the whole word: a vanilla RNN, a GRU and an LSTM.

    idx (B, T) ──C[idx]──▶ x (B, T, n_embd)
        ──cell, position by position──▶ h (B, T, n_hidden)     (n_layers such layers, stacked)
        ──@ W_out + b_out──▶ logits (B, T, vocab_size)

A sequence model (the "sequences" view): the input is the boundary and then the word, and the
state h_t after reading inputs 0..t predicts the character that follows. The state starts at zero
for every word; each cell updates it from the previous state and the current input x_t:

    rnn:   h_t = tanh(x_t·Wx + h_{t−1}·Wh + b)

    gru:   r_t = σ(x_t·Wx_r + h_{t−1}·Wh_r + b_r)               reset gate
           z_t = σ(x_t·Wx_z + h_{t−1}·Wh_z + b_z)               update gate
           ĥ_t = tanh(x_t·Wx_h + (r_t ⊙ h_{t−1})·Wh_h + b_h)     candidate state
           h_t = z_t ⊙ h_{t−1} + (1 − z_t) ⊙ ĥ_t

    lstm:  [i_t, f_t, g_t, o_t] = x_t·Wx + h_{t−1}·Wh + b       input, forget, cell, output
           c_t = σ(f_t) ⊙ c_{t−1} + σ(i_t) ⊙ tanh(g_t)          the cell's memory
           h_t = σ(o_t) ⊙ tanh(c_t)

Each cell's Wx, Wh and b hold the blocks of its gates side by side (columns [r | z | h] for the
GRU, [i | f | g | o] for the LSTM). The input term x_t·Wx + b of every position is computed for
the whole sequence at once before the loop over positions (it does not depend on the state);
only the recurrent term runs position by position. Initialisation follows lecture part 3: each
block is drawn as randn · gain / √(n_in + n_hidden) (the fan-in of [x_t, h_{t−1}]), gain 5/3
where tanh follows and 1 for a sigmoid gate; the LSTM's forget-gate bias starts at 1, so the cell
remembers by default (Gers, Schmidhuber & Cummins 2000); the output layer starts small, so the
initial loss is about ln(vocab_size).

Sources: T. Mikolov, M. Karafiát, L. Burget, J. Černocký, S. Khudanpur, "Recurrent neural network
based language model", Interspeech 2010; K. Cho, B. van Merriënboer, C. Gulcehre, D. Bahdanau,
F. Bougares, H. Schwenk, Y. Bengio, "Learning Phrase Representations using RNN Encoder-Decoder
for Statistical Machine Translation", EMNLP 2014 (the GRU, its equations 5-8, here with a bias in
each); S. Hochreiter,
J. Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8), 1997. The structure (embedding,
cell over the word, output layer at every position) is A. Karpathy's makemore.py (its RNN and GRU
models); his "makemore" lecture series stops before recurrent networks.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from makemore.config import ModelConfig
from makemore.models.base import GAINS, OUTPUT_SCALE, Dropout, label_table, label_vectors, lm_loss


def gate_weights(shape: tuple[int, int], gains: list[float], fan_in: int, generator: torch.Generator | None) -> torch.Tensor:
    """A weight matrix (rows, len(gains)·H) whose k-th block of H columns is randn · gains[k] / √fan_in."""
    rows, cols = shape
    H = cols // len(gains)
    scale = torch.tensor(gains).repeat_interleave(H) / math.sqrt(fan_in)  # (cols,)
    return torch.randn(rows, cols, generator=generator) * scale  # (rows, cols)


class RNNCell(nn.Module):
    """Elman's recurrent cell: h_t = tanh(x_t·Wx + h_{t−1}·Wh + b) (Mikolov et al. 2010).

    Shapes: Wx (n_in, H); Wh (H, H); b (H,). The state is h (B, H).
    """

    def __init__(self, n_in: int, H: int, generator: torch.Generator | None):
        super().__init__()
        self.H = H
        self.Wx = nn.Parameter(gate_weights((n_in, H), [GAINS["tanh"]], n_in + H, generator))  # (n_in, H)
        self.Wh = nn.Parameter(gate_weights((H, H), [GAINS["tanh"]], n_in + H, generator))  # (H, H)
        self.b = nn.Parameter(torch.zeros(H))  # (H,)
        self.act = nn.Tanh()

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The input term of every position at once: x (B, T, n_in) → x·Wx + b (B, T, H)."""
        return x @ self.Wx + self.b  # (B, T, H)

    def initial(self, B: int, like: torch.Tensor) -> torch.Tensor:
        """The state before the first input: zeros (B, H)."""
        return like.new_zeros(B, self.H)

    def forward(self, xw: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step: xw (B, H) = x_t·Wx + b, h (B, H) = h_{t−1} → h_t (B, H)."""
        return self.act(xw + h @ self.Wh)  # (B, H)

    @staticmethod
    def output(h: torch.Tensor) -> torch.Tensor:
        """What the layer above reads from the state: h itself (B, H)."""
        return h


class GRUCell(nn.Module):
    """The gated recurrent unit of Cho et al. (2014), their equations 5-8 (see the module docstring).

    Shapes: Wx (n_in, 3·H) and b (3·H,), columns [r | z | h]; Wh (H, 3·H), the same blocks.
    The state is h (B, H).
    """

    def __init__(self, n_in: int, H: int, generator: torch.Generator | None):
        super().__init__()
        self.H = H
        gains = [1.0, 1.0, GAINS["tanh"]]  # r, z: sigmoid; the candidate: tanh
        self.Wx = nn.Parameter(gate_weights((n_in, 3 * H), gains, n_in + H, generator))  # (n_in, 3H)
        self.Wh = nn.Parameter(gate_weights((H, 3 * H), gains, n_in + H, generator))  # (H, 3H)
        self.b = nn.Parameter(torch.zeros(3 * H))  # (3H,)
        self.gate = nn.Sigmoid()
        self.act = nn.Tanh()

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, n_in) → x·Wx + b (B, T, 3H), every position at once."""
        return x @ self.Wx + self.b  # (B, T, 3H)

    def initial(self, B: int, like: torch.Tensor) -> torch.Tensor:
        """Zeros (B, H)."""
        return like.new_zeros(B, self.H)

    def forward(self, xw: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step: xw (B, 3H) = x_t·Wx + b, h (B, H) = h_{t−1} → h_t (B, H)."""
        H = self.H
        x_r, x_z, x_h = xw.split(H, dim=-1)  # (B, H) each
        r = self.gate(x_r + h @ self.Wh[:, :H])  # (B, H) reset gate
        z = self.gate(x_z + h @ self.Wh[:, H : 2 * H])  # (B, H) update gate
        candidate = self.act(x_h + (r * h) @ self.Wh[:, 2 * H :])  # (B, H) ĥ_t
        return z * h + (1 - z) * candidate  # (B, H): keep where z is 1, take the candidate where z is 0

    @staticmethod
    def output(h: torch.Tensor) -> torch.Tensor:
        """h itself (B, H)."""
        return h


class LSTMCell(nn.Module):
    """The long short-term memory cell (Hochreiter & Schmidhuber 1997) with a forget gate
    (Gers et al. 2000), as in the module docstring.

    Shapes: Wx (n_in, 4·H) and b (4·H,), columns [i | f | g | o]; Wh (H, 4·H), the same blocks.
    The state is (h, c), each (B, H).
    """

    def __init__(self, n_in: int, H: int, generator: torch.Generator | None):
        super().__init__()
        self.H = H
        gains = [1.0, 1.0, GAINS["tanh"], 1.0]  # i, f, o: sigmoid; g: tanh
        self.Wx = nn.Parameter(gate_weights((n_in, 4 * H), gains, n_in + H, generator))  # (n_in, 4H)
        self.Wh = nn.Parameter(gate_weights((H, 4 * H), gains, n_in + H, generator))  # (H, 4H)
        b = torch.zeros(4 * H)  # (4H,)
        b[H : 2 * H] = 1.0  # forget-gate bias: remember by default
        self.b = nn.Parameter(b)
        self.gate = nn.Sigmoid()
        self.act_g = nn.Tanh()  # the candidate cell input
        self.act_c = nn.Tanh()  # the cell read out

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, n_in) → x·Wx + b (B, T, 4H), every position at once."""
        return x @ self.Wx + self.b  # (B, T, 4H)

    def initial(self, B: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h, c) = zeros (B, H) each."""
        return like.new_zeros(B, self.H), like.new_zeros(B, self.H)

    def forward(self, xw: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: xw (B, 4H) = x_t·Wx + b, state (h_{t−1}, c_{t−1}) → (h_t, c_t), each (B, H)."""
        h, c = state
        i, f, g, o = (xw + h @ self.Wh).split(self.H, dim=-1)  # (B, H) each
        c = self.gate(f) * c + self.gate(i) * self.act_g(g)  # (B, H) c_t
        h = self.gate(o) * self.act_c(c)  # (B, H) h_t
        return h, c

    @staticmethod
    def output(state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """h of the state (h, c): (B, H)."""
        return state[0]


class Recurrent(nn.Module):
    """A recurrent language model: embeddings, n_layers stacked cells run over the word, logits at every position.

    Subclasses name the cell (RNN, GRU, LSTM).

    Args:
        cfg: model options n_embd, n_hidden (the state size H), n_layers, dropout (on each layer's
            outputs h, before the next layer and before the output layer).
        vocab_size: tokens, boundary included.
        block_size: the longest input it takes (the longest word + 1); a recurrent model could read
            any length, it is kept for sampling.
        generator: seeded torch.Generator for the initialisation.

    Shapes: C (vocab_size, n_embd); cells.0 reads n_embd, cells.l (l ≥ 1) read n_hidden;
    W_out (n_hidden, vocab_size); b_out (vocab_size,); with n_labels > 0, label_emb (n_labels, n_embd).
    """

    cell: type[nn.Module] = RNNCell

    def __init__(self, cfg: ModelConfig, vocab_size: int, block_size: int, generator: torch.Generator | None = None,
                 n_labels: int = 0):
        super().__init__()
        self.vocab_size, self.block_size, self.n_labels = vocab_size, block_size, n_labels
        g = generator
        E, H = cfg.n_embd, cfg.n_hidden
        self.C = nn.Parameter(torch.randn(vocab_size, E, generator=g))  # (vocab_size, n_embd)
        self.cells = nn.ModuleList(self.cell(E if layer == 0 else H, H, g) for layer in range(cfg.n_layers))
        self.drops = nn.ModuleList(Dropout(cfg.dropout) for _ in range(cfg.n_layers))
        self.W_out = nn.Parameter(torch.randn(H, vocab_size, generator=g) * OUTPUT_SCALE)  # (n_hidden, vocab_size)
        self.b_out = nn.Parameter(torch.zeros(vocab_size))  # (vocab_size,)
        self.label_emb = label_table(n_labels, E)  # (n_labels, n_embd), added at every position; None unlabelled

    def outer_matrices(self) -> tuple[str, ...]:
        """The 2-D parameters that are not hidden weight matrices: the embedding table C and the output head W_out.
        Every other 2-D parameter is a hidden matrix, which train.optimizer = "muon" updates with
        Muon (makemore.backends.torch_backend.muon_split)."""
        return ("C", "W_out")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for the character after every prefix of each row, and the mean NLL if targets are given.

        Args:
            idx: int64 (B, T) inputs: the boundary, then the word (then boundary padding).
            targets: int64 (B, T) the next character at every position, IGNORE at padding; or None.
            label: int64 (B,) label ids (a conditional model only), added to every position's input.

        Returns:
            logits (B, T, vocab_size); loss: mean NLL in nats per character over the non-padded
            targets (scalar), or None. Position t depends only on idx[:, :t+1] (causal).
        """
        B, T = idx.shape
        x = self.C[idx]  # (B, T, n_embd)
        lab = label_vectors(self.label_emb, label)  # (B, n_embd) or None
        if lab is not None:
            x = x + lab[:, None]  # (B, T, n_embd)
        for cell, drop in zip(self.cells, self.drops):
            xw = cell.inputs(x)  # (B, T, k·H): the input term of every position
            state = cell.initial(B, x)
            hs = []
            for t in range(T):
                state = cell(xw[:, t], state)  # (B, H), or (h, c) for the LSTM
                hs.append(cell.output(state))  # (B, H)
            x = drop(torch.stack(hs, dim=1))  # (B, T, H): this layer's outputs, the next one's inputs
        logits = x @ self.W_out + self.b_out  # (B, T, vocab_size)
        loss = lm_loss(logits, targets) if targets is not None else None
        return logits, loss

    def step(self, idx_t: torch.Tensor, state: tuple | None = None, label: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]:
        """Read one more input per row and return the logits for the character after it, carrying
        every layer's recurrent state from one input to the next, so that each step computes one
        position: reading a row's inputs one at a time from state None gives, at each position,
        `forward`'s logits there, up to float rounding (tests/test_cached_sampling.py). For
        inference: dropout is applied as in `forward`, so only in eval mode do the two agree.

        Args:
            idx_t: int64 (B,) each row's next input (the first is the boundary, 0).
            state: what the previous step returned; None before the first (zero states).
            label: int64 (B,) label ids (a conditional model only), added to the input as in `forward`.

        Returns:
            logits (B, vocab_size) for the character after the inputs read; the new state: per
            layer, the cell's state after this input (h (B, H), or (h, c) for the LSTM).
        """
        x = self.C[idx_t]  # (B, n_embd)
        lab = label_vectors(self.label_emb, label)  # (B, n_embd) or None
        if lab is not None:
            x = x + lab  # (B, n_embd)
        states = []
        for layer, (cell, drop) in enumerate(zip(self.cells, self.drops)):
            s = cell.initial(len(x), x) if state is None else state[layer]  # (B, H), or (h, c)
            s = cell(cell.inputs(x), s)  # (B, H), or (h, c): the state after this input
            states.append(s)
            x = drop(cell.output(s))  # (B, H): this layer's output, the next one's input
        logits = x @ self.W_out + self.b_out  # (B, vocab_size)
        return logits, tuple(states)


class RNN(Recurrent):
    """A vanilla (Elman) recurrent language model (Mikolov et al. 2010)."""

    cell = RNNCell


class GRU(Recurrent):
    """A gated recurrent unit language model (Cho et al. 2014)."""

    cell = GRUCell


class LSTM(Recurrent):
    """A long short-term memory language model (Hochreiter & Schmidhuber 1997)."""

    cell = LSTMCell
