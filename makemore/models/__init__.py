"""Model families behind one interface: `model(idx (B, block_size)) -> (logits (B, vocab_size), loss)`.

Evaluation, sampling and plotting only ever see a torch module built here, whatever backend
trained the parameters: every backend exports the same named arrays into the checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

from makemore.config import Config, ModelConfig


def build_model(cfg: ModelConfig, vocab_size: int, block_size: int, generator: torch.Generator | None = None) -> nn.Module:
    """A freshly initialised model of cfg.type ("mlp" or "bigram") on the CPU.

    Args:
        cfg: the [model] section.
        vocab_size: tokens, boundary included.
        block_size: characters of context in each input row.
        generator: seeded generator for the initialisation.
    """
    if cfg.type == "bigram":
        from makemore.models.bigram import Bigram

        return Bigram(cfg, vocab_size, block_size)
    from makemore.models.mlp import MLP

    return MLP(cfg, vocab_size, block_size, generator)


def initial_state(cfg: Config, vocab_size: int) -> dict:
    """The initial parameters and buffers for `cfg` as {state_dict name: NumPy array}: the torch
    model's, initialised with torch.Generator().manual_seed(train.seed), so every backend starts
    from identical weights."""
    model = build_model(cfg.model, vocab_size, cfg.data.block_size, torch.Generator().manual_seed(cfg.train.seed))
    return {k: v.numpy() for k, v in model.state_dict().items()}
