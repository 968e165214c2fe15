"""The Transformer family: its attention is the explicit masked softmax, its blocks are pre-LayerNorm,
its size is GPT's, a training step computes only the positions its loss needs (with the loss and
gradients of the whole padded minibatch), and an n_head that does not divide n_embd is one clear
error."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from makemore.prepare import check
from makemore.backends.torch_backend import make_optimizer
from makemore.config import Config, ModelConfig, load_config
from makemore.data import IGNORE, Sequences, Vocab
from makemore.errors import MakemoreError
from makemore.models import build_model, count_params
from makemore.models.base import lm_loss, set_dropout_generator
from makemore.models.transformer import Block, CausalSelfAttention, computed_positions


def test_attention_is_the_explicit_masked_softmax_head_by_head() -> None:
    """softmax(q·kᵀ/√d with −∞ above the diagonal)·v per head, heads side by side, then the projection."""
    g = torch.Generator().manual_seed(0)
    n_embd, n_head, T = 12, 3, 7
    cfg = dataclasses.replace(ModelConfig(), type="transformer", n_embd=n_embd, n_head=n_head)
    attn = CausalSelfAttention(cfg, 5, 1.0, g).eval()
    with torch.no_grad():
        attn.b_qkv.copy_(torch.randn(3 * n_embd, generator=g))
    x = torch.randn(2, T, n_embd, generator=g)
    with torch.no_grad():
        q, k, v = (x @ attn.W_qkv + attn.b_qkv).split(n_embd, dim=-1)  # (B, T, n_embd) each
        d = n_embd // n_head
        heads = []
        for h in range(n_head):
            qh, kh, vh = (a[..., h * d : (h + 1) * d] for a in (q, k, v))  # (B, T, d)
            scores = qh @ kh.transpose(1, 2) / math.sqrt(d)  # (B, T, T)
            scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
            heads.append(torch.softmax(scores, dim=-1) @ vh)  # (B, T, d)
        expected = torch.cat(heads, dim=-1) @ attn.W_proj + attn.b_proj
        torch.testing.assert_close(attn(x, torch.zeros(2, T, dtype=torch.long)), expected, rtol=1e-5, atol=1e-5)


def test_a_block_normalises_before_each_sublayer_and_adds_to_the_residual_stream() -> None:
    cfg = dataclasses.replace(ModelConfig(), type="transformer", n_embd=8, n_hidden=16, n_head=2, n_layers=2)
    block = Block(cfg, 5, torch.Generator().manual_seed(1)).eval()
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(2))
    idx = torch.zeros(2, 5, dtype=torch.long)
    with torch.no_grad():
        mid = x + block.attn(block.ln1(x), idx)
        expected = mid + block.mlp(block.ln2(mid))
        torch.testing.assert_close(block(x, torch.zeros_like(x), idx), expected)


def test_makemore_py_default_size() -> None:
    """4 blocks of n_embd 64 (MLP 256 wide), 27 characters, a 16-character context: GPT's parameter count."""
    cfg = load_config("configs/transformer.toml")
    E, L, V, T, F = cfg.model.n_embd, cfg.model.n_layers, 27, 16, cfg.model.n_hidden
    per_block = (E * 3 * E + 3 * E) + (E * E + E) + (E * F + F) + (F * E + E) + 2 * 2 * E  # attention, MLP, two LayerNorms
    assert (E, L, cfg.model.n_head, F) == (64, 4, 4, 256)
    assert count_params(cfg, V, T) == V * E + T * E + L * per_block + 2 * E + E * V + V


def test_an_n_head_that_does_not_divide_n_embd_is_refused() -> None:
    cfg = load_config("configs/transformer.toml", ["model.n_head=5"])
    with pytest.raises(MakemoreError, match="model.n_embd = 64 over model.n_head = 5 heads: n_head must divide n_embd"):
        check(cfg)
    with pytest.raises(MakemoreError, match="n_head must divide n_embd"):
        build_model(cfg.model, 27, 16)


def test_the_command_line_refuses_it_in_one_line(runner, tmp_path: Path) -> None:
    from makemore.cli import app

    result = runner.invoke(app, ["train", "--config", "configs/transformer.toml", "--set", "model.n_head=3",
                                 "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model.n_head = 3" in lines[0]
    assert not (tmp_path / "run").exists()


def test_computed_positions_run_up_to_each_rows_last_target() -> None:
    targets = torch.tensor([[5, 0, IGNORE, IGNORE], [IGNORE, 3, IGNORE, 2], [IGNORE] * 4, [1, 2, 3, 0]])
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    packing = computed_positions(targets)
    assert packing.shape == (4, 4) and torch.equal(packing.index, expected.reshape(-1).nonzero().squeeze(1))
    x = torch.randn(4, 4, 3)
    assert torch.equal(packing.pack(x), x[expected])
    assert torch.equal(packing.unpack(packing.pack(x)), x * expected[..., None])


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_training_step_on_the_computed_positions_has_the_whole_minibatchs_loss_and_gradients(dropout: float) -> None:
    """model(X, Y) packs the positions up to each word's end; the loss of the full forward over the
    padded minibatch, with the same dropout draws, and every parameter's gradient are the same."""
    cfg = dataclasses.replace(ModelConfig(), type="transformer", n_embd=16, n_hidden=32, n_head=2, n_layers=2, dropout=dropout)
    vocab = Vocab((".", *"abcdefghijklmnopqrstuvwxyz"))
    words = ["ava", "maximiliana", "bo", "elisabeth", "x"]
    X, Y = map(torch.from_numpy, Sequences.of_words(words, vocab, 1)[np.arange(len(words))])  # (5, 12) each
    assert (Y == IGNORE).sum() > 20  # much of the minibatch is padding
    model = build_model(cfg, 27, 12, torch.Generator().manual_seed(0)).train()

    def loss_and_grads(packed: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        set_dropout_generator(model, torch.Generator().manual_seed(7))
        model.zero_grad()
        loss = model(X, Y)[1] if packed else lm_loss(model(X)[0], Y)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    (packed, packed_grads), (full, full_grads) = loss_and_grads(True), loss_and_grads(False)
    torch.testing.assert_close(packed, full, rtol=1e-6, atol=1e-6)
    for (name, _), a, b in zip(model.named_parameters(), packed_grads, full_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    logits, _ = model(X, Y)
    assert logits.shape == (int((Y != IGNORE).sum()), 27)  # no position after a word's end was computed


def test_adamw_takes_torchs_fused_step_on_a_cpu_with_the_per_tensor_update() -> None:
    cfg = Config()
    cfg.train.optimizer, cfg.train.weight_decay = "adamw", 0.1
    params = [torch.nn.Parameter(torch.randn(7, 5, generator=torch.Generator().manual_seed(i))) for i in range(3)]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    fused = make_optimizer(params, cfg)
    assert fused.param_groups[0]["fused"]
    reference = torch.optim.AdamW(twins, lr=cfg.train.lr, weight_decay=0.1, foreach=False)
    for step in range(4):
        for p, q in zip(params, twins):
            p.grad = q.grad = torch.randn(7, 5, generator=torch.Generator().manual_seed(10 + step))
        fused.step()
        reference.step()
    for p, q in zip(params, twins):
        torch.testing.assert_close(p, q)
