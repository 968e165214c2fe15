"""`makemore sample --best N` (issue 22, item 6): the N most probable words meeting every
constraint, checked against brute-force enumeration of every word on tiny runs of every family.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import makemore
from makemore.best import best_words
from makemore.cli import app
from makemore.constraints import Constraints, compile_constraints
from makemore.data import Windows
from makemore.evaluate import word_nll
from makemore.models import FAMILIES
from tests.conftest import TINY_WORDS, tiny_family_run, tiny_overrides, write_tiny_words
from tests.test_speed_paths import name_model  # noqa: F401 (a fixture)


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def tiny_run(request, tmp_path_factory) -> Path:
    """A seconds-long run of each registered family on the forty tiny words."""
    return tiny_family_run(tmp_path_factory.mktemp(request.param), request.param)


def brute_force(run, keep, max_len: int) -> list[tuple[float, str]]:
    """Every word of 1..max_len characters over the run's vocabulary that `keep` accepts, with its
    total ln p (− NLL per character × (length + 1), from makemore.evaluate.word_nll), most probable first."""
    alphabet = run.vocab.itos[1:]
    words = [w for k in range(1, max_len + 1) for w in map("".join, itertools.product(alphabet, repeat=k)) if keep(w)]
    nll = run.word_nll(words)
    return sorted(((-x * (len(w) + 1), w) for w, x in zip(words, nll)), key=lambda f: (-f[0], f[1]))


def same_ranking(best, truth: list[tuple[float, str]], n: int) -> None:
    """best's words are truth's n most probable, in order, up to float rounding between the two
    ways of computing a word's probability (a near-tie may swap)."""
    assert len(best.words) == min(n, len(truth))
    lp = dict((w, x) for x, w in truth)
    assert [lp[w] for w in best.words] == pytest.approx(best.log_prob, abs=1e-4)  # the model's own probabilities
    assert best.log_prob == sorted(best.log_prob, reverse=True)
    nth = truth[len(best.words) - 1][0]
    assert all(lp[w] >= nth - 1e-4 for w in best.words)  # none of them below the true n-th
    assert {w for x, w in truth if x > nth + 1e-4} <= set(best.words)  # every word above the true n-th is there
    assert all(lp[a] >= lp[b] - 1e-4 for a, b in zip(best.words, best.words[1:]))  # in the true order, up to near-ties


CASES = [
    (dict(prefix="a", max_len=3), lambda w: w.startswith("a")),
    (dict(match="[aeiou][a-z]?[mnr]", max_len=3), lambda w: re.fullmatch("[aeiou][a-z]?[mnr]", w) is not None),
    (dict(suffix="a", contains="i", max_len=3, min_len=3), lambda w: len(w) == 3 and w.endswith("a") and "i" in w),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_best_is_the_brute_force_top_n(tiny_run: Path, case: int) -> None:
    options, keep = CASES[case]
    run = makemore.load(tiny_run)
    truth = brute_force(run, keep, options["max_len"])
    found = run.best(12, beam=2048, **options)  # wider than every partial word: nothing is dropped
    assert found.exact and found.shortfall is None
    same_ranking(found, truth, 12)
    assert run.best(12, beam=2048, **options).words == found.words  # deterministic


def test_a_narrow_beam_says_when_it_may_have_missed_a_word(tiny_run: Path) -> None:
    run = makemore.load(tiny_run)
    truth = brute_force(run, lambda w: w.startswith("a"), 3)
    verdicts = []
    for beam in (1, 2, 4, 16, 64):
        found = run.best(8, prefix="a", max_len=3, beam=beam)
        assert found.log_prob == sorted(found.log_prob, reverse=True) and all(w.startswith("a") for w in found.words)
        verdicts.append(found.exact)
        if found.exact:  # a claim of exactness is true
            same_ranking(found, truth, 8)
    assert verdicts[-1]  # 64 partial words of each length keep every word that matters here


def test_new_only_skips_the_words_file(tiny_run: Path) -> None:
    run = makemore.load(tiny_run)
    truth = brute_force(run, lambda w: w not in TINY_WORDS, 3)
    found = run.best(15, max_len=3, new_only=True, beam=4096)
    assert found.exact and not set(found.words) & set(TINY_WORDS)
    same_ranking(found, truth, 15)


def test_fewer_words_than_asked_is_exit_1_with_why(tiny_run: Path) -> None:
    result = cli("sample", tiny_run, "--best", "50", "--match", "a[bc]?", "--json")
    assert result.exit_code == 1 and sorted(json.loads(result.stdout)) == ["a", "ab", "ac"]
    assert result.stderr.startswith("error: found only 3 of 50 words: no other word meets the constraints")


def test_the_cli_gives_the_best_words_of_every_family(tiny_run: Path) -> None:
    result = cli("sample", tiny_run, "--best", "5", "--prefix", "a", "--new-only", "--max-len", "4", "--scores", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    run = makemore.load(tiny_run)
    assert [g["word"] for g in got] == run.best(5, prefix="a", new_only=True, max_len=4).words
    assert [g["nll"] for g in got] == pytest.approx(run.word_nll([g["word"] for g in got]))
    text = cli("sample", tiny_run, "--best", "5", "--prefix", "a", "--max-len", "4")
    assert text.exit_code == 0 and "most probable" in text.stderr and "beam 1024" in text.stderr


@pytest.mark.parametrize("options,message", [
    (["--best", "5", "-t", "0.5"], "--best ranks words by the model's own probabilities"),
    (["--best", "5", "--top-p", "0.9"], "--best ranks words"),
    (["--beam", "8"], "--beam is the width of --best's search"),
    (["--best", "0"], "--best and --beam must be at least 1"),
    (["--best", "5", "--beam", "0"], "--best and --beam must be at least 1"),
    (["--best", "5", "--suffix", "Q"], "--suffix 'Q'"),
    (["--best", "5", "--min-len", "5", "--max-len", "3"], "--min-len 5 is above"),
])
def test_bad_best_options_exit_2_with_one_line(tiny_run: Path, options: list[str], message: str) -> None:
    result = cli("sample", tiny_run, *options)
    assert result.exit_code == 2 and result.stdout == "" and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_beam_search_of_a_name_like_model_narrow_and_wide(name_model) -> None:
    """On a model whose words run long, a beam of 1 misses words and says so; a wide one is exact."""
    model, vocab = name_model
    automaton = compile_constraints(Constraints(prefix="e", max_len=4), "".join(vocab.itos[1:]))
    words = ["e" + "".join(p) for k in range(4) for p in itertools.product(vocab.itos[1:], repeat=k)]
    nll = word_nll(model, vocab, Windows, words)
    truth = sorted(((-x * (len(w) + 1), w) for w, x in zip(words, nll)), key=lambda f: (-f[0], f[1]))
    narrow = best_words(model, vocab, Windows, automaton, 10, beam=1)
    assert not narrow.exact and set(narrow.words) != {w for _, w in truth[:10]}
    wide = best_words(model, vocab, Windows, automaton, 10, beam=1024)
    assert wide.exact
    same_ranking(wide, truth, 10)
