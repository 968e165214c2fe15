"""The Bengio et al. (2003) MLP with every gradient derived by hand, in NumPy: no autograd.

Read it next to "makemore part 2" (the model) and "part 4: becoming a backprop ninja" (the
backward pass). Shapes: B = batch size, T = block_size, E = n_embd, H = n_hidden, V = vocab_size.
Forward (lecture model, n_layers = 1, norm = "none", activation = "tanh"):

    emb    = C[X]                          # (B, T, E)
    embcat = emb.reshape(B, T·E)           # (B, T·E)
    hpre   = embcat @ W1 + b1              # (B, H)
    h      = tanh(hpre)                    # (B, H)
    logits = h @ W2 + b2                   # (B, V)
    loss   = mean_i( logsumexp(logits_i) − logits_i[Y_i] )     # scalar, nats/char

Backward, each line one step of the chain rule, from the loss down to the embedding table:

    dlogits = (softmax(logits) − onehot(Y)) / B          # (B, V)   ∂loss/∂logits
    dW2     = hᵀ · dlogits                               # (H, V)   logits = h @ W2 + b2
    db2     = Σ_batch dlogits                            # (V,)     b2 is broadcast over the batch
    dh      = dlogits · W2ᵀ                              # (B, H)
    dhpre   = (1 − h²) ⊙ dh                              # (B, H)   tanh' = 1 − tanh²
    dW1     = embcatᵀ · dhpre                            # (T·E, H)
    db1     = Σ_batch dhpre                              # (H,)
    demb    = (dhpre · W1ᵀ).reshape(B, T, E)             # (B, T, E)
    dC      = Σ over every (b, t) with X[b, t] = v of demb[b, t]   # (V, E) scatter-add

On a labelled words file the model is conditional: hpre = embcat @ W1 + b1 + label_emb[label],
label_emb (K, H) one vector per label, so d label_emb is the scatter-add of dhpre (B, H) into
the rows label (B,) it was gathered from, as dC is of demb.

Beyond the lecture, every option of makemore.models.mlp.MLP has its backward here too:
several hidden layers, relu and gelu (tanh approximation), BatchNorm (batch statistics in
training, running statistics in evaluation, as torch.nn.BatchNorm1d) and LayerNorm after each
hidden linear layer, inverted dropout after each activation. The optimizers reproduce
torch.optim's SGD (L2 weight decay added to the gradient, optional momentum) and AdamW
(decoupled weight decay), so the numpy backend trains the same model the torch backend does.

Parameters are held under the torch model's state_dict names, initialised by building the
torch model with torch.Generator().manual_seed(train.seed) and converting its state_dict, so
both backends start from identical weights and write interchangeable checkpoints.

Sources: Y. Bengio et al., "A Neural Probabilistic Language Model", JMLR 3 (2003); A. Karpathy,
"Building makemore" parts 2-4 (2022); S. Ioffe & C. Szegedy, "Batch Normalization" (2015);
J. Ba et al., "Layer Normalization" (2016); I. Loshchilov & F. Hutter, "Decoupled Weight Decay
Regularization" (2019).
"""

from __future__ import annotations

import dataclasses
import json
import math
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from makemore.backends.base import MLP_FAMILY, check_shapes, small_step
from makemore.config import ADAM_BETAS, ADAM_EPS, Config, ModelConfig
from makemore.data import View, mean_over
from makemore.errors import MakemoreError
from makemore.models import initial_state
from makemore.models.constants import BN_MOMENTUM, GELU_C, GELU_K, NORM_EPS, activation_name
from makemore.stats import step_stats
from makemore.threads import scoped

@dataclass(frozen=True)
class Spec:
    """The architecture options the forward and backward passes branch on (from [model])."""

    n_layers: int = 1
    activation: str = "tanh"
    norm: str = "none"
    dropout: float = 0.0

    @classmethod
    def from_config(cls, m: ModelConfig) -> Spec:
        return cls(m.n_layers, m.activation, m.norm, m.dropout)


