"""Constraints by masking (issue 22, items 5, 7, 8): --suffix, --contains and --match with --prefix
and the length bounds as one automaton; --top-p; `makemore score --chars`.

The automaton is checked against Python's own string tests and `re.fullmatch` on every short word
over a small alphabet; masked sampling on tiny runs of every family.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest
import numpy as np
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

import makemore
from makemore.cli import app
from makemore.constraints import Constraints, Guide, compile_constraints
from makemore.errors import MakemoreError
from makemore.models import FAMILIES
from makemore.sample import Wanted, draw, nucleus, sample, sample_wanted
from tests.conftest import TINY_WORDS, tiny_family_run, tiny_overrides, write_tiny_words
from tests.test_speed_paths import chi2_critical, name_model, two_sample_chi2  # noqa: F401 (name_model: a fixture)


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def fits(word: str, c: Constraints) -> bool:
    """Every constraint of `c` on `word`, by Python's own string tests and re.fullmatch."""
    return (c.min_len <= len(word) <= c.max_len and word.startswith(c.prefix)
            and (c.suffix is None or word.endswith(c.suffix)) and (c.contains is None or c.contains in word)
            and (c.match is None or re.fullmatch(c.match, word) is not None))


def words_up_to(alphabet: str, n: int) -> list[str]:
    return ["".join(p) for k in range(n + 1) for p in itertools.product(alphabet, repeat=k)]


# ---------------------------------------------------------------- the automaton

REGEXES = [None, "a*", "(ab)+c?", "[ab]{1,3}", ".*c.*", "a|bc|cab", "[^a]*", "(a|b)*c", "b?a{2,}", "^c.$", "(?:ca|b)+"]
texts = st.text(alphabet="abc", min_size=1, max_size=2)


@settings(max_examples=150, deadline=None)
@given(prefix=st.text(alphabet="abc", max_size=2), suffix=st.none() | texts, contains=st.none() | texts,
       match=st.sampled_from(REGEXES), min_len=st.integers(0, 3), max_len=st.integers(1, 5))
def test_the_automaton_accepts_exactly_the_words_that_fit_and_masks_exactly_the_dead_ends(
        prefix, suffix, contains, match, min_len, max_len) -> None:
    c = Constraints(prefix, suffix, contains, match, min_len, max_len)
    every = words_up_to("abc", max_len)
    accepted = {w for w in every if fits(w, c)}
    if min_len > max_len:
        with pytest.raises(MakemoreError, match="--min-len"):
            compile_constraints(c, "abc")
        return
    if not accepted:
        with pytest.raises(MakemoreError, match="no word of"):
            compile_constraints(c, "abc")
        return
    a = compile_constraints(c, "abc")
    assert {w for w in every if a.accepts(w)} == accepted
    for w in every:  # the mask after w: the end token iff w fits; a character iff some accepted word goes on with it
        allowed = a.allowed[len(w), a.walk(["abc".index(ch) + 1 for ch in w])]
        assert bool(allowed[0]) == (w in accepted)
        for i, ch in enumerate("abc", start=1):
            assert bool(allowed[i]) == any(v.startswith(w + ch) for v in accepted), (w, ch)


