"""Backends: how a model's parameters get updated, and nothing else.

- torch (`torch_backend.py`): the model's own forward, autograd, torch.optim. The reference: it
  trains every registered model family, on any torch device.
- numpy (`numpy_mlp.py`): the MLP family with every gradient derived by hand.
- mlx (`mlx_mlp.py`): the MLP family in Apple's MLX.
- counting (`counting.py`): families fitted in one pass (the counting bigram), whatever
  train.backend says: there is nothing for a gradient backend to do.

One training driver (makemore.train) serves every backend. A backend takes one optimizer step on
a minibatch, computes the mean NLL of a split, and moves its parameters and optimizer/generator
state in and out as named NumPy arrays (the names of the torch model's state_dict), so every
backend writes the same checkpoint and every command reads it.

Each backend declares what it can train (`Support`, an allow-list). `check_supported` refuses
any other combination with one line before training starts, naming the backends that can.
"""

from __future__ import annotations

from makemore.backends.base import Backend
from makemore.config import Config
from makemore.errors import MakemoreError
from makemore.models import Family, check_model, family

#: The gradient backends, in the order error messages list them.
BACKENDS = ("torch", "numpy", "mlx")


def backend_class(name: str) -> type[Backend]:
    """The class of gradient backend `name` (its module is imported only when asked for)."""
    if name == "numpy":
        from makemore.backends.numpy_mlp import NumpyBackend

        return NumpyBackend
    if name == "mlx":
        from makemore.backends.mlx_mlp import MLXBackend

        return MLXBackend
    from makemore.backends.torch_backend import TorchBackend

    return TorchBackend


def check_supported(cfg: Config) -> Family:
    """Check that cfg's model family exists, accepts cfg's keys, and that train.backend can train it; return the family.

    A family fitted by counting is accepted with any train.backend (it takes no gradient steps).

    Raises:
        MakemoreError: an unknown model.type, keys the family cannot be built from (its Family.check),
            or a combination the backend does not implement, naming the backends that can train it;
            train.stats_interval > 0 with a backend that does not record statistics.
    """
    fam = check_model(cfg)
    if fam.counted:
        return fam
    why = backend_class(cfg.train.backend).SUPPORTS.refusal(cfg, fam)
    if why is not None:
        able = [name for name in BACKENDS if backend_class(name).SUPPORTS.refusal(cfg, fam) is None]
        hint = f"train it with train.backend = {' or '.join(repr(b) for b in able)}" if able else "no backend trains this combination"
        raise MakemoreError(f"train.backend = {cfg.train.backend!r} cannot train {why}: {hint}")
    if cfg.train.stats_interval and not backend_class(cfg.train.backend).SUPPORTS.records_stats:
        able = " or ".join(name for name in BACKENDS if backend_class(name).SUPPORTS.records_stats)
        raise MakemoreError(f"train.stats_interval = {cfg.train.stats_interval}: statistics are recorded with train.backend = {able}, "
                            f"not {cfg.train.backend}; set train.stats_interval = 0 or change train.backend")
    return fam


def resolve_device(cfg: Config) -> str:
    """The concrete device for train.device: "auto" picks cuda, then mps, then cpu, among the
    devices train.backend runs on (a family fitted by counting runs on the CPU).

    Raises:
        MakemoreError: the named device is not available, or the backend cannot use it.
    """
    name, backend = cfg.train.device, cfg.train.backend
    if family(cfg.model).counted:
        return "cpu"  # counting needs no accelerator
    devices = backend_class(backend).SUPPORTS.devices
    if devices is not None:
        if name != "auto" and name.partition(":")[0] not in devices:
            where = "the CPU" if devices == ("cpu",) else ", ".join(devices)
            raise MakemoreError(f"train.device = {name!r}: the {backend} backend runs on {where} only; use train.device=cpu")
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


def make_backend(cfg: Config, vocab_size: int, device: str = "cpu", block_size: int | None = None) -> Backend:
    """A freshly initialised backend for cfg: the counting one for a counted family, else train.backend's.

    Args:
        cfg: the config. vocab_size: tokens, boundary included. device: from `resolve_device`.
        block_size: the model's context (makemore.models.context_length); default data.block_size.

    Raises:
        MakemoreError: as check_supported; MLX not installed.
    """
    block_size = cfg.data.block_size if block_size is None else block_size
    if check_supported(cfg).counted:
        from makemore.backends.counting import CountingBackend

        return CountingBackend(cfg, vocab_size, device, block_size)
    return backend_class(cfg.train.backend)(cfg, vocab_size, device, block_size)
