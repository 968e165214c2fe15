"""Every registered model family, through the same checks: shapes, initial loss, learning,
checkpoints, exact resume after Ctrl-C, sampling, and (for sequence models) causality and padding.

A new family registered in makemore.models.FAMILIES is tested here without a line of test code;
its own file of tests adds what is particular to it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from makemore import runs
from makemore.prepare import check
from makemore.cli import app
from makemore.config import Config, ModelConfig, load_config
from makemore.data import IGNORE, Sequences, Vocab, Windows, load_dataset
from makemore.errors import MakemoreError
from makemore.evaluate import evaluate_splits
from makemore.models import FAMILIES, build_model, context_length, family
from makemore.models.base import nll_per_target
from makemore.training import Listener, TrainingInterrupted, train

from tests.conftest import TINY_WORDS

V = 27
NAMES = sorted(FAMILIES)
GRADIENT = [n for n in NAMES if not FAMILIES[n].counted]
SEQUENCE = [n for n in NAMES if FAMILIES[n].view is Sequences]

#: Small options every family accepts (each reads the ones it knows and ignores the rest).
TINY = {"n_embd": 8, "n_hidden": 16}


def tiny_model(name: str, block_size: int = 8, seed: int = 0) -> torch.nn.Module:
    cfg = dataclasses.replace(ModelConfig(), type=name, **TINY)
    return build_model(cfg, V, block_size, torch.Generator().manual_seed(seed))


def inputs(name: str, B: int = 6, T: int = 8, seed: int = 1) -> torch.Tensor:
    """A batch in the family's view: windows (B, block_size) or sequences (B, T)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, T), generator=g)


def tiny_config(words: Path, name: str, steps: int = 40) -> Config:
    cfg = Config()
    settings = {"data.path": str(words), "data.block_size": 4, "model.type": name, "model.n_embd": 8, "model.n_hidden": 16,
                "train.backend": "torch", "train.device": "cpu", "train.steps": steps, "train.batch_size": 8,
                "train.optimizer": "adamw", "train.lr": 0.01, "train.eval_interval": 20, "train.log_interval": 5,
                "train.schedule": "cosine"}
    for key, value in settings.items():
        cfg.set(key, value)
    cfg.validate()
    return cfg


@pytest.mark.parametrize("name", NAMES)
def test_logits_have_the_views_shape(name: str) -> None:
    model = tiny_model(name).eval()
    idx = inputs(name)
    logits, loss = model(idx)
    if FAMILIES[name].view is Windows:
        assert logits.shape == (6, V) and loss is None
        _, loss = model(idx, torch.randint(0, V, (6,)))
    else:
        assert logits.shape == (6, 8, V) and loss is None
        _, loss = model(idx, torch.randint(0, V, (6, 8)))
    assert loss.shape == () and torch.isfinite(loss)


@pytest.mark.parametrize("name", GRADIENT)
def test_the_initial_loss_is_close_to_uniform(name: str) -> None:
    """At initialisation every character is about equally likely: loss ≈ ln(vocab_size) (lecture part 3)."""
    model = tiny_model(name, seed=3)
    idx = inputs(name, B=64, seed=4)
    targets = torch.randint(0, V, idx.shape[:1] if FAMILIES[name].view is Windows else idx.shape)
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(V)) < 0.15


@pytest.mark.parametrize("name", SEQUENCE)
def test_a_sequence_model_is_causal(name: str) -> None:
    """Changing a later character never changes the logits of an earlier position."""
    model = tiny_model(name).eval()
    idx = inputs(name, B=4, T=8)
    later = idx.clone()
    later[:, 5:] = (later[:, 5:] + 1) % V
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(later)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("name", SEQUENCE)
def test_padding_never_changes_the_loss(name: str) -> None:
    """The model's own loss, forward(idx, targets), on a minibatch padded to a longer word: a padded
    row alone has the loss of its word unpadded, and the padded pair has the mean NLL over both
    words' targets (4 and 12 of them) that the unpadded words give one at a time."""
    vocab = Vocab((".", *"abcdefghijklmnopqrstuvwxyz"))
    model = tiny_model(name, block_size=12).eval()
    words = ["ava", "maximiliana"]
    padded = Sequences.of_words(words, vocab, 1)
    X, Y = map(torch.from_numpy, padded[np.arange(2)])  # (2, 12), (2, 12)
    assert (Y[0] == IGNORE).sum() == len("maximiliana") - len("ava")
    X[0, 4:] = 5  # garbage where the padding is: it must not matter
    with torch.no_grad():
        alone = [model(*map(torch.from_numpy, Sequences.of_words([w], vocab, 1)[np.arange(1)]))[1] for w in words]
        _, padded_row = model(X[:1], Y[:1])  # row 0 alone, padded to 12 positions
        _, both = model(X, Y)
    torch.testing.assert_close(padded_row, alone[0])
    n = torch.tensor([len(w) + 1.0 for w in words])  # targets of each word, its end token included
    torch.testing.assert_close(both, (alone[0] * n[0] + alone[1] * n[1]) / n.sum())


@pytest.mark.parametrize("backend", ["numpy", "mlx"])
@pytest.mark.parametrize("name", [n for n in GRADIENT if n != "mlp"])
def test_only_the_torch_backend_trains_the_other_families(name: str, backend: str) -> None:
    """The NumPy and MLX backends implement the MLP only: any other family is refused in one line naming torch."""
    cfg = Config()
    cfg.model.type, cfg.data.block_size, cfg.train.backend = name, 4, backend
    with pytest.raises(MakemoreError) as info:
        check(cfg)
    assert str(info.value) == f"train.backend = {backend!r} cannot train model.type = {name!r}: train it with train.backend = 'torch'"


