"""Conversation suggestions: live threads where a newcomer's reply is likely to be answered.

A thread is *live* when its last post is within ``live_window_days`` of the snapshot. For each
user, candidate threads come from their tribes, their topics and the people they talk with;
each pair is scored::

    score = match(u, t) × p(newcomer reply answered in t) × room(t) × recency(t) × momentum(t)

``match`` = ``1 - exp(-(w_topic·cos(topics) + w_tribe·tribe share + w_contacts·contacts + w_open))``;
``p(answered)`` blends the thread's own record of answering first-time repliers with its root
author's answer rate; ``room = 1 / (1 + (participants / crowd_size)²)`` prefers threads one can
still join; ``recency`` decays with the last activity; ``momentum = (1 + posts in the live
window) ** thread_momentum`` (1 by default; learning raises the exponent where held-out joins
follow activity, see :mod:`tribes.learn`). ``w_open`` (``w_thread_open``, 0 by default) is a
match everyone has: when learning finds that held-out joins go beyond people's tribes, topics and
contacts, it turns it on and the most welcoming live threads (best by the other factors) become
candidates for every user. A user with no candidate at all (no tribe, topics or contacts yet:
a newcomer) gets those threads too, with match ``1 - exp(-(w_open + 1))``, unless
``welcome_newcomers`` is 0. Threads the user already posted in,
dismissed threads and threads started by someone the user blocks or mutes (or who blocks or
mutes them, or who is not discoverable) are never suggested.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .candidates import CandidateContext, hidden_matrix
from .flags import THREAD_FLAGS
from .graph import decay
from .kernels import pair_dots
from .parallel import map_blocks
from .sparse import (
    binary,
    descending_key,
    entry_keys,
    in_sorted,
    key_value,
    rank_within,
    row_normalize,
    top_k_per_row,
)

__all__ = ["THREAD_FLAGS", "RankedThreads", "ThreadStats", "rank_conversations", "thread_stats"]

_CHUNK = 4_000
_NEWCOMER_OPEN = (
    1.0  # a newcomer's match with the open threads (their only candidates), added to w_open
)
_TOPICS_PER_USER = 10
_TOPICS_PER_THREAD = 8
_MAX_THREADS_PER_TOPIC = 500
_CONTACTS = 20


@dataclass(frozen=True, eq=False)
class ThreadStats:
    """Per thread (T,): live flag, participants, newcomer answer rate, tribe (-1 none)."""

    live: np.ndarray
    participants: np.ndarray
    answered_rate: np.ndarray
    tribe: np.ndarray
    recent_posts: np.ndarray  # (T,) posts within live_window_days of the snapshot


@dataclass(frozen=True, eq=False)
class RankedThreads:
    items: np.ndarray  # (U, L) int32 thread index, -1 pads
    scores: np.ndarray  # (U, L) float32
    flags: np.ndarray  # (U, L) uint8 THREAD_FLAGS bits


def thread_stats(ctx: CandidateContext) -> ThreadStats:
    """Per-thread statistics. O(P + nnz(user_thread))."""
    snap, g, p = ctx.snap, ctx.graph, ctx.params
    t = snap.n_threads
    live = g.thread_last_activity >= snap.now - p.live_window_days * 86_400.0
    participation = binary(g.user_thread).tocsc()
    participants = np.diff(participation.indptr).astype(np.int32)

    # A newcomer reply: a reply whose author had not posted in the thread before and did not
    # start it. It is answered when some later post replies to it.
    first_in_thread = _first_posts(snap.post_thread, snap.post_author, snap.post_ts, snap.n_users)
    is_reply = snap.post_parent >= 0
    root_author = g.thread_root_author[snap.post_thread] if snap.n_posts else np.zeros(0, np.int32)
    newcomer = is_reply & first_in_thread & (snap.post_author != root_author)
    has_answer = np.zeros(snap.n_posts, dtype=bool)
    has_answer[snap.post_parent[is_reply]] = True
    tried = np.bincount(snap.post_thread[newcomer], minlength=t)
    answered = np.bincount(snap.post_thread[newcomer & has_answer], minlength=t)
    a = p.answer_prior_strength
    root_rate = np.where(
        g.thread_root_author >= 0,
        ctx.behaviour.answer_rate[np.maximum(g.thread_root_author, 0)],
        p.answer_prior,
    )
    thread_rate = (answered + a * root_rate) / (tried + a)
    rate = (0.5 * thread_rate + 0.5 * root_rate).astype(np.float32)

    labels = ctx.labels
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    tribe = np.full(t, -1, dtype=np.int32)
    if k and t:
        labelled = np.flatnonzero(labels >= 0)
        onehot = sp.csr_matrix(
            (np.ones(len(labelled), np.float32), (labels[labelled], labelled)),
            shape=(k, snap.n_users),
        )
        counts = (onehot @ participation.tocsr()).tocsc()  # (K, T) members participating
        counts.sum_duplicates()  # canonical: tribes ascending within each thread
        tribe[:] = _first_max_per_column(counts)
    recent = snap.post_ts >= snap.now - p.live_window_days * 86_400.0
    recent_posts = np.bincount(snap.post_thread[recent], minlength=t).astype(np.int32)
    return ThreadStats(
        live=live,
        participants=participants,
        answered_rate=rate,
        tribe=tribe,
        recent_posts=recent_posts,
    )


def _exclusions(ctx: CandidateContext, live_threads: np.ndarray) -> sp.csr_matrix:
    """(U, T_live) 1 where the thread must not be suggested to the user (per-user reasons;
    threads hidden from everyone are masked by :func:`_visible`)."""
    snap, g = ctx.snap, ctx.graph
    n = snap.n_users
    posted = binary(g.user_thread)[:, live_threads]
    root = g.thread_root_author[live_threads]
    has_root = root >= 0
    # Users who must not see this root author's threads: blocks and mutes either way and
    # dismissed people (:func:`hidden_matrix`), whether or not the user also follows the author.
    root_matrix = sp.csr_matrix(
        (np.ones(has_root.sum(), np.float32), (root[has_root], np.flatnonzero(has_root))),
        shape=(n, len(live_threads)),
    )
    hidden = hidden_matrix(snap) @ root_matrix
    out = posted + hidden
    dismissed_rows, dismissed_cols = [], []
    live_pos = {tid: j for j, tid in enumerate(snap.thread_ids[live_threads])}
    for u, kind, target in snap.dismissed:
        j = live_pos.get(target) if kind == "thread" else None
        if j is not None:
            dismissed_rows.append(u)
            dismissed_cols.append(j)
    if dismissed_rows:
        out = out + sp.csr_matrix(
            (np.ones(len(dismissed_rows), np.float32), (dismissed_rows, dismissed_cols)),
            shape=out.shape,
        )
    return binary(out.tocsr())


def _visible(ctx: CandidateContext, live_threads: np.ndarray) -> np.ndarray:
    """(T_live,) False for threads started by a non-discoverable person: hidden from all."""
    root = ctx.graph.thread_root_author[live_threads]
    return ~((root >= 0) & ~ctx.snap.discoverable[np.maximum(root, 0)])


def rank_conversations(ctx: CandidateContext, stats: ThreadStats) -> RankedThreads:
    """Score live threads for every user; keep ``max_conversations`` per user.

    Candidates (bounded per user): the best live threads of the user's tribes, threads where
    their contacts post, and threads sharing their strongest topics (topics used by many live
    threads are skipped). Then every candidate pair is scored as in the module docstring.
    Cost: O(U × (tribes + contacts + topics) × pool), in user chunks (on the
    :mod:`tribes.parallel` workers); each chunk keeps only its users' best ``max_conversations``
    pairs, so memory beyond the (U, L) result is per chunk in flight.
    """
    snap, g, p = ctx.snap, ctx.graph, ctx.params
    n, width = snap.n_users, p.max_conversations
    live = np.flatnonzero(stats.live)
    out = RankedThreads(
        np.full((n, width), -1, np.int32),
        np.zeros((n, width), np.float32),
        np.zeros((n, width), np.uint8),
    )
    if len(live) == 0 or n == 0:
        return out
    n_live = len(live)
    pool = max(width * 3, 50)
    live_rate = stats.answered_rate[live]
    base = (
        live_rate
        / (1.0 + (stats.participants[live] / max(p.crowd_size, 1)) ** 2)
        * decay(g.thread_last_activity[live], snap.now, p.recency_half_life_days)
        * (1.0 + stats.recent_posts[live]) ** p.thread_momentum
    ).astype(np.float32)

    # Topics: each user's and each thread's strongest topics, common topics left out.
    user_topics = row_normalize(top_k_per_row(g.user_topic, _TOPICS_PER_USER), "l2").tocsr()
    # Rows as stored come in decreasing column order (row_normalize's product): scipy's
    # element-wise product lists a pair's matches in increasing order, as a merge of sorted rows.
    user_rows = user_topics.sorted_indices()
    thread_topics = row_normalize(
        top_k_per_row(g.thread_topic[live], _TOPICS_PER_THREAD), "l2"
    ).tocsr()
    df = np.bincount(thread_topics.indices, minlength=thread_topics.shape[1])
    rare = sp.diags((df <= _MAX_THREADS_PER_TOPIC).astype(np.float32))
    topic_index = (thread_topics @ rare).T.tocsr()  # (V, T_live), common topics dropped
    thread_topics = thread_topics.T.tocsr().T.tocsr()  # canonical (T_live, V): rows for pair_dots

    # Tribes: each tribe's best live threads by base score.
    k = ctx.memberships.shape[1]
    live_tribe = stats.tribe[live]
    has_tribe = live_tribe >= 0
    tribe_threads = top_k_per_row(
        sp.csr_matrix(
            (base[has_tribe] + 1e-9, (live_tribe[has_tribe], np.flatnonzero(has_tribe))),
            shape=(k, n_live),
        ),
        pool,
    )
    tribe_threads = binary(tribe_threads)
    # A live thread belongs to one tribe, so ``(memberships @ tribe_threads)[u, t]`` is u's
    # share of t's tribe when t is among that tribe's best: read from u's few memberships.
    pooled_tribe = np.where(np.diff(tribe_threads.tocsc().indptr) > 0, live_tribe, -2)
    member_tribe, member_share = _slots(ctx.memberships)  # -1: empty slot

    talk = top_k_per_row((g.interaction + g.interaction.T).tocsr(), _CONTACTS)
    talk.data = (1 - np.exp(-talk.data)).astype(np.float32)
    in_thread = binary(g.user_thread)[:, live].tocsr()
    excluded = _exclusions(ctx, live)
    visible = _visible(ctx, live)
    # Bounds on the topic cosine for pruning (rows are l2-normalised: ≤ 1 up to rounding).
    nonnegative = min(user_topics.data.min(initial=0), thread_topics.data.min(initial=0)) >= 0
    topic_low, topic_high = (0.0 if nonnegative else -1.01), 1.01

    # Open to all (when ``w_thread_open`` > 0; to newcomers unless ``welcome_newcomers`` is 0):
    # the best visible live threads by base score.
    open_threads = np.zeros(0, dtype=np.int64)
    if p.w_thread_open > 0 or p.welcome_newcomers:
        shown = np.flatnonzero(visible)
        open_threads = np.sort(shown[np.argsort(-base[shown], kind="stable")[:width]])

    def scores(topic, tribe, contacts, cols, newcomer):
        z = (
            p.w_thread_topic * topic
            + p.w_thread_tribe * tribe
            + p.w_thread_contacts * contacts
            + p.w_thread_open
            + _NEWCOMER_OPEN * newcomer
        )
        return ((1 - np.exp(-z)) * base[cols]).astype(np.float32)

    def rank_chunk(bounds: tuple[int, int]) -> None:
        """Rank users s..e and write their rows of ``out`` (disjoint per chunk)."""
        s, e = bounds
        by_tribe = (ctx.memberships[s:e] @ tribe_threads).tocsr()
        by_contacts = (talk[s:e] @ in_thread).tocsr()
        by_topic = _top_keys((user_topics[s:e] @ topic_index).tocsr(), pool)
        # The candidate pairs as sorted unique keys ``row_in_chunk × T_live + column``.
        found = np.concatenate([_keys(by_tribe), _top_keys(by_contacts, pool), by_topic])
        # no candidate of their own: the open threads are theirs
        newcomer = np.zeros(e - s, dtype=bool)
        if p.welcome_newcomers:
            newcomer[:] = True
            newcomer[found // n_live] = False
        open_rows = (
            np.arange(e - s, dtype=np.int64) if p.w_thread_open > 0 else np.flatnonzero(newcomer)
        )
        keys = np.sort(
            np.concatenate([found, (open_rows[:, None] * n_live + open_threads).ravel()])
        )
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
        keys = keys[~in_sorted(np.sort(_keys(excluded[s:e])), keys) & visible[keys % n_live]]
        if len(keys) == 0:
            return
        rows, cols = keys // n_live + s, keys % n_live
        tribe = _share_of(member_tribe, member_share, rows, pooled_tribe[cols])
        contacts = 1 - np.exp(-_scatter_at(keys, by_contacts))
        # Pruning: a pair whose score with the best possible topic match stays below the
        # user's width-th score without any topic match cannot make the list; the topic cosine
        # (the costly part) is computed for the others only. A 0.1% margin covers rounding.
        fresh = newcomer[rows - s]
        low = scores(np.full(len(rows), topic_low, np.float32), tribe, contacts, cols, fresh)
        high = scores(np.full(len(rows), topic_high, np.float32), tribe, contacts, cols, fresh)
        threshold = _kth_largest(rows - s, e - s, np.maximum(low, 0), width)
        need = np.flatnonzero(high >= threshold[rows - s] * np.float32(0.999))
        rows, cols, tribe, contacts = rows[need], cols[need], tribe[need], contacts[need]
        topic = pair_dots(user_rows, rows, cols, thread_topics)
        score = scores(topic, tribe, contacts, cols, newcomer[rows - s])
        keep = np.flatnonzero(score > 0)
        rows, cols, score = rows[keep], cols[keep], score[keep]
        topic, tribe, contacts = topic[keep], tribe[keep], contacts[keep]
        # Best first within each user, ties by thread: the pairs are in (row, column) order, so a
        # stable sort on (row, descending score) keeps columns ascending among equal scores.
        position = rank_within(rows, np.argsort(descending_key(rows - s, score), kind="stable"))
        take = np.flatnonzero(position < width)
        cols, topic, tribe, contacts = cols[take], topic[take], tribe[take], contacts[take]
        flags = np.full(len(cols), THREAD_FLAGS["active_thread"], dtype=np.uint8)
        flags |= np.where(topic >= 0.05, THREAD_FLAGS["shared_topics"], 0).astype(np.uint8)
        flags |= np.where(tribe > 0, THREAD_FLAGS["same_tribe"], 0).astype(np.uint8)
        flags |= np.where(contacts > 0, THREAD_FLAGS["contacts_there"], 0).astype(np.uint8)
        flags |= np.where(live_rate[cols] >= 0.5, THREAD_FLAGS["answers_newcomers"], 0).astype(
            np.uint8
        )
        offered = in_sorted(open_threads, cols) & ((p.w_thread_open > 0) | newcomer[rows[take] - s])
        flags |= np.where(offered, THREAD_FLAGS["open_to_all"], 0).astype(np.uint8)
        slot = rows[take] * width + position[take]
        out.items.reshape(-1)[slot] = live[cols]
        out.scores.reshape(-1)[slot] = score[take]
        out.flags.reshape(-1)[slot] = flags

    map_blocks(rank_chunk, [(s, min(n, s + _CHUNK)) for s in range(0, n, _CHUNK)])
    return out


def _slots(m: sp.csr_matrix) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each row's stored entries in fixed slots: per slot, the (rows,) int32 column (-1 when
    the row has fewer entries) and the (rows,) value. O(nnz); slots = the longest row."""
    m = m.tocsr().copy()
    m.sum_duplicates()
    counts = np.diff(m.indptr)
    columns, values = [], []
    for j in range(int(counts.max(initial=0))):
        has = counts > j
        column = np.full(m.shape[0], -1, dtype=np.int32)
        value = np.zeros(m.shape[0], dtype=m.dtype)
        column[has] = m.indices[m.indptr[:-1][has] + j]
        value[has] = m.data[m.indptr[:-1][has] + j]
        columns.append(column)
        values.append(value)
    return columns, values


