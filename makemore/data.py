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

    def encode_concat(self, text: str) -> np.ndarray:
        """Ids of every character of `text`, vectorized: int64 (len(text),).

        Raises:
            MakemoreError: a character of `text` is not in the vocabulary.
        """
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (len(text),)
        chars = np.array([ord(c) for c in self.itos[1:]], dtype=np.uint32)  # (vocab_size-1,) sorted
        pos = np.searchsorted(chars, codes)  # (len(text),)
        pos_clipped = np.minimum(pos, len(chars) - 1)
        missing = (pos >= len(chars)) | (chars[pos_clipped] != codes) if len(chars) else np.ones(len(codes), bool)
        if missing.any():
            bad = chr(int(codes[int(np.argmax(missing))]))
            raise MakemoreError(f"character {bad!r} is not in the vocabulary ({''.join(self.itos[1:])!r})")
        return pos.astype(np.int64) + 1


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

    Vectorized: the words are laid out in one padded stream, each as block_size boundary
    tokens followed by its ids, then one boundary at the very end; target positions are the
    word's characters and the boundary after it, and a context is the block_size ids before it.

    Returns:
        X: int64 (N, block_size), the contexts; Y: int64 (N,), the targets, with
        N = sum(len(w) + 1 for w in words).
    """
    lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))  # (W,)
    ids = vocab.encode_concat("".join(words))  # (sum L,)
    seg = lengths + block_size  # (W,) each word's segment: block_size pads + its characters
    starts = np.concatenate(([0], np.cumsum(seg)[:-1]))  # (W,) where each segment begins
    stream = np.zeros(int(seg.sum()) + 1, dtype=np.int64)  # (S,) the padded stream, one final boundary
    word_of_char = np.repeat(np.arange(len(words)), lengths)  # (sum L,)
    char_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))  # (W,) each word's offset in `ids`
    char_pos = starts[word_of_char] + block_size + (np.arange(len(ids)) - char_starts[word_of_char])  # (sum L,)
    stream[char_pos] = ids
    # targets: every character and the boundary after it = positions block_size .. block_size+L of a segment
    word_of_target = np.repeat(np.arange(len(words)), lengths + 1)  # (N,)
    target_starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))  # (W,)
    offset = np.arange(len(word_of_target)) - target_starts[word_of_target]  # (N,) 0..L within the word
    target_pos = starts[word_of_target] + block_size + offset  # (N,)
    Y = stream[target_pos]  # (N,)
    X = stream[target_pos[:, None] - block_size + np.arange(block_size)]  # (N, block_size)
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
    return Dataset(vocab or file_vocab, dict(zip(("train", "dev", "test"), split_words(words, seed))), block_size)
