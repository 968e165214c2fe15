"""The `makemore` command line (typer): builds the app and registers the command modules.

Each command is a plain function in one of the modules below; this module is the only one that
knows the app, and the command modules never import it (an import-linter contract says so). A
user's mistake (MakemoreError) becomes one line on stderr and exit code 2 (`common.user_errors`).
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import typer

from makemore import __version__
from makemore.cli import data, demo, explore, run, sweep
from makemore.cli.common import user_errors

app = typer.Typer(
    help="Train character-level language models on a file of words, one per line, and sample more like them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
data_app = typer.Typer(help="Build words files.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"makemore {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print makemore's version and exit."),
) -> None:
    """Train character-level language models on a file of words, one per line, and sample more like them."""


def _register(target: typer.Typer, name: str, command: Callable[..., Any]) -> None:
    target.command(name)(user_errors(command))


for _name, _command in [
    ("train", run.train), ("evaluate", run.evaluate), ("sample", run.sample), ("score", run.score),
    ("lr-find", explore.lr_find), ("plot-emb", explore.plot_emb), ("plot-loss", explore.plot_loss), ("inspect", explore.inspect),
    ("sweep", sweep.sweep), ("ensemble", run.ensemble), ("demo", demo.demo),
]:
    _register(app, _name, _command)
_register(data_app, "ssa", data.data_ssa)


def main() -> None:
    """Entry point of the `makemore` console script."""
    app(prog_name="makemore")


if __name__ == "__main__":
    sys.exit(main())
