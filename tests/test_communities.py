"""Tribe finding on tiny synthetic graphs whose right answer is known."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from tribes.communities import (
    conductance,
    detect_communities,
    label_tribes,
    match_tribe_ids,
    modularity,
    tribe_affinities,
)

N_GROUPS, GROUP = 6, 40


def symmetric(i, j, w, n: int) -> sp.csr_matrix:
    """A symmetric CSR from one direction of each edge (zero diagonal)."""
    i, j, w = np.asarray(i), np.asarray(j), np.asarray(w, dtype=float)
    a = sp.coo_matrix((w, (i, j)), shape=(n, n)).tocsr()
    a = a + a.T
    a.setdiag(0)
    a.eliminate_zeros()
    return a.tocsr()


def planted(seed: int = 7, extra: int = 0, p_in: float = 0.3, p_out: float = 0.01):
    """6 groups of 40 with random weights, one broadcaster weakly tied to everyone, and
    ``extra`` isolated users at the end. Returns (affinity, truth, broadcaster index)."""
    rng = np.random.default_rng(seed)
    n = N_GROUPS * GROUP
    truth = np.repeat(np.arange(N_GROUPS), GROUP)
    i, j = np.triu_indices(n, k=1)
    p = np.where(truth[i] == truth[j], p_in, p_out)
    hit = rng.random(i.size) < p
    i, j = i[hit], j[hit]
    w = rng.uniform(0.5, 1.5, i.size)
    b = n  # the broadcaster: a weak one-way-follow weight to every user
    i, j = np.r_[i, np.full(n, b)], np.r_[j, np.arange(n)]
    w = np.r_[w, np.full(n, 0.05)]
    a = symmetric(i, j, w, n + 1 + extra)
    return a, np.r_[truth, -1, np.full(extra, -1)], b


def nmi(x: np.ndarray, y: np.ndarray) -> float:
    """Normalised mutual information, arithmetic mean of the entropies (sklearn's default)."""
    _, x = np.unique(x, return_inverse=True)
    _, y = np.unique(y, return_inverse=True)
    joint = np.zeros((x.max() + 1, y.max() + 1))
    np.add.at(joint, (x, y), 1)
    joint /= joint.sum()
    px, py = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = np.sum(joint[nz] * np.log(joint[nz] / np.outer(px, py)[nz]))
    hx, hy = -np.sum(px * np.log(px)), -np.sum(py * np.log(py))
    return float(2 * mi / (hx + hy)) if hx + hy > 0 else 1.0


# detect_communities ---------------------------------------------------------------------------


def test_recovers_planted_partition_despite_broadcaster():
    a, truth, b = planted()
    labels = detect_communities(a, seed=0)
    assert labels.dtype == np.int32 and labels.shape == (a.shape[0],)
    people = truth >= 0
    assert nmi(labels[people], truth[people]) >= 0.95
    assert labels.max() == N_GROUPS - 1
    assert labels[b] >= 0  # the broadcaster joins some tribe but does not merge them


def test_shuffled_user_order_recovers_the_same_tribes_for_each_user():
    # detect_communities renumbers users for locality before Leiden and maps the result back:
    # a tribe must come back on the users that form it, whatever their order.
    a, truth, _ = planted(seed=11)
    perm = np.random.default_rng(2).permutation(a.shape[0])
    labels = detect_communities(a[perm][:, perm].tocsr(), seed=0)
    people = truth[perm] >= 0
    assert nmi(labels[people], truth[perm][people]) >= 0.95


def test_labels_numbered_by_decreasing_size():
    a, _, _ = planted()
    labels = detect_communities(a)
    sizes = np.bincount(labels[labels >= 0])
    assert np.all(np.diff(sizes) <= 0)


def test_same_seed_same_labels_and_leaves_global_random_alone():
    import random

    a, _, _ = planted(seed=3, p_in=0.1, p_out=0.03)  # a fuzzy graph, so the seed matters
    random.seed(123)
    before = random.random()
    random.seed(123)
    first = detect_communities(a, seed=5, min_size=1)
    assert random.random() == before
    np.testing.assert_array_equal(first, detect_communities(a, seed=5, min_size=1))
    others = [detect_communities(a, seed=s, min_size=1) for s in range(6, 12)]
    assert any(not np.array_equal(first, o) for o in others)


def test_isolated_users_and_empty_graph_get_minus_one():
    a, _, _ = planted(extra=3)
    labels = detect_communities(a, min_size=1)
    assert np.all(labels[-3:] == -1)
    assert np.all(labels[:-3] >= 0)
    np.testing.assert_array_equal(detect_communities(sp.csr_matrix((4, 4))), [-1] * 4)
    assert detect_communities(sp.csr_matrix((0, 0))).shape == (0,)


def test_small_groups_dissolve_into_the_tribe_they_touch_most():
    a, _, _ = planted()
    n = a.shape[0]
    # a triangle t0, t1, t2 and a pair p0, p1 beside the planted graph
    big = sp.block_diag([a, symmetric([0, 0, 1, 3], [1, 2, 2, 4], np.ones(4), 5)]).tolil()
    t0, t1, t2, p0, p1 = range(n, n + 5)
    member = [g * GROUP + 1 for g in range(N_GROUPS)]
    big[t0, member[2]] = big[member[2], t0] = 0.5  # t0: weak ties to group 2 ...
    big[t1, member[4]] = big[member[4], t1] = 0.3  # ... t1 to groups 4 and 5, 5 the stronger
    big[t1, member[5]] = big[member[5], t1] = 0.4
    big = big.tocsr()
    raw = detect_communities(big, min_size=1)
    assert raw[t0] == raw[t1] == raw[t2] != raw[member[2]]  # Leiden keeps the triangle apart
    labels = detect_communities(big, min_size=5)
    assert labels[t0] == labels[member[2]] >= 0
    assert labels[t1] == labels[member[5]] >= 0
    assert labels[t2] == labels[p0] == labels[p1] == -1  # no tie to any kept tribe
    assert np.bincount(labels[labels >= 0]).min() >= 5
    kept = detect_communities(big, min_size=2)
    assert kept[p0] == kept[p1] >= 0


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="affinity"):
        detect_communities(sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(ValueError, match=">= 0"):
        detect_communities(sp.csr_matrix(np.array([[0, -1.0], [-1.0, 0]])))
    with pytest.raises(TypeError, match="sparse"):
        detect_communities(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="resolution"):
        detect_communities(sp.csr_matrix((2, 2)), resolution=0)


# tribe_affinities -----------------------------------------------------------------------------


def two_groups_and_a_bridge() -> tuple[sp.csr_matrix, np.ndarray, int]:
    """Two 6-cliques and a user tied equally to three members of each."""
    i, j = [], []
    for g in (0, 6):
        for x in range(g, g + 6):
            for y in range(x + 1, g + 6):
                i.append(x)
                j.append(y)
    bridge = 12
    i += [bridge] * 6
    j += [0, 1, 2, 6, 7, 8]
    w = np.ones(len(i))
    w[-6:] = [1.0, 1.0, 1.0, 0.9, 0.9, 0.9]
    return symmetric(i, j, w, 13), np.array([0] * 6 + [1] * 6 + [0]), bridge


def test_bridge_user_gets_two_memberships():
    a, labels, bridge = two_groups_and_a_bridge()
    m = tribe_affinities(a, labels)
    assert m.shape == (13, 2) and m.dtype == np.float32
    row = m[[bridge]].toarray().ravel()
    np.testing.assert_allclose(row, [3 / 5.7, 2.7 / 5.7], rtol=1e-6)
    assert m[[0]].nnz == 1  # a clique member with no tie out has only its own tribe


def test_rows_sum_to_at_most_one_and_primary_is_kept():
    a, _, _ = planted()
    labels = detect_communities(a)
    m = tribe_affinities(a, labels, top_k=2, min_share=0.9)
    assert np.all(m.sum(axis=1) <= 1 + 1e-6)
    assert np.all(np.diff(m.indptr) <= 2)
    dense = m.toarray()
    rows = np.flatnonzero(labels >= 0)
    assert np.all(dense[rows, labels[rows]] > 0)  # primary kept though below min_share
    assert m.nnz == rows.size  # and nothing else reaches 0.9


def test_primary_is_kept_even_outside_top_k():
    # user 0 has more affinity to tribe 1 and 2 than to its own tribe 0
    a = symmetric([0, 0, 0, 3], [1, 2, 3, 4], [1.0, 5.0, 4.0, 1.0], 5)
    m = tribe_affinities(a, np.array([0, 0, 1, 2, 2]), top_k=2, min_share=0.0)
    np.testing.assert_allclose(m[[0]].toarray().ravel(), [0.1, 0.5, 0.0], rtol=1e-6)
    # singleton tribes (min_size=1): no affinity to their own tribe, still stored (as 0)
    m = tribe_affinities(symmetric([0], [1], [1.0], 2), np.array([0, 1]), top_k=1)
    np.testing.assert_array_equal(m.indices, [0, 1])
    np.testing.assert_array_equal(m.data, [0, 0])


def test_unlabelled_user_still_gets_memberships():
    a, labels, bridge = two_groups_and_a_bridge()
    labels[bridge] = -1
    m = tribe_affinities(a, labels)
    assert m[[bridge]].nnz == 2


# label_tribes ---------------------------------------------------------------------------------


def test_labels_pick_each_groups_own_words_over_a_common_one():
    rng = np.random.default_rng(0)
    vocab = np.array(["hello", "quantum", "qubits", "sourdough", "crumb", "rare"])
    labels = np.repeat([0, 1], 20)
    rows, cols = [], []
    for u in range(40):
        own = [1, 2] if u < 20 else [3, 4]
        words = [0, 0, *own] if rng.random() < 0.9 else [0, 0, own[0]]
        rows += [u] * len(words)
        cols += words
    rows.append(0)
    cols.append(5)  # one user's rare word: below min_support
    x = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(40, 6)).tocsr()
    topics, names = label_tribes(labels, x, vocab, n_topics=3)
    assert set(topics[0]) == {"quantum", "qubits"}
    assert set(topics[1]) == {"sourdough", "crumb"}
    assert names[0] in ("quantum · qubits", "qubits · quantum")


