"""The numpy backend's hand-written gradients and optimizers against torch, finite differences and
MLX; whole training runs on every backend through the one driver.

Gradient-check metric, per parameter: max|g_numpy − g_ref| / max(max|g_ref|, 1e-6·G), where G is the
largest gradient entry of the whole model (the floor covers b1 under BatchNorm, whose true
gradient is exactly zero and whose computed one is rounding noise).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import makemore.backends.numpy_mlp as nm
import makemore.models.mlp as mlp_module
from makemore.backends.numpy_mlp import NumpyBackend
from makemore.backends.torch_backend import make_optimizer
from makemore.config import Config
from makemore.data import Windows
from makemore.models import build_model
from makemore.training import train
from tests.conftest import mutant, needs_mlx, tiny_cfg, with_mlx

V, T = 7, 3  # vocab_size, block_size of the gradient-check models
B = 16

# Every option of the MLP, each at least once, in combination (activation × norm × depth × dropout × init).
OPTIONS = [
    dict(),
    dict(init="lecture"),
    dict(activation="relu"),
    dict(activation="gelu"),
    dict(norm="batchnorm"),
    dict(norm="layernorm"),
    dict(dropout=0.3),
    dict(n_layers=2, activation="gelu", norm="batchnorm", dropout=0.2),
    dict(n_layers=3, activation="relu", norm="layernorm", dropout=0.1),
    dict(n_layers=2, activation="tanh", norm="batchnorm", init="lecture"),
]


def make_cfg(**model: object) -> Config:
    cfg = Config()
    cfg.data.block_size = T
    cfg.model.n_embd, cfg.model.n_hidden = 4, 8
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


def batch(seed: int = 0, size: int = B) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (size, T)), rng.integers(0, V, size)  # (B, T), (B,)


def torch_model(cfg: Config) -> torch.nn.Module:
    """The torch MLP in float64 with the weights NumpyBackend starts from (same seed)."""
    model = build_model(cfg.model, V, T, torch.Generator().manual_seed(cfg.train.seed)).double()
    model.train()
    return model


def torch_with_numpy_dropout(monkeypatch: pytest.MonkeyPatch, rng_state: dict) -> None:
    """Make the torch model's dropout draw the numbers the numpy backend's generator draws."""
    ref = np.random.default_rng()
    ref.bit_generator.state = rng_state

    def rand(shape, generator=None, device=None):  # noqa: ARG001 - torch.rand's signature
        return torch.from_numpy(ref.random(tuple(shape), dtype=np.float32))

    monkeypatch.setattr(mlp_module.torch, "rand", rand)


def rel_errors(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> dict[str, float]:
    scale = max(float(np.abs(g).max()) for g in ref.values())
    return {n: float(np.abs(ours[n] - ref[n]).max() / max(float(np.abs(ref[n]).max()), 1e-6 * scale)) for n in ref}


def numpy_vs_autograd(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> tuple[float, dict[str, float]]:
    """(|loss difference|, relative gradient error per parameter) of NumpyBackend vs torch autograd."""
    nb = NumpyBackend(cfg, V, dtype=np.float64)
    model = torch_model(cfg)
    X, Y = batch()
    torch_with_numpy_dropout(monkeypatch, nb.rng.bit_generator.state)
    loss, grads, _ = nb.loss_and_grads(X, Y)
    _, ref_loss = model(torch.from_numpy(X), torch.from_numpy(Y))
    ref_loss.backward()
    ref = {n: p.grad.numpy() for n, p in model.named_parameters()}
    assert sorted(grads) == sorted(ref)
    return abs(loss - ref_loss.item()), rel_errors(grads, ref)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "lecture-model")
def test_numpy_gradients_match_torch_autograd(options, monkeypatch):
    loss_diff, errors = numpy_vs_autograd(make_cfg(**options), monkeypatch)
    assert loss_diff < 1e-12
    assert max(errors.values()) <= 1e-7, errors


def finite_difference_grads(nb: NumpyBackend, X: np.ndarray, Y: np.ndarray, h: float = 1e-6) -> dict[str, np.ndarray]:
    """Central differences (L(p + h) − L(p − h)) / 2h of the training-mode loss, entry by entry,
    with the same dropout masks every time (the generator is rewound before each evaluation)."""
    start = nb.rng.bit_generator.state

    def loss() -> float:
        nb.rng.bit_generator.state = start
        return nm.forward(nb.params, X, Y, nb.spec, train=True, rng=nb.rng)[1]

    grads = {}
    for name, p in nb.params.items():
        if not nm.trainable(name):
            continue
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            up = loss()
            p[i] = old - h
            down = loss()
            p[i] = old
            g[i] = (up - down) / (2 * h)
        grads[name] = g
    nb.rng.bit_generator.state = start
    return grads


@pytest.mark.parametrize("options", [dict(), dict(activation="gelu", norm="batchnorm", dropout=0.25), dict(n_layers=2, norm="layernorm")],
                         ids=["tanh", "gelu-batchnorm-dropout", "2-layers-layernorm"])
def test_numpy_gradients_match_finite_differences(options):
    cfg = make_cfg(**options)
    cfg.model.n_embd, cfg.model.n_hidden = 2, 5
    nb = NumpyBackend(cfg, V, dtype=np.float64)
    X, Y = batch(1, 8)
    numeric = finite_difference_grads(nb, X, Y)
    _, analytic, _ = nb.loss_and_grads(X, Y)
    errors = rel_errors(analytic, numeric)
    assert max(errors.values()) <= 1e-6, errors


# Plausible mistakes in the backward pass, one line each; the gradient check must catch every one.
def tanh_without_square(dh, a, h, kind):
    return (1.0 - h) * dh  # wrong: tanh' is 1 − h², not 1 − h


def batchnorm_without_variance_path(dy, xhat, inv_std, gamma):
    dgamma, dbeta = (dy * xhat).sum(0), dy.sum(0)
    return gamma * inv_std / dy.shape[0] * (dy.shape[0] * dy - dbeta), dgamma, dbeta  # wrong: drops −x̂·Σ(dy·x̂)


def embedding_overwrite(demb, X, onehot_rows):
    dC = np.zeros((onehot_rows.shape[0], demb.shape[-1]))
    dC[X.reshape(-1)] = demb.reshape(-1, demb.shape[-1])  # wrong: a repeated character keeps one gradient, not the sum
    return dC


def make_perturbed_backward(name: str):
    original = nm.backward

    def perturbed(*args, **kwargs):
        grads = original(*args, **kwargs)
        grads[name] = grads[name].copy()
        grads[name].flat[0] *= 1.0 + 1e-5  # one entry of one gradient off by a relative 1e-5
        return grads

    return perturbed


@pytest.mark.parametrize(
    "target, replacement, options",
    [
        ("activation_backward", tanh_without_square, dict()),
        ("batchnorm_backward", batchnorm_without_variance_path, dict(norm="batchnorm")),
        ("embedding_backward", embedding_overwrite, dict()),
        ("backward", make_perturbed_backward("W1"), dict(n_layers=2, norm="layernorm")),
    ],
    ids=["tanh-derivative", "batchnorm-missing-term", "embedding-overwrites", "W1-off-by-1e-5"],
)
def test_gradient_check_catches_a_broken_backward(target, replacement, options, monkeypatch):
    cfg = make_cfg(**options)
    _, good = numpy_vs_autograd(cfg, monkeypatch)
    assert max(good.values()) <= 1e-7
    monkeypatch.setattr(nm, target, replacement)
    _, broken = numpy_vs_autograd(cfg, monkeypatch)
    assert max(broken.values()) > 1e-7, broken


@pytest.mark.parametrize(
    "optimizer, weight_decay, options",
    [("sgd", 0.0, dict()), ("sgd", 0.01, dict(norm="batchnorm")), ("momentum", 0.01, dict(norm="layernorm")), ("adamw", 0.1, dict(n_layers=2))],
)
def test_numpy_optimizers_follow_torch_optim(optimizer, weight_decay, options):
    """Five steps at changing learning rates, float64: the numpy update rules give torch.optim's
    parameters and BatchNorm running statistics."""
    cfg = make_cfg(**options)
    cfg.train.optimizer, cfg.train.weight_decay = optimizer, weight_decay
    nb = NumpyBackend(cfg, V, dtype=np.float64)
    model = torch_model(cfg)
    opt = make_optimizer([p for p in model.parameters()], cfg)
    for step in range(5):
        X, Y = batch(step)
        lr = 0.1 / (step + 1)
        nb.train_step(X, Y, lr)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        model(torch.from_numpy(X), torch.from_numpy(Y))[1].backward()
        opt.step()
    for name, ref in model.state_dict().items():
        ours = nb.params[name]
        if bias_before_batchnorm(name, cfg):
            continue
        np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_numpy_eval_mode_uses_running_statistics_like_torch():
    cfg = make_cfg(norm="batchnorm", n_layers=2)
    nb = NumpyBackend(cfg, V, dtype=np.float64)
    for step in range(3):
        nb.train_step(*batch(step), 0.1)
    model = torch_model(cfg)
    model.load_state_dict({k: torch.as_tensor(v) for k, v in nb.params.items()})
    X, Y = batch(9, 40)
    expected = torch.nn.functional.cross_entropy(model.eval()(torch.from_numpy(X))[0], torch.from_numpy(Y)).item()
    assert nb.mean_loss(Windows.of_arrays(X, Y)) == pytest.approx(expected, rel=1e-12)
    assert nb.params["norm1.num_batches_tracked"] == 3


def load_cfg(words: Path, backend: str, steps: int, extra: tuple[str, ...] = ()) -> Config:
    return tiny_cfg(words, steps, f"train.backend={backend}", *extra)


@pytest.mark.parametrize("backend", ["numpy", with_mlx("mlx")])
def test_backend_run_loads_everywhere_and_resumes_exactly(backend, tiny_words_file, tmp_path, runner):
    """A run trained by the backend is read by evaluate and sample as any torch run, and a run
    stopped at step 40 and resumed ends with exactly the parameters of an uninterrupted one
    (optimizer moments and the dropout generator are in the checkpoint)."""
    from makemore.evaluate import evaluate_run
    from makemore.runs import load_checkpoint, load_run
    from makemore.sample import sample

    extra = ("train.optimizer=adamw", "train.weight_decay=0.01", "model.norm=batchnorm", "model.dropout=0.2", "train.lr=0.01")
    straight = train(load_cfg(tiny_words_file, backend, 80, extra), tmp_path / "straight")
    half = load_cfg(tiny_words_file, backend, 80, (*extra, "train.steps=40"))  # the same run, stopped at step 40
    train(half, tmp_path / "resumed")
    resumed = train(load_cfg(tiny_words_file, backend, 80, extra), tmp_path / "resumed", resume=True)

    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a["backend"] == b["backend"] == backend
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert resumed.dev_loss == straight.dev_loss
    # evaluate and sample read the run through the torch model: same numbers as the backend's own
    assert evaluate_run(tmp_path / "straight", ["dev"])["dev"] == pytest.approx(straight.dev_loss, abs=1e-5)
    run = load_run(tmp_path / "straight")
    words = sample(run.model, run.vocab, 5, torch.Generator().manual_seed(0))
    assert len(words) == 5
    assert json.loads((tmp_path / "straight" / "summary.json").read_text())["steps"] == 80
    from makemore.cli import app

    result = runner.invoke(app, ["plot-emb", str(tmp_path / "straight"), "--out", str(tmp_path / "emb.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "emb.png").stat().st_size > 0


def test_mlx_backend_without_mlx_says_how_to_install(monkeypatch):
    import makemore.backends.mlx_mlp as mlx_mlp
    from makemore.errors import MakemoreError

    monkeypatch.setattr(mlx_mlp, "mx", None)
    with pytest.raises(MakemoreError, match=r"pip install 'makemore\[mlx\]'"):
        mlx_mlp.MLXBackend(make_cfg(), V)


@pytest.mark.parametrize("backend", ["numpy", with_mlx("mlx")])
def test_backends_follow_the_same_trajectory(backend, tiny_words_file, tmp_path):
    """Same initial weights, same minibatches: after 60 SGD steps of the lecture model the torch
    backend and this one end at the same dev loss to float32 rounding."""
    dev = {b: train(load_cfg(tiny_words_file, b, 60), tmp_path / b).dev_loss for b in ("torch", backend)}
    assert dev[backend] == pytest.approx(dev["torch"], abs=1e-4), dev


def bias_before_batchnorm(name: str, cfg: Config) -> bool:
    """A hidden layer's bias feeding BatchNorm: its true gradient is 0, so an optimizer moves it by
    rounding noise only (and Adam, which normalises the step, by a full step of noise)."""
    return cfg.model.norm == "batchnorm" and name[0] == "b" and name[1:].isdigit() and int(name[1:]) <= cfg.model.n_layers


@pytest.mark.parametrize(
    "options, optimizer",
    [(dict(), "sgd"), (dict(norm="batchnorm", n_layers=2, activation="gelu"), "momentum"), (dict(norm="layernorm", activation="relu"), "adamw")],
)
@needs_mlx
def test_mlx_steps_match_numpy(options, optimizer):
    """MLX's autodiff and mlx.optimizers take the steps the hand-written numpy backend takes (float32)."""
    from makemore.backends.mlx_mlp import MLXBackend

    cfg = make_cfg(**options)
    cfg.train.optimizer, cfg.train.weight_decay = optimizer, 0.01
    mb, nb = MLXBackend(cfg, V), NumpyBackend(cfg, V)
    for step in range(10):
        X, Y = batch(step)
        ours = float(mb.train_step(mb.asarray(X), mb.asarray(Y), 0.05))
        assert ours == pytest.approx(nb.train_step(X, Y, 0.05), abs=1e-5)
    a, b = mb.export_params(), nb.export_params()
    assert sorted(a) == sorted(b)
    for name in a:
        if bias_before_batchnorm(name, cfg):
            continue
        np.testing.assert_allclose(a[name], b[name], atol=2e-4, err_msg=name)
    X, Y = batch(11, 40)
    assert mb.mean_loss(Windows.of_arrays(X, Y)) == pytest.approx(nb.mean_loss(Windows.of_arrays(X, Y)), abs=1e-5)


