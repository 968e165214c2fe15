"""The fast paths of issue 5 do the same mathematics as the slow ones.

- The torch backend's fused path (hand-derived backward, no autograd, foreach updates) gives
  autograd's gradients and torch.optim's updates, and its checkpoints load either way.
- Batched sampling (all names advanced together, inverse-CDF draws) has the distribution of the
  lecture's one-name-at-a-time torch.multinomial loop: chi-square tests on length and first letter.
- Evaluation is chunked and runs without autograd.

Speed itself is measured by `python -m benchmarks.run`, never asserted here.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from makemore.backends.torch_backend import FusedMLP, TorchBackend, choose_threads, fused_supported, make_optimizer
from makemore.config import Config
from makemore.data import Vocab, Windows
from makemore.evaluate import mean_nll
from makemore.models.mlp import MLP
from makemore.sample import draw, sample

V, BLOCK = 27, 3


def small_cfg(**model: object) -> Config:
    cfg = Config()
    cfg.model.n_embd, cfg.model.n_hidden = 4, 12
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


def batch(seed: int, B: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, BLOCK), generator=g), torch.randint(0, V, (B,), generator=g)


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
@pytest.mark.parametrize("n_layers", [1, 3])
def test_fused_gradients_equal_autograd(activation: str, n_layers: int) -> None:
    cfg = small_cfg(activation=activation, n_layers=n_layers)
    model = MLP(cfg.model, V, BLOCK, torch.Generator().manual_seed(1)).double()
    X, Y = batch(2)
    _, loss = model(X, Y)
    loss.backward()
    fused_loss, grads = FusedMLP(model, cfg).loss_and_grads(X, Y)
    assert fused_loss.item() == pytest.approx(loss.item(), abs=1e-12)
    names = ["C"] + [f"{k}{i}" for i in range(1, n_layers + 2) for k in ("W", "b")]
    assert len(grads) == len(names) == len(list(model.parameters()))
    for name, g in zip(names, grads):
        torch.testing.assert_close(g, getattr(model, name).grad, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("optimizer, weight_decay", [("sgd", 0.0), ("sgd", 0.1), ("momentum", 0.01), ("adamw", 0.0), ("adamw", 0.1)])
def test_fused_updates_equal_torch_optim(optimizer: str, weight_decay: float) -> None:
    """Six steps at changing learning rates, float64: the fused update rules give torch.optim's parameters and state."""
    cfg = small_cfg(n_layers=2)
    cfg.train.optimizer, cfg.train.weight_decay = optimizer, weight_decay
    fused_model = MLP(cfg.model, V, BLOCK, torch.Generator().manual_seed(3)).double()
    ref_model = MLP(cfg.model, V, BLOCK, torch.Generator().manual_seed(3)).double()
    fused = FusedMLP(fused_model, cfg)
    opt = make_optimizer(list(ref_model.parameters()), cfg)
    for step in range(6):
        X, Y = batch(10 + step)
        lr = 0.05 / (step + 1)
        fused.step(X, Y, lr)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        ref_model(X, Y)[1].backward()
        opt.step()
    for (name, a), b in zip(fused_model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)
    ours, theirs = fused.state_dict(), opt.state_dict()
    assert ours["state"].keys() == theirs["state"].keys()
    for i, entry in theirs["state"].items():
        for key, value in entry.items():
            torch.testing.assert_close(torch.as_tensor(ours["state"][i][key], dtype=torch.float64),
                                       torch.as_tensor(value, dtype=torch.float64), rtol=1e-10, atol=1e-12, msg=f"{i} {key}")