def test_a_tribe_with_most_of_the_weight_is_named_after_what_sets_it_apart():
    # Tribe 0: 16 of 20 users, so 80% of the weight and lifts of at most 1.25 < min_lift 1.5.
    # "circuits" is almost only theirs (lift 1.23); "quantum", everyone's word, stays out.
    vocab = np.array(["quantum", "circuits", "annealing"])
    labels = np.repeat([0, 1], [16, 4])
    x = np.zeros((20, 3))
    x[:, 0] = 1.0
    x[:16, 1] = 1.0
    x[15, 2] = x[16:, 2] = 1.0
    topics, names = label_tribes(labels, sp.csr_matrix(x), vocab, n_topics=3)
    assert topics == [["circuits"], ["annealing"]]
    assert names == ["circuits", "annealing"]


def test_tribe_without_topics_is_named_after_its_id():
    labels = np.array([0, 0, 1, 1, -1])
    x = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 0], [0, 0], [0, 1.0]]))
    topics, names = label_tribes(labels, x, np.array(["a", "b"]), tribe_ids=np.array([7, 12]))
    assert topics == [["a"], []]
    assert names == ["a", "tribe 12"]


def test_support_counts_members_not_repeated_entries():
    labels = np.array([0, 0, 1, 1])
    # a non-canonical CSR: user 0 lists "a" twice; nobody else has it
    x = sp.csr_matrix((np.full(4, 0.1), [0, 0, 1, 1], [0, 2, 2, 3, 4]), shape=(4, 2))
    assert not x.has_canonical_format
    topics, _ = label_tribes(labels, x, np.array(["a", "b"]), min_support=2, min_lift=1.0)
    assert topics == [[], ["b"]]
    assert x.has_canonical_format is False  # the caller's matrix is left alone