@pytest.mark.parametrize("constraints,message", [
    (Constraints(match=""), "--match: an empty pattern"),
    (Constraints(suffix=""), "--suffix: an empty text"),
    (Constraints(contains=""), "--contains: an empty text"),
    (Constraints(match="(ab"), "not a valid regular expression"),
    (Constraints(match=r"(a)\1"), "cannot be compiled to a finite automaton"),
    (Constraints(match="(?<=a)b"), "cannot be compiled to a finite automaton"),
    (Constraints(suffix="ad"), "character 'd' is not in the run's vocabulary"),
    (Constraints(prefix="x"), "--prefix 'x': character 'x'"),
    (Constraints(contains="a.b"), "character '.'"),
    (Constraints(match="ad"), "--match names characters not in it: 'd'"),
    (Constraints(suffix="abc", max_len=2), "no word of 1 to 2 characters"),
    (Constraints(prefix="ab", suffix="ca", max_len=3), "no word of 1 to 3 characters"),
    (Constraints(min_len=4, max_len=3, suffix="a"), "--min-len 4 is above"),
])
def test_bad_constraints_are_refused_in_one_line(constraints: Constraints, message: str) -> None:
    with pytest.raises(MakemoreError) as e:
        compile_constraints(constraints, "abc")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_draw_on_a_masked_token_is_moved_to_an_allowed_one() -> None:
    """Guide.advance keeps a sample inside the automaton even when inverse-CDF sampling's clamp picks
    the last column, masked: the case a rounded-up total makes (mutation: without the fix, the
    sample would move to the dead state)."""
    a = compile_constraints(Constraints(match="a*", max_len=3), "abc")
    guide = Guide(a, 2, [])
    rows = np.arange(2)
    guide.mask(np.zeros((2, 4), dtype=np.float32), rows, 1)
    nxt = guide.advance(rows, np.array([3, 1]))  # 'c' is masked, 'a' is allowed
    assert nxt.tolist() == [1, 1] and bool(a.allowed[2][guide.state].any(axis=1).all())


# ---------------------------------------------------------------- masked sampling, every family


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def tiny_run(request, tmp_path_factory) -> Path:
    """A seconds-long run of each registered family on the forty tiny words."""
    return tiny_family_run(tmp_path_factory.mktemp(request.param), request.param)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(["", "a", "em"]), suffix=st.sampled_from([None, "a", "ia", "n"]),
       contains=st.sampled_from([None, "i", "ar"]), match=st.sampled_from([None, "[a-m]+", ".*[aeiou]", "(ab|ba|e).*"]),
       min_len=st.integers(1, 3), max_len=st.integers(2, 4), seed=st.integers(0, 2**31 - 1))
def test_every_masked_sample_matches(tiny_run: Path, prefix, suffix, contains, match, min_len, max_len, seed) -> None:
    c = Constraints(prefix, suffix, contains, match or ("[a-z]*" if not (suffix or contains) else None), min_len, max_len)
    run = makemore.load(tiny_run)
    try:
        found = run.samples(30, seed=seed, prefix=c.prefix, suffix=c.suffix, contains=c.contains, match=c.match,
                            min_len=min_len, max_len=max_len)
    except MakemoreError as e:
        assert "no word of" in str(e) or "--min-len" in str(e) or "--prefix" in str(e)
        assert not any(fits(w, c) for w in words_up_to("aeimnr", max_len)) or len(prefix) > max_len
        return
    assert len(found.words) == 30 and found.selection.drawn == 30  # masked: nothing redrawn
    assert all(done and fits(w, c) for w, done in found.words), found.words


def test_masking_sampling_ends_and_new_only_unique_still_redraw(tiny_run: Path) -> None:
    run = makemore.load(tiny_run)
    found = run.samples(6, seed=1, suffix="a", new_only=True, unique=True, max_len=4)
    words = [w for w, _ in found.words]
    assert len(set(words)) == len(words) and all(w.endswith("a") and len(w) <= 4 for w in words)
    assert not set(words) & set(TINY_WORDS)
    assert found.selection.drawn == len(words) + sum(found.selection.redrawn.values())
    assert set(found.selection.redrawn) <= {"in the words file", "repeated"}


