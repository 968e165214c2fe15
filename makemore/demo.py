"""`makemore demo`: a local page for people who want names, built with Gradio on makemore.api.

Three tabs over one chosen run (any under runs/, or the runs named on the command line):

- Generate: Run.sample with the options in GENERATE_CONTROLS that this version's API accepts; a
  table of the names with their NLL per character and whether each is a training word, and the
  list with a copy button.
- Score: Run.score (NLL per character, perplexity, percentile among the training words) and each
  character's NLL (makemore.evaluate.char_nll) as colours, the least expected character marked.
- Training: the run's config, summary, loss curve (optionally next to a second run's), the
  embedding plot, and where statistics were recorded the inspect figures (saturation, update ratios).

Safe and offline: it binds 127.0.0.1 unless told otherwise, makes no share link unless asked,
sends no analytics and fetches nothing (the theme's fonts are served by the page itself). A user's
mistake (MakemoreError) shows its one line in the tab's message area, never a traceback, and the
server keeps serving. It reads run directories and never writes to them: figures are drawn into a
temporary folder and read back into memory.

Extension points: a new sampling option is one row of GENERATE_CONTROLS (its control appears as
soon as Run.sample accepts a keyword of that name); a labelled run's p(label | word) is one more
column in `score_rows`. gradio is imported inside the functions, so the rest of makemore (and
`makemore --help`) works without the [demo] extra.
"""

from __future__ import annotations

import html
import inspect
import math
import os
import secrets
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from makemore import api, runs
from makemore.errors import MakemoreError

#: Where the page listens unless told otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"
#: The most names one click may ask for.
MAX_NAMES = 1000


@dataclass(frozen=True)
class Control:
    """One input of the Generate tab: a keyword argument of makemore.api.Run.sample."""

    name: str
    """The keyword of Run.sample it sets (also the control's elem_id, "gen-<name>")."""
    label: str
    kind: str
    """"text", "int", "float" or "bool"."""
    default: Any = None
    """The value the control starts with; an empty text, an empty number or an unticked box is not passed."""
    info: str = ""


#: Every option the Generate tab knows, in page order. Those whose keyword Run.sample does not
#: (yet) accept are left out of the page (`supported_controls`).
GENERATE_CONTROLS: tuple[Control, ...] = (
    Control("prefix", "prefix", "text", "", "every name starts with this"),
    Control("suffix", "suffix", "text", "", "every name ends with this"),
    Control("contains", "contains", "text", "", "every name contains this"),
    Control("match", "pattern", "text", "", "a regular expression every whole name matches"),
    Control("min_len", "shortest", "int", None, "fewest characters, prefix included"),
    Control("max_len", "longest", "int", None, "most characters, prefix included"),
    Control("temperature", "temperature", "float", 1.0, "below 1: safer; above 1: wilder"),
    Control("top_k", "top-k", "int", None, "draw only from the k most likely characters"),
    Control("top_p", "top-p", "float", None, "draw only from the most likely characters holding this much probability"),
    Control("new_only", "new only", "bool", False, "none of the run's words"),
    Control("unique", "unique", "bool", False, "no name twice"),
    Control("label", "label", "text", "", "a labelled run: the label to generate for (empty: drawn from the training frequencies)"),
    Control("best", "most likely", "bool", False, "the most likely names instead of random draws"),
    Control("seed", "seed", "int", None, "empty: a fresh draw each time"),
)


def supported_controls(sample: Callable[..., Any] | None = None) -> list[Control]:
    """The GENERATE_CONTROLS whose keyword `sample` (default makemore.api.Run.sample) accepts."""
    accepted = inspect.signature(sample or api.Run.sample).parameters
    return [c for c in GENERATE_CONTROLS if c.name in accepted]