def _share_of(
    columns: list[np.ndarray], values: list[np.ndarray], rows: np.ndarray, column: np.ndarray
) -> np.ndarray:
    """(pairs,) float32: the value row ``rows[i]`` stores under ``column[i]`` (0 if none;
    ``column`` never -1). O(pairs × slots)."""
    out = np.zeros(len(rows), dtype=np.float32)
    for slot_column, slot_value in zip(columns, values, strict=True):
        hit = np.flatnonzero(slot_column[rows] == column)
        out[hit] = slot_value[rows[hit]]
    return out


def _kth_largest(group: np.ndarray, n_groups: int, value: np.ndarray, k: int) -> np.ndarray:
    """(n_groups,) float32: each group's ``k``-th largest ``value`` (0 when the group has fewer
    than ``k``); ``value`` non-negative float32, ``group`` in any order. One unstable sort."""
    out = np.zeros(n_groups, dtype=np.float32)
    counts = np.bincount(group, minlength=n_groups)
    full = np.flatnonzero(counts >= k)
    if len(full) == 0:
        return out
    ordered = np.sort(descending_key(group, value))
    at = (np.cumsum(counts) - counts)[full] + k - 1
    out[full] = key_value(ordered[at])
    return out


def _keys(m: sp.csr_matrix) -> np.ndarray:
    """:func:`tribes.sparse.entry_keys` of the positive entries of ``m`` (any row order). O(nnz)."""
    m = m.tocsr()
    return entry_keys(m)[m.data > 0]


