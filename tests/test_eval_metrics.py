"""Evaluation metrics: each fast metric against a slow, obviously-correct reference."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
import scipy.sparse as sp

from tribes.evaluation import metrics as M

SEEDS = range(12)


# ---------------------------------------------------------------- slow references


def ref_ranking(recs, users, truth_dense, k):
    """Loops and sets: per-user metrics, averaged over users with relevant items."""
    per_user = []
    for row, u in zip(recs, users, strict=True):
        rel = {int(j) for j in np.flatnonzero(truth_dense[u])}
        if not rel:
            continue
        seen, hits = set(), []
        for item in list(row[:k]) + [-1] * (k - len(row[:k])):
            item = int(item)
            hits.append(item >= 0 and item not in seen and item in rel)
            seen.add(item)
        n_hit = sum(hits)
        dcg = sum(1 / math.log2(i + 2) for i, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(rel), k)))
        first = next((i for i, h in enumerate(hits) if h), None)
        per_user.append(
            {
                "recall": n_hit / len(rel),
                "precision": n_hit / k,
                "ndcg": dcg / idcg,
                "mrr": 0.0 if first is None else 1 / (first + 1),
                "hit_rate": float(n_hit > 0),
            }
        )
    if not per_user:
        return dict.fromkeys(("recall", "precision", "ndcg", "mrr", "hit_rate"), 0.0) | {"users": 0}
    out = {key: sum(p[key] for p in per_user) / len(per_user) for key in per_user[0]}
    return out | {"users": len(per_user)}


def ref_gini(x):
    """Mean absolute difference over all ordered pairs / (2 * mean)."""
    x = [float(v) for v in x]
    n, total = len(x), sum(x)
    if n == 0 or total == 0:
        return 0.0
    return sum(abs(a - b) for a in x for b in x) / (2 * n * total)


def ref_nmi(a, b):
    n = len(a)
    ca, cb, cab = (
        Counter(a.tolist()),
        Counter(b.tolist()),
        Counter(zip(a.tolist(), b.tolist(), strict=True)),
    )
    h_a = -sum(c / n * math.log(c / n) for c in ca.values())
    h_b = -sum(c / n * math.log(c / n) for c in cb.values())
    if h_a == 0 and h_b == 0:
        return 1.0
    mi = sum(c / n * math.log(n * c / (ca[x] * cb[y])) for (x, y), c in cab.items())
    return mi / ((h_a + h_b) / 2)


def ref_ari(a, b):
    """Pair counting over every pair of elements (Steinley's closed form)."""
    n11 = n10 = n01 = n00 = 0
    for i, j in combinations(range(len(a)), 2):
        same_a, same_b = a[i] == a[j], b[i] == b[j]
        n11 += same_a and same_b
        n10 += same_a and not same_b
        n01 += same_b and not same_a
        n00 += not same_a and not same_b
    denom = (n00 + n01) * (n01 + n11) + (n00 + n10) * (n10 + n11)
    return 1.0 if denom == 0 else 2 * (n00 * n11 - n01 * n10) / denom


def ref_best_match_f1(found, truth):
    found = [set(map(int, g)) for g in found if len(g)]
    truth = [set(map(int, g)) for g in truth if len(g)]
    if not found or not truth:
        return 0.0

    def f1(x, y):
        return 2 * len(x & y) / (len(x) + len(y))

    t_side = sum(max(f1(t, f) for f in found) for t in truth) / len(truth)
    f_side = sum(max(f1(t, f) for t in truth) for f in found) / len(found)
    return (t_side + f_side) / 2


# ---------------------------------------------------------------- random inputs


def random_case(seed):
    """Truth (U, N) with some empty rows and a stored zero; lists with padding and repeats."""
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(5, 40)), int(rng.integers(3, 30))
    dense = (rng.random((n_users, n_items)) < rng.uniform(0.02, 0.4)).astype(np.float32)
    dense[rng.random(n_users) < 0.2] = 0  # users without relevant items
    truth = sp.csr_matrix(dense)
    truth.data = truth.data.copy()
    if truth.nnz:
        truth.data[0] = 0  # an explicit zero is not relevant
        dense = truth.toarray()
    b, width = int(rng.integers(1, 30)), int(rng.integers(1, 12))
    users = rng.integers(0, n_users, size=b)
    recs = rng.integers(0, n_items, size=(b, width))
    for row, u in enumerate(users):  # plant hits (and repeated hits) so every metric is exercised
        rel = np.flatnonzero(dense[u])
        plant = rng.random(width) < 0.4
        if rel.size and plant.any():
            recs[row, plant] = rng.choice(rel, size=int(plant.sum()))
    lengths = rng.integers(0, width + 1, size=b)
    recs[np.arange(width)[None, :] >= lengths[:, None]] = -1
    return recs.astype(np.int32), users, truth, dense, n_items


