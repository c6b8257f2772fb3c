"""Conversation suggestions against a slow reference: the formulation before the 1M-user work
(one global sort of every scored pair, ``aligned_values`` lookups, sparse ``argmax``), kept
here so the faster one must give the same arrays bit for bit. One change to it: the threads of
an author the user blocks or mutes (or who blocks or mutes them) are hidden even when the user
also follows that author (the old code subtracted follows from the exclusion matrix)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

import tribes.conversations as conversations
from tribes.affinity import topic_neighbours, user_affinity
from tribes.behaviour import measure_behaviour
from tribes.candidates import CandidateContext, exclusion_matrix, hidden_matrix
from tribes.communities import detect_communities, tribe_affinities
from tribes.conversations import RankedThreads, ThreadStats, rank_conversations, thread_stats
from tribes.graph import build_graph, decay
from tribes.kernels import pair_dots
from tribes.model import snapshot_from
from tribes.parallel import workers
from tribes.params import Params
from tribes.sparse import aligned_values, binary, rank_within, row_normalize, top_k_per_row
from tribes.synth import SynthConfig, generate

# --- the reference: the code of tribes/conversations.py before the 1M-user work -------------


def reference_thread_stats(ctx: CandidateContext) -> ThreadStats:
    snap, g, p = ctx.snap, ctx.graph, ctx.params
    t = snap.n_threads
    live = g.thread_last_activity >= snap.now - p.live_window_days * 86_400.0
    participation = binary(g.user_thread).tocsc()
    participants = np.diff(participation.indptr).astype(np.int32)
    order = np.lexsort((snap.post_ts, snap.post_author, snap.post_thread))
    first_in_thread = np.ones(snap.n_posts, dtype=bool)
    if snap.n_posts:
        same = (snap.post_thread[order][1:] == snap.post_thread[order][:-1]) & (
            snap.post_author[order][1:] == snap.post_author[order][:-1]
        )
        first_in_thread[order[1:][same]] = False
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
        counts = (onehot @ participation.tocsr()).tocsc()
        has = np.diff(counts.indptr) > 0
        best = np.asarray(counts.argmax(axis=0)).ravel()
        tribe[has] = best[has]
    recent_posts = np.zeros(t, dtype=np.int32)
    for thread, ts in zip(snap.post_thread.tolist(), snap.post_ts.tolist(), strict=True):
        if ts >= snap.now - p.live_window_days * 86_400.0:
            recent_posts[thread] += 1
    return ThreadStats(
        live=live,
        participants=participants,
        answered_rate=rate,
        tribe=tribe,
        recent_posts=recent_posts,
    )


def reference_exclusions(ctx: CandidateContext, live_threads: np.ndarray) -> sp.csr_matrix:
    snap, g = ctx.snap, ctx.graph
    n = snap.n_users
    posted = binary(g.user_thread)[:, live_threads]
    root = g.thread_root_author[live_threads]
    has_root = root >= 0
    root_matrix = sp.csr_matrix(
        (np.ones(has_root.sum(), np.float32), (root[has_root], np.flatnonzero(has_root))),
        shape=(n, len(live_threads)),
    )
    # was: exclusion - follows (lost followed mutes)
    out = posted + hidden_matrix(snap) @ root_matrix
    live_pos = {tid: j for j, tid in enumerate(snap.thread_ids[live_threads])}
    dismissed = [
        (u, live_pos[target])
        for u, kind, target in snap.dismissed
        if kind == "thread" and target in live_pos
    ]
    if dismissed:
        r, c = zip(*dismissed, strict=True)
        out = out + sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=out.shape)
    return binary(out.tocsr())


def reference_rank_conversations(ctx: CandidateContext, stats: ThreadStats) -> RankedThreads:
    snap, g, p = ctx.snap, ctx.graph, ctx.params
    n, width = snap.n_users, p.max_conversations
    live = np.flatnonzero(stats.live)
    empty = RankedThreads(
        np.full((n, width), -1, np.int32),
        np.zeros((n, width), np.float32),
        np.zeros((n, width), np.uint8),
    )
    if len(live) == 0 or n == 0:
        return empty
    n_live = len(live)
    pool = max(width * 3, 50)
    base = (
        stats.answered_rate[live]
        / (1.0 + (stats.participants[live] / max(p.crowd_size, 1)) ** 2)
        * decay(g.thread_last_activity[live], snap.now, p.recency_half_life_days)
        * (1.0 + stats.recent_posts[live]) ** p.thread_momentum
    ).astype(np.float32)
    user_topics = row_normalize(top_k_per_row(g.user_topic, 10), "l2").tocsr()
    thread_topics = row_normalize(top_k_per_row(g.thread_topic[live], 8), "l2").tocsr()
    df = np.bincount(thread_topics.indices, minlength=thread_topics.shape[1])
    rare = sp.diags((df <= 500).astype(np.float32))
    topic_index = (thread_topics @ rare).T.tocsr()
    thread_topics_t = thread_topics.T.tocsr()
    k = ctx.memberships.shape[1]
    live_tribe = stats.tribe[live]
    has_tribe = live_tribe >= 0
    tribe_threads = binary(
        top_k_per_row(
            sp.csr_matrix(
                (base[has_tribe] + 1e-9, (live_tribe[has_tribe], np.flatnonzero(has_tribe))),
                shape=(k, n_live),
            ),
            pool,
        )
    )
    talk = top_k_per_row((g.interaction + g.interaction.T).tocsr(), 20)
    talk.data = (1 - np.exp(-talk.data)).astype(np.float32)
    in_thread = binary(g.user_thread)[:, live].tocsr()
    excluded = reference_exclusions(ctx, live)
    root = g.thread_root_author[live]
    visible = sp.diags(
        (~((root >= 0) & ~snap.discoverable[np.maximum(root, 0)])).astype(np.float32)
    )
    shown = [j for j in range(n_live) if visible.diagonal()[j] > 0]
    offered = p.w_thread_open > 0 or p.welcome_newcomers
    open_threads = sorted(sorted(shown, key=lambda j: (-base[j], j))[:width]) if offered else []
    rows_all, cols_all, score_all, flag_all = [], [], [], []
    for s in range(0, n, 4_000):
        e = min(n, s + 4_000)
        by_tribe = (ctx.memberships[s:e] @ tribe_threads).tocsr()
        by_contacts = (talk[s:e] @ in_thread).tocsr()
        by_topic = top_k_per_row((user_topics[s:e] @ topic_index).tocsr(), pool)
        own = binary(binary(by_tribe) + binary(top_k_per_row(by_contacts, pool)) + binary(by_topic))
        # A newcomer: no candidate of their own (before filters); the open threads are theirs.
        newcomer = (np.diff(own.indptr) == 0) & bool(p.welcome_newcomers)
        offered_to = np.arange(e - s) if p.w_thread_open > 0 else np.flatnonzero(newcomer)
        everyone = sp.csr_matrix(
            (
                np.ones(len(offered_to) * len(open_threads), np.float32),
                (np.repeat(offered_to, len(open_threads)), np.tile(open_threads, len(offered_to))),
            ),
            shape=(e - s, n_live),
        )
        pattern = binary(own + everyone)
        pattern = binary((pattern - pattern.multiply(excluded[s:e])) @ visible)
        pattern.sort_indices()
        if pattern.nnz == 0:
            continue
        rows = np.repeat(np.arange(s, e), np.diff(pattern.indptr))
        cols = pattern.indices
        b = thread_topics_t.T.tocsr()
        topic = (
            np.asarray(user_topics[rows].multiply(b[cols]).sum(axis=1)).ravel().astype(np.float32)
        )
        tribe = aligned_values(pattern, by_tribe)
        contacts = 1 - np.exp(-aligned_values(pattern, by_contacts))
        z = (
            p.w_thread_topic * topic
            + p.w_thread_tribe * tribe
            + p.w_thread_contacts * contacts
            + p.w_thread_open
            + 1.0 * newcomer[rows - s]
        )
        score = ((1 - np.exp(-z)) * base[cols]).astype(np.float32)
        flags = np.full(len(cols), 16, dtype=np.uint8)
        flags |= np.where(topic >= 0.05, 1, 0).astype(np.uint8)
        flags |= np.where(tribe > 0, 2, 0).astype(np.uint8)
        flags |= np.where(contacts > 0, 4, 0).astype(np.uint8)
        flags |= np.where(stats.answered_rate[live][cols] >= 0.5, 8, 0).astype(np.uint8)
        offered = np.isin(cols, open_threads) & ((p.w_thread_open > 0) | newcomer[rows - s])
        flags |= np.where(offered, 32, 0).astype(np.uint8)
        keep = score > 0
        rows_all.append(rows[keep])
        cols_all.append(cols[keep])
        score_all.append(score[keep])
        flag_all.append(flags[keep])
    if not rows_all:
        return empty
    rows, cols = np.concatenate(rows_all), np.concatenate(cols_all)
    score, flags = np.concatenate(score_all), np.concatenate(flag_all)
    position = rank_within(rows, np.lexsort((cols, -score, rows)))
    take = position < width
    empty.items[rows[take], position[take]] = live[cols[take]]
    empty.scores[rows[take], position[take]] = score[take]
    empty.flags[rows[take], position[take]] = flags[take]
    return empty


# --- fixtures ------------------------------------------------------------------------------


def context(snap, params: Params) -> CandidateContext:
    """What ``tribes.model._candidates`` builds, without the candidate sources."""
    graph = build_graph(snap, params)
    knn = topic_neighbours(
        graph.user_topic,
        k=max(params.topic_neighbours, params.candidates_per_source),
        min_similarity=params.min_topic_similarity,
        max_df=params.knn_max_df,
    )
    affinity = user_affinity(graph, params, knn=knn)
    labels = detect_communities(
        affinity,
        resolution=params.resolution,
        seed=params.seed,
        min_size=params.min_tribe_size,
        objective=params.tribe_objective,
    )
    memberships = tribe_affinities(
        affinity, labels, top_k=params.tribe_top_k, min_share=params.min_tribe_share
    )
    return CandidateContext(
        snap=snap,
        graph=graph,
        labels=labels,
        memberships=memberships,
        topic_knn=knn,
        behaviour=measure_behaviour(snap, graph, labels, params),
        params=params,
        exclusion=exclusion_matrix(snap),
    )


@pytest.fixture(scope="module")
def network():
    """A synthetic network with many blocks, mutes and hidden people, and dismissals of the
    threads each tenth user would otherwise see first."""
    config = SynthConfig(n_users=900, seed=5, block_share=0.05, mute_share=0.05, hidden_share=0.1)
    snap = snapshot_from(list(generate(config)))
    params = Params().validate()
    first = reference_rank_conversations(ctx := context(snap, params), reference_thread_stats(ctx))
    dismissed = [
        (u, "thread", str(snap.thread_ids[first.items[u, j]]))
        for u in range(0, snap.n_users, 10)
        for j in range(2)
        if first.items[u, j] >= 0
    ]
    dismissed.append((3, "thread", "no-such-thread"))
    dismissed.append((5, "user", str(snap.user_ids[6])))
    snap = replace(snap, dismissed=dismissed)
    return {"snap": snap, "params": params, "ctx": context(snap, params), "first": first}


def assert_same(a, b, fields):
    for f in fields:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and x.shape == y.shape, f
        assert np.array_equal(x, y), f"{f}: {(x != y).sum()} entries differ"


def ranked_fields():
    return ("items", "scores", "flags")


# --- tests ---------------------------------------------------------------------------------


def test_the_data_exercises_every_filter(network):
    snap, ctx, first = network["snap"], network["ctx"], network["first"]
    stats = thread_stats(ctx)
    live = np.flatnonzero(stats.live)
    assert 0 < len(live) < snap.n_threads  # live and dead threads
    root = ctx.graph.thread_root_author[live]
    hidden_roots = (root >= 0) & ~snap.discoverable[np.maximum(root, 0)]
    assert hidden_roots.any()
    blocked = set(zip(snap.block_src.tolist(), snap.block_dst.tolist(), strict=True))
    blocked |= set(zip(snap.mute_src.tolist(), snap.mute_dst.tolist(), strict=True))
    assert {a for pair in blocked for a in pair} & set(root[root >= 0].tolist())
    # Someone follows a person they mute or block (or who mutes or blocks them) (the case the
    # old formulation got wrong: it subtracted follows from the exclusion pairs).
    follows = set(zip(snap.follow_src.tolist(), snap.follow_dst.tolist(), strict=True))
    assert follows & (blocked | {(b, a) for a, b in blocked})
    assert sum(kind == "thread" for _, kind, _ in snap.dismissed) > 20
    assert (first.items >= 0).sum(axis=1).max() == ctx.params.max_conversations  # lists get cut


def test_thread_stats_match_the_reference(network):
    ctx = network["ctx"]
    assert_same(
        thread_stats(ctx),
        reference_thread_stats(ctx),
        ("live", "participants", "answered_rate", "tribe", "recent_posts"),
    )
    assert (thread_stats(ctx).tribe >= 0).any()


@pytest.mark.parametrize(("chunk", "threads"), [(4_000, 1), (97, 1), (97, 2)])
@pytest.mark.parametrize(
    ("width", "momentum", "open_weight"),
    [(30, 0.0, 0.0), (4, 0.0, 0.0), (30, 1.0, 0.0), (30, 0.5, 0.1), (4, 0.0, 0.2)],
)
def test_ranking_matches_the_reference(
    network, monkeypatch, chunk, threads, width, momentum, open_weight
):
    monkeypatch.setattr(conversations, "_CHUNK", chunk)
    params = replace(
        network["params"],
        max_conversations=width,
        thread_momentum=momentum,
        w_thread_open=open_weight,
    )
    ctx = replace(network["ctx"], params=params)
    stats = thread_stats(ctx)
    with workers(threads):
        got = rank_conversations(ctx, stats)
    want = reference_rank_conversations(ctx, stats)
    assert_same(got, want, ranked_fields())
    assert (got.items >= 0).sum() > 0.5 * got.items.shape[0] * min(width, 10)


def test_momentum_moves_busy_threads_up_and_zero_ignores_activity(network):
    """With ``thread_momentum`` 1 the lists' threads are busier (more posts in the live window)
    than with 0; the scores' ratio between the two settings is exactly the momentum factor."""
    ctx = network["ctx"]
    stats = thread_stats(ctx)
    quiet = rank_conversations(ctx, stats)
    busy = rank_conversations(replace(ctx, params=replace(ctx.params, thread_momentum=1.0)), stats)

    def mean_recent(items):
        return stats.recent_posts[items[items >= 0]].mean()

    assert mean_recent(busy.items[:, :5]) > 1.2 * mean_recent(quiet.items[:, :5])
    u, j = np.nonzero(busy.items >= 0)
    same = quiet.items[u, j] == busy.items[u, j]
    t = busy.items[u, j][same]
    np.testing.assert_allclose(
        busy.scores[u, j][same], quiet.scores[u, j][same] * (1.0 + stats.recent_posts[t]), rtol=1e-5
    )


