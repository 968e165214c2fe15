"""The sweep command: `makemore sweep --config BASE --grid key=v1,v2 ...`; renders the results table with rich."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from makemore.cli.common import ProgressBar, SetOption, console, fail


def rich_table(outcome: Any, title: str | None = None) -> Any:
    """A sweep's results (makemore.sweep.SweepOutcome) as a rich Table, best dev loss first."""
    from rich.table import Table

    from makemore.sweep import header, table_rows

    table = Table(title=title or f"sweep {outcome.out}  (mean NLL, nats/char; best dev first)")
    short = [k.rpartition(".")[2] for k in outcome.keys]
    names = header(outcome)
    if len(set(short)) == len(short):  # "n_hidden" rather than "model.n_hidden" where unambiguous
        names[1 : 1 + len(short)] = short
    for i, name in enumerate(names):
        table.add_column(name, justify="left" if 0 < i <= len(outcome.keys) or name == "status" else "right")
    for row in table_rows(outcome):
        table.add_row(*row)
    return table


def sweep(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Base TOML config every run starts from."),
    grid: Optional[list[str]] = typer.Option(
        None, "--grid", "-g", metavar="SECTION.KEY=V1,V2,...",
        help="Values to try for one key (read as TOML, like --set); repeatable: every combination is trained.",
    ),
    set_: Optional[list[str]] = SetOption,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Sweep directory; default runs/sweep-<config name>."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train every combination of the --grid values one after another, each a normal run directory
    in OUT, then print and write (OUT/results.csv, OUT/results.md) a table sorted by dev loss.

    Re-running the same command skips the runs that finished; Ctrl-C stops after the current
    run's checkpoint and still writes the table of the finished runs.
    """
    from rich.markup import escape

    from makemore.config import load_config
    from makemore.sweep import RESULTS_CSV, RESULTS_MD, format_value, parse_grid, run_sweep

    if config is None:
        fail("no config: pass --config FILE, e.g. makemore sweep --config configs/names.toml --grid train.lr=0.1,0.05")
    base = load_config(config, set_ or [])
    parsed = parse_grid(grid or [])
    target = out or Path("runs") / f"sweep-{config.stem}"
    err = console(stderr=True)

    def announce(i: int, total: int, p, action: str) -> None:
        if i == 1:
            err.print(f"sweep: {total} run(s) into {target}", soft_wrap=True)
        values = ", ".join(f"{k}={format_value(v)}" for k, v in p.combo.items()) or "base config"
        verb = {"skip": "finished earlier, skipped", "resume": "resuming", "train": "training"}[action]
        err.print(f"[bold]\\[{i}/{total}][/bold] {escape(values)}: {verb}  ({escape(str(p.run_dir))})", soft_wrap=True)

    outcome = run_sweep(base, parsed, target, announce=announce, listener=ProgressBar(enabled=not quiet))
    out_console = console()
    if not out_console.is_terminal:  # piped to a file: do not squeeze the table into 80 columns
        out_console.width = 160
    out_console.print(rich_table(outcome))
    err.print(f"wrote {target / RESULTS_CSV} and {target / RESULTS_MD}")
    if outcome.interrupted:
        err.print(f"interrupted: {len(outcome.results)} of {outcome.planned} run(s) in the table; run the same command again to continue")
        raise typer.Exit(130)
