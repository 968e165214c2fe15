"""The MLP-family options (n_layers, norm, dropout, activation, optimizer, schedule) are honoured by
training, evaluation, sampling and the checkpoint, and the defaults stay the lecture's model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from makemore.config import Config, load_config
from makemore.evaluate import mean_nll
from makemore.models.mlp import MLP
from makemore.runs import load_checkpoint, load_run, read_metrics
from makemore.sample import sample
from makemore.schedule import lr_at
from makemore.prepare import check
from makemore.training import train

from tests.conftest import write_tiny_words

#: One config per option family, each on a tiny model.
OPTIONS = {
    "batchnorm-relu-2layers": {"model.n_layers": 2, "model.norm": "batchnorm", "model.activation": "relu"},
    "layernorm-gelu-dropout": {"model.norm": "layernorm", "model.activation": "gelu", "model.dropout": 0.3},
    "batchnorm-dropout-3layers": {"model.n_layers": 3, "model.norm": "batchnorm", "model.dropout": 0.2},
    "momentum-step": {"train.optimizer": "momentum", "train.lr": 0.05, "train.weight_decay": 1e-4},
    "adamw-cosine-warmup": {"train.optimizer": "adamw", "train.lr": 0.01, "train.weight_decay": 0.1,
                            "train.schedule": "cosine", "train.warmup_steps": 10, "train.min_lr": 0.001},
}


def tiny_config(words: Path, steps: int = 40, **options) -> Config:
    cfg = Config()
    for key, value in {
        "data.path": str(words), "model.n_embd": 4, "model.n_hidden": 16, "train.steps": steps,
        "train.batch_size": 16, "train.eval_interval": 20, "train.log_interval": 10,
        "train.lr_milestones": [steps // 2], "train.device": "cpu", **options,
    }.items():
        cfg.set(key, value)
    cfg.validate()
    return cfg


def eval_logits_by_hand(state: dict, cfg: Config, x: np.ndarray) -> np.ndarray:
    """The MLP's logits (B, vocab_size) in evaluation mode, in float64 NumPy from a checkpoint's
    state dict: C[x] concatenated, then per hidden layer x @ Wi + bi, the normalisation (BatchNorm
    with its running statistics, or LayerNorm over the units, eps 1e-5), the activation (tanh,
    relu, or GELU's tanh approximation) and no dropout; then the output layer."""
    w = {k: v.double().numpy() for k, v in state.items() if v.is_floating_point()}
    h = w["C"][x].reshape(len(x), -1)  # (B, block_size·n_embd)
    L = cfg.model.n_layers
    for i in range(1, L + 1):
        h = h @ w[f"W{i}"] + w[f"b{i}"]  # (B, n_hidden)
        if cfg.model.norm == "batchnorm":
            h = (h - w[f"norm{i}.running_mean"]) / np.sqrt(w[f"norm{i}.running_var"] + 1e-5)
        elif cfg.model.norm == "layernorm":
            h = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + 1e-5)
        if cfg.model.norm != "none":
            h = h * w[f"norm{i}.weight"] + w[f"norm{i}.bias"]
        if cfg.model.activation == "tanh":
            h = np.tanh(h)
        elif cfg.model.activation == "relu":
            h = np.maximum(h, 0.0)
        else:  # Hendrycks & Gimpel (2016), the tanh approximation
            h = 0.5 * h * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (h + 0.044715 * h**3)))
    return h @ w[f"W{L + 1}"] + w[f"b{L + 1}"]  # (B, vocab_size)


@pytest.fixture
def words(tmp_path: Path) -> Path:
    return write_tiny_words(tmp_path)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_option_trains_and_its_checkpoint_reloads_to_the_same_model(tmp_path: Path, words: Path, name: str) -> None:
    cfg = tiny_config(words, **OPTIONS[name])
    summary = train(cfg, tmp_path / name)
    assert math.isfinite(summary.train_loss) and math.isfinite(summary.dev_loss)

    run = load_run(tmp_path / name)
    assert run.config == check(cfg).cfg  # the config as trained: train.backend resolved
    assert not run.model.training  # evaluation mode: batch statistics and dropout off
    # The reloaded model is the one that was trained: its whole-split losses equal those the
    # training backend computed in memory at the last step (running statistics included).
    assert mean_nll(run.model, run.dataset.windows("train")) == pytest.approx(summary.train_loss, abs=1e-6)
    dev = run.dataset.windows("dev")
    assert mean_nll(run.model, dev) == pytest.approx(summary.dev_loss, abs=1e-6)
    # A second load gives identical logits, and they are those of the evaluation-mode forward pass
    # (running statistics, no dropout) computed here in float64 from the checkpoint's own weights.
    again = load_run(tmp_path / name)
    x = torch.from_numpy(dev[:][0])
    with torch.no_grad():
        assert torch.equal(run.model(x)[0], again.model(x)[0])
        np.testing.assert_allclose(run.model(x)[0].numpy(), eval_logits_by_hand(load_checkpoint(tmp_path / name)["model"], cfg, x.numpy()),
                                   rtol=1e-4, atol=1e-4)
    # Sampling works and repeats under a seed.
    first = sample(run.model, run.vocab, 8, torch.Generator().manual_seed(0), max_len=20)
    second = sample(again.model, again.vocab, 8, torch.Generator().manual_seed(0), max_len=20)
    assert first == second and len(first) == 8