def test_open_threads_reach_users_with_no_tribe_topic_or_contact_and_everyone_only_with_a_weight(
    network,
):
    """``w_thread_open`` > 0 offers the most welcoming live threads to everyone, flagged
    ``open_to_all``: a user with no tribe, no topics and no contacts gets them, best first.
    With the default 0 only such a newcomer gets them (``welcome_newcomers``); with that 0 too
    they get nothing and no thread carries the flag."""
    ctx = network["ctx"]
    n = ctx.snap.n_users
    lonely = n - 1  # cut off from every source: no membership, topic or interaction
    keep = sp.diags((np.arange(n) != lonely).astype(np.float32))
    users = ctx.graph.users
    row = np.repeat(np.arange(n), np.diff(users.indptr))
    strength = np.where((row == lonely) | (users.indices == lonely), 0, users.strength).astype(
        np.float32
    )
    graph = replace(
        ctx.graph,
        users=replace(users, strength=strength),
        user_topic=(keep @ ctx.graph.user_topic).tocsr(),
        user_thread=(keep @ ctx.graph.user_thread).tocsr(),
    )
    alone = replace(ctx, graph=graph, memberships=(keep @ ctx.memberships).tocsr())
    stats = thread_stats(alone)
    closed = rank_conversations(
        replace(alone, params=replace(alone.params, welcome_newcomers=0)), stats
    )
    assert (closed.items[lonely] == -1).all()
    assert not (closed.flags & conversations.THREAD_FLAGS["open_to_all"]).any()
    welcomed = rank_conversations(alone, stats)
    flagged = (welcomed.flags & conversations.THREAD_FLAGS["open_to_all"]) > 0
    assert (
        flagged[lonely][welcomed.items[lonely] >= 0].all()
        and (welcomed.items[lonely] >= 0).sum() > 0
    )
    assert not flagged[:lonely].any()  # nobody else: they all have threads of their own
    assert (welcomed.items[:lonely] == closed.items[:lonely]).all()
    opened = rank_conversations(
        replace(alone, params=replace(alone.params, w_thread_open=0.1)), stats
    )
    mine = opened.items[lonely][opened.items[lonely] >= 0]
    assert len(mine) == alone.params.max_conversations
    assert (opened.flags[lonely, : len(mine)] & conversations.THREAD_FLAGS["open_to_all"]).all()
    assert (np.diff(opened.scores[lonely, : len(mine)]) <= 0).all()
    others = opened.items[:lonely][opened.items[:lonely] >= 0]
    assert np.isin(mine, others).all()  # the same open threads are everyone's candidates


