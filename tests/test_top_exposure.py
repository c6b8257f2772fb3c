"""The top-exposure cap in people ranking: the top 1% of accounts (by followers, by replies
received) fill at most ``top_exposure_cap`` of the list slots of every list prefix.

* :func:`tribes.ranking.top_accounts` is the evaluation's own definition;
* the compiled queue split equals the numpy form the Spark engine uses, and merging the queues
  without a cap gives the uncapped lists;
* :func:`tribes.ranking.cap_top_exposure` equals a slow, obviously-correct reference;
* on a network whose most followed and most replied-to accounts score best, ``rank_people``
  holds the cap at every k, keeps every list full, only moves top accounts down, and gives
  the same lists in one block or in many.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from tribes import ranking
from tribes.evaluation import metrics as M
from tribes.ingest import ingest_objects
from tribes.kernels_rank import split_diversified_lists
from tribes.model import _candidates, snapshot_from
from tribes.params import Params
from tribes.store import Store
from tribes.synth import SynthConfig, generate


# --- the cap step on its own -------------------------------------------------------------------
def _random_pairs(seed: int, users: int = 60, items: int = 200, pairs: int = 3000):
    rng = np.random.default_rng(seed)
    key = np.unique(rng.integers(0, users, pairs) * items + rng.integers(0, items, pairs))
    rows, cols = key // items, key % items
    score = rng.integers(1, 6, len(rows)).astype(np.float32) / 5  # many ties
    tribe = rng.integers(-1, 5, items)
    top = rng.random(items) < 0.15
    return rows, cols, score, tribe, top


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_kernel_equals_the_numpy_queues_and_merges_to_the_uncapped_lists(seed):
    rows, cols, score, tribe, top = _random_pairs(seed)
    users, width = 60, 7
    starts = np.searchsorted(rows, np.arange(users + 1))
    top_pair, top_score, other_pair, other_score = split_diversified_lists(
        starts, score, cols.astype(np.int32), tribe, top, 0.9, width
    )
    keep, position, damped = ranking.split_lists(
        rows, cols, score, tribe[cols], top[cols], 0.9, width
    )
    for pair, queue_score, is_top in (
        (top_pair, top_score, True),
        (other_pair, other_score, False),
    ):
        mine = np.flatnonzero(keep & (top[cols] == is_top))
        want = np.full((users, width), -1)
        want[rows[mine], position[mine]] = mine
        assert np.array_equal(pair, want)
        assert np.array_equal(queue_score[pair >= 0], damped[pair[pair >= 0]])
    # No cap: the merged queues are the diversified lists.
    take, capped = ranking.cap_top_exposure(
        top_pair, top_score, other_pair, other_score, 1.0, 0, rows=np.arange(users), candidate=cols
    )
    merged = np.take_along_axis(
        np.concatenate([other_pair, top_pair], axis=1), np.maximum(take, 0), axis=1
    )
    merged[take < 0] = -1
    # ...as the plain numpy steps give them: diversity, then positions.
    damped_all = ranking.diversify(rows, cols, score, tribe[cols], 0.9)
    at = ranking.list_positions(rows, cols, damped_all)
    listed = at < width
    want_pair = np.full((users, width), -1)
    want_score = np.zeros((users, width), dtype=np.float32)
    want_pair[rows[listed], at[listed]] = np.flatnonzero(listed)
    want_score[rows[listed], at[listed]] = damped_all[listed]
    assert np.array_equal(merged, want_pair)
    assert np.array_equal(capped, want_score)


def _reference_cap(top, top_score, other, other_score, cap, seed):
    """Position by position, user by user, in plain Python."""
    users, width = top.shape
    queues = [
        (
            [(float(top_score[u, j]), int(top[u, j])) for j in range(width) if top[u, j] >= 0],
            [
                (float(other_score[u, j]), int(other[u, j]))
                for j in range(width)
                if other[u, j] >= 0
            ],
        )
        for u in range(users)
    ]
    lists = [[] for _ in range(users)]
    length = [min(width, len(t) + len(o)) for t, o in queues]
    filled = placed = 0
    for j in range(width):
        forced, optional, others = [], [], []
        for u in range(users):
            if length[u] <= j:
                continue
            filled += 1
            t, o = queues[u]
            if t and (not o or t[0][0] > o[0][0] or (t[0][0] == o[0][0] and t[0][1] < o[0][1])):
                (optional if o else forced).append(u)
            else:
                others.append(u)
        room = max(int(np.floor(cap * filled + 1e-9)) - placed - len(forced), 0)
        tiebreak = {
            u: int(ranking.pair_hash(np.array([u]), np.array([queues[u][0][0][1]]), seed)[0])
            for u in optional
        }
        optional.sort(key=lambda u: (-queues[u][0][0][0], tiebreak[u]))
        winners = forced + optional[:room]
        placed += len(winners)
        for u in winners:
            lists[u].append(("top", *queues[u][0].pop(0)))
        for u in optional[room:] + others:
            lists[u].append(("other", *queues[u][1].pop(0)))
    return lists


@pytest.mark.parametrize(("seed", "cap"), [(0, 0.2), (1, 0.05), (2, 0.5), (3, 0.0), (4, 1.0)])
def test_cap_equals_the_slow_reference(seed, cap):
    rng = np.random.default_rng(seed)
    users, width = 40, 6

    def queue(size_max):
        items = np.full((users, width), -1)
        scores = np.zeros((users, width), dtype=np.float32)
        for u in range(users):
            k = int(rng.integers(0, size_max + 1))
            items[u, :k] = np.sort(rng.choice(100, k, replace=False))
            scores[u, :k] = -np.sort(-rng.integers(1, 6, k).astype(np.float32) / 5)
        return items, scores

    (top, top_score), (other, other_score) = queue(width), queue(width)
    other[:3] = -1  # users with only top accounts: forced
    other_score[:3] = 0
    take, capped = ranking.cap_top_exposure(
        top, top_score, other, other_score, cap, 7, rows=np.arange(users)
    )
    want = _reference_cap(top, top_score, other, other_score, cap, 7)
    for u in range(users):
        got = [
            ("top", float(top_score[u, t - width]), int(top[u, t - width]))
            if t >= width
            else ("other", float(other_score[u, t]), int(other[u, t]))
            for t in take[u]
            if t >= 0
        ]
        assert got == want[u]
        shown = [s for _, s, _ in got]
        assert np.array_equal(
            capped[u, : len(got)], np.minimum.accumulate(np.array(shown, np.float32))
        )


# --- rank_people on a network whose top accounts score best -------------------------------------
@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    """Candidates of a synthetic network with many broadcasters, the top accounts made ideal
    (they answer everyone, always active) and no popularity damping: uncapped, they crowd
    the heads of the lists."""
    root = tmp_path_factory.mktemp("cap")
    store = Store.open(f"sqlite:///{root / 'tribes.db'}")
    assert ingest_objects(
        store, generate(SynthConfig(n_users=600, seed=3, broadcaster_share=0.05))
    ).committed
    snap = snapshot_from(store)
    store.close()
    ctx, candidates, _ = _candidates(snap, Params(seed=1, popularity_floor=1.0).validate(), False)
    top = ranking.top_accounts(ctx.snap, ctx.behaviour.followers)
    b = ctx.behaviour
    ideal = replace(
        b,
        answer_rate=np.where(top, 1.0, b.answer_rate).astype(np.float32),
        activity=np.where(top, 1.0, b.activity).astype(np.float32),
        answer_rate_by_tribe=sp.csr_matrix(b.answer_rate_by_tribe.shape, dtype=np.float32),
    )
    return replace(ctx, behaviour=ideal), candidates, top


def _with(ctx, **changes):
    return replace(ctx, params=replace(ctx.params, **changes))


def _prefix_shares(items: np.ndarray, top: np.ndarray) -> np.ndarray:
    filled = items >= 0
    on_top = filled & top[np.maximum(items, 0)]
    return on_top.sum(axis=0).cumsum() / np.maximum(filled.sum(axis=0).cumsum(), 1)


def test_top_accounts_are_the_evaluations_top_one_percent(heavy):
    ctx, _, top = heavy
    snap = ctx.snap
    followers = np.bincount(snap.follow_dst, minlength=snap.n_users)  # as tribes.evaluation.report
    reply = snap.post_parent >= 0
    replied = np.asarray(
        sp.csr_matrix(
            (
                np.ones(int(reply.sum())),
                (snap.post_author[reply], snap.post_author[snap.post_parent[reply]]),
            ),
            shape=(snap.n_users, snap.n_users),
        ).sum(axis=0)
    ).ravel()
    want = np.union1d(M.top_percent(followers), M.top_percent(replied))
    assert (
        followers[M.top_percent(followers)].min() > 0 and replied[M.top_percent(replied)].min() > 0
    )
    assert np.array_equal(np.flatnonzero(top), want)
    # Accounts with nothing are never "top", even when 1% of the users would need them.
    empty = replace(snap, post_parent=np.full_like(snap.post_parent, -1))
    assert np.array_equal(
        ranking.top_accounts(empty, followers),
        np.isin(np.arange(snap.n_users), M.top_percent(followers)),
    )
    assert not ranking.top_accounts(empty, np.zeros_like(followers)).any()


@pytest.mark.parametrize("cap", [0.2, 0.05])
def test_rank_people_holds_the_cap_at_every_k_and_keeps_lists_full(heavy, cap):
    ctx, candidates, top = heavy
    free = ranking.rank_people(_with(ctx, top_exposure_cap=1.0), candidates)
    assert _prefix_shares(free.items, top)[0] > 0.4  # uncapped, the top accounts lead most lists
    capped = ranking.rank_people(_with(ctx, top_exposure_cap=cap), candidates)
    shares = _prefix_shares(capped.items, top)
    assert shares.max() <= cap + 1e-12
    assert shares[0] >= cap - 0.01  # the cap is used, not undershot
    # full lists
    assert np.array_equal((capped.items >= 0).sum(axis=1), (free.items >= 0).sum(axis=1))
    assert (np.diff(capped.scores, axis=1) <= 0).all()
    flag_of = {
        (u, c): f
        for u, row in enumerate(free.items)
        for c, f in zip(row, free.flags[u], strict=True)
    }
    for u in range(len(capped.items)):
        row = capped.items[u][capped.items[u] >= 0]
        mine, was = row[~top[row]], free.items[u][free.items[u] >= 0]
        # Only top accounts move down: the others keep their order and are the next ones.
        assert np.array_equal(mine[: np.count_nonzero(~top[was])], was[~top[was]][: len(mine)])
        assert len(set(row.tolist())) == len(row)
        for c, f in zip(row, capped.flags[u][: len(row)], strict=True):
            if (u, c) in flag_of:
                assert f == flag_of[u, c]
    # The tail of the lists: more top accounts come back once the heads are capped.
    assert (capped.items >= 0).sum() == (free.items >= 0).sum()


def test_capped_lists_are_the_same_in_one_block_or_many(heavy, monkeypatch):
    ctx, candidates, top = heavy
    ctx = _with(ctx, top_exposure_cap=0.1)
    whole = ranking.rank_people(ctx, candidates)
    assert _prefix_shares(whole.items, top).max() <= 0.1 + 1e-12
    monkeypatch.setattr(ranking, "_SCORE_CHUNK", 500)
    assert len(ranking._row_blocks(candidates, ctx.snap.n_users, 500)) > 10
    blocks = ranking.rank_people(ctx, candidates)
    assert np.array_equal(whole.items, blocks.items)
    assert np.array_equal(whole.scores, blocks.scores)
    assert np.array_equal(whole.flags, blocks.flags)
