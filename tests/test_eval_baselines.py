"""Evaluation baselines: one shared suite every model passes, and tiny graphs with known answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from tribes.evaluation.base import EvalModel
from tribes.evaluation.baselines import BASELINES, _filtered, _top_k_dense, _top_k_sparse
from tribes.model import snapshot_from
from tribes.synth import SynthConfig, generate

K = 15


def user(uid: str, *tags: str, discoverable: bool = True) -> dict:
    return {
        "type": "user",
        "id": uid,
        "ts": 1_000,
        "interests": list(tags),
        "discoverable": discoverable,
    }


def follow(src: str, dst: str, ts: int = 2_000) -> dict:
    return {"type": "follow", "src": src, "dst": dst, "ts": ts}


def post(pid: str, author: str, reply_to: str | None = None, *, ts: int = 3_000, tags=()) -> dict:
    event = {
        "type": "post",
        "id": pid,
        "author": author,
        "ts": ts,
        "text": "hello there",
        "tags": list(tags),
    }
    if reply_to:
        event["reply_to"] = reply_to
    return event


def people(model: EvalModel, snap, who: str, k: int = 5) -> list[str]:
    row = model.recommend_people(np.array([snap.user_index()[who]]), k)[0]
    return [str(snap.user_ids[i]) for i in row if i >= 0]


def threads(model: EvalModel, snap, who: str, k: int = 5) -> list[str]:
    row = model.recommend_threads(np.array([snap.user_index()[who]]), k)[0]
    return [str(snap.thread_ids[i]) for i in row if i >= 0]


# --- the shared suite ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def snap():
    """300 synthetic users, with dismissals of the most followed people added."""
    base = snapshot_from(list(generate(SynthConfig(n_users=300, seed=2))))
    popular = np.argsort(-np.bincount(base.follow_dst, minlength=base.n_users))[:3]
    dismissed = [
        (u, "user", str(base.user_ids[c])) for u in range(0, base.n_users, 3) for c in popular
    ]
    return dataclasses.replace(base, dismissed=dismissed)


def forbidden_people(snap) -> sp.csr_matrix:
    """Every pair the filters forbid, built without the engine's helpers."""
    n, index = snap.n_users, snap.user_index()
    pairs = {(u, u) for u in range(n)}
    pairs |= set(zip(snap.follow_src.tolist(), snap.follow_dst.tolist(), strict=True))
    for src, dst in ((snap.block_src, snap.block_dst), (snap.mute_src, snap.mute_dst)):
        for a, b in zip(src.tolist(), dst.tolist(), strict=True):
            pairs |= {(a, b), (b, a)}
    pairs |= {(u, index[t]) for u, kind, t in snap.dismissed if kind == "user" and t in index}
    pairs |= {(u, int(h)) for u in range(n) for h in np.flatnonzero(~snap.discoverable)}
    rows, cols = zip(*pairs, strict=True)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def forbidden_threads(snap) -> set[tuple[int, int]]:
    return set(zip(snap.post_author.tolist(), snap.post_thread.tolist(), strict=True))


@pytest.fixture(scope="module", params=sorted(BASELINES))
def fitted(request, snap):
    model = BASELINES[request.param](seed=3)
    assert model.fit(snap) is model
    users = np.arange(snap.n_users)
    return model, model.recommend_people(users, K), model.recommend_threads(users, K)


def test_the_data_exercises_every_filter(snap):
    assert (
        len(snap.block_src) and len(snap.mute_src) and (~snap.discoverable).any() and snap.dismissed
    )


def test_models_follow_the_protocol(fitted):
    model, _, _ = fitted
    assert isinstance(model, EvalModel)
    assert model.name in BASELINES and BASELINES[model.name] is type(model)


