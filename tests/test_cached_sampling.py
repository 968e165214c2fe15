"""Fast sampling for sequence models (issue 23, item 4): each family's incremental `step` (a
Transformer's key/value cache, a recurrent model's carried state, a bag of words' running sum)
gives the logits of the full forward at every position, and sampling through it draws the very
words that re-reading the whole prefix at every character draws, for plain and selective sampling.

The models are small (n_layers 2, n_head 2, dropout 0.3 in eval mode) with random weights and a
boundary bias, so their words have varied lengths: samples leave the batch at different steps,
and the state's rows must follow them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from makemore.cli import app
from makemore.config import ModelConfig
from makemore.data import Sequences, Vocab
from makemore.models import build_model
from makemore.sample import REREAD_ENV, Wanted, sample, sample_wanted
from tests.conftest import tiny_overrides, write_tiny_words

SEQUENCE_FAMILIES = ["rnn", "gru", "lstm", "bow", "transformer"]
VOCAB = Vocab((".", *"abcdefghijklmnopqrstuvwxyz"))
BLOCK_SIZE = 12  # the longest word such a model reads whole: 11 characters

#: The step's logits against the forward's, float32: both compute the same sums, possibly in a
#: different order (a (B, n) matmul against a (B, T, n) one), so they agree to float rounding.
RTOL, ATOL = 1e-5, 1e-5

#: Added to each model's boundary logit so its words have many lengths from 0 to 11 (the bag of
#: words, randomised, already ends words early).
BOUNDARY_BIAS = {"bow": 0.0}


def model_of(family: str, seed: int = 0) -> nn.Module:
    """A small model of `family` in eval mode, its weights randomised around the initialisation
    (so the logits are far from flat) and its boundary logit raised (words of a few characters)."""
    cfg = dataclasses.replace(ModelConfig(), type=family, n_embd=8, n_hidden=16, n_layers=2, n_head=2, dropout=0.3)
    g = torch.Generator().manual_seed(seed)
    model = build_model(cfg, VOCAB.vocab_size, BLOCK_SIZE, g)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
        (model.b2 if family == "bow" else model.b_out)[0] += BOUNDARY_BIAS.get(family, 2.0)  # the output layer's bias of the boundary
    return model.eval()


def both_paths(monkeypatch, model: nn.Module, fn: Callable[[], Any]) -> tuple[Any, Any, int]:
    """fn() sampling by full re-read (REREAD_ENV set), then incrementally: (re-read result,
    incremental result, the model's steps in the incremental run). The re-read takes no step."""
    steps = 0
    real_step = model.step

    def counted_step(*args):
        nonlocal steps
        steps += 1
        return real_step(*args)

    model.step = counted_step
    monkeypatch.setenv(REREAD_ENV, "1")
    reread = fn()
    assert steps == 0
    monkeypatch.delenv(REREAD_ENV)
    incremental = fn()
    return reread, incremental, steps


@pytest.mark.parametrize("family", SEQUENCE_FAMILIES)
def test_each_step_has_the_full_forwards_logits_at_its_position(family: str) -> None:
    """Reading rows one input at a time from state None gives forward(idx)[:, t] at every t."""
    model = model_of(family)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(1, VOCAB.vocab_size, (6, BLOCK_SIZE), generator=g)  # (6, T)
    idx[:, 0] = 0  # the boundary first, as a word is read
    with torch.inference_mode():
        full, _ = model(idx)  # (6, T, vocab_size)
        state = None
        for t in range(BLOCK_SIZE):
            logits, state = model.step(idx[:, t], state)  # (6, vocab_size)
            assert torch.allclose(logits, full[:, t], rtol=RTOL, atol=ATOL), (family, t, (logits - full[:, t]).abs().max())
    assert full.std() > 0.5  # logits far from flat: the comparison means something


@pytest.mark.parametrize("family", ["bow", "transformer"])
def test_a_step_beyond_block_size_is_refused(family: str) -> None:
    """These models have block_size position embeddings: a step past them is an error, not a wrong row."""
    model = model_of(family)
    state = None
    with torch.inference_mode():
        for _ in range(BLOCK_SIZE):
            _, state = model.step(torch.zeros(2, dtype=torch.long), state)
        with pytest.raises(ValueError, match="beyond the model's block_size"):
            model.step(torch.zeros(2, dtype=torch.long), state)


@pytest.mark.parametrize("family", SEQUENCE_FAMILIES)
def test_cached_sampling_draws_the_words_of_the_full_reread(family: str, monkeypatch) -> None:
    """Plain sampling, several seeds, temperatures and top-k, batches smaller than n: the same
    (word, finished) pairs either way, and the incremental run took steps."""
    model = model_of(family)
    for seed, temperature, top_k, batch in ((0, 1.0, None, 64), (1, 0.7, 5, 1000), (2, 1.5, None, 37), (3, 1.0, 3, 200)):
        def draw() -> list[tuple[str, bool]]:
            return sample(model, VOCAB, 300, torch.Generator().manual_seed(seed), temperature, top_k,
                          max_len=BLOCK_SIZE - 1, batch=batch, view=Sequences)

        reread, incremental, steps = both_paths(monkeypatch, model, draw)
        assert incremental == reread, (family, seed)
        assert steps > 0
        lengths = {len(word) for word, _ in reread}
        assert len(lengths) >= 6 and any(finished for _, finished in reread)  # samples leave the batch at many steps


@pytest.mark.parametrize("family", SEQUENCE_FAMILIES)
def test_selective_sampling_keeps_the_same_words_either_way(family: str, monkeypatch) -> None:
    """sample_wanted with a prefix, length bounds, an exclude list and unique: the same kept words,
    draws and redraw reasons either way."""
    model = model_of(family)
    exclude = frozenset(w for w, _ in sample(model, VOCAB, 50, torch.Generator().manual_seed(9), max_len=8, view=Sequences))
    for seed, wanted in enumerate((Wanted("a", 2, BLOCK_SIZE - 1, exclude, True), Wanted("", 3, 5),
                                   Wanted("emm", 4, 8, unique=True), Wanted("b", 1, 4))):
        def select():
            return sample_wanted(model, VOCAB, 120, torch.Generator().manual_seed(seed), wanted, 1.0, None, view=Sequences)

        reread, incremental, steps = both_paths(monkeypatch, model, select)
        assert incremental == reread, (family, wanted)
        assert steps > 0 and len(reread.words) > 0
        assert all(w.startswith(wanted.prefix) for w in reread.words)


def test_a_context_longer_than_block_size_keeps_the_reread(monkeypatch) -> None:
    """sample's max_len beyond what the model reads whole: the context is cut to the last
    block_size tokens, which a step does not do, so both runs re-read (no step) and agree."""
    model = model_of("gru")

    def draw() -> list[tuple[str, bool]]:
        return sample(model, VOCAB, 100, torch.Generator().manual_seed(4), max_len=BLOCK_SIZE + 5, view=Sequences)

    reread, incremental, steps = both_paths(monkeypatch, model, draw)
    assert incremental == reread and steps == 0
    assert max(len(w) for w, _ in reread) > BLOCK_SIZE - 1  # some sample did outgrow the block


def test_makemore_sample_prints_the_same_words_either_way(tmp_path: Path, monkeypatch) -> None:
    """The whole command on a trained tiny Transformer (n_layers 2, n_head 2, dropout 0.2):
    plain and --prefix --unique sampling print the same JSON with and without REREAD_ENV."""
    runner = CliRunner()
    words = write_tiny_words(tmp_path)
    run = tmp_path / "run"
    sets = ["model.type=transformer", "model.n_layers=2", "model.n_head=2", "model.dropout=0.2", "train.backend=torch"]
    result = runner.invoke(app, ["train", "--config", "configs/names.toml", *tiny_overrides(words, steps=60),
                                 *[a for s in sets for a in ("--set", s)], "--run-dir", str(run), "-q"])
    assert result.exit_code == 0, result.output
    for options in (["-n", "500", "--seed", "5"], ["-n", "40", "--seed", "6", "--prefix", "a", "--unique"]):
        outputs = []
        for reread in (True, False):
            if reread:
                monkeypatch.setenv(REREAD_ENV, "1")
            else:
                monkeypatch.delenv(REREAD_ENV)
            result = runner.invoke(app, ["sample", str(run), "--json", *options])
            assert result.exit_code == 0, result.output
            outputs.append(result.stdout)
        assert outputs[0] == outputs[1], options
