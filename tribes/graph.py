"""The interest graph: a snapshot → scipy sparse matrices (no networkx on this path).

Shapes: ``U`` users, ``V`` topics, ``T`` threads. Every matrix is CSR float32. Time decay is
exponential with a half-life in days, measured back from ``snapshot.now`` — the spirit of
Twitter's RealGraph: recent, repeated, two-way interaction weighs most.

The user×user relations share one CSR pattern (:class:`UserGraph`): per entry the directed
interaction strength (float32) and relation flags (uint8), plus the conversation weight of
the entries that have one. About 9 bytes per entry plus 4 per conversation entry, instead
of four separate CSR matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .params import Params
from .snapshot import Snapshot
from .sparse import entry_keys
from .text import aggregate, all_mentions, build_topic_matrix

__all__ = [
    "FOLLOWS",
    "TALK",
    "InterestGraph",
    "UserGraph",
    "build_graph",
    "build_user_graph",
    "decay",
    "relation_matrices",
    "square",
    "topic_matrices",
]

DAY = 86_400.0

#: Relation flags of a :class:`UserGraph` entry.
FOLLOWS = np.uint8(1)  # the row user follows the column user
TALK = np.uint8(2)  # the row user replied to or @mentioned the column user


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


def _subset(
    indptr: np.ndarray, indices: np.ndarray, mask: np.ndarray, data: np.ndarray, n: int
) -> sp.csr_matrix:
    """The CSR of the pattern entries where ``mask`` holds, with ``data`` (one per kept entry)."""
    kept = np.r_[0, np.cumsum(mask, dtype=np.int64)]
    sub_indptr = kept[indptr].astype(indptr.dtype)
    return sp.csr_matrix((data, indices[mask], sub_indptr), shape=(n, n))


@dataclass(frozen=True, eq=False)
class UserGraph:
    """Every user×user relation of a snapshot on one CSR pattern: the union of the pairs with a
    nonzero interaction, a follow or a conversation. Entries are sorted within rows.

    Attributes
    ----------
    indptr : (U + 1,) int32 (int64 past 2³¹ entries) row starts of the pattern
    indices : (nnz,) same dtype, column of each entry
    strength : (nnz,) float32 directed interaction strength (0 only where every relation on the
        entry has weight 0 in the params)
    relations : (nnz,) uint8 bit flags ``FOLLOWS | TALK``
    talk_weight : (count of TALK entries,) float32 decayed replies + mentions of the TALK
        entries, in pattern order
    """

    indptr: np.ndarray
    indices: np.ndarray
    strength: np.ndarray
    relations: np.ndarray
    talk_weight: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def nbytes(self) -> int:
        """Bytes of every array held."""
        return sum(
            a.nbytes
            for a in (self.indptr, self.indices, self.strength, self.relations, self.talk_weight)
        )

    def interaction(self) -> sp.csr_matrix:
        """(U, U) float32 directed strength; shares the pattern's arrays unless some entry is 0. O(1)."""
        n = self.n_users
        nonzero = self.strength != 0
        if nonzero.all():
            return sp.csr_matrix((self.strength, self.indices, self.indptr), shape=(n, n))
        return _subset(self.indptr, self.indices, nonzero, self.strength[nonzero], n)

    def talk(self) -> sp.csr_matrix:
        """(U, U) float32 decayed replies + mentions by row user to column user (a new matrix). O(nnz)."""
        mask = (self.relations & TALK).astype(bool)
        return _subset(self.indptr, self.indices, mask, self.talk_weight.copy(), self.n_users)

    def follows(self) -> sp.csr_matrix:
        """(U, U) float32 1.0 where the row user follows the column user (a new matrix). O(nnz)."""
        mask = (self.relations & FOLLOWS).astype(bool)
        return _subset(
            self.indptr, self.indices, mask, np.ones(int(mask.sum()), np.float32), self.n_users
        )


@dataclass(frozen=True, eq=False)
class InterestGraph:
    """The interest graph of one snapshot.

    Attributes
    ----------
    users : :class:`UserGraph`, the user×user relations; read them through
        ``interaction``, ``talk`` and ``follows``
    user_topic : (U, V) TF-IDF topic weights of what the user writes and lists as interests
    user_thread : (U, T) decayed participation
    thread_topic : (T, V) topic weights of each thread's posts
    vocabulary : (V,) str
    thread_last_activity : (T,) Unix seconds
    thread_root_author : (T,) user index, -1 when the root post is missing
    thread_posts : (T,) number of posts
    """

    users: UserGraph
    user_topic: sp.csr_matrix
    user_thread: sp.csr_matrix
    thread_topic: sp.csr_matrix
    vocabulary: np.ndarray
    thread_last_activity: np.ndarray
    thread_root_author: np.ndarray
    thread_posts: np.ndarray

    @property
    def n_users(self) -> int:
        return self.users.n_users

    @property
    def interaction(self) -> sp.csr_matrix:
        """(U, U) directed strength: ``reply_weight·replies + mention_weight·mentions +
        follow_weight·follows`` plus ``reciprocity_bonus × min(w[u,v], w[v,u])``."""
        return self.users.interaction()

    @property
    def talk(self) -> sp.csr_matrix:
        """(U, U) decayed replies + @mentions by the row user to the column user."""
        return self.users.talk()

    @property
    def follows(self) -> sp.csr_matrix:
        """(U, U) binary active follows (row follows column)."""
        return self.users.follows()

    def nbytes(self) -> int:
        """Bytes held for users×users (the ``≤ 12 bytes/edge`` budget)."""
        return self.users.nbytes()


