"""The interface every evaluated model implements (tribes itself and each baseline).

A model is fitted on the *train* snapshot of a split and asked for top-k people and threads
for a batch of users, as dense index arrays in that snapshot's numbering. Every model must
apply the same filters as the product (never the user, anyone they follow, block or mute or
who blocks or mutes them, non-discoverable people; never a thread they posted in), so that
differences in the metrics come from ranking, not from filtering.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from ..snapshot import Snapshot

__all__ = ["EvalModel", "thread_exclusions"]


@runtime_checkable
class EvalModel(Protocol):
    """``fit`` then ``recommend_people`` / ``recommend_threads`` on the same snapshot."""

    name: str

    def fit(self, snap: Snapshot) -> EvalModel: ...

    def recommend_people(self, users: np.ndarray, k: int) -> np.ndarray:
        """(len(users), k) int32 user indices, best first, -1 padded."""
        ...

    def recommend_threads(self, users: np.ndarray, k: int) -> np.ndarray:
        """(len(users), k) int32 thread indices (``snap.thread_ids``), best first, -1 padded."""
        ...


def thread_exclusions(snap: Snapshot) -> sp.csr_matrix:
    """(U, T) 1 where the user already posted in the thread."""
    m = sp.csr_matrix(
        (np.ones(snap.n_posts, np.float32), (snap.post_author, snap.post_thread)),
        shape=(snap.n_users, snap.n_threads),
    )
    m.data[:] = 1
    return m
