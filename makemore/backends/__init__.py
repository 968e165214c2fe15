"""Backends: the same model trained by torch autograd, by hand in NumPy, or in MLX.

One training driver (makemore.train) serves every backend. A backend only knows how to take one
optimizer step on a minibatch, compute the mean NLL of a split, and move its parameters and
optimizer/generator state in and out as named NumPy arrays (the names of the torch model's
state_dict), so every backend writes the same checkpoint and every command reads it.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from makemore.config import Config
from makemore.data import Windows
from makemore.errors import MakemoreError


class Backend(Protocol):
    """What the training driver needs from a backend."""

    name: str

    def asarray(self, a: np.ndarray) -> Any:
        """A NumPy int array (a chunk of minibatches) in the backend's own array type and device."""

    def train_step(self, X: Any, Y: Any, lr: float) -> Any:
        """One step: forward, backward, update at learning rate `lr`.

        X: int (B, block_size) contexts; Y: int (B,) targets. Returns the minibatch's mean NLL
        (nats/char) as a scalar that float() reads; it may stay lazy until then.
        """

    def mean_loss(self, windows: Windows) -> float:
        """Mean NLL in nats per character over every window (evaluation mode, no gradients, EVAL_CHUNK windows at a time)."""

    def export_params(self) -> dict[str, np.ndarray]:
        """Parameters and buffers as the torch model's state_dict names → NumPy arrays."""

    def export_state(self) -> dict[str, Any]:
        """Optimizer and random-generator state: tensors/arrays and plain values only."""

    def load(self, params: dict[str, Any], state: dict[str, Any] | None) -> None:
        """Restore what export_params / export_state returned (values may be torch tensors)."""


def resolve_device(name: str, backend: str) -> str:
    """The concrete device for train.device: "auto" picks cuda, then mps, then cpu.

    Raises:
        MakemoreError: the named device is not available, or the backend cannot use it.
    """
    if backend != "torch":
        if name not in ("auto", "cpu"):
            raise MakemoreError(f"train.device = {name!r}: the {backend} backend runs on the CPU only; use train.device=cpu")
        return "cpu"
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MakemoreError(f"train.device = {name!r}, but no CUDA device is available here; use train.device=auto or cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise MakemoreError(f"train.device = {name!r}, but only {torch.cuda.device_count()} CUDA device(s) exist")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise MakemoreError("train.device = 'mps', but no Apple GPU (MPS) is available here; use train.device=auto or cpu")
    return name


def make_backend(cfg: Config, vocab_size: int, device: str) -> Backend:
    """A freshly initialised backend of cfg.train.backend for cfg.model."""
    if cfg.train.backend == "numpy":
        from makemore.backends.numpy_mlp import NumpyBackend

        return NumpyBackend(cfg, vocab_size)
    if cfg.train.backend == "mlx":
        from makemore.backends.mlx_mlp import MLXBackend

        return MLXBackend(cfg, vocab_size)
    from makemore.backends.torch_backend import TorchBackend

    return TorchBackend(cfg, vocab_size, device)
