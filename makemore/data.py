"""Words file → vocabulary → 80/10/10 split → one padded id stream → the views models read.

The lecture's data pipeline (makemore part 2), made general: nothing assumes 27 characters or
lowercase letters; the vocabulary is whatever characters the file holds, after a boundary token.
Two views read the same stream: `Windows` (a context of block_size characters → the next one:
bigram, MLP, WaveNet) and `Sequences` (a whole word → every next character: RNN, GRU, LSTM, bag of
words, Transformer). Each view type carries its own behaviour: how a split or a list of words
becomes examples, the context length a model is built with, the longest word it reads whole and
how many boundary tokens sampling starts from. Nobody compares view names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from makemore.config import DataConfig
from makemore.errors import MakemoreError

#: Characters offered as data.boundary when a word contains the current one.
BOUNDARY_CANDIDATES = ".|#~^$@_"


def read_words(path: str | Path, boundary: str = ".") -> list[str]:
    """Read a UTF-8 words file: one word per line, each line stripped, blank lines skipped.

    CRLF endings, a missing final newline, a byte-order mark and surrounding spaces are fine.
    (`read_words_and_digest` also returns the SHA-256 of the bytes it read.)

    Raises:
        MakemoreError: the path is missing or a directory; the file is empty, blank, or not
            UTF-8 (naming the line); a word contains the boundary character (naming the line
            and a data.boundary that would work).
    """
    return read_words_and_digest(path, boundary)[0]


def read_words_and_digest(path: str | Path, boundary: str = ".") -> tuple[list[str], str]:
    """`read_words`, and the SHA-256 (hex) of the bytes read: the file is read once for both.
    A labelled file's labels are dropped (see `read_labelled_words`).

    Raises:
        MakemoreError: as `read_words`, and as `read_labelled_words` for a labelled file.
    """
    words, _, digest = read_labelled_words(path, boundary)
    return words, digest


def read_labelled_words(path: str | Path, boundary: str = ".") -> tuple[list[str], list[str] | None, str]:
    """Read a words file that may carry one label per line: (words, labels or None, SHA-256 hex).

    A file with a tab inside a line (between its first and last non-blank characters) is
    labelled: every non-blank line is `word<TAB>label` (spaces around either are stripped; a
    label is any string). Any other file is read as `read_words` reads it (white space around
    each line, tabs included, stripped), labels None.

    Raises:
        MakemoreError: as `read_words`; for a labelled file, the first malformed line, naming the
            file, the line number and the reason: no label, more than one tab (a tab inside the
            word), an empty word or an empty label.
    """
    p = Path(path)
    raw = _read_bytes(p)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise MakemoreError(f"{p}: line {line} is not UTF-8 text (byte {raw[e.start]:#04x})") from None
    labels = None
    if "\t" in text and any("\t" in line.strip() for line in text.split("\n")):  # one C scan for an unlabelled file
        words, labels = _labelled_lines(p, text)
    else:
        words = [w for w in (line.strip() for line in text.split("\n")) if w]
    if not words:
        raise MakemoreError(f"{p}: no words: every line is blank")
    if boundary in text:
        _check_boundary(p, text, words, boundary, labels is not None)
    return words, labels, hashlib.sha256(raw).hexdigest()


def _read_bytes(p: Path) -> bytes:
    """The bytes of a words file. Raises MakemoreError: missing, a directory, unreadable, empty."""
    if not p.exists():
        raise MakemoreError(f"{p}: no such file (set data.path to a words file, one word per line)")
    if p.is_dir():
        raise MakemoreError(f"{p}: is a directory, not a words file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise MakemoreError(f"{p}: cannot read: {e.strerror}") from None
    if not raw:
        raise MakemoreError(f"{p}: the file is empty")
    return raw


def _labelled_lines(p: Path, text: str) -> tuple[list[str], list[str]]:
    """The words and labels of a labelled file's text, one `word<TAB>label` per non-blank line.

    Raises:
        MakemoreError: the first malformed line: file, line number, reason.
    """
    words, labels = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        parts = line.strip(" \r\v\f").split("\t")
        where = f"{p}: line {number}"
        if len(parts) == 1:
            raise MakemoreError(f"{where}: no label: a labelled words file has word<TAB>label on every line")
        if len(parts) > 2:
            raise MakemoreError(f"{where}: {len(parts) - 1} tabs: a word cannot contain a tab (one word<TAB>label per line)")
        word, label = parts[0].strip(), parts[1].strip()
        if not word:
            raise MakemoreError(f"{where}: no word before the tab (word<TAB>label)")
        if not label:
            raise MakemoreError(f"{where}: an empty label after the tab (word<TAB>label)")
        words.append(word)
        labels.append(label)
    return words, labels


def _check_boundary(p: Path, text: str, words: list[str], boundary: str, labelled: bool) -> None:
    """Raises MakemoreError naming the first line whose word holds the boundary character, and a
    data.boundary that would work (a label may hold it: labels are not characters of the model)."""
    for number, line in enumerate(text.split("\n"), start=1):
        word = line.strip(" \r\v\f").split("\t")[0].strip() if labelled else line.strip()
        if boundary in word:
            free = [c for c in BOUNDARY_CANDIDATES if c not in "".join(words)]
            hint = f"--set data.boundary='{free[0]}'" if free else "data.boundary"
            raise MakemoreError(
                f"{p}: line {number}: the word {word!r} contains the boundary character "
                f"{boundary!r}; choose another with {hint}"
            )


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), recorded in a run so a changed data file is noticed."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Vocab:
    """Characters ↔ integer ids. Index 0 is the boundary token; the rest are sorted characters.

    Source: the lecture's `stoi`/`itos`, with '.' as the start/end token at index 0.
    """

    itos: tuple[str, ...]
    """itos[i] is the character with id i; itos[0] is the boundary token."""

    @classmethod
    def from_words(cls, words: list[str], boundary: str = ".") -> Vocab:
        """Every character that occurs in `words`, sorted, after `boundary` at index 0."""
        chars = sorted(set("".join(words)) - {boundary})
        return cls((boundary, *chars))

    @property
    def stoi(self) -> dict[str, int]:
        """Character → id."""
        return {c: i for i, c in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        """Number of tokens, boundary included."""
        return len(self.itos)

    @property
    def boundary(self) -> str:
        """The boundary character (id 0)."""
        return self.itos[0]

    def decode(self, ids: list[int]) -> str:
        """Ids → string, boundary tokens dropped."""
        return "".join(self.itos[i] for i in ids if i != 0)

    def encode_concat(self, text: str, dtype: type = np.int64) -> np.ndarray:
        """Ids of every character of `text`, vectorized: int64 (len(text),), or the signed integer `dtype` given.

        Raises:
            MakemoreError: a character of `text` is not in the vocabulary.
        """
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (len(text),) code points
        chars = np.array([ord(c) for c in self.itos[1:]], dtype=np.int64)  # (vocab_size-1,)
        top = max(int(codes.max()) if len(codes) else 0, int(chars.max()) if len(chars) else 0)
        table = np.full(top + 1, -1, dtype=dtype)  # (top+1,) code point -> id, -1 if not in the vocabulary
        table[chars] = np.arange(1, len(chars) + 1)
        ids = table[codes]  # (len(text),) one lookup per character
        missing = ids < 0  # (len(text),)
        if missing.any():
            bad = chr(int(codes[int(np.argmax(missing))]))
            raise MakemoreError(f"character {bad!r} is not in the vocabulary ({''.join(self.itos[1:])!r})")
        return ids


#: A split needs at least one word in each of train, dev and test.
MIN_WORDS = 6

#: The target id of a padded position in a sequence minibatch: no loss, no gradient (the
#: ignore_index of makemore.models.base.lm_loss).
IGNORE = -1

#: Windows evaluated (or counted) at once: bounds memory whatever a split's size.
EVAL_CHUNK = 65_536


def split_order(n: int, seed: int = 42) -> np.ndarray:
    """The order the lecture's split puts n words in: int64 (n,), a permutation of range(n).

    `random.Random(seed).shuffle` of a list of n items; its swaps depend only on n and the seed, so
    shuffling the indices gives the words' order without moving a million string objects around
    (which costs more per word as the list outgrows the CPU caches). Indices are shuffled in an
    array('q'), whose items are not separate objects, for the same reason.
    """
    order = array("q", range(n))
    random.Random(seed).shuffle(order)
    return np.frombuffer(order, dtype=np.int64)


def split_bounds(n: int) -> tuple[int, int]:
    """Where the lecture cuts n shuffled words: (int(0.8·n), int(0.9·n)).

    Raises:
        MakemoreError: fewer than MIN_WORDS words, so a split would be empty.
    """
    if n < MIN_WORDS:
        raise MakemoreError(
            f"only {n} word{'s' if n != 1 else ''}: an 80/10/10 train/dev/test split needs at least {MIN_WORDS}"
        )
    return int(0.8 * n), int(0.9 * n)


def split_words(words: list[str], seed: int = 42) -> tuple[list[str], list[str], list[str]]:
    """The lecture's 80/10/10 split of the words: shuffle with random.Random(seed), cut at
    int(0.8·n) and int(0.9·n). Reproducible from (words, seed); `words` is not modified.

    Returns:
        (train, dev, test) lists of words.

    Raises:
        MakemoreError: fewer than MIN_WORDS words, so a split would be empty.
    """
    n1, n2 = split_bounds(len(words))
    shuffled = [words[i] for i in split_order(len(words), seed).tolist()]
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]


def id_dtype(vocab_size: int) -> type:
    """The smallest unsigned integer type that holds ids 0..vocab_size-1."""
    return np.uint8 if vocab_size <= 2**8 else np.uint16 if vocab_size <= 2**16 else np.uint32


def padded_stream(ids: np.ndarray, lengths: np.ndarray, block_size: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The words' ids in one array, block_size boundary tokens (0) before each word and one after the last.

    For block_size 3 and the words emma, ava: `. . . e m m a . . . a v a .` (as ids). The block_size
    ids before a word's first character are its first context, the lecture's `[0] * block_size`,
    and the boundary after a word is its last target.

    Args:
        ids: (ΣL,) every word's character ids, concatenated; lengths: int64 (W,) each word's length.

    Returns:
        stream: (W·block_size + ΣL + 1,) ids in the smallest unsigned type that holds vocab_size;
        starts: int64 (W,), where each word's first character sits in the stream.
    """
    starts = np.cumsum(lengths + block_size) - lengths  # (W,)
    stream = np.zeros(int(lengths.sum()) + block_size * len(lengths) + 1, dtype=id_dtype(vocab_size))  # (S,) all boundary
    edges = np.zeros(len(stream) + 1, dtype=np.int8)  # (S+1,) +1 where a word begins, −1 just after it ends
    edges[starts] = 1
    edges[starts + lengths] -= 1  # subtracted, not set: an empty word (a sample that ended at once) begins and ends at one place
    in_word = np.cumsum(edges[:-1], dtype=np.int8).view(bool)  # (S,) 1 on characters, 0 on the padding
    stream[in_word] = ids
    return stream, starts