@pytest.mark.parametrize("open_weight", [0.0, 0.2])
def test_dismissed_hidden_blocked_and_posted_threads_never_come_back(network, open_weight):
    snap, ctx = network["snap"], network["ctx"]
    ctx = replace(ctx, params=replace(ctx.params, w_thread_open=open_weight))
    got = rank_conversations(ctx, thread_stats(ctx))
    rows, slots = np.nonzero(got.items >= 0)
    threads = got.items[rows, slots]
    dismissed = {(u, t) for u, kind, t in snap.dismissed if kind == "thread"}
    assert (
        not {(int(u), str(snap.thread_ids[t])) for u, t in zip(rows, threads, strict=True)}
        & dismissed
    )
    authors = ctx.graph.thread_root_author[threads]
    has = authors >= 0
    assert snap.discoverable[authors[has]].all()
    blocked = set(zip(snap.block_src.tolist(), snap.block_dst.tolist(), strict=True))
    blocked |= set(zip(snap.mute_src.tolist(), snap.mute_dst.tolist(), strict=True))
    blocked |= {(b, a) for a, b in blocked}
    assert not any(
        (int(u), int(a)) in blocked for u, a in zip(rows[has], authors[has], strict=True)
    )
    posted = binary(ctx.graph.user_thread)
    assert not np.asarray(posted[rows, threads]).any()


