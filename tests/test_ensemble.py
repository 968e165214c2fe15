"""Ensembles (issue 25, item 6): `makemore ensemble RUN RUN... --out DIR` makes a directory that
evaluates, samples and scores like a run; its model mixes the members' next-character distributions.

Tested: an ensemble of one equals its member (a window and a sequence member); the weights sum to
1; fitted weights give a dev NLL no worse than the best member's; the mixture of a window and a
sequence member is the weighted sum of their probabilities, position by position; equal weights;
bad input is one line and exit 2 (different vocabularies, a member that does not exist).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from makemore import api, runs
from makemore.cli import app
from makemore.ensemble import fit_weights, mixture_nll
from makemore.training import train
from tests.conftest import tiny_cfg

pytestmark = pytest.mark.usefixtures("no_loss_plot")


def cli(*args: object, code: int = 0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> dict[str, Path]:
    """Three tiny runs on one words file: an MLP (windows of 3), a GRU (sequences), a WaveNet (windows of 4)."""
    from tests.conftest import write_tiny_words

    d = tmp_path_factory.mktemp("members")
    words = write_tiny_words(d)
    common = ("train.backend=torch", "train.optimizer=adamw", "train.lr=0.01", "train.threads=1")
    out = {}
    for name, extra in {"mlp": (), "gru": ("model.type=gru",), "wavenet": ("model.type=wavenet", "data.block_size=4")}.items():
        out[name] = d / name
        train(tiny_cfg(words, 40, *common, *extra), out[name])
    return out


@pytest.mark.parametrize("member", ["mlp", "gru"])
def test_an_ensemble_of_one_equals_its_member(member, members, tmp_path):
    ens = api.ensemble([members[member]], tmp_path / "ens")
    alone = api.load(members[member])
    assert ens.loaded.model.weights.tolist() == [1.0]
    assert ens.evaluate(("train", "dev")) == pytest.approx(alone.evaluate(("train", "dev")), abs=1e-6)
    assert ens.word_nll(["emma", "zoe"]) == pytest.approx(alone.word_nll(["emma", "zoe"]), abs=1e-5)
    assert ens.sample(12, seed=3) == alone.sample(12, seed=3)


def test_fitted_weights_sum_to_one_and_are_no_worse_than_the_best_member(members, tmp_path):
    paths = [members[n] for n in ("mlp", "gru", "wavenet")]
    ens = api.ensemble(paths, tmp_path / "ens")
    w = ens.loaded.model.weights.double()
    assert w.sum().item() == pytest.approx(1.0, abs=1e-6) and (w >= 0).all()
    dev = ens.evaluate(("dev",))["dev"]
    member_devs = [api.load(p).evaluate(("dev",))["dev"] for p in paths]
    assert dev <= min(member_devs) + 1e-6
    spec = runs.read_ensemble(tmp_path / "ens")
    assert spec["weighting"] == "fitted" and spec["dev_nll"] == pytest.approx(dev, abs=1e-5)
    assert spec["member_dev_nll"] == pytest.approx(member_devs, abs=1e-5)
    # the directory reads back as the same ensemble, from another working directory too (absolute paths)
    assert api.load(tmp_path / "ens").evaluate(("dev",))["dev"] == dev


def test_a_mixture_is_the_weighted_sum_of_its_members_probabilities(members, tmp_path):
    ens = api.ensemble([members["mlp"], members["gru"]], tmp_path / "ens", weights="equal")
    assert ens.loaded.model.weights.tolist() == [0.5, 0.5]
    mlp, gru = api.load(members["mlp"]), api.load(members["gru"])
    words = ["emma", "zoe", "abcdefg"]
    with torch.inference_mode():
        for word in words:
            ids = torch.tensor([[0] + [mlp.vocab.stoi[c] for c in word]])  # (1, L + 1): boundary, then the word
            mixed = torch.softmax(ens.model(ids)[0], -1)[0]  # (L + 1, vocab_size)
            p_gru = torch.softmax(gru.model(ids)[0], -1)[0]  # (L + 1, vocab_size)
            padded = torch.cat([torch.zeros(1, 2, dtype=torch.long), ids], 1)  # 3 boundaries before the first character
            p_mlp = torch.stack([torch.softmax(mlp.model(padded[:, t : t + 3])[0], -1)[0] for t in range(len(word) + 1)])
            assert torch.allclose(mixed, 0.5 * p_mlp + 0.5 * p_gru, atol=1e-6), word


def test_em_never_loses_to_a_single_member_or_to_equal_weights():
    rng = np.random.default_rng(0)
    L = np.log(rng.dirichlet(np.ones(5), size=(3, 400))[..., 0])  # (3, 400) members' ln p of each target
    w = fit_weights(L)
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert mixture_nll(L, w) <= min(mixture_nll(L, np.eye(3)[i]) for i in range(3)) + 1e-12
    assert mixture_nll(L, w) <= mixture_nll(L, np.full(3, 1 / 3)) + 1e-12


def test_the_command_makes_a_directory_that_evaluates_samples_and_scores(members, tmp_path):
    out = tmp_path / "ens"
    result = cli("ensemble", members["mlp"], members["gru"], "--out", out, "--weights", "equal")
    assert "dev" in result.stdout and (out / runs.ENSEMBLE).is_file()
    dev = json.loads(cli("evaluate", out, "--split", "dev", "--json").stdout)["dev"]
    assert dev == pytest.approx(api.load(out).evaluate(("dev",))["dev"])
    assert len(json.loads(cli("sample", out, "-n", "5", "--seed", "0", "--json").stdout)) == 5
    assert json.loads(cli("score", out, "emma", "--json").stdout)[0]["word"] == "emma"
    cli("ensemble", members["mlp"], "--out", out, code=2)  # the directory exists


def test_members_with_different_vocabularies_are_one_line_exit_2(members, tmp_path):
    other = tmp_path / "words.txt"
    other.write_text("\n".join(["äpfel", "öl", "über", "ära"] * 10) + "\n", encoding="utf-8")
    train(tiny_cfg(other, 10, "train.backend=torch"), tmp_path / "other")
    result = cli("ensemble", members["mlp"], tmp_path / "other", "--out", tmp_path / "ens", code=2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "vocabulary" in lines[0], lines
    assert not (tmp_path / "ens").exists()


def test_a_member_that_does_not_exist_is_one_line_exit_2(members, tmp_path):
    result = cli("ensemble", members["mlp"], tmp_path / "nowhere", "--out", tmp_path / "ens", code=2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "nowhere" in lines[0], lines
    assert not (tmp_path / "ens").exists()
    assert cli("ensemble", members["mlp"], "--out", tmp_path / "ens", "--weights", "best", code=2).output.count("\n") == 1