def sample_kwargs(controls: Sequence[Control], values: Sequence[Any]) -> dict[str, Any]:
    """Run.sample's keyword arguments from the controls' values, in the same order: numbers as int
    or float, and only what the user set (an empty text or number, an unticked box is left out).

    Raises:
        MakemoreError: a value that is not a number where one is needed.
    """
    kwargs: dict[str, Any] = {}
    for control, value in zip(controls, values):
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "" or value is False:
            continue
        if control.kind in ("int", "float"):
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise MakemoreError(f"{control.label}: {value!r} is not a number") from None
            if control.kind == "int" and number != int(number):
                raise MakemoreError(f"{control.label}: {value!r} is not a whole number")
            value = int(number) if control.kind == "int" else number
        kwargs[control.name] = value
    return kwargs


class RunShelf:
    """The runs the page offers, each loaded on first use and again when its checkpoint changes
    (a run still training); its training words are read once per load.

    Raises (constructor):
        MakemoreError: a named run that does not exist or has no checkpoint; no runs under `root`.
    """

    def __init__(self, given: Sequence[str | Path] | None, root: str | Path = runs.DEFAULT_ROOT):
        self.given = [str(runs.resolve_run(path)) for path in given or []]
        self.root = Path(root)
        if not self.given:
            runs.latest_run(self.root)  # "no runs under runs/: train one first ..."
        self._loaded: dict[str, tuple[int, api.Run, set[str] | None]] = {}
        self._lock = threading.Lock()

    def choices(self) -> list[str]:
        """The runs named on the command line, or every run under root with a checkpoint, newest first."""
        if self.given:
            return list(self.given)
        found = [p.parent for p in self.root.glob(f"*/{runs.CONFIG}") if runs.has_checkpoint(p.parent)]
        return [str(p) for p in sorted(found, key=lambda p: ((p / runs.CONFIG).stat().st_mtime, p.name), reverse=True)]

    def get(self, path: str | None) -> tuple[api.Run, set[str] | None]:
        """The loaded run and its training words (None when the words file cannot be read).

        Raises:
            MakemoreError: no run chosen; the run is gone, has no checkpoint, or cannot be read.
        """
        if not path:
            raise MakemoreError("no run chosen: pick one in the list at the top")
        resolved = runs.resolve_run(path)
        try:
            stamp = runs.checkpoint_file(resolved).stat().st_mtime_ns
        except OSError as e:
            raise MakemoreError(f"{resolved}: cannot read its checkpoint: {e.strerror or e}") from None
        with self._lock:
            cached = self._loaded.get(path)
            if cached is None or cached[0] != stamp:
                run = api.load(resolved)
                try:
                    words: set[str] | None = set(run.loaded.dataset.split_words("train"))
                except MakemoreError:
                    words = None
                cached = self._loaded[path] = (stamp, run, words)
        return cached[1], cached[2]


def generate(shelf: RunShelf, controls: Sequence[Control], run_path: str, n: Any, *values: Any) -> tuple[list[list[Any]], str, str]:
    """The Generate tab: n names from the chosen run with the controls' options.

    Returns:
        (table rows [name, NLL per character, in training words], the names one per line, a status line).

    Raises:
        MakemoreError: as Run.sample (an option out of range, too few names found), a bad run.
    """

    run, train_words = shelf.get(run_path)
    count = sample_kwargs([Control("n", "how many", "int")], [n]).get("n")
    if count is None or not 1 <= count <= MAX_NAMES:
        raise MakemoreError(f"how many: choose 1 to {MAX_NAMES:,}")
    kwargs = sample_kwargs(controls, values)
    if "seed" in {c.name for c in controls}:
        kwargs.setdefault("seed", secrets.randbits(31))  # drawn here so the page can show it
    started = time.perf_counter()
    names = run.sample(count, **kwargs)
    nll = run.word_nll(names)
    seen = (lambda w: "?") if train_words is None else (lambda w: "yes" if w in train_words else "no")
    rows = [[w, "-" if x is None else f"{x:.3f}", seen(w)] for w, x in zip(names, nll)]
    in_training = sum(row[2] == "yes" for row in rows)
    status = (f"{len(names)} names from {run.path.name} in {time.perf_counter() - started:.2f} s; "
              + ("training words unreadable" if train_words is None else f"{in_training} in the training words")
              + (f"; seed {kwargs['seed']}" if "seed" in kwargs else ""))
    return rows, "\n".join(names), status