# ---------------------------------------------------------------------------------------------
# Mutation coverage (issue 15, item 7): a plausible one-line mistake in each piece of the
# hand-written backward and of each optimizer, made in the source of the real function, must be
# caught both by the comparison with autograd / torch.optim and by a finite-difference check.


def fd_vs_analytic(cfg: Config) -> dict[str, float]:
    """Relative error per parameter of NumpyBackend's gradients against central differences (float64)."""
    cfg.model.n_embd, cfg.model.n_hidden = 2, 5
    nb = NumpyBackend(cfg, V, dtype=np.float64)
    X, Y = batch(1, 8)
    numeric = finite_difference_grads(nb, X, Y)
    _, analytic, _ = nb.loss_and_grads(X, Y)
    return rel_errors(analytic, numeric)


GRADIENT_MUTANTS = [
    ("layernorm-missing-term", "layernorm_backward", " - xhat * (g * xhat).sum(1, keepdims=True)", "", dict(norm="layernorm")),
    ("relu-derivative-unmasked", "activation_backward", "return dh * (a > 0)", "return dh", dict(activation="relu")),
    ("gelu-derivative", "activation_backward", "(1.0 + 3.0 * GELU_C * a * a)", "(1.0 + GELU_C * a * a)", dict(activation="gelu")),
    ("dropout-mask-unscaled", "backward", 'dx = dx * layer["mask"]', 'dx = dx * (layer["mask"] > 0)', dict(dropout=0.3)),
    ("bias-mean-not-sum", "backward", 'grads[f"b{i}"] = da.sum(0)', 'grads[f"b{i}"] = da.mean(0)', dict()),
]


