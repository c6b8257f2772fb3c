"""tribes.sparse helpers against slow references."""


def test_top_k_per_row_matches_a_per_row_sort_with_ties_by_smaller_column():
    import numpy as np
    import scipy.sparse as sp

    from tribes.sparse import top_k_per_row

    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, 40, 3000), rng.integers(0, 60, 3000)
    vals = rng.integers(1, 4, 3000).astype(np.float32)  # many ties; duplicates get summed
    m = sp.coo_matrix((vals, (rows, cols)), shape=(40, 60)).tocsr()
    row_of = np.repeat(np.arange(40), np.diff(m.indptr))
    flip = np.lexsort((-m.indices, row_of))  # columns descending within each row: not canonical
    m = sp.csr_matrix((m.data[flip], m.indices[flip], m.indptr), shape=m.shape)
    assert not m.has_sorted_indices
    got = top_k_per_row(m, 7).toarray()
    dense = m.toarray()
    for r in range(40):
        nz = np.flatnonzero(dense[r])
        best = sorted(nz, key=lambda c: (-dense[r, c], c))[:7]
        expected = np.zeros(60, dtype=np.float32)
        expected[best] = dense[r, best]
        assert np.array_equal(got[r], expected), r


def test_top_k_per_row_orders_negative_zero_and_float64_values_like_a_per_row_sort():
    import numpy as np
    import scipy.sparse as sp

    from tribes.sparse import top_k_per_row

    rng = np.random.default_rng(11)
    for dtype in (np.float32, np.float64):
        rows, cols = rng.integers(0, 30, 2000), rng.integers(0, 80, 2000)
        vals = rng.choice(
            np.array([-2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, 1e-30, -1e-30]), 2000
        ).astype(dtype)
        m = sp.csr_matrix((vals, (rows, cols)), shape=(30, 80))
        m.sum_duplicates()
        for k in (1, 5, 40):
            got = top_k_per_row(m, k)
            for r in range(30):
                cs, vs = (
                    m.indices[m.indptr[r] : m.indptr[r + 1]],
                    m.data[m.indptr[r] : m.indptr[r + 1]],
                )
                best = sorted(zip(cs, vs, strict=True), key=lambda cv: (-cv[1], cv[0]))[:k]
                row = got[r]
                assert sorted(row.indices.tolist()) == sorted(c for c, _ in best), (dtype, k, r)
                assert got.dtype == dtype


def test_entry_keys_and_in_sorted_find_exactly_the_stored_entries():
    import numpy as np
    import scipy.sparse as sp

    from tribes.sparse import entry_keys, in_sorted

    m = sp.random(50, 70, density=0.1, format="csr", random_state=3, dtype=np.float32)
    keys = entry_keys(m)
    assert np.all(np.diff(keys) > 0)
    rows, cols = np.divmod(np.arange(50 * 70), 70)
    got = in_sorted(keys, rows * 70 + cols).reshape(50, 70)
    assert np.array_equal(got, m.toarray() != 0)
    assert not in_sorted(keys[:0], keys).any()
    from tribes.sparse import entry_rows

    assert (
        np.array_equal(entry_rows(m), m.tocoo().row) and entry_rows(m, np.int32).dtype == np.int32
    )


def test_top_k_per_row_prefilter_keeps_exactly_the_same_entries(monkeypatch):
    """The linear pre-filter of long rows (bins between each row's min and max) must not change
    which entries survive: ties, constant rows, negative values and k above some rows' length."""
    import numpy as np
    import scipy.sparse as sp

    from tribes import sparse

    rng = np.random.default_rng(8)
    for trial in range(12):
        r, c = rng.integers(0, 200, 60_000), rng.integers(0, 3000, 60_000)
        v = [rng.random(60_000), rng.integers(0, 4, 60_000), rng.standard_normal(60_000) * 1e3][
            trial % 3
        ]
        v = v.astype(np.float32)
        v[r < 10] = 2.0  # constant rows
        m = sp.csr_matrix((v, (r, c)), shape=(200, 3000))
        k = int(rng.integers(1, 400))
        monkeypatch.setattr(sparse, "_PREFILTER_MIN", 0)
        fast = sparse.top_k_per_row(m, k)
        monkeypatch.setattr(sparse, "_PREFILTER_MIN", 10**12)
        plain = sparse.top_k_per_row(m, k)
        assert np.array_equal(fast.indptr, plain.indptr) and np.array_equal(
            fast.indices, plain.indices
        )
        assert np.array_equal(fast.data, plain.data)


def test_descending_key_orders_by_group_then_value_descending_and_holds_the_value():
    import numpy as np

    from tribes.sparse import descending_key, key_value

    rng = np.random.default_rng(12)
    group = rng.integers(0, 5, 3000)
    values = rng.choice(
        np.array([-3.5, -1e-30, -0.0, 0.0, 1e-30, 0.25, 7.0, 3e38], np.float32), 3000
    )
    keys = descending_key(group, values)
    assert np.array_equal(np.argsort(keys, kind="stable"), np.lexsort((-values, group)))
    # -0.0 → +0.0
    assert np.array_equal(key_value(keys).view(np.uint32), (values + np.float32(0)).view(np.uint32))
