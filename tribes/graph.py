"""The interest graph: a snapshot → scipy sparse matrices (no networkx on this path).

Shapes: ``U`` users, ``V`` topics, ``T`` threads. Every matrix is CSR float32. Time decay is
exponential with a half-life in days, measured back from ``snapshot.now`` — the spirit of
Twitter's RealGraph: recent, repeated, two-way interaction weighs most.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .params import Params
from .snapshot import Snapshot
from .text import aggregate, build_topic_matrix, mentions

__all__ = ["InterestGraph", "build_graph", "decay", "square"]

DAY = 86_400.0


def decay(ts: np.ndarray, now: float, half_life_days: float) -> np.ndarray:
    """``0.5 ** (age / half_life)`` as float32; future timestamps count as age 0."""
    age = np.maximum(now - np.asarray(ts, dtype=np.float64), 0.0) / DAY
    if half_life_days <= 0:
        return np.ones_like(age, dtype=np.float32)
    return np.exp2(-age / half_life_days).astype(np.float32)


def square(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n: int) -> sp.csr_matrix:
    """An (n, n) CSR summing duplicate (row, col) entries; self-pairs dropped."""
    keep = rows != cols
    m = sp.csr_matrix(
        (values[keep].astype(np.float32), (rows[keep], cols[keep])), shape=(n, n), dtype=np.float32
    )
    m.sum_duplicates()
    return m


@dataclass(frozen=True, eq=False)
class InterestGraph:
    """The interest graph of one snapshot.

    Attributes
    ----------
    replies : (U, U) decayed count of replies by row user to posts of column user
    mentions : (U, U) decayed @mentions by row user of column user
    follows : (U, U) active follows, decayed by age
    interaction : (U, U) directed strength: weighted sum of the three plus a bonus on the
        reciprocated part ``min(w[u,v], w[v,u])``
    user_topic : (U, V) TF-IDF topic weights of what the user writes and lists as interests
    user_thread : (U, T) decayed participation
    thread_topic : (T, V) topic weights of each thread's posts
    vocabulary : (V,) str
    thread_last_activity : (T,) Unix seconds
    thread_root_author : (T,) user index, -1 when the root post is missing
    thread_posts : (T,) number of posts
    """

    replies: sp.csr_matrix
    mentions: sp.csr_matrix
    follows: sp.csr_matrix
    interaction: sp.csr_matrix
    user_topic: sp.csr_matrix
    user_thread: sp.csr_matrix
    thread_topic: sp.csr_matrix
    vocabulary: np.ndarray
    thread_last_activity: np.ndarray
    thread_root_author: np.ndarray
    thread_posts: np.ndarray

    @property
    def n_users(self) -> int:
        return self.replies.shape[0]

    def nbytes(self) -> int:
        """Bytes held by the user×user matrices (the ``≤ 12 bytes/edge`` budget)."""
        return sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
                   for m in (self.replies, self.mentions, self.follows, self.interaction))


def _mention_pairs(snap: Snapshot, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(post index, mentioned user index) for every resolvable @mention. O(P) over texts."""
    post_rows, users = [], []
    for p, text in enumerate(snap.post_text):
        if "@" not in text:
            continue
        for handle in mentions(text):
            u = index.get(handle)
            if u is not None:
                post_rows.append(p)
                users.append(u)
    return np.asarray(post_rows, dtype=np.int64), np.asarray(users, dtype=np.int64)


def build_graph(snap: Snapshot, params: Params) -> InterestGraph:
    """Build every matrix of the interest graph. Cost O(P + F + nnz) plus topic extraction."""
    n, now = snap.n_users, snap.now
    # Replies: author of the reply → author of the parent.
    has_parent = snap.post_parent >= 0
    child = np.flatnonzero(has_parent)
    parent = snap.post_parent[child]
    reply_w = decay(snap.post_ts[child], now, params.reply_half_life_days)
    replies = square(snap.post_author[child], snap.post_author[parent], reply_w, n)

    m_posts, m_users = _mention_pairs(snap, snap.user_index())
    mention_w = decay(snap.post_ts[m_posts], now, params.reply_half_life_days)
    mentioned = square(snap.post_author[m_posts].astype(np.int64), m_users, mention_w, n)

    follow_w = decay(snap.follow_ts, now, params.follow_half_life_days)
    follows = square(snap.follow_src, snap.follow_dst, follow_w, n)

    strength = (params.reply_weight * replies + params.mention_weight * mentioned
                + params.follow_weight * follows).tocsr()
    interaction = (strength + params.reciprocity_bonus * strength.minimum(strength.T)).tocsr()
    interaction.eliminate_zeros()

    # Topics: posts (decayed) and profiles (interest_weight) are the documents.
    post_weight = decay(snap.post_ts, now, params.topic_half_life_days)
    doc_tags = list(snap.post_tags) + list(snap.interests)
    doc_text = list(snap.post_text) + [""] * n
    doc_weight = np.concatenate([post_weight, np.full(n, params.interest_weight, np.float32)])
    docs, vocabulary = build_topic_matrix(
        doc_tags, doc_text, doc_weight,
        min_df=params.min_topic_df, max_df_share=params.max_topic_df_share,
    )
    owners = np.concatenate([snap.post_author, np.arange(n, dtype=np.int32)])
    user_topic = aggregate(owners, docs, n)
    n_posts = snap.n_posts
    thread_topic = aggregate(snap.post_thread, docs[:n_posts], snap.n_threads)

    t = snap.n_threads
    user_thread = sp.csr_matrix(
        (decay(snap.post_ts, now, params.reply_half_life_days), (snap.post_author, snap.post_thread)),
        shape=(n, t), dtype=np.float32,
    )
    user_thread.sum_duplicates()

    last = np.zeros(t, dtype=np.float64)
    np.maximum.at(last, snap.post_thread, snap.post_ts)
    # Both id arrays are sorted: find each thread's root post by binary search.
    root_author = np.full(t, -1, dtype=np.int32)
    if t and n_posts:
        pos = np.minimum(np.searchsorted(snap.post_ids, snap.thread_ids), n_posts - 1)
        found = snap.post_ids[pos] == snap.thread_ids
        root_author[found] = snap.post_author[pos[found]]
    thread_posts = np.bincount(snap.post_thread, minlength=t).astype(np.int32)

    return InterestGraph(
        replies=replies, mentions=mentioned, follows=follows, interaction=interaction,
        user_topic=user_topic.astype(np.float32).tocsr(), user_thread=user_thread,
        thread_topic=thread_topic.astype(np.float32).tocsr(), vocabulary=vocabulary,
        thread_last_activity=last, thread_root_author=root_author, thread_posts=thread_posts,
    )