@pytest.mark.parametrize("seed", SEEDS)
def test_ranking_metrics_match_reference(seed):
    recs, users, truth, dense, _ = random_case(seed)
    for k in (1, 3, recs.shape[1], recs.shape[1] + 4):
        got = M.ranking_metrics(recs, users, truth, k)
        want = ref_ranking(recs, users, dense, k)
        assert got["users"] == want["users"]
        for key in ("recall", "precision", "ndcg", "mrr", "hit_rate"):
            assert got[key] == pytest.approx(want[key], abs=1e-12), key
        assert M.recall_at_k(recs, users, truth, k) == got["recall"]
        assert M.precision_at_k(recs, users, truth, k) == got["precision"]
        assert M.ndcg_at_k(recs, users, truth, k) == got["ndcg"]
        assert M.mrr(recs, users, truth, k) == got["mrr"]


def test_ranking_metrics_hand_case():
    truth = sp.csr_matrix(np.array([[0, 0, 1, 0, 0, 1]]))
    got = M.ranking_metrics(np.array([[5, 1, 2]]), np.array([0]), truth, 3)
    idcg = 1 + 1 / math.log2(3)
    assert got == pytest.approx(
        {
            "recall": 1.0,
            "precision": 2 / 3,
            "mrr": 1.0,
            "ndcg": 1.5 / idcg,
            "hit_rate": 1.0,
            "users": 1,
        }
    )
    # first hit at rank 2; padding and a repeated hit are misses
    got = M.ranking_metrics(np.array([[1, 2, 2, -1]]), np.array([0]), truth, 4)
    assert got["mrr"] == 0.5 and got["recall"] == 0.5 and got["precision"] == 0.25
    assert got["ndcg"] == pytest.approx((1 / math.log2(3)) / idcg)


def test_recall_divides_by_all_relevant_items():
    truth = sp.csr_matrix(np.ones((1, 5)))
    got = M.ranking_metrics(np.array([[0, 1]]), np.array([0]), truth, 2)
    assert got["recall"] == pytest.approx(0.4)
    assert got["ndcg"] == pytest.approx(1.0)  # ideal DCG over min(|rel|, k) = 2


def test_users_without_relevant_items_are_excluded():
    truth = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]]))
    got = M.ranking_metrics(np.array([[0, -1], [1, 2]]), np.array([0, 1]), truth, 2)
    assert got["users"] == 1 and got["hit_rate"] == 1.0 and got["mrr"] == 1.0
    none = M.ranking_metrics(np.array([[1, 2]]), np.array([1]), truth, 2)
    assert none == {
        "recall": 0.0,
        "precision": 0.0,
        "ndcg": 0.0,
        "mrr": 0.0,
        "hit_rate": 0.0,
        "users": 0,
    }
    empty = M.ranking_metrics(np.zeros((0, 3), np.int32), np.zeros(0, np.int64), truth, 3)
    assert empty["users"] == 0