# match_tribe_ids ------------------------------------------------------------------------------


def test_no_old_model_numbers_tribes_in_order():
    np.testing.assert_array_equal(match_tribe_ids(np.array([1, 0, 2, -1]), None, None), [0, 1, 2])


def test_unchanged_and_permuted_labels_keep_their_ids():
    old = np.repeat([0, 1, 2], 10)
    ids = np.array([40, 41, 45])
    np.testing.assert_array_equal(match_tribe_ids(old, old, ids), ids)
    perm = np.array([2, 0, 1])
    np.testing.assert_array_equal(match_tribe_ids(perm[old], old, ids), ids[np.argsort(perm)])


def test_split_keeps_id_for_larger_half_and_vanished_id_is_not_reused():
    old = np.repeat([0, 1, 2], [30, 10, 10])  # old ids 5, 6, 9; tribe 9 vanishes
    new = np.r_[np.full(20, 0), np.full(10, 1), np.full(10, 2), np.full(10, -1)]
    out = match_tribe_ids(new, old, np.array([5, 6, 9]))
    np.testing.assert_array_equal(out, [5, 10, 6])  # smaller half fresh, above 9
    out = match_tribe_ids(new, old, np.array([5, 6, 9]), next_id=30)
    np.testing.assert_array_equal(out, [5, 30, 6])


