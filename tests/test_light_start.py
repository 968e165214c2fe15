"""A light start and finish: nothing imports torch, matplotlib or Optuna until it needs them, and
the loss plot is drawn only when wanted (train.plot), after the run has reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import write_tiny_words

ROOT = Path(__file__).resolve().parent.parent

#: Runs a makemore command in this Python and prints, last on stderr, the heavy modules it imported.
PROBE = """
import sys
from makemore.cli import main
sys.argv = ["makemore", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(sorted(m for m in ("torch", "matplotlib", "optuna", "gradio") if m in sys.modules), file=sys.stderr)
"""


def imported(*args: str) -> tuple[list[str], subprocess.CompletedProcess]:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    return eval(result.stderr.strip().splitlines()[-1]), result  # noqa: S307 - the list PROBE printed


def test_help_and_import_makemore_load_nothing_heavy() -> None:
    assert imported("--help")[0] == []
    out = subprocess.run([sys.executable, "-c", "import makemore, sys; makemore.__version__; "
                          "print(sorted(m for m in ('torch', 'matplotlib', 'optuna') if m in sys.modules))"],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_a_run_without_plot_never_imports_matplotlib_and_plot_loss_draws_it_on_demand(tmp_path: Path) -> None:
    words = write_tiny_words(tmp_path)
    heavy, result = imported("train", "--config", "configs/fast.toml", "--run-dir", str(tmp_path / "run"), "-q",
                             "--set", f"data.path='{words}'", "--set", "train.steps=20", "--set", "train.eval_interval=20")
    assert "final loss" in result.stdout, result.stderr
    assert "matplotlib" not in heavy and not (tmp_path / "run" / "loss.png").exists()
    heavy, result = imported("plot-loss", str(tmp_path / "run"))
    assert "matplotlib" in heavy and (tmp_path / "run" / "loss.png").stat().st_size > 10_000


def test_a_run_with_plot_has_its_loss_png(tmp_path: Path) -> None:
    words = write_tiny_words(tmp_path)
    _, result = imported("train", "--config", "configs/names.toml", "--run-dir", str(tmp_path / "run"), "-q",
                         "--set", f"data.path='{words}'", "--set", "train.steps=20", "--set", "train.eval_interval=20")
    assert "final loss" in result.stdout, result.stderr
    assert (tmp_path / "run" / "loss.png").stat().st_size > 10_000
