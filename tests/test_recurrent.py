"""The recurrent families: each cell against an independent step-by-step reference.

rnn and lstm compute exactly what torch.nn.RNN and torch.nn.LSTM compute (the same equations, gate
order [i | f | g | o]); the GRU of Cho et al. 2014 applies the reset gate before the recurrent
matrix, which torch.nn.GRU does not, so it is checked against the paper's equations in NumPy.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from makemore.backends import torch_backend
from makemore.config import ModelConfig, load_config
from makemore.models import build_model

V, E, H = 11, 5, 7


def model(name: str, n_layers: int = 2) -> torch.nn.Module:
    cfg = dataclasses.replace(ModelConfig(), type=name, n_embd=E, n_hidden=H, n_layers=n_layers)
    m = build_model(cfg, V, 9, torch.Generator().manual_seed(0)).eval()
    with torch.no_grad():  # move every parameter away from its initial value (the biases start at 0 or 1)
        for p in m.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return m


def idx(B: int = 3, T: int = 6) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_rnn_and_lstm_equal_torchs_own_layers(name: str) -> None:
    ours = model(name)
    ref_cls = torch.nn.RNN if name == "rnn" else torch.nn.LSTM
    ref = ref_cls(E, H, num_layers=2, batch_first=True)
    with torch.no_grad():
        for layer, cell in enumerate(ours.cells):
            getattr(ref, f"weight_ih_l{layer}").copy_(cell.Wx.T)
            getattr(ref, f"weight_hh_l{layer}").copy_(cell.Wh.T)
            getattr(ref, f"bias_ih_l{layer}").copy_(cell.b)
            getattr(ref, f"bias_hh_l{layer}").zero_()
        x = idx()
        h, _ = ref(ours.C[x])  # (B, T, H) the top layer's states
        expected = h @ ours.W_out + ours.b_out
        logits, _ = ours(x)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_the_gru_follows_cho_et_al_step_by_step() -> None:
    """Equations 5-8 of Cho et al. 2014, one position and one gate at a time, in float64 NumPy."""
    ours = model("gru", n_layers=1)
    cell = ours.cells[0]
    Wx, Wh, b = (p.detach().double().numpy() for p in (cell.Wx, cell.Wh, cell.b))
    C, W_out, b_out = (p.detach().double().numpy() for p in (ours.C, ours.W_out, ours.b_out))
    sigmoid = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    block = lambda M, k: M[..., k * H : (k + 1) * H]  # noqa: E731  the k-th gate's columns: 0 r, 1 z, 2 h
    x = idx()
    expected = np.zeros((*x.shape, V))
    for row in range(x.shape[0]):
        h = np.zeros(H)
        for t in range(x.shape[1]):
            e = C[x[row, t]]
            r = sigmoid(e @ block(Wx, 0) + h @ block(Wh, 0) + block(b, 0))
            z = sigmoid(e @ block(Wx, 1) + h @ block(Wh, 1) + block(b, 1))
            candidate = np.tanh(e @ block(Wx, 2) + (r * h) @ block(Wh, 2) + block(b, 2))
            h = z * h + (1 - z) * candidate
            expected[row, t] = h @ W_out + b_out
    with torch.no_grad():
        logits, _ = ours(x)
    np.testing.assert_allclose(logits.double().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_the_lstm_remembers_by_default() -> None:
    """The forget gate's bias starts at 1 (Gers et al. 2000); the other gates' at 0."""
    cell = build_model(dataclasses.replace(ModelConfig(), type="lstm", n_embd=E, n_hidden=H), V, 9).cells[0]
    assert torch.equal(cell.b, torch.cat([torch.zeros(H), torch.ones(H), torch.zeros(2 * H)]))


def test_threads_are_chosen_for_one_position_at_a_time() -> None:
    """A recurrent cell runs a position at a time, so configs/gru.toml's steps count as small (one
    thread), where the transformer of configs/transformer.toml handles all 16 positions at once."""
    gru = load_config("configs/gru.toml")
    assert torch_backend.choose_threads(build_model(gru.model, 27, 16), gru) == 1
    transformer = load_config("configs/transformer.toml")
    assert torch_backend.choose_threads(build_model(transformer.model, 27, 16), transformer) == torch_backend.DEFAULT_THREADS