def split_words(text: str) -> list[str]:
    """The words typed into the Score tab: separated by spaces, commas or new lines."""
    return [w for w in text.replace(",", " ").split() if w]


def score_rows(run: api.Run, words: Sequence[str]) -> list[list[Any]]:
    """[word, NLL per character, perplexity, percentile] per word (Run.score); a labelled run's
    p(label | word) becomes one more column here when the API offers it.

    Raises:
        MakemoreError: a word the model cannot score, named.
    """
    rows = []
    for s in run.score(list(words)):
        rows.append([s.word, f"{s.nll:.3f}", f"{s.perplexity:.2f}", "-" if s.percentile is None else f"{s.percentile:.1f}"])
    return rows


def char_colour(nll: float, vocab_size: int) -> str:
    """A background colour for a character's NLL (nats): green when expected, through yellow at
    ln(vocab_size) (a uniform guess), to red at twice that."""
    t = min(max(nll / (2.0 * math.log(vocab_size)), 0.0), 1.0)
    return f"hsl({120.0 * (1.0 - t):.0f}, 75%, 78%)"


def char_html(word: str, pairs: Sequence[tuple[str, float]], vocab_size: int) -> str:
    """One word as coloured characters (`char_colour`), then its end token as "⏎"; the character
    with the largest NLL is underlined and named after the word. Escaped HTML."""
    worst = max(range(len(pairs)), key=lambda i: pairs[i][1])
    spans = []
    for i, (ch, nll) in enumerate(pairs):
        shown = "⏎" if i == len(word) else html.escape(ch)
        what = "end of word" if i == len(word) else repr(ch)
        style = f"background:{char_colour(nll, vocab_size)};padding:1px 3px;margin:0 1px;border-radius:3px;"
        if i == worst:
            style += "outline:2px solid #b00;font-weight:bold;"
        spans.append(f'<span class="mm-char{" mm-worst" if i == worst else ""}" title="{html.escape(what)}: {nll:.2f} nats" style="{style}">{shown}</span>')
    ch, nll = pairs[worst]
    worst_text = "the end of the word" if worst == len(word) else f"'{html.escape(ch)}'"
    return (f'<div class="mm-word" style="font-family:monospace;font-size:1.3em;margin:6px 0;">{"".join(spans)}'
            f'<span style="font-family:sans-serif;font-size:0.7em;margin-left:12px;">least expected: {worst_text}, '
            f"{nll:.2f} nats</span></div>")


def score(shelf: RunShelf, run_path: str, text: str) -> tuple[list[list[Any]], str, str]:
    """The Score tab: a table of scores and the words' characters coloured by NLL.

    Raises:
        MakemoreError: no words; a word the model cannot score; a bad run.
    """
    from makemore.evaluate import char_nll

    words = split_words(text or "")
    if not words:
        raise MakemoreError("no words to score: type one or more, separated by spaces")
    run, _ = shelf.get(run_path)
    rows = score_rows(run, words)
    vocab_size = run.vocab.vocab_size
    legend = ("<p style='font-size:0.9em'>Each character's NLL in nats, −ln p(character | what comes before): green is expected, "
              f"yellow about a uniform guess (ln {vocab_size} = {math.log(vocab_size):.2f}), red twice that. ⏎ is the end of the word.</p>")
    body = "".join(char_html(w, char_nll(run.loaded, w), vocab_size) for w in words)
    status = f"{len(words)} words scored with {run.path.name}"
    if any(row[3] == "-" for row in rows):
        status += f"; no percentiles: the training words ({run.config.data.path}) cannot be read from here"
    return rows, legend + body, status