def test_no_live_threads_gives_empty_lists(network):
    ctx = network["ctx"]
    stats = thread_stats(ctx)
    dead = replace(stats, live=np.zeros_like(stats.live))
    got = rank_conversations(ctx, dead)
    assert (got.items == -1).all() and not got.scores.any() and not got.flags.any()
    assert_same(got, reference_rank_conversations(ctx, dead), ranked_fields())


@pytest.mark.parametrize("seed", range(4))
def test_top_keys_match_top_k_per_row(seed):
    rng = np.random.default_rng(seed)
    m = sp.random(60, 40, density=0.3, format="csr", dtype=np.float32, rng=rng)
    m.data = np.round(m.data * 4) / 4  # many ties, some explicit zeros
    m.data[:3] = -0.0
    for r in range(m.shape[0]):  # the same matrix with unsorted rows (like a sparse product)
        row = slice(m.indptr[r], m.indptr[r + 1])
        m.indices[row], m.data[row] = m.indices[row][::-1].copy(), m.data[row][::-1].copy()
    m = sp.csr_matrix((m.data, m.indices, m.indptr), shape=m.shape)
    for k in (0, 1, 3, 12, 40):
        keys = np.sort(conversations._top_keys(m.copy(), k))
        want = binary(top_k_per_row(m.copy(), k))
        rows = np.repeat(np.arange(m.shape[0]), np.diff(want.indptr))
        assert np.array_equal(keys, rows * m.shape[1] + want.indices)