@pytest.mark.parametrize("name, target, old, new, options", GRADIENT_MUTANTS, ids=[m[0] for m in GRADIENT_MUTANTS])
def test_every_backward_mutant_is_caught_by_autograd_and_finite_differences(name, target, old, new, options, monkeypatch):
    cfg = make_cfg(**options)
    assert max(numpy_vs_autograd(cfg, monkeypatch)[1].values()) <= 1e-7  # the real code passes both checks
    assert max(fd_vs_analytic(make_cfg(**options)).values()) <= 1e-6
    monkeypatch.setattr(nm, target, mutant(nm, target, old, new))
    assert max(numpy_vs_autograd(cfg, monkeypatch)[1].values()) > 1e-7, "the autograd comparison misses it"
    assert max(fd_vs_analytic(make_cfg(**options)).values()) > 1e-6, "the finite-difference check misses it"


def optimizer_steps_vs_torch(cfg: Config, gradients: str, steps: int = 3) -> float:
    """Largest difference between parameters after `steps` updates of NumpyBackend's optimizer and
    of torch.optim, from the same weights, in float64.

    gradients = "autograd": each side computes its own gradients (the numpy backward, autograd);
    gradients = "finite-differences": both are handed the same central-difference gradients, so
    the optimizers' update rules alone are compared.
    """
    cfg.model.n_embd, cfg.model.n_hidden = 2, 5
    nb = NumpyBackend(cfg, V, dtype=np.float64)
    model = torch_model(cfg)
    opt = make_optimizer(list(model.parameters()), cfg)
    for step in range(steps):
        X, Y = batch(step, 8)
        lr = 0.1 / (step + 1)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        if gradients == "autograd":
            nb.train_step(X, Y, lr)
            model(torch.from_numpy(X), torch.from_numpy(Y))[1].backward()
        else:
            numeric = finite_difference_grads(nb, X, Y)
            nb.optimizer.step(nb.params, {k: v.copy() for k, v in numeric.items()}, lr)
            for n, p in model.named_parameters():
                p.grad = torch.from_numpy(numeric[n].copy())
        opt.step()
    return max(float(np.abs(nb.params[n] - p.detach().numpy()).max()) for n, p in model.named_parameters())


