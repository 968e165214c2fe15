"""Issue 3: the learning-rate finder, embedding plots and loss curves.

The suggestion rule is checked on synthetic loss curves whose right answer is known; the commands
are run end to end through typer's test runner on tiny words files and must write valid PNGs and
the documented JSON.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from makemore.cli import app
from makemore.errors import MakemoreError
from makemore.lr_find import VALLEY_TOLERANCE, smoothing_window, suggest_lr
from makemore.plots import embedding_2d, is_vowel, smooth, spread_labels
from tests.conftest import tiny_overrides

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_side: int = 200) -> None:
    """A real PNG: the signature, and matplotlib reads it back as an image of a sensible size."""
    import matplotlib.image

    path = Path(path)
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)  # (H, W, 3 or 4)
    assert image.ndim == 3 and image.shape[0] >= min_side and image.shape[1] >= min_side
    assert image.std() > 0.01  # something was drawn


# --- the suggestion rule on curves with known answers -------------------------------------------

def test_symmetric_valley_is_suggested_at_its_centre() -> None:
    # L(e) = 2 + 0.5 (e + 1.3)^2: minimum at lr 10^-1.3; valley where 0.5 (e + 1.3)^2 <= 0.05 * 2
    e = np.linspace(-3, 0, 601)
    losses = 2 + 0.5 * (e + 1.3) ** 2
    s = suggest_lr(10**e, losses, window=1)
    assert math.isclose(math.log10(s.suggested_lr), -1.3, abs_tol=0.01)
    assert math.isclose(math.log10(s.min_loss_lr), -1.3, abs_tol=0.01)
    half_width = math.sqrt(VALLEY_TOLERANCE * 2 / 0.5)  # 0.447 decades
    assert math.isclose(math.log10(s.valley[0]), -1.3 - half_width, abs_tol=0.01)
    assert math.isclose(math.log10(s.valley[1]), -1.3 + half_width, abs_tol=0.01)
    assert math.isclose(s.min_loss, 2.0, abs_tol=1e-4) and s.note is None


def test_asymmetric_valley_middle_not_argmin() -> None:
    # falls 1 nat over 1.5 decades to 2.0 at e = -1.5, flat to -0.5, then rises 2 nats per decade.
    # Within 5 % (0.1 nat) of the minimum: from -1.65 (0.1 nat above the floor on the way down) to
    # -0.45 (0.1 nat up on the way up): the middle is -1.05, i.e. lr ~ 0.089.
    e = np.linspace(-3, 0, 3001)
    losses = np.where(e < -1.5, 2 + (-1.5 - e) / 1.5, np.where(e <= -0.5, 2.0, 2 + 2 * (e + 0.5)))
    losses = losses + 1e-6 * (e + 1.0) ** 2  # a unique minimum in the flat part, at e = -1
    s = suggest_lr(10**e, losses, window=1)
    assert math.isclose(math.log10(s.valley[0]), -1.65, abs_tol=0.002)
    assert math.isclose(math.log10(s.valley[1]), -0.45, abs_tol=0.002)
    assert math.isclose(math.log10(s.suggested_lr), -1.05, abs_tol=0.002)
    # the steepest descent is on the falling side, where the slope is -1/1.5 per decade
    assert math.log10(s.steepest_lr) < -1.5


def test_noisy_minibatch_curve_still_finds_the_valley() -> None:
    # A sweep-like curve: 1000 steps, minibatch noise with sd 0.3 nats; true valley centred at 10^-1.
    rng = np.random.default_rng(0)
    e = np.linspace(-3, 0, 1000)
    clean = 2.5 + 0.4 * (e + 1.0) ** 2
    noisy = clean + rng.normal(0, 0.3, size=e.shape)
    s = suggest_lr(10**e, noisy, window=smoothing_window(1000))
    assert abs(math.log10(s.suggested_lr) - (-1.0)) < 0.15
    assert 0.03 <= s.suggested_lr <= 0.3
    assert s.valley[0] < s.suggested_lr < s.valley[1]


def test_blow_up_at_the_end_is_ignored_and_edges_are_flagged() -> None:
    e = np.linspace(-3, 0, 200)
    losses = 2 + (e + 1.5) ** 2
    losses[-5:] = [50.0, 1e3, 1e8, np.inf, np.nan]
    s = suggest_lr(10**e, losses, window=1)
    assert math.isclose(math.log10(s.suggested_lr), -1.5, abs_tol=0.02) and s.note is None
    still_falling = suggest_lr(10**e, 3 - (e + 3) / 10, window=1)  # decreasing to the last rate
    assert still_falling.note and "--max-exp" in still_falling.note
    already_low = suggest_lr(10**e, 2 + (e + 3), window=1)  # increasing from the first rate
    assert already_low.note and "--min-exp" in already_low.note
    with pytest.raises(MakemoreError):
        suggest_lr(10 ** e[:2], np.array([1.0, np.nan]), window=1)


def test_smooth_trailing_and_centred() -> None:
    v = np.array([0.0, 3.0, 6.0, 3.0, 0.0])
    assert np.allclose(smooth(v, 2), [0, 1.5, 4.5, 4.5, 1.5])  # trailing
    assert np.allclose(smooth(v, 3, centered=True), [1.5, 3, 4, 3, 1.5])  # centred: the peak stays put
    assert np.allclose(smooth(v, 1), v)
    bump = -np.exp(-np.linspace(-3, 3, 101) ** 2)
    assert int(np.argmin(smooth(bump, 21, centered=True))) == 50
    assert int(np.argmin(smooth(bump, 21))) > 50  # the trailing average lags


# --- embedding coordinates ----------------------------------------------------------------------

def test_pca_recovers_known_axes_and_variance() -> None:
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 6)))  # (6, 6) orthonormal: a random rotation
    raw = rng.normal(size=(27, 3))
    q, _ = np.linalg.qr(raw - raw.mean(axis=0))  # (27, 3) orthonormal, zero-mean columns
    coords = np.zeros((27, 6))
    coords[:, :3] = q * np.array([3.0, 1.0, 0.1])  # variances exactly 9 : 1 : 0.01 along three axes
    C = coords @ basis.T + 5.0  # rotated and shifted: PCA must undo both
    xy, (xlabel, ylabel), how = embedding_2d(C)
    for k in range(2):  # the projections are the first two coordinates, up to sign
        sign = np.sign(xy[0, k] / coords[0, k])
        assert np.allclose(xy[:, k], sign * coords[:, k], atol=1e-9)
    assert "90%" in xlabel and "10%" in ylabel  # 9 / 10.01 and 1 / 10.01
    assert "PCA of n_embd = 6" in how and "100%" in how
    assert np.allclose(embedding_2d(C)[0], xy)  # deterministic signs: the same picture every time


def test_embedding_raw_dims_and_errors() -> None:
    C = np.arange(27 * 3, dtype=float).reshape(27, 3)
    xy, labels, _ = embedding_2d(C[:, :2])
    assert np.array_equal(xy, C[:, :2]) and labels == ("C[:, 0]", "C[:, 1]")
    xy, labels, _ = embedding_2d(C, dims=(2, 0))
    assert np.array_equal(xy, C[:, [2, 0]])
    for bad in [(0, 0), (0, 3), (-1, 1)]:
        with pytest.raises(MakemoreError, match="--dims"):
            embedding_2d(C, dims=bad)
    with pytest.raises(MakemoreError):
        embedding_2d(C, dims=(0, 1), pca=True)


def test_spread_labels_separates_overlapping_markers() -> None:
    xy = np.array([[0.0, 0.0], [0.0, 0.0], [0.01, 0.0], [5.0, 5.0]])
    pos = spread_labels(xy, 1.0)
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2) + np.eye(4) * 10
    assert d.min() > 0.9
    assert np.allclose(pos[3], xy[3])  # far points do not move
    assert is_vowel("a") and is_vowel("É") and not is_vowel("y") and not is_vowel(".")


# --- the commands ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Two tiny trained runs on the shared tiny words: n_embd = 2 and n_embd = 4."""
    from typer.testing import CliRunner

    from tests.conftest import write_tiny_words

    root = tmp_path_factory.mktemp("explore")
    words = write_tiny_words(root)
    runner = CliRunner()
    made = {}
    for n_embd in (2, 4):
        run_dir = root / f"emb{n_embd}"
        result = runner.invoke(app, ["train", "--config", "configs/names.toml", *tiny_overrides(words, steps=40),
                                     "--set", f"model.n_embd={n_embd}", "--run-dir", str(run_dir), "-q"])
        assert result.exit_code == 0, result.output
        made[n_embd] = run_dir
    return words, made