def trainable(name: str) -> bool:
    """True for parameters, False for BatchNorm's buffers (running statistics, batch counter)."""
    return not (name.endswith("running_mean") or name.endswith("running_var") or name.endswith("num_batches_tracked"))


# ---------------------------------------------------------------------------------------------
# The pieces of the forward pass and, next to each, its backward: (upstream gradient, what the
# forward saved) → gradients of its inputs and parameters.
# ---------------------------------------------------------------------------------------------


def activation_forward(a: np.ndarray, kind: str) -> np.ndarray:
    """h = act(a), elementwise, (B, H) → (B, H)."""
    if kind == "tanh":
        return np.tanh(a)  # (B, H)
    if kind == "relu":
        return np.maximum(a, 0)  # (B, H)
    return 0.5 * a * (1.0 + np.tanh(GELU_K * (a + GELU_C * a**3)))  # (B, H) gelu, tanh approximation


def activation_backward(dh: np.ndarray, a: np.ndarray, h: np.ndarray, kind: str) -> np.ndarray:
    """da = act'(a) ⊙ dh, (B, H): the activation is elementwise, so its Jacobian is diagonal."""
    if kind == "tanh":
        da = h * h  # (B, H)
        np.subtract(1.0, da, out=da)  # (B, H) tanh'(a) = 1 − tanh(a)² = 1 − h²
        da *= dh  # (B, H)
        return da
    if kind == "relu":
        return dh * (a > 0)  # (B, H) relu'(a) = [a > 0]
    u = GELU_K * (a + GELU_C * a**3)  # (B, H) gelu(a) = ½·a·(1 + tanh u)
    t = np.tanh(u)  # (B, H)
    # d/da ½a(1 + tanh u) = ½(1 + tanh u) + ½a·(1 − tanh² u)·du/da,  du/da = k(1 + 3c·a²)
    return (0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * a * a)) * dh  # (B, H)