OPTIMIZER_MUTANTS = [
    ("sgd-weight-decay-dropped", "sgd", "g = g + wd * p", "g = g + 0.0 * p"),
    ("momentum-buffer-dampened", "momentum", "buf += g\n", "buf += (1.0 - self.momentum) * g\n"),
    ("adamw-no-bias-correction", "adamw", "step_size = lr / (1.0 - b1**self.step_count)", "step_size = lr"),
]


@pytest.mark.parametrize("name, optimizer, old, new", OPTIMIZER_MUTANTS, ids=[m[0] for m in OPTIMIZER_MUTANTS])
def test_every_optimizer_mutant_is_caught_by_torch_optim_and_finite_differences(name, optimizer, old, new, monkeypatch):
    def cfg() -> Config:
        c = make_cfg()
        c.train.optimizer, c.train.weight_decay, c.train.momentum = optimizer, 0.1, 0.9
        return c

    for gradients in ("autograd", "finite-differences"):
        assert optimizer_steps_vs_torch(cfg(), gradients) <= 1e-8, gradients  # the real update rules pass
    monkeypatch.setattr(nm.Optimizer, "step", mutant(nm.Optimizer, "step", old, new))
    for gradients in ("autograd", "finite-differences"):
        assert optimizer_steps_vs_torch(cfg(), gradients) > 1e-6, f"{gradients}: the comparison misses it"
