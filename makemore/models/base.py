"""What every model family shares: the language-modelling loss and its evaluation over a split.

Every family is a torch `nn.Module` whose `forward(idx, targets=None, label=None)` returns `(logits, loss)`:

- a window model (bigram, mlp) maps contexts idx int64 (B, block_size) to logits (B, vocab_size)
  and takes targets (B,);
- a sequence model maps idx (B, T) to logits (B, T, vocab_size) and takes targets (B, T), where a
  target of IGNORE marks padding.

A model built with n_labels > 0 (a labelled words file) is conditional: it takes label, int64
(B,), one label id per row, and keeps its label embedding as the parameter `label_emb` (see
`label_table`; the bigram keeps one count table per label instead). Built with n_labels = 0 it
has no such parameter and takes no label: exactly the unlabelled model.

`lm_loss` is the loss of both: the mean negative log-likelihood, in nats per character, of the
targets that are not IGNORE.

Every family computes its hidden non-linearities with modules (nn.Tanh, nn.ReLU, nn.GELU), one
module per place it is applied, so `HiddenCapture` finds every hidden layer by module type, with
no per-family code (training statistics and `makemore inspect`, lecture part 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from makemore.data import EVAL_CHUNK, IGNORE, View, mean_over

#: Gain of the Kaiming initialisation for each non-linearity (torch.nn.init.calculate_gain): a
#: weight matrix of fan_in inputs is drawn as randn · gain / √fan_in, so pre-activations start
#: with unit variance (He et al. 2015; lecture part 3).
GAINS = {"tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "gelu": math.sqrt(2.0)}

from makemore.models.constants import BN_MOMENTUM, NORM_EPS  # noqa: E402,F401 - re-exported: ε and momentum of every norm

#: Scale of the output layer's weights at initialisation, so the initial logits are nearly equal
#: and the initial loss is close to ln(vocab_size) (lecture part 3).
OUTPUT_SCALE = 0.01


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the next character: −ln softmax(logits)[target], over every non-padded target.

    Args:
        logits: (..., vocab_size), e.g. (B, vocab_size) or (B, T, vocab_size).
        targets: int64 (...), the same leading shape; IGNORE where there is no target.
        reduction: "mean" (nats per character, the training loss) or "sum" (nats).

    Returns:
        A scalar tensor.
    """
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=IGNORE, reduction=reduction)


def label_table(n_labels: int, width: int) -> nn.Parameter | None:
    """A conditional model's label embedding (n_labels, width), initialised to zeros: the model
    starts as its unlabelled self (initial loss about ln(vocab_size)) and draws nothing from the
    initialisation generator, so every other weight is the one an unlabelled model gets.
    None when n_labels is 0 (unlabelled data: no parameter, the state_dict is unchanged)."""
    return nn.Parameter(torch.zeros(n_labels, width)) if n_labels else None


def label_vectors(table: torch.Tensor | None, label: torch.Tensor | None) -> torch.Tensor | None:
    """table[label] (B, width), the label vector of each row; None for a model without labels.

    Raises:
        ValueError: a label for a model built without labels, or none for a conditional one.
    """
    if table is None:
        if label is not None:
            raise ValueError("this model was built without labels: it takes no label")
        return None
    if label is None:
        raise ValueError("this model is conditioned on a label: pass label, int64 (B,)")
    return table[label]  # (B, width)


def forward_view(model: torch.nn.Module, batch: tuple[np.ndarray, ...], device: str | torch.device) -> torch.Tensor:
    """The logits of one (X, Y) or (X, Y, L) chunk of a view: model(X) or model(X, label=L)."""
    X = torch.from_numpy(batch[0]).to(device)
    if len(batch) > 2:
        return model(X, label=torch.from_numpy(batch[2]).to(device))[0]
    return model(X)[0]


def mean_nll(model: torch.nn.Module, view: View, device: str | torch.device = "cpu", chunk: int = EVAL_CHUNK,
             part: tuple[int, int] = (0, 1)) -> float:
    """Mean NLL (nats/char) of `model` over every target of `view`, in evaluation mode.

    Runs under torch.inference_mode (no autograd graph), `chunk` targets of the view at a time, so
    memory is bounded for any split; the model is put back in training mode if it was in it.
    part (k, n): this process's share only, one of n that add up to the mean (data.mean_over).
    """
    was_training = model.training
    model.eval()

    def nll_sum(*batch) -> float:  # (X, Y) or (X, Y, L)
        logits = forward_view(model, batch, device)  # (b, vocab_size) or (b, T, vocab_size)
        return lm_loss(logits.float(), torch.from_numpy(batch[1]).to(device), reduction="sum").item()

    try:
        with torch.inference_mode():
            return mean_over(view, nll_sum, chunk, part)
    finally:
        model.train(was_training)