@pytest.mark.parametrize("kind", ["people", "threads"])
def test_lists_are_well_formed(fitted, snap, kind):
    _, people_items, thread_items = fitted
    items = people_items if kind == "people" else thread_items
    n_items = snap.n_users if kind == "people" else snap.n_threads
    assert items.shape == (snap.n_users, K) and items.dtype == np.int32
    assert ((items >= -1) & (items < n_items)).all()
    padding = items < 0
    assert not (padding[:, :-1] & ~padding[:, 1:]).any(), "-1 must only pad the end of a row"
    for row in items:
        listed = row[row >= 0]
        assert len(set(listed.tolist())) == len(listed), f"duplicates in {row}"
    assert (~padding).sum() > snap.n_users, f"{kind}: almost nothing suggested"


def test_no_forbidden_person(fitted, snap):
    _, items, _ = fitted
    rows, slots = np.nonzero(items >= 0)
    proposed = sp.csr_matrix(
        (np.ones(len(rows)), (rows, items[rows, slots])), shape=(snap.n_users,) * 2
    )
    assert proposed.multiply(forbidden_people(snap)).nnz == 0


def test_no_thread_the_user_posted_in(fitted, snap):
    _, _, items = fitted
    rows, slots = np.nonzero(items >= 0)
    posted = forbidden_threads(snap)
    assert not [
        (u, t)
        for u, t in zip(rows.tolist(), items[rows, slots].tolist(), strict=True)
        if (u, t) in posted
    ]


def test_deterministic_and_independent_of_the_other_users_asked_for(fitted, snap):
    model, people_items, thread_items = fitted
    again = BASELINES[model.name](**model.get_params()).fit(snap)
    users = np.arange(snap.n_users)
    np.testing.assert_array_equal(again.recommend_people(users, K), people_items)
    np.testing.assert_array_equal(again.recommend_threads(users, K), thread_items)
    some = np.array([250, 7, 7, 120])
    np.testing.assert_array_equal(model.recommend_people(some, K), people_items[some])
    np.testing.assert_array_equal(model.recommend_threads(some, K), thread_items[some])


def test_every_batch_shape_gives_the_same_lists(fitted):
    # ALS once reordered threads with equal factors (217/218) when asked for 4 users instead of
    # 300: its float32 GEMM rounds a dot product differently with the batch's shape.
    model, people_items, thread_items = fitted
    order = np.random.default_rng(5).permutation(len(people_items))
    for size in (1, 2, 3, 4, 7, 33, 150):
        some = order[:size]
        np.testing.assert_array_equal(model.recommend_people(some, K), people_items[some])
        np.testing.assert_array_equal(model.recommend_threads(some, K), thread_items[some])


def test_edge_cases_of_k_and_users(fitted):
    model, _, _ = fitted
    assert model.recommend_people(np.zeros(0, np.int64), K).shape == (0, K)
    assert model.recommend_threads(np.array([1, 2]), 0).shape == (2, 0)
    with pytest.raises(IndexError, match="users"):
        model.recommend_people(np.array([10**6]), K)
    with pytest.raises(ValueError, match="k"):
        model.recommend_threads(np.array([0]), -1)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_a_network_without_edges_or_posts(name):
    snap = snapshot_from([user("a"), user("b"), user("c", discoverable=False)])
    model = BASELINES[name]().fit(snap)
    people_items = model.recommend_people(np.arange(3), 4)
    if name == "random":  # anyone discoverable but oneself: c is hidden
        assert [sorted(row[row >= 0]) for row in people_items] == [[1], [0], [0, 1]]
    else:  # nothing to go on
        assert people_items.tolist() == [[-1] * 4] * 3
    assert model.recommend_threads(np.arange(3), 4).tolist() == [[-1] * 4] * 3


def test_params_are_stored_and_validated_in_fit():
    model = BASELINES["ppr"](alpha=2.0, seed=5)
    assert model.get_params()["alpha"] == 2.0 and model.get_params()["seed"] == 5
    with pytest.raises(ValueError, match="alpha"):
        model.fit(snapshot_from([user("a")]))
    assert model.set_params(alpha=0.2).alpha == 0.2
    with pytest.raises(TypeError, match="unknown"):
        BASELINES["content"](no_such_param=1)
    with pytest.raises(RuntimeError, match="not fitted"):
        BASELINES["random"]().recommend_people(np.array([0]), 3)


