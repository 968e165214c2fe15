"""The model registry: model.type → the family's class, the [model] options it reads, the data view it needs.

Each family lives in one file of this package, as a torch `nn.Module` built as
`Family.cls(cfg.model, vocab_size, block_size, generator)` whose `forward(idx, targets=None)`
returns `(logits, loss)` (see makemore.models.base); on labelled data it is built with
n_labels=K too and its forward takes label=, one label id per row (a conditional model). Evaluation, sampling and plotting only ever
see a module built here, whatever backend trained its parameters: every backend exports the same
named arrays (the module's state_dict) into the checkpoint.

Adding a family: its file, one line in FAMILIES, its options in makemore.config.ModelConfig if it
has new ones, a config and tests. Nothing in training.py, runs.py or the command line changes.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from makemore.config import Config, ModelConfig
from makemore.data import Sequences, View, Windows
from makemore.errors import MakemoreError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Family:
    """One model family: what the rest of makemore needs to know about it."""

    name: str
    """The model.type that selects it."""
    where: str | type
    """"module:Class" of its nn.Module, imported on first use (so the registry needs no torch),
    or the class itself; built as cls(cfg.model, vocab_size, block_size, generator)."""
    options: tuple[str, ...]
    """The [model] keys it reads (besides type); it ignores the others."""
    view: type[View]
    """The data view it trains on, a type that carries the view's behaviour: Windows (a context of
    data.block_size characters → the next one) or Sequences (a whole word → every next character)."""
    embedding: str | None
    """The state_dict name of its character embedding table (vocab_size, n_embd), for plot-emb; None if it has none."""
    counted: bool = False
    """Fitted in one pass by `cls.fit(view)` (the counting bigram) instead of by gradient steps."""
    recurrent: bool = False
    """Reads a sequence one position at a time (a recurrent cell), so every operation of a training
    step is one position wide (the torch backend's `choose_threads` sizes a step by it)."""
    check: Callable[[Config], None] | None = None
    """Checks the keys of a whole config together, before any data is read (e.g. a
    transformer's n_head dividing n_embd), raising MakemoreError; None: the per-key checks suffice."""

    @property
    def cls(self) -> type[nn.Module]:
        """The family's nn.Module class (its module, and torch, imported now)."""
        if not isinstance(self.where, str):
            return self.where
        module, _, name = self.where.partition(":")
        return getattr(importlib.import_module(module), name)


def _check_transformer(cfg: Config) -> None:
    """A Transformer's n_head must divide n_embd (raises MakemoreError; see makemore.models.transformer.check)."""
    from makemore.models.transformer import check

    check(cfg)


#: Every model family, by model.type.
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("bigram", "makemore.models.bigram:Bigram", ("smoothing",), Windows, embedding=None, counted=True),
    Family("mlp", "makemore.models.mlp:MLP", ("n_embd", "n_hidden", "n_layers", "activation", "norm", "dropout", "init"), Windows,
           embedding="C"),
    Family("wavenet", "makemore.models.wavenet:WaveNet", ("n_embd", "n_hidden", "dropout"), Windows, embedding="C"),
    Family("rnn", "makemore.models.recurrent:RNN", ("n_embd", "n_hidden", "n_layers", "dropout"), Sequences, embedding="C", recurrent=True),
    Family("gru", "makemore.models.recurrent:GRU", ("n_embd", "n_hidden", "n_layers", "dropout"), Sequences, embedding="C", recurrent=True),
    Family("lstm", "makemore.models.recurrent:LSTM", ("n_embd", "n_hidden", "n_layers", "dropout"), Sequences, embedding="C", recurrent=True),
    Family("bow", "makemore.models.bow:BoW", ("n_embd", "n_hidden", "dropout"), Sequences, embedding="C"),
    Family("transformer", "makemore.models.transformer:Transformer",
           ("n_embd", "n_hidden", "n_layers", "n_head", "dropout", "pos", "qk_norm", "mlp_act", "zero_init", "softcap", "embed_skip",
            "value_embed"), Sequences, embedding="C", check=_check_transformer),
)}


