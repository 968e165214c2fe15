"""`makemore sweep`: every combination trained into its own run directory, a table sorted by dev
loss, finished runs skipped on a re-run, Ctrl-C keeps what finished."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import pytest

from makemore import runs
from makemore.cli import app
from makemore.config import Config
from makemore.errors import MakemoreError
from makemore.training import Listener
from makemore.sweep import parse_grid, plan, run_name, run_sweep, split_values

from tests.conftest import tiny_overrides


def test_sweep_trains_every_combination_and_rerunning_skips_them(tmp_path: Path, tiny_words_file: Path, runner) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", *tiny_overrides(tiny_words_file, steps=30), "--config", str(Path(__file__).parent.parent / "configs" / "names.toml"),
            "--grid", "model.n_hidden=8,16", "--grid", "train.lr=0.1,0.02", "--out", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    dirs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert dirs == ["model.n_hidden=16,train.lr=0.02", "model.n_hidden=16,train.lr=0.1",
                    "model.n_hidden=8,train.lr=0.02", "model.n_hidden=8,train.lr=0.1"]
    for d in dirs:  # each a normal run directory with the combination's config
        assert {"config.toml", runs.CHECKPOINT, "summary.json", "metrics.jsonl"} <= {p.name for p in (out / d).iterdir()}
        assert f"n_hidden = {d.split(',')[0].split('=')[1]}" in (out / d / "config.toml").read_text()

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4
    devs = [float(r["dev_loss"]) for r in rows]
    assert devs == sorted(devs)
    for r in rows:
        summary = json.loads((Path(r["run_dir"]) / "summary.json").read_text())
        assert float(r["dev_loss"]) == summary["dev_loss"] and float(r["train_loss"]) == summary["train_loss"]
        assert float(r["gap"]) == pytest.approx(summary["dev_loss"] - summary["train_loss"])
        assert int(r["params"]) == {"8": 27 * 4 + 12 * 8 + 8 + 8 * 27 + 27, "16": 27 * 4 + 12 * 16 + 16 + 16 * 27 + 27}[r["model.n_hidden"]]
        assert r["status"] == "trained"
    md = (out / "results.md").read_text()
    assert md.splitlines()[0].startswith("| # | model.n_hidden | train.lr | params |")
    assert len(md.strip().splitlines()) == 2 + 4
    assert "dev" in result.output  # the rich table

    mtimes = {d: (out / d / runs.CHECKPOINT).stat().st_mtime_ns for d in dirs}
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "skipped" in again.output
    assert {d: (out / d / runs.CHECKPOINT).stat().st_mtime_ns for d in dirs} == mtimes  # nothing retrained
    rows_again = list(csv.DictReader((out / "results.csv").open()))
    assert [r["dev_loss"] for r in rows_again] == [r["dev_loss"] for r in rows]
    assert {r["status"] for r in rows_again} == {"skipped"}


def test_ctrl_c_keeps_the_finished_runs_and_a_rerun_continues(tmp_path: Path, tiny_words_file: Path) -> None:
    base = Config()
    for key, value in {"data.path": str(tiny_words_file), "model.n_embd": 4, "model.n_hidden": 8, "train.steps": 30,
                       "train.batch_size": 16, "train.eval_interval": 15, "train.log_interval": 5,
                       "train.lr_milestones": [15], "train.device": "cpu"}.items():
        base.set(key, value)
    grid = parse_grid(["train.lr=0.1,0.05,0.02"])
    out = tmp_path / "sweep"
    seen: list[int] = []

    class CtrlCInSecondRun(Listener):
        def record(self, record, steps_per_s) -> None:
            seen.append(record.step)
            if seen.count(30) == 1 and record.step == 10 and len(seen) > 6:  # step 10 of the second run
                os.kill(os.getpid(), signal.SIGINT)

    stopped = run_sweep(base, grid, out, listener=CtrlCInSecondRun())
    assert stopped.interrupted
    assert [r.combo["train.lr"] for r in stopped.results] == [0.1]  # only the finished run is listed
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["train.lr"] for r in rows] == ["0.1"]
    assert "interrupted" in (out / "results.md").read_text()
    second = out / run_name({"train.lr": 0.05})
    assert (second / runs.CHECKPOINT).is_file() and not (second / "summary.json").exists()

    actions: list[str] = []
    done = run_sweep(base, grid, out, announce=lambda i, n, p, action: actions.append(action))
    assert actions == ["skip", "resume", "train"]
    assert not done.interrupted and len(done.results) == 3
    assert all((out / run_name({"train.lr": lr}) / "summary.json").is_file() for lr in (0.1, 0.05, 0.02))
    devs = [r.dev_loss for r in done.results]
    assert devs == sorted(devs)


def test_grid_parsing_and_checks(tmp_path: Path) -> None:
    assert split_values("0.1, 0.01") == ["0.1", "0.01"]
    assert split_values("[100,200],[300]") == ["[100,200]", "[300]"]
    assert parse_grid(["train.lr=0.1,1e-2", "model.norm=none,batchnorm", "train.lr_milestones=[10,20],[5]"]) == [
        ("train.lr", [0.1, 0.01]), ("model.norm", ["none", "batchnorm"]), ("train.lr_milestones", [[10, 20], [5]])]
    planned = plan(Config(), parse_grid(["model.n_layers=1,2", "train.lr=0.1"]), tmp_path)
    assert [p.config.model.n_layers for p in planned] == [1, 2]
    assert [p.run_dir.name for p in planned] == ["model.n_layers=1,train.lr=0.1", "model.n_layers=2,train.lr=0.1"]
    assert plan(Config(), [], tmp_path)[0].run_dir.name == "base"
    for bad, message in [
        (["train.lr"], "expected section.key=v1,v2"),
        (["train.lr=0.1,,0.2"], "empty value"),
        (["train.lr=0.1", "train.lr=0.2"], "given twice"),
    ]:
        with pytest.raises(MakemoreError, match=message):
            parse_grid(bad)
    for bad, message in [(["model.n_hiden=8"], "did you mean 'model.n_hidden'"), (["model.norm=groupnorm"], "must be one of"),
                         (["train.lr=-1"], "train.lr must be")]:
        with pytest.raises(MakemoreError, match=message):
            plan(Config(), parse_grid(bad), tmp_path)


def test_cli_errors_are_one_line_and_leave_nothing_behind(tmp_path: Path, tiny_words_file: Path, runner) -> None:
    out = tmp_path / "sweep"
    config = str(Path(__file__).parent.parent / "configs" / "names.toml")
    for args in (["sweep", "--config", config, "--grid", "model.norm=groupnorm", "--out", str(out)],
                 ["sweep", "--grid", "train.lr=0.1", "--out", str(out)],
                 ["sweep", "--config", config, "--set", "data.path=/no/such/file", "--out", str(out)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_a_changed_base_config_is_not_mixed_with_old_runs(tmp_path: Path, tiny_words_file: Path, runner) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", *tiny_overrides(tiny_words_file, steps=10), "--config", str(Path(__file__).parent.parent / "configs" / "names.toml"),
            "--grid", "train.lr=0.1", "--out", str(out), "-q"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, args + ["--set", "model.n_embd=5"])
    assert result.exit_code == 2 and "different config" in result.output


def test_a_diverging_run_is_listed_and_the_sweep_goes_on(tmp_path: Path, tiny_words_file: Path) -> None:
    base = Config()
    for key, value in {"data.path": str(tiny_words_file), "model.n_embd": 4, "model.n_hidden": 8, "train.steps": 20,
                       "train.batch_size": 16, "train.eval_interval": 10, "train.log_interval": 5, "train.device": "cpu",
                       "model.activation": "relu"}.items():  # relu does not saturate: a huge lr overflows to nan
        base.set(key, value)
    outcome = run_sweep(base, parse_grid(["train.lr=1e30,0.1"]), tmp_path / "sweep")
    assert [(r.combo["train.lr"], r.status) for r in outcome.results] == [(0.1, "trained"), (1e30, "diverged")]
    rows = list(csv.DictReader((tmp_path / "sweep" / "results.csv").open()))
    assert [r["status"] for r in rows] == ["trained", "diverged"] and rows[1]["dev_loss"] == ""
