"""Driving `makemore demo` in headless Chromium with Selenium: used by tests/test_demo.py and by
docs/screenshots.py, so the tests and the screenshots see the page the same way.

Chromium and its driver come from the operating system's packages (Debian: apt-get install
chromium chromium-driver); nothing is downloaded (Selenium's own driver download is never used).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

#: How long to wait for the server to answer, and for the page to show a result (generous: a
#: shared CI machine may be slow; nothing is timed against these).
SERVER_TIMEOUT_S = 120.0
PAGE_TIMEOUT_S = 60.0


def missing() -> str | None:
    """Why the page cannot be driven here (gradio, selenium, chromium or its driver missing), or None."""
    for module, extra in (("gradio", "pip install -e '.[demo]'"), ("selenium", "pip install -e '.[test]'")):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed ({extra})"
    if browser_binary() is None:
        return "no Chromium installed (Debian: apt-get install chromium chromium-driver)"
    if shutil.which("chromedriver") is None:
        return "no chromedriver installed (Debian: apt-get install chromium-driver)"
    return None


def browser_binary() -> str | None:
    """The system's Chromium (or Chrome), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(run_dirs: list[Path], cwd: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`makemore demo RUN... --port P` in its own process; yields its URL once it answers, and
    stops it at the end. Fails with the server's output if it exits or never answers."""
    port = free_port()
    log = tempfile.TemporaryFile("w+")  # the server's output, shown if it fails to start
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "demo", *map(str, run_dirs), "--port", str(port)],
                            cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT_S
        while not answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(f"makemore demo did not start (exit code {proc.poll()}):\n{log.read()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def answers(url: str) -> bool:
    """Whether an HTTP GET of `url` gets a 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium (selenium.webdriver.Chrome) with the system's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_binary() or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}",
                "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Callable[[], Any], what: str, timeout: float = PAGE_TIMEOUT_S) -> Any:
    """Poll `condition()` until it returns something true; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # an element not there yet, or replaced while read
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def element(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def open_page(driver: Any, url: str) -> None:
    """Load the page and wait until Gradio has drawn the Generate button."""
    driver.get(url)
    wait_for(driver, lambda: element(driver, "#generate").is_displayed(), "the page to load")


def set_text(driver: Any, elem_id: str, value: str) -> None:
    """Type `value` into the text or number box with this elem_id (replacing what was there)."""
    from selenium.webdriver.common.keys import Keys

    box = element(driver, f"#{elem_id} textarea, #{elem_id} input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    if value:
        box.send_keys(value)
    box.send_keys(Keys.TAB)  # Gradio reads a number box's value when it loses focus


def tick(driver: Any, elem_id: str, on: bool = True) -> None:
    """Set the checkbox with this elem_id."""
    box = element(driver, f"#{elem_id} input[type=checkbox]")
    if box.is_selected() != on:
        box.click()


def choose(driver: Any, elem_id: str, value: str) -> None:
    """Pick `value` in the dropdown with this elem_id (typed in and confirmed)."""
    from selenium.webdriver.common.keys import Keys

    box = element(driver, f"#{elem_id} input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(value)
    box.send_keys(Keys.ENTER)
    box.send_keys(Keys.TAB)


def message(driver: Any, elem_id: str) -> str:
    """The text of a tab's message line ("" while there is none; Gradio's progress text is not read)."""
    from selenium.webdriver.common.by import By

    found = element(driver, f"#{elem_id}").find_elements(By.CSS_SELECTOR, ".mm-message")
    return str(found[0].text.strip()) if found else ""


def click_and_wait(driver: Any, button: str, message_id: str) -> str:
    """Click the button with this elem_id, wait for the tab's message line to change, return it
    (so two clicks in a row must not give the same message: a generated list's differs by its seed)."""
    before = message(driver, message_id)
    element(driver, f"#{button}").click()
    return str(wait_for(driver, lambda: (lambda m: m if m and m != before else None)(message(driver, message_id)),
                        f"a new message in #{message_id} after clicking #{button}"))


def shown_names(driver: Any) -> list[str]:
    """The names in the Generate tab's list (one per line)."""
    value = element(driver, "#gen-names textarea").get_attribute("value") or ""
    return [line for line in value.splitlines() if line]


def table_rows(driver: Any, elem_id: str) -> list[list[str]]:
    """The body rows of the Dataframe with this elem_id, as cell texts (read by their ARIA roles:
    Gradio draws the body as a grid of rows and cells)."""
    from selenium.webdriver.common.by import By

    rows = element(driver, f"#{elem_id}").find_elements(By.CSS_SELECTOR, "[role=row]")
    cells = [[str(cell.get_attribute("textContent")).strip() for cell in row.find_elements(By.CSS_SELECTOR, "[role=gridcell]")]
             for row in rows]
    return [row for row in cells if row]


def open_tab(driver: Any, name: str) -> None:
    """Click the tab button labelled `name`."""
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]"):
        if button.text.strip() == name:
            button.click()
            return
    raise AssertionError(f"no tab named {name!r}")
