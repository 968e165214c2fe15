"""The ground the rest stands on: a run is prepared once, train.backend = "auto" picks the backend,
view types carry their behaviour, and no function in makemore/ grows past 50 lines."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore import data, distributed, prepare, runs
from makemore.cli import app
from makemore.config import Config, load_config
from makemore.data import Sequences, Windows
from makemore.errors import MakemoreError
from makemore.models import FAMILIES

PACKAGE = Path(__file__).resolve().parent.parent / "makemore"
ROOT = PACKAGE.parent
#: The longest a function in makemore/ may be, docstring excluded (issue 21).
MAX_FUNCTION_LINES = 50


def function_lengths() -> list[tuple[int, str]]:
    """(lines without the docstring, "file:line name") of every function and method in makemore/."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                doc = body[0] if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str) else None
                doc_lines = doc.end_lineno - doc.lineno + 1 if doc else 0
                out.append((node.end_lineno - node.lineno + 1 - doc_lines, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return out


def test_no_function_in_makemore_is_longer_than_50_lines() -> None:
    lengths = function_lengths()
    assert len(lengths) > 200  # the walk found the package's functions
    long = sorted((n, where) for n, where in lengths if n > MAX_FUNCTION_LINES)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (docstring excluded): {long}"


def test_the_length_rule_catches_a_long_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself works: a 51-line function in a copy of the package is reported."""
    fake = tmp_path / "makemore"
    fake.mkdir()
    (fake / "long.py").write_text('def f():\n    """doc\n    more"""\n' + "    x = 1\n" * 51, encoding="utf-8")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake, raising=False)
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert function_lengths() == [(52, "makemore/long.py:1 f")]


def test_no_code_outside_the_view_types_compares_view_names() -> None:
    """Views are types: nobody dispatches on the strings "windows" or "sequences"."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                consts = [c for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                if any(c.value in ("windows", "sequences") for c in consts):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def test_each_family_reads_a_view_type_that_carries_its_behaviour() -> None:
    cfg = Config()
    for fam in FAMILIES.values():
        assert fam.view in (Windows, Sequences)
    assert Windows.context_length(cfg.data, 15, "mlp") == cfg.data.block_size
    assert Sequences.context_length(cfg.data, 15, "gru") == 16
    assert (Windows.longest_readable(3), Sequences.longest_readable(16)) == (None, 15)
    assert (Windows.start_padding(3), Sequences.start_padding(16)) == (3, 1)
    cfg.data.max_len = 10
    with pytest.raises(MakemoreError, match="data.max_len = 10"):
        Sequences.context_length(cfg.data, 15, "gru")


# ------------------------------------------------------------------------------------ auto backend

def _cfg(words: Path, *sets: str) -> Config:
    cfg = load_config(None, [f"data.path={json.dumps(str(words))}", "train.steps=4", "train.batch_size=4", *sets])
    return cfg


@pytest.mark.parametrize("sets, backend", [
    ((), "numpy"),                                                   # the MLP on a CPU, one process
    (("train.device=cpu",), "numpy"),
    (("model.type=gru",), "torch"),                                  # a family NumPy does not implement
    (("model.type=transformer", "model.n_embd=8"), "torch"),
    (("model.norm=batchnorm",), "numpy"),                            # an option NumPy implements
    (("train.stats_interval=2",), "numpy"),                          # NumPy records the part 3 statistics too
    (("model.n_layers=2", "model.activation=gelu"), "numpy"),
    (("train.backend=torch",), "torch"),                             # an explicit choice stays
])
def test_auto_picks_numpy_for_the_mlp_on_a_cpu_and_torch_otherwise(tiny_words_file: Path, sets: tuple, backend: str) -> None:
    assert prepare.check(_cfg(tiny_words_file, *sets)).backend == backend


def test_auto_picks_torch_for_a_job_of_several_processes(tiny_words_file: Path) -> None:
    assert prepare.check(_cfg(tiny_words_file), processes=2).backend == "torch"
    assert prepare.check(_cfg(tiny_words_file), distributed.World(0, 2, 0)).backend == "torch"


def test_an_explicit_backend_that_cannot_do_the_job_is_refused_in_one_line(tiny_words_file: Path) -> None:
    with pytest.raises(MakemoreError, match="train.backend = 'numpy' cannot train model.type = 'gru'"):
        prepare.check(_cfg(tiny_words_file, "train.backend=numpy", "model.type=gru"))


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "configs").glob("*.toml")))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_shipped_config_takes_every_family(config: str, family: str) -> None:
    """`--set model.type=T` on any shipped config checks without further settings (a transformer's
    n_head must divide n_embd, which every shipped n_embd does with the default or set n_head)."""
    checked = prepare.check(load_config(ROOT / "configs" / config, [f"model.type={family}"]))
    assert checked.family.name == family and checked.backend in ("numpy", "torch")


def test_the_run_records_the_backend_it_used(tmp_path: Path, tiny_words_file: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--config", str(ROOT / "configs" / "names.toml"), "--run-dir", str(tmp_path / "r"), "-q",
                                      "--set", f"data.path={json.dumps(str(tiny_words_file))}", "--set", "train.steps=3",
                                      "--set", "train.eval_interval=3"])
    assert result.exit_code == 0, result.output
    assert runs.stored_config(tmp_path / "r").train.backend == "numpy"
    assert runs.read_summary(tmp_path / "r")["backend"] == "numpy"
    assert runs.load_checkpoint(tmp_path / "r")["backend"] == "numpy"


def test_the_lecture_config_trains_a_transformer_and_on_two_processes_without_naming_a_backend(tmp_path: Path, tiny_words_file: Path) -> None:
    base = ["train", "--config", str(ROOT / "configs" / "names.toml"), "-q", "--set", f"data.path={json.dumps(str(tiny_words_file))}",
            "--set", "train.steps=2", "--set", "train.eval_interval=2"]
    result = CliRunner().invoke(app, [*base, "--run-dir", str(tmp_path / "t"), "--set", "model.type=transformer"])
    assert result.exit_code == 0, result.output
    assert runs.read_summary(tmp_path / "t")["backend"] == "torch"
    done = subprocess.run([sys.executable, "-m", "makemore", *base, "--run-dir", str(tmp_path / "two"), "--nproc", "2",
                           "--set", "train.batch_size=4"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert runs.read_summary(tmp_path / "two")["backend"] == "torch"


# ------------------------------------------------------------------------------------ once only

def test_each_check_and_read_runs_once_per_run(tmp_path: Path, tiny_words_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`makemore train` checks the family, chooses and checks the backend, resolves the device,
    sizes the context, reads the words file and builds its World once each."""
    calls: Counter = Counter()

    def counted(owner: object, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper if not isinstance(owner, type) else staticmethod(wrapper))

    for name in ("check_model", "choose_backend", "check_backend", "resolve_device"):
        counted(prepare, name)
    counted(data, "read_labelled_words")
    counted(distributed, "launched")
    counted(Sequences, "context_length")
    config = tmp_path / "c.toml"
    config.write_text("[train]\nseed = 1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--run-dir", str(tmp_path / "r"), "-q", "--set", f"data.path={json.dumps(str(tiny_words_file))}",
                                      "--set", "model.type=gru", "--set", "train.steps=3", "--set", "train.eval_interval=3"])
    assert result.exit_code == 0, result.output
    assert calls == {"check_model": 1, "choose_backend": 1, "check_backend": 1, "resolve_device": 1,
                     "read_labelled_words": 1, "launched": 1, "context_length": 1}
