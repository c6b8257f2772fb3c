"""Compiled loop (numba) for the people ranking's list step: each user's diversified list split
into two queues, the candidates among the *top accounts* and the others.

Like :mod:`tribes.kernels`: compiled on first use, cached in ``__pycache__``, GIL released so
:func:`tribes.parallel.map_blocks` can run it on several cores.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["new_queues", "split_diversified_lists"]


@njit(nogil=True, cache=True)
def _split_lists(
    starts,
    score,
    cols,
    tribe_of,
    top,
    diversity,
    width,
    seen,
    top_pair,
    top_score,
    other_pair,
    other_score,
):  # pragma: no cover - compiled
    for r in range(len(starts) - 1):
        a, b = starts[r], starts[r + 1]
        if a == b:
            continue
        segment = score[a:b]
        by_score = np.argsort(-segment, kind="mergesort")  # stable: ties keep the column order
        damped = np.empty(b - a, dtype=score.dtype)
        for j in by_score:
            # -1 (no tribe) is a group of its own, as in diversify
            group = tribe_of[cols[a + j]] + 1
            damped[j] = segment[j] * np.float32(diversity ** seen[group])
            seen[group] += 1
        for j in range(b - a):
            seen[tribe_of[cols[a + j]] + 1] = 0
        by_damped = np.argsort(-damped, kind="mergesort")
        n_top = 0
        n_other = 0
        for p in range(b - a):
            if n_top >= width and n_other >= width:
                break
            j = by_damped[p]
            if top[cols[a + j]]:
                if n_top < width:
                    top_pair[r, n_top] = a + j
                    top_score[r, n_top] = damped[j]
                    n_top += 1
            elif n_other < width:
                other_pair[r, n_other] = a + j
                other_score[r, n_other] = damped[j]
                n_other += 1


def split_diversified_lists(
    starts: np.ndarray,
    score: np.ndarray,
    cols: np.ndarray,
    tribe_of: np.ndarray,
    top: np.ndarray,
    diversity: float,
    width: int,
    out: tuple | None = None,
):
    """Each user's diversified list (pairs grouped
    by user, user r's at ``starts[r]:starts[r + 1]`` in column order; the j-th pair of one tribe
    by score multiplied by ``diversity ** j``, the tribe being ``tribe_of`` (U,) of the pair's
    candidate ``cols`` (pairs,); ties by the smaller column), split by whether the candidate is a
    top account (``top``, a (U,) bool mask) into the ``width`` best top-account pairs and the
    ``width`` best others. Nothing per pair is added (no per-pair tribe array either).

    Returns ``(top_pair, top_score, other_pair, other_score)``, shapes (users, width), pair
    indices -1 / scores 0 padded, each queue best first. Pair indices are int32 when the pairs
    fit (halving the memory), int64 otherwise. ``out``: these four arrays to fill instead (e.g.
    row slices of the whole users' arrays), as :func:`new_queues` makes them.
    O(Σ L log L) over the users' list lengths L.
    """
    users = len(starts) - 1
    top_pair, top_score, other_pair, other_score = (
        out if out is not None else new_queues(users, width, len(score))
    )
    if users > 0 and width > 0 and len(score):
        seen = np.zeros(int(tribe_of.max(initial=-1)) + 2, dtype=np.int64)
        _split_lists(
            np.asarray(starts, dtype=np.int64),
            np.asarray(score, dtype=np.float32),
            cols,
            np.asarray(tribe_of, dtype=np.int64),
            np.asarray(top, dtype=np.bool_),
            float(diversity),
            int(width),
            seen,
            top_pair,
            top_score,
            other_pair,
            other_score,
        )
    return top_pair, top_score, other_pair, other_score


def new_queues(
    users: int, width: int, pairs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Empty ``(top_pair, top_score, other_pair, other_score)`` for :func:`split_diversified_lists`."""
    index = np.int32 if pairs < 2**31 else np.int64
    return (
        np.full((users, width), -1, dtype=index),
        np.zeros((users, width), dtype=np.float32),
        np.full((users, width), -1, dtype=index),
        np.zeros((users, width), dtype=np.float32),
    )