@pytest.mark.parametrize("name", GRADIENT)
def test_a_tiny_run_learns(name: str, tiny_words_file: Path, tmp_path: Path) -> None:
    summary = train(tiny_config(tiny_words_file, name, steps=150), tmp_path / name)
    first = runs.read_metrics(tmp_path / name)[0]["train_loss"]
    assert summary.train_loss < first - 0.3, (first, summary.train_loss)


def test_every_view_predicts_the_same_targets(tiny_words_file: Path) -> None:
    """A window model and a sequence model count the same number of targets on every split, so
    their mean NLL per character means the same thing."""
    dataset = load_dataset(tiny_words_file, 3, 42)
    for split in ("train", "dev", "test"):
        words = dataset.split_words(split)
        expected = sum(len(w) + 1 for w in words)
        assert dataset.view(split, Windows).n_targets == dataset.view(split, Sequences).n_targets == expected


class CtrlCAt(Listener):
    def __init__(self, step: int):
        self.step = step

    def record(self, record, steps_per_s) -> None:
        if record.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("name", GRADIENT)
def test_ctrl_c_and_resume_equal_an_uninterrupted_run(name: str, tiny_words_file: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_words_file, name, steps=40)
    cfg.model.dropout = 0.1 if "dropout" in family(cfg.model).options else 0.0
    train(cfg, tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "stopped", listener=CtrlCAt(15))
    assert runs.load_checkpoint(tmp_path / "stopped")["step"] == 16  # the step under way when the signal came
    train(cfg, tmp_path / "stopped", resume=True)
    a, b = runs.load_checkpoint(tmp_path / "straight"), runs.load_checkpoint(tmp_path / "stopped")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


@pytest.mark.parametrize("name", NAMES)
def test_a_run_evaluates_samples_and_plots_from_its_checkpoint(name: str, tiny_words_file: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_words_file, name, steps=30)
    summary = train(cfg, tmp_path / "run")
    run = runs.load_run(tmp_path / "run")
    assert run.model.block_size == context_length(cfg, max(map(len, TINY_WORDS)))
    evaluated = evaluate_splits(run, ["train", "dev"])
    assert evaluated["dev"][0] == pytest.approx(summary.dev_loss, rel=1e-5)
    view = run.view("dev")
    assert nll_per_target(run.model, view).mean() == pytest.approx(summary.dev_loss, rel=1e-5)
    cli = CliRunner()
    result = cli.invoke(app, ["sample", str(tmp_path / "run"), "-n", "50", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    samples = json.loads(result.stdout)
    assert len(samples) == 50 and set("".join(samples)) <= set(run.vocab.itos[1:])
    cap = 2 * max(map(len, TINY_WORDS))
    assert all(len(s) <= cap for s in samples)
    result = cli.invoke(app, ["plot-emb", str(tmp_path / "run"), "--out", str(tmp_path / "emb.png")])
    if FAMILIES[name].embedding is None:
        assert result.exit_code == 2 and "no embedding table" in result.stderr
    else:
        assert result.exit_code == 0, result.output
        assert (tmp_path / "emb.png").stat().st_size > 5_000


@pytest.mark.parametrize("name", SEQUENCE)
def test_a_word_longer_than_data_max_len_is_one_clear_error(name: str, tmp_path: Path) -> None:
    words = tmp_path / "long.txt"
    words.write_text("\n".join([*TINY_WORDS, "a" * 40]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--config", "configs/names.toml", "--set", f"data.path={words}", "--set",
                                      f"model.type={name}", "--set", "train.backend=torch", "--set", "data.max_len=30",
                                      "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "data.max_len = 30" in errors[0] and "40 characters" in errors[0]
    assert not (tmp_path / "run").exists()


def test_a_sweep_over_families_trains_each_and_refuses_a_bad_one_before_training(tiny_words_file: Path, tmp_path: Path) -> None:
    """`makemore sweep --grid model.type=mlp,wavenet,transformer`: one run per family, in one table;
    a family the base config does not suit (a transformer whose n_head does not divide n_embd) fails
    before anything runs."""
    cli = CliRunner()
    base = ["sweep", "--config", "configs/transformer.toml", "--set", f"data.path={tiny_words_file}", "--set", "train.steps=20",
            "--set", "train.eval_interval=20", "--set", "model.n_embd=8", "--set", "model.n_hidden=16", "--set", "model.n_layers=1",
            "--grid", "model.type=mlp,wavenet,transformer", "--quiet"]
    result = cli.invoke(app, [*base, "--set", "model.n_head=3", "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "--grid model.type=transformer" in result.stderr and "n_head" in result.stderr
    assert not (tmp_path / "bad").exists()
    result = cli.invoke(app, [*base, "--set", "data.block_size=4", "--out", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "sweep" / "results.md").read_text().strip().splitlines()[2:]
    assert sorted(row.split("|")[2].strip() for row in rows) == ["mlp", "transformer", "wavenet"]


@pytest.mark.parametrize("config", ["configs/wavenet.toml", "configs/gru.toml", "configs/transformer.toml"])
def test_the_shipped_configs_start_near_uniform(config: str) -> None:
    """At their full size too, the new families start at about ln(vocab_size) (lecture part 3)."""
    cfg = load_config(config)
    window = FAMILIES[cfg.model.type].view is Windows
    model = build_model(cfg.model, V, cfg.data.block_size if window else 16, torch.Generator().manual_seed(cfg.train.seed))
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, V, (64, cfg.data.block_size if window else 16), generator=g)
    targets = torch.randint(0, V, idx.shape[:1] if window else idx.shape, generator=g)
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(V)) < 0.05