def test_min_jaccard_is_respected():
    old = np.repeat([0, 1], 10)
    new = np.r_[np.full(3, 0), np.full(17, 1)]  # tribe 0 keeps 3 of old 0's 10: J = 0.3
    np.testing.assert_array_equal(match_tribe_ids(new, old, np.array([0, 1])), [0, 1])
    np.testing.assert_array_equal(
        match_tribe_ids(new, old, np.array([0, 1]), min_jaccard=0.5), [2, 1]
    )


def test_new_users_and_departed_users_count_in_jaccard():
    old = np.r_[np.zeros(10, int), np.full(10, -1)]  # users 10.. are new
    new = np.r_[np.full(10, -1), np.zeros(10, int)]  # and old tribe's users left
    np.testing.assert_array_equal(match_tribe_ids(new, old, np.array([3])), [4])


# modularity and conductance -------------------------------------------------------------------


def two_triangles() -> sp.csr_matrix:
    return symmetric([0, 0, 1, 3, 3, 4, 2], [1, 2, 2, 4, 5, 5, 3], np.ones(7), 6)


def test_modularity_by_hand_on_two_triangles():
    # m = 7; each side: 3 internal edges, degree sum 7 -> 2 * (3/7 - (7/14)^2) = 5/14
    a = two_triangles()
    assert modularity(a, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(5 / 14)
    assert modularity(a, np.zeros(6, int)) == pytest.approx(0.0)


def test_modularity_matches_networkx_on_a_weighted_graph():
    a, _, _ = planted(seed=1)
    labels = detect_communities(a)
    labels[labels < 0] = labels.max() + 1 + np.arange(np.sum(labels < 0))
    g = nx.from_scipy_sparse_array(a)
    parts = [set(np.flatnonzero(labels == c).tolist()) for c in range(labels.max() + 1)]
    want = nx.community.modularity(g, parts, weight="weight", resolution=0.7)
    assert modularity(a, labels, resolution=0.7) == pytest.approx(want)


def test_conductance_two_triangles():
    a = two_triangles()
    np.testing.assert_allclose(conductance(a, np.array([0, 0, 0, 1, 1, 1])), [1 / 7, 1 / 7])
    np.testing.assert_allclose(conductance(a, np.zeros(6, int)), [0.0])
    a, _, _ = planted()
    phi = conductance(a, detect_communities(a))
    assert phi.shape == (N_GROUPS,) and np.all(phi < 0.2)


def _planted(sizes, p_in, p_out, seed):
    """A symmetric 0/1 stochastic block model and its block of each node."""
    rng = np.random.default_rng(seed)
    block = np.repeat(np.arange(len(sizes)), sizes)
    same = block[:, None] == block[None, :]
    upper = np.triu(rng.random((len(block), len(block))) < np.where(same, p_in, p_out), 1)
    return sp.csr_matrix((upper | upper.T).astype(np.float32)), block


def test_kept_inside_is_the_share_of_each_tribes_tie_weight_that_stays_in_it():
    from tribes.communities import kept_inside

    # Two triangles joined by one edge, given one way only (kept_inside symmetrises).
    edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]
    rows, cols = zip(*edges, strict=True)
    a = sp.csr_matrix((np.ones(len(edges)), (rows, cols)), shape=(6, 6))
    # Each triangle: 6 of its 7 tie ends inside.
    np.testing.assert_allclose(kept_inside(a, np.array([0, 0, 0, 1, 1, 1])), [6 / 7, 6 / 7])
    # {4, 5} holds one tie (2 ends) of its 4 ends; user 3 has no tribe: its ties count outside.
    np.testing.assert_allclose(kept_inside(a, np.array([0, 0, 0, -1, 1, 1])), [6 / 7, 2 / 4])
    np.testing.assert_allclose(kept_inside(a, np.zeros(6, int)), [1.0])
    # A tribe without ties keeps nothing; nobody in a tribe: no tribes.
    np.testing.assert_allclose(kept_inside(sp.csr_matrix((3, 3)), np.array([0, 0, 1])), [0, 0])
    assert kept_inside(a, np.full(6, -1)).shape == (0,)


