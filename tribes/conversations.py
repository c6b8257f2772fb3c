"""Conversation suggestions: live threads where a newcomer's reply is likely to be answered.

A thread is *live* when its last post is within ``live_window_days`` of the snapshot. For each
user, candidate threads come from their tribes, their topics and the people they talk with;
each pair is scored::

    score = match(u, t) × p(newcomer reply answered in t) × room(t) × recency(t)

``match`` = ``1 - exp(-(w_topic·cos(topics) + w_tribe·tribe share + w_contacts·contacts))``;
``p(answered)`` blends the thread's own record of answering first-time repliers with its root
author's answer rate; ``room = 1 / (1 + (participants / crowd_size)²)`` prefers threads one can
still join; ``recency`` decays with the last activity. Threads the user already posted in,
dismissed threads and threads started by someone the user blocks or mutes (or who blocks or
mutes them, or who is not discoverable) are never suggested.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .candidates import CandidateContext
from .graph import decay
from .sparse import aligned_values, binary, rank_within, row_normalize, top_k_per_row

__all__ = ["THREAD_FLAGS", "RankedThreads", "ThreadStats", "rank_conversations", "thread_stats"]

THREAD_FLAGS = {"shared_topics": 1, "same_tribe": 2, "contacts_there": 4, "answers_newcomers": 8,
                "active_thread": 16}
_CHUNK = 4_000
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
    order = np.lexsort((snap.post_ts, snap.post_author, snap.post_thread))
    first_in_thread = np.ones(snap.n_posts, dtype=bool)
    if snap.n_posts:
        same = (snap.post_thread[order][1:] == snap.post_thread[order][:-1]) & (
            snap.post_author[order][1:] == snap.post_author[order][:-1])
        first_in_thread[order[1:][same]] = False
    is_reply = snap.post_parent >= 0
    root_author = g.thread_root_author[snap.post_thread] if snap.n_posts else np.zeros(0, np.int32)
    newcomer = is_reply & first_in_thread & (snap.post_author != root_author)
    has_answer = np.zeros(snap.n_posts, dtype=bool)
    has_answer[snap.post_parent[is_reply]] = True
    tried = np.bincount(snap.post_thread[newcomer], minlength=t)
    answered = np.bincount(snap.post_thread[newcomer & has_answer], minlength=t)
    a = p.answer_prior_strength
    root_rate = np.where(g.thread_root_author >= 0,
                         ctx.behaviour.answer_rate[np.maximum(g.thread_root_author, 0)], p.answer_prior)
    thread_rate = (answered + a * root_rate) / (tried + a)
    rate = (0.5 * thread_rate + 0.5 * root_rate).astype(np.float32)

    labels = ctx.labels
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    tribe = np.full(t, -1, dtype=np.int32)
    if k and t:
        labelled = np.flatnonzero(labels >= 0)
        onehot = sp.csr_matrix((np.ones(len(labelled), np.float32), (labels[labelled], labelled)),
                               shape=(k, snap.n_users))
        counts = (onehot @ participation.tocsr()).tocsc()  # (K, T) members participating
        has = np.diff(counts.indptr) > 0
        best = np.asarray(counts.argmax(axis=0)).ravel()
        tribe[has] = best[has]
    return ThreadStats(live=live, participants=participants, answered_rate=rate, tribe=tribe)


def _exclusions(ctx: CandidateContext, live_threads: np.ndarray) -> sp.csr_matrix:
    """(U, T_live) 1 where the thread must not be suggested to the user (per-user reasons;
    threads hidden from everyone are masked by :func:`_visible`)."""
    snap, g = ctx.snap, ctx.graph
    n = snap.n_users
    posted = binary(g.user_thread)[:, live_threads]
    root = g.thread_root_author[live_threads]
    has_root = root >= 0
    # Users who must not see this root author's threads: exclusion pairs (user, root author).
    root_matrix = sp.csr_matrix((np.ones(has_root.sum(), np.float32),
                                 (root[has_root], np.flatnonzero(has_root))), shape=(n, len(live_threads)))
    people_excl = ctx.exclusion.copy()
    people_excl.setdiag(0)
    people_excl.eliminate_zeros()
    follows = sp.csr_matrix((np.ones(len(snap.follow_src), np.float32), (snap.follow_src, snap.follow_dst)),
                            shape=(n, n))
    blocked_or_muted = binary(people_excl - people_excl.multiply(binary(follows)))
    hidden = blocked_or_muted @ root_matrix
    out = posted + hidden
    dismissed_rows, dismissed_cols = [], []
    live_pos = {tid: j for j, tid in enumerate(snap.thread_ids[live_threads])}
    for u, kind, target in snap.dismissed:
        j = live_pos.get(target) if kind == "thread" else None
        if j is not None:
            dismissed_rows.append(u)
            dismissed_cols.append(j)
    if dismissed_rows:
        out = out + sp.csr_matrix((np.ones(len(dismissed_rows), np.float32), (dismissed_rows, dismissed_cols)),
                                  shape=out.shape)
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
    Cost: O(U × (tribes + contacts + topics) × pool), in user chunks.
    """
    snap, g, p = ctx.snap, ctx.graph, ctx.params
    n, width = snap.n_users, p.max_conversations
    live = np.flatnonzero(stats.live)
    empty = RankedThreads(np.full((n, width), -1, np.int32), np.zeros((n, width), np.float32),
                          np.zeros((n, width), np.uint8))
    if len(live) == 0 or n == 0:
        return empty
    n_live = len(live)
    pool = max(width * 3, 50)
    base = (stats.answered_rate[live]
            / (1.0 + (stats.participants[live] / max(p.crowd_size, 1)) ** 2)
            * decay(g.thread_last_activity[live], snap.now, p.recency_half_life_days)).astype(np.float32)

    # Topics: each user's and each thread's strongest topics, common topics left out.
    user_topics = row_normalize(top_k_per_row(g.user_topic, _TOPICS_PER_USER), "l2").tocsr()
    thread_topics = row_normalize(top_k_per_row(g.thread_topic[live], _TOPICS_PER_THREAD), "l2").tocsr()
    df = np.bincount(thread_topics.indices, minlength=thread_topics.shape[1])
    rare = sp.diags((df <= _MAX_THREADS_PER_TOPIC).astype(np.float32))
    topic_index = (thread_topics @ rare).T.tocsr()  # (V, T_live), common topics dropped
    thread_topics_t = thread_topics.T.tocsr()

    # Tribes: each tribe's best live threads by base score.
    k = ctx.memberships.shape[1]
    live_tribe = stats.tribe[live]
    has_tribe = live_tribe >= 0
    tribe_threads = top_k_per_row(sp.csr_matrix(
        (base[has_tribe] + 1e-9, (live_tribe[has_tribe], np.flatnonzero(has_tribe))), shape=(k, n_live)), pool)
    tribe_threads = binary(tribe_threads)

    talk = top_k_per_row((g.interaction + g.interaction.T).tocsr(), _CONTACTS)
    talk.data = (1 - np.exp(-talk.data)).astype(np.float32)
    in_thread = binary(g.user_thread)[:, live].tocsr()
    excluded = _exclusions(ctx, live)
    visible = sp.diags(_visible(ctx, live).astype(np.float32))

    rows_all, cols_all, score_all, flag_all = [], [], [], []
    for s in range(0, n, _CHUNK):
        e = min(n, s + _CHUNK)
        by_tribe = (ctx.memberships[s:e] @ tribe_threads).tocsr()
        by_contacts = (talk[s:e] @ in_thread).tocsr()
        by_topic = top_k_per_row((user_topics[s:e] @ topic_index).tocsr(), pool)
        pattern = binary(binary(by_tribe) + binary(top_k_per_row(by_contacts, pool)) + binary(by_topic))
        pattern = binary((pattern - pattern.multiply(excluded[s:e])) @ visible)
        pattern.sort_indices()
        if pattern.nnz == 0:
            continue
        rows = np.repeat(np.arange(s, e), np.diff(pattern.indptr))
        cols = pattern.indices
        topic = _pair_dot(user_topics, rows, thread_topics_t, cols)
        tribe = aligned_values(pattern, by_tribe)
        contacts = aligned_values(pattern, by_contacts)
        contacts = 1 - np.exp(-contacts)
        z = p.w_thread_topic * topic + p.w_thread_tribe * tribe + p.w_thread_contacts * contacts
        score = ((1 - np.exp(-z)) * base[cols]).astype(np.float32)
        flags = np.full(len(cols), THREAD_FLAGS["active_thread"], dtype=np.uint8)
        flags |= np.where(topic >= 0.05, THREAD_FLAGS["shared_topics"], 0).astype(np.uint8)
        flags |= np.where(tribe > 0, THREAD_FLAGS["same_tribe"], 0).astype(np.uint8)
        flags |= np.where(contacts > 0, THREAD_FLAGS["contacts_there"], 0).astype(np.uint8)
        flags |= np.where(stats.answered_rate[live][cols] >= 0.5, THREAD_FLAGS["answers_newcomers"], 0).astype(np.uint8)
        keep = score > 0
        rows_all.append(rows[keep])
        cols_all.append(cols[keep])
        score_all.append(score[keep])
        flag_all.append(flags[keep])
    if not rows_all:
        return empty
    rows = np.concatenate(rows_all)
    cols = np.concatenate(cols_all)
    score = np.concatenate(score_all)
    flags = np.concatenate(flag_all)
    by_user = np.lexsort((cols, -score, rows))
    position = rank_within(rows, by_user)
    take = position < width
    empty.items[rows[take], position[take]] = live[cols[take]]
    empty.scores[rows[take], position[take]] = score[take]
    empty.flags[rows[take], position[take]] = flags[take]
    return empty


def _pair_dot(a: sp.csr_matrix, rows: np.ndarray, bt: sp.csr_matrix, cols: np.ndarray) -> np.ndarray:
    """``a[rows[i]] · bt[:, cols[i]]`` for every pair, in chunks (``bt`` is (V, T) CSR)."""
    b = bt.T.tocsr()
    out = np.zeros(len(rows), dtype=np.float32)
    step = 1_000_000
    for s in range(0, len(rows), step):
        out[s:s + step] = np.asarray(a[rows[s:s + step]].multiply(b[cols[s:s + step]]).sum(axis=1)).ravel()
    return out