@torch.inference_mode()
def nll_per_target(model: torch.nn.Module, view: View, device: str | torch.device = "cpu", chunk: int = EVAL_CHUNK) -> np.ndarray:
    """−ln p(target) of every target of `view`, in nats, float64 (n_targets,), in the view's order
    (word after word, each word's characters then its end token), in evaluation mode.

    Summing a word's len(word) + 1 entries gives its NLL; their mean is its NLL per character.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        for batch in view.chunks(chunk):  # (X, Y) or (X, Y, L)
            logits = forward_view(model, batch, device)  # (b, vocab_size) or (b, T, vocab_size)
            y = torch.from_numpy(batch[1]).to(device).reshape(-1)  # (b,) or (b·T,)
            nll = F.cross_entropy(logits.reshape(len(y), -1).float(), y, ignore_index=IGNORE, reduction="none")  # (b·T,)
            out.append(nll[y != IGNORE].double().cpu().numpy())  # padding dropped: row-major order is target order
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


@dataclass(frozen=True)
class Packing:
    """Some positions of a (B, T) minibatch of sequences, packed into N rows (row-major order), for
    a sequence model that computes only the positions its loss needs (see
    makemore.models.transformer.computed_positions).

    Position-wise layers run on the packed (N, features) rows; `unpack` puts them back in their
    (B, T) places for a layer that mixes positions (attention), `pack` takes them out again.
    """

    shape: tuple[int, int]
    """(B, T) of the minibatch."""
    index: torch.Tensor
    """int64 (N,): the flat position b·T + t of each packed row."""

    @classmethod
    def of(cls, keep: torch.Tensor) -> Packing:
        """The positions where keep (B, T) bool is True."""
        B, T = keep.shape
        return cls((B, T), keep.reshape(-1).nonzero().squeeze(1))  # (N,)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, ...) → (N, ...): the packed positions, e.g. (B, T, F) → (N, F), (B, T) → (N,)."""
        return x.reshape(-1, *x.shape[2:]).index_select(0, self.index)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, F) → (B, T, F), zeros at the positions that are not packed."""
        B, T = self.shape
        return x.new_zeros(B * T, x.shape[-1]).index_copy(0, self.index, x).view(B, T, -1)


class Dropout(torch.nn.Module):
    """Inverted dropout (Srivastava et al. 2014) drawing its masks from an explicit generator.

    In training, each element is kept with probability 1 − p and scaled by 1/(1 − p), so the
    expected activation is unchanged; in evaluation it is the identity. The mask is
    `torch.rand(x.shape, generator=self.generator) >= p`. (The NumPy and MLX backends draw their
    masks the same way, `uniform >= p`, from their own seeded generators: the same distribution,
    not the same draws.) The training backend sets `generator` (see `set_dropout_generator`), so dropout is
    seeded from train.seed and its state is saved in the checkpoint, which makes resume exact.
    No parameters: adding it to a model leaves the state_dict unchanged.

    A model that computes only some positions of a minibatch (the transformer's training step)
    passes their `Packing`: x (N, features) holds those positions, and the mask is drawn for the
    whole (B, T, features) tensor and packed like x, so the draw, and every kept unit, is the one
    the unpacked tensor would get.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        shape = x.shape if packing is None else (*packing.shape, x.shape[-1])
        keep = torch.rand(shape, generator=self.generator, device=x.device) >= self.p  # (*shape,) bool
        if packing is not None:
            keep = packing.pack(keep)  # (N, features): the positions x holds
        return x * keep / (1.0 - self.p)  # (*x.shape,)


def set_dropout_generator(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Make every Dropout of `model` draw from `generator` (one stream, in forward order)."""
    for module in model.modules():
        if isinstance(module, Dropout):
            module.generator = generator


#: The hidden non-linearities whose outputs training statistics look at, by module type → kind.
HIDDEN_ACTIVATIONS: tuple[tuple[type[nn.Module], str], ...] = ((nn.Tanh, "tanh"), (nn.ReLU, "relu"), (nn.GELU, "gelu"))


def hidden_layers(model: nn.Module) -> list[tuple[str, str, nn.Module]]:
    """(module name, kind, module) of every hidden non-linearity of `model` (see HIDDEN_ACTIVATIONS),
    in the model's module order, e.g. [("act1", "tanh", Tanh())] for the lecture's MLP."""
    found = []
    for name, module in model.named_modules():
        for cls, kind in HIDDEN_ACTIVATIONS:
            if isinstance(module, cls):
                found.append((name, kind, module))
                break
    return found


class HiddenCapture:
    """Keeps the output of every hidden non-linearity of `model` while a `with` block runs, through
    forward hooks that are removed when the block ends (nothing is left on the model).

        with HiddenCapture(model) as capture:
            logits, loss = model(X, Y)
        for name, kind, h in capture.outputs():   # h (N, units), detached
            ...

    A module applied several times in one forward (an RNN cell's tanh at every position)
    contributes every application: its rows are stacked.
    """

    def __init__(self, model: nn.Module):
        self.layers = hidden_layers(model)
        self._outputs: dict[str, list[torch.Tensor]] = {name: [] for name, _, _ in self.layers}
        self._handles: list[Any] = []

    def __enter__(self) -> HiddenCapture:
        self._handles = [module.register_forward_hook(partial(self._keep, name)) for name, _, module in self.layers]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _keep(self, name: str, module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        self._outputs[name].append(output.detach())

    def outputs(self) -> list[tuple[str, str, torch.Tensor]]:
        """(name, kind, h) per hidden layer that ran: h (N, units), every position of every
        captured call a row (e.g. (B, n_hidden) for the MLP, (B·T, n_hidden) for a sequence model)."""
        return [(name, kind, torch.cat([o.reshape(-1, o.shape[-1]) for o in self._outputs[name]]))
                for name, kind, _ in self.layers if self._outputs[name]]