# --- known answers ----------------------------------------------------------------------------------
def test_popularity_ranks_the_most_followed_first():
    events = [user(u) for u in "abcdef"]
    events += [follow(s, "b") for s in "cdef"] + [follow(s, "c") for s in "de"] + [follow("f", "d")]
    events += [post("p1", "e"), post("p2", "f", "p1"), post("p3", "d", "p1"), post("q1", "c")]
    snap = snapshot_from(events)
    model = BASELINES["popularity"]().fit(snap)
    assert people(model, snap, "a") == ["b", "c", "e", "d"]  # c, e: 2 each; e by replies
    assert people(model, snap, "f") == ["c", "e"]  # b and d are followed already
    assert threads(model, snap, "a") == ["p1", "q1"]
    assert threads(model, snap, "e") == ["q1"]


def test_friends_of_friends_closes_the_obvious_triangle():
    # Two triangles sharing x: {b, c, x} and {x, d, e}; newcomer a knows b and c.
    events = [user(u) for u in "abcdex"]
    events += [
        follow("b", "c"),
        follow("c", "x"),
        follow("x", "b"),
        follow("x", "d"),
        follow("d", "e"),
        follow("e", "x"),
        follow("a", "b"),
        follow("a", "c"),
    ]
    events += [post("t1", "b"), post("t2", "d"), post("r1", "c", "t1")]
    snap = snapshot_from(events)
    model = BASELINES["friends-of-friends"]().fit(snap)
    assert people(model, snap, "a") == ["x"]
    assert threads(model, snap, "a") == ["t1"]


def test_friends_of_friends_counts_a_quiet_common_friend_more_than_a_hub():
    events = [user(u) for u in ["a", "hub", "p", "q", "r", *(f"z{i}" for i in range(8))]]
    events += [follow("a", "hub"), follow("hub", "p"), follow("a", "q"), follow("q", "r")]
    events += [follow(f"z{i}", "hub") for i in range(8)]
    snap = snapshot_from(events)
    model = BASELINES["friends-of-friends"]().fit(snap)
    assert people(model, snap, "a", 3)[0] == "r"


def test_content_ranks_the_user_with_identical_tags_first():
    events = [
        user("a", "rust", "go"),
        user("b", "rust", "go"),
        user("c", "rust", "python"),
        user("d", "cooking", "baking"),
        user("e", "cooking", "python"),
    ]
    events += [post("t1", "d", tags=["cooking"]), post("t2", "c", tags=["rust", "go"])]
    snap = snapshot_from(events)
    model = BASELINES["content"](min_df=2).fit(snap)
    assert people(model, snap, "a") == ["b", "c"]
    assert threads(model, snap, "a") == ["t2"]


def test_content_length_exponent_lets_a_long_post_outweigh_short_comments():
    def text_post(pid, author, text):
        return {**post(pid, author), "text": text}

    long = "kayak paddle river rapids eddy " * 4
    events = [user(u) for u in "abc"] + [
        text_post("p1", "a", long),
        text_post("p2", "a", "oops typo"),
        text_post("p3", "a", "oops typo"),
        text_post("p4", "b", long),
        text_post("p5", "c", "oops typo"),
        text_post("p6", "c", "oops typo"),
    ]
    snap = snapshot_from(events)
    kw = {"min_df": 2, "max_df_share": 1.0, "half_life_days": 0}
    # Every post alike: two one-line comments make "a" closer to "c", who only writes those.
    assert people(BASELINES["content"](**kw).fit(snap), snap, "a") == ["c", "b"]
    # Weighed by length (20 terms against the median 2): the kayak post is what "a" is about.
    assert people(BASELINES["content"](length_exponent=0.5, **kw).fit(snap), snap, "a") == [
        "b",
        "c",
    ]
    with pytest.raises(ValueError, match="length_exponent"):
        BASELINES["content"](length_exponent=-1).fit(snap)