def family(cfg: ModelConfig) -> Family:
    """The registered family of cfg.type.

    Raises:
        MakemoreError: no family of that name, listing the known ones.
    """
    try:
        return FAMILIES[cfg.type]
    except KeyError:
        known = ", ".join(repr(name) for name in FAMILIES)
        raise MakemoreError(f"model.type must be one of {known}, got {cfg.type!r}") from None


def check_model(cfg: Config) -> Family:
    """The family of cfg.model.type, after its own checks of the config's keys together (Family.check).

    Raises:
        MakemoreError: an unknown model.type, or a combination of keys the family cannot be built from.
    """
    fam = family(cfg.model)
    if fam.check is not None:
        fam.check(cfg)
    return fam


def unused_options(cfg: ModelConfig) -> list[str]:
    """[model] keys set away from their default that cfg.type does not read (e.g. model.n_hidden for
    a bigram): not an error, since one config can serve several types in a sweep, but worth a note."""
    reads = family(cfg).options
    defaults = ModelConfig()
    return [f"model.{f.name}" for f in dataclasses.fields(cfg)
            if f.name != "type" and f.name not in reads and getattr(cfg, f.name) != getattr(defaults, f.name)]


def context_length(cfg: Config, longest_word: int) -> int:
    """The block_size a model of cfg is built with: its family's view decides (Windows:
    data.block_size; Sequences: the longest word + 1).

    Raises:
        MakemoreError: an unknown model.type; for a sequence model, a longest word over data.max_len.
    """
    return family(cfg.model).view.context_length(cfg.data, longest_word, cfg.model.type)


def build_model(cfg: ModelConfig, vocab_size: int, block_size: int, generator: torch.Generator | None = None,
                n_labels: int = 0) -> nn.Module:
    """A freshly initialised model of cfg.type on the CPU.

    Args:
        cfg: the [model] section.
        vocab_size: tokens, boundary included.
        block_size: the model's context (see `context_length`).
        generator: seeded generator for the initialisation (the lecture's `g`).
        n_labels: the labels of a labelled words file: a conditional model (see
            makemore.models.base); 0 builds exactly the unlabelled model.

    Raises:
        MakemoreError: an unknown model.type.
    """
    if not n_labels:
        return family(cfg).cls(cfg, vocab_size, block_size, generator)
    return family(cfg).cls(cfg, vocab_size, block_size, generator, n_labels=n_labels)


def initial_model(cfg: Config, vocab_size: int, block_size: int | None = None, n_labels: int = 0) -> nn.Module:
    """The model `cfg` describes as initialised with torch.Generator().manual_seed(train.seed): the
    weights every backend starts a run from (and `makemore inspect` shows for step 1).
    block_size defaults to data.block_size (a window model's context); n_labels as `build_model`."""
    import torch

    block_size = cfg.data.block_size if block_size is None else block_size
    return build_model(cfg.model, vocab_size, block_size, torch.Generator().manual_seed(cfg.train.seed), n_labels)


def initial_state(cfg: Config, vocab_size: int, block_size: int | None = None, n_labels: int = 0) -> dict[str, np.ndarray]:
    """The initial parameters and buffers for `cfg` as {state_dict name: NumPy array}: the torch
    model's (`initial_model`), so every backend starts from identical weights. block_size
    defaults to data.block_size (a window model's context); n_labels as `build_model`."""
    return {k: v.numpy() for k, v in initial_model(cfg, vocab_size, block_size, n_labels).state_dict().items()}


def count_params(cfg: Config, vocab_size: int, block_size: int | None = None) -> int:
    """Trainable parameters of the model `cfg` describes (buffers such as BatchNorm's running
    statistics excluded); block_size defaults to data.block_size."""
    model = build_model(cfg.model, vocab_size, cfg.data.block_size if block_size is None else block_size)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
