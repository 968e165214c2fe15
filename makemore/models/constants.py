"""Numbers the models and the hand-written backends share, importable without torch.

makemore.models.base and makemore.models.mlp re-export them; the NumPy and MLX backends read
them from here, so a NumPy-trained run answers without importing torch.
"""

from __future__ import annotations

import math

#: BatchNorm and LayerNorm's ε and BatchNorm's running-statistics momentum (torch's defaults,
#: passed explicitly), shared by every family and by the NumPy and MLX backends.
NORM_EPS = 1e-5
BN_MOMENTUM = 0.1

#: √(2/π) and the cubic coefficient of GELU's tanh approximation (Hendrycks & Gimpel 2016),
#: gelu(a) = ½·a·(1 + tanh(GELU_K·(a + GELU_C·a³))): what nn.GELU(approximate="tanh") computes.
GELU_K = math.sqrt(2.0 / math.pi)
GELU_C = 0.044715


def activation_name(i: int) -> str:
    """The module name of hidden layer i's non-linearity (1-based, as W{i}): "act1", "act2", ..."""
    return f"act{i}"