def test_weak_community_share_counts_the_users_whose_group_keeps_most_of_its_ties():
    from tribes.communities import weak_community_share

    # Two triangles joined by one edge.
    edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]
    rows, cols = zip(*edges, strict=True)
    a = sp.csr_matrix((np.ones(len(edges)), (rows, cols)), shape=(6, 6))
    a = (a + a.T).tocsr()
    assert weak_community_share(a, np.array([0, 0, 0, 1, 1, 1])) == 1.0  # 6 of 7 ties inside each
    # {0, 1, 2} keeps 6 of its 7 tie ends inside; {3}, {4, 5} do not (half is not more).
    assert weak_community_share(a, np.array([0, 0, 0, 1, 2, 2])) == pytest.approx(3 / 6)
    assert weak_community_share(a, np.array([0, 1, 2, 3, 4, 5])) == 0.0  # singletons keep nothing
    assert weak_community_share(a, np.full(6, -1)) == 1.0
    # Size alone does not make a community: everyone in one group (nothing outside it) ...
    assert weak_community_share(a, np.zeros(6, int)) == 0.0
    # ... nor a group with most of the weight whose outside leans on it: {0, 1, 2, 3} keeps 8
    # of its 10 tie ends inside, but {4, 5}'s 4 tie ends hold only 2 ties of their own.
    assert weak_community_share(a, np.array([0, 0, 0, 0, 1, 1])) == 0.0
    # Two separate triangles, one group each, are communities with nothing leaving them.
    apart = sp.csr_matrix(sp.block_diag([a[:3, :3], a[3:, 3:]]))
    assert weak_community_share(apart, np.array([0, 0, 0, 1, 1, 1])) == 1.0


def test_auto_objective_keeps_cpm_on_dense_tribes_and_leaves_it_on_sparse_communities():
    from tribes.evaluation.metrics import nmi

    dense, dense_blocks = _planted([30, 30, 30, 30], 0.5, 0.01, seed=1)
    cpm = detect_communities(dense, objective="cpm", resolution=0.05, seed=0)
    assert np.array_equal(detect_communities(dense, objective="auto", resolution=0.05, seed=0), cpm)
    assert nmi(cpm, dense_blocks) > 0.95
    # 150-member communities with ~6 ties inside each member: density 0.04, under CPM's 0.05.
    # Infomap splits them (its sparse-module limit); each of modularity's four blocks describes
    # its members' ties in fewer nats than Infomap's pieces of it, so auto merges the pieces.
    sparse, sparse_blocks = _planted([150, 150, 150, 150], 0.04, 0.0008, seed=2)
    cpm = detect_communities(sparse, objective="cpm", resolution=0.05, seed=0)
    auto = detect_communities(sparse, objective="auto", resolution=0.05, seed=0)
    infomap = detect_communities(sparse, objective="infomap", seed=0)
    modularity = detect_communities(sparse, objective="modularity", resolution=1.0, seed=0)
    assert nmi(cpm, sparse_blocks) < 0.8 and nmi(infomap, sparse_blocks) < 0.9
    assert np.array_equal(auto, modularity) and nmi(auto, sparse_blocks) > 0.95


def test_auto_objective_keeps_cpm_when_infomap_finds_no_better_communities():
    """Where CPM's groups leak most of their ties and Infomap's do too (ties spread almost
    evenly: 60% of each member's ties leave its block), the finer CPM tribes stay."""
    from tribes.communities import weak_community_share

    a, _ = _planted([60] * 10, 0.08, 0.0107, seed=3)
    cpm = detect_communities(a, objective="cpm", resolution=0.05, seed=0, min_size=1)
    infomap = detect_communities(a, objective="infomap", seed=0, min_size=1)
    assert weak_community_share(a, cpm) < 0.5 and weak_community_share(a, infomap) < 0.5
    assert np.array_equal(
        detect_communities(a, objective="auto", resolution=0.05, seed=0, min_size=1), cpm
    )


def _partition_by_hand(sizes: list[int]) -> float:
    """Nats to name a partition into blocks of these sizes: how many, their sizes, who is where."""
    from math import comb, factorial, log

    n, b = sum(sizes), len(sizes)
    return (
        log(factorial(n)) - sum(log(factorial(x)) for x in sizes) + log(comb(n - 1, b - 1)) + log(n)
    )


def _reference_graph(rng: np.random.Generator) -> tuple[sp.csr_matrix, np.ndarray]:
    """Three planted blocks with random weights (ignored), two users without ties, and random
    labels with -1 (blocks of one): what the term-by-term references are checked on."""
    a, _ = _planted([12, 9, 7], 0.5, 0.08, seed=5)
    a = sp.csr_matrix(a.multiply(rng.uniform(0.2, 3.0, a.shape)))
    a = sp.csr_matrix(sp.block_diag([a, sp.csr_matrix((2, 2))]))
    return a, rng.integers(-1, 4, a.shape[0])


