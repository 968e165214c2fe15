"""The fast paths do the same mathematics as the slow ones.

- Small steps run on one CPU thread; the lecture's and the fast recipe's configs train with the
  NumPy backend's hand-derived backward (its gradients are checked in tests/test_backends.py).
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

from makemore.backends import torch_backend
from makemore.backends.torch_backend import choose_threads
from makemore.config import Config, load_config
from makemore.data import Vocab, Windows
from makemore.evaluate import mean_nll
from makemore.models.mlp import MLP
from makemore.sample import draw, sample
from tests.conftest import mutant

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


def test_small_steps_run_on_one_thread_and_big_ones_on_torchs_default() -> None:
    lecture = Config()
    assert choose_threads(MLP(lecture.model, V, BLOCK), lecture) == 1  # a step too small to split across threads
    big = load_config("configs/names.toml", ["data.block_size=8", "model.n_embd=48", "model.n_hidden=1024", "train.batch_size=128"])
    model = MLP(big.model, V, big.data.block_size)  # the best MLP of docs/sweeps.md: ~0.1 GFLOP a step
    assert choose_threads(model, big) == torch_backend.DEFAULT_THREADS


def test_the_fast_configs_train_with_the_hand_written_backward() -> None:
    """The lecture's config and the fast recipe train with the NumPy backend (train.backend = "auto"
    on a CPU): it takes the MLP's steps fastest (BENCHMARKS.md); tests/test_backends.py checks it
    follows torch's trajectory."""
    from makemore.prepare import check

    for path in ("configs/names.toml", "configs/fast.toml"):
        assert check(load_config(path, ["train.device=cpu"])).backend == "numpy", path


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


#: What the chi-square tests compare: the length, and the character at each of positions 1-4 ("" past the end).
FEATURES = {"length": len, **{f"character {i + 1}": (lambda w, i=i: w[i : i + 1]) for i in range(4)}}


def rejected(a: list[str], b: list[str]) -> list[str]:
    """The features whose distributions differ between samples a and b (chi-square, p = 0.001)."""
    out = []
    for name, feature in FEATURES.items():
        stat, df = two_sample_chi2(Counter(map(feature, a)), Counter(map(feature, b)))
        if stat >= chi2_critical(df):
            out.append(name)
    return out


def test_batched_sampling_has_the_one_at_a_time_distribution(name_model, monkeypatch) -> None:
    model, vocab = name_model
    batched = [w for w, _ in sample(model, vocab, 20_000, torch.Generator().manual_seed(1), max_len=40, batch=4096)]
    single = one_at_a_time(model, vocab, 2_500, seed=2, max_len=40)
    assert rejected(batched, single) == []
    # the test can tell distributions apart: a hotter temperature's lengths fail it
    hot = [w for w, _ in sample(model, vocab, 2_500, torch.Generator().manual_seed(3), temperature=1.6, max_len=40)]
    assert "length" in rejected(batched, hot)
    # and a sampler whose contexts slip out of line once finished rows leave the batch (it reads the
    # first rows of the batch instead of the rows still being written) fails at positions 2-4
    import makemore.sample as sample_module

    monkeypatch.setattr(sample_module.NextLogits, "_torch_logits", mutant(sample_module.NextLogits, "_torch_logits", "context = torch.from_numpy(self.seq[rows, ", "context = torch.from_numpy(self.seq[: len(rows), "))
    misaligned = [w for w, _ in sample(model, vocab, 20_000, torch.Generator().manual_seed(1), max_len=40, batch=4096)]
    assert {"character 2", "character 3", "character 4"} & set(rejected(misaligned, single)), rejected(misaligned, single)


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
    counts = torch.bincount(torch.from_numpy(drawn), minlength=8).double()
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
