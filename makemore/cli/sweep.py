"""The sweep command: `makemore sweep --config BASE --grid key=v1,v2 ...`; renders the results table with rich.

A plain grid runs one config after another in this process (makemore.sweep); --search random|tpe,
--prune, --storage, --study or --jobs run it on Optuna (makemore.search).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from makemore.cli.common import ProgressBar, SetOption, console, fail


def rich_table(outcome: Any, title: str | None = None) -> Any:
    """A sweep's results (makemore.sweep.SweepOutcome) as a rich Table, best dev loss first."""
    from rich.table import Table

    from makemore.sweep import header, table_rows

    order = "best dev first" if outcome.rank_by == "dev" else f"ranked by {outcome.rank_by}"
    table = Table(title=title or f"sweep {outcome.out}  (mean NLL, nats/char; {order})")
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
    search: str = typer.Option("grid", "--search", help="grid (every --grid combination), random or tpe (--trials draws from --space; needs Optuna)."),
    trials: Optional[int] = typer.Option(None, "--trials", min=1, help="Trials of a random or TPE search, in the whole study (default 20)."),
    space: Optional[list[str]] = typer.Option(
        None, "--space", metavar="SECTION.KEY=RANGE", help="A dimension of a random/TPE search: log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH or v1,v2,...; repeatable.",
    ),
    prune: bool = typer.Option(False, "--prune", help="Stop trials whose dev loss is worse than the median of earlier trials at the same step (Optuna)."),
    storage: Optional[str] = typer.Option(None, "--storage", help="Database URL of the Optuna study, e.g. postgresql://host/db; default sqlite in OUT."),
    study: Optional[str] = typer.Option(None, "--study", help="Optuna study name, shared by every worker of the sweep; default OUT's name."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes on this machine (Optuna)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the random/TPE sampler: with one worker the same seed draws the same trials (worker i of --jobs: seed + i)."),
    rank_by: str = typer.Option("dev", "--rank-by", help="Sort the table by dev (the dev loss) or a sample-quality metric: share_new, share_duplicates, length_tv, char_kl, nll."),
    samples: int = typer.Option(1000, "--samples", min=1, help="Samples per run for --rank-by a sample-quality metric."),
) -> None:
    """Train every combination of the --grid values, each a normal run directory in OUT, then print
    and write (OUT/results.csv, OUT/results.md) a table sorted by dev loss.

    Re-running the same command skips the runs that finished; Ctrl-C stops after the current
    run's checkpoint and still writes the table of the finished runs. With --search, --prune,
    --storage, --study or --jobs the sweep runs on an Optuna study that any number of workers,
    on any machines, can share (pip install 'makemore[sweep]').
    """
    from makemore.config import load_config
    from makemore.search import sweep as run
    from makemore.sweep import RESULTS_CSV, RESULTS_MD

    if config is None:
        fail("no config: pass --config FILE, e.g. makemore sweep --config configs/names.toml --grid train.lr=0.1,0.05")
    target = out or Path("runs") / f"sweep-{config.stem}"
    err = console(stderr=True)
    outcome = run(load_config(config, set_ or []), target, grid or [], search=search, trials=trials, space=space or [], prune=prune,
                  storage=storage, study=study, jobs=jobs, seed=seed, announce=_announcer(err, target), listener=ProgressBar(enabled=not quiet),
                  rank_by=rank_by, samples=samples)
    out_console = console()
    if not out_console.is_terminal:  # piped to a file: do not squeeze the table into 80 columns
        out_console.width = 160
    out_console.print(rich_table(outcome))
    err.print(f"wrote {target / RESULTS_CSV} and {target / RESULTS_MD}")
    if outcome.interrupted:
        err.print(f"interrupted: {len(outcome.results)} of {outcome.planned} run(s) in the table; run the same command again to continue")
        raise typer.Exit(outcome.exit_code)


def _announcer(err: Any, target: Path) -> Any:
    """The line printed before each run of a sweep (makemore.sweep.Announce)."""
    from rich.markup import escape

    from makemore.sweep import format_value

    def announce(i: int, total: int, p: Any, action: str) -> None:
        if i == 1:
            err.print(f"sweep: {total} run(s) into {target}", soft_wrap=True)
        values = ", ".join(f"{k}={format_value(v)}" for k, v in p.combo.items()) or "base config"
        verb = {"skip": "finished earlier, skipped", "resume": "resuming", "train": "training"}[action]
        err.print(f"[bold]\\[{i}/{total}][/bold] {escape(values)}: {verb}  ({escape(str(p.run_dir))})", soft_wrap=True)

    return announce