def _description_length_by_hand(a: sp.csr_matrix, labels: np.ndarray) -> float:
    """The DC-SBM description length term by term with Python loops (math.lgamma)."""
    from collections import Counter
    from math import comb, lgamma, log

    a = a.tocoo()
    ties = {
        (min(i, j), max(i, j))
        for i, j, w in zip(a.row, a.col, a.data, strict=True)
        if w > 0 and i != j
    }
    degree = Counter()
    for i, j in ties:
        degree[i] += 1
        degree[j] += 1
    block = {}
    for u in sorted(degree):  # unlabelled users are blocks of their own
        block[u] = int(labels[u]) if labels[u] >= 0 else ("alone", u)
    e = len(ties)
    blocks = set(block.values())
    b = len(blocks)
    e_rs = Counter()
    for i, j in ties:
        e_rs[frozenset((block[i], block[j]))] += 1
    e_r = Counter()
    for u, k in degree.items():
        e_r[block[u]] += k
    n_r = Counter(block.values())
    s = sum(lgamma(x + 1) for x in e_r.values()) - sum(lgamma(k + 1) for k in degree.values())
    for pair, m in e_rs.items():
        s -= m * log(2) + lgamma(m + 1) if len(pair) == 1 else lgamma(m + 1)  # e_rr!! = 2^m m!
    s += sum(log(comb(n_r[r] + e_r[r] - 1, e_r[r])) for r in blocks)
    s += log(comb(b * (b + 1) // 2 + e - 1, e))
    return s + _partition_by_hand(list(n_r.values()))


def test_description_length_matches_a_term_by_term_reference():
    from tribes.communities import description_length

    a, labels = _reference_graph(np.random.default_rng(4))
    assert description_length(a, labels) == pytest.approx(
        _description_length_by_hand(a, labels), rel=1e-9
    )
    assert description_length(sp.csr_matrix((4, 4)), np.zeros(4, int)) == 0.0


def test_description_length_is_shortest_for_the_planted_blocks():
    from tribes.communities import description_length

    a, blocks = _planted([40, 40, 40, 40], 0.3, 0.01, seed=6)
    planted_dl = description_length(a, blocks)
    rng = np.random.default_rng(0)
    assert planted_dl < description_length(a, np.zeros_like(blocks))  # one block
    assert planted_dl < description_length(a, rng.permutation(blocks))  # same sizes, random members
    # each split in two
    assert planted_dl < description_length(a, blocks * 2 + (np.arange(blocks.size) % 2))
    assert planted_dl < description_length(a, np.arange(blocks.size))  # everyone alone


def _planted_partition_length_by_hand(a: sp.csr_matrix, labels: np.ndarray) -> float:
    """The planted-partition length term by term with Python loops over every pair of blocks."""
    from itertools import combinations_with_replacement
    from math import comb, lgamma, log

    a = a.tocoo()
    ties = {
        (min(i, j), max(i, j))
        for i, j, w in zip(a.row, a.col, a.data, strict=True)
        if w > 0 and i != j
    }
    tied = sorted({u for tie in ties for u in tie})
    block = {u: int(labels[u]) if labels[u] >= 0 else ("alone", u) for u in tied}
    members = {}
    for u in tied:
        members.setdefault(block[u], []).append(u)
    names = list(members)
    s, e_in, between = 0.0, 0, []
    for r, t in combinations_with_replacement(names, 2):
        m = sum(1 for i, j in ties if {block[i], block[j]} == {r, t})
        pairs = comb(len(members[r]), 2) if r == t else len(members[r]) * len(members[t])
        s += log(comb(pairs, m))
        if r == t:
            e_in += m
        else:
            between.append(m)
    b = len(names)
    if b > 1:
        e_out = sum(between)
        s += (
            log(len(ties) + 1)
            + log(comb(b + e_in - 1, e_in))
            + e_out * log(comb(b, 2))
            - lgamma(e_out + 1)
            + sum(lgamma(m + 1) for m in between)
        )
    return s + _partition_by_hand([len(x) for x in members.values()])


def test_planted_partition_length_matches_a_term_by_term_reference():
    from tribes.communities import planted_partition_length

    a, labels = _reference_graph(np.random.default_rng(7))
    assert planted_partition_length(a, labels) == pytest.approx(
        _planted_partition_length_by_hand(a, labels), rel=1e-9
    )
    one = np.zeros(a.shape[0], int)
    assert planted_partition_length(a, one) == pytest.approx(
        _planted_partition_length_by_hand(a, one), rel=1e-9
    )
    assert planted_partition_length(sp.csr_matrix((4, 4)), np.zeros(4, int)) == 0.0


def test_planted_partition_length_tells_small_dense_groups_apart_and_a_sparse_groups_pieces_not():
    from tribes.communities import description_length, planted_partition_length

    # Groups of 10 and 6 (density 0.5 inside) with one tie between them: two groups; the
    # degree-corrected model with its flat prior calls them one (at 9 of 10 seeds the planted
    # partition length says two, and the other has only 23 ties).
    dense = _planted([10, 6], 0.5, 0.0, seed=0)[0].toarray()
    dense[0, 10] = dense[10, 0] = 1
    two = sp.csr_matrix(dense)
    cliques = np.repeat([0, 1], [10, 6])
    together = np.zeros(16, int)
    assert planted_partition_length(two, cliques) < planted_partition_length(two, together)
    assert description_length(two, together) < description_length(two, cliques)
    # One sparse group (density 0.15) cut into three arbitrary pieces: one group.
    sparse, _ = _planted([60], 0.15, 0.0, seed=3)
    pieces = np.arange(60) % 3
    assert planted_partition_length(sparse, np.zeros(60, int)) < planted_partition_length(
        sparse, pieces
    )


def test_auto_keeps_small_dense_tribes_apart():
    """60 planted tribes of 6-14 users (density 0.5 inside, 0.002 between): CPM finds them, and
    the modularity proposals that lump several together (its resolution limit) are not taken;
    the degree-corrected flat-prior length took 12 of them (48 tribes, ARI 0.82)."""
    from tribes.evaluation.metrics import ari

    sizes = np.random.default_rng(0).integers(6, 15, 60).tolist()
    g = nx.random_partition_graph(sizes, 0.5, 0.002, seed=0)
    a = sp.csr_matrix(nx.to_scipy_sparse_array(g, format="csr", dtype=np.float64))
    truth = np.repeat(np.arange(60), sizes)
    labels, method = detect_communities(
        a, objective="auto", resolution=0.05, seed=0, return_method=True
    )
    assert method == "cpm" and labels.max() + 1 >= 58 and ari(truth, labels) > 0.95


def test_infomap_needs_no_resolution():
    """A ring of 24 five-cliques, each joined to the next by one edge: modularity merges
    neighbouring cliques (its resolution limit); Infomap, like CPM, keeps every clique."""
    from tribes.evaluation.metrics import nmi

    n_cliques, size = 24, 5
    edges = [
        (c * size + i, c * size + j)
        for c in range(n_cliques)
        for i in range(size)
        for j in range(i + 1, size)
    ]
    edges += [(c * size, ((c + 1) % n_cliques) * size + 1) for c in range(n_cliques)]
    a = symmetric(*zip(*edges, strict=True), np.ones(len(edges)), n_cliques * size)
    truth = np.repeat(np.arange(n_cliques), size)
    infomap = detect_communities(a, objective="infomap", seed=0)
    assert infomap.max() + 1 == n_cliques and nmi(infomap, truth) == pytest.approx(1.0)
    assert detect_communities(a, objective="modularity", seed=0).max() + 1 < n_cliques


def test_infomap_is_seeded_and_leaves_global_random_alone():
    import random

    a, truth, _ = planted(seed=5)
    random.seed(7)
    before = random.random()
    random.seed(7)
    first = detect_communities(a, objective="infomap", seed=3)
    assert random.random() == before
    np.testing.assert_array_equal(first, detect_communities(a, objective="infomap", seed=3))
    people = truth >= 0
    assert nmi(first[people], truth[people]) >= 0.95


def test_the_method_that_found_the_tribes_is_reported():
    dense, _ = _planted([30, 30, 30, 30], 0.5, 0.01, seed=1)
    sparse, _ = _planted([150, 150, 150, 150], 0.04, 0.0008, seed=2)
    labels, method = detect_communities(
        dense, objective="auto", resolution=0.05, seed=0, return_method=True
    )
    assert method == "cpm" and np.array_equal(
        labels, detect_communities(dense, objective="auto", resolution=0.05)
    )
    assert (
        detect_communities(sparse, objective="auto", resolution=0.05, seed=0, return_method=True)[1]
        == "infomap-merged"
    )
    for objective in ("cpm", "modularity", "infomap"):
        assert (
            detect_communities(dense, objective=objective, seed=0, return_method=True)[1]
            == objective
        )
    empty = detect_communities(sp.csr_matrix((4, 4)), objective="auto", return_method=True)
    assert empty[1] == "cpm" and np.all(empty[0] == -1)


def test_a_model_asked_for_modularity_uses_modularitys_own_resolution():
    """tribe_objective='modularity' alone gives classic modularity (γ = modularity_resolution, 1),
    not CPM's density threshold (resolution 0.05) read as γ, which merged every block into one."""
    from tribes.evaluation.metrics import nmi
    from tribes.importers.graph import events_from_networkx
    from tribes.model import TribeModel

    g = nx.stochastic_block_model(
        [40, 40, 40, 40], [[0.3 if i == j else 0.01 for j in range(4)] for i in range(4)], seed=4
    )
    events = list(events_from_networkx(g))
    model = TribeModel(tribe_objective="modularity", learn_weights=0).fit(events)
    assert model.tribe_method_ == "modularity"
    block = np.array([g.nodes[int(u)]["block"] for u in model.user_ids_])
    assert np.asarray(model.labels_).max() + 1 == 4 and nmi(block, np.asarray(model.labels_)) > 0.95
    finer = TribeModel(
        tribe_objective="modularity", modularity_resolution=4.0, learn_weights=0
    ).fit(events)
    assert np.asarray(finer.labels_).max() + 1 > 4
    with pytest.raises(ValueError, match="modularity_resolution: must be > 0"):
        TribeModel(modularity_resolution=0.0).fit(events)


def test_auto_merges_the_pieces_cpm_cuts_sparse_communities_into():
    """Ten planted blocks of 100 with density 0.06: CPM's threshold (0.05) cuts them into 64
    pieces which are communities each (the weak test passes), but each block's ties take fewer
    nats as one block than as its pieces, so auto merges them. Where CPM's groups are the planted
    ones (dense small blocks), nothing merges."""
    from tribes.communities import weak_community_share
    from tribes.evaluation.metrics import nmi

    sparse, truth = _planted([100] * 10, 0.06, 0.001, seed=1)
    cpm = detect_communities(sparse, objective="cpm", resolution=0.05, seed=0)
    assert cpm.max() + 1 > 30 and weak_community_share(sparse, cpm) >= 0.5
    auto, method = detect_communities(
        sparse, objective="auto", resolution=0.05, seed=0, return_method=True
    )
    assert method == "cpm-merged" and auto.max() + 1 == 10 and nmi(truth, auto) > 0.95
    dense, truth = _planted([12] * 20, 0.7, 0.01, seed=2)
    kept, method = detect_communities(
        dense, objective="auto", resolution=0.05, seed=0, return_method=True
    )
    assert method == "cpm" and nmi(truth, kept) > 0.95
    # Above merge_max_users the step does not run (its Leiden run costs ~30 s at a million users).
    found, method = detect_communities(
        sparse, objective="auto", resolution=0.05, seed=0, return_method=True, merge_max_users=999
    )
    assert method == "cpm" and np.array_equal(found, cpm)
    assert (
        detect_communities(
            sparse,
            objective="auto",
            resolution=0.05,
            seed=0,
            return_method=True,
            merge_max_users=1000,
        )[1]
        == "cpm-merged"
    )


def test_auto_does_not_merge_small_tribes_that_modularity_cannot_resolve():
    """A ring of 30 five-cliques joined by single ties: modularity's resolution limit pairs
    neighbouring cliques, and one description length of the whole graph would agree (it
    charges for every pair of blocks); each proposal's own ties say two cliques, so the 30 stay."""
    from tribes.communities import description_length

    ring = nx.ring_of_cliques(30, 5)
    a = nx.to_scipy_sparse_array(ring, format="csr", dtype=np.float64)
    a = sp.csr_matrix(a)
    modular = detect_communities(a, objective="modularity", seed=0, min_size=1)
    cliques = np.repeat(np.arange(30), 5)
    assert modular.max() + 1 < 30 and description_length(a, modular) < description_length(
        a, cliques
    )
    labels, method = detect_communities(
        a, objective="auto", resolution=0.05, seed=0, return_method=True
    )
    assert method == "cpm" and labels.max() + 1 == 30
    assert np.all(np.bincount(labels) == 5)
