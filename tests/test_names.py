"""Names people want (issue 16): sampling with a prefix, only new and unique samples, length bounds
that redraw, scores; and `makemore score`.

Tiny runs (tests/conftest.py) of every registered family; the scores are checked against
−ln p computed here from the model's own logits.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from makemore.cli import app
from makemore.evaluate import percentile_rank, per_word_mean
from makemore.data import Windows
from makemore.models import FAMILIES, family
from makemore.runs import load_run
from makemore.sample import DRAWS_PER_SAMPLE, TOO_LONG, Wanted, sample, sample_wanted
from tests.conftest import TINY_WORDS, tiny_overrides, write_tiny_words
from tests.test_speed_paths import chi2_critical, name_model, two_sample_chi2  # noqa: F401 (name_model: a fixture)


def cli(*args: object, stdin: str | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], input=stdin)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def tiny_run(request, tmp_path_factory) -> Path:
    """A seconds-long run of each registered family on the forty tiny words (torch trains every family)."""
    root = tmp_path_factory.mktemp(request.param)
    words = write_tiny_words(root)
    run = root / "run"
    result = cli("train", "--config", "configs/names.toml", *tiny_overrides(words, steps=100),
                 "--set", f"model.type={request.param}", "--set", "train.backend=torch",
                 "--set", "data.block_size=4", "--run-dir", run, "-q")  # block_size: a power of two, for the wavenet
    assert result.exit_code == 0, result.output
    return run


def nll_from_logits(run, word: str) -> float:
    """Mean −ln p over the word's characters and its end token, from the model's logits on inputs
    built here by hand: for a window model, block_size boundary tokens and then the word so far,
    one context per target; for a sequence model, the boundary and then the word, one row."""
    model = run.model
    ids = [run.vocab.stoi[c] for c in word] + [0]  # the targets: characters, then the end token
    with torch.no_grad():
        if family(run.config.model).view is Windows:
            padded = [0] * model.block_size + ids
            logits, _ = model(torch.tensor([padded[i : i + model.block_size] for i in range(len(ids))]))  # (L+1, vocab_size)
        else:
            logits, _ = model(torch.tensor([[0] + ids[:-1]]))  # (1, L+1, vocab_size)
            logits = logits[0]  # (L+1, vocab_size)
    logp = torch.log_softmax(logits.double(), dim=1)  # (L+1, vocab_size)
    return -logp[torch.arange(len(ids)), torch.tensor(ids)].mean().item()


def selective(run: Path, *options: object):
    result = cli("sample", run, "--json", *options)
    return result, json.loads(result.stdout) if result.stdout.strip() else None


# ---------------------------------------------------------------- makemore sample


def test_prefix_new_only_unique_and_length_bounds_all_hold(tiny_run: Path) -> None:
    result, words = selective(tiny_run, "-n", "30", "--seed", "1", "--prefix", "e", "--new-only", "--unique",
                              "--min-len", "3", "--max-len", "4")
    assert result.exit_code == 0, result.output
    assert len(words) == 30
    assert all(w.startswith("e") for w in words)
    assert all(3 <= len(w) <= 4 for w in words)
    assert not set(words) & set(TINY_WORDS)
    assert len(set(words)) == len(words)


def test_the_same_seed_and_options_give_the_same_names(tiny_run: Path) -> None:
    options = ("-n", "15", "--prefix", "a", "--unique", "--max-len", "4")
    first = selective(tiny_run, "--seed", "4", *options)[1]
    assert selective(tiny_run, "--seed", "4", *options)[1] == first
    assert selective(tiny_run, "--seed", "5", *options)[1] != first


def test_scores_equal_makemore_score_and_sort_puts_the_most_name_like_first(tiny_run: Path) -> None:
    result, scored = selective(tiny_run, "-n", "12", "--seed", "2", "--min-len", "2", "--scores")
    assert result.exit_code == 0, result.output
    assert all(set(item) == {"word", "nll"} for item in scored)
    words = [item["word"] for item in scored]
    assert selective(tiny_run, "-n", "12", "--seed", "2", "--min-len", "2")[1] == words  # plain --json: the strings
    by_score = cli("score", tiny_run, *words, "--json")
    assert by_score.exit_code == 0, by_score.output
    for item, other in zip(scored, json.loads(by_score.stdout)):
        assert other["word"] == item["word"] and other["nll"] == pytest.approx(item["nll"], abs=1e-6)
    ordered = selective(tiny_run, "-n", "12", "--seed", "2", "--min-len", "2", "--scores", "--sort", "nll")[1]
    assert sorted(scored, key=lambda item: item["nll"]) == ordered
    text = cli("sample", tiny_run, "-n", "12", "--seed", "2", "--min-len", "2", "--scores")
    lines = text.stdout.splitlines()
    assert [line.split()[0] for line in lines] == words
    assert [float(line.split()[1]) for line in lines] == [round(item["nll"], 3) for item in scored]
    assert "kept 12 of" in text.stderr and "seed 2" in text.stderr


def sample_by_hand(model, n: int, seed: int, cap: int, windows: bool) -> list[str]:
    """Plain sampling as docs/names.md and makemore.sample describe it, written out here one word at
    a time: all n samples advance together, one model call per position for the samples still being
    written; a window model reads the last block_size ids of block_size boundaries and the word so
    far, a sequence model the boundary and the word so far; each character is the first whose
    cumulative softmax probability exceeds u · total, u uniform, one draw per unfinished sample in
    order; the boundary ends a word, and a word still unfinished at `cap` characters is cut there."""
    g = torch.Generator().manual_seed(seed)
    pad = model.block_size if windows else 1
    words: list[list[int]] = [[] for _ in range(n)]
    writing = list(range(n))
    for _ in range(cap):
        contexts = [([0] * pad + words[i])[-model.block_size:] for i in writing]
        with torch.no_grad():
            logits = model(torch.tensor(contexts))[0]  # (a, V) or (a, T, V)
        if logits.dim() == 3:
            logits = logits[:, -1]  # (a, V): after the last id
        cdf = torch.softmax(logits, 1).cumsum(1)  # (a, V)
        u = torch.rand(len(writing), 1, generator=g) * cdf[:, -1:]  # (a, 1)
        drawn = (cdf <= u).sum(1).clamp(max=cdf.shape[1] - 1).tolist()  # (a,) the first id whose cdf exceeds u
        still = []
        for i, c in zip(writing, drawn):
            if c != 0:
                words[i].append(c)
                still.append(i)
        writing = still
        if not writing:
            break
    return ["".join(chr(ord("a") + c - 1) for c in w) for w in words]


def test_plain_json_is_unchanged_by_the_new_options_being_absent(tiny_run: Path) -> None:
    """No selection option: plain sampling, a list of strings, possibly cut at the cap and possibly
    repeated; the cap is twice the longest training word (TINY_WORDS: 4 letters), or for a sequence
    model the longest word it reads whole (its context, the longest word + 1, less the boundary)."""
    run = load_run(tiny_run)
    assert run.vocab.itos == (".", *"abcdefghijklmnopqrstuvwxyz")  # the ids by_hand decodes
    windows = family(run.config.model).view is Windows
    longest = max(map(len, TINY_WORDS))
    cap = 2 * longest if windows else longest
    if not windows:
        assert run.model.block_size == longest + 1
    expected = sample_by_hand(run.model, 40, 9, cap, windows)
    assert selective(tiny_run, "-n", "40", "--seed", "9")[1] == expected
    assert max(map(len, expected)) <= cap


def test_a_prefix_with_an_unknown_character_is_one_line_exit_2(tiny_run: Path) -> None:
    for prefix, char in (("eQ", "'Q'"), ("a.", "'.'")):
        result = cli("sample", tiny_run, "--prefix", prefix)
        assert result.exit_code == 2
        assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("error: --prefix") and char in result.stderr


@pytest.mark.parametrize("options,message", [
    (["--min-len", "6", "--max-len", "5"], "--min-len 6 is above"),
    (["--prefix", "abcdef", "--max-len", "4"], "has 6 characters"),
    (["--sort", "length"], "--sort 'length'"),
    (["--min-len", "-1"], "--min-len must be at least 0"),
])
def test_contradictory_options_are_one_line_exit_2(tiny_run: Path, options: list[str], message: str) -> None:
    result = cli("sample", tiny_run, *options)
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def draws_in(message: str) -> tuple[int, int]:
    """(found, drawn) from the draw-bound error line."""
    found = re.search(r"found only (\d+) of", message)
    drawn = re.search(r"([\d,]+) drawn\)", message)
    assert found and drawn, message
    return int(found.group(1)), int(drawn.group(1).replace(",", ""))


def test_an_impossible_request_ends_at_the_draw_bound_with_exit_1(tiny_run: Path) -> None:
    """'emma' is in the words file and --max-len 4 allows nothing longer: no sample can be kept."""
    result, words = selective(tiny_run, "-n", "5", "--seed", "0", "--prefix", "emma", "--max-len", "4", "--new-only")
    assert result.exit_code == 1
    assert words == []
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: found only 0 of 5 samples")
    assert draws_in(result.stderr) == (0, DRAWS_PER_SAMPLE * 5)
    counts = dict((reason, int(k.replace(",", ""))) for k, reason in re.findall(r"([\d,]+) (too long|in the words file)", result.stderr))
    assert sum(counts.values()) == DRAWS_PER_SAMPLE * 5 and counts.get("in the words file", 0) > 0


def test_what_was_found_is_printed_when_the_bound_is_reached(tiny_run: Path) -> None:
    """With --prefix zzzz --max-len 4 --unique only 'zzzz' itself can be kept, once."""
    result = cli("sample", tiny_run, "-n", "1000", "--seed", "0", "--prefix", "zzzz", "--max-len", "4", "--unique")
    assert result.exit_code == 1
    found, drawn = draws_in(result.stderr)
    assert drawn == DRAWS_PER_SAMPLE * 1000
    assert result.stdout.split() == ["zzzz"] * found and found == 1
    assert "repeated" in result.stderr and "too long" in result.stderr and "seed 0" in result.stderr


def test_new_only_needs_the_words_file(tiny_run: Path, tmp_path: Path) -> None:
    words = tiny_run.parent / "words.txt"
    words.rename(tmp_path / "away.txt")
    try:
        result = cli("sample", tiny_run, "-n", "3", "--new-only")
        assert result.exit_code == 2 and "--new-only needs the run's words file" in result.stderr
        assert cli("sample", tiny_run, "-n", "3", "--unique").exit_code == 0  # the other options do not need it
    finally:
        (tmp_path / "away.txt").rename(words)


def test_length_bounds_redraw_and_keep_the_models_distribution(name_model) -> None:
    """Kept samples are distributed as the model's samples given that they fit: the lengths and
    first letters of selective 4..7-character samples match plain samples filtered to 4..7."""
    model, vocab = name_model
    plain = [w for w, done in sample(model, vocab, 30_000, torch.Generator().manual_seed(1), max_len=40) if done and 4 <= len(w) <= 7]
    chosen = sample_wanted(model, vocab, 4_000, torch.Generator().manual_seed(2), Wanted(min_len=4, max_len=7))
    assert len(chosen.words) == 4_000 and chosen.drawn == 4_000 + sum(chosen.redrawn.values())
    assert chosen.redrawn[TOO_LONG] > 0  # long draws happened, and none was cut: every length is in bounds
    assert all(4 <= len(w) <= 7 for w in chosen.words)
    for feature in (len, lambda w: w[:1]):
        stat, df = two_sample_chi2(Counter(map(feature, plain)), Counter(map(feature, chosen.words)))
        assert stat < chi2_critical(df), (stat, df)
    # the test can tell a distortion: cutting long draws at 7 would pile them onto length 7
    cut = [w[:7] for w, _ in sample(model, vocab, 6_000, torch.Generator().manual_seed(3), max_len=40) if len(w) >= 4]
    stat, df = two_sample_chi2(Counter(map(len, plain)), Counter(map(len, cut)))
    assert stat > chi2_critical(df)


def test_a_model_that_never_ends_a_word_is_redrawn_to_the_bound_not_cut(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    with torch.no_grad():
        if hasattr(run.model, "b2"):
            run.model.b2[0] = -1e4  # the MLP's boundary logit: never drawn
        elif hasattr(run.model, "b_out"):
            run.model.b_out[0] = -1e4  # the output bias of the wavenet, recurrent and transformer families
        else:
            run.model.counts[:, 0] = 0  # the bigram: no character is ever followed by the boundary
            run.model.counts[:, 1] += 1
            run.model.smoothing = 0.0
    view = family(run.config.model).view
    chosen = sample_wanted(run.model, run.vocab, 3, torch.Generator().manual_seed(0), Wanted(max_len=4), view=view)
    assert chosen.words == [] and chosen.drawn == 3 * DRAWS_PER_SAMPLE == chosen.redrawn[TOO_LONG]
    plain = sample(run.model, run.vocab, 3, torch.Generator().manual_seed(0), max_len=4, view=view)
    assert plain and all(len(w) == 4 and not done for w, done in plain)  # plain sampling cuts at its cap


# ---------------------------------------------------------------- makemore score


def test_score_is_the_mean_nll_of_characters_and_end_token_from_the_logits(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    words = ["emma", "zyxq", "a", "ava"]
    result = cli("score", tiny_run, *words, "--json")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert [s["word"] for s in scored] == words
    for s in scored:
        expected = nll_from_logits(run, s["word"])
        assert s["nll"] == pytest.approx(expected, abs=1e-5)
        assert s["perplexity"] == pytest.approx(torch.tensor(expected).exp().item(), rel=1e-5)


def test_the_percentile_ranks_a_word_among_the_training_words(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    train = run.dataset.split_words("train")
    train_nll = [nll_from_logits(run, w) for w in train]  # word by word, by hand
    scored = json.loads(cli("score", tiny_run, "emma", "zyxq", "--json").stdout)
    for s in scored:
        worse = sum(x > s["nll"] + 1e-6 for x in train_nll)
        tied = sum(abs(x - s["nll"]) <= 1e-6 for x in train_nll)
        assert s["percentile"] == pytest.approx(100 * (worse + tied / 2) / len(train_nll))
    assert scored[0]["percentile"] > scored[1]["percentile"]  # a name ranks above a jumble


def test_percentile_rank_counts_worse_scores_and_half_the_ties() -> None:
    reference = [1.0, 2.0, 2.0, 3.0]
    assert percentile_rank([0.5, 2.0, 2.5, 9.0], reference).tolist() == [100.0, 50.0, 25.0, 0.0]
    # the same word scored in batches of other shapes differs by float32 noise: still a tie
    assert percentile_rank([2.0 + 3e-7, 2.0 - 3e-7, 2.0 + 1e-5], reference).tolist() == [50.0, 50.0, 25.0]
    assert per_word_mean(torch.arange(6.0).double().numpy(), [1, 0, 2]).tolist() == [0.5, 2.0, 4.0]


def test_score_reads_stdin_and_scores_the_good_words_when_one_is_bad(tiny_run: Path) -> None:
    result = cli("score", tiny_run, "--json", stdin="emma\n\n  ava \nab1c\n")
    assert result.exit_code == 1
    assert [s["word"] for s in json.loads(result.stdout)] == ["emma", "ava"]
    assert result.stderr.strip().splitlines() == [
        "error: 'ab1c': character '1' is not in the run's vocabulary ('abcdefghijklmnopqrstuvwxyz')"]
    table = cli("score", tiny_run, "emma", "Zoe")
    assert table.exit_code == 1 and "emma" in table.stdout and "percentile" in table.stdout
    assert "'Z'" in table.stderr and "Zoe" not in table.stdout


def test_score_uses_the_latest_run_when_the_first_word_is_not_a_run(tiny_run: Path, monkeypatch, tmp_path: Path) -> None:
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_run, tmp_path / "runs" / "tiny")
    latest = cli("score", "emma", "--json")
    named = cli("score", "runs/tiny", "emma", "--json")
    assert latest.exit_code == 0 and named.exit_code == 0, latest.output
    assert json.loads(latest.stdout)[0]["nll"] == json.loads(named.stdout)[0]["nll"]
    missing = cli("score", "runs/nope", "emma")
    assert missing.exit_code == 2 and "no such run directory" in missing.stderr


def test_a_sequence_model_scores_and_draws_only_words_it_reads_whole(tiny_run: Path) -> None:
    """A sequence model's context is its longest training word + 1 (4 + 1 here): a longer word gets
    an error line from score and --max-len above 4 is refused; a window model reads any length."""
    sequences = family(load_run(tiny_run).config.model).view is not Windows
    scored = cli("score", tiny_run, "emma", "abelina", "--json")
    assert [s["word"] for s in json.loads(scored.stdout)] == (["emma"] if sequences else ["emma", "abelina"])
    if sequences:
        assert scored.exit_code == 1 and "'abelina': 7 characters, more than this model reads (4" in scored.stderr
    else:
        assert scored.exit_code == 0, scored.output
    drawn = cli("sample", tiny_run, "-n", "3", "--max-len", "6", "--seed", "0")
    if sequences:
        assert drawn.exit_code == 2 and "--max-len 6: this model reads words of at most 4 characters" in drawn.stderr
    else:
        assert drawn.exit_code == 0, drawn.output
