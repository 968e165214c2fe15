"""docs/python.md's examples run as written: every ```python block, in order, in one namespace,
from a copy of the repository's configs and data (so the runs they train go to a temporary runs/)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "python.md"


def blocks() -> list[str]:
    """The ```python blocks of docs/python.md."""
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_doc_has_examples() -> None:
    assert len(blocks()) >= 5


def test_docs_python_md_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_loss_plot: None) -> None:
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "data" / "names.txt", tmp_path / "data" / "names.txt")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks()):
        exec(compile(code, f"{DOC}:block{i + 1}", "exec"), namespace)  # noqa: S102 - the doc's own examples
    assert (tmp_path / "runs").is_dir()
