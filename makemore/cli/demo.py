"""`makemore demo`: serve the page (makemore.demo) for people who want names.

gradio is imported only when the command runs (the [demo] extra), so the rest of the command line
works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def demo(
    run_dirs: Optional[list[Path]] = typer.Argument(None, metavar="RUN_DIR", show_default=False,
                                                    help="Runs to offer; default: every run under runs/."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; the default serves this machine only."),
    port: Optional[int] = typer.Option(None, "--port", help="Port to listen on; default: the first free one from 7860."),
    share: bool = typer.Option(False, "--share", help="Also make a public link through Gradio's servers (needs the internet)."),
) -> None:
    """Serve a local page to generate names, score words and look at training (Gradio; pip install -e '.[demo]')."""
    from makemore.demo import serve

    serve([str(p) for p in run_dirs or []], host=host, port=port, share=share)
