"""Words file → vocabulary → 80/10/10 split → (context, target) windows.

The lecture's data pipeline (makemore part 2), made general: nothing assumes 27 characters or
lowercase letters; the vocabulary is whatever characters the file holds, after a boundary token.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from makemore.errors import MakemoreError

#: Characters offered as data.boundary when a word contains the current one.
BOUNDARY_CANDIDATES = ".|#~^$@_"


def read_words(path: str | Path, boundary: str = ".") -> list[str]:
    """Read a UTF-8 words file: one word per line, each line stripped, blank lines skipped.

    CRLF endings, a missing final newline, a byte-order mark and surrounding spaces are fine.

    Raises:
        MakemoreError: the path is missing or a directory; the file is empty, blank, or not
            UTF-8 (naming the line); a word contains the boundary character (naming the line
            and a data.boundary that would work).
    """
    p = Path(path)
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
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise MakemoreError(f"{p}: line {line} is not UTF-8 text (byte {raw[e.start]:#04x})") from None
    words = [w for w in (line.strip() for line in text.split("\n")) if w]
    if not words:
        raise MakemoreError(f"{p}: no words: every line is blank")
    if boundary in text:
        for number, line in enumerate(text.split("\n"), start=1):
            if boundary in line.strip():
                free = [c for c in BOUNDARY_CANDIDATES if c not in text]
                hint = f"--set data.boundary='{free[0]}'" if free else "data.boundary"
                raise MakemoreError(
                    f"{p}: line {number}: the word {line.strip()!r} contains the boundary character "
                    f"{boundary!r}; choose another with {hint}"
                )
    return words


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


def split_words(words: list[str], seed: int = 42) -> tuple[list[str], list[str], list[str]]:
    """The lecture's 80/10/10 split of the words: shuffle with random.Random(seed), cut at
    int(0.8·n) and int(0.9·n). Reproducible from (words, seed); `words` is not modified.

    Returns:
        (train, dev, test) lists of words.

    Raises:
        MakemoreError: fewer than MIN_WORDS words, so a split would be empty.
    """
    if len(words) < MIN_WORDS:
        raise MakemoreError(
            f"only {len(words)} word{'s' if len(words) != 1 else ''}: an 80/10/10 train/dev/test split "
            f"needs at least {MIN_WORDS}"
        )
    shuffled = list(words)
    random.Random(seed).shuffle(shuffled)
    n1, n2 = int(0.8 * len(shuffled)), int(0.9 * len(shuffled))
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]


def build_windows(words: list[str], vocab: Vocab, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (context, target) pair of the lecture's `build_dataset`, without a loop over characters.

    For each word the context starts as block_size boundary tokens; for each character of
    word + boundary the pair (context, next id) is emitted and the context slides by one.

    Vectorized, in a few sequential passes over arrays of N and little memory besides X and Y
    (so the time stays linear in N when the arrays outgrow the CPU caches): Y is every word's ids
    followed by a boundary 0. The last column of X is the previous target, and each column to its
    left is the column to its right one row earlier (the context slides by one), with every
    column reset to the boundary at each word's first target.

    Returns:
        X: int64 (N, block_size), the contexts; Y: int64 (N,), the targets, with
        N = sum(len(w) + 1 for w in words).
    """
    lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))  # (W,)
    ids = vocab.encode_concat("".join(words), dtype=np.int32)  # (sum L,)
    ends = np.cumsum(lengths + 1)  # (W,) one past each word's boundary target
    N = int(ends[-1]) if len(ends) else 0
    X = np.zeros((N, block_size), dtype=np.int64)  # (N, block_size)
    Y = np.zeros(N, dtype=np.int64)  # (N,) each word's ids, then the boundary 0
    if N == 0:
        return X, Y
    is_char = np.ones(N, dtype=bool)  # (N,)
    is_char[ends - 1] = False
    Y[is_char] = ids
    firsts = ends - (lengths + 1)  # (W,) each word's first target: its context is all boundary
    X[1:, -1] = Y[:-1]  # (N-1,) the character just before the target
    X[firsts, -1] = 0
    for c in range(block_size - 2, -1, -1):
        X[1:, c] = X[:-1, c + 1]  # (N-1,) one further back: the next column, one row earlier
        X[firsts, c] = 0
    return X, Y


@dataclass
class Dataset:
    """A words file prepared for training: vocabulary, split words, and windows per split."""

    vocab: Vocab
    splits: dict[str, list[str]]
    """"train", "dev", "test" → words."""
    block_size: int

    def windows(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(X (N, block_size), Y (N,)) of one split."""
        return build_windows(self.splits[split], self.vocab, self.block_size)


def load_dataset(path: str | Path, block_size: int, seed: int, boundary: str = ".", vocab: Vocab | None = None) -> Dataset:
    """Read, build the vocabulary (or check the given one fits), and split the words.

    Raises:
        MakemoreError: any problem `read_words` or `split_words` reports, or a file with
            characters the given `vocab` lacks.
    """
    words = read_words(path, boundary)
    file_vocab = Vocab.from_words(words, boundary)
    if vocab is not None:
        extra = sorted(set(file_vocab.itos) - set(vocab.itos))
        if extra:
            raise MakemoreError(
                f"{path}: characters {''.join(extra)!r} are not in the run's vocabulary: "
                "the data does not fit this checkpoint (was the file changed?)"
            )
    try:
        splits = split_words(words, seed)
    except MakemoreError as e:
        raise MakemoreError(f"{path}: {e}") from None
    return Dataset(vocab or file_vocab, dict(zip(("train", "dev", "test"), splits)), block_size)
