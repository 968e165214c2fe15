"""Sample-quality metrics (issue 25, item 5): `makemore evaluate RUN --samples N`, api.Run.sample_quality,
and `makemore sweep --rank-by METRIC`.

The metrics are checked against values worked out by hand on small word lists, then on a run's
own samples against a direct count of the same samples.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore import api
from makemore.cli import app
from makemore.config import load_config
from makemore.errors import MakemoreError
from makemore.quality import char_kl, length_tv
from makemore.search import sweep
from makemore.training import train
from tests.conftest import tiny_cfg, tiny_overrides

pytestmark = pytest.mark.usefixtures("no_loss_plot")


def cli(*args: object, code: int = 0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result


def test_length_tv_by_hand():
    assert length_tv(["ab", "cd"], ["ef", "gh", "ij"]) == 0.0
    assert length_tv(["a"], ["bb"]) == 1.0
    # lengths {1: 1/2, 2: 1/2} against {2: 1/4, 3: 3/4}: ½ (1/2 + 1/4 + 3/4) = 0.75
    assert length_tv(["a", "bb"], ["cc", "ddd", "eee", "fff"]) == pytest.approx(0.75)


def test_char_kl_by_hand():
    assert char_kl(["ab"], ["ba"], "ab") == 0.0
    # counts + 1: samples a 3, b 1 → (3/4, 1/4); dev a 1, b 3 → (1/4, 3/4)
    expected = 0.75 * math.log(3) + 0.25 * math.log(1 / 3)
    assert char_kl(["aa"], ["bb"], "ab") == pytest.approx(expected)
    assert char_kl(["aa"], ["bb"], "ab") > 0 and math.isfinite(char_kl(["aa"], ["bb"], "abc"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from tests.conftest import write_tiny_words

    d = tmp_path_factory.mktemp("quality")
    train(tiny_cfg(write_tiny_words(d), 60, "train.backend=torch"), d / "run")
    return d / "run"


def test_a_runs_metrics_match_a_direct_count_of_its_samples(run_dir):
    run = api.load(run_dir)
    q = run.sample_quality(300, seed=5)
    assert q == run.sample_quality(300, seed=5) and q != run.sample_quality(300, seed=6)
    drawn = run.samples(300, seed=5).words  # the same draw
    words = [w for w, _ in drawn]
    train_words = run.training_words()
    assert q.share_new == sum(w not in train_words for w in words) / 300
    assert q.share_duplicates == pytest.approx(1 - len(set(words)) / 300)
    dev = run.loaded.dataset.split_words("dev")
    assert q.length_tv == pytest.approx(length_tv(words, dev))
    scored = [w for w, finished in drawn if finished and w]  # the NLL is over finished, non-empty samples
    assert q.unfinished == sum(not finished for _, finished in drawn)
    lengths = [len(w) + 1 for w in scored]
    nll = sum(x * n for x, n in zip(run.word_nll(scored), lengths)) / sum(lengths)
    assert q.nll == pytest.approx(nll, rel=1e-6)
    assert 0 <= q.share_new <= 1 and 0 <= q.length_tv <= 1 and q.char_kl >= 0
    with pytest.raises(MakemoreError):
        run.sample_quality(0)


def test_evaluate_samples_reports_the_metrics(run_dir):
    out = json.loads(cli("evaluate", run_dir, "--split", "dev", "--json", "--samples", "200", "--seed", "1").stdout)
    q = api.load(run_dir).sample_quality(200, seed=1)
    assert out["samples"]["share_new"] == q.share_new and out["samples"]["nll"] == pytest.approx(q.nll)
    assert set(out) == {"dev", "samples"}
    table = cli("evaluate", run_dir, "--samples", "50").stdout
    assert "share duplicates" in table and "character KL" in table


def test_a_sweep_ranks_by_a_sample_metric(tiny_words_file, tmp_path):
    base = load_config(None, tiny_overrides(tiny_words_file, 30)[1::2] + ["train.backend=torch"])
    outcome = sweep(base, tmp_path / "sweep", ["train.lr=0.3,0.03,0.003"], rank_by="length_tv", samples=100)
    values = [r.quality for r in outcome.results]
    assert values == sorted(values) and all(math.isfinite(v) for v in values)
    for r in outcome.results:
        assert r.quality == api.load(r.run_dir).sample_quality(100, 0).length_tv
    rows = list(csv.DictReader((tmp_path / "sweep" / "results.csv").open()))
    assert [float(row["length_tv"]) for row in rows] == values
    # share_new: higher is better, so it ranks the other way
    outcome = sweep(base, tmp_path / "sweep", ["train.lr=0.3,0.03,0.003"], rank_by="share_new", samples=100)
    values = [r.quality for r in outcome.results]
    assert values == sorted(values, reverse=True)
    with pytest.raises(MakemoreError, match="--rank-by"):
        sweep(base, tmp_path / "other", ["train.lr=0.1"], rank_by="beauty")
    assert not (tmp_path / "other").exists()  # refused before anything was trained


def test_counted_duplicates_are_repeats_not_distinct_words():
    words = ["ana", "ana", "bo", "ana"]
    assert 1 - len(set(words)) / len(words) == 0.5 == sum(c - 1 for c in Counter(words).values()) / len(words)