def test_the_cli_masks_every_family_and_scores_with_the_models_own_nll(tiny_run: Path) -> None:
    result = cli("sample", tiny_run, "-n", "8", "--seed", "0", "--suffix", "a", "--contains", "i", "--max-len", "4", "--scores", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert len(got) == 8 and all(g["word"].endswith("a") and "i" in g["word"] for g in got)
    scored = json.loads(cli("score", tiny_run, *[g["word"] for g in got], "--json").stdout)
    assert [g["nll"] for g in got] == pytest.approx([s["nll"] for s in scored], abs=1e-6)  # unconstrained NLL
    again = cli("sample", tiny_run, "-n", "8", "--seed", "0", "--suffix", "a", "--contains", "i", "--max-len", "4", "--scores", "--json")
    assert again.stdout == result.stdout


def test_masking_nothing_leaves_the_draws_as_they_were(name_model) -> None:
    """A --match every word the draws reach meets masks nothing: the same seed then gives the words
    of selective sampling (the mask only touches the logits, and only where it masks)."""
    model, vocab = name_model
    plain = sample_wanted(model, vocab, 500, torch.Generator().manual_seed(3), Wanted(prefix="a", max_len=150))
    assert not plain.redrawn  # no draw ran past --max-len (which masking would have stopped instead)
    automaton = compile_constraints(Constraints(prefix="a", match="a.*", max_len=150), "".join(vocab.itos[1:]))
    masked = sample_wanted(model, vocab, 500, torch.Generator().manual_seed(3), Wanted(prefix="a", max_len=150, automaton=automaton))
    assert masked.words == plain.words
    # and a mask that bites changes them: every word must now end in "a"
    automaton = compile_constraints(Constraints(prefix="a", suffix="a", max_len=150), "".join(vocab.itos[1:]))
    biting = sample_wanted(model, vocab, 500, torch.Generator().manual_seed(3), Wanted(prefix="a", max_len=150, automaton=automaton))
    assert biting.words != plain.words and all(w.endswith("a") for w in biting.words)


@pytest.mark.parametrize("options,message", [
    (["--suffix", "Q"], "--suffix 'Q': character 'Q'"),
    (["--contains", "é"], "--contains 'é': character 'é'"),
    (["--match", "(a"], "not a valid regular expression"),
    (["--match", ""], "an empty pattern"),
    (["--suffix", ""], "an empty text"),
    (["--suffix", "emma", "--max-len", "3"], "no word of 1 to 3 characters"),
    (["--match", "zoë"], "--match names characters not in it: 'ë'"),
    (["--suffix", "a", "--min-len", "4", "--max-len", "3"], "--min-len 4 is above"),
    (["--match", "a", "--prefix", "b"], "no word of"),
    (["--top-p", "0"], "--top-p must be above 0"),
    (["--top-p", "1.5"], "--top-p must be above 0"),
])
def test_bad_input_exits_2_with_one_line_and_nothing_written(tiny_run: Path, options: list[str], message: str) -> None:
    before = sorted(p.name for p in tiny_run.iterdir())
    result = cli("sample", tiny_run, *options)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tiny_run.iterdir()) == before


def test_masking_renormalises_locally(name_model) -> None:
    """The first character of `--match '[ab].*'` is drawn with the model's first-step probabilities of
    a and b, renormalised over the two: p(a) / (p(a) + p(b)), not the exact conditional."""
    model, vocab = name_model
    automaton = compile_constraints(Constraints(match="[ab].*", max_len=12), "".join(vocab.itos[1:]))
    chosen = sample_wanted(model, vocab, 4_000, torch.Generator().manual_seed(0), Wanted(max_len=12, automaton=automaton))
    with torch.no_grad():
        p = torch.softmax(model(torch.zeros(1, model.block_size, dtype=torch.long))[0][0].double(), dim=0)  # (vocab_size,)
    share_a = float(p[1] / (p[1] + p[2]))
    firsts = Counter(w[0] for w in chosen.words)
    assert set(firsts) <= {"a", "b"} and sum(firsts.values()) == 4_000
    expected = {"a": 4_000 * share_a, "b": 4_000 * (1 - share_a)}
    stat = sum((firsts[k] - e) ** 2 / e for k, e in expected.items())
    assert stat < 10.83  # chi-square, 1 degree of freedom, p = 0.001


# ---------------------------------------------------------------- --top-p


def nucleus_by_hand(probs: list[float], top_p: float) -> set[int]:
    """The definition: sort by probability (ties: lower id first), keep while the sum before is < top_p."""
    order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
    kept, total = set(), 0.0
    for i in order:
        if total >= top_p:
            break
        kept.add(i)
        total += probs[i]
    return kept