def test_ppr_prefers_the_closer_node():
    events = [user(u) for u in "abcdef"] + [
        follow("a", "b"),
        follow("b", "c"),
        follow("c", "d"),
        follow("d", "e"),
    ]
    events += [post("t_far", "e"), post("t_near", "c")]
    snap = snapshot_from(events)
    model = BASELINES["ppr"]().fit(snap)
    assert people(model, snap, "a") == ["c", "d", "e"]  # f is isolated: no mass reaches it
    assert threads(model, snap, "a") == ["t_near", "t_far"]


def test_als_suggests_within_the_block_on_a_checkerboard():
    # Two groups of six: member i follows and replies to every group-mate but i + 1 (the
    # threads are rooted by the members). Rank-2 ALS must fill each gap from the same group.
    groups = {g: [f"{g}{i}" for i in range(6)] for g in "AB"}
    events = [user(u) for members in groups.values() for u in members]
    for members in groups.values():
        events += [post(f"{u}-root", u) for u in members]
        for i, u in enumerate(members):
            gap = (i + 1) % 6
            events += [follow(u, v) for j, v in enumerate(members) if j not in (i, gap)]
            events += [
                post(f"{u}-{v}", u, f"{v}-root") for j, v in enumerate(members) if j not in (i, gap)
            ]
    snap = snapshot_from(events)
    model = BASELINES["als"](factors=2, iterations=20, seed=1).fit(snap)
    for members in groups.values():
        for i, u in enumerate(members):
            gap = members[(i + 1) % 6]
            suggested = people(model, snap, u, 3)
            assert suggested and suggested[0] == gap, (u, suggested)
            joined = threads(model, snap, u, 3)
            assert joined and joined[0] == f"{gap}-root", (u, joined)


def test_random_covers_every_allowed_item_when_k_is_large(snap):
    model = BASELINES["random"](seed=1).fit(snap)
    users = np.arange(0, snap.n_users, 7)
    allowed_people = forbidden_people(snap)[users].toarray() == 0
    items = model.recommend_people(users, snap.n_users)
    for row, allowed in zip(items, allowed_people, strict=True):
        assert set(row[row >= 0].tolist()) == set(np.flatnonzero(allowed).tolist())
    posted = forbidden_threads(snap)
    items = model.recommend_threads(users, snap.n_threads)
    for u, row in zip(users.tolist(), items, strict=True):
        assert len(row[row >= 0]) == snap.n_threads - sum(1 for a, _ in posted if a == u)
    assert not np.array_equal(
        BASELINES["random"](seed=2).fit(snap).recommend_people(users, 5),
        model.recommend_people(users, 5),
    )


def slow_top_k(
    dense: np.ndarray, excluded: sp.csr_matrix, hidden: np.ndarray, k: int
) -> np.ndarray:
    """The obviously correct ranking: per row, sort allowed positive entries by (-score, column)."""
    out = np.full((dense.shape[0], k), -1, dtype=np.int32)
    for r, row in enumerate(dense):
        ok = [c for c in range(len(row)) if row[c] > 0 and not hidden[c] and not excluded[r, c]]
        best = sorted(ok, key=lambda c, row=row: (-row[c], c))[:k]
        out[r, : len(best)] = best
    return out


def test_fast_rankings_match_the_slow_reference():
    rng = np.random.default_rng(0)
    for _ in range(30):
        b, n, k = int(rng.integers(1, 8)), int(rng.integers(1, 60)), int(rng.integers(0, 12))
        block = sp.random(b, n, density=0.5, random_state=rng, format="csr")
        block.data = rng.integers(-2, 4, block.nnz).astype(np.float64)  # ties, zeros, negatives
        excluded = sp.random(b, n, density=0.2, random_state=rng, format="csr")
        excluded.data[:] = 1
        hidden = rng.random(n) < 0.2
        expected = slow_top_k(block.toarray(), excluded, hidden, k)
        np.testing.assert_array_equal(
            _top_k_sparse(_filtered(block, excluded, hidden), k), expected
        )
        np.testing.assert_array_equal(_top_k_dense(block.toarray(), excluded, hidden, k), expected)