def batchnorm_backward(dy: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of y = γ·(x − μ_B)/√(σ²_B + ε) + β with the batch's mean μ_B and biased variance σ²_B.

    dy, xhat (B, H); inv_std, gamma (H,). Returns dx (B, H), dγ (H,), dβ (H,). Every row of the batch
    feeds μ_B and σ²_B, so dx collects three paths (lecture part 4, exercise 3, here with the
    biased variance torch normalises with in training):
        dx = γ/(B·√(σ²+ε)) · (B·dy − Σ_b dy − x̂ ⊙ Σ_b (dy ⊙ x̂))
    """
    dgamma = (dy * xhat).sum(0)  # (H,)  y = γ·x̂ + β
    dbeta = dy.sum(0)  # (H,)
    B = dy.shape[0]
    dx = (gamma * inv_std / B) * (B * dy - dbeta - xhat * dgamma)  # (B, H)
    return dx, dgamma, dbeta


def layernorm_backward(dy: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of y = γ·(x − μ_row)/√(σ²_row + ε) + β: BatchNorm's formula along each row instead.

    dy, xhat (B, H); inv_std (B, 1); gamma (H,). Returns dx (B, H), dγ (H,), dβ (H,).
        dx = 1/(H·√(σ²+ε)) · (H·g − Σ_h g − x̂ ⊙ Σ_h (g ⊙ x̂)),  g = γ ⊙ dy
    """
    dgamma = (dy * xhat).sum(0)  # (H,)
    dbeta = dy.sum(0)  # (H,)
    g = dy * gamma  # (B, H) ∂loss/∂x̂
    H = dy.shape[1]
    dx = (inv_std / H) * (H * g - g.sum(1, keepdims=True) - xhat * (g * xhat).sum(1, keepdims=True))  # (B, H)
    return dx, dgamma, dbeta


def embedding_backward(demb: np.ndarray, X: np.ndarray, onehot_rows: np.ndarray) -> np.ndarray:
    """dC (V, E): the scatter-add of demb (B, T, E) into the rows X (B, T) it was gathered from.

    A character seen k times in the batch receives the sum of its k gradients. Written as a
    matmul with the one-hot rows of X, onehot(X)ᵀ · demb, because NumPy's np.add.at is slow.
    onehot_rows is the identity matrix (V, V) in the parameters' dtype.
    """
    E = demb.shape[-1]
    return onehot_rows[X.reshape(-1)].T @ demb.reshape(-1, E)  # (V, B·T) · (B·T, E) = (V, E)


# ---------------------------------------------------------------------------------------------
# The whole model
# ---------------------------------------------------------------------------------------------


def norm_forward(a: np.ndarray, params: dict[str, np.ndarray], name: str, kind: str, train: bool, layer: dict[str, Any],
                 batch_stats: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """BatchNorm (Ioffe & Szegedy 2015; lecture part 3) or LayerNorm (Ba et al. 2016) of a layer's
    pre-activations a (B, H), as γ·x̂ + β with the parameters and buffers under `name`.

    Keeps x̂ (B, H) and 1/σ ((H,) or (B, 1)) in `layer` for the backward pass; in training a
    BatchNorm appends its batch (mean, biased variance) to `batch_stats` for the running statistics.
    """
    if kind == "batchnorm":
        if train:
            mu = a.mean(0)  # (H,) batch mean
            xc = a - mu  # (B, H)
            var = (xc * xc).mean(0)  # (H,) biased batch variance (what torch normalises with)
            batch_stats.append((mu, var))
        else:
            xc = a - params[f"{name}.running_mean"]  # (B, H)
            var = params[f"{name}.running_var"]  # (H,)
        inv_std = 1.0 / np.sqrt(var + NORM_EPS)  # (H,)
    else:
        xc = a - a.mean(1, keepdims=True)  # (B, H) centred along each row
        inv_std = 1.0 / np.sqrt((xc * xc).mean(1, keepdims=True) + NORM_EPS)  # (B, 1)
    xhat = xc * inv_std  # (B, H)
    layer.update(xhat=xhat, inv_std=inv_std)
    return xhat * params[f"{name}.weight"] + params[f"{name}.bias"]  # (B, H) γ·x̂ + β


def forward(
    params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray | None, spec: Spec, *, train: bool, rng: np.random.Generator | None = None,
    label: np.ndarray | None = None,
) -> tuple[np.ndarray, float | None, dict[str, Any]]:
    """The MLP's forward pass.

    Args:
        params: state_dict names → arrays (C (V, E), W1 (T·E, H), b1 (H,), ..., norm buffers).
        X: int (B, T) contexts; Y: int (B,) targets, or None for logits only.
        spec: architecture options.
        train: BatchNorm uses batch statistics and dropout is applied; else running statistics, no dropout.
        rng: dropout's generator (needed when train and spec.dropout > 0); masks are drawn from
            rng.random((B, H)) one hidden layer after another.
        label: int (B,) label ids on labelled data (params then hold label_emb (K, H)), else None.

    Returns:
        logits (B, V); loss, the mean NLL in nats/char (None without Y); the cache `backward` needs
        (it also holds the batch statistics under "batch_stats" for the running-statistics update).
    """
    B = X.shape[0]
    emb = params["C"][X]  # (B, T, E)
    x = emb.reshape(B, -1)  # (B, T·E) embcat: the context's embeddings side by side
    layers = []
    batch_stats = []
    for i in range(1, spec.n_layers + 1):
        layer: dict[str, Any] = {"x": x}
        a = x @ params[f"W{i}"]  # (B, H) hpre = x·Wi + bi
        a += params[f"b{i}"]
        if i == 1 and label is not None:
            a += params["label_emb"][label]  # (B, H) + the label's vector
        if spec.norm != "none":
            a = norm_forward(a, params, f"norm{i}", spec.norm, train, layer, batch_stats)  # (B, H)
        h = activation_forward(a, spec.activation)  # (B, H)
        layer.update(a=a, h=h)
        if spec.dropout > 0 and train:
            keep = rng.random(h.shape, dtype=np.float32) >= spec.dropout  # (B, H) bool, as torch.rand(...) >= p
            mask = keep * h.dtype.type(1.0 / (1.0 - spec.dropout))  # (B, H) 0 or 1/(1−p): inverted dropout
            h = h * mask  # (B, H)
            layer["mask"] = mask
        layers.append(layer)
        x = h
    out = spec.n_layers + 1
    logits = x @ params[f"W{out}"]  # (B, V) = h·W2 + b2
    logits += params[f"b{out}"]
    cache = {"X": X, "layers": layers, "h_last": x, "batch_stats": batch_stats, "label": label}
    if Y is None:
        return logits, None, cache
    # cross-entropy through log-sum-exp: subtracting the row max keeps exp() from overflowing
    shifted = logits - logits.max(1, keepdims=True)  # (B, V)
    e = np.exp(shifted)  # (B, V)
    sum_e = e.sum(1, keepdims=True)  # (B, 1)
    loss = float((np.log(sum_e[:, 0]).sum() - shifted[np.arange(B), Y].sum()) / B)  # scalar: mean(logsumexp − logit of target)
    e /= sum_e  # (B, V) softmax
    cache.update(probs=e, Y=Y)
    return logits, loss, cache


def backward(params: dict[str, np.ndarray], cache: dict[str, Any], spec: Spec, onehot_rows: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the mean NLL with respect to every trainable parameter, by the chain rule.

    Args:
        params: the parameters `forward` ran with.
        cache: what `forward` returned (with targets, in training mode or not); its softmax is
            overwritten by dlogits, so call `backward` once per `forward`.
        spec: architecture options.
        onehot_rows: identity (V, V) in the parameters' dtype (see embedding_backward).

    Returns:
        state_dict name → gradient of the same shape as the parameter.
    """
    X, Y, probs = cache["X"], cache["Y"], cache["probs"]
    B = X.shape[0]
    grads: dict[str, np.ndarray] = {}
    dlogits = probs  # (B, V)  ∂(logsumexp − logit_y)/∂logits = softmax − onehot(y), in place of the cached softmax
    dlogits[np.arange(B), Y] -= 1.0
    dlogits *= 1.0 / B  # (B, V)  the loss is a mean over the batch
    out = spec.n_layers + 1
    h = cache["h_last"]  # (B, H)
    grads[f"W{out}"] = h.T @ dlogits  # (H, V)  logits = h·W + b
    grads[f"b{out}"] = dlogits.sum(0)  # (V,)
    dx = dlogits @ params[f"W{out}"].T  # (B, H)
    for i in range(spec.n_layers, 0, -1):
        layer = cache["layers"][i - 1]
        if "mask" in layer:
            dx = dx * layer["mask"]  # (B, H)  h_out = h ⊙ mask
        da = activation_backward(dx, layer["a"], layer["h"], spec.activation)  # (B, H)
        if spec.norm != "none":
            norm_backward = batchnorm_backward if spec.norm == "batchnorm" else layernorm_backward
            da, grads[f"norm{i}.weight"], grads[f"norm{i}.bias"] = norm_backward(
                da, layer["xhat"], layer["inv_std"], params[f"norm{i}.weight"]
            )  # (B, H), (H,), (H,)
        grads[f"W{i}"] = layer["x"].T @ da  # (fan_in, H)  a = x·Wi + bi
        grads[f"b{i}"] = da.sum(0)  # (H,)
        if i == 1 and cache["label"] is not None:
            K = params["label_emb"].shape[0]
            grads["label_emb"] = np.eye(K, dtype=da.dtype)[cache["label"]].T @ da  # (K, B)·(B, H) = (K, H) scatter-add
        dx = da @ params[f"W{i}"].T  # (B, fan_in)
    T = X.shape[1]
    demb = dx.reshape(B, T, -1)  # (B, T, E)  undo the concatenation
    grads["C"] = embedding_backward(demb, X, onehot_rows)  # (V, E)
    return grads


# ---------------------------------------------------------------------------------------------
# Optimizers: torch.optim's update rules, in place
# ---------------------------------------------------------------------------------------------


class Optimizer:
    """torch.optim.SGD (optionally with momentum) or torch.optim.AdamW, on NumPy arrays in place.

    sgd/momentum: g ← g + wd·p (L2); buf ← μ·buf + g (buf = g at the first step); p ← p − lr·buf.
    adamw: p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
           p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)      (Loshchilov & Hutter 2019; torch's defaults)
    """

    def __init__(self, kind: str, momentum: float, weight_decay: float):
        self.kind, self.momentum, self.weight_decay = kind, momentum, weight_decay
        self.step_count = 0
        self.buffers: dict[str, dict[str, np.ndarray]] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        """Update `params` in place from `grads` (which may be scaled in place) at learning rate `lr`."""
        self.step_count += 1
        wd = self.weight_decay
        if self.kind == "adamw":
            b1, b2 = ADAM_BETAS
            m_all, v_all = self.buffers.setdefault("exp_avg", {}), self.buffers.setdefault("exp_avg_sq", {})
            step_size = lr / (1.0 - b1**self.step_count)
            bc2_sqrt = math.sqrt(1.0 - b2**self.step_count)
            for name, g in grads.items():
                p = params[name]
                if wd:
                    p *= 1.0 - lr * wd
                m = m_all.setdefault(name, np.zeros_like(p))
                v = v_all.setdefault(name, np.zeros_like(p))
                m += (1.0 - b1) * (g - m)  # β₁m + (1−β₁)g
                v *= b2
                v += (1.0 - b2) * g * g
                p -= step_size * m / (np.sqrt(v) / bc2_sqrt + ADAM_EPS)
            return
        use_momentum = self.kind == "momentum" and self.momentum > 0
        bufs = self.buffers.setdefault("momentum_buffer", {})
        for name, g in grads.items():
            p = params[name]
            if wd:
                g = g + wd * p
            if use_momentum:
                buf = bufs.get(name)
                if buf is None:
                    buf = bufs[name] = g.copy()
                else:
                    buf *= self.momentum
                    buf += g
                g = buf
            if g is grads[name]:
                g *= lr  # the gradient is ours to scale in place
                p -= g
            else:
                p -= lr * g

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step_count, "buffers": {k: {n: a.copy() for n, a in d.items()} for k, d in self.buffers.items()}}

    def load(self, state: dict[str, Any], dtype: np.dtype) -> None:
        if state.get("kind") != self.kind:
            raise MakemoreError(f"the checkpoint's optimizer state is for {state.get('kind')!r}, but train.optimizer = {self.kind!r}")
        self.step_count = int(state["step"])
        self.buffers = {k: {n: _to_numpy(a, dtype) for n, a in d.items()} for k, d in state["buffers"].items()}


def _to_numpy(value: Any, dtype: Any = None) -> np.ndarray:
    """A torch tensor or array-like → a fresh NumPy array (in `dtype` if given)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------------


class NumpyBackend:
    """The MLP trained by the hand-written forward/backward above (train.backend = "numpy").

    Args:
        cfg: the config; [model] must be an MLP (see MLP_FAMILY), [train] names the optimizer.
        vocab_size: tokens, boundary included.
        device: "cpu" (the only one).
        block_size: characters of context; default data.block_size.
        dtype: np.float32 for training (the default); np.float64 for gradient checks.
        n_labels: the labels of a labelled words file (label_emb (n_labels, n_hidden)); 0 unlabelled.

    Initial weights are the torch model's for train.seed (identical across backends); dropout
    draws from np.random.default_rng(train.seed + 1), whose state is saved in export_state.
    """

    name = "numpy"
    takes_steps = True
    SUPPORTS = dataclasses.replace(MLP_FAMILY, records_stats=True, labels=True)

    def __init__(self, cfg: Config, vocab_size: int, device: str = "cpu", block_size: int | None = None, dtype: Any = np.float32,
                 n_labels: int = 0):
        self.summary_extra: dict[str, Any] = {}
        self.spec = Spec.from_config(cfg.model)
        self.dtype = np.dtype(dtype)
        initial = initial_state(cfg, vocab_size, block_size, n_labels)
        self.params: dict[str, np.ndarray] = {k: _to_numpy(v, self.dtype if v.dtype.kind == "f" else None) for k, v in initial.items()}
        # NumPy's matrix products run on BLAS's own threads: the same rule as torch's (entered in `threads`)
        self.n_threads = cfg.train.threads or (1 if small_step(cfg, sum(v.size for v in initial.values())) else None)
        self.optimizer = Optimizer(cfg.train.optimizer, cfg.train.momentum, cfg.train.weight_decay)
        self.rng = np.random.default_rng(cfg.train.seed + 1)
        self.onehot_rows = np.eye(vocab_size, dtype=self.dtype)  # (V, V)

    def threads(self) -> AbstractContextManager[None]:
        """The scope training runs in: `n_threads` BLAS threads (train.threads; else one for a small
        step, makemore.backends.base.small_step; else the process's own), restored when it ends."""
        return scoped(self.n_threads)

    def asarray(self, a: np.ndarray) -> np.ndarray:
        return a

    def loss_and_grads(self, X: np.ndarray, Y: np.ndarray, label: np.ndarray | None = None) -> tuple[float, dict[str, np.ndarray], dict[str, Any]]:
        """Training-mode forward and backward on one minibatch (label: int (B,) ids on labelled data): (mean NLL, gradients, cache)."""
        _, loss, cache = forward(self.params, X, Y, self.spec, train=True, rng=self.rng, label=label)
        return loss, backward(self.params, cache, self.spec, self.onehot_rows), cache

    def train_step(self, X: np.ndarray, Y: np.ndarray, lr: float, label: np.ndarray | None = None) -> float:
        loss, grads, cache = self.loss_and_grads(X, Y, label)
        self.update(grads, cache, lr)
        return loss

    def update(self, grads: dict[str, np.ndarray], cache: dict[str, Any], lr: float) -> None:
        """The step's update: BatchNorm's running statistics, then the optimizer (which may scale `grads` in place)."""
        self.update_running_stats(cache["batch_stats"], cache["X"].shape[0])
        self.optimizer.step(self.params, grads, lr)

    def recorded_step(self, X: np.ndarray, Y: np.ndarray, lr: float, label: np.ndarray | None = None) -> tuple[float, dict[str, Any]]:
        """`train_step`, returning the step's statistics too (makemore.stats): each hidden layer's
        output h from the forward cache (before dropout, as the torch model's activation module
        outputs it), each parameter's gradient, and its value before and after the optimizer."""
        loss, grads, cache = self.loss_and_grads(X, Y, label)
        hidden = [(activation_name(i), self.spec.activation, layer["h"]) for i, layer in enumerate(cache["layers"], start=1)]  # h (B, H)
        names = [name for name in self.params if name in grads]  # state_dict order, as the torch model's parameters
        before = {name: (self.params[name].copy(), grads[name].copy()) for name in names}  # the optimizer may scale grads in place
        self.update(grads, cache, lr)
        return loss, step_stats(hidden, [(n, self.params[n], before[n][1], self.params[n] - before[n][0]) for n in names])

    def update_running_stats(self, batch_stats: list[tuple[np.ndarray, np.ndarray]], B: int) -> None:
        """BatchNorm's running statistics, as torch: r ← (1 − 0.1)·r + 0.1·batch value, with the
        unbiased variance (σ²·B/(B − 1)) going into running_var."""
        for i, (mu, var) in enumerate(batch_stats, start=1):
            rm, rv = self.params[f"norm{i}.running_mean"], self.params[f"norm{i}.running_var"]
            rm += BN_MOMENTUM * (mu - rm)  # (H,)
            rv += BN_MOMENTUM * (var * (B / max(B - 1, 1)) - rv)  # (H,)
            self.params[f"norm{i}.num_batches_tracked"] += 1

    def mean_loss(self, view: View) -> float:
        def nll_sum(X: np.ndarray, Y: np.ndarray, L: np.ndarray | None = None) -> float:  # (b, T), (b,), labels (b,)
            _, loss, _ = forward(self.params, X, Y, self.spec, train=False, label=L)
            return loss * len(Y)

        return mean_over(view, nll_sum)

    def export_params(self) -> dict[str, np.ndarray]:
        return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v.copy()) for k, v in self.params.items()}

    def export_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state(), "dropout_rng": json.dumps(self.rng.bit_generator.state)}

    def load(self, params: dict[str, Any], state: dict[str, Any] | None) -> None:
        loaded = {k: _to_numpy(v) for k, v in params.items()}
        check_shapes(self.params, loaded)  # a checkpoint of another model size must not be trained on
        self.params = {k: (v.astype(self.dtype) if v.dtype.kind == "f" else v) for k, v in loaded.items()}
        if state:
            if "dropout_rng" not in state or not isinstance(state["dropout_rng"], str) or "optimizer" not in state:
                raise MakemoreError("the checkpoint's optimizer state was written by another backend; resume it with the backend that trained it")
            self.optimizer.load(state["optimizer"], self.dtype)
            self.rng.bit_generator.state = json.loads(state["dropout_rng"])


