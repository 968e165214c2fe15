"""What the command modules share: options, one-line errors, and rendering with rich.

Nothing here imports torch or the training code, so `makemore --help` stays fast; the command
modules import the library inside their functions.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import typer

from makemore.errors import MakemoreError, ReportedElsewhere

SetOption = typer.Option(None, "--set", metavar="SECTION.KEY=VALUE", help="Override a config key; repeatable. The value is read as TOML (a bare word is a string).")
RunDirArgument = typer.Argument(None, help="A run directory; default: the most recent run under runs/.", show_default=False)


def fail(message: str, code: int = 2) -> None:
    """Print one line, "error: message", to stderr and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn MakemoreError raised by a command into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ReportedElsewhere:  # another process of a torchrun job prints it
            raise typer.Exit(2)
        except MakemoreError as e:
            fail(str(e))

    return wrapper


def console(stderr: bool = False) -> Any:
    """A rich Console (imported lazily)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def note(message: str) -> None:
    """One line of advice on stderr (not an error)."""
    console(stderr=True).print(message, markup=False, soft_wrap=True)


class ProgressBar:
    """Draws a training run's progress (a makemore.training.Listener) as a rich progress bar on stderr:
    step, loss, dev loss, lr, steps/s. Updated only at metrics records.

    Args:
        enabled: draw the bar (False: stay silent, e.g. for --quiet or --json).
        announce: print "run: RUN_DIR" when a run starts (the train command does; a sweep
            announces its runs itself).
    """

    def __init__(self, enabled: bool = True, announce: bool = False):
        self.enabled, self.announce = enabled, announce
        self._bar: Any = None

    def started(self, run_dir: Path, step: int, steps: int, resumed: bool) -> None:
        if self.announce:
            console(stderr=True).print(f"run: {run_dir}" + (" (resuming)" if resumed else ""), markup=False, soft_wrap=True)
        if not self.enabled or steps == 0:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss [cyan]{task.fields[loss]}"), TextColumn("dev [magenta]{task.fields[dev]}"),
            TextColumn("lr {task.fields[lr]}"), TextColumn("{task.fields[speed]} steps/s"), TimeRemainingColumn(),
            console=console(stderr=True), transient=False,
        )
        self._task = self._bar.add_task("train", total=steps, completed=step, loss="-", dev="-", lr="-", speed="-")
        self._bar.start()

    def record(self, record: Any, steps_per_s: float) -> None:
        if self._bar is None:
            return
        fields = {"loss": f"{record.train_loss:.4f}", "lr": f"{record.lr:.3g}", "speed": f"{steps_per_s:,.0f}"}
        if record.dev_loss is not None:
            fields["dev"] = f"{record.dev_loss:.4f}"
        self._bar.update(self._task, completed=record.step, **fields)

    def fitted(self, steps: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, total=steps)

    def ended(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
