"""`makemore demo`: the page, driven in a real browser (headless Chromium through Selenium), and
the functions under it.

The browser tests start `makemore demo` on a free port with a small run trained here, generate
with constraints and check every shown name keeps them, score words, open the Training tab, and
submit bad input (an unknown character, impossible lengths, a run that is gone) to check the
one-line message and that the server keeps serving. They skip, saying why, where gradio,
selenium, Chromium or chromedriver is missing (.ci/run installs them).
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from makemore import api, demo
from makemore.errors import MakemoreError
from makemore.evaluate import char_nll, word_nll
from tests import demo_browser as page
from tests.conftest import tiny_cfg, write_tiny_words

MISSING = page.missing()
needs_browser = pytest.mark.skipif(MISSING is not None, reason=f"browser tests of makemore demo: {MISSING}")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> api.Run:
    """A seconds-long run on the tiny words file, recording training statistics (for the inspect figures)."""
    folder = tmp_path_factory.mktemp("demo")
    return api.train(tiny_cfg(write_tiny_words(folder), 60, "train.stats_interval=20"), run_dir=folder / "tiny")


def test_char_nll_adds_up_to_the_word_score(tiny_run: api.Run) -> None:
    pairs = char_nll(tiny_run.loaded, "emma")
    assert [ch for ch, _ in pairs] == ["e", "m", "m", "a", tiny_run.vocab.itos[0]]  # the characters, then the end token
    assert all(x > 0 for _, x in pairs)
    mean = sum(x for _, x in pairs) / len(pairs)
    assert mean == pytest.approx(tiny_run.score(["emma"])[0].nll, abs=1e-5)
    with pytest.raises(MakemoreError, match="not in the run's vocabulary"):
        char_nll(tiny_run.loaded, "em!ma")


def test_an_empty_sample_is_scored(tiny_run: api.Run) -> None:
    # plain sampling may end a word at once (""); the Generate tab scores whatever was drawn, and
    # padded_stream used to misplace every word after an empty one (a ValueError)
    model, vocab, view = tiny_run.model, tiny_run.vocab, tiny_run.loaded.family.view
    together = word_nll(model, vocab, view, ["ava", "", "emma", ""])
    alone = [word_nll(model, vocab, view, [w])[0] for w in ("ava", "", "emma", "")]
    assert together.tolist() == pytest.approx(alone, abs=1e-5)
    assert together[1] == pytest.approx(char_nll(tiny_run.loaded, "")[0][1], abs=1e-5)  # "": the end token alone


def test_controls_are_those_the_api_accepts() -> None:
    names = [c.name for c in demo.supported_controls()]
    for present in ("prefix", "min_len", "max_len", "temperature", "top_k", "new_only", "unique", "seed"):
        assert present in names  # the options Run.sample has today

    def later_api(n: int, *, prefix: str = "", top_p: float | None = None, suffix: str = "") -> list[str]:
        return []

    # a control appears as soon as Run.sample takes its keyword, in the table's order
    assert [c.name for c in demo.supported_controls(later_api)] == ["prefix", "suffix", "top_p"]


def test_sample_kwargs_pass_only_what_is_set() -> None:
    controls = [c for c in demo.GENERATE_CONTROLS if c.name in ("prefix", "min_len", "temperature", "top_k", "unique")]
    assert demo.sample_kwargs(controls, [" el ", "4", 0.8, "", False]) == {"prefix": "el", "min_len": 4, "temperature": 0.8}
    assert isinstance(demo.sample_kwargs(controls, ["", 4.0, None, None, True])["min_len"], int)
    with pytest.raises(MakemoreError, match="shortest: '3.5' is not a whole number"):
        demo.sample_kwargs(controls, ["", "3.5", None, None, False])
    with pytest.raises(MakemoreError, match="top-k: 'ten' is not a number"):
        demo.sample_kwargs(controls, ["", None, None, "ten", False])


def test_handler_errors_are_one_line_in_the_page() -> None:
    def mistaken() -> tuple[Any, ...]:
        raise MakemoreError("--top-k must be at least 1 <b>")

    def broken() -> tuple[Any, ...]:
        raise ZeroDivisionError("division by zero")

    assert demo.guarded(mistaken, ("",))() == ("", '<div class="mm-message mm-error">error: --top-k must be at least 1 &lt;b&gt;</div>')
    out = demo.guarded(broken, ("",))()[1]
    assert "unexpected ZeroDivisionError: division by zero" in out and "Traceback" not in out
    assert demo.guarded(lambda: ("x", "done"), ("",))() == ("x", '<div class="mm-message">done</div>')


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def served(tiny_run: api.Run, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The page serving the tiny run and a copy of it (which a test removes), and a Chromium."""
    if MISSING is not None:
        pytest.skip(f"browser tests of makemore demo: {MISSING}")
    other = Path(shutil.copytree(tiny_run.path, tiny_run.path.parent / "tiny-copy"))
    before = _files(tiny_run.path)
    cwd = tmp_path_factory.mktemp("serve")
    with page.serving([tiny_run.path, other], cwd) as url, page.chromium() as driver:
        yield {"url": url, "driver": driver, "run": tiny_run, "other": other, "before": before}


def _generate(driver: Any, **fields: str | bool) -> str:
    for name, value in fields.items():
        if isinstance(value, bool):
            page.tick(driver, f"gen-{name}", value)
        else:
            page.set_text(driver, f"gen-{name}", value)
    return page.click_and_wait(driver, "generate", "gen-message")