class NumpyMLP:
    """A NumPy-trained MLP run's model for answers (evaluate, sample, score) on NumPy alone: the
    same `forward` the backend trains with, in evaluation mode (running statistics, no dropout).
    It offers what the evaluators and samplers ask of a torch model: `block_size`, `model(idx)` →
    (logits, None), `state_dict()`, `eval()`, and `nll_per_target(view)`.

    Args:
        cfg: the run's [model] section. params: state_dict names → arrays (the checkpoint's, NumPy
            or CPU torch tensors). block_size: the model's context.

    Raises:
        KeyError, ValueError: parameters missing or of the wrong shape for cfg (see check_shapes).
    """

    numpy_inference = True
    training = False

    def __init__(self, cfg: ModelConfig, params: dict[str, Any], block_size: int):
        self.spec, self.block_size = Spec.from_config(cfg), block_size
        self.params = {k: np.asarray(v) for k, v in params.items()}
        missing = [k for k in ("C", *(f"{w}{i}" for i in range(1, cfg.n_layers + 2) for w in "Wb")) if k not in self.params]
        if missing:
            raise KeyError(f"missing {', '.join(missing)}")
        if self.params["W1"].shape[0] != block_size * cfg.n_embd:
            raise ValueError(f"W1 has shape {self.params['W1'].shape}, this model reads {block_size}·{cfg.n_embd} inputs")

    def __call__(self, idx: np.ndarray) -> tuple[np.ndarray, None]:
        """Logits (B, vocab_size) for contexts idx int (B, block_size)."""
        logits, _, _ = forward(self.params, np.asarray(idx), None, self.spec, train=False)  # (B, V)
        return logits, None

    def eval(self) -> NumpyMLP:
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.params

    def nll_per_target(self, view: View, chunk: int = 65_536) -> np.ndarray:
        """−ln p(target) of every target of `view` (nats), float64 (n_targets,), in the view's order."""
        out = []
        for X, Y in view.chunks(chunk):
            logits, _ = self(X)  # (b, V)
            shifted = logits - logits.max(1, keepdims=True)  # (b, V)
            log_z = np.log(np.exp(shifted).sum(1))  # (b,)
            out.append((log_z - shifted[np.arange(len(Y)), Y]).astype(np.float64))  # (b,)
        return np.concatenate(out) if out else np.zeros(0)