def _read_png(path: Path) -> Any:
    """A PNG read into memory (a PIL image), so its file can go."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.copy()


def _image(draw: Callable[[Path], Any]) -> Any:
    """A figure drawn by `draw(path)` into a temporary PNG, read back into memory and the file
    removed: the page never writes where the runs are."""
    with tempfile.TemporaryDirectory(prefix="makemore-demo-") as folder:
        path = Path(folder) / "figure.png"
        draw(path)
        return _read_png(path)


def summary_markdown(run: api.Run) -> str:
    """The run's summary as a Markdown table: model, parameters, steps, training time, final losses."""
    params = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    rows = [("run", f"`{run.path}`"), ("model.type", run.config.model.type), ("parameters", f"{params:,}"),
            ("steps (checkpoint)", f"{run.step:,}")]
    if runs.is_finished(run.path):
        s = runs.read_summary(run.path)
        rows += [("training time", f"{s['train_time_s']:.1f} s"), ("train loss (nats/char)", f"{s['train_loss']:.4f}"),
                 ("dev loss (nats/char)", f"{s['dev_loss']:.4f}")]
    else:
        rows.append(("summary", "training has not finished (no summary.json)"))
    return "| summary | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def loss_image(paths: Sequence[Path]) -> Any:
    """The loss curves (train and dev) of one run or two compared, as makemore.plots.plot_loss draws them."""
    from makemore.plots import plot_loss

    series = [(p.name, runs.read_metrics(p)) for p in paths]
    if not any(records for _, records in series):
        return None
    return _image(lambda out: plot_loss(series, out))


def embedding_image(run: api.Run) -> Any:
    """The embedding plot of the run's table C (None: its family has none)."""
    from makemore.plots import plot_embedding

    table = run.loaded.family.embedding
    if table is None:
        return None
    C = run.model.state_dict()[table].detach().cpu().numpy()  # (vocab_size, n_embd)
    title = f"Character embeddings C of {run.path.name} (step {run.step:,})"
    return _image(lambda out: plot_embedding(C, run.vocab.itos, out, title))


def inspect_images(run: api.Run) -> tuple[Any, Any, str]:
    """(saturation map, update-to-data ratios, a note) from the run's recorded statistics; (None,
    None, why) when it recorded none."""
    from makemore.inspect import inspect_run, write_figures

    try:
        ins = inspect_run(run.loaded)
    except MakemoreError as e:
        return None, None, f"No inspect figures: {e}"
    with tempfile.TemporaryDirectory(prefix="makemore-demo-") as folder:
        write_figures(ins, run.loaded, Path(folder))
        pngs = runs.inspect_pngs(folder)
        saturation, ratios = (_read_png(pngs[name]) if pngs[name].is_file() else None for name in ("saturation", "update_ratio"))
    return saturation, ratios, " ".join(ins.notes) or f"Statistics recorded at {len(ins.recorded_steps):,} steps; shown at step {ins.step:,}."


def training(shelf: RunShelf, run_path: str, compare: str | None) -> tuple[str, str, Any, Any, Any, Any, str, str]:
    """The Training tab: config, summary, loss curve (with `compare`'s), embedding plot, inspect figures.

    Raises:
        MakemoreError: a bad run (either of them).
    """
    run, _ = shelf.get(run_path)
    paths = [run.path]
    if compare and compare != run_path:
        paths.append(shelf.get(compare)[0].path)
    loss = loss_image(paths)
    saturation, ratios, note = inspect_images(run)
    notes = ([] if loss is not None else ["No loss curve: no metrics recorded."]) + [note]
    status = f"{run.path.name}" + (f" compared with {paths[1].name}" if len(paths) > 1 else "")
    return (run.config.to_toml(), summary_markdown(run), loss, embedding_image(run), saturation, ratios, " ".join(notes), status)


#: The page's own styles: the message line under each tab's button.
CSS = """
.mm-message { font-size: 1rem; padding: 4px 0; }
.mm-error { color: #b00020; font-weight: 600; }
"""
GENERATE_HEADERS = ["name", "NLL per character (nats)", "in training words"]
SCORE_HEADERS = ["word", "NLL per character (nats)", "perplexity", "percentile among training words"]


