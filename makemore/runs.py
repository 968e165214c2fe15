"""The run directory: the one thing that crosses from training to every other command.

    runs/<config>-<YYYYmmdd-HHMMSS>/
        config.toml      the resolved config (file + --set overrides)
        vocab.json       the vocabulary, itos order (index 0 = boundary); for a labelled words file
                         also its label set, "labels" (label ids are indices into it)
        metrics.jsonl    one JSON object per logged step: step, train_loss, dev_loss, lr, elapsed_s
        stats.jsonl      with train.stats_interval > 0: one JSON object per recorded step, step, lr,
                         loss, layers, params (makemore.stats), read by `makemore inspect`
        checkpoint.safetensors   model state_dict, optimizer and generator state as tensors; config,
                         vocab, step and the other plain values as JSON in its metadata
                         (checkpoint.pt, a weights-only torch file, in runs made before issue 23)
        best.safetensors the checkpoint of the evaluation with the lowest dev loss so far (gradient
                         runs made since issue 25), in the same format; evaluate, sample and score
                         read it by default, resume continues from checkpoint.safetensors
        summary.json     final whole-split train/dev loss and timings, written when training ends
        loss.png         the loss curves

Checkpoints are written atomically (temporary file in the same folder, flush, fsync, os.replace),
so a crash at any moment leaves the previous good checkpoint, carry a SHA-256 of their contents,
and are read without pickle (an old checkpoint.pt with torch.load(weights_only=True)), so a
checkpoint cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import sys

import numpy as np
import safetensors
import safetensors.numpy

from makemore.config import Config, load_config
from makemore.data import Dataset, View, Vocab, file_digest, load_dataset
from makemore.errors import MakemoreError, first_line
from makemore.models import build_model, family

# The file names of a run directory. This module is the only one that knows them: every other
# module goes through the functions below.
CHECKPOINT = "checkpoint.safetensors"
BEST_CHECKPOINT = "best.safetensors"  # the best-dev checkpoint (issue 25)
#: Which checkpoint of a run to read: the last one written, or the best-dev one.
CHECKPOINT_CHOICES = ("last", "best")
LEGACY_CHECKPOINT = "checkpoint.pt"  # runs made before issue 23: read, and replaced by CHECKPOINT on resuming
CONFIG = "config.toml"
VOCAB = "vocab.json"
METRICS = "metrics.jsonl"
STATS = "stats.jsonl"
SUMMARY = "summary.json"
LOSS_PNG = "loss.png"
EMBEDDING_PNG = "embedding.png"
INSPECT_PNGS = {"activations": "activations.png", "gradients": "gradients.png", "update_ratio": "update_ratio.png",
                "saturation": "saturation.png"}
ENSEMBLE = "ensemble.json"  # an ensemble directory's one file (makemore.ensemble)
FORMAT = "makemore-checkpoint-2"  # "format" in a checkpoint.safetensors' metadata
LEGACY_FORMAT = "makemore-checkpoint-1"  # "format" inside a checkpoint.pt
DEFAULT_ROOT = Path("runs")


def create_run(run_dir: str | Path, config_toml: str, itos: list[str], labels: tuple[str, ...] | None = None) -> Path:
    """Make a new run directory holding config.toml (the resolved config) and vocab.json (with
    the label set of a labelled words file, beside the vocabulary).

    Raises:
        MakemoreError: the directory exists already or cannot be created.
    """
    path = Path(run_dir)
    if path.exists():
        raise MakemoreError(f"{path} already exists: choose a new run directory, or continue it with makemore train --resume {path}")
    try:
        path.mkdir(parents=True, exist_ok=False)
    except OSError as e:
        raise MakemoreError(f"{path}: cannot create the run directory: {e.strerror or e}") from None
    atomic_write_text(path / CONFIG, config_toml)
    vocab = {"itos": list(itos), "vocab_size": len(itos)}
    if labels is not None:
        vocab["labels"] = list(labels)
    write_json(path / VOCAB, vocab)
    return path


def make_checkpoint(*, params: dict[str, Any], config: dict[str, Any], itos: list[str], step: int, backend: str,
                    backend_state: dict[str, Any], elapsed_s: float, provenance: dict[str, Any],
                    best: dict[str, Any] | None = None, fitted_steps: int | None = None) -> dict[str, Any]:
    """The one constructor of a checkpoint's contents (what `save_checkpoint` writes).

    Args:
        params: the model's state_dict as name → array. config: Config.to_dict(). itos: the vocabulary.
        step: optimizer steps taken. backend: the backend's name (its state's format).
        backend_state: optimizer and generator state. elapsed_s: training seconds so far.
        provenance: what the data was (data_sha256, max_word_len).
        best: the training loop's record of the best dev loss so far (makemore.training.BestDev),
            so that a resumed run keeps its early-stopping count; None: not stored.
        fitted_steps: the step count a time budget fixed (train.time_budget_s), so that a resumed
            run ends where the uninterrupted one would; None: not stored.
    """
    return {"model": params, "config": config, "vocab": list(itos), "step": int(step), "backend": backend,
            "backend_state": backend_state, "elapsed_s": float(elapsed_s), **provenance, **({"best": best} if best is not None else {}),
            **({"fitted_steps": int(fitted_steps)} if fitted_steps is not None else {})}


def checkpoint_config(run_dir: str | Path, checkpoint: dict[str, Any]) -> Config:
    """The Config stored in a checkpoint of run_dir (errors name the checkpoint file).

    Raises:
        MakemoreError: the stored config is not valid for this version of makemore.
    """
    return Config.from_dict(checkpoint["config"], source=str(checkpoint_file(run_dir)))


def is_ensemble(run_dir: str | Path) -> bool:
    """Whether run_dir is an ensemble directory (holds ensemble.json; makemore.ensemble)."""
    return (Path(run_dir) / ENSEMBLE).is_file()


def ensemble_file(run_dir: str | Path) -> Path:
    """Where an ensemble directory keeps its members, weights and vocabulary."""
    return Path(run_dir) / ENSEMBLE


def read_ensemble(run_dir: str | Path) -> dict[str, Any]:
    """An ensemble directory's ensemble.json as a dict.

    Raises:
        MakemoreError: missing or not JSON.
    """
    path = ensemble_file(run_dir)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MakemoreError(f"{path}: cannot read the ensemble: {first_line(e)}") from None
    if not isinstance(spec, dict):
        raise MakemoreError(f"{path}: not a makemore ensemble")
    return spec


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether run_dir holds a checkpoint (training started and can be resumed)."""
    return checkpoint_file(run_dir).is_file()