def test_batchnorm_running_statistics_are_trained_saved_and_used_in_evaluation(tmp_path: Path, words: Path) -> None:
    cfg = tiny_config(words, **{"model.norm": "batchnorm", "model.n_layers": 2})
    train(cfg, tmp_path / "bn")
    state = load_checkpoint(tmp_path / "bn")["model"]
    for i in (1, 2):
        assert not torch.equal(state[f"norm{i}.running_mean"], torch.zeros(16))  # moved away from the init
        assert not torch.equal(state[f"norm{i}.running_var"], torch.ones(16))
        assert int(state[f"norm{i}.num_batches_tracked"]) == cfg.train.steps
    model = load_run(tmp_path / "bn").model
    x = torch.randint(0, model.vocab_size, (5, cfg.data.block_size))
    with torch.no_grad():
        batch = model(x)[0]  # (5, vocab_size)
        alone = torch.cat([model(x[i : i + 1])[0] for i in range(5)])  # one row at a time
        # In eval mode each row's logits use the running statistics, not the batch's: by hand,
        emb = model.C[x].view(5, -1)
        h = emb @ model.W1 + model.b1
        h = (h - model.norm1.running_mean) / torch.sqrt(model.norm1.running_var + model.norm1.eps) * model.norm1.weight + model.norm1.bias
        h = torch.tanh(h)
        h = h @ model.W2 + model.b2
        h = (h - model.norm2.running_mean) / torch.sqrt(model.norm2.running_var + model.norm2.eps) * model.norm2.weight + model.norm2.bias
        by_hand = torch.tanh(h) @ model.W3 + model.b3
    torch.testing.assert_close(batch, alone)
    torch.testing.assert_close(batch, by_hand)


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
@pytest.mark.parametrize("norm", ["none", "layernorm"])
def test_forward_matches_the_documented_layer_order(activation: str, norm: str) -> None:
    """x @ Wi + bi → norm → activation (→ dropout), then the output layer; gelu is the tanh approximation."""
    cfg = Config().model
    cfg.n_embd, cfg.n_hidden, cfg.n_layers, cfg.activation, cfg.norm = 3, 8, 2, activation, norm
    model = MLP(cfg, vocab_size=7, block_size=4, generator=torch.Generator().manual_seed(1)).eval()
    with torch.no_grad():
        for p in model.parameters():  # non-trivial LayerNorm affine parameters too
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    act = {"tanh": torch.tanh, "relu": torch.relu, "gelu": lambda t: 0.5 * t * (1 + torch.tanh(math.sqrt(2 / math.pi) * (t + 0.044715 * t**3)))}[activation]
    idx = torch.randint(0, 7, (6, 4), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        h = model.C[idx].reshape(6, 12)
        for i in (1, 2):
            h = h @ getattr(model, f"W{i}") + getattr(model, f"b{i}")
            if norm == "layernorm":
                ln = getattr(model, f"norm{i}")
                h = F.layer_norm(h, (8,), ln.weight, ln.bias, ln.eps)
            h = act(h)
        expected = h @ model.W3 + model.b3
        logits, _ = model(idx)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_dropout_is_random_in_training_and_off_in_evaluation() -> None:
    cfg = Config().model
    cfg.n_embd, cfg.n_hidden, cfg.dropout = 4, 64, 0.5
    model = MLP(cfg, vocab_size=9, block_size=3, generator=torch.Generator().manual_seed(0))
    model.drop_generator = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 9, (32, 3), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        model.train()
        a, b = model(idx)[0], model(idx)[0]
        model.eval()
        c, d = model(idx)[0], model(idx)[0]
        cfg.dropout = 0.0
        plain = MLP(cfg, vocab_size=9, block_size=3, generator=torch.Generator().manual_seed(0)).eval()
        e = plain(idx)[0]
    assert not torch.equal(a, b)  # a fresh mask every forward
    assert torch.equal(c, d) and torch.equal(c, e)  # eval: the same function as without dropout


def test_training_with_dropout_and_batchnorm_resumes_exactly(tmp_path: Path, words: Path) -> None:
    """Dropout generator, optimizer and running statistics all travel in the checkpoint."""
    options = {"model.norm": "batchnorm", "model.dropout": 0.3, "train.optimizer": "adamw", "train.lr": 0.01,
               "train.lr_milestones": [30]}  # the same schedule for the 20-step and the 40-step config
    whole = train(tiny_config(words, steps=40, **options), tmp_path / "whole")
    train(tiny_config(words, steps=20, **options), tmp_path / "split")
    resumed = train(tiny_config(words, steps=40, **options), tmp_path / "split", resume=True)
    a, b = load_checkpoint(tmp_path / "whole")["model"], load_checkpoint(tmp_path / "split")["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.dev_loss == whole.dev_loss


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adamw"])
def test_optimizer_options_reach_torch_optim(optimizer: str) -> None:
    from makemore.backends.torch_backend import TorchBackend

    cfg = Config()
    cfg.train.optimizer, cfg.train.weight_decay, cfg.train.momentum, cfg.train.device = optimizer, 0.05, 0.8, "cpu"
    opt = TorchBackend(cfg, vocab_size=27).optimizer
    group = opt.param_groups[0]
    assert type(opt) is (torch.optim.AdamW if optimizer == "adamw" else torch.optim.SGD)
    assert group["weight_decay"] == 0.05
    if optimizer != "adamw":
        assert group["momentum"] == (0.8 if optimizer == "momentum" else 0.0)


def test_optimizers_and_weight_decay_change_the_trained_parameters(tmp_path: Path, words: Path) -> None:
    finals = {}
    for name, options in {
        "sgd": {}, "momentum": {"train.optimizer": "momentum"}, "sgd-wd": {"train.weight_decay": 0.1},
        "adamw": {"train.optimizer": "adamw", "train.lr": 0.01},
        "adamw-wd": {"train.optimizer": "adamw", "train.lr": 0.01, "train.weight_decay": 0.5},
    }.items():
        train(tiny_config(words, steps=20, **options), tmp_path / name)
        finals[name] = load_checkpoint(tmp_path / name)["model"]["W1"]
    names = list(finals)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not torch.equal(finals[a], finals[b]), (a, b)
    # Weight decay shrinks the weights.
    assert finals["adamw-wd"].norm() < finals["adamw"].norm()


def test_the_recorded_learning_rate_follows_warmup_and_cosine(tmp_path: Path, words: Path) -> None:
    cfg = tiny_config(words, steps=60, **OPTIONS["adamw-cosine-warmup"])
    train(cfg, tmp_path / "cos")
    records = read_metrics(tmp_path / "cos")
    assert [r["lr"] for r in records] == [lr_at(r["step"] - 1, cfg.train) for r in records]
    t = cfg.train
    assert lr_at(0, t) == pytest.approx(t.lr / t.warmup_steps)
    assert lr_at(t.warmup_steps - 1, t) == pytest.approx(t.lr)
    assert lr_at(t.warmup_steps, t) == pytest.approx(t.lr)
    mid = t.warmup_steps + (t.steps - t.warmup_steps) // 2
    assert lr_at(mid, t) == pytest.approx((t.lr + t.min_lr) / 2)
    assert lr_at(t.steps, t) == pytest.approx(t.min_lr)


def test_layer_count_sets_the_parameter_names() -> None:
    cfg = Config().model
    cfg.n_layers, cfg.norm = 3, "layernorm"
    names = dict(MLP(cfg, vocab_size=27, block_size=3).named_parameters())
    assert {k: tuple(v.shape) for k, v in names.items() if not k.startswith("norm")} == {
        "C": (27, 10), "W1": (30, 200), "b1": (200,), "W2": (200, 200), "b2": (200,),
        "W3": (200, 200), "b3": (200,), "W4": (200, 27), "b4": (27,),
    }
    assert {k for k in names if k.startswith("norm")} == {f"norm{i}.{w}" for i in (1, 2, 3) for w in ("weight", "bias")}


def test_names_toml_is_still_the_lecture_model() -> None:
    cfg = load_config(Path(__file__).parent.parent / "configs" / "names.toml")
    m, t = cfg.model, cfg.train
    assert (m.n_layers, m.norm, m.dropout, m.activation) == (1, "none", 0.0, "tanh")
    assert (t.optimizer, t.schedule, t.lr, t.lr_milestones, t.lr_factor, t.warmup_steps, t.weight_decay) == ("sgd", "step", 0.1, [100_000], 0.1, 0, 0.0)
    model = MLP(m, vocab_size=27, block_size=cfg.data.block_size)
    assert sum(p.numel() for p in model.parameters()) == 11_897  # the lecture's count
    assert json.dumps(sorted(n for n, _ in model.named_parameters())) == json.dumps(["C", "W1", "W2", "b1", "b2"])
