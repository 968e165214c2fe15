"""makemore: character-level language models that make more of what you give them.

The heart is the MLP of Bengio et al. (2003), "A Neural Probabilistic Language Model",
as built in Andrej Karpathy's "makemore part 2" lecture.

The Python API (docs/python.md) is re-exported here and imported only when first used, so
`import makemore` and `makemore --help` stay light:

    import makemore
    run = makemore.train("configs/names.toml", overrides={"train.steps": 20000})
    run.sample(20, seed=0)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: Names of makemore.api re-exported at the top level.
__all__ = ["train", "load", "Run", "MakemoreError"]


def __getattr__(name: str) -> Any:
    """Import makemore.api (or makemore.errors) on first use of one of its names."""
    if name == "MakemoreError":
        from makemore.errors import MakemoreError

        return MakemoreError
    if name in ("train", "load", "Run"):
        from makemore import api

        return getattr(api, name)
    raise AttributeError(f"module 'makemore' has no attribute {name!r}")
