"""Compiled kernels (tribes.kernels) against the scipy expressions they replace."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tribes.candidates import apply_filters
from tribes.kernels import (
    TwoHopTopK,
    best_fetched,
    csr_values,
    pair_dots,
    within_column_budget,
    within_group_budget,
)
from tribes.sparse import top_k_per_row


def _random_csr(rng, shape, density, dtype, values=None):
    n = int(shape[0] * shape[1] * density)
    v = values if values is not None else rng.random(n)
    return sp.csr_matrix(
        (
            np.asarray(v, dtype=dtype)[:n],
            (rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)),
        ),
        shape=shape,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_hop_top_k_equals_the_filtered_top_k_of_the_product(dtype):
    rng = np.random.default_rng(4)
    n = 400
    left = _random_csr(rng, (n, n), 0.03, dtype)
    # Small integer-like values: many exact ties and sums; some zero weights (dropped entries).
    right = _random_csr(rng, (n, n), 0.04, dtype, values=rng.integers(0, 4, 400 * 400) / 2)
    exclusion = (_random_csr(rng, (n, n), 0.05, np.float32) > 0).astype(np.float32).tocsr()
    shown = rng.random(n) < 0.9
    for k in (1, 7, 50, 1000):
        kernel = TwoHopTopK(left, right, exclusion, shown, k)
        for start, stop in ((0, n), (13, 200), (399, 400), (50, 50)):
            got = kernel.rows(start, stop)
            want = top_k_per_row(
                apply_filters((left[start:stop] @ right).tocsr(), exclusion[start:stop], shown), k
            )
            assert got.shape == want.shape and got.dtype == want.dtype
            assert np.array_equal(got.indptr, want.indptr), (k, start)
            assert np.array_equal(got.indices, want.indices), (k, start)
            assert np.array_equal(got.data, want.data), (k, start)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pair_dots_are_the_row_dot_products(dtype):
    rng = np.random.default_rng(5)
    x = _random_csr(rng, (300, 80), 0.1, dtype)
    x.sum_duplicates()
    rows, cols = rng.integers(0, 300, 5000), rng.integers(0, 300, 5000)
    want = np.asarray(x[rows].multiply(x[cols]).sum(axis=1)).ravel()
    got = pair_dots(x, rows, cols)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    if dtype == np.float32 and np.diff(x.indptr).max() <= 8:
        # bit for bit while rows share <= 8 columns
        assert np.array_equal(got, want.astype(np.float32))
    dense = x.toarray()
    assert np.allclose(
        got[:50],
        [dense[r] @ dense[c] for r, c in zip(rows[:50], cols[:50], strict=True)],
        rtol=1e-5,
    )
    assert len(pair_dots(x, rows[:0], cols[:0])) == 0


def _best_fetched_reference(
    batch, ids, distance, query_norms, lift2, heavy, heavy_scores, liked, k
):
    """Every fetched and heavy person of each user, filtered, sorted by (score down, column up), cut to k."""
    rows, cols, vals = [], [], []
    for i, u in enumerate(batch):
        found = [
            (
                int(c),
                np.float32((query_norms[u] + np.float32(lift2) - distance[i, j]) / np.float32(2)),
            )
            for j, c in enumerate(ids[i])
            if c >= 0
        ]
        found += [(int(c), heavy_scores[i, h]) for h, c in enumerate(heavy)]
        own = set(liked[u].indices.tolist())
        ok = [(c, v) for c, v in found if c != u and np.isfinite(v) and v > 0 and c not in own]
        for c, v in sorted(sorted(ok, key=lambda cv: (-cv[1], cv[0]))[:k]):
            rows.append(u), cols.append(c), vals.append(v)
    return np.array(rows, np.int64), np.array(cols, np.int64), np.array(vals, np.float32)


@pytest.mark.parametrize("k", [1, 3, 8, 40])
def test_best_fetched_keeps_each_users_k_best_fetched_or_heavy_people(k):
    rng = np.random.default_rng(7)
    n, b, fetch, h = 300, 60, 12, 9
    batch = np.sort(rng.choice(n, b, replace=False))
    heavy = rng.choice(n, h, replace=False)
    # an index holds the light people only, each once per result
    light = np.setdiff1d(np.arange(n), heavy)
    ids = np.stack([rng.choice(light, fetch, replace=False) for _ in range(b)])
    ids[:, -2:] = -1  # short results are padded
    ids[0, 0] = batch[0]  # the user themself
    # Distances in steps of 1/4: many tied scores, some negative, faiss's nearest-first order.
    distance = np.sort(rng.integers(0, 12, (b, fetch)) / 4, axis=1).astype(np.float32)
    query_norms = (rng.integers(0, 8, n) / 4).astype(np.float32)
    heavy_scores = (rng.integers(-4, 8, (b, h)) / 4).astype(np.float32)
    heavy_scores[1, :] = np.inf  # not finite: dropped
    liked = _random_csr(rng, (n, n), 0.05, np.float32)
    liked.sort_indices()
    got = best_fetched(batch, ids, distance, query_norms, 1.5, heavy, heavy_scores, liked, k)
    want = _best_fetched_reference(
        batch, ids, distance, query_norms, 1.5, heavy, heavy_scores, liked, k
    )
    assert len(want[0]) > b * min(k, 2) * 0.9  # the data is not trivial
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_csr_values_are_scipys_fancy_indexing(dtype):
    rng = np.random.default_rng(8)
    m = _random_csr(rng, (120, 90), 0.08, dtype)  # duplicates summed, some rows empty
    m = sp.csr_matrix((m.data[::-1], m.indices[::-1], m.indptr), shape=m.shape)  # unsorted rows
    rows, cols = rng.integers(0, 120, 5000), rng.integers(0, 90, 5000)
    want = np.asarray(m[rows, cols]).ravel().astype(np.float32)
    assert np.count_nonzero(want) > 100
    np.testing.assert_array_equal(csr_values(m, rows, cols), want)
    assert len(csr_values(sp.csr_matrix((3, 3)), rows[:4] % 3, cols[:4] % 3)) == 4


@pytest.mark.parametrize("budget", [0, 1, 3, 10, 1000])
def test_within_group_budget_ranks_like_the_three_key_lexsort(budget):
    from tribes.sparse import rank_within

    rng = np.random.default_rng(9)
    n = 4000
    groups = rng.integers(0, 60, n) ** 2 // 60  # uneven group sizes
    score = (rng.integers(0, 6, n) / 2).astype(np.float32)  # many ties on score...
    tiebreak = rng.integers(0, 40, n).astype(np.uint64)  # ...and some on the tie-break too
    want = rank_within(groups, np.lexsort((tiebreak, -score, groups))) < budget
    got = within_group_budget(groups, score, tiebreak, budget)
    assert budget == 1000 or not want.all()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("budget", [0, 1, 2, 5, 1000])
def test_within_column_budget_matches_the_group_budget_with_pair_hashes(budget):
    from tribes.ranking import pair_hash

    rng = np.random.default_rng(11)
    per_row = rng.integers(0, 15, 300)
    starts = np.r_[0, np.cumsum(per_row)]
    rows = np.repeat(np.arange(300), per_row)
    cols = (rng.integers(0, 40, len(rows)) ** 2 // 40).astype(np.int32)  # a few crowded columns
    score = (rng.integers(0, 4, len(rows)) / 4).astype(np.float32)  # ties everywhere
    want = within_group_budget(cols, score, pair_hash(rows, cols, 7), budget)
    keep, kept = within_column_budget(starts, cols, score, budget, 7)
    assert budget == 1000 or not want.all()
    np.testing.assert_array_equal(keep, want)
    np.testing.assert_array_equal(kept, np.bincount(rows[want], minlength=300))
    # Another seed breaks the ties differently, never the scores' order.
    other, _ = within_column_budget(starts, cols, score, budget, 8)
    if 0 < budget < 1000:
        assert not np.array_equal(other, keep)
    empty_keep, empty_kept = within_column_budget(
        np.zeros(4, np.int64), cols[:0], score[:0], budget, 7
    )
    assert empty_keep.shape == (0,) and empty_kept.tolist() == [0, 0, 0]
