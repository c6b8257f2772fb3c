"""How many cores the batch job may use for independent blocks of work (a runtime setting,
not a model parameter: results are the same for any number).

``with workers(n):`` sets it for the calling context (``tribes.recompute`` does, from its
``threads``); :func:`map_blocks` runs a function over blocks on that many threads, in order.
Threads, not processes: the blocks' heavy work is numpy sorting and scipy sparse kernels,
which release the GIL, and the blocks read the same large matrices without copying them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import pairwise
from typing import TypeVar

import numpy as np

__all__ = ["map_blocks", "ranges_by_work", "worker_count", "workers"]

T = TypeVar("T")
R = TypeVar("R")

_WORKERS: ContextVar[int] = ContextVar("tribes_workers", default=1)


@contextmanager
def workers(n: int) -> Iterator[None]:
    """Let :func:`map_blocks` use ``n`` threads (at least 1) inside the ``with`` block."""
    token = _WORKERS.set(max(1, int(n)))
    try:
        yield
    finally:
        _WORKERS.reset(token)


def worker_count() -> int:
    """The number of threads :func:`map_blocks` uses here (1 unless set by :func:`workers`)."""
    return _WORKERS.get()


def map_blocks(fn: Callable[[T], R], blocks: Iterable[T]) -> list[R]:
    """``[fn(b) for b in blocks]``, on :func:`worker_count` threads; results in block order.

    At most ``workers`` blocks are in flight at once, so memory grows with the worker count,
    not with the number of blocks. An exception in any block is raised here.
    """
    items = list(blocks)
    n = worker_count()
    if n <= 1 or len(items) <= 1:
        return [fn(b) for b in items]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="tribes-block") as pool:
        return list(pool.map(fn, items))


def ranges_by_work(work: np.ndarray, max_work: float) -> list[tuple[int, int]]:
    """Consecutive index ranges covering ``work`` (per-row cost, e.g. entries touched), each
    summing to about ``max_work`` (a row's own work is never split, so a range holds at least
    one row). Empty for no rows. O(rows)."""
    n = len(work)
    ends = np.searchsorted(
        np.cumsum(work), np.arange(max_work, work.sum() + max_work, max_work), side="right"
    )
    bounds = np.unique(np.clip(np.r_[0, ends, n], 0, n))
    return [(int(a), int(b)) for a, b in pairwise(bounds)]