def _top_keys(m: sp.csr_matrix, k: int) -> np.ndarray:
    """The keys (as :func:`_keys`) of ``binary(top_k_per_row(m, k))`` for a non-negative
    float32 ``m`` without duplicate entries (a product), unsorted and without sorting ``m``'s
    rows: each long row's ``k``-th value by one unstable sort, ties to the smaller columns."""
    counts = np.diff(m.indptr)
    if k <= 0 or m.nnz == 0:
        return np.zeros(0, dtype=np.int64)
    if m.dtype != np.float32 or not m.data.min() >= 0:
        return _keys(top_k_per_row(m, k))
    row = np.repeat(np.arange(m.shape[0], dtype=np.int64), counts)
    long = counts > k
    in_long = long[row]
    kth = np.zeros(m.shape[0], dtype=np.float32)
    kth[long] = _kth_largest(row[in_long], m.shape[0], m.data[in_long], k)[long]
    kept = ~in_long | (m.data > kth[row])
    tie = np.flatnonzero(in_long & (m.data == kth[row]))
    if len(tie):  # fill each long row's last slots with its tied entries of smallest column
        room = k - np.bincount(row[kept & in_long], minlength=m.shape[0])
        tie = tie[np.argsort(row[tie] * m.shape[1] + m.indices[tie])]
        tied_row = row[tie]
        starts = np.flatnonzero(np.r_[True, tied_row[1:] != tied_row[:-1]])
        rank = np.arange(len(tie)) - np.repeat(starts, np.diff(np.r_[starts, len(tie)]))
        kept[tie[rank < room[tied_row]]] = True
    kept &= m.data > 0
    return row[kept] * m.shape[1] + m.indices[kept]