def _mention_pairs(snap: Snapshot, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(post index, mentioned user index) for every resolvable @mention, in post order and
    each post's order of appearance. O(characters of the posts holding an ``@``)."""
    posts, handles = all_mentions(snap.post_text)
    users = np.fromiter((index.get(h, -1) for h in handles), dtype=np.int64, count=len(handles))
    found = users >= 0
    return posts[found], users[found]


def relation_matrices(
    snap: Snapshot, params: Params
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """(U, U) float32 ``(replies, mentions, follows)``: decayed replies by the row user to posts of
    the column user, decayed @mentions, active follows decayed by age. O(P + F) plus the texts."""
    n, now = snap.n_users, snap.now
    # Replies: author of the reply → author of the parent.
    child = np.flatnonzero(snap.post_parent >= 0)
    parent = snap.post_parent[child]
    reply_w = decay(snap.post_ts[child], now, params.reply_half_life_days)
    replies = square(snap.post_author[child], snap.post_author[parent], reply_w, n)

    m_posts, m_users = _mention_pairs(snap, snap.user_index())
    mention_w = decay(snap.post_ts[m_posts], now, params.reply_half_life_days)
    mentioned = square(snap.post_author[m_posts].astype(np.int64), m_users, mention_w, n)

    follow_w = decay(snap.follow_ts, now, params.follow_half_life_days)
    follows = square(snap.follow_src, snap.follow_dst, follow_w, n)
    return replies, mentioned, follows


def build_user_graph(
    replies: sp.csr_matrix, mentions: sp.csr_matrix, follows: sp.csr_matrix, params: Params
) -> UserGraph:
    """Pack the relations into a :class:`UserGraph`. O(nnz log nnz)."""
    strength = (
        params.reply_weight * replies
        + params.mention_weight * mentions
        + params.follow_weight * follows
    ).tocsr()
    interaction = (strength + params.reciprocity_bonus * strength.minimum(strength.T)).tocsr()
    interaction.eliminate_zeros()
    talk = (replies + mentions).tocsr()
    talk.eliminate_zeros()
    followed = (follows > 0).tocsr()

    for m in (interaction, talk, followed):
        m.sum_duplicates()  # canonical: sorted within rows, no duplicates
    parts = [
        sp.csr_matrix((np.ones(m.nnz, np.float32), m.indices, m.indptr), shape=m.shape)
        for m in (interaction, talk, followed)
    ]
    pattern = (parts[0] + parts[1] + parts[2]).tocsr()
    pattern.sum_duplicates()
    keys = entry_keys(pattern)

    def positions(m: sp.csr_matrix) -> np.ndarray:
        return np.searchsorted(keys, entry_keys(m))

    weights = np.zeros(pattern.nnz, np.float32)
    weights[positions(interaction)] = interaction.data
    relations = np.zeros(pattern.nnz, np.uint8)
    relations[positions(followed)] |= FOLLOWS
    relations[positions(talk)] |= TALK
    # Both orders are row-major sorted, so the TALK entries in pattern order are talk.data in order.
    return UserGraph(
        indptr=pattern.indptr,
        indices=pattern.indices,
        strength=weights,
        relations=relations,
        talk_weight=talk.data.astype(np.float32),
    )


def topic_matrices(
    snap: Snapshot,
    *,
    half_life_days: float,
    interest_weight: float,
    min_df: int,
    max_df_share: float,
    length_exponent: float,
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """``(user_topic (U, V), thread_topic (T, V), vocabulary (V,))``: the documents are the
    posts (decayed with ``half_life_days``, 0 = none) and the profiles (their interests, weight
    ``interest_weight``); a user's topics sum their documents, a thread's its posts
    (:func:`tribes.text.build_topic_matrix` with the other arguments, then
    :func:`tribes.text.aggregate`). The engine and the content baseline read text alike."""
    n = snap.n_users
    post_weight = decay(snap.post_ts, snap.now, half_life_days)
    docs, vocabulary = build_topic_matrix(
        list(snap.post_tags) + list(snap.interests),
        list(snap.post_text) + [""] * n,
        np.concatenate([post_weight, np.full(n, interest_weight, np.float32)]),
        min_df=min_df,
        max_df_share=max_df_share,
        length_exponent=length_exponent,
    )
    owners = np.concatenate([snap.post_author, np.arange(n, dtype=np.int32)])
    user_topic = aggregate(owners, docs, n)
    thread_topic = aggregate(snap.post_thread, docs[: snap.n_posts], snap.n_threads)
    return user_topic, thread_topic, vocabulary


def build_graph(snap: Snapshot, params: Params) -> InterestGraph:
    """Build every matrix of the interest graph. Cost O(P + F + nnz) plus topic extraction."""
    if not snap.has_text:
        raise ValueError(
            "build_graph needs the post texts, tags and interests: this snapshot was made without_text()"
        )
    n, now = snap.n_users, snap.now
    users = build_user_graph(*relation_matrices(snap, params), params)

    user_topic, thread_topic, vocabulary = topic_matrices(
        snap,
        half_life_days=params.topic_half_life_days,
        interest_weight=params.interest_weight,
        min_df=params.min_topic_df,
        max_df_share=params.max_topic_df_share,
        length_exponent=params.topic_length_exponent,
    )
    n_posts = snap.n_posts

    t = snap.n_threads
    user_thread = sp.csr_matrix(
        (
            decay(snap.post_ts, now, params.reply_half_life_days),
            (snap.post_author, snap.post_thread),
        ),
        shape=(n, t),
        dtype=np.float32,
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
        users=users,
        user_topic=user_topic.astype(np.float32).tocsr(),
        user_thread=user_thread,
        thread_topic=thread_topic.astype(np.float32).tocsr(),
        vocabulary=vocabulary,
        thread_last_activity=last,
        thread_root_author=root_author,
        thread_posts=thread_posts,
    )