@needs_browser
def test_generate_keeps_every_constraint(served: dict[str, Any]) -> None:
    driver = served["driver"]
    page.open_page(driver, served["url"])
    status = _generate(driver, n="12", prefix="a", min_len="3", max_len="5", unique=True)
    assert status.startswith("12 names from tiny"), status
    names = page.shown_names(driver)
    assert len(names) == 12 and len(set(names)) == 12
    for name in names:
        assert name.startswith("a") and 3 <= len(name) <= 5, name
    rows = page.wait_for(driver, lambda: page.table_rows(driver, "gen-table"), "the table of names")
    train_words = set(served["run"].loaded.dataset.split_words("train"))
    for name, nll, seen in rows:
        assert name in names
        assert float(nll) == pytest.approx(served["run"].score([name])[0].nll, abs=1e-3)
        assert seen == ("yes" if name in train_words else "no")


@needs_browser
def test_score_shows_scores_and_the_worst_character(served: dict[str, Any]) -> None:
    driver, run = served["driver"], served["run"]
    page.open_page(driver, served["url"])
    page.open_tab(driver, "Score")
    page.set_text(driver, "score-words", "emma ava")
    assert page.click_and_wait(driver, "score", "score-message").startswith("2 words scored")
    rows = page.wait_for(driver, lambda: page.table_rows(driver, "score-table"), "the table of scores")
    expected = {s.word: s for s in run.score(["emma", "ava"])}
    assert [row[0] for row in rows] == ["emma", "ava"]
    for word, nll, perplexity, percentile in rows:
        assert float(nll) == pytest.approx(expected[word].nll, abs=1e-3)
        assert float(perplexity) == pytest.approx(math.exp(expected[word].nll), rel=1e-3)
        assert 0.0 <= float(percentile) <= 100.0
    words = driver.find_elements("css selector", "#score-chars .mm-word")
    assert len(words) == 2
    emma = words[0].find_elements("css selector", ".mm-char")
    assert [c.text for c in emma] == ["e", "m", "m", "a", "⏎"]
    worst = max(range(5), key=lambda i: char_nll(run.loaded, "emma")[i][1])
    assert [i for i, c in enumerate(emma) if "mm-worst" in (c.get_attribute("class") or "")] == [worst]


@needs_browser
def test_training_tab_shows_the_loss_plot(served: dict[str, Any]) -> None:
    driver = served["driver"]
    page.open_page(driver, served["url"])
    page.open_tab(driver, "Training")

    def loaded(elem_id: str) -> bool:
        return bool(driver.execute_script(
            f"const i = document.querySelector('#{elem_id} img'); return i !== null && i.complete && i.naturalWidth > 300;"))

    for figure in ("train-loss", "train-embedding", "train-ratios", "train-saturation"):
        page.wait_for(driver, lambda: loaded(figure), f"the image in #{figure}")
    summary = page.element(driver, "#train-summary").text
    assert "parameters" in summary and "dev loss" in summary
    assert re.search(r"steps \(checkpoint\)\s+60", summary), summary
    # offline: everything the page loaded (scripts, styles, fonts, figures) came from the demo's own server
    loaded_from = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded_from and [u for u in loaded_from if not u.startswith(served["url"])] == []


@needs_browser
def test_bad_input_shows_one_line_and_the_server_keeps_serving(served: dict[str, Any]) -> None:
    driver = served["driver"]
    page.open_page(driver, served["url"])
    unknown = _generate(driver, prefix="a!")
    assert unknown.startswith("error: ") and "'!'" in unknown and "\n" not in unknown, unknown
    assert "Traceback" not in driver.page_source
    lengths = _generate(driver, prefix="", min_len="6", max_len="3")
    assert lengths.startswith("error: ") and lengths != unknown, lengths
    assert page.shown_names(driver) == []
    assert _generate(driver, min_len="", max_len="").startswith("20 names")  # still serving
    page.open_tab(driver, "Score")
    page.set_text(driver, "score-words", "zz?")
    assert page.click_and_wait(driver, "score", "score-message") == (
        f"error: 'zz?': character '?' is not in the run's vocabulary ({''.join(served['run'].vocab.itos[1:])!r})")
    assert page.answers(served["url"])


@needs_browser
def test_a_run_that_is_gone_is_named(served: dict[str, Any]) -> None:
    driver, other = served["driver"], served["other"]
    page.open_page(driver, served["url"])
    page.choose(driver, "run", str(other))
    shutil.rmtree(other)
    assert _generate(driver) == f"error: {other}: no such run directory"
    page.choose(driver, "run", str(served["run"].path))
    assert _generate(driver).startswith("20 names from tiny in")


@needs_browser
def test_the_page_never_writes_to_the_run(served: dict[str, Any]) -> None:
    driver = served["driver"]
    page.open_page(driver, served["url"])
    assert _generate(driver, new_only=True).startswith("20 names")
    page.open_tab(driver, "Training")
    page.wait_for(driver, lambda: page.message(driver, "train-message").startswith("tiny"), "the Training tab")
    # after these and the tests above (scores, figures, errors), the run directory is as it was
    assert _files(served["run"].path) == served["before"]


def test_without_gradio_the_command_says_what_to_install(monkeypatch: pytest.MonkeyPatch, runner: Any) -> None:
    import sys

    from makemore.cli import app

    monkeypatch.setitem(sys.modules, "gradio", None)  # as if the [demo] extra were not installed
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 2
    assert "error: the page needs the [demo] extra: pip install 'makemore[demo]'" in result.output
