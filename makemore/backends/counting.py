"""The "backend" of families fitted in one pass instead of by gradient steps: the counting bigram.

The driver (makemore.training) calls `fit` once on the train split where a gradient backend would
take steps, then evaluates, checkpoints and summarises the run as it does every other run. The
counting itself is the family's own maths (makemore.models.bigram.Bigram.fit).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from makemore.config import Config
from makemore.data import View
from makemore.models import build_model, family
from makemore.models.base import mean_nll


class CountingBackend:
    """Fits a counted family (Family.counted) with `model.fit(view)`, on the CPU.

    Args:
        cfg: the config; cfg.model names a counted family.
        vocab_size: tokens, boundary included.
        device: ignored (counting runs on the CPU).
        block_size: the model's context; default data.block_size.
        n_labels: the labels of a labelled words file (one count table per label); 0 for unlabelled data.
    """

    name = "counting"
    takes_steps = False

    def __init__(self, cfg: Config, vocab_size: int, device: str = "cpu", block_size: int | None = None, n_labels: int = 0):
        self.model = build_model(cfg.model, vocab_size, cfg.data.block_size if block_size is None else block_size, n_labels=n_labels)
        self.model.eval()
        self.summary_extra: dict[str, Any] = {
            "model": cfg.model.type, **{option: getattr(cfg.model, option) for option in family(cfg.model).options}}

    def fit(self, view: View) -> None:
        self.model.fit(view)

    def mean_loss(self, view: View) -> float:
        return mean_nll(self.model, view)

    def export_params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def export_state(self) -> dict[str, Any]:
        return {}

    def load(self, params: dict[str, Any], state: dict[str, Any] | None) -> None:
        self.model.load_state_dict({k: torch.as_tensor(v) for k, v in params.items()})
