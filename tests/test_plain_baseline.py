"""The benchmark's plain reference (benchmarks/plain.py) is still the lecture's loop: given the same
weights and the same minibatches, it takes the steps makemore takes (issue 15, item 6).

If someone "speeds up" the baseline (a different loss, update, learning rate or dataset), its
losses leave makemore's and this test fails, so the benchmark's ratios keep comparing makemore
with the lecture's code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks import plain
from makemore import runs
from makemore import training as train_module
from makemore.config import load_config
from makemore.data import read_words, split_words
from makemore.models import initial_state
from makemore.prepare import prepare
from makemore.training import chunk_indices, train

STEPS = 25


@pytest.fixture(scope="module")
def lecture_data():
    """The plain loop's training windows of data/names.txt, built by its own Python loop."""
    words = read_words("data/names.txt")
    train_words, _, _ = split_words(words, 42)
    stoi = plain.lecture_vocab(words)
    return stoi, *plain.build_dataset(train_words, stoi, 3)


def test_plain_init_is_makemores_default_init() -> None:
    cfg = load_config("configs/names.toml")
    ours = initial_state(cfg, 27)
    for name, p in zip(("C", "W1", "b1", "W2", "b2"), plain.lecture_parameters(cfg.train.seed)):
        np.testing.assert_allclose(p.numpy(), ours[name], rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_plain_loop_takes_makemores_steps(backend, lecture_data, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(train_module, "plot_loss", lambda *args, **kwargs: None)  # loss.png: not looked at here
    stoi, Xtr, Ytr = lecture_data
    cfg = load_config("configs/names.toml", [f"train.backend={backend}", f"train.steps={STEPS}", "train.log_interval=1",
                                             f"train.eval_interval={STEPS}", "train.device=cpu"])
    # the same windows in the same order: a minibatch index means the same examples on both sides
    dataset = prepare(cfg).dataset
    assert dataset.vocab.itos == tuple(sorted(stoi, key=stoi.get))  # the lecture's ids: "." 0, then a-z
    view = dataset.windows("train")
    X, Y = view[np.arange(len(view))]  # (N, 3), (N,)
    assert np.array_equal(X, Xtr.numpy()) and np.array_equal(Y, Ytr.numpy())
    ix = torch.from_numpy(chunk_indices(cfg.train.seed, 0, len(view), cfg.train.batch_size)[:STEPS])  # (STEPS, 32)

    threads = torch.get_num_threads()
    try:
        train(cfg, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    ours = [r["train_loss"] for r in runs.read_metrics(tmp_path / "run") if r["step"] > 0]
    state = initial_state(cfg, 27)  # makemore's initial weights, as both of its backends start
    parameters = [torch.from_numpy(state[name].copy()) for name in ("C", "W1", "b1", "W2", "b2")]
    losses: list[float] = []
    plain.train_loop(parameters, Xtr, Ytr, STEPS, batches=ix, losses=losses)
    assert len(ours) == len(losses) == STEPS
    np.testing.assert_allclose(losses, ours, rtol=0, atol=2e-5)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.15  # the loop learns (from ~ln 27 = 3.30)
    final = runs.load_checkpoint(tmp_path / "run")["model"]
    for name, p in zip(("C", "W1", "b1", "W2", "b2"), parameters):
        np.testing.assert_allclose(p.detach().numpy(), final[name].numpy(), rtol=0, atol=1e-5, err_msg=name)


def test_the_comparison_can_fail(lecture_data, monkeypatch) -> None:
    """Another learning rate gives other losses than the lecture's 0.1, beyond the tolerance above."""
    _, Xtr, Ytr = lecture_data
    ix = torch.from_numpy(chunk_indices(1, 0, len(Ytr), 32)[:5])
    runs_ = []
    for drop in (plain.LR_DROP_STEP, 0):  # 0: lr 0.01 from the first step
        losses: list[float] = []
        monkeypatch.setattr(plain, "LR_DROP_STEP", drop)
        plain.train_loop(plain.lecture_parameters(), Xtr, Ytr, 5, batches=ix, losses=losses)
        runs_.append(losses)
    assert max(abs(a - b) for a, b in zip(*runs_)) > 1e-3
