"""Candidate sources on tiny hand-made networks (exact values)."""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest

from tribes.candidates import _row_chunks, _rows_to_csr, contact_graph
from tribes.model import _candidates, snapshot_from
from tribes.params import Params
from tribes.synth import SynthConfig, generate

T0 = 1_790_000_000


def _follows(*pairs: tuple[str, str]) -> list[dict]:
    users = sorted({u for pair in pairs for u in pair})
    return [{"type": "user", "id": u, "ts": T0} for u in users] + [
        {"type": "follow", "src": s, "dst": d, "ts": T0 + i + 1} for i, (s, d) in enumerate(pairs)
    ]


# a and c share m1 (a→m1, m1→c) and m2 (a→m2, c→m2), each with 2 contacts, and the hub h
# (4 contacts: a, c, x, y).
_SHARED_AND_HUB = (
    ("a", "m1"),
    ("m1", "c"),
    ("a", "m2"),
    ("c", "m2"),
    ("a", "h"),
    ("c", "h"),
    ("x", "h"),
    ("y", "h"),
)


def test_mutual_contacts_are_adamic_adar_over_contacts_either_way_and_skip_hubs():
    # A hub cap of 3 leaves h out.
    snap = snapshot_from(_follows(*_SHARED_AND_HUB))
    index = snap.user_index()
    _, candidates, _ = _candidates(
        snap, Params(mutual_contacts_hub_degree=3, learn_weights=0), False
    )
    mutual = candidates["follow_2hop"].tocsr()
    a, c = index["a"], index["c"]
    assert math.isclose(mutual[a, c], 2 / math.log(2), rel_tol=1e-5)
    assert math.isclose(mutual[c, a], 2 / math.log(2), rel_tol=1e-5)
    # x and y share only the hub with a and c: skipped, so no mutual-contact candidates.
    assert mutual[index["x"]].nnz == 0
    _, with_hub, _ = _candidates(snap, Params(learn_weights=0), False)
    assert math.isclose(
        with_hub["follow_2hop"].tocsr()[a, c], 2 / math.log(2) + 1 / math.log(4), rel_tol=1e-5
    )


def test_mutual_contacts_by_resource_allocation_count_each_contact_as_one_over_its_contacts():
    # The same network: m1 and m2 have 2 contacts, h has 4. Resource allocation: 1/2 + 1/2 + 1/4.
    snap = snapshot_from(_follows(*_SHARED_AND_HUB))
    index = snap.user_index()
    params = Params(mutual_contacts_index="resource_allocation", learn_weights=0)
    _, candidates, _ = _candidates(snap, params, False)
    mutual = candidates["follow_2hop"].tocsr()
    assert math.isclose(mutual[index["a"], index["c"]], 1 / 2 + 1 / 2 + 1 / 4, rel_tol=1e-5)
    assert math.isclose(mutual[index["x"], index["y"]], 1 / 4, rel_tol=1e-5)
    # A well-connected contact counts for less than under Adamic-Adar (1/4 < 1/log 4).
    _, adamic_adar, _ = _candidates(snap, Params(learn_weights=0), False)
    assert math.isclose(
        adamic_adar["follow_2hop"].tocsr()[index["x"], index["y"]], 1 / math.log(4), rel_tol=1e-5
    )
    with pytest.raises(ValueError, match="mutual_contacts_index"):
        Params(mutual_contacts_index="jaccard").validate()


def test_contact_graph_is_symmetric_without_self_loops():
    snap = snapshot_from(_follows(("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")))
    _, _, extras = _candidates(snap, Params(learn_weights=0), False)
    c = contact_graph(extras["graph"])
    assert (c != c.T).nnz == 0
    assert c.diagonal().sum() == 0
    assert c.nnz == 8


def test_row_chunks_cover_every_row_once_and_bound_the_work():
    import scipy.sparse as sp

    left = sp.random(1000, 300, density=0.02, random_state=1, format="csr")
    right = sp.random(300, 500, density=0.05, random_state=2, format="csr")
    work = left @ np.diff(right.indptr).astype(float)
    chunks = _row_chunks(left, right, max_work=2000)
    assert chunks[0][0] == 0 and chunks[-1][1] == 1000
    assert all(b == c for (_, b), (c, _) in pairwise(chunks))
    for a, b in chunks:  # within budget, unless a single row is itself bigger than it
        assert work[a:b].sum() <= 2000 + work[a:b].max() or b - a == 1


