"""The Bengio et al. 2003 MLP: shapes of every forward step, initial loss, a short training run (issue 2, items 5-6)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from makemore.config import load_config
from makemore.models import build_model


def make(overrides=(), vocab_size=27, block_size=3):
    cfg = load_config("configs/names.toml", list(overrides))
    return build_model(cfg.model, vocab_size, block_size, torch.Generator().manual_seed(cfg.train.seed)), cfg


def test_parameters_have_the_lecture_names_and_shapes() -> None:
    model, _ = make()
    shapes = {k: tuple(v.shape) for k, v in model.named_parameters()}
    assert shapes == {"C": (27, 10), "W1": (30, 200), "b1": (200,), "W2": (200, 27), "b2": (27,)}
    assert sum(math.prod(s) for s in shapes.values()) == 11_897  # the lecture's parameter count


def test_every_forward_step_has_the_documented_shape() -> None:
    model, _ = make()
    B = 5
    idx = torch.randint(0, 27, (B, 3))
    emb = model.C[idx]
    assert emb.shape == (B, 3, 10)
    embcat = emb.view(B, -1)
    assert embcat.shape == (B, 30)
    h = torch.tanh(embcat @ model.W1 + model.b1)
    assert h.shape == (B, 200)
    logits = h @ model.W2 + model.b2
    assert logits.shape == (B, 27)
    out, loss = model(idx)
    assert loss is None and torch.allclose(out, logits, atol=1e-5)
    _, loss = model(idx, torch.randint(0, 27, (B,)))
    assert loss.shape == ()


def test_initial_loss_is_close_to_uniform_with_default_init() -> None:
    from makemore.data import load_dataset

    ds = load_dataset("data/names.txt", 3, 42)
    X, Y = ds.windows("train")[:20_000]
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    model, _ = make(vocab_size=ds.vocab.vocab_size)
    _, loss = model(X, Y)
    assert abs(loss.item() - math.log(ds.vocab.vocab_size)) < 0.15
    lecture, _ = make(["model.init=lecture"], vocab_size=ds.vocab.vocab_size)
    _, lecture_loss = lecture(X, Y)
    assert lecture_loss.item() > math.log(ds.vocab.vocab_size) + 5  # the video's "way too high" start


def test_a_short_training_run_lowers_the_loss(tmp_path) -> None:
    from makemore.training import train

    cfg = load_config("configs/names.toml", ["train.steps=400", "train.eval_interval=200", "train.log_interval=50", "train.device=cpu"])
    summary = train(cfg, tmp_path / "run")
    from makemore.runs import read_metrics

    records = read_metrics(tmp_path / "run")
    assert records[0]["step"] == 50 and records[-1]["step"] == 400
    assert records[-1]["train_loss"] < records[0]["train_loss"] - 0.3
    assert summary.dev_loss < math.log(27) - 0.5
    assert [r["step"] for r in records if r["dev_loss"] is not None] == [200, 400]


def test_cross_entropy_is_mean_nll_in_nats() -> None:
    model, _ = make()
    idx, y = torch.randint(0, 27, (7, 3)), torch.randint(0, 27, (7,))
    logits, loss = model(idx, y)
    manual = -F.log_softmax(logits, dim=1)[torch.arange(7), y].mean()
    assert torch.allclose(loss, manual)