def is_finished(run_dir: str | Path) -> bool:
    """Whether run_dir's training ended (its summary.json exists)."""
    return (Path(run_dir) / SUMMARY).is_file()


def stored_config(run_dir: str | Path) -> Config | None:
    """run_dir's config.toml as a Config, or None if it has none. Keys added by a newer makemore
    than the one that wrote it take their defaults, so a run directory keeps its meaning.

    Raises:
        MakemoreError: the file is not a valid config.
    """
    path = Path(run_dir) / CONFIG
    return load_config(path) if path.is_file() else None


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """run_dir's summary.json."""
    return json.loads((Path(run_dir) / SUMMARY).read_text(encoding="utf-8"))


def write_summary(run_dir: str | Path, summary: dict[str, Any]) -> None:
    """Atomically write run_dir/summary.json."""
    write_json(Path(run_dir) / SUMMARY, summary)


def read_vocab_size(run_dir: str | Path) -> int:
    """vocab_size from run_dir's vocab.json."""
    return int(json.loads((Path(run_dir) / VOCAB).read_text(encoding="utf-8"))["vocab_size"])


def loss_png(run_dir: str | Path) -> Path:
    """Where a run's loss curve goes."""
    return Path(run_dir) / LOSS_PNG


def embedding_png(run_dir: str | Path) -> Path:
    """Where plot-emb puts a run's embedding scatter by default."""
    return Path(run_dir) / EMBEDDING_PNG