def message_html(text: str, error: bool = False) -> str:
    """A tab's message line as escaped HTML ("" for none)."""
    if not text:
        return ""
    return f'<div class="mm-message{" mm-error" if error else ""}">{html.escape(text)}</div>'


def guarded(handler: Callable[..., tuple[Any, ...]], empty: tuple[Any, ...]) -> Callable[..., tuple[Any, ...]]:
    """An event handler for the page: `handler`'s outputs, its last one (a status line) as the tab's
    message. On a MakemoreError: `empty` and "error: <its one line>", as the command line says it;
    on any other exception the same with its type (the traceback goes to the server's stderr, not
    the page). Either way the server keeps serving."""
    from makemore.errors import first_line

    def handle(*args: Any) -> tuple[Any, ...]:
        try:
            *outputs, status = handler(*args)
            return (*outputs, message_html(status))
        except MakemoreError as e:
            return (*empty, message_html(f"error: {e}", error=True))
        except Exception as e:  # a defect, not the user's mistake: one line in the page, the details in the log
            traceback.print_exc(file=sys.stderr)
            return (*empty, message_html(f"error: unexpected {type(e).__name__}: {first_line(e)} (the server's log has the details)", error=True))

    return handle


def _table(headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"headers": headers, "data": rows}


def _control(gr: Any, c: Control) -> Any:
    """The Gradio component of one Control (elem_id "gen-<name>")."""
    common = {"label": c.label, "info": c.info, "elem_id": f"gen-{c.name}"}
    if c.kind == "bool":
        return gr.Checkbox(value=bool(c.default), **common)
    if c.kind == "text" or c.default is None:  # an optional number is a text box: empty means "not set" (gr.Number shows 0)
        return gr.Textbox(value="" if c.default is None else c.default, max_lines=1, **common)
    return gr.Number(value=c.default, precision=0 if c.kind == "int" else None, **common)


def _generate_tab(gr: Any, shelf: RunShelf, run: Any) -> None:
    controls = supported_controls()
    made: dict[str, Any] = {}
    with gr.Row():
        n = gr.Number(value=20, label="how many", precision=0, minimum=1, maximum=MAX_NAMES, elem_id="gen-n")
        for c in (c for c in controls if c.kind == "text"):
            made[c.name] = _control(gr, c)
    with gr.Row():
        for c in (c for c in controls if c.kind in ("int", "float")):
            made[c.name] = _control(gr, c)
    with gr.Row():
        for c in (c for c in controls if c.kind == "bool"):
            made[c.name] = _control(gr, c)
    button = gr.Button("Generate", variant="primary", elem_id="generate")
    message = gr.HTML(elem_id="gen-message")
    with gr.Row():
        table = gr.Dataframe(value=_table(GENERATE_HEADERS, []), interactive=False, elem_id="gen-table", scale=3)
        names = gr.Textbox(label="names, one per line", lines=12, buttons=["copy"], interactive=False, elem_id="gen-names", scale=1)

    def handler(run_path: str, count: Any, *values: Any) -> tuple[Any, ...]:
        rows, text, status = generate(shelf, controls, run_path, count, *values)
        return _table(GENERATE_HEADERS, rows), text, status

    button.click(guarded(handler, (_table(GENERATE_HEADERS, []), "")), inputs=[run, n, *(made[c.name] for c in controls)],
                 outputs=[table, names, message])


def _score_tab(gr: Any, shelf: RunShelf, run: Any) -> None:
    words = gr.Textbox(label="words to score, separated by spaces", value="emma zyxq", elem_id="score-words", max_lines=3)
    button = gr.Button("Score", variant="primary", elem_id="score")
    message = gr.HTML(elem_id="score-message")
    table = gr.Dataframe(value=_table(SCORE_HEADERS, []), interactive=False, elem_id="score-table")
    chars = gr.HTML(elem_id="score-chars")

    def handler(run_path: str, text: str) -> tuple[Any, ...]:
        rows, coloured, status = score(shelf, run_path, text)
        return _table(SCORE_HEADERS, rows), coloured, status

    event = guarded(handler, (_table(SCORE_HEADERS, []), ""))
    button.click(event, inputs=[run, words], outputs=[table, chars, message])
    words.submit(event, inputs=[run, words], outputs=[table, chars, message])


