"""Scoped CPU thread counts: run a block on n threads, then put back exactly what was there.

Two process-wide thread pools decide how many CPU threads makemore's arithmetic uses: torch's
intra-op pool (torch.set_num_threads) and the BLAS library under NumPy's matrix products (set
through threadpoolctl). A count set by one run and never put back would hold for every later run in
the same process (a sweep, an lr-find grid, a test session), so makemore changes them only through
`scoped`, which restores the previous counts when the block ends, normally or by an exception.

The training driver enters a backend's scope (`Backend.threads`) for the duration of training;
sampling runs in `scoped(1)`. This module never imports torch: it sets torch's count only when
torch is already loaded, so a NumPy-only process stays free of it.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from threadpoolctl import threadpool_limits


@contextlib.contextmanager
def scoped(n: int | None) -> Iterator[None]:
    """Run the block with `n` CPU threads in NumPy's BLAS and, if torch is loaded, in torch's
    intra-op pool; on leaving the block, restore the counts each had on entering it.

    Args:
        n: threads, at least 1. None changes nothing: the block runs on the process's own counts.

    Raises:
        ValueError: n below 1.
    """
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"a thread count must be at least 1, got {n}")
    torch = sys.modules.get("torch")  # set only if loaded: never import torch just to set its count
    with threadpool_limits(limits=n, user_api="blas"):  # restores every BLAS library's count on exit
        before = torch.get_num_threads() if torch is not None else None
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(before)