def inspect_pngs(folder: str | Path) -> dict[str, Path]:
    """Where `makemore inspect` puts its figures in `folder` (by default the run directory), by figure."""
    return {figure: Path(folder) / name for figure, name in INSPECT_PNGS.items()}


class JsonLinesLog:
    """A JSON-lines file of a run opened for appending: one JSON object per line, flushed as written."""

    separators: tuple[str, str] | None = None

    def __init__(self, path: Path):
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=self.separators) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class MetricsLog(JsonLinesLog):
    """metrics.jsonl opened for appending."""

    def __init__(self, run_dir: str | Path):
        super().__init__(Path(run_dir) / METRICS)


class StatsLog(JsonLinesLog):
    """stats.jsonl opened for appending (compact JSON: a record holds a few hundred numbers). Records
    after `after_step`, the step a run resumes from, are dropped first: those steps are taken again."""

    separators = (",", ":")

    def __init__(self, run_dir: str | Path, after_step: int = 0):
        path = Path(run_dir) / STATS
        if path.is_file():
            _truncate_jsonl(path, after_step)
        super().__init__(path)


def _truncate_jsonl(path: Path, step: int) -> None:
    """Keep only the lines of a JSON-lines file whose record's "step" is at most `step` (a torn line goes too)."""
    kept = [line + "\n" for line, record in _jsonl_lines(path) if record["step"] <= step]
    atomic_write_text(path, "".join(kept))


def truncate_metrics(run_dir: str | Path, step: int) -> None:
    """Keep only metrics records up to `step` (those after the checkpoint a run resumes from go)."""
    _truncate_jsonl(Path(run_dir) / METRICS, step)