def window_targets(starts: np.ndarray, lengths: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Where in the padded stream each window's target sits, for the words `order` (indices), in that order.

    A word of length L has L + 1 windows (one per character, one for its end), whose targets are
    the L + 1 stream positions from its first character on: int64 (Σ (L+1),).
    """
    counts = lengths[order] + 1  # (w,) windows of each word
    first = np.cumsum(counts) - counts  # (w,) index of each word's first window
    return np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(starts[order] - first, counts)  # (N,)


class View(Protocol):
    """What training and evaluation need from a split's examples, whatever their shape.

    A view holds `len(view)` examples to draw minibatches from (windows, or whole words) and
    predicts `n_targets` characters in all: every
    character of every word plus one end token, so the mean NLL per character of a split means
    the same thing for every view.
    """

    def __len__(self) -> int:
        """Examples to draw minibatch indices from."""

    @property
    def n_targets(self) -> int:
        """Characters predicted over the whole split (Σ (len(w) + 1) over its words)."""

    labels: np.ndarray | None
    """The label id of every example (a window carries its word's), or None: unlabelled data."""

    def batches(self, ix: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
        """The minibatches of example indices ix int (k, B), one (X, Y) int64 pair per row, in order;
        (X, Y, L) when the view is labelled, L int64 (B,) each example's label id."""

    def chunks(self, size: int = EVAL_CHUNK) -> Iterator[tuple[np.ndarray, ...]]:
        """Every example in order, about `size` targets at a time, as (X, Y) int64 pairs, or
        (X, Y, L) triples when labelled (L int64 (b,), one label id per example)."""

    def relabelled(self, label: int) -> View:
        """The same examples, every one carrying label id `label` (a labelled view only): what
        classification scores each label with."""

    # What a view type (the class: Windows or Sequences) says about the models that read it.
    name: str
    """"windows" or "sequences": for messages and docs only."""

    @classmethod
    def of_split(cls, dataset: Dataset, split: str) -> View:
        """The examples of one split of `dataset`, in the split's order."""

    @classmethod
    def of_words(cls, words: list[str], vocab: Vocab, block_size: int) -> View:
        """The examples of the given words, in order: targets word after word, each word's
        characters then its end token (the same order for every view)."""

    @staticmethod
    def context_length(data: DataConfig, longest_word: int, reader: str) -> int:
        """The block_size a model reading this view is built with (raises MakemoreError if the data cannot fit)."""

    @staticmethod
    def longest_readable(block_size: int) -> int | None:
        """The longest word a model built with `block_size` reads whole; None: any length."""

    @staticmethod
    def start_padding(block_size: int) -> int:
        """How many boundary tokens a sample starts from."""

    @staticmethod
    def positions(block_size: int) -> int:
        """Positions a model built with `block_size` predicts per example of a minibatch."""


def mean_over(view: View, nll_sum: Callable[[np.ndarray, np.ndarray], float], chunk: int = EVAL_CHUNK,
              part: tuple[int, int] = (0, 1)) -> float:
    """Mean NLL in nats per character over a whole view: Σ nll_sum(X, Y) over its chunks / n_targets.

    `nll_sum(X, Y)` returns the summed NLL (nats) of one chunk's targets (`nll_sum(X, Y, L)` for a
    labelled view, L the chunk's label ids); chunking bounds memory whatever the split's size. Every backend and `makemore evaluate` compute a split's loss here.
    part (k, n): only chunks k, k + n, k + 2n, ... are summed (still divided by all n_targets), so
    the n parts add up to the mean; n processes can each compute one (makemore.distributed).
    """
    k, n = part
    total = 0.0
    for i, batch in enumerate(view.chunks(chunk)):
        if i % n == k:
            total += float(nll_sum(*batch))
    return total / max(view.n_targets, 1)


def with_labels(XY: tuple[np.ndarray, np.ndarray], labels: np.ndarray | None, ix: slice | np.ndarray) -> tuple[np.ndarray, ...]:
    """(X, Y) as it is for unlabelled data, or (X, Y, L) with L = labels[ix] as int64: the examples' label ids."""
    return XY if labels is None else (*XY, labels[ix].astype(np.int64))


@dataclass(frozen=True)
class Windows:
    """The (context, target) pairs of a list of words, gathered on demand from one padded stream.

    The lecture's build_dataset materializes X int64 (N, block_size) and Y (N,): 32 bytes a window
    at block_size 3. Here window i is read from the stream when asked for,

        X[i] = stream[targets[i] - block_size : targets[i]],   Y[i] = stream[targets[i]],

    so a split costs its targets (8 bytes a window) plus the stream (about 1 byte a character),
    and any block_size costs the same.
    """

    stream: np.ndarray
    """(S,) unsigned ids; see `padded_stream`."""
    targets: np.ndarray
    """int64 (N,) stream position of each window's target, in window order."""
    block_size: int
    labels: np.ndarray | None = None
    """(N,) the label id of each window (its word's), or None for unlabelled data."""

    def __len__(self) -> int:
        """N, the number of windows."""
        return len(self.targets)

    def __getitem__(self, ix: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows `ix` (a slice, or an int array of any shape) as X int64 (*ix.shape, block_size), Y int64 (*ix.shape)."""
        t = self.targets[ix]  # (*ix.shape,)
        X = self.stream[t[..., None] + np.arange(-self.block_size, 0)]  # (*ix.shape, block_size)
        return X.astype(np.int64), self.stream[t].astype(np.int64)

    @property
    def n_targets(self) -> int:
        """One target per window: N."""
        return len(self.targets)

    def batches(self, ix: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
        """Minibatches of windows ix int (k, B): gathered in one pass, then (X (B, block_size), Y (B,)) row by row
        (and L (B,) when labelled)."""
        X, Y = self[ix]  # (k, B, block_size), (k, B)
        if self.labels is None:
            for k in range(len(ix)):
                yield X[k], Y[k]
            return
        L = self.labels[ix].astype(np.int64)  # (k, B)
        for k in range(len(ix)):
            yield X[k], Y[k], L[k]

    def chunks(self, size: int = EVAL_CHUNK) -> Iterator[tuple[np.ndarray, ...]]:
        """Every window in order, `size` at a time: (X (≤size, block_size), Y (≤size,)) int64 (and L (≤size,) when labelled)."""
        for start in range(0, len(self), size):
            yield with_labels(self[start : start + size], self.labels, slice(start, start + size))

    def relabelled(self, label: int) -> Windows:
        """These windows, each carrying label id `label`."""
        return dataclasses.replace(self, labels=np.full(len(self.targets), label, dtype=np.int64))

    name = "windows"

    @classmethod
    def of_split(cls, dataset: Dataset, split: str) -> Windows:
        """The windows of one split of `dataset` (N = Σ (len(w) + 1) over its words), sharing its stream;
        each carries its word's label id when the dataset is labelled."""
        order = dataset.order[split]  # (W_split,)
        labels = None if dataset.label_ids is None else np.repeat(dataset.label_ids[order], dataset.lengths[order] + 1)  # (N,)
        return cls(dataset.stream, window_targets(dataset.starts, dataset.lengths, order), dataset.block_size, labels)

    @classmethod
    def of_words(cls, words: list[str], vocab: Vocab, block_size: int, labels: np.ndarray | None = None) -> Windows:
        """Every (context, target) pair of the lecture's `build_dataset`, in order (see `build_windows`);
        with labels (int (W,), one id per word) each window carries its word's.

        Raises:
            MakemoreError: a word has a character the vocabulary lacks.
        """
        windows = build_windows(words, vocab, block_size)
        if labels is None:
            return windows
        counts = np.fromiter(map(len, words), dtype=np.int64, count=len(words)) + 1  # (W,) windows per word
        return dataclasses.replace(windows, labels=np.repeat(np.asarray(labels, dtype=np.int64), counts))

    @staticmethod
    def context_length(data: DataConfig, longest_word: int, reader: str) -> int:
        """The block_size a window model is built with: data.block_size characters of context,
        whatever the longest word (`reader`, the model.type, is for the other view's message)."""
        return data.block_size

    @staticmethod
    def longest_readable(block_size: int) -> int | None:
        """Any length (None): a window model reads the last block_size characters wherever it is."""
        return None

    @staticmethod
    def start_padding(block_size: int) -> int:
        """Boundary tokens sampling starts from: a full context of them, the lecture's `[0] * block_size`."""
        return block_size

    @staticmethod
    def positions(block_size: int) -> int:
        """Positions predicted per example: one (the window's target)."""
        return 1

    @classmethod
    def of_arrays(cls, X: np.ndarray, Y: np.ndarray) -> Windows:
        """Windows that are already materialized, X int (N, block_size) and Y int (N,) (each row
        laid out as its context followed by its target)."""
        N, block_size = X.shape
        stream = np.concatenate([X, Y[:, None]], axis=1).ravel()  # (N·(block_size+1),)
        return cls(stream, np.arange(N, dtype=np.int64) * (block_size + 1) + block_size, block_size)


@dataclass(frozen=True)
class Sequences:
    """Whole words as (input, target) sequences, gathered on demand from one padded stream.

    A word w of L characters is one example of L + 1 positions (makemore.py's layout):

        input  = boundary, w[0], ..., w[L-1]        X[t] = stream[start - 1 + t]
        target = w[0], ..., w[L-1], boundary        Y[t] = stream[start + t]

    so a sequence model predicts exactly the targets the windows of the same words have, and a
    split's mean NLL per character means the same thing for both views. A minibatch of words is
    padded only to its own longest word: inputs with the boundary (0), targets with IGNORE. No
    (N, T) matrix is ever built for a whole split.
    """

    stream: np.ndarray
    """(S,) unsigned ids, at least one boundary before every word and after the last; see `padded_stream`."""
    starts: np.ndarray
    """int64 (W,) where each word of the view begins in the stream, in the view's (split) order."""
    lengths: np.ndarray
    """int64 (W,) each word's length."""
    labels: np.ndarray | None = None
    """(W,) each word's label id, or None for unlabelled data."""

    def __len__(self) -> int:
        """W, the number of words (examples)."""
        return len(self.starts)

    @property
    def n_targets(self) -> int:
        """Σ (L + 1): one target per character plus the end token, per word."""
        return int(self.lengths.sum()) + len(self.lengths)

    def __getitem__(self, ix: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Words `ix` (a slice or a 1-D int array) as X int64 (b, T) and Y int64 (b, T), T = their longest length + 1."""
        starts, lengths = self.starts[ix], self.lengths[ix]  # (b,), (b,)
        T = int(lengths.max()) + 1 if len(lengths) else 1
        t = np.arange(T)  # (T,)
        inside = t <= lengths[:, None]  # (b, T) the L + 1 real positions of each word
        pos = np.minimum(starts[:, None] - 1 + t, len(self.stream) - 2)  # (b, T) input positions, kept inside the stream
        X = np.where(inside, self.stream[pos], 0).astype(np.int64)  # (b, T) boundary, then the word, then boundary padding
        Y = np.where(inside, self.stream[pos + 1].astype(np.int64), IGNORE)  # (b, T) the word, its end token, then IGNORE
        return X, Y

    def batches(self, ix: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
        """Minibatches of words ix int (k, B): one (X (B, T), Y (B, T)) per row, each padded to its own longest word
        (and L (B,) when labelled)."""
        for row in ix:
            yield with_labels(self[row], self.labels, row)

    def relabelled(self, label: int) -> Sequences:
        """These words, each carrying label id `label`."""
        return dataclasses.replace(self, labels=np.full(len(self.starts), label, dtype=np.int64))

    name = "sequences"

    @classmethod
    def of_split(cls, dataset: Dataset, split: str) -> Sequences:
        """The words of one split of `dataset`, in the split's order, sharing its stream."""
        order = dataset.order[split]  # (W_split,)
        labels = None if dataset.label_ids is None else dataset.label_ids[order]  # (W_split,)
        return cls(dataset.stream, dataset.starts[order], dataset.lengths[order], labels)

    @classmethod
    def of_words(cls, words: list[str], vocab: Vocab, block_size: int, labels: np.ndarray | None = None) -> Sequences:
        """The given words as sequences, in order (block_size is not needed: one boundary pads each word);
        with labels, int (W,) one id per word.

        Raises:
            MakemoreError: a word has a character the vocabulary lacks.
        """
        stream, starts, lengths = pad_words(words, vocab, 1)
        return cls(stream, starts, lengths, None if labels is None else np.asarray(labels, dtype=np.int64))

    @staticmethod
    def context_length(data: DataConfig, longest_word: int, reader: str) -> int:
        """The block_size a sequence model is built with: the longest word + 1, since its input is
        the boundary and then the whole word (makemore.py's choice).

        Args:
            data: the [data] section (path and max_len, for the message). longest_word: characters
                in the longest word (recorded in every checkpoint as max_word_len). reader: the model.type.

        Raises:
            MakemoreError: the longest word is over data.max_len.
        """
        if longest_word > data.max_len:
            raise MakemoreError(
                f"{data.path}: the longest word has {longest_word} characters, more than data.max_len = {data.max_len}; "
                f"a model.type = {reader!r} model reads whole words: raise data.max_len or remove the long lines"
            )
        return longest_word + 1

    @staticmethod
    def longest_readable(block_size: int) -> int | None:
        """block_size − 1: the input is the boundary and then the whole word (the inverse of `context_length`)."""
        return block_size - 1

    @staticmethod
    def start_padding(block_size: int) -> int:
        """Boundary tokens sampling starts from: one, the sequence's first input."""
        return 1

    @staticmethod
    def positions(block_size: int) -> int:
        """Positions predicted per example: up to block_size, every character of the word and its end."""
        return block_size

    def chunks(self, size: int = EVAL_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every word in order, as many words at a time as hold about `size` targets (at least one word)."""
        ends = np.cumsum(self.lengths + 1)  # (W,) targets up to and including each word
        start = 0
        while start < len(self):
            before = int(ends[start - 1]) if start else 0
            stop = max(int(np.searchsorted(ends, before + size, side="right")), start + 1)
            yield with_labels(self[start:stop], self.labels, slice(start, stop))
            start = stop


def pad_words(words: list[str], vocab: Vocab, block_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`padded_stream` of the words: (stream (S,), starts int64 (W,), lengths int64 (W,)).

    Raises:
        MakemoreError: a word has a character the vocabulary lacks.
    """
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))  # (W,)
    ids = vocab.encode_concat("".join(words), np.int32)  # (ΣL,)
    return (*padded_stream(ids, lengths, block_size, vocab.vocab_size), lengths)


def build_windows(words: list[str], vocab: Vocab, block_size: int) -> Windows:
    """Every (context, target) pair of the lecture's `build_dataset`, in order, without a loop over characters.

    For each word the context starts as block_size boundary tokens; for each character of
    word + boundary the pair (context, next id) is a window and the context slides by one.
    `build_windows(...)[:]` gives the lecture's X int64 (N, block_size) and Y (N,), with
    N = sum(len(w) + 1 for w in words).
    """
    stream, starts, lengths = pad_words(words, vocab, block_size)
    return Windows(stream, window_targets(starts, lengths, np.arange(len(words))), block_size)


@dataclass
class Dataset:
    """A words file prepared for training: vocabulary, the split, and the padded stream windows come from."""

    vocab: Vocab
    words: list[str]
    """Every word, in file order."""
    order: dict[str, np.ndarray]
    """"train", "dev", "test" → int64 indices into `words`, in the split's (shuffled) order."""
    block_size: int
    stream: np.ndarray
    """(S,) every word's ids, padded; see `padded_stream`."""
    starts: np.ndarray
    """int64 (W,) where each word begins in `stream`."""
    lengths: np.ndarray
    """int64 (W,) each word's length."""
    sha256: str = ""
    """SHA-256 (hex) of the words file's bytes, as read (recorded in a run as data_sha256)."""
    labels: tuple[str, ...] | None = None
    """The label set, sorted (or the run's, on resuming), or None: the file is unlabelled."""
    label_ids: np.ndarray | None = None
    """int64 (W,) each word's label id (an index into `labels`), in file order; None when unlabelled."""

    def label_counts(self, split: str = "train") -> list[int]:
        """How many words of `split` carry each label, in `labels` order (the prior of sampling and classifying)."""
        assert self.labels is not None and self.label_ids is not None
        return np.bincount(self.label_ids[self.order[split]], minlength=len(self.labels)).tolist()

    def split_words(self, split: str) -> list[str]:
        """The words of one split, in the split's order."""
        return [self.words[i] for i in self.order[split].tolist()]

    def windows(self, split: str) -> Windows:
        """The windows of one split: the lecture's Xtr/Ytr, Xdev/Ydev, Xte/Yte (`[:]` materializes them)."""
        return Windows.of_split(self, split)

    def view(self, split: str, kind: type[View]) -> View:
        """The examples of one split as a model family reads them (`kind`: Windows or Sequences, its Family.view)."""
        return kind.of_split(self, split)


def load_dataset(path: str | Path, block_size: int, seed: int, boundary: str = ".", vocab: Vocab | None = None,
                 labels: tuple[str, ...] | None = None) -> Dataset:
    """Read, build the vocabulary (or check the given one fits), split the words and pad them into one stream.

    Args:
        vocab: a run's vocabulary (resuming, evaluating): the file must fit it, and `labels`, the
            run's label set (None: the run is unlabelled), must fit the file's labels.

    Raises:
        MakemoreError: any problem `read_labelled_words` or `split_bounds` reports, a file with
            characters the given `vocab` lacks, labels where the run has none or none where it
            has some, a label that is not in the run's set.
    """
    words, file_labels, sha256 = read_labelled_words(path, boundary)
    file_vocab = Vocab.from_words(words, boundary)
    if vocab is not None:
        extra = sorted(set(file_vocab.itos) - set(vocab.itos))
        if extra:
            raise MakemoreError(
                f"{path}: characters {''.join(extra)!r} are not in the run's vocabulary: "
                "the data does not fit this checkpoint (was the file changed?)"
            )
    label_set, label_ids = _label_ids(path, file_labels, labels if vocab is not None else None, vocab is not None)
    vocab = vocab or file_vocab
    try:
        n1, n2 = split_bounds(len(words))
    except MakemoreError as e:
        raise MakemoreError(f"{path}: {e}") from None
    order = split_order(len(words), seed)  # (W,)
    stream, starts, lengths = pad_words(words, vocab, block_size)
    return Dataset(vocab, words, {"train": order[:n1], "dev": order[n1:n2], "test": order[n2:]}, block_size, stream, starts, lengths,
                   sha256, label_set, label_ids)


def _label_ids(path: str | Path, file_labels: list[str] | None, run_labels: tuple[str, ...] | None,
               of_run: bool) -> tuple[tuple[str, ...] | None, np.ndarray | None]:
    """(label set, int64 (W,) label ids): the file's own sorted set, or the run's when `of_run`.

    Raises:
        MakemoreError: (of_run) a labelled file for an unlabelled run, or the reverse; a label the run lacks.
    """
    if of_run and (file_labels is None) != (run_labels is None):
        has = "labels (word<TAB>label)" if file_labels is not None else "no labels"
        want = "without labels" if run_labels is None else f"with the labels {', '.join(run_labels)}"
        raise MakemoreError(f"{path}: the file has {has}, but the run was trained {want} (was the file changed?)")
    if file_labels is None:
        return None, None
    label_set = tuple(run_labels) if of_run else tuple(sorted(set(file_labels)))
    index = {label: i for i, label in enumerate(label_set)}
    unknown = sorted(set(file_labels) - set(index))
    if unknown:
        raise MakemoreError(f"{path}: label {unknown[0]!r} is not one of the run's labels ({', '.join(label_set)})")
    return label_set, np.fromiter((index[label] for label in file_labels), dtype=np.int64, count=len(file_labels))
