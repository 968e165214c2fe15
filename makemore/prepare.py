"""Prepare a run once: every check and every choice made before training, in one object.

    cfg ─▶ check ─▶ Checked (config with train.backend resolved, family, device, world)
               └─▶ read_data ─▶ Prepared (+ dataset, the model's block_size, provenance)

`check` touches no file: it looks the family up, lets it check its keys, resolves
train.backend = "auto", checks the backend can train the combination, resolves the device and
checks the job's split across processes. `read_data` reads the words file once (its digest comes
from the same bytes) and sizes the model's context from the family's view. The training driver,
lr-find, sweeps and searches take these objects and check nothing again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from makemore import distributed, tensorboard_log
from makemore.backends import check_backend, check_labels, choose_backend, resolve_device
from makemore.config import Config
from makemore.data import Dataset, View, Vocab, load_dataset
from makemore.models import Family, check_model


@dataclass(frozen=True)
class Checked:
    """A config checked against the registry, the backends, this machine and the launch."""

    cfg: Config
    """The validated config with train.backend resolved ("auto" replaced by the backend chosen)."""
    family: Family
    device: str
    """The concrete device ("cpu", "cuda:1", ...): this process's own under torchrun."""
    world: distributed.World
    """This process's place in the job (one process without torchrun)."""

    @property
    def backend(self) -> str:
        """The gradient backend that trains the run ("torch", "numpy", "mlx")."""
        return self.cfg.train.backend


@dataclass(frozen=True)
class Prepared(Checked):
    """A checked run with its data read: what the training driver needs, computed once."""

    dataset: Dataset = None  # type: ignore[assignment]
    block_size: int = 0
    """The model's context: data.block_size for a window model, the longest word + 1 for a sequence model."""
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Recorded in every checkpoint: data_sha256 (the words file's bytes) and max_word_len; for a
    labelled words file also labels (the label set, beside the vocabulary) and label_counts (the
    train split's words per label: the prior of sampling and classifying)."""

    @property
    def vocab(self) -> Vocab:
        return self.dataset.vocab

    @property
    def n_labels(self) -> int:
        """How many labels the words file has: 0 for an unlabelled file (an unconditional model)."""
        return len(self.dataset.labels or ())

    def view(self, split: str) -> View:
        """The examples of one split as the family reads them (its view type)."""
        return self.dataset.view(split, self.family.view)


def check(cfg: Config, world: distributed.World | None = None, processes: int = 1) -> Checked:
    """Check `cfg` once, before any file is read or written.

    Args:
        cfg: a validated Config. world: this process's place in a torchrun job (default: as
            launched). processes: the processes the job will have when it is yet to be launched
            (`makemore train --nproc N` checks before starting torchrun).

    Raises:
        MakemoreError: an unknown model.type or keys its family refuses; a backend that cannot
            train the combination (train.backend = "auto" never can't: torch trains everything);
            a device that is not here; a batch the processes cannot split; TensorBoard missing.
    """
    world = world or distributed.launched()
    fam = check_model(cfg)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, backend=choose_backend(cfg, fam, max(processes, world.size))))
    check_backend(cfg, fam)
    device = world.device(resolve_device(cfg, fam))
    distributed.check(world, cfg.train.backend, cfg.train.batch_size, fam.counted)
    if cfg.train.tensorboard:
        tensorboard_log.require()
    return Checked(cfg, fam, device, world)


def read_data(checked: Checked, vocab: Vocab | None = None, labels: tuple[str, ...] | None = None) -> Prepared:
    """Read and split the checked run's words file (once), and size the model's context.

    Args:
        vocab: a resumed run's vocabulary: the file must fit it.
        labels: a resumed run's label set (None: it has none), with `vocab`: the file must fit it.

    Raises:
        MakemoreError: bad data (a malformed labelled line: file, line number, reason), characters
            outside `vocab`, labels that do not fit the run's, a word too long for a sequence model
            (data.max_len), a labelled file for a backend that trains no labels (MLX).
    """
    d, fam = checked.cfg.data, checked.family
    dataset = load_dataset(d.path, d.block_size, d.seed, d.boundary, vocab, labels)
    check_labels(checked.cfg, fam, dataset.labels is not None)
    longest = int(dataset.lengths.max())
    block_size = fam.view.context_length(d, longest, fam.name)
    provenance = {"data_sha256": dataset.sha256, "max_word_len": longest}
    if dataset.labels is not None:
        provenance.update(labels=list(dataset.labels), label_counts=dataset.label_counts("train"))
    fields = {f.name: getattr(checked, f.name) for f in dataclasses.fields(Checked)}
    return Prepared(**fields, dataset=dataset, block_size=block_size, provenance=provenance)


def prepare(cfg: Config, vocab: Vocab | None = None, world: distributed.World | None = None) -> Prepared:
    """`check` then `read_data`: a run ready to train, before any run directory exists, so a
    mistake leaves nothing behind.

    Raises:
        MakemoreError: what `check` and `read_data` raise.
    """
    return read_data(check(cfg, world), vocab)
