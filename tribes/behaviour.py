"""Per-person behaviour the ranker needs: who answers, who is active, who is popular.

*Answering* is measured from the data: of the people who reached out to a person (replied to
them, mentioned them or followed them), the share that person answered (replied to, mentioned
or followed back). It is smoothed toward a prior so that a person with two contacts is not
"always answers". It is also measured per tribe of the people reaching out, because someone
who answers their own circle may ignore strangers ("answers people like the user").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .graph import InterestGraph, decay
from .kernels import csr_values
from .params import Params
from .snapshot import Snapshot
from .sparse import binary

__all__ = ["Behaviour", "measure_behaviour"]


@dataclass(frozen=True, eq=False)
class Behaviour:
    """Shapes: ``U`` users, ``K`` tribes.

    Attributes
    ----------
    followers : (U,) int32 active followers
    reached_by : (U,) int32 distinct people who reached out to the user
    answered : (U,) int32 of those, the ones the user answered
    answer_rate : (U,) float32 smoothed share answered
    answer_rate_by_tribe : (U, K) CSR float32 smoothed share answered among people of tribe k
        (stored only where someone of tribe k reached out; else use ``answer_rate``)
    activity : (U,) float32 in [activity_floor, 1], saturating in recent posts
    recent_posts : (U,) float32 decayed count of posts in the activity half-life
    """

    followers: np.ndarray
    reached_by: np.ndarray
    answered: np.ndarray
    answer_rate: np.ndarray
    answer_rate_by_tribe: sp.csr_matrix
    activity: np.ndarray
    recent_posts: np.ndarray

    def answer_rate_for(self, users: np.ndarray, tribes: np.ndarray) -> np.ndarray:
        """p(user answers someone of tribe ``tribes[i]``), falling back to the global rate."""
        out = self.answer_rate[users].astype(np.float32)
        known = tribes >= 0
        if known.any() and self.answer_rate_by_tribe.nnz:
            specific = csr_values(self.answer_rate_by_tribe, users[known], tribes[known])
            has = specific > 0
            idx = np.flatnonzero(known)[has]
            out[idx] = specific[has]
        return out


def measure_behaviour(
    snap: Snapshot, graph: InterestGraph, labels: np.ndarray, params: Params
) -> Behaviour:
    """Compute every field of :class:`Behaviour`. O(nnz of the user×user matrices)."""
    n = snap.n_users
    out_contact = binary(graph.talk + graph.follows)  # row reached column
    reached = out_contact.T.tocsr()  # row was reached by column
    answered_pairs = reached.multiply(out_contact).tocsr()  # ...and row reached them back
    reached_by = np.diff(reached.indptr).astype(np.int32)
    answered = np.diff(answered_pairs.indptr).astype(np.int32)
    a, prior = params.answer_prior_strength, params.answer_prior
    rate = ((answered + a * prior) / (reached_by + a)).astype(np.float32)

    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if k:
        labelled = labels >= 0
        onehot = sp.csr_matrix(
            (np.ones(labelled.sum(), np.float32), (np.flatnonzero(labelled), labels[labelled])),
            shape=(n, k),
        )
        reached_k = (reached @ onehot).tocsr()
        answered_k = (answered_pairs @ onehot).tocsr()
        # Shrink each tribe-specific rate toward the person's global rate.
        # (answered + a*rate) / (reached + a), on reached_k's pattern (answered_k's is a subset).
        rows = np.repeat(np.arange(n), np.diff(reached_k.indptr))
        inverse = 1.0 / (reached_k.data + a)
        denominators = sp.csr_matrix((inverse, reached_k.indices, reached_k.indptr), shape=(n, k))
        prior_part = sp.csr_matrix(
            (a * rate[rows] * inverse, reached_k.indices, reached_k.indptr), shape=(n, k)
        )
        by_tribe = (answered_k.multiply(denominators) + prior_part).tocsr().astype(np.float32)
    else:
        by_tribe = sp.csr_matrix((n, 0), dtype=np.float32)

    recent = np.bincount(
        snap.post_author,
        weights=decay(snap.post_ts, snap.now, params.activity_half_life_days),
        minlength=n,
    ).astype(np.float32)
    floor = params.activity_floor
    activity = (floor + (1 - floor) * (1 - np.exp(-recent))).astype(np.float32)
    followers = np.bincount(snap.follow_dst, minlength=n).astype(np.int32)
    return Behaviour(
        followers=followers,
        reached_by=reached_by,
        answered=answered,
        answer_rate=rate,
        answer_rate_by_tribe=by_tribe,
        activity=activity,
        recent_posts=recent,
    )
