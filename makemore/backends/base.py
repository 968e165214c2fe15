"""What every backend declares (`Support`, an allow-list) and provides (`Backend`), and what they share:
the thread rule for small steps and the shape check of a checkpoint they load."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from makemore.config import Config, ModelConfig
from makemore.data import View
from makemore.models import Family

#: Below this many multiply-adds per step (see `small_step`), one CPU thread is faster than
#: several: the work is too small to split.
SMALL_STEP_MACS = 16_000_000


def small_step(cfg: Config, n_params: int, positions: int = 1) -> bool:
    """Whether a training step is too small to split across CPU threads.

    A step's size is estimated as batch_size · positions · n_params: about its forward
    multiply-adds, with one position per example for a window model and the context length for a
    sequence model that handles every position at once. A step of the lecture's MLP at batch 32 is
    ~0.4 M: splitting it over threads costs more in synchronisation than it saves, and far more
    when the cores are shared (BENCHMARKS.md). Backends run such steps on one thread when train.threads = 0.
    """
    return cfg.train.batch_size * positions * n_params < SMALL_STEP_MACS


def check_shapes(expected: dict[str, Any], given: dict[str, Any]) -> None:
    """Check that a checkpoint's arrays `given` have the names and shapes of the model's `expected`.

    Raises:
        ValueError: naming the first array that is missing, extra or of another shape (the driver
            turns it into one line: the checkpoint does not fit this config).
    """
    missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    if missing or extra:
        raise ValueError(f"missing {', '.join(missing)}" if missing else f"unexpected {', '.join(extra)}")
    for name, value in expected.items():
        a, b = tuple(np.shape(value)), tuple(np.shape(given[name]))
        if a != b and not (np.size(value) == np.size(given[name]) == 1):  # a scalar may be stored as (1,)
            raise ValueError(f"{name} has shape {b} in the checkpoint, {a} in this model")


@dataclass(frozen=True)
class Support:
    """An allow-list: what one backend can train.

    models: model.type → {option: allowed values, or None for any value}. An option of the family
    that is not listed must stay at its default (a new option is refused until the backend
    implements it and lists it). None instead of a dict: every registered family, every option.
    optimizers: the train.optimizer values it implements.
    devices: the device types it runs on ("cpu", "cuda", "mps"); None: any torch device.
    records_stats: whether it implements `recorded_step` (train.stats_interval > 0).
    labels: whether it trains conditional models on a labelled words file (checked once the data is read).
    """

    models: dict[str, dict[str, tuple | None]] | None
    optimizers: tuple[str, ...]
    devices: tuple[str, ...] | None = None
    records_stats: bool = False
    labels: bool = False

    def refusal(self, cfg: Config, fam: Family) -> str | None:
        """Why this backend cannot train `cfg` (one phrase), or None if it can."""
        if self.models is not None:
            if fam.name not in self.models:
                return f"model.type = {fam.name!r}"
            allowed = self.models[fam.name]
            defaults = ModelConfig()
            for option in fam.options:
                value = getattr(cfg.model, option)
                if option in allowed:
                    if allowed[option] is not None and value not in allowed[option]:
                        return f"model.{option} = {value!r}"
                elif value != getattr(defaults, option):
                    return f"model.{option} = {value!r}"
        if cfg.train.optimizer not in self.optimizers:
            return f"train.optimizer = {cfg.train.optimizer!r}"
        return None


class Backend(Protocol):
    """What the training driver needs from a backend."""

    name: str
    """Recorded in the checkpoint: which backend's optimizer state it holds."""
    takes_steps: bool
    """True for gradient backends; False for one that is fitted in one pass by `fit`."""
    summary_extra: dict[str, Any]
    """Extra entries for summary.json (the counting bigram's smoothing); usually empty."""

    def threads(self) -> AbstractContextManager[None]:
        """A context manager in which the backend's steps run with the CPU thread counts it chose
        (makemore.threads.scoped: train.threads, else the small_step rule); leaving it restores the
        process's previous counts. The training driver holds it for the whole training (gradient backends)."""

    def asarray(self, a: np.ndarray) -> Any:
        """A NumPy int array (one minibatch) in the backend's own array type and device (gradient backends)."""

    def train_step(self, X: Any, Y: Any, lr: float, label: Any = None) -> Any:
        """One step: forward, backward, update at learning rate `lr` (gradient backends).

        X: int (B, block_size) contexts; Y: int (B,) targets; label: int (B,) label ids on labelled
        data, else None. Returns the minibatch's mean NLL (nats/char) as a scalar that float()
        reads; it may stay lazy until then.
        """

    def recorded_step(self, X: Any, Y: Any, lr: float, label: Any = None) -> tuple[float, dict[str, Any]]:
        """`train_step`, also returning what makemore.stats.step_stats makes of this step: every
        hidden layer's output, every parameter's gradient, value after the step, and update (the
        value after minus before the optimizer step). Returns (mean NLL as a float, the statistics).
        Only backends whose Support says records_stats implement it; nothing of it runs in train_step.
        """

    def fit(self, view: View) -> None:
        """Fit in one pass on the train split (backends with takes_steps False only)."""

    def mean_loss(self, view: View) -> float:
        """Mean NLL in nats per character over every target of `view` (evaluation mode, no gradients)."""

    def export_params(self) -> dict[str, np.ndarray]:
        """Parameters and buffers as the torch model's state_dict names → NumPy arrays."""

    def export_state(self) -> dict[str, Any]:
        """Optimizer and random-generator state: tensors/arrays and plain values only."""

    def load(self, params: dict[str, Any], state: dict[str, Any] | None) -> None:
        """Restore what export_params / export_state returned (values may be torch tensors)."""


#: Every option of the MLP family, each optimizer, on the CPU: what the NumPy and MLX backends,
#: written option by option, implement. A new MLP option is refused by both until it is added here.
MLP_FAMILY = Support(
    models={"mlp": {"n_embd": None, "n_hidden": None, "n_layers": None, "activation": ("tanh", "relu", "gelu"),
                    "norm": ("none", "batchnorm", "layernorm"), "dropout": None, "init": None}},
    optimizers=("sgd", "momentum", "adamw"),
    devices=("cpu",),
)