def _training_tab(gr: Any, shelf: RunShelf, run: Any, tab: Any) -> Any:
    compare = gr.Dropdown(choices=["", *shelf.choices()], value="", label="compare the loss with (optional)", elem_id="compare")
    message = gr.HTML(elem_id="train-message")
    image = {"interactive": False, "type": "pil", "format": "png", "buttons": ["download"], "show_label": False}  # each figure has its title
    with gr.Row():
        summary = gr.Markdown(elem_id="train-summary")
        loss = gr.Image(label="loss: train and dev", elem_id="train-loss", scale=2, **image)
    with gr.Row():
        embedding = gr.Image(label="embedding C", elem_id="train-embedding", **image)
        ratios = gr.Image(label="update-to-data ratios (inspect)", elem_id="train-ratios", **image)
    saturation = gr.Image(label="saturation (inspect)", elem_id="train-saturation", **image)
    notes = gr.Markdown(elem_id="train-notes")
    with gr.Accordion("config", open=False):
        config = gr.Code(language=None, interactive=False, show_label=False, elem_id="train-config")
    event = guarded(lambda r, c: training(shelf, r, c), ("", "", None, None, None, None, ""))
    outputs = [config, summary, loss, embedding, saturation, ratios, notes, message]
    for trigger in (tab.select, compare.change, run.change):
        trigger(event, inputs=[run, compare], outputs=outputs)
    return compare


def build_page(shelf: RunShelf) -> Any:
    """The page (a gradio.Blocks): the run list at the top, then the Generate, Score and Training tabs."""
    import gradio as gr

    choices = shelf.choices()
    with gr.Blocks(title="makemore", analytics_enabled=False) as page:
        gr.Markdown("## makemore: names like the ones a run was trained on")
        with gr.Row():
            run = gr.Dropdown(choices=choices, value=choices[0] if choices else None, label="run", elem_id="run", scale=5)
            refresh = gr.Button("Look for new runs", elem_id="refresh", scale=1)
        with gr.Tab("Generate", elem_id="tab-generate"):
            _generate_tab(gr, shelf, run)
        with gr.Tab("Score", elem_id="tab-score"):
            _score_tab(gr, shelf, run)
        with gr.Tab("Training", elem_id="tab-training") as tab:
            compare = _training_tab(gr, shelf, run, tab)

        def rescan() -> tuple[Any, Any]:
            found = shelf.choices()
            return gr.update(choices=found), gr.update(choices=["", *found])

        refresh.click(rescan, outputs=[run, compare])
    return page


def serve(run_dirs: Sequence[str | Path] | None = None, host: str = DEFAULT_HOST, port: int | None = None, share: bool = False,
          root: str | Path = runs.DEFAULT_ROOT) -> None:
    """Serve the page until interrupted: at http://HOST:PORT (port None: the first free from 7860).

    Args:
        run_dirs: the runs to offer; none: every run under `root`.
        share: also ask Gradio for a public link (off by default; it needs the internet).

    Raises:
        MakemoreError: gradio is not installed; a run that does not exist; no runs; the port is taken.
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read by gradio as it is imported
    try:
        import gradio as gr
    except ImportError:
        raise MakemoreError("the page needs the [demo] extra: pip install 'makemore[demo]' (from a clone: pip install -e '.[demo]')") from None
    page = build_page(RunShelf(run_dirs, root))
    try:
        page.launch(server_name=host, server_port=port, share=share, inbrowser=False, show_error=False, ssr_mode=False,
                    mcp_server=False, pwa=False, enable_monitoring=False, footer_links=["settings"], theme=gr.themes.Default(), css=CSS)
    except OSError as e:
        raise MakemoreError(f"cannot serve on {host}:{port or '7860+'}: {e}") from None
