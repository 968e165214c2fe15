"""docs/reading.md is true: every row names a symbol that exists in its file, with its length in
lines, and the totals are those of the rows (issue 21: read the code next to the lectures)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reading.md"
ROW = re.compile(r"^\| (makemore/\S+\.py) \| `([\w.]+)` \| (\d+) \|", re.M)
#: The rows of part 2 that the Transformer's path shares (its table names only what differs).
SHARED = ("load_config", "check", "train", "load_dataset", "padded_stream", "chunk_indices", "minibatches", "lr_at", "save_checkpoint")
TOTAL = re.compile(r"^\| (.+?) \| (\d+) \| (\d+) \|$", re.M)


def symbol_lines(path: Path, symbol: str) -> int | None:
    """Lines of `symbol` ("function", "Class" or "Class.method") in `path`, decorators and
    docstring included; None when it does not exist."""
    node: ast.AST = ast.parse(path.read_text(encoding="utf-8"))
    for part in symbol.split("."):
        node = next((n for n in ast.iter_child_nodes(node)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            return None
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return node.end_lineno - start + 1


def blocks() -> dict[str, str]:
    """Each "## " section's text, by title."""
    return {block.splitlines()[0]: block for block in DOC.read_text(encoding="utf-8").split("\n## ")[1:]}


def sections() -> dict[str, list[tuple[str, str, int]]]:
    """Each "## " section's rows (file, symbol, stated lines)."""
    return {title: [(f, s, int(n)) for f, s, n in ROW.findall(block)] for title, block in blocks().items()}


def test_every_reference_resolves_to_a_symbol_of_the_stated_length() -> None:
    rows = [row for rows in sections().values() for row in rows]
    assert len(rows) >= 30
    wrong = []
    for file, symbol, stated in rows:
        actual = symbol_lines(ROOT / file, symbol) if (ROOT / file).is_file() else None
        if actual != stated:
            wrong.append(f"| {file} | `{symbol}` | {actual} |  (stated {stated})")
    assert not wrong, "docs/reading.md is out of date:\n" + "\n".join(wrong)


def path_total(rows: list[tuple[str, str, int]]) -> tuple[int, int]:
    """(distinct files, lines) of a path's rows, each symbol counted once."""
    unique = dict.fromkeys((f, s) for f, s, _ in rows)
    return len({f for f, _ in unique}), sum(symbol_lines(ROOT / f, s) or 0 for f, s in unique)


def test_the_totals_are_those_of_the_rows() -> None:
    docs = sections()
    part2 = docs["Part 2: the MLP, config to checkpoint"]
    transformer = docs["makemore.py's Transformer, config to checkpoint"]
    # the Transformer's path is part 2's driver with its own view and model: the rows it names
    # plus the driver rows of part 2 it shares (SHARED)
    shared = [r for r in part2 if r[1] in SHARED]
    totals = {title: (int(files), int(lines)) for title, files, lines in TOTAL.findall(blocks()["Totals"])}
    assert totals["part 2, config to checkpoint"] == path_total(part2)
    assert totals["makemore.py's Transformer, config to checkpoint"] == path_total(transformer + shared)
