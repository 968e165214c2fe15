"""Words, vocabulary, split and windows (issue 2, items 2-4)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from makemore.data import MIN_WORDS, Vocab, Windows, build_windows, load_dataset, read_words, split_order, split_words
from makemore.errors import MakemoreError


def naive_windows(words: list[str], vocab: Vocab, block_size: int) -> tuple[list[list[int]], list[int]]:
    """The lecture's build_dataset loop, character by character: the reference."""
    stoi = vocab.stoi
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + vocab.boundary:
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return X, Y


word_lists = st.lists(st.text(alphabet=st.characters(blacklist_characters=".\n\r", blacklist_categories=("Cs",)), min_size=1, max_size=12), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(words=word_lists, block_size=st.integers(min_value=1, max_value=8))
def test_windows_equal_the_naive_loop(words: list[str], block_size: int) -> None:
    vocab = Vocab.from_words(words)
    X, Y = build_windows(words, vocab, block_size)[:]
    Xn, Yn = naive_windows(words, vocab, block_size)
    assert X.shape == (len(Yn), block_size) and Y.shape == (len(Yn),)
    assert X.tolist() == Xn
    assert Y.tolist() == Yn


def test_vocab_comes_from_the_data_not_from_the_alphabet() -> None:
    words = ["Zoë", "Ærø", "李小龙", "o'neil", "ann marie"]
    vocab = Vocab.from_words(words)
    assert vocab.itos[0] == "."
    assert list(vocab.itos[1:]) == sorted(set("".join(words)))
    assert vocab.vocab_size == len(set("".join(words))) + 1
    assert all(vocab.itos[vocab.stoi[c]] == c for c in vocab.itos)
    X, Y = build_windows(words, vocab, 2)[:]
    assert "".join(vocab.itos[i] for i in Y.tolist()) == "".join(w + "." for w in words)


def test_names_vocab_is_boundary_plus_26_letters() -> None:
    words = read_words("data/names.txt")
    vocab = Vocab.from_words(words)
    assert vocab.itos == (".", *"abcdefghijklmnopqrstuvwxyz")
    assert len(words) == 32_469


def test_split_is_the_lectures_procedure_and_reproducible() -> None:
    words = [f"w{i}" for i in range(1000)]
    train, dev, test = split_words(words, seed=42)
    assert (len(train), len(dev), len(test)) == (800, 100, 100)
    shuffled = list(words)
    random.seed(42)
    random.shuffle(shuffled)  # exactly what the lecture does
    assert train + dev + test == shuffled
    assert split_words(words, seed=42) == (train, dev, test)
    assert split_words(words, seed=7) != (train, dev, test)
    assert words == [f"w{i}" for i in range(1000)]  # input untouched


@pytest.mark.parametrize("n", [6, 7, 9, 10, 11, 33, 32_469])
def test_split_sizes_cut_at_int_80_and_90_percent(n: int) -> None:
    train, dev, test = split_words([str(i) for i in range(n)], seed=0)
    assert len(train) == int(0.8 * n) and len(train) + len(dev) == int(0.9 * n) and len(test) == n - int(0.9 * n)
    assert min(len(train), len(dev), len(test)) >= 1


def test_too_few_words_for_a_split() -> None:
    with pytest.raises(MakemoreError, match=f"at least {MIN_WORDS}"):
        split_words(["a", "b", "c"], seed=0)


def test_read_words_strips_and_skips_blank_lines(tmp_path) -> None:
    path = tmp_path / "w.txt"
    path.write_bytes(b"  emma \r\n\r\nolivia\n   \nava")
    assert read_words(path) == ["emma", "olivia", "ava"]


def test_dataset_windows_cover_every_character_of_each_split(tmp_path) -> None:
    from tests.conftest import TINY_WORDS

    path = tmp_path / "w.txt"
    path.write_text("\n".join(TINY_WORDS), encoding="utf-8")
    ds = load_dataset(path, block_size=3, seed=42)
    total = 0
    for split in ("train", "dev", "test"):
        X, Y = ds.windows(split)[:]
        assert len(Y) == sum(len(w) + 1 for w in ds.split_words(split))
        assert X.dtype == np.int64 and X.shape[1] == 3
        total += len(Y)
    assert total == sum(len(w) + 1 for w in TINY_WORDS)


@settings(max_examples=60, deadline=None)
@given(words=word_lists, block_size=st.integers(min_value=1, max_value=8), seed=st.integers(0, 2**32 - 1))
def test_windows_gathered_by_index_are_the_naive_loops_rows(words: list[str], block_size: int, seed: int) -> None:
    """Minibatches are gathered lazily from the padded stream: any index array gives the rows the
    lecture's materialized X, Y would, in the index array's shape."""
    vocab = Vocab.from_words(words)
    windows = build_windows(words, vocab, block_size)
    Xn, Yn = (np.array(a, dtype=np.int64) for a in naive_windows(words, vocab, block_size))
    ix = np.random.default_rng(seed).integers(0, len(Yn), size=(3, 5))  # (k, B)
    X, Y = windows[ix]
    assert X.shape == (3, 5, block_size) and Y.shape == (3, 5) and X.dtype == Y.dtype == np.int64
    np.testing.assert_array_equal(X, Xn[ix])
    np.testing.assert_array_equal(Y, Yn[ix])
    chunks = list(windows.chunks(7))
    assert [len(y) for _, y in chunks] == [min(7, len(Yn) - s) for s in range(0, len(Yn), 7)]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in chunks]), Xn)


def test_each_splits_windows_are_those_of_its_words_in_split_order(tmp_path) -> None:
    path = tmp_path / "w.txt"
    words = [f"{'abcdefg'[i % 7] * (1 + i % 5)}{'xyz'[i % 3]}" for i in range(200)]
    path.write_text("\n".join(words), encoding="utf-8")
    ds = load_dataset(path, block_size=4, seed=3)
    train, dev, test = split_words(words, seed=3)
    assert (ds.split_words("train"), ds.split_words("dev"), ds.split_words("test")) == (train, dev, test)
    for split, split_list in zip(("train", "dev", "test"), (train, dev, test)):
        X, Y = ds.windows(split)[:]
        Xb, Yb = build_windows(split_list, ds.vocab, 4)[:]
        np.testing.assert_array_equal(X, Xb)
        np.testing.assert_array_equal(Y, Yb)
    assert ds.lengths.max() == max(map(len, words))


def test_split_order_is_the_permutation_random_shuffle_applies() -> None:
    for n in (6, 100, 5000):
        items = list(range(n))
        random.Random(11).shuffle(items)
        assert split_order(n, 11).tolist() == items


def test_a_vocabulary_over_256_characters_keeps_every_id() -> None:
    words = ["".join(chr(0x4E00 + 7 * i + j) for j in range(7)) for i in range(60)]  # 420 distinct characters
    vocab = Vocab.from_words(words)
    windows = build_windows(words, vocab, 3)
    assert windows.stream.dtype == np.uint16
    _, Y = windows[:]
    assert "".join(vocab.itos[i] for i in Y.tolist()) == "".join(w + "." for w in words)


def test_windows_of_arrays_give_back_the_arrays() -> None:
    rng = np.random.default_rng(0)
    X, Y = rng.integers(0, 30, size=(50, 5)), rng.integers(0, 30, size=50)
    windows = Windows.of_arrays(X, Y)
    assert len(windows) == 50
    Xg, Yg = windows[:]
    np.testing.assert_array_equal(Xg, X)
    np.testing.assert_array_equal(Yg, Y)
