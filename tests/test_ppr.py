"""tribes.ppr: forward push against exact PPR (a dense linear solve) on small graphs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tribes.ppr import ppr_batch, ppr_forward_push

ALPHA = 0.15


def exact_ppr(dense: np.ndarray, sources, alpha: float = ALPHA):
    """(start distribution s, matrix M) with ``M[u] = alpha * e_u^T (I - (1 - alpha) P)^-1``.

    ``P`` is ``dense`` row-normalised; dangling rows jump to ``s``. ``s @ M`` is the PPR vector
    and ``M[u]`` the PPR of ``u`` under the same dangling rule (what the push residuals owe).
    """
    n = dense.shape[0]
    s = np.zeros(n)
    src = np.unique(np.atleast_1d(sources))
    s[src] = 1.0 / src.size
    totals = dense.sum(axis=1)
    walk = np.where(totals[:, None] > 0, dense / np.where(totals > 0, totals, 1)[:, None], s)
    return s, alpha * np.linalg.inv(np.eye(n) - (1 - alpha) * walk)


def as_vector(nodes: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n)
    out[nodes] = scores
    return out


def random_graph(n: int, p: float, seed: int, weighted: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n, n)) < p).astype(float)
    np.fill_diagonal(dense, 0.0)
    dense[rng.integers(0, n, 3)] = 0.0  # some dangling nodes
    return dense * rng.uniform(0.1, 3.0, (n, n)) if weighted else dense


def push(dense: np.ndarray, sources, weighted: bool = True, **kw):
    g = sp.csr_matrix(dense)
    return ppr_forward_push(g.indptr, g.indices, g.data if weighted else None, sources, **kw)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("epsilon", [1e-2, 1e-3, 1e-5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_exact_within_push_bound(weighted, epsilon, seed):
    dense = random_graph(40, 0.1, seed, weighted)
    s, m = exact_ppr(dense, 5)
    exact = s @ m
    p = as_vector(*push(dense, 5, weighted, epsilon=epsilon), 40)
    # ppr - p = sum_u r[u] m[u] with r[u] < epsilon * max(deg(u), 1).
    bound = epsilon * np.maximum((dense > 0).sum(axis=1), 1) @ m
    assert np.all(p <= exact + 1e-12)
    assert np.all(exact - p <= bound + 1e-12)


def test_converges_to_exact():
    dense = random_graph(30, 0.15, 7, weighted=True)
    s, m = exact_ppr(dense, 3)
    p = as_vector(*push(dense, 3, epsilon=1e-12, max_pushes=10**7), 30)
    np.testing.assert_allclose(p, s @ m, atol=1e-9)


def test_symmetric_graph_error_below_epsilon_degree():
    rng = np.random.default_rng(4)
    upper = np.triu(rng.random((50, 50)) < 0.12, 1)
    dense = (upper | upper.T).astype(float)
    deg = dense.sum(axis=1)
    src = int(np.argmax(deg))
    for eps in (1e-2, 1e-3, 1e-4):
        s, m = exact_ppr(dense, src)
        p = as_vector(*push(dense, src, weighted=False, epsilon=eps), 50)
        assert np.all(s @ m - p < eps * np.maximum(deg, 1) + 1e-12)
    # Reversibility of the walk on an undirected graph: ppr_u(v) / deg(v) = ppr_v(u) / deg(u).
    v = src
    u = int(np.argmin(np.where(deg > 0, deg, np.inf)))  # the least connected, far from v
    ppr_u = as_vector(*push(dense, u, weighted=False, epsilon=1e-12, max_pushes=10**7), 50)
    ppr_v = as_vector(*push(dense, v, weighted=False, epsilon=1e-12, max_pushes=10**7), 50)
    assert u != v and ppr_u[v] > 0
    assert ppr_u[v] / deg[v] == pytest.approx(ppr_v[u] / deg[u], rel=1e-7)


def test_dangling_mass_returns_to_source():
    # 0 -> 1 -> 2, and 2 has no out-edges: the walk is a cycle 0 -> 1 -> 2 -> 0.
    dense = np.zeros((3, 3))
    dense[0, 1] = dense[1, 2] = 1.0
    cycle = dense.copy()
    cycle[2, 0] = 1.0
    p = as_vector(*push(dense, 0, epsilon=1e-12, max_pushes=10**6), 3)
    s, m = exact_ppr(cycle, 0)
    np.testing.assert_allclose(p, s @ m, atol=1e-10)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    # A row whose weights sum to 0 is dangling too.
    indptr, indices, weights = np.array([0, 1, 2, 3]), np.array([1, 2, 1]), np.array([1.0, 1.0, 0])
    got = ppr_forward_push(indptr, indices, weights, 0, epsilon=1e-12, max_pushes=10**6)
    np.testing.assert_allclose(as_vector(*got, 3), s @ m, atol=1e-10)


def test_isolated_source_keeps_all_mass():
    dense = np.zeros((4, 4))
    dense[1, 2] = 1.0
    nodes, scores = push(dense, 0, epsilon=1e-9, max_pushes=10**6)
    assert nodes.tolist() == [0]
    assert scores[0] == pytest.approx(1.0, abs=1e-8)


def test_multiple_sources_uniform_and_repeats_ignored():
    dense = random_graph(30, 0.12, 5, weighted=True)
    s, m = exact_ppr(dense, [2, 9, 17])
    nodes, scores = push(dense, [17, 2, 9, 2], epsilon=1e-10, max_pushes=10**6)
    np.testing.assert_allclose(as_vector(nodes, scores, 30), s @ m, atol=1e-7)
    # Without dangling nodes PPR is linear in the start distribution.
    dense[np.arange(30), (np.arange(30) + 1) % 30] += 1.0
    nodes, scores = push(dense, [17, 2, 9], epsilon=1e-10, max_pushes=10**6)
    single = [as_vector(*push(dense, x, epsilon=1e-10, max_pushes=10**6), 30) for x in (2, 9, 17)]
    np.testing.assert_allclose(as_vector(nodes, scores, 30), np.mean(single, axis=0), atol=1e-7)
    assert {2, 9, 17} <= set(nodes.tolist())


def test_sources_always_included_even_above_threshold():
    dense = np.ones((200, 200)) - np.eye(200)
    nodes, scores = push(dense, 0, weighted=False, epsilon=0.1)  # 1 < 0.1 * 199
    assert nodes.tolist() == [0] and scores[0] == pytest.approx(ALPHA)


def test_max_pushes_respected():
    dense = random_graph(60, 0.1, 3, weighted=False)
    for limit in (1, 2, 5, 17):
        nodes, scores = push(dense, 4, weighted=False, epsilon=1e-6, max_pushes=limit)
        assert 1 <= nodes.size <= limit
        assert 4 in nodes.tolist()
    nodes, scores = push(dense, 4, weighted=False, max_pushes=1)
    assert nodes.tolist() == [4] and scores.tolist() == [ALPHA]
    nodes, _ = push(dense, 4, weighted=False, max_pushes=0)
    assert nodes.size == 0


def test_output_sorted_and_deterministic():
    # A directed 6-cycle plus chords from 0: ties between symmetric nodes go by node id.
    n = 6
    dense = np.zeros((n, n))
    dense[np.arange(n), (np.arange(n) + 1) % n] = 1.0
    dense[0, [2, 3, 4]] = 1.0
    first = push(dense, 0, weighted=False, epsilon=1e-6)
    again = push(dense, 0, weighted=False, epsilon=1e-6)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    nodes, scores = first
    assert nodes[0] == 0 and nodes.dtype == np.int64 and scores.dtype == np.float64
    keys = list(zip((-scores).tolist(), nodes.tolist(), strict=True))
    assert keys == sorted(keys)
    star = np.zeros((5, 5))
    star[0, 1:] = star[1:, 0] = 1.0
    nodes, scores = push(star, 0, weighted=False, epsilon=1e-6)
    assert nodes.tolist() == [0, 1, 2, 3, 4]  # the four leaves tie
    assert np.all(scores[1:] == scores[1])


def test_validation():
    g = sp.csr_matrix(np.ones((3, 3)))
    args = (g.indptr, g.indices, None)
    with pytest.raises(ValueError, match="source"):
        ppr_forward_push(*args, 3)
    with pytest.raises(ValueError, match="source"):
        ppr_forward_push(*args, [])
    with pytest.raises(ValueError, match="alpha"):
        ppr_forward_push(*args, 0, alpha=1.0)
    with pytest.raises(ValueError, match="epsilon"):
        ppr_forward_push(*args, 0, epsilon=0.0)
    with pytest.raises(ValueError, match="weights"):
        ppr_forward_push(g.indptr, g.indices, np.ones(2), 0)
    with pytest.raises(ValueError, match="CSR"):
        ppr_forward_push(np.zeros(0, np.int64), np.zeros(0, np.int32), None, 0)
    with pytest.raises(ValueError, match="CSR"):
        ppr_forward_push(g.indptr, g.indices[:-1], None, 0)
    with pytest.raises(ValueError, match="integer"):
        ppr_forward_push(*args, 0.0)
    with pytest.raises(ValueError, match="square"):
        ppr_batch(sp.csr_matrix(np.ones((2, 3))), np.array([0]))
    with pytest.raises(ValueError, match="weights"):
        ppr_batch(sp.csr_matrix(-np.ones((2, 2))), np.array([0]))


def test_batch_top_k_excludes_source():
    dense = random_graph(40, 0.1, 11, weighted=True)
    g = sp.csr_matrix(dense)
    sources = np.array([3, 0, 3, 21])
    out = ppr_batch(g, sources, k=5, epsilon=1e-6)
    assert out.shape == (4, 40) and out.has_sorted_indices
    for i, s in enumerate(sources.tolist()):
        nodes, scores = ppr_forward_push(g.indptr, g.indices, g.data, s, epsilon=1e-6)
        keep = nodes != s
        want = dict(zip(nodes[keep][:5].tolist(), scores[keep][:5].tolist(), strict=True))
        row = out[i]
        assert dict(zip(row.indices.tolist(), row.data.tolist(), strict=True)) == want
        assert s not in row.indices.tolist()
    assert ppr_batch(g, np.array([], dtype=np.int64)).shape == (0, 40)
    as_array = ppr_batch(sp.csr_array(dense), sources, k=5, epsilon=1e-6)
    assert (as_array != out).nnz == 0
    assert ppr_batch(g, sources, k=0).nnz == 0


def test_batch_sums_duplicate_edges():
    # Edge 0 -> 1 given twice (weight 2 in total) against 0 -> 2 with weight 1.
    dup = sp.csr_matrix((np.ones(3), np.array([1, 1, 2]), np.array([0, 3, 3, 3])), shape=(3, 3))
    assert not dup.has_canonical_format
    out = ppr_batch(dup, np.array([0]), k=2, epsilon=1e-10)
    row = out.toarray()[0]
    assert row[1] == pytest.approx(2 * row[2])
