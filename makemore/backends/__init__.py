"""Backends: how a model's parameters get updated, and nothing else.

- torch (`torch_backend.py`): the model's own forward, autograd, torch.optim. The reference: it
  trains every registered model family, on any torch device.
- numpy (`numpy_mlp.py`): the MLP family with every gradient derived by hand.
- mlx (`mlx_mlp.py`): the MLP family in Apple's MLX.
- counting (`counting.py`): families fitted in one pass (the counting bigram), whatever
  train.backend says: there is nothing for a gradient backend to do.

One training driver (makemore.training) serves every backend. A backend takes one optimizer step on
a minibatch, computes the mean NLL of a split, and moves its parameters and optimizer/generator
state in and out as named NumPy arrays (the names of the torch model's state_dict), so every
backend writes the same checkpoint and every command reads it.

Each backend declares what it can train (`Support`, an allow-list). `check_backend` refuses
any other combination with one line before training starts, naming the backends that can;
`choose_backend` resolves train.backend = "auto" (the default) from the same allow-lists.
"""

from __future__ import annotations

from makemore.backends.base import Backend
from makemore.config import Config
from makemore.errors import MakemoreError
from makemore.models import Family

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


def choose_backend(cfg: Config, fam: Family, processes: int = 1) -> str:
    """The backend train.backend names; for "auto" the fastest one that trains cfg: NumPy (the
    hand-derived backward) for a model it supports, on the CPU, in one process; torch otherwise.

    Args:
        cfg: the config. fam: its family. processes: processes of the training job (torchrun).
    """
    name = cfg.train.backend
    if name != "auto":
        return name
    numpy = backend_class("numpy").SUPPORTS
    if fam.counted or processes > 1 or numpy.refusal(cfg, fam) is not None:
        return "torch"
    if cfg.train.stats_interval and not numpy.records_stats:
        return "torch"
    on_cpu = cfg.train.device == "cpu" or (cfg.train.device == "auto" and not _accelerator())
    return "numpy" if on_cpu else "torch"


def _accelerator() -> bool:
    """Whether torch sees a CUDA or Apple (MPS) device here."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or (mps is not None and mps.is_available())


def check_backend(cfg: Config, fam: Family) -> None:
    """Check that train.backend (not "auto": see `choose_backend`) can train cfg's family `fam`.

    A family fitted by counting is accepted with any train.backend (it takes no gradient steps).

    Raises:
        MakemoreError: a combination the backend does not implement, naming the backends that can
            train it; train.stats_interval > 0 with a backend that does not record statistics.
    """
    if fam.counted:
        return
    why = backend_class(cfg.train.backend).SUPPORTS.refusal(cfg, fam)
    if why is not None:
        able = [name for name in BACKENDS if backend_class(name).SUPPORTS.refusal(cfg, fam) is None]
        hint = f"train it with train.backend = {' or '.join(repr(b) for b in able)}" if able else "no backend trains this combination"
        raise MakemoreError(f"train.backend = {cfg.train.backend!r} cannot train {why}: {hint}")
    if cfg.train.stats_interval and not backend_class(cfg.train.backend).SUPPORTS.records_stats:
        able = " or ".join(name for name in BACKENDS if backend_class(name).SUPPORTS.records_stats)
        raise MakemoreError(f"train.stats_interval = {cfg.train.stats_interval}: statistics are recorded with train.backend = {able}, "
                            f"not {cfg.train.backend}; set train.stats_interval = 0 or change train.backend")


def resolve_device(cfg: Config, fam: Family) -> str:
    """The concrete device for train.device: "auto" picks cuda, then mps, then cpu, among the
    devices train.backend (resolved, not "auto") runs on; a family fitted by counting runs on the CPU.

    Raises:
        MakemoreError: the named device is not available, or the backend cannot use it.
    """
    name, backend = cfg.train.device, cfg.train.backend
    if fam.counted:
        return "cpu"  # counting needs no accelerator
    devices = backend_class(backend).SUPPORTS.devices
    if devices is not None:
        if name != "auto" and name.partition(":")[0] not in devices:
            where = "the CPU" if devices == ("cpu",) else ", ".join(devices)
            raise MakemoreError(f"train.device = {name!r}: the {backend} backend runs on {where} only; use train.device=cpu")
        return "cpu"
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "mps" if _accelerator() else "cpu"
    _check_named_device(name)
    return name


def _check_named_device(name: str) -> None:
    """Raises MakemoreError when the named torch device (cuda, cuda:N, mps; cpu is always there) is not here."""
    import torch

    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MakemoreError(f"train.device = {name!r}, but no CUDA device is available here; use train.device=auto or cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise MakemoreError(f"train.device = {name!r}, but only {torch.cuda.device_count()} CUDA device(s) exist")
    if name == "mps" and not _accelerator():
        raise MakemoreError("train.device = 'mps', but no Apple GPU (MPS) is available here; use train.device=auto or cpu")


def make_backend(cfg: Config, fam: Family, vocab_size: int, device: str = "cpu", block_size: int | None = None,
                 n_labels: int = 0) -> Backend:
    """A freshly initialised backend for a checked cfg (makemore.prepare.check): the counting one
    for a counted family, else train.backend's. Checks nothing again.

    Args:
        cfg: the checked config (train.backend resolved). fam: its family. vocab_size: tokens,
            boundary included. device: the resolved device.
        block_size: the model's context (the family's view decides); default data.block_size.
        n_labels: the labels of a labelled words file (a conditional model); 0: unlabelled data,
            and the backend is built exactly as without labels.

    Raises:
        MakemoreError: MLX not installed.
    """
    block_size = cfg.data.block_size if block_size is None else block_size
    extra = {"n_labels": n_labels} if n_labels else {}
    if fam.counted:
        from makemore.backends.counting import CountingBackend

        return CountingBackend(cfg, vocab_size, device, block_size, **extra)
    return backend_class(cfg.train.backend)(cfg, vocab_size, device, block_size, **extra)


def check_labels(cfg: Config, fam: Family, labelled: bool) -> None:
    """Check that train.backend (resolved) trains conditional models when the words file is
    labelled (known only once it is read: makemore.prepare.read_data). A counted family counts
    one table per label whatever the backend.

    Raises:
        MakemoreError: a labelled file with a backend that does not train labels (MLX).
    """
    if not labelled or fam.counted or backend_class(cfg.train.backend).SUPPORTS.labels:
        return
    able = " or ".join(repr(name) for name in BACKENDS if backend_class(name).SUPPORTS.labels)
    raise MakemoreError(f"{cfg.data.path} is labelled (word<TAB>label): train.backend = {cfg.train.backend!r} "
                        f"does not train conditional models; use train.backend = {able}")
