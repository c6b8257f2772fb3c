"""tribes.affinity: the topic nearest neighbours (bounded postings) and the tribe affinity."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tribes.affinity import _top_k_in_row_blocks, topic_neighbours
from tribes.graph import build_graph
from tribes.model import snapshot_from
from tribes.params import Params
from tribes.sparse import row_normalize, top_k_per_row
from tribes.synth import SynthConfig, generate


def old_topic_neighbours(user_topic, *, k, min_similarity, max_df, chunk=2048):
    """The formulation before postings were bounded: every user of a kept topic meets every
    other, masks built as sparse matrices."""
    n = user_topic.shape[0]
    df = np.bincount(user_topic.indices, minlength=user_topic.shape[1])
    keep_cols = np.flatnonzero((df <= max_df) & (df >= 2))
    x = row_normalize(user_topic[:, keep_cols], norm="l2").tocsr()
    xt = x.T.tocsr()
    parts = []
    for start in range(0, n, chunk):
        sims = (x[start : start + chunk] @ xt).tocsr()
        sims = sims.multiply(sims >= min_similarity).tocsr()
        rows = np.arange(sims.shape[0])
        local = sp.csr_matrix(
            (np.ones(rows.size, np.float32), (rows, rows + start)), shape=sims.shape
        )
        sims = (sims - sims.multiply(local)).tocsr()
        sims.eliminate_zeros()
        parts.append(top_k_per_row(sims, k))
    return sp.vstack(parts).tocsr().astype(np.float32)


@pytest.fixture(scope="module")
def user_topic() -> sp.csr_matrix:
    snap = snapshot_from(generate(SynthConfig(n_users=600, seed=4)))
    return build_graph(snap, Params()).user_topic


@pytest.mark.parametrize("chunk", [2048, 97])
def test_equal_to_the_old_product_when_no_topic_is_cut(user_topic, chunk):
    df = np.bincount(user_topic.indices, minlength=user_topic.shape[1])
    kw = {"k": 12, "min_similarity": 0.1, "max_df": 5000}
    assert 4 * kw["k"] < df.max() <= 5000  # the default bound (4 k) cuts some topics here
    want = old_topic_neighbours(user_topic, chunk=chunk, **kw)
    got = topic_neighbours(user_topic, chunk=chunk, max_postings=int(df.max()), **kw)
    assert want.nnz > 5 * user_topic.shape[0]
    for f in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(got, f), getattr(want, f))


def test_each_topic_pairs_users_with_its_heaviest_users_only():
    # 30 users on two topics: user i weighs i + 1 on topic 0 and 5 on topic 1, so after
    # normalisation topic 0's heaviest users are the last ones and topic 1's the first ones.
    n = 30
    rows = np.r_[np.arange(n), np.arange(n)]
    cols = np.r_[np.zeros(n, int), np.ones(n, int)]
    vals = np.r_[np.arange(1, n + 1), np.full(n, 5.0)].astype(np.float32)
    x = sp.csr_matrix((vals, (rows, cols)), shape=(n, 2))
    knn = topic_neighbours(x, k=n, min_similarity=0.0, max_df=n, max_postings=4)
    heaviest = set(range(n - 4, n)) | set(range(4))
    for u in range(n):
        assert set(knn[u].indices.tolist()) == heaviest - {u}  # never itself
    full = topic_neighbours(x, k=n, min_similarity=0.0, max_df=n, max_postings=n)
    assert all(full[u].nnz == n - 1 for u in range(n))
    # A pair's value sums the topics on which the neighbour is among the heaviest: user 29
    # only on topic 0, user 2 only on topic 1.
    xn = row_normalize(x, norm="l2").toarray()
    np.testing.assert_allclose(knn[15, n - 1], xn[15, 0] * xn[n - 1, 0], rtol=1e-6)
    np.testing.assert_allclose(knn[15, 2], xn[15, 1] * xn[2, 1], rtol=1e-6)
    assert knn[15, n - 1] < full[15, n - 1]


def test_top_k_in_row_blocks_equals_one_pass(user_topic):
    knn = topic_neighbours(user_topic, k=20, min_similarity=0.05, max_df=5000)
    want = top_k_per_row(knn, 5)
    got = _top_k_in_row_blocks(knn, 5, rows=37)
    assert got.dtype == want.dtype and got.indices.dtype == want.indices.dtype
    for f in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(got, f), getattr(want, f))