def test_lr_find_sweep_writes_png_csv_and_json(runner, tiny_runs, tmp_path) -> None:
    words, _ = tiny_runs
    out = tmp_path / "lrf"
    result = runner.invoke(app, ["lr-find", "--config", "configs/names.toml", *tiny_overrides(words), "--steps", "80",
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert {"suggested_lr", "min_loss_lr", "plot", "csv", "valley", "stopped"} <= set(info)
    assert info["mode"] == "sweep" and info["steps_planned"] == 80
    assert 1e-3 <= info["valley"][0] <= info["suggested_lr"] <= info["valley"][1] <= 1.0
    assert Path(info["plot"]) == out / "lr_find.png"
    assert_png(info["plot"])
    with open(info["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == info["steps_taken"] and list(rows[0]) == ["step", "lr", "loss"]
    lrs = [float(r["lr"]) for r in rows]
    assert math.isclose(lrs[0], 1e-3, rel_tol=1e-5) and all(a < b for a, b in zip(lrs, lrs[1:]))
    assert 2.5 < float(rows[0]["loss"]) < 4.0  # a fresh model: about ln(vocab_size)
    assert json.loads((out / "lr_find.json").read_text()) == info

    result = runner.invoke(app, ["lr-find", "--config", "configs/names.toml", *tiny_overrides(words), "--steps", "80",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "suggested learning rate" in result.stdout and f"wrote {out / 'lr_find.png'}" in result.stdout


def test_lr_find_stops_when_the_loss_blows_up(runner, tiny_runs, tmp_path) -> None:
    words, _ = tiny_runs
    result = runner.invoke(app, ["lr-find", "--config", "configs/names.toml", *tiny_overrides(words), "--steps", "200",
                                 "--min-exp", "-2", "--max-exp", "4", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["stopped"] and info["steps_taken"] < 200
    assert info["suggested_lr"] < 10.0  # the valley is before the blow-up
    assert_png(info["plot"])


def test_lr_find_grid(runner, tiny_runs, tmp_path) -> None:
    words, _ = tiny_runs
    result = runner.invoke(app, ["lr-find", "--config", "configs/names.toml", *tiny_overrides(words), "--mode", "grid",
                                 "--rates", "3", "--steps", "30", "--min-exp", "-3", "--max-exp", "-1", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["mode"] == "grid" and len(info["runs"]) == 3
    rates = [r["lr"] for r in info["runs"]]
    assert np.allclose(rates, [1e-3, 1e-2, 1e-1])
    best = min(info["runs"], key=lambda r: r["dev_loss"])
    assert info["suggested_lr"] == info["min_loss_lr"] == best["lr"]
    # 30 steps at lr 0.001 barely move a fresh model; at 0.1 the dev loss is clearly lower
    assert info["runs"][2]["dev_loss"] < info["runs"][0]["dev_loss"]
    assert_png(info["plot"])
    assert Path(info["csv"]).read_text().splitlines()[0] == "lr,steps,train_loss,dev_loss"


def test_lr_find_user_errors(runner, tiny_runs, tmp_path) -> None:
    words, _ = tiny_runs
    base = ["lr-find", "--config", "configs/names.toml", *tiny_overrides(words), "--out", str(tmp_path / "x")]
    for extra, needle in [(["--min-exp", "0", "--max-exp", "-1"], "--min-exp"), (["--mode", "fast"], "--mode"),
                          (["--set", "model.type=bigram"], "bigram"), (["--steps", "1"], "--steps")]:
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert needle in result.stderr and "Traceback" not in result.output
    assert runner.invoke(app, ["lr-find"]).exit_code == 2


def test_plot_emb_raw_pca_and_dims(runner, tiny_runs, tmp_path) -> None:
    _, made = tiny_runs
    result = runner.invoke(app, ["plot-emb", str(made[2])])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {made[2] / 'embedding.png'}"
    assert_png(made[2] / "embedding.png")
    for extra in (["--pca"], ["--dims", "3,1"], []):
        out = tmp_path / f"emb{'-'.join(extra) or 'default'}.png"
        result = runner.invoke(app, ["plot-emb", str(made[4]), "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        assert_png(out)
    for extra, needle in [(["--dims", "0,9"], "--dims"), (["--dims", "a,b"], "--dims"), (["--dims", "0,1", "--pca"], "--pca")]:
        result = runner.invoke(app, ["plot-emb", str(made[4]), "--out", str(tmp_path / "bad.png"), *extra])
        assert result.exit_code == 2 and needle in result.stderr
    assert not (tmp_path / "bad.png").exists()
    result = runner.invoke(app, ["plot-emb", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "no such run directory" in result.stderr


def test_plot_emb_refuses_a_bigram_run(runner, tiny_runs, tmp_path) -> None:
    words, _ = tiny_runs
    run_dir = tmp_path / "bigram"
    result = runner.invoke(app, ["train", "--config", "configs/names.toml", *tiny_overrides(words), "--set", "model.type=bigram",
                                 "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["plot-emb", str(run_dir)])
    assert result.exit_code == 2 and "no embedding table C" in result.stderr
    result = runner.invoke(app, ["plot-loss", str(run_dir), "--out", str(tmp_path / "bigram-loss.png")])
    assert result.exit_code == 0, result.output
    assert_png(tmp_path / "bigram-loss.png")


def test_plot_loss_overlays_runs(runner, tiny_runs, tmp_path) -> None:
    _, made = tiny_runs
    assert_png(made[2] / "loss.png")  # written by train
    out = tmp_path / "compare.png"
    result = runner.invoke(app, ["plot-loss", str(made[2]), str(made[4]), "--out", str(out), "--label", "two", "--label", "four"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {out}"
    assert_png(out)
    result = runner.invoke(app, ["plot-loss", str(made[2]), str(made[4]), "--label", "only-one"])
    assert result.exit_code == 2 and "--label" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["plot-loss", str(empty)])
    assert result.exit_code == 2 and "no metrics" in result.stderr


def test_plot_loss_draws_both_runs(tiny_runs, tmp_path, monkeypatch) -> None:
    """The overlay really contains one train and one dev line per run, with the given labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from makemore import plots, runs

    _, made = tiny_runs
    captured = {}
    original = plots._save

    def keep(fig, out):
        captured["labels"] = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        captured["lines"] = len([ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata())])
        return original(fig, out)

    monkeypatch.setattr(plots, "_save", keep)
    plots.plot_loss([("A", runs.read_metrics(made[2])), ("B", runs.read_metrics(made[4]))], tmp_path / "x.png")
    plt.close("all")
    assert sum(label.startswith("A train") for label in captured["labels"]) == 1
    assert sum(label.startswith("B dev") for label in captured["labels"]) == 1
    assert captured["lines"] >= 4


def test_grid_plot_marks_off_scale_and_diverged_runs(tmp_path, monkeypatch) -> None:
    """On the figure plot_lr_grid draws: the dev curve holds only the runs on the scale (dev ≤ twice
    the best); the off-scale run (dev 80) is a marker at the top edge, annotated with its loss; the
    diverged run (inf) is another marker at the top edge; every marker is at its own rate."""
    from makemore import plots
    from makemore.lr_find import Grid

    lrs = 10.0 ** np.arange(-3, 2)  # (5,)
    dev = np.array([2.9, 2.5, 2.7, 80.0, np.inf])
    train = np.array([2.8, 2.4, 2.6, 70.0, np.inf])
    drawn = {}
    original = plots._save

    def keep(fig, out):
        ax = fig.axes[0]
        drawn["lines"] = {ln.get_label(): (np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float), ln.get_marker())
                          for ln in ax.get_lines()}
        drawn["notes"] = [(t.get_text(), t.xy) for t in ax.texts]
        drawn["top"] = ax.get_ylim()[1]
        return original(fig, out)

    monkeypatch.setattr(plots, "_save", keep)
    out = plots.plot_lr_grid(Grid(lrs, train, dev, 100, best_lr=0.01), tmp_path / "grid.png")
    assert_png(out)
    lines = drawn["lines"]
    x, y, _ = lines["dev NLL at the end of the run"]
    assert x.tolist() == lrs[:3].tolist() and y.tolist() == dev[:3].tolist()  # on the scale only
    [off] = [label for label in lines if label.startswith("dev NLL off the scale")]
    assert "5.00" in off  # the scale's cap: twice the best dev loss, 2.5
    x_off, y_off, marker_off = lines[off]
    x_div, y_div, marker_div = lines["diverged (non-finite loss)"]
    assert x_off.tolist() == [lrs[3]] and x_div.tolist() == [lrs[4]]
    assert marker_off != marker_div and marker_off not in ("", "None") and marker_div not in ("", "None")
    assert y_off[0] == y_div[0] > max(dev[:3].max(), train[:3].max())  # both on the top edge, above every loss shown
    assert y_off[0] <= drawn["top"]  # and inside the axes
    assert [(text, xy[0]) for text, xy in drawn["notes"]] == [("80", lrs[3])]  # the off-scale loss, written at its rate
