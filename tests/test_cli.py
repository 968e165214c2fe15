"""The command line end to end through typer's test runner (issue 2, items 8-10)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from makemore import runs
from makemore.cli import app
from makemore.data import split_words
from tests.conftest import TINY_WORDS, tiny_overrides


def test_train_evaluate_sample_round_trip(runner, tiny_words_file, tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", "--config", "configs/names.toml", *tiny_overrides(tiny_words_file), "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == 0, result.output
    assert f"run directory: {run_dir}" in result.stdout and "dev" in result.stdout
    for name in ("config.toml", "vocab.json", "metrics.jsonl", runs.CHECKPOINT, "loss.png", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all({"step", "train_loss", "dev_loss", "lr", "elapsed_s"} <= set(r) for r in records)
    assert records[-1]["step"] == 60 and records[-1]["dev_loss"] is not None

    ckpt = runs.load_checkpoint(run_dir)
    assert ckpt["step"] == 60 and ckpt["vocab"][0] == "." and set(ckpt["model"]) == {"C", "W1", "b1", "W2", "b2"}
    assert ckpt["config"]["model"]["n_hidden"] == 16

    result = runner.invoke(app, ["evaluate", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    losses = json.loads(result.stdout)
    assert set(losses) == {"train", "dev"}
    vocab_size = len(ckpt["vocab"])
    assert losses["train"] < math.log(vocab_size) - 0.5  # learned something: an untrained model sits at ~ln vocab_size
    # the same numbers from an independent computation: the lecture's loop over each split's windows
    for split, nll in losses.items():
        assert nll == pytest.approx(plain_nll(ckpt, split_words(TINY_WORDS, 42)[0 if split == "train" else 1]), rel=1e-5)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert math.isclose(losses["dev"], summary["dev_loss"], rel_tol=1e-6)
    assert math.isclose(losses["train"], summary["train_loss"], rel_tol=1e-6)

    result = runner.invoke(app, ["evaluate", str(run_dir), "--split", "all", "--json"])
    assert set(json.loads(result.stdout)) == {"train", "dev", "test"}
    result = runner.invoke(app, ["evaluate", str(run_dir)])
    assert result.exit_code == 0 and "perplexity" in result.stdout and "bits/char" in result.stdout

    result = runner.invoke(app, ["sample", str(run_dir), "-n", "12", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    samples = json.loads(result.stdout)
    assert len(samples) == 12 and all(isinstance(s, str) for s in samples)
    assert set("".join(samples)) <= set("".join(TINY_WORDS))
    again = runner.invoke(app, ["sample", str(run_dir), "-n", "12", "--seed", "3", "--json"])
    assert json.loads(again.stdout) == samples

    result = runner.invoke(app, ["sample", str(run_dir), "-n", "5", "--seed", "1"])
    assert result.exit_code == 0
    assert len(result.stdout.strip().splitlines()) == 5
    assert "occur in the training words" in result.stderr


def test_sample_marks_exactly_the_samples_that_are_training_words(runner, tmp_path) -> None:
    """Every string of 1-3 letters over "abc" is a word: samples often are words, some from the
    training split (marked), some from dev or test (not marked: they were not trained on)."""
    import itertools

    words = ["".join(p) for n in (1, 2, 3) for p in itertools.product("abc", repeat=n)]  # 39 words
    path = tmp_path / "abc.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", "--config", "configs/names.toml", *tiny_overrides(path, steps=100), "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["sample", str(run_dir), "-n", "300", "--seed", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    train_words = set(split_words(words, 42)[0])
    marked = [line.split("  (")[0] for line in lines if "(in training data" in line]
    unmarked = [line.split("  (")[0] for line in lines if "(in training data" not in line]
    assert len(lines) == 300 and marked and unmarked
    assert all(w in train_words for w in marked)
    assert not any(w in train_words for w in unmarked)
    assert any(w in words for w in unmarked)  # a word of the file, but of dev or test: not marked
    assert f"{len(marked)} of 300 samples" in result.stderr


def plain_nll(ckpt: dict, words: list[str]) -> float:
    """Mean NLL (nats/char) of a lecture MLP checkpoint over every window of `words`, one window at a
    time as the lecture builds them (context of block_size ids, padded with the boundary 0)."""
    C, W1, b1, W2, b2 = (ckpt["model"][k].double() for k in ("C", "W1", "b1", "W2", "b2"))
    stoi = {ch: i for i, ch in enumerate(ckpt["vocab"])}
    block_size = ckpt["config"]["data"]["block_size"]
    total, count = 0.0, 0
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            logits = torch.tanh(C[context].reshape(-1) @ W1 + b1) @ W2 + b2  # (vocab_size,)
            total += (torch.logsumexp(logits, 0) - logits[ix]).item()
            count += 1
            context = context[1:] + [ix]
    return total / count


def test_latest_run_is_the_default(runner, tiny_words_file, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "tiny.toml"
    config.write_text("[train]\nsteps = 20\n")
    result = runner.invoke(app, ["train", "--config", str(config), *tiny_overrides(tiny_words_file, steps=20), "-q"])
    assert result.exit_code == 0, result.output
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("tiny-")
    result = runner.invoke(app, ["sample", "-n", "3", "--json"])
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 3


def test_user_mistakes_get_one_line_and_exit_code_2(runner, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    (tmp_path / "empty.toml").write_text("")
    cases = [
        (["train", "--config", "nope.toml"], "config file not found"),
        (["train", "--config", "empty.toml", "--set", "data.path=missing.txt"], "no such file"),
        (["train", "--config", "empty.toml", "--set", "data.path=blank.txt"], "every line is blank"),
        (["train", "--config", "empty.toml", "--set", "train.stepz=3"], "did you mean 'train.steps'"),
        (["train", "--config", "empty.toml", "--set", "train.steps=many"], "must be an integer"),
        (["evaluate"], "no runs under runs/"),
        (["sample", "no-such-run"], "no such run directory"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_samples_are_printed_verbatim_not_as_markup(runner, tmp_path) -> None:
    words = ["[bold]x", "[red]y", "a[b]c", "[/]", "[dim]z", "[i]q"] * 3
    path = tmp_path / "brackets.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", "--config", "configs/names.toml", *tiny_overrides(path, steps=200), "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == 0, result.output
    as_json = json.loads(runner.invoke(app, ["sample", str(run_dir), "-n", "30", "--seed", "5", "--json"]).stdout)
    printed = runner.invoke(app, ["sample", str(run_dir), "-n", "30", "--seed", "5"])
    assert printed.exit_code == 0, printed.output
    lines = [line.split("  (")[0] for line in printed.stdout.splitlines()]
    assert lines == as_json
