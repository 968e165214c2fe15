"""The screenshots of docs/demo.md, taken in headless Chromium with the tests' tooling
(tests/demo_browser.py), and the page's time to first generate.

    python docs/screenshots.py RUN [--out docs]

RUN is a run trained with `makemore train --config configs/names.toml` (for the inspect figures,
add `--set train.stats_interval=2000`). Run it from the repository root, so the run's words file
(data/names.txt) is found. Writes demo-generate.png, demo-score.png and demo-training.png, and
prints the time from the first click on Generate to 20 names shown.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import demo_browser as page  # noqa: E402  (after the path is set)


def full_page(driver: Any, out: Path, width: int = 1280) -> None:
    """A screenshot of the whole page: the window grown to the page's height first."""
    height = int(driver.execute_script("return Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))"))
    driver.set_window_size(width, min(height + 200, 4000))  # the window also holds the browser's own bars
    time.sleep(0.5)  # let the layout settle at the new size
    driver.save_screenshot(str(out))
    driver.set_window_size(width, 1000)


def first_generate(driver: Any, url: str) -> float:
    """Seconds from the first click on Generate (20 names, no options) to the 20 names shown."""
    page.open_page(driver, url)
    start = time.perf_counter()
    page.element(driver, "#generate").click()
    page.wait_for(driver, lambda: len(page.shown_names(driver)) == 20, "20 names")
    return time.perf_counter() - start


def take(driver: Any, url: str, out: Path) -> None:
    """One screenshot per tab, each after a typical use of it."""
    page.open_page(driver, url)
    for elem_id, value in (("gen-prefix", "el"), ("gen-min_len", "4"), ("gen-max_len", "7")):
        page.set_text(driver, elem_id, value)
    page.tick(driver, "gen-new_only")
    page.tick(driver, "gen-unique")
    page.set_text(driver, "gen-seed", "1")
    page.click_and_wait(driver, "generate", "gen-message")
    full_page(driver, out / "demo-generate.png")
    page.open_tab(driver, "Score")
    page.set_text(driver, "score-words", "emma olivia xzqk andrej")
    page.click_and_wait(driver, "score", "score-message")
    page.wait_for(driver, lambda: len(driver.find_elements("css selector", "#score-chars .mm-word")) == 4, "the coloured words")
    full_page(driver, out / "demo-score.png")
    page.open_tab(driver, "Training")
    page.wait_for(driver, lambda: driver.execute_script(
        "const i = document.querySelector('#train-loss img'); return i !== null && i.complete && i.naturalWidth > 0;"), "the loss plot")
    full_page(driver, out / "demo-training.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    why = page.missing()
    if why:
        sys.exit(f"error: {why}")
    with page.serving([args.run.resolve()], cwd=Path.cwd()) as url, page.chromium() as driver:
        seconds = first_generate(driver, url)
        print(f"time to first generate (click to 20 names shown): {seconds:.2f} s")
        args.out.mkdir(parents=True, exist_ok=True)
        take(driver, url, args.out)
    print(f"wrote {', '.join(str(args.out / n) for n in ('demo-generate.png', 'demo-score.png', 'demo-training.png'))}")


if __name__ == "__main__":
    main()
