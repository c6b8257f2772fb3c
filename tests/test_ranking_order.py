"""tribes.ranking list order: the fast path for pairs in (row, col) order equals the general sort."""

from __future__ import annotations

import numpy as np

from tribes.ranking import diversify, list_positions


def test_list_order_is_the_same_whatever_order_the_pairs_come_in():
    rng = np.random.default_rng(7)
    rows = np.sort(rng.integers(0, 50, 4000))
    cols = rng.integers(0, 300, 4000)
    # canonical: (row, col) sorted, unique
    keep = np.unique(rows * 1000 + cols, return_index=True)[1]
    rows, cols = rows[keep], cols[keep]
    score = rng.integers(1, 5, len(rows)).astype(np.float32)  # many ties
    tribe = rng.integers(-1, 6, 300)[cols]
    shuffle = rng.permutation(len(rows))
    diversified = diversify(rows, cols, score, tribe, 0.9)
    assert np.array_equal(
        diversify(rows[shuffle], cols[shuffle], score[shuffle], tribe[shuffle], 0.9),
        diversified[shuffle],
    )
    position = list_positions(rows, cols, diversified)
    assert np.array_equal(
        list_positions(rows[shuffle], cols[shuffle], diversified[shuffle]), position[shuffle]
    )
    # Positions: best score first, ties by the smaller candidate.
    for r in range(50):
        mine = np.flatnonzero(rows == r)
        expected = sorted(mine, key=lambda i: (-diversified[i], cols[i]))
        assert [int(position[i]) for i in expected] == list(range(len(mine)))