def test_approximate_als_searching_every_cell_finds_the_exact_candidates():
    from tribes.candidates import als
    from tribes.sparse import binary

    snap = snapshot_from(list(generate(SynthConfig(n_users=3000, seed=11))))
    ctx, _, _ = _candidates(snap, Params(seed=2, learn_weights=0), False)
    exact = als(ctx).tocsr()
    every_cell = als(
        replace(ctx, params=replace(ctx.params, als_exact_max_users=0, als_ann_probe=10**6))
    ).tocsr()
    few_cells = als(
        replace(ctx, params=replace(ctx.params, als_exact_max_users=0, als_ann_probe=1))
    ).tocsr()
    assert exact.nnz > 1000
    both = binary(exact).multiply(binary(every_cell)).sum()
    assert both >= 0.98 * exact.nnz and abs(every_cell.nnz - exact.nnz) <= 0.02 * exact.nnz
    # Nobody is suggested to themselves or someone they already interact with.
    liked = binary(ctx.graph.interaction)
    for m in (every_cell, few_cells):
        assert m.diagonal().sum() == 0 and m.multiply(liked).nnz == 0
    # One cell of many is an approximation: fewer of the exact pairs, but still most of some.
    assert binary(exact).multiply(binary(few_cells)).sum() < both


def test_approximate_als_finds_the_best_people_when_factor_norms_are_heavy_tailed(monkeypatch):
    """At 1M users a few factor norms were ~2,700x the median: lifting every item to the largest
    norm left the cells nearest each query holding only those few, and the source found almost
    nothing. The largest 0.1% are now scored exactly and the rest lifted to the quantile."""
    from types import SimpleNamespace

    import numpy as np
    import scipy.sparse as sp

    from tribes import candidates
    from tribes.params import Params

    rng = np.random.default_rng(3)
    n, k = 6000, 20
    users = rng.standard_normal((n, 8)).astype(np.float32)
    items = rng.standard_normal((n, 8)).astype(np.float32) * np.float32(0.01)
    items[rng.choice(n, 4, replace=False)] *= 3000  # a few huge norms
    model = SimpleNamespace(user_factors=users, item_factors=items)
    liked = sp.csr_matrix(
        (np.ones(n, np.float32), (np.arange(n), (np.arange(n) + 1) % n)), shape=(n, n)
    )
    active = np.arange(n)
    params = Params(als_ann_probe=8)

    def recall() -> float:
        found = candidates._als_approximate(model, liked, active, k, params)
        got = total = 0
        for u in rng.choice(n, 200, replace=False):
            s = items @ users[u]
            s[[u, (u + 1) % n]] = -np.inf
            s[s <= 0] = -np.inf
            best = set(np.argsort(-s, kind="stable")[:k][np.isfinite(np.sort(-s)[:k])].tolist())
            got += len(best & set(found[u].indices.tolist()))
            total += len(best)
        return got / total

    new = recall()
    monkeypatch.setattr(candidates, "_HEAVY_SHARE", 0.0)  # the old index: lift to the largest norm
    old = recall()
    assert new >= 0.8 and old < 0.5, (new, old)


def test_rows_to_csr_builds_what_scipy_builds_from_the_concatenated_parts():
    import scipy.sparse as sp

    rng = np.random.default_rng(3)
    n = 50
    users = rng.permutation(n)[:40]
    parts = []
    for group in np.array_split(users, 6):  # each user in one part, parts in any user order
        group = np.sort(group)
        count = rng.integers(0, 6, len(group))
        rows = np.repeat(group, count).astype(np.int64)
        cols = np.concatenate([rng.choice(n, c, replace=False) for c in count]).astype(np.int64)
        parts.append((rows, cols, rng.random(len(rows)).astype(np.float32)))
    rows, cols, vals = (np.concatenate(x) for x in zip(*parts, strict=True))
    want = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    got = _rows_to_csr(parts, n)
    assert got.has_sorted_indices and got.dtype == np.float32 and got.nnz == len(rows) > 0
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)
    assert _rows_to_csr([], n).nnz == 0
    with pytest.raises(ValueError, match="more than one part"):
        _rows_to_csr([parts[1], parts[1]], n)