@pytest.mark.parametrize("optimizer", ["momentum", "adamw"])
def test_checkpoint_state_moves_between_fused_and_autograd(optimizer: str) -> None:
    """A fused run's export_state continues identically under autograd, and the other way round."""
    cfg = small_cfg()
    cfg.train.optimizer, cfg.train.weight_decay, cfg.train.device = optimizer, 0.01, "cpu"
    fused, auto = TorchBackend(cfg, V, fused=True), TorchBackend(cfg, V, fused=False)
    for step in range(4):
        X, Y = batch(step)
        fused.train_step(X, Y, 0.03)
        auto.train_step(X, Y, 0.03)
    swapped_auto, swapped_fused = TorchBackend(cfg, V, fused=False), TorchBackend(cfg, V, fused=True)
    swapped_auto.load(fused.export_params(), fused.export_state())
    swapped_fused.load(auto.export_params(), auto.export_state())
    for step in range(4, 8):
        X, Y = batch(step)
        for backend in (fused, auto, swapped_auto, swapped_fused):
            backend.train_step(X, Y, 0.03)
    reference = auto.export_params()
    for backend in (fused, swapped_auto, swapped_fused):
        for name, value in backend.export_params().items():
            np.testing.assert_allclose(value, reference[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_fused_path_is_used_exactly_where_it_applies() -> None:
    cfg = small_cfg()
    cfg.train.device = "cpu"
    assert fused_supported(cfg) and TorchBackend(cfg, V).fused is not None
    for option in ({"norm": "batchnorm"}, {"norm": "layernorm"}, {"dropout": 0.2}):
        other = small_cfg(**option)
        assert not fused_supported(other)
        assert TorchBackend(other, V).fused is None
        with pytest.raises(ValueError, match="fused path"):
            TorchBackend(other, V, fused=True)
    assert choose_threads(Config()) == 1  # the lecture's model: a step too small to split across threads


def test_fused_training_reaches_autograds_loss(tmp_path) -> None:
    """Two whole backends trained on the same minibatches by either path end with the same loss."""
    cfg = small_cfg()
    cfg.train.device = "cpu"
    losses = {}
    for fused in (True, False):
        backend = TorchBackend(cfg, V, fused=fused)
        for step in range(30):
            X, Y = batch(100 + step, 32)
            backend.train_step(X, Y, 0.1)
        X, Y = batch(999, 256)
        losses[fused] = backend.mean_loss(Windows.of_arrays(X.numpy(), Y.numpy()))
    assert losses[True] == pytest.approx(losses[False], abs=1e-5)


# ---------------------------------------------------------------- sampling: same distribution


def chi2_critical(df: int, z: float = 3.0902) -> float:
    """Upper quantile of the chi-square distribution with `df` degrees of freedom (Wilson-Hilferty
    approximation); z = 3.09 is p = 0.001."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def two_sample_chi2(a: Counter, b: Counter, min_count: int = 10) -> tuple[float, int]:
    """Chi-square statistic that two samples of categories come from one distribution, and its
    degrees of freedom; categories with fewer than `min_count` observations in all are pooled."""
    na, nb = sum(a.values()), sum(b.values())
    keys = sorted(set(a) | set(b), key=str)
    pooled = [k for k in keys if a[k] + b[k] < min_count]
    rows = [(a[k], b[k]) for k in keys if k not in pooled]
    if pooled:
        rows.append((sum(a[k] for k in pooled), sum(b[k] for k in pooled)))
    stat = sum((math.sqrt(nb / na) * x - math.sqrt(na / nb) * y) ** 2 / (x + y) for x, y in rows if x + y)
    return stat, len(rows) - 1


def one_at_a_time(model: torch.nn.Module, vocab: Vocab, n: int, seed: int, max_len: int) -> list[str]:
    """The lecture's sampling cell: one name at a time, torch.multinomial on one context row."""
    g = torch.Generator().manual_seed(seed)
    names = []
    with torch.no_grad():
        for _ in range(n):
            context, out = [0] * model.block_size, []
            for _ in range(max_len):
                logits, _ = model(torch.tensor([context]))  # (1, vocab_size)
                ix = torch.multinomial(F.softmax(logits, dim=1), 1, generator=g).item()
                if ix == 0:
                    break
                out.append(ix)
                context = context[1:] + [ix]
            names.append(vocab.decode(out))
    return names


@pytest.fixture(scope="module")
def name_model() -> tuple[MLP, Vocab]:
    """A small MLP whose samples look like names: random weights, a boundary bias that ends words after about 11 characters."""
    vocab = Vocab((".", *"abcdefghijklmnopqrstuvwxyz"))
    model = MLP(small_cfg().model, V, BLOCK, torch.Generator().manual_seed(7))
    with torch.no_grad():
        model.W2.mul_(200.0)  # the kaiming init's output layer is nearly flat: give the characters preferences
        model.b2[0] = 1.5
    return model.eval(), vocab


def test_batched_sampling_has_the_one_at_a_time_distribution(name_model) -> None:
    model, vocab = name_model
    batched = [w for w, _ in sample(model, vocab, 20_000, torch.Generator().manual_seed(1), max_len=40, batch=4096)]
    single = one_at_a_time(model, vocab, 2_500, seed=2, max_len=40)
    for feature in (len, lambda w: w[:1]):
        stat, df = two_sample_chi2(Counter(map(feature, batched)), Counter(map(feature, single)))
        assert stat < chi2_critical(df), (stat, df)
    # the test can tell distributions apart: a hotter temperature's lengths fail it
    hot = [w for w, _ in sample(model, vocab, 2_500, torch.Generator().manual_seed(3), temperature=1.6, max_len=40)]
    stat, df = two_sample_chi2(Counter(map(len, batched)), Counter(map(len, hot)))
    assert stat > chi2_critical(df)


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.7, None), (1.0, 5)])
def test_draw_follows_the_softmax(temperature: float, top_k: int | None) -> None:
    """draw's frequencies over 60 000 rows of the same logits match softmax(logits / T), restricted to the top k."""
    logits = torch.linspace(-2.0, 2.0, 8).roll(3)  # (8,) distinct, not sorted
    probs = F.softmax(logits / temperature, dim=0)
    if top_k is not None:
        keep = torch.zeros_like(probs, dtype=torch.bool)
        keep[torch.topk(logits, top_k).indices] = True
        probs = torch.where(keep, probs, 0.0)
        probs = probs / probs.sum()
    n = 60_000
    drawn = draw(logits.expand(n, 8), temperature, top_k, torch.Generator().manual_seed(0))  # (n,)
    counts = torch.bincount(drawn, minlength=8).double()
    assert counts[probs == 0].sum() == 0
    expected = probs[probs > 0].double() * n
    stat = float(((counts[probs > 0] - expected) ** 2 / expected).sum())
    assert stat < chi2_critical(int((probs > 0).sum()) - 1)


