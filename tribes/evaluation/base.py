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

from ..candidates import exclusion_matrix
from ..snapshot import Snapshot

__all__ = ["EvalModel", "thread_exclusions", "people_exclusions", "top_k_filtered"]


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


def people_exclusions(snap: Snapshot) -> sp.csr_matrix:
    """(U, U) 1 where a suggestion is forbidden, non-discoverable columns included."""
    excl = exclusion_matrix(snap).tolil()
    hidden = np.flatnonzero(~snap.discoverable)
    if len(hidden):
        excl[:, hidden] = 1
    return excl.tocsr()


def thread_exclusions(snap: Snapshot) -> sp.csr_matrix:
    """(U, T) 1 where the user already posted in the thread."""
    m = sp.csr_matrix((np.ones(snap.n_posts, np.float32), (snap.post_author, snap.post_thread)),
                      shape=(snap.n_users, snap.n_threads))
    m.data[:] = 1
    return m


def top_k_filtered(scores: np.ndarray, excluded_rows: sp.csr_matrix, k: int) -> np.ndarray:
    """Top-k column indices of each row of dense ``scores`` (B, N), skipping excluded entries
    and non-positive scores; ties broken by smaller index. Returns (B, k) int32, -1 padded."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    coo = excluded_rows.tocoo()
    scores[coo.row, coo.col] = -np.inf
    k_eff = min(k, scores.shape[1])
    out = np.full((scores.shape[0], k), -1, dtype=np.int32)
    if k_eff == 0:
        return out
    part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    for r in range(scores.shape[0]):
        cand = part[r]
        order = np.lexsort((cand, -scores[r, cand]))
        chosen = cand[order]
        chosen = chosen[scores[r, chosen] > 0]
        out[r, : len(chosen)] = chosen
    return out