def new_run_dir(name: str, root: str | Path = DEFAULT_ROOT) -> Path:
    """A fresh, not yet existing path root/<name>-<timestamp>[-k] (the caller creates it)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{name}-{stamp}"
    k = 1
    while path.exists():
        k += 1
        path = Path(root) / f"{name}-{stamp}-{k}"
    return path


def discard_unstarted(run_dir: str | Path) -> None:
    """Remove a new run directory whose training failed before its first checkpoint, so an error
    leaves no half-written run behind. Only makemore's own files are removed, then the folder if
    that empties it; a directory holding a checkpoint is left alone (it can be resumed)."""
    path = Path(run_dir)
    if not path.is_dir() or checkpoint_file(path).exists():
        return
    for name in (CONFIG, VOCAB, METRICS, STATS, SUMMARY, LOSS_PNG, BEST_CHECKPOINT):
        (path / name).unlink(missing_ok=True)
    remove_temporaries(path)
    try:
        path.rmdir()
    except OSError:
        pass


def remove_temporaries(run_dir: str | Path) -> None:
    """Delete the temporary files of `atomic_write_bytes` that a process killed mid-write left in
    run_dir (call it only when no other process is writing to that run)."""
    for tmp in Path(run_dir).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def latest_run(root: str | Path = DEFAULT_ROOT) -> Path:
    """The run under `root` that was started most recently (by its config.toml).

    Raises:
        MakemoreError: no run under root.
    """
    candidates = [p.parent for p in Path(root).glob(f"*/{CONFIG}")]
    if not candidates:
        raise MakemoreError(f"no runs under {root}/: train one first, e.g. makemore train --config configs/names.toml")
    return max(candidates, key=lambda p: ((p / CONFIG).stat().st_mtime, p.name))


def resolve_run(run_dir: str | Path | None, root: str | Path = DEFAULT_ROOT) -> Path:
    """`run_dir` checked to exist, or the latest run when None.

    Raises:
        MakemoreError: the directory does not exist or holds no checkpoint.
    """
    path = latest_run(root) if run_dir is None else Path(run_dir)
    if not path.is_dir():
        raise MakemoreError(f"{path}: no such run directory")
    if not has_checkpoint(path):
        raise MakemoreError(f"{path}: no {CHECKPOINT} in this run directory (did its training start?)")
    return path


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The process's file-creation mask, read once at import (os.umask can only be read by setting it).
_UMASK = _read_umask()


#: Tests only: seconds to wait inside every checkpoint write, between writing the temporary file
#: and renaming it, so that a test's kill -9 or Ctrl-C lands inside the write for certain.
SLOW_WRITE_ENV = "MAKEMORE_TEST_SLOW_WRITE"


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Write a file atomically: `write(f)` fills a temporary file in the same folder, which is
    flushed, fsynced and renamed over `path`. Readers see the old file or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if path.name == CHECKPOINT and os.environ.get(SLOW_WRITE_ENV):
                time.sleep(float(os.environ[SLOW_WRITE_ENV]))
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, lambda f: f.write(text.encode("utf-8")))


#: The tags of the checkpoint layout (see `_Packer`): a JSON object with exactly one of these keys
#: stands for a tensor, a tuple, or a dict whose keys are not all strings.
_TENSOR, _TUPLE, _DICT = "__tensor__", "__tuple__", "__dict__"


class _Packer:
    """Splits a checkpoint's nested values into named NumPy arrays and a JSON-able layout.

    Tensors and arrays become {"__tensor__": name} (the name is the path of keys, e.g.
    "backend_state.optimizer.state.0.exp_avg"); tuples {"__tuple__": [...]}; a dict with a key that
    is not a string (torch.optim's parameter indices) {"__dict__": [[key, value], ...]}; NumPy
    scalars their Python value; str, int (of any size: JSON ints are exact), float, bool and None
    stay themselves. `arrays` collects the arrays, little-endian and contiguous.

    Raises (from `pack`):
        TypeError: a value of another type (a checkpoint holds tensors and plain values only).
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def pack(self, value: Any, name: str) -> Any:
        """The layout of `value`, found at key path `name`; its arrays are added to `self.arrays`."""
        torch = sys.modules.get("torch")  # a torch tensor can only come from a process that imported torch
        if torch is not None and isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            return {_TENSOR: self._add(name, value)}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            plain = all(isinstance(k, str) for k in value) and not (len(value) == 1 and next(iter(value)) in (_TENSOR, _TUPLE, _DICT))
            if plain:
                return {k: self.pack(v, _join(name, k)) for k, v in value.items()}
            return {_DICT: [[self.pack(k, name), self.pack(v, _join(name, k))] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {_TUPLE: [self.pack(v, _join(name, i)) for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.pack(v, _join(name, i)) for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"a checkpoint holds tensors and plain values only, not {type(value).__name__} (at {name})")

    def _add(self, name: str, array: np.ndarray) -> str:
        key, k = name, 1
        while key in self.arrays:  # "a.b" + "c" and "a" + "b.c" would meet
            k += 1
            key = f"{name}#{k}"
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        self.arrays[key] = little if little.flags.c_contiguous else little.copy(order="C")  # ascontiguousarray makes () (1,)
        return key


def _join(name: str, key: Any) -> str:
    return f"{name}.{key}" if name else str(key)


def _unpack(node: Any, arrays: dict[str, np.ndarray], tensor: Any) -> Any:
    """The value a `_Packer` layout stands for, its arrays taken from `arrays` through `tensor(array)`.

    Raises:
        ValueError: the layout names an array that is not in `arrays`, or a tag holds no list.
    """
    if isinstance(node, list):
        return [_unpack(v, arrays, tensor) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, inner), = node.items()
        if tag == _TENSOR:
            if not isinstance(inner, str) or inner not in arrays:
                raise ValueError(f"its layout names a tensor {inner!r} that it does not hold")
            return tensor(arrays[inner])
        if tag in (_TUPLE, _DICT) and not isinstance(inner, list):
            raise ValueError(f"its layout has a {tag} that holds no list")
        if tag == _TUPLE:
            return tuple(_unpack(v, arrays, tensor) for v in inner)
        if tag == _DICT:
            return {_unpack(k, arrays, tensor): _unpack(v, arrays, tensor) for k, v in inner}
    return {k: _unpack(v, arrays, tensor) for k, v in node.items()}


def _digest(layout: str, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 (hex) of a checkpoint's layout and of every array's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256(layout.encode("utf-8"))
    for name in sorted(arrays):
        a = arrays[name]
        h.update(json.dumps([name, a.dtype.name, list(a.shape)]).encode("utf-8"))
        h.update(a.tobytes(order="C"))
    return h.hexdigest()


def _as_tensor(array: np.ndarray) -> Any:
    """A read array as the torch tensor a checkpoint has always handed its readers."""
    import torch

    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _as_array(array: np.ndarray) -> np.ndarray:
    """A read array as a writeable NumPy array (for a reader that needs no torch)."""
    return array if array.flags.writeable else array.copy()


def checkpoint_file(run_dir: str | Path) -> Path:
    """The checkpoint of run_dir that is read: checkpoint.safetensors, or checkpoint.pt in a run
    made by a makemore before the safetensors format (issue 23) and not resumed since; the
    checkpoint.safetensors path when there is neither."""
    path = Path(run_dir)
    if not (path / CHECKPOINT).is_file() and (path / LEGACY_CHECKPOINT).is_file():
        return path / LEGACY_CHECKPOINT
    return path / CHECKPOINT


def save_checkpoint(run_dir: Path, checkpoint: dict[str, Any], name: str = CHECKPOINT) -> None:
    """Atomically write run_dir/checkpoint.safetensors (what `make_checkpoint` made).

    Arrays and tensors are the file's tensors; everything else (config, vocab, step, plain
    values of the backend state, where each tensor sits in the nested dicts) is the JSON string
    "checkpoint" of the safetensors metadata, beside "format" and "sha256", a SHA-256 of that
    string and of every tensor's name, dtype, shape and bytes (`_digest`), checked on reading.
    A "format" key of `checkpoint` (one that `load_checkpoint` returned) is not stored. Once the
    file is in place, the checkpoint.pt of a run made before this format is removed: it holds
    an earlier step of the same run, as a replaced checkpoint would. `name`: the file
    (`save_best_checkpoint` writes BEST_CHECKPOINT the same way).

    Raises:
        MakemoreError: the file cannot be written (a full disk, no permission); the previous
            checkpoint, if there is one, is left as it was.
    """
    packer = _Packer()
    layout = json.dumps(packer.pack({k: v for k, v in checkpoint.items() if k != "format"}, ""),
                        ensure_ascii=False, separators=(",", ":"))
    metadata = {"format": FORMAT, "checkpoint": layout, "sha256": _digest(layout, packer.arrays)}
    data = safetensors.numpy.save(packer.arrays, metadata=metadata)
    path = Path(run_dir) / name
    try:
        atomic_write_bytes(path, lambda f: f.write(data))
    except OSError as e:
        raise MakemoreError(f"{path}: cannot write the checkpoint: {e.strerror or e}; the previous checkpoint, if any, is kept") from None
    if name != CHECKPOINT:  # only the last checkpoint replaces an old run's checkpoint.pt (it is what resume reads)
        return
    legacy = Path(run_dir) / LEGACY_CHECKPOINT
    try:
        legacy.unlink(missing_ok=True)
    except OSError:
        return  # it stays; checkpoint.safetensors is the one read
    _fsync_dir(legacy.parent)


def save_best_checkpoint(run_dir: Path, checkpoint: dict[str, Any]) -> None:
    """Atomically write run_dir/best.safetensors: the checkpoint of the best dev loss so far, in
    `save_checkpoint`'s format. Raises as `save_checkpoint`."""
    save_checkpoint(run_dir, checkpoint, BEST_CHECKPOINT)


def has_best_checkpoint(run_dir: str | Path) -> bool:
    """Whether run_dir holds a best-dev checkpoint (best.safetensors)."""
    return (Path(run_dir) / BEST_CHECKPOINT).is_file()


def chosen_checkpoint(run_dir: str | Path, which: str | None = None) -> str:
    """"best" or "last": the checkpoint of run_dir to read for `which` ("last", "best", or None:
    the best-dev one when the run has one, else the last).

    Raises:
        MakemoreError: an unknown choice; "best" for a run that has no best-dev checkpoint.
    """
    if which is not None and which not in CHECKPOINT_CHOICES:
        raise MakemoreError(f"--checkpoint {which!r}: choose last or best")
    if which == "best" and not has_best_checkpoint(run_dir):
        raise MakemoreError(f"{run_dir}: no best-dev checkpoint ({BEST_CHECKPOINT}) in this run "
                            "(a run fitted in one pass, or one made before issue 25); use --checkpoint last")
    if which is None:
        return "best" if has_best_checkpoint(run_dir) else "last"
    return which


def load_checkpoint(run_dir: str | Path, which: str = "last", arrays: str = "torch") -> dict[str, Any]:
    """Read run_dir's checkpoint (`checkpoint_file`; with which = "best", best.safetensors), on
    the CPU, as the dict `make_checkpoint` made plus "format": arrays as torch tensors
    (arrays="torch") or NumPy arrays ("numpy": torch is then not imported for a
    checkpoint.safetensors), everything else as plain values.

    checkpoint.safetensors is read without pickle or torch.load; checkpoint.pt (older runs) with
    torch.load(weights_only=True), its zip CRC-32 checksums verified first.

    Raises:
        MakemoreError: missing, truncated, corrupted or tampered file (a SHA-256 or CRC-32 that does
            not match); an old pickle that asks to build objects or call functions (refused
            without running anything); not a makemore checkpoint.
    """
    path = checkpoint_file(run_dir) if which == "last" else Path(run_dir) / BEST_CHECKPOINT
    if not path.is_file():
        raise MakemoreError(f"{path}: no checkpoint")
    ckpt = _load_legacy(path) if path.name == LEGACY_CHECKPOINT else _load_safetensors(path, _as_tensor if arrays == "torch" else _as_array)
    missing = [k for k in ("model", "config", "vocab", "step") if k not in ckpt]
    if missing:
        raise MakemoreError(f"{path}: incomplete makemore checkpoint: no {', '.join(missing)}")
    return ckpt


def _unreadable(path: Path) -> str:
    return f"{path}: the checkpoint is unreadable (truncated, corrupted, or not a makemore checkpoint)"


def _safetensors_metadata(path: Path, data: bytes) -> dict[str, Any]:
    """The "__metadata__" of a safetensors file's header (8-byte little-endian length, then JSON).

    Raises:
        MakemoreError: a header that is cut off or not JSON; no makemore metadata in it.
    """
    if len(data) < 8:
        raise MakemoreError(f"{_unreadable(path)}: {len(data)} bytes, too short to hold a header")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise MakemoreError(f"{_unreadable(path)}: its header length ({n} bytes) runs past the end of the file ({len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MakemoreError(f"{_unreadable(path)}: its header is not JSON ({first_line(e)})") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise MakemoreError(f"{path}: not a makemore checkpoint (no {FORMAT!r} in its safetensors metadata)")
    return metadata


def _load_safetensors(path: Path, convert: Any = _as_tensor) -> dict[str, Any]:
    """Read a checkpoint.safetensors (see `save_checkpoint`): metadata, tensors, checksum, layout."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MakemoreError(f"{path}: cannot read the checkpoint: {e.strerror or e}") from None
    metadata = _safetensors_metadata(path, data)
    try:
        arrays = safetensors.numpy.load(data)
    except (safetensors.SafetensorError, ValueError, TypeError) as e:
        raise MakemoreError(f"{_unreadable(path)}: {first_line(e)}") from None
    layout, digest = metadata.get("checkpoint"), metadata.get("sha256")
    if not isinstance(layout, str) or _digest(layout, arrays) != digest:
        raise MakemoreError(f"{_unreadable(path)}: its contents do not match their SHA-256 checksum")
    try:
        ckpt = _unpack(json.loads(layout), arrays, convert)
    except (ValueError, TypeError) as e:  # json.JSONDecodeError is a ValueError; TypeError: an unhashable key
        raise MakemoreError(f"{_unreadable(path)}: {first_line(e)}") from None
    if not isinstance(ckpt, dict):
        raise MakemoreError(f"{path}: not a makemore checkpoint")
    return {"format": FORMAT, **ckpt}


def _load_legacy(path: Path) -> dict[str, Any]:
    """Read a checkpoint.pt of an older makemore with torch.load(weights_only=True), its zip
    entries' CRC-32 checksums verified first (torch.load skips them, so flipped bytes would load
    as wrong weights)."""
    unreadable = _unreadable(path)
    if zipfile.is_zipfile(path):  # torch.save's format: a zip whose entries carry CRC-32 checksums
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise MakemoreError(f"{unreadable}: {first_line(e)}") from None
        if bad is not None:
            raise MakemoreError(f"{unreadable}: {bad} fails its CRC-32 check")
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error below says it all
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if unsafe:
            raise MakemoreError(
                f"{path}: refused to load: the checkpoint asks to call or build {unsafe.group(1)}; "
                "a makemore checkpoint holds only tensors and plain values, and nothing in this one was run"
            ) from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(e))
        raise MakemoreError(f"{unreadable}: {detail.group(1) if detail else first_line(e)}; nothing in it was run") from None
    except Exception as e:  # noqa: BLE001 - torch.load reports a damaged file in many ways (KeyError, RuntimeError, ...)
        raise MakemoreError(f"{unreadable}: {first_line(e)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != LEGACY_FORMAT:
        raise MakemoreError(f"{path}: not a makemore checkpoint")
    return ckpt


def write_json(path: Path, obj: Any) -> None:
    """Atomically write pretty JSON."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of run_dir/metrics.jsonl (an empty list if there are none); a torn last line is skipped."""
    return _read_jsonl(Path(run_dir) / METRICS)


def read_stats(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of run_dir/stats.jsonl in step order (an empty list if there are none); a torn last line is skipped."""
    return _read_jsonl(Path(run_dir) / STATS)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [record for _, record in _jsonl_lines(path)]


def _jsonl_lines(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(line, parsed record) of every readable line of a JSON-lines file; none if it does not exist."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append((line, json.loads(line)))
        except json.JSONDecodeError:
            continue
    return records


class Run:
    """A trained run loaded for evaluation, sampling or plotting: config, vocabulary, and its model
    for answers (`inference`): the hand-derived NumPy MLP for a run the NumPy backend trained
    (torch is then never imported), else the torch model (`model`, evaluation mode, CPU), whatever
    backend trained it. The data is read only when `dataset` is first used.

    Raises (from `load_run`):
        MakemoreError: missing directory or checkpoint, unreadable checkpoint, parameters that do
            not fit the model of the run's config.
    """

    def __init__(self, path: Path, checkpoint: dict[str, Any], which: str = "last"):
        self.path = path
        self.checkpoint = checkpoint
        self.which = which
        """"last" or "best": which of the run's checkpoints this is."""
        self.config = checkpoint_config(path, checkpoint)
        self.vocab = Vocab(tuple(checkpoint["vocab"]))
        labels = checkpoint.get("labels")
        self.labels: tuple[str, ...] | None = None if labels is None else tuple(labels)
        """The label set of a run trained on a labelled words file (label id = index), else None."""
        self.family = family(self.config.model)
        self.block_size = self.family.view.context_length(self.config.data, int(checkpoint.get("max_word_len", 0)), self.family.name)
        """The model's context (its `block_size`)."""
        self._model: Any = None
        self._dataset: Dataset | None = None
        self.inference = numpy_inference(self) or self.model
        """The model that evaluates, samples and scores: `model`, or its NumPy twin for a NumPy-trained MLP."""

    @property
    def model(self) -> Any:
        """The run's torch nn.Module, in evaluation mode on the CPU (torch is imported when first asked for).

        Raises:
            MakemoreError: parameters that do not fit the model of the run's config.
        """
        if self._model is None:
            import torch

            params = {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v)) for k, v in self.checkpoint["model"].items()}
            model = build_model(self.config.model, self.vocab.vocab_size, self.block_size, n_labels=len(self.labels or ()))
            try:
                model.load_state_dict(params)
            except (RuntimeError, KeyError) as e:
                raise MakemoreError(f"{checkpoint_file(self.path)}: parameters do not match the model in its config: {first_line(e)}") from None
            self._model = model.eval()
        return self._model

    @property
    def step(self) -> int:
        """Optimizer steps the checkpoint was taken at."""
        return int(self.checkpoint["step"])

    @property
    def dataset(self) -> Dataset:
        """The run's data (makemore.data.Dataset), re-read from data.path and split with data.seed.

        Raises:
            MakemoreError: the file is gone, unreadable, or has characters outside the run's vocabulary.
        """
        if self._dataset is None:
            d = self.config.data
            self._dataset = load_dataset(d.path, d.block_size, d.seed, d.boundary, self.vocab, self.labels)
        return self._dataset

    @property
    def label_prior(self) -> np.ndarray:
        """p(label), float64 (n_labels,): each label's share of the train split's words (a labelled run only)."""
        counts = np.asarray(self.checkpoint["label_counts"], dtype=np.float64)  # (n_labels,)
        return counts / counts.sum()

    def view(self, split: str) -> View:
        """The examples of one split ("train", "dev", "test"), as the run's model family reads them."""
        return self.dataset.view(split, self.family.view)

    @property
    def data_changed(self) -> bool:
        """True when data.path no longer has the bytes the run was trained on."""
        return data_changed(self.checkpoint, self.config.data.path)


def data_changed(checkpoint: dict[str, Any], data_path: str | Path) -> bool:
    """True when `data_path` exists but does not hold the bytes `checkpoint` was trained on."""
    recorded = checkpoint.get("data_sha256")
    return bool(recorded) and Path(data_path).is_file() and file_digest(data_path) != recorded


def load_run(run_dir: str | Path | None, root: str | Path = DEFAULT_ROOT, checkpoint: str | None = None) -> Run:
    """Load `run_dir` (or the latest run under `root` when None) for evaluate, sample and plots,
    from its `checkpoint` ("last", "best", or None: the best-dev one when it has one, else the last).
    A checkpoint.safetensors is read into NumPy arrays, with no torch (see `Run`).

    Raises:
        MakemoreError: as `resolve_run`, `chosen_checkpoint` and `load_checkpoint`.
    """
    path = resolve_run(run_dir, root)
    which = chosen_checkpoint(path, checkpoint)
    return Run(path, load_checkpoint(path, which, arrays="numpy"), which)


#: Set this environment variable (to anything non-empty) to answer with the torch model even for a
#: NumPy-trained run: for benchmarks/run.py's side-by-side timing, and tests of the two paths.
TORCH_ANSWERS_ENV = "MAKEMORE_TORCH_ANSWERS"


def numpy_inference(run: Run) -> Any:
    """The NumPy twin of a NumPy-trained MLP run's model (makemore.backends.numpy_mlp.NumpyMLP),
    or None: another backend, another family, a labelled run (its answers weigh every label, on
    torch), or TORCH_ANSWERS_ENV set."""
    if run.checkpoint.get("backend") != "numpy" or run.family.name != "mlp" or run.labels is not None or os.environ.get(TORCH_ANSWERS_ENV):
        return None
    from makemore.backends.numpy_mlp import NumpyMLP

    try:
        return NumpyMLP(run.config.model, run.checkpoint["model"], run.block_size)
    except (KeyError, ValueError) as e:
        raise MakemoreError(f"{checkpoint_file(run.path)}: parameters do not match the model in its config: {first_line(e)}") from None