def _scatter_at(sorted_keys: np.ndarray, m: sp.csr_matrix) -> np.ndarray:
    """(len(sorted_keys),) float32: ``m``'s positive value at each key (0 where absent), for
    ``m`` without duplicate entries (a product) in any row order: ``m``'s keys are looked up
    among the sorted keys, so ``m`` itself is never sorted. O(nnz(m) log len(sorted_keys))."""
    out = np.zeros(len(sorted_keys), dtype=np.float32)
    positive = m.data > 0
    keys = entry_keys(m)[positive]
    if len(sorted_keys) == 0 or len(keys) == 0:
        return out
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    found = sorted_keys[at] == keys
    out[at[found]] = m.data[positive][found]
    return out


def _first_max_per_column(m: sp.csc_matrix) -> np.ndarray:
    """(columns,) int32: the row of each column's largest stored entry, the smallest row on
    ties (``argmax(axis=0)`` of a canonical CSC with positive entries), -1 for empty columns.
    O(nnz), no sort and no Python loop over columns."""
    out = np.full(m.shape[1], -1, dtype=np.int32)
    if m.nnz == 0:
        return out
    counts = np.diff(m.indptr)
    column = np.repeat(np.arange(m.shape[1]), counts)
    has = np.flatnonzero(counts)
    largest = np.zeros(m.shape[1], dtype=m.dtype)
    largest[has] = np.maximum.reduceat(m.data, m.indptr[has])
    at_max = np.flatnonzero(m.data == largest[column])  # rows ascending within a column
    first = at_max[np.r_[True, column[at_max][1:] != column[at_max][:-1]]]
    out[column[first]] = m.indices[first]
    return out


def _first_posts(
    thread: np.ndarray, author: np.ndarray, ts: np.ndarray, n_users: int
) -> np.ndarray:
    """(P,) bool: the post is its author's first in its thread (earliest ``ts``, then the
    lowest index): what sorting by (thread, author, ts) and keeping each group's head gives.
    One unstable sort of an int64 (thread, author) key, then minima per group. O(P log P)."""
    first = np.zeros(len(thread), dtype=bool)
    if len(thread) == 0:
        return first
    if np.isnan(ts).any():  # NaN sorts last in a lexsort; keep its exact semantics
        order = np.lexsort((ts, author, thread))
        same = (thread[order][1:] == thread[order][:-1]) & (author[order][1:] == author[order][:-1])
        first[:] = True
        first[order[1:][same]] = False
        return first
    low = int(author.min())
    group = thread.astype(np.int64) * max(n_users, int(author.max()) - low + 1) + (author - low)
    order = np.argsort(group)
    grouped = group[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    times = ts[order]
    earliest = np.repeat(np.minimum.reduceat(times, starts), np.diff(np.r_[starts, len(order)]))
    candidate = np.where(times == earliest, order, len(order))
    first[np.minimum.reduceat(candidate, starts)] = True
    return first
