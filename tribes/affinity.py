"""The user affinity graph that tribes are found in (symmetric, zero diagonal).

Reciprocal conversation weighs most, then mutual follows, then shared interests (the k
nearest neighbours by topic cosine). One-way follows count little and less the more
followers their target has, so broadcasters' audiences do not glue tribes together.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .graph import InterestGraph
from .params import Params
from .sparse import binary, drop_diagonal, row_normalize, top_k_per_row

__all__ = ["topic_neighbours", "user_affinity"]


def topic_neighbours(
    user_topic: sp.csr_matrix,
    *,
    k: int,
    min_similarity: float,
    max_df: int,
    max_postings: int | None = None,
    chunk: int = 2048,
) -> sp.csr_matrix:
    """(U, U) cosine similarity of topic rows, each row's top ``k`` above ``min_similarity``.

    Topics used by more than ``max_df`` users are left out: they say little about who is
    alike and make the product quadratic. Each remaining topic pairs a user with at most its
    ``max_postings`` heaviest users (default ``4 k``; ties: lower user index), so a user
    meets at most ``max_postings`` others per topic however large the network: the
    similarity of a pair sums the topics they share where the neighbour is among those
    heaviest users. Cost O(nnz · max_postings) in chunks of ``chunk`` rows.
    """
    n = user_topic.shape[0]
    df = np.bincount(user_topic.indices, minlength=user_topic.shape[1])
    keep_cols = np.flatnonzero((df <= max_df) & (df >= 2))
    x = row_normalize(user_topic[:, keep_cols], norm="l2").tocsr()
    postings = top_k_per_row(x.T.tocsr(), 4 * k if max_postings is None else max_postings)
    parts = []
    for start in range(0, n, chunk):
        sims = (x[start : start + chunk] @ postings).tocsr()
        rows = np.repeat(np.arange(start, start + sims.shape[0]), np.diff(sims.indptr))
        # A user is not their own neighbour.
        sims.data[(sims.data < min_similarity) | (sims.indices == rows)] = 0
        sims.eliminate_zeros()
        parts.append(top_k_per_row(sims, k))
    if not parts:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.vstack(parts).tocsr().astype(np.float32)


def _top_k_in_row_blocks(m: sp.csr_matrix, k: int, rows: int = 65_536) -> sp.csr_matrix:
    """:func:`top_k_per_row` a block of ``rows`` rows at a time: the same matrix, with the
    sort's temporaries (~130 bytes per entry) held for one block only. O(nnz log nnz)."""
    if m.shape[0] <= rows:
        return top_k_per_row(m, k)
    return sp.vstack(
        [top_k_per_row(m[i : i + rows], k) for i in range(0, m.shape[0], rows)], format="csr"
    )


def user_affinity(
    graph: InterestGraph, params: Params, knn: sp.csr_matrix | None = None
) -> sp.csr_matrix:
    """Symmetric (U, U) affinity; see the module docstring for the weighting.

    ``knn`` may pass precomputed :func:`topic_neighbours` (more than ``topic_neighbours`` per
    row is fine: the strongest ``topic_neighbours`` are used).
    """
    talk = graph.talk
    talk.data = np.log1p(talk.data)
    talk_t = talk.T.tocsr()
    conversation = params.conversation_affinity * talk.minimum(
        talk_t
    ) + params.oneway_reply_affinity * (talk + talk_t)

    f = binary(graph.follows)
    mutual = f.multiply(f.T)
    oneway = (f - mutual).tocsr()
    followers = np.asarray(f.sum(axis=0)).ravel()
    damping = 1.0 / (1.0 + followers / max(params.broadcaster_followers, 1e-9))
    oneway = oneway @ sp.diags(damping.astype(np.float32))
    follow_part = params.mutual_follow_affinity * mutual + params.oneway_follow_affinity * (
        oneway + oneway.T
    )

    if knn is None:
        knn = topic_neighbours(
            graph.user_topic,
            k=params.topic_neighbours,
            min_similarity=params.min_topic_similarity,
            max_df=params.knn_max_df,
        )
    else:
        knn = _top_k_in_row_blocks(knn.tocsr(), params.topic_neighbours)
    topic_part = params.topic_affinity * knn.maximum(knn.T)

    affinity = drop_diagonal((conversation + follow_part + topic_part).tocsr())
    affinity.eliminate_zeros()
    return affinity.astype(np.float32)