def test_first_max_per_column_is_argmax():
    rng = np.random.default_rng(3)
    m = sp.random(30, 50, density=0.05, format="csc", dtype=np.float32, rng=rng)
    m.data = np.ceil(m.data * 3)  # counts: ties
    m.sum_duplicates()
    got = conversations._first_max_per_column(m)
    has = np.diff(m.indptr) > 0
    assert np.array_equal(got[has], np.asarray(m.argmax(axis=0)).ravel()[has])
    assert (got[~has] == -1).all() and (~has).any()


def test_first_posts_match_the_sorted_reference():
    rng = np.random.default_rng(8)
    n = 2_000
    thread, author = rng.integers(0, 40, n), rng.integers(-1, 25, n)  # -1: an unknown author
    ts = rng.integers(0, 30, n).astype(np.float64)  # many equal times: ties go to the lower index
    order = np.lexsort((ts, author, thread))
    want = np.ones(n, dtype=bool)
    same = (thread[order][1:] == thread[order][:-1]) & (author[order][1:] == author[order][:-1])
    want[order[1:][same]] = False
    assert np.array_equal(conversations._first_posts(thread, author, ts, 25), want)
    assert not conversations._first_posts(thread[:0], author[:0], ts[:0], 25).any()


def test_pair_dot_is_scipys_sum_bit_for_bit():
    rng = np.random.default_rng(4)
    users = row_normalize(
        top_k_per_row(sp.random(300, 30, density=0.4, format="csr", rng=rng), 10), "l2"
    )
    threads = row_normalize(
        top_k_per_row(sp.random(200, 30, density=0.3, format="csr", rng=rng), 8), "l2"
    )
    users, threads = users.tocsr().astype(np.float32), threads.tocsr().T.tocsr().T.tocsr()
    rows, cols = np.sort(rng.integers(0, 300, 5_000)), rng.integers(0, 200, 5_000)
    want = np.asarray(users[rows].multiply(threads[cols]).sum(axis=1)).ravel().astype(np.float32)
    got = pair_dots(users.sorted_indices(), rows, cols, threads)
    assert np.array_equal(got, want)
    overlaps = np.diff(binary(users)[rows].multiply(binary(threads)[cols]).tocsr().indptr)
    assert (overlaps >= 3).sum() > 100  # sums of three or more products: their order matters