def test_sampling_is_repeatable_and_leaves_torch_threads_alone(name_model) -> None:
    model, vocab = name_model
    threads = torch.get_num_threads()
    first = sample(model, vocab, 50, torch.Generator().manual_seed(5), max_len=12, batch=16)
    assert torch.get_num_threads() == threads
    assert first == sample(model, vocab, 50, torch.Generator().manual_seed(5), max_len=12, batch=16)
    assert all(len(w) <= 12 and (done or len(w) == 12) for w, done in first)


# ---------------------------------------------------------------- evaluation: chunked, no autograd


def test_mean_nll_is_chunked_and_autograd_free(name_model) -> None:
    model, _ = name_model
    seen = []

    def record(module, args, output):
        seen.append((args[0].shape[0], torch.is_grad_enabled(), output[0].requires_grad))

    X = np.random.default_rng(0).integers(0, V, size=(1000, BLOCK))
    Y = np.random.default_rng(1).integers(0, V, size=1000)
    handle = model.register_forward_hook(record)
    try:
        chunked = mean_nll(model, Windows.of_arrays(X, Y), chunk=64)
    finally:
        handle.remove()
    assert [rows for rows, _, _ in seen] == [64] * 15 + [40]
    assert not any(grad or requires for _, grad, requires in seen)
    with torch.no_grad():
        whole = F.cross_entropy(model(torch.from_numpy(X))[0], torch.from_numpy(Y)).item()
    assert chunked == pytest.approx(whole, abs=1e-5)
