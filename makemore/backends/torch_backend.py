"""The torch backend: the model's forward, torch autograd for the backward, a torch.optim update."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from makemore.config import Config
from makemore.evaluate import mean_nll
from makemore.models import build_model


def make_optimizer(params: list[torch.nn.Parameter], cfg: Config) -> torch.optim.Optimizer:
    """torch.optim for train.optimizer: SGD (the lecture), SGD with momentum, or AdamW.

    The learning rate is set before every step from makemore.schedule.lr_at.
    """
    t = cfg.train
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay, foreach=True)
    momentum = t.momentum if t.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=t.lr, momentum=momentum, weight_decay=t.weight_decay, foreach=True)


class TorchBackend:
    """Trains makemore.models on `device` with autograd.

    The initialisation uses torch.Generator().manual_seed(train.seed) (the lecture's `g`);
    dropout draws from a second generator seeded train.seed + 1 on the model's device.
    """

    name = "torch"

    def __init__(self, cfg: Config, vocab_size: int, device: str = "cpu"):
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.device = torch.device(device)
        g = torch.Generator().manual_seed(cfg.train.seed)
        self.model = build_model(cfg.model, vocab_size, cfg.data.block_size, g).to(self.device)
        self.model.drop_generator = torch.Generator(self.device).manual_seed(cfg.train.seed + 1)
        self.model.train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.params, cfg)

    def asarray(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device)

    def train_step(self, X: torch.Tensor, Y: torch.Tensor, lr: float) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        _, loss = self.model(X, Y)  # scalar, mean NLL of the minibatch
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def mean_loss(self, X: np.ndarray, Y: np.ndarray) -> float:
        return mean_nll(self.model, X, Y, self.device)

    def export_params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def export_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "dropout_rng": self.model.drop_generator.get_state()}

    def load(self, params: dict[str, Any], state: dict[str, Any] | None) -> None:
        self.model.load_state_dict({k: torch.as_tensor(v) for k, v in params.items()})
        if state:
            self.optimizer.load_state_dict(state["optimizer"])
            self.model.drop_generator.set_state(torch.as_tensor(state["dropout_rng"]))
