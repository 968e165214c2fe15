"""The same MLP in Apple's MLX (train.backend = "mlx"): an mlx.nn.Module, nn.value_and_grad for the
gradients, mlx.optimizers for the update, and mx.eval after every step (MLX is lazy: nothing is
computed until something is evaluated).

Install with the optional extra: `pip install makemore[mlx]` (on Linux that is the `mlx[cpu]`
wheel; on Apple silicon MLX uses the GPU through unified memory, here the CPU).

The model is makemore.models.mlp.MLP, written again with MLX arrays, parameter for parameter:
C, W1, b1, ..., W{L+1}, b{L+1}, norm{i}.weight, norm{i}.bias, with BatchNorm's running statistics
(norm{i}.running_mean, running_var, num_batches_tracked) kept outside the Module so they are not
trained. The initial weights are the torch model's for train.seed, converted, so the three
backends start from identical weights and write interchangeable checkpoints. Every option of
the torch MLP is supported: n_layers, tanh/relu/gelu (tanh approximation), batchnorm/layernorm,
dropout (drawn from an MLX random key derived from train.seed + 1, saved in export_state), and
the sgd/momentum/adamw optimizers with torch.optim's semantics (AdamW with bias correction).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from makemore.backends.base import MLP_FAMILY, check_shapes
from makemore.config import ADAM_BETAS, ADAM_EPS, Config
from makemore.data import View, mean_over
from makemore.errors import MakemoreError
from makemore.models import initial_state
from makemore.models.constants import BN_MOMENTUM, GELU_C, GELU_K, NORM_EPS
from makemore.threads import scoped

try:
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    from mlx.utils import tree_flatten, tree_unflatten
except ImportError:  # pragma: no cover - exercised only where MLX is absent
    mx = None


_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def _require_mlx() -> None:
    if mx is None:
        raise MakemoreError("train.backend = 'mlx' needs MLX: pip install 'makemore[mlx]' (Linux: the mlx[cpu] wheel)")


if mx is not None:

    class MLXMLP(nn.Module):
        """Bengio et al. 2003 MLP in MLX; the same computation as makemore.models.mlp.MLP.

        Shapes: C (V, E); W1 (T·E, H); b1 (H,); ...; W{L+1} (H, V); b{L+1} (V,);
        norm{i} = {"weight": (H,), "bias": (H,)} when model.norm is not "none".
        """

        def __init__(self, params: dict[str, np.ndarray], n_layers: int, activation: str, norm: str, dropout: float):
            super().__init__()
            self.n_layers, self.activation, self.norm, self.dropout = n_layers, activation, norm, dropout
            for name, value in params.items():
                head, _, leaf = name.partition(".")
                if leaf:
                    if not hasattr(self, head):
                        setattr(self, head, {})
                    getattr(self, head)[leaf] = mx.array(value)
                else:
                    setattr(self, name, mx.array(value))

        def __call__(self, X: mx.array, stats: list[tuple[mx.array, mx.array]] | None, key: mx.array | None) -> tuple[mx.array, list]:
            """logits (B, V) of contexts X (B, T), and BatchNorm's batch statistics [(mean, var)] per layer.

            stats: running (mean, var) per layer to normalise with (evaluation), or None to use the
            batch's own (training). key: an MLX random key for dropout, or None for no dropout.
            """
            B = X.shape[0]
            x = self.C[X].reshape(B, -1)  # (B, T·E)
            batch_stats = []
            for i in range(1, self.n_layers + 1):
                a = x @ getattr(self, f"W{i}") + getattr(self, f"b{i}")  # (B, H)
                if self.norm != "none":
                    p = getattr(self, f"norm{i}")
                    if self.norm == "layernorm":
                        mu = a.mean(axis=1, keepdims=True)  # (B, 1)
                        var = mx.square(a - mu).mean(axis=1, keepdims=True)  # (B, 1)
                    elif stats is None:
                        mu = a.mean(axis=0)  # (H,)
                        var = mx.square(a - mu).mean(axis=0)  # (H,) biased, as torch normalises in training
                        batch_stats.append((mx.stop_gradient(mu), mx.stop_gradient(var)))
                    else:
                        mu, var = stats[i - 1]  # (H,), (H,)
                    a = (a - mu) * mx.rsqrt(var + NORM_EPS) * p["weight"] + p["bias"]  # (B, H)
                if self.activation == "tanh":
                    x = mx.tanh(a)  # (B, H)
                elif self.activation == "relu":
                    x = mx.maximum(a, 0.0)  # (B, H)
                else:
                    x = 0.5 * a * (1.0 + mx.tanh(GELU_K * (a + GELU_C * a * a * a)))  # (B, H)
                if key is not None and self.dropout > 0:
                    key, sub = mx.random.split(key)
                    keep = mx.random.uniform(shape=x.shape, key=sub) >= self.dropout  # (B, H)
                    x = mx.where(keep, x / (1.0 - self.dropout), 0.0)  # (B, H) inverted dropout
            out = self.n_layers + 1
            logits = x @ getattr(self, f"W{out}") + getattr(self, f"b{out}")  # (B, V)
            return logits, batch_stats


class MLXBackend:
    """Trains the MLP with MLX (train.backend = "mlx") on the CPU.

    Args:
        cfg: the config; [model] must be an MLP (see MLP_FAMILY).
        vocab_size: tokens, boundary included.
        device: "cpu" (MLX's Linux build; on Apple silicon MLX would use the GPU through unified memory).
        block_size: characters of context; default data.block_size.

    Raises:
        MakemoreError: MLX is not installed.
    """

    name = "mlx"
    takes_steps = True
    SUPPORTS = MLP_FAMILY

    def __init__(self, cfg: Config, vocab_size: int, device: str = "cpu", block_size: int | None = None, n_labels: int = 0):
        if n_labels:
            raise MakemoreError("train.backend = 'mlx' cannot train on a labelled words file: use train.backend = 'torch' or 'numpy'")
        _require_mlx()
        self.summary_extra: dict[str, Any] = {}
        mx.set_default_device(mx.cpu)
        self.cfg = cfg
        m, t = cfg.model, cfg.train
        state = initial_state(cfg, vocab_size, block_size)
        self.buffers = {k: mx.array(v) for k, v in state.items() if k.endswith(_BUFFER_SUFFIXES)}
        self.model = MLXMLP({k: v for k, v in state.items() if not k.endswith(_BUFFER_SUFFIXES)}, m.n_layers, m.activation, m.norm, m.dropout)
        if t.optimizer == "adamw":
            self.optimizer = optim.AdamW(learning_rate=t.lr, betas=list(ADAM_BETAS), eps=ADAM_EPS, weight_decay=t.weight_decay, bias_correction=True)
        else:
            self.optimizer = optim.SGD(learning_rate=t.lr, momentum=t.momentum if t.optimizer == "momentum" else 0.0, weight_decay=t.weight_decay)
        self.optimizer.init(self.model.trainable_parameters())
        self.key = mx.random.key(t.seed + 1)
        self._loss_and_grad = nn.value_and_grad(self.model, self._loss)
        self._compile()

    def _compile(self) -> None:
        """mx.compile the whole step (forward, backward, update, running statistics): one graph
        instead of dozens of small eager operations per step. The model's parameters, the optimizer's
        state and the buffers are the compiled function's implicit inputs and outputs."""
        state = [self.model.state, self.optimizer.state, self.buffers]
        self._compiled_step = mx.compile(self._step, inputs=state, outputs=state)

    def _loss(self, X: mx.array, Y: mx.array, key: mx.array | None) -> tuple[mx.array, list]:
        logits, batch_stats = self.model(X, None, key)  # (B, V)
        loss = nn.losses.cross_entropy(logits, Y, reduction="mean")  # scalar, mean NLL (nats/char)
        return loss, batch_stats

    def threads(self) -> AbstractContextManager[None]:
        """The scope training runs in: the process's own thread counts, left as they are (MLX
        schedules its own CPU work, on neither torch's pool nor NumPy's BLAS; makemore.threads)."""
        return scoped(None)

    def asarray(self, a: np.ndarray) -> mx.array:
        return mx.array(a.astype(np.int32))

    def _step(self, X: mx.array, Y: mx.array, key: mx.array | None) -> mx.array:
        """Forward, backward and update on one minibatch X (B, T), Y (B,); returns the mean NLL."""
        (loss, batch_stats), grads = self._loss_and_grad(X, Y, key)
        self.optimizer.update(self.model, grads)
        B = X.shape[0]
        for i, (mu, var) in enumerate(batch_stats, start=1):  # torch's running statistics (unbiased variance)
            rm, rv = f"norm{i}.running_mean", f"norm{i}.running_var"
            self.buffers[rm] = (1 - BN_MOMENTUM) * self.buffers[rm] + BN_MOMENTUM * mu  # (H,)
            self.buffers[rv] = (1 - BN_MOMENTUM) * self.buffers[rv] + BN_MOMENTUM * var * (B / max(B - 1, 1))  # (H,)
            self.buffers[f"norm{i}.num_batches_tracked"] = self.buffers[f"norm{i}.num_batches_tracked"] + 1
        return loss

    def train_step(self, X: mx.array, Y: mx.array, lr: float) -> mx.array:
        key = None
        if self.cfg.model.dropout > 0:
            self.key, key = mx.random.split(self.key)
        self.optimizer.learning_rate = lr
        loss = self._compiled_step(X, Y, key)
        mx.eval(loss, self.model.parameters(), self.optimizer.state, self.buffers, self.key)
        return loss

    def _running_stats(self) -> list[tuple[mx.array, mx.array]] | None:
        if self.cfg.model.norm != "batchnorm":
            return None
        return [(self.buffers[f"norm{i}.running_mean"], self.buffers[f"norm{i}.running_var"]) for i in range(1, self.cfg.model.n_layers + 1)]

    def mean_loss(self, view: View) -> float:
        stats = self._running_stats()

        def nll_sum(X: np.ndarray, Y: np.ndarray) -> float:
            xb, yb = mx.array(X.astype(np.int32)), mx.array(Y.astype(np.int32))  # (b, T), (b,)
            logits, _ = self.model(xb, stats, None)  # (b, V) evaluation: running statistics, no dropout
            return nn.losses.cross_entropy(logits, yb, reduction="sum").item()

        return mean_over(view, nll_sum)

    def export_params(self) -> dict[str, np.ndarray]:
        out = {k: np.array(v) for k, v in tree_flatten(self.model.parameters())}
        out.update({k: np.array(v) for k, v in self.buffers.items()})
        return out

    def export_state(self) -> dict[str, Any]:
        # unsigned integers (the step counter, the random key) are stored as int64, which every
        # checkpoint reader takes, and cast back to the optimizer's own dtypes in `load`
        def plain(v: mx.array) -> np.ndarray:
            a = np.array(v)
            return a.astype(np.int64) if a.dtype.kind == "u" else a

        return {"optimizer": {k: plain(v) for k, v in tree_flatten(self.optimizer.state)}, "dropout_key": plain(self.key)}

    def load(self, params: dict[str, Any], state: dict[str, Any] | None) -> None:
        arrays = {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in params.items()}
        check_shapes(self.export_params(), arrays)  # a checkpoint of another model size must not be trained on
        self.model.update(tree_unflatten([(k, mx.array(v)) for k, v in arrays.items() if not k.endswith(_BUFFER_SUFFIXES)]))
        self.buffers.clear()
        self.buffers.update({k: mx.array(v) for k, v in arrays.items() if k.endswith(_BUFFER_SUFFIXES)})
        if state:
            if "dropout_key" not in state:
                raise MakemoreError("the checkpoint's optimizer state was written by another backend; resume it with the backend that trained it")
            dtypes = {k: v.dtype for k, v in tree_flatten(self.optimizer.state)}
            opt = {k: mx.array(v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in state["optimizer"].items()}
            opt = {k: (v.astype(dtypes[k]) if k in dtypes else v) for k, v in opt.items()}
            self.optimizer.state = tree_unflatten(list(opt.items()))
            key = state["dropout_key"]
            self.key = mx.array(key.numpy() if hasattr(key, "numpy") else np.asarray(key)).astype(self.key.dtype)
            self._compile()  # the optimizer's state is a new tree now
        mx.eval(self.model.parameters(), self.buffers)