@settings(max_examples=200, deadline=None)
@given(logits=st.lists(st.floats(-4, 4, allow_nan=False), min_size=2, max_size=9), top_p=st.floats(0.01, 0.99))
def test_the_nucleus_is_the_smallest_most_likely_set_reaching_top_p(logits: list[float], top_p: float) -> None:
    x = np.array(logits, dtype=np.float64)[None]  # (1, V)
    probs = torch.softmax(torch.from_numpy(x), dim=1)[0].tolist()
    order = sorted(probs, reverse=True)
    sums = list(itertools.accumulate(order))
    if any(abs(s - top_p) < 1e-9 for s in sums) or len(set(round(p, 12) for p in probs)) < len(probs):
        return  # a sum at top_p or a tie within rounding: the by-hand and tensor arithmetic may round apart
    kept = set(np.flatnonzero(np.isfinite(nucleus(x, top_p)[0])).tolist())
    assert kept == nucleus_by_hand(probs, top_p)
    assert sum(probs[i] for i in kept) >= top_p - 1e-12
    assert sum(probs[i] for i in kept) - min(probs[i] for i in kept) < top_p  # smallest: one fewer falls short


def test_top_p_draws_only_the_nucleus_in_proportion() -> None:
    logits = torch.tensor([0.0, 2.0, 1.0, -1.0, 1.5])  # probabilities: ids 1, 4, 2, 0, 3 in order
    probs = torch.softmax(logits, dim=0)
    drawn = draw(logits.expand(30_000, 5), 1.0, None, torch.Generator().manual_seed(0), top_p=0.7)
    counts = Counter(drawn.tolist())
    assert set(counts) == nucleus_by_hand(probs.tolist(), 0.7) == {1, 4}
    share = float(probs[1] / (probs[1] + probs[4]))
    assert abs(counts[1] / 30_000 - share) < 0.015


def test_top_p_one_is_plain_sampling_and_smaller_changes_the_draws(name_model) -> None:
    model, vocab = name_model
    plain = sample(model, vocab, 300, torch.Generator().manual_seed(5), max_len=20)
    assert sample(model, vocab, 300, torch.Generator().manual_seed(5), max_len=20, top_p=1.0) == plain
    assert sample(model, vocab, 300, torch.Generator().manual_seed(5), max_len=20, top_p=0.5) != plain


def test_top_p_works_in_the_cli_for_every_family(tiny_run: Path) -> None:
    a = cli("sample", tiny_run, "-n", "20", "--seed", "4", "--json")
    b = cli("sample", tiny_run, "-n", "20", "--seed", "4", "--top-p", "1", "--json")
    c = cli("sample", tiny_run, "-n", "20", "--seed", "4", "--top-p", "0.3", "--top-k", "5", "-t", "0.8", "--suffix", "a", "--max-len", "4", "--json")
    assert a.exit_code == b.exit_code == c.exit_code == 0, c.output
    assert a.stdout == b.stdout
    assert all(w.endswith("a") for w in json.loads(c.stdout))


# ---------------------------------------------------------------- score --chars


def test_score_chars_gives_each_characters_nll_and_marks_the_worst(tiny_run: Path) -> None:
    result = cli("score", tiny_run, "emma", "zyx", "--chars", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    scored = json.loads(cli("score", tiny_run, "emma", "zyx", "--json").stdout)
    for g, s, word in zip(got, scored, ["emma", "zyx"]):
        chars = g["chars"]
        assert [c["char"] for c in chars] == [*word, "."]
        assert sum(c["nll"] for c in chars) / len(chars) == pytest.approx(s["nll"], abs=1e-6) == pytest.approx(g["nll"], abs=1e-6)
        assert all(c["p"] == pytest.approx(math.exp(-c["nll"])) for c in chars)
        worst = max(range(len(chars)), key=lambda i: chars[i]["nll"])
        assert [c["worst"] for c in chars] == [i == worst for i in range(len(chars))]
    table = cli("score", tiny_run, "zyx", "--chars")
    assert table.exit_code == 0 and table.stdout.count("◀ worst") == 1 and "(end)" in table.stdout


def test_score_chars_names_a_word_it_cannot_score_and_scores_the_others(tiny_run: Path) -> None:
    result = cli("score", tiny_run, "emma", "zoë", "--chars", "--json")
    assert result.exit_code == 1
    assert [g["word"] for g in json.loads(result.stdout)] == ["emma"]
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "'ë'" in result.stderr
