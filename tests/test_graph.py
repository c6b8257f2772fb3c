"""The interest graph holds its user×user relations on one CSR pattern (``UserGraph``).

The views (``interaction``, ``talk``, ``follows``) must equal what the graph held when it was
four separate matrices (replies, mentions, follows, interaction), rebuilt here from the
snapshot the old way, and every stage must produce the same output from either.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

import tribes.model
from tribes.graph import FOLLOWS, TALK, build_graph, decay
from tribes.model import TribeModel, _candidates, snapshot_from
from tribes.params import Params
from tribes.ranking import candidate_pairs, pair_features
from tribes.snapshot import Snapshot
from tribes.sparse import binary
from tribes.synth import SynthConfig, generate
from tribes.text import mentions


def _csr(rows, cols, values, n: int) -> sp.csr_matrix:
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    keep = rows != cols
    m = sp.csr_matrix(
        (np.asarray(values, np.float32)[keep], (rows[keep], cols[keep])),
        shape=(n, n),
        dtype=np.float32,
    )
    m.sum_duplicates()
    return m


def old_matrices(snap: Snapshot, p: Params) -> dict[str, sp.csr_matrix]:
    """The four (U, U) matrices ``build_graph`` held before the single pattern."""
    n, now = snap.n_users, snap.now
    child = np.flatnonzero(snap.post_parent >= 0)
    replies = _csr(
        snap.post_author[child],
        snap.post_author[snap.post_parent[child]],
        decay(snap.post_ts[child], now, p.reply_half_life_days),
        n,
    )
    index = snap.user_index()
    pairs = [
        (post, index[h])
        for post, text in enumerate(snap.post_text)
        for h in mentions(text)
        if h in index
    ]
    posts = np.array([a for a, _ in pairs], np.int64)
    mentioned = _csr(
        snap.post_author[posts],
        [b for _, b in pairs],
        decay(snap.post_ts[posts], now, p.reply_half_life_days),
        n,
    )
    follows = _csr(
        snap.follow_src, snap.follow_dst, decay(snap.follow_ts, now, p.follow_half_life_days), n
    )
    strength = (
        p.reply_weight * replies + p.mention_weight * mentioned + p.follow_weight * follows
    ).tocsr()
    interaction = (strength + p.reciprocity_bonus * strength.minimum(strength.T)).tocsr()
    interaction.eliminate_zeros()
    return {
        "replies": replies,
        "mentions": mentioned,
        "follows": follows,
        "interaction": interaction,
    }


def assert_same_csr(got: sp.csr_matrix, want: sp.csr_matrix) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)  # bit for bit, not approximately


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return snapshot_from(generate(SynthConfig(n_users=300, seed=4)))


PARAMS = [
    Params(),
    # Zero weights: those relations leave interaction but still count as talk and follows.
    Params(follow_weight=0.0, mention_weight=0.0),
    Params(reply_weight=0.0, mention_weight=0.0, follow_weight=0.0),
    # Every follow decays to 0.0 in float32: no follows at all, as ``binary`` saw it before.
    Params(follow_half_life_days=1e-9),
]


@pytest.mark.parametrize(
    "params", PARAMS, ids=["defaults", "no-follow-mention", "all-zero", "no-follows"]
)
def test_views_equal_the_old_matrices(snap: Snapshot, params: Params) -> None:
    old = old_matrices(snap, params)
    graph = build_graph(snap, params)
    assert_same_csr(graph.interaction, old["interaction"])
    assert_same_csr(graph.talk, (old["replies"] + old["mentions"]).tocsr())
    assert_same_csr(graph.follows, binary(old["follows"]))
    assert graph.n_users == snap.n_users
    if params == Params():
        assert graph.talk.nnz and graph.follows.nnz and graph.interaction.nnz


def test_pattern_is_the_union_of_the_relations(snap: Snapshot) -> None:
    old = old_matrices(snap, Params())
    users = build_graph(snap, Params()).users
    union = binary(old["interaction"] + old["replies"] + old["mentions"] + binary(old["follows"]))
    assert users.nnz == union.nnz
    np.testing.assert_array_equal(users.indptr, union.indptr)
    np.testing.assert_array_equal(users.indices, union.indices)
    assert users.relations.dtype == np.uint8 and users.strength.dtype == np.float32
    assert int(((users.relations & TALK) > 0).sum()) == users.talk_weight.size
    both = (users.relations & (TALK | FOLLOWS)) == (TALK | FOLLOWS)
    assert both.any()  # a pair can be both, stored once


def test_views_do_not_alias_the_stored_weights(snap: Snapshot) -> None:
    graph = build_graph(snap, Params())
    talk, follows = graph.talk, graph.follows
    talk.data[:] = -1.0
    follows.data[:] = -1.0
    assert (graph.talk.data > 0).all() and (graph.follows.data == 1.0).all()


def test_nbytes_counts_everything_held_and_fits_the_budget(snap: Snapshot) -> None:
    graph = build_graph(snap, Params())
    users = graph.users
    held = (users.indptr, users.indices, users.strength, users.relations, users.talk_weight)
    assert graph.nbytes() == sum(a.nbytes for a in held)
    old = old_matrices(snap, Params())
    edges = sum(old[k].nnz for k in ("replies", "mentions", "follows"))
    old_bytes = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in old.values())
    assert graph.nbytes() / edges <= 12.0 < old_bytes / edges


class _OldGraph:
    """The graph as consumers saw it before: old matrices (follows with their decayed values)."""

    def __init__(self, graph, old: dict[str, sp.csr_matrix]):
        self._graph, self._old = graph, old
        self.interaction = old["interaction"]  # a held matrix, as before

    @property
    def talk(self) -> sp.csr_matrix:  # a new sum on every read, as ``replies + mentions`` was
        return (self._old["replies"] + self._old["mentions"]).tocsr()

    @property
    def follows(self) -> sp.csr_matrix:
        return self._old["follows"].copy()

    def __getattr__(self, name: str):
        if name == "users":
            raise AttributeError(name)
        return getattr(self._graph, name)


def _fit(data: Snapshot):
    model = TribeModel(seed=1).fit(data)
    p = replace(Params(seed=1), **(model.learned_weights_ or {}))
    ctx, candidates, _ = _candidates(data, p, False)
    features = pair_features(ctx, candidates, candidate_pairs(data.n_users, candidates))
    return model, ctx.behaviour, features


def test_model_outputs_identical_with_the_old_matrices(snap: Snapshot, monkeypatch) -> None:
    """Recommendations, tribes, features, behaviour and candidates, fitted on the single-pattern
    graph and on the old matrices (decayed follow values included: no stage may use them)."""
    new, new_behaviour, new_features = _fit(snap)
    with monkeypatch.context() as m:
        m.setattr(
            tribes.model,
            "build_graph",
            lambda s, p: _OldGraph(build_graph(s, p), old_matrices(s, p)),
        )
        old, old_behaviour, old_features = _fit(snap)

    assert len(new.tribes_) > 1 and (new.arrays_["people_items"] >= 0).any()
    np.testing.assert_array_equal(new.labels_, old.labels_)
    assert new.tribes_ == old.tribes_
    assert new.learned_weights_ == old.learned_weights_
    assert new.arrays_.keys() == old.arrays_.keys()
    for key in new.arrays_:
        np.testing.assert_array_equal(new.arrays_[key], old.arrays_[key], err_msg=key)
    assert new.candidates_.keys() == old.candidates_.keys()
    for source in new.candidates_:
        a, b = new.candidates_[source].tocsr(), old.candidates_[source].tocsr()
        assert (a != b).nnz == 0, source
    assert new_features.keys() == old_features.keys()
    for name in new_features:
        np.testing.assert_array_equal(new_features[name], old_features[name], err_msg=name)
    for name in ("followers", "reached_by", "answered", "answer_rate", "activity"):
        np.testing.assert_array_equal(getattr(new_behaviour, name), getattr(old_behaviour, name))
    assert (new_behaviour.answer_rate_by_tribe != old_behaviour.answer_rate_by_tribe).nnz == 0


def test_reached_and_answered_count_replies_mentions_and_follows(snap: Snapshot) -> None:
    """``measure_behaviour`` reads contact as a reply, a mention or a follow (old matrices)."""
    from tribes.behaviour import measure_behaviour

    old = old_matrices(snap, Params())
    reached = binary(old["replies"] + old["mentions"] + old["follows"])  # row reached column
    answered = reached.T.multiply(reached).tocsr()
    labels = np.full(snap.n_users, -1, np.int64)
    b = measure_behaviour(snap, build_graph(snap, Params()), labels, Params())
    np.testing.assert_array_equal(b.reached_by, np.asarray(reached.sum(axis=0)).ravel())
    np.testing.assert_array_equal(b.answered, np.asarray(answered.sum(axis=1)).ravel())
    assert b.answered.sum() > 0


def test_user_topics_weigh_posts_by_their_length(snap: Snapshot) -> None:
    plain = build_graph(snap, Params(topic_length_exponent=0.0)).user_topic
    weighed = build_graph(snap, Params()).user_topic
    # The same topics in the same places; only the weights differ, by the post lengths
    # (tests/test_text.py checks the weights themselves).
    assert (plain != 0).toarray().tolist() == (weighed != 0).toarray().tolist()
    assert not np.allclose(plain.toarray(), weighed.toarray())