def test_ranking_metrics_reject_bad_input():
    truth = sp.csr_matrix(np.eye(3))
    with pytest.raises(ValueError, match="k"):
        M.ranking_metrics(np.array([[0]]), np.array([0]), truth, 0)
    with pytest.raises(ValueError, match="recs"):
        M.ranking_metrics(np.array([[3]]), np.array([0]), truth, 1)
    with pytest.raises(ValueError, match="users"):
        M.ranking_metrics(np.array([[0]]), np.array([0, 1]), truth, 1)
    with pytest.raises(TypeError, match="truth"):
        M.ranking_metrics(np.array([[0]]), np.array([0]), np.eye(3), 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_exposure_and_coverage_match_reference(seed):
    recs, _, _, _, n_items = random_case(seed)
    counts = Counter(int(i) for i in recs.ravel() if i >= 0)
    assert M.exposure(recs, n_items).tolist() == [counts[i] for i in range(n_items)]
    assert M.catalogue_coverage(recs, n_items) == pytest.approx(len(counts) / n_items)


@pytest.mark.parametrize("seed", SEEDS)
def test_gini_matches_reference(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, size=int(rng.integers(1, 40))) * (rng.random() < 0.9)
    assert M.gini(x) == pytest.approx(ref_gini(x), abs=1e-12)


def test_gini_extremes():
    assert M.gini(np.full(7, 3.0)) == 0.0
    assert M.gini(np.eye(1, 10).ravel()) == pytest.approx(9 / 10)
    assert M.gini(np.zeros(4)) == 0.0 and M.gini(np.zeros(0)) == 0.0
    with pytest.raises(ValueError):
        M.gini(np.array([1.0, -1.0]))


@pytest.mark.parametrize("seed", SEEDS)
def test_top_percent_and_top_share_match_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    scores = rng.integers(0, 6, size=n).astype(float)  # many ties
    for percent in (0.5, 1.0, 10.0, 33.3, 100.0):
        n_top = max(1, math.ceil(Fraction(n) * Fraction(str(percent)) / 100))
        want = sorted(range(n), key=lambda i: (-scores[i], i))[:n_top]
        top = M.top_percent(scores, percent)
        assert top.tolist() == want
        share = sum(scores[i] for i in want) / scores.sum() if scores.sum() else 0.0
        assert M.top_share(scores, top) == pytest.approx(share)
    assert M.top_share(np.array([1, 1, 2]), np.array([2, 2])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="percent"):
        M.top_percent(scores, 0.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_novelty_matches_reference(seed):
    recs, _, _, _, n_items = random_case(seed)
    pop = np.random.default_rng(seed).integers(0, 50, size=n_items)
    total = int(pop.sum()) + n_items
    bits = [-math.log2((int(pop[i]) + 1) / total) for i in recs.ravel() if i >= 0]
    assert M.novelty(recs, pop) == pytest.approx(sum(bits) / len(bits) if bits else 0.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_tribes_per_list_matches_reference(seed):
    recs, _, _, _, n_items = random_case(seed)
    labels = np.random.default_rng(seed).integers(-1, 4, size=n_items)
    counts = [
        len({int(labels[i]) for i in row if i >= 0 and labels[i] >= 0})
        for row in recs
        if (row >= 0).any()
    ]
    want = sum(counts) / len(counts) if counts else 0.0
    assert M.tribes_per_list(recs, labels) == pytest.approx(want)


def test_tribes_per_list_hand_case():
    labels = np.array([0, 0, 1, -1, 2])
    recs = np.array([[0, 1, 2], [3, -1, -1], [-1, -1, -1], [4, 2, 0]])
    assert M.tribes_per_list(recs, labels) == pytest.approx((2 + 0 + 3) / 3)


@pytest.mark.parametrize("seed", SEEDS)
def test_nmi_and_ari_match_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    a = rng.integers(-1, int(rng.integers(1, 6)), size=n)
    b = np.where(rng.random(n) < 0.6, a, rng.integers(0, 4, size=n)) * 10
    assert M.nmi(a, b) == pytest.approx(ref_nmi(a, b), abs=1e-12)
    assert M.ari(a, b) == pytest.approx(ref_ari(a, b), abs=1e-12)


def test_nmi_and_ari_known_values():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 8, size=300)
    perm = rng.permutation(8) + 100
    assert M.nmi(a, a) == pytest.approx(1.0) and M.ari(a, a) == pytest.approx(1.0)
    assert M.nmi(a, perm[a]) == pytest.approx(1.0) and M.ari(a, perm[a]) == pytest.approx(1.0)
    x, y = rng.integers(0, 10, size=20_000), rng.integers(0, 10, size=20_000)
    assert M.nmi(x, y) < 0.01 and abs(M.ari(x, y)) < 0.01
    assert M.nmi(np.zeros(5), np.zeros(5)) == 1.0 and M.ari(np.zeros(5), np.zeros(5)) == 1.0
    assert M.nmi(np.zeros(4), np.arange(4)) == 0.0
    with pytest.raises(ValueError, match="same length"):
        M.nmi(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize("seed", SEEDS)
def test_best_match_f1_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    truth = [rng.choice(n, size=int(rng.integers(0, n // 2 + 1)), replace=False) for _ in range(4)]
    found = [rng.choice(n, size=int(rng.integers(1, n // 2 + 1)), replace=True) for _ in range(3)]
    assert M.best_match_f1(found, truth) == pytest.approx(ref_best_match_f1(found, truth))
    labels = rng.integers(-1, 4, size=n)
    groups = [np.flatnonzero(labels == c) for c in range(4)]
    assert M.best_match_f1(labels, truth) == pytest.approx(ref_best_match_f1(groups, truth))


def test_best_match_f1_known_values():
    truth = [np.array([0, 1, 2]), np.array([2, 3, 4, 5])]  # overlapping groups
    assert M.best_match_f1([np.array([2, 1, 0]), np.array([5, 4, 3, 2])], truth) == 1.0
    # one found community {0, 1}: truth side (0.8 + 0) / 2, found side 0.8
    assert M.best_match_f1([np.array([0, 1])], truth) == pytest.approx((0.4 + 0.8) / 2)
    assert M.best_match_f1([], truth) == 0.0
    assert (
        M.best_match_f1(np.array([0, 0, 0, 1, 1, 1]), [np.array([0, 1, 2]), np.array([3, 4, 5])])
        == 1.0
    )


def test_community_quality_reexported():
    from tribes import communities

    assert M.modularity is communities.modularity and M.conductance is communities.conductance


def test_doctest_example_runs():
    import doctest

    result = doctest.testmod(M)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_per_user_recall_matches_a_loop_and_averages_to_recall(seed):
    recs, users, truth, dense, _ = random_case(seed)
    for k in (1, 3, recs.shape[1] + 2):
        got = M.per_user_recall(recs, users, truth, k)
        for row, u in enumerate(users):
            rel = set(np.flatnonzero(dense[u]).tolist())
            listed = []
            for item in recs[row, :k].tolist():  # repeats and padding are misses
                if item >= 0 and item not in listed:
                    listed.append(item)
            if rel:
                assert got[row] == pytest.approx(len(rel & set(listed)) / len(rel), abs=1e-12)
            else:
                assert np.isnan(got[row])
        expected = M.ranking_metrics(recs, users, truth, k)["recall"]
        assert (np.nanmean(got) if (~np.isnan(got)).any() else 0.0) == pytest.approx(
            expected, abs=1e-12
        )


def test_bootstrap_interval_of_a_rare_truth_resamples_only_the_users_who_have_it():
    """7 of 1,171 evaluated users joined a thread: a resample of all 1,171 misses all seven about
    once in a thousand draws, which made the interval [nan, nan]. Users without the truth (NaN
    in every array) are left out first, so the interval is that of the seven alone."""
    rng = np.random.default_rng(3)
    tribes, other = np.full(1171, np.nan), np.full(1171, np.nan)
    have = np.sort(rng.choice(1171, 7, replace=False))
    tribes[have], other[have] = rng.random(7), rng.random(7)
    arrays = {"tribes": tribes, "other": other, "minus": tribes - other}
    got = M.bootstrap_interval(arrays, 1000, seed=0)
    alone = M.bootstrap_interval({name: v[have] for name, v in arrays.items()}, 1000, seed=0)
    assert got == alone
    assert all(np.isfinite(got[name]).all() for name in arrays)


def test_bootstrap_interval_is_paired_seeded_and_near_the_normal_interval():
    rng = np.random.default_rng(5)
    x = (rng.random(2000) < 0.3).astype(float)
    x[rng.random(2000) < 0.1] = np.nan  # users the mean leaves out
    y = x.copy()
    got = M.bootstrap_interval(
        {"x": x, "y": y, "x-y": x - y, "constant": np.full(2000, 0.25)}, 400, seed=1
    )
    assert got == M.bootstrap_interval(
        {"x": x, "y": y, "x-y": x - y, "constant": np.full(2000, 0.25)}, 400, seed=1
    )
    assert got["x"] == got["y"] and got["x-y"] == [0.0, 0.0] and got["constant"] == [0.25, 0.25]
    known = x[~np.isnan(x)]
    half = 1.96 * known.std() / np.sqrt(len(known))
    assert got["x"][0] == pytest.approx(known.mean() - half, abs=0.006)
    assert got["x"][1] == pytest.approx(known.mean() + half, abs=0.006)
    assert np.isnan(
        M.bootstrap_interval({"empty": np.full(5, np.nan)}, 10)["empty"]
    ).all()  # no users
    with pytest.raises(ValueError):
        M.bootstrap_interval({"x": x}, 0)
    with pytest.raises(ValueError):
        M.bootstrap_interval({"x": x}, 10, level=1.0)


def test_recall_ceiling_is_what_a_perfect_list_reaches():
    """A list holding each user's relevant items first reaches the ceiling exactly; users with
    more relevant items than k cap it below 1; users with none are left out."""
    truth = sp.random(30, 40, density=0.15, format="csr", random_state=5)
    truth.data[:] = 1
    users = np.arange(30)
    k = 4
    perfect = np.full((30, k), -1)
    for u in users:
        items = truth[u].indices[:k]
        perfect[u, : len(items)] = items
    ceiling, n = M.recall_ceiling(users, truth, k)
    assert n == int((np.diff(truth.indptr) > 0).sum())
    assert ceiling == pytest.approx(M.ranking_metrics(perfect, users, truth, k)["recall"])
    sizes = np.diff(truth.indptr)
    expected = np.mean([min(s, k) / s for s in sizes if s > 0])  # the definition, user by user
    assert ceiling == pytest.approx(expected) and ceiling < 1  # some users have more than k
    assert M.recall_ceiling(users, sp.csr_matrix((30, 40)), k) == (0.0, 0)
