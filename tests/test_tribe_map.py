"""The tribe map: sizes, the share of conversation kept inside, and who talks with whom."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tribes.evaluation.tribe_map import plot_tribe_map, tribe_map

# Users 0-2 are tribe 0, 3-4 tribe 1, 5 in none. Directed weights: inside tribe 0 0→1 and 1→2
# (1 each), inside tribe 1 3→4 (2), between the tribes 2→3 (1), from tribe 1 to the loner 4→5 (3).
LABELS = np.array([0, 0, 0, 1, 1, -1])
EDGES = [(0, 1, 1.0), (1, 2, 1.0), (3, 4, 2.0), (2, 3, 1.0), (4, 5, 3.0)]


def interaction() -> sp.csr_matrix:
    src, dst, w = zip(*EDGES, strict=True)
    return sp.csr_matrix((w, (src, dst)), shape=(6, 6))


def test_sizes_inside_shares_and_between_weights_by_hand():
    found = tribe_map(interaction(), LABELS)
    np.testing.assert_array_equal(found.sizes, [3, 2])
    # Tribe 0: its members' ties weigh 1 + 2 + 2 = 5, of which 4 (both ends of 0-1 and 1-2) inside.
    # Tribe 1: 3 + 5 = 8, of which 4 (both ends of 3-4) inside; the tie to the loner is outside.
    np.testing.assert_allclose(found.inside, [4 / 5, 4 / 8])
    np.testing.assert_allclose(found.between, [[0.0, 1.0], [1.0, 0.0]])


def test_only_the_largest_tribes_and_ties_to_the_rest_count_as_outside():
    found = tribe_map(interaction(), LABELS, max_tribes=1)
    np.testing.assert_array_equal(found.sizes, [3])
    np.testing.assert_allclose(found.inside, [4 / 5])
    np.testing.assert_allclose(found.between, [[0.0]])


def test_a_tribe_without_ties_and_bad_input():
    found = tribe_map(sp.csr_matrix((3, 3)), np.array([0, 0, 1]))
    np.testing.assert_array_equal(found.sizes, [2, 1])
    np.testing.assert_array_equal(found.inside, [0.0, 0.0])
    with pytest.raises(ValueError, match="interaction"):
        tribe_map(sp.csr_matrix((2, 2)), LABELS)
    with pytest.raises(ValueError, match="max_tribes"):
        tribe_map(interaction(), LABELS, max_tribes=0)


def test_the_map_is_drawn(tmp_path):
    tribes = [{"label": "rust · embedded"}, {"label": "a label longer than the map has room for"}]
    path = plot_tribe_map(interaction(), LABELS, tribes, tmp_path / "map.png")
    assert path.stat().st_size > 1000


def test_the_map_of_no_tribe_or_one_tribe_is_drawn(tmp_path):
    nobody = plot_tribe_map(sp.csr_matrix((3, 3)), np.array([-1, -1, -1]), [], tmp_path / "a.png")
    pair = sp.csr_matrix(([1.0], ([0], [1])), shape=(3, 3))
    one = plot_tribe_map(pair, np.array([0, 0, -1]), [{"label": "x"}], tmp_path / "b.png")
    assert nobody.stat().st_size > 1000 and one.stat().st_size > 1000
    assert tribe_map(sp.csr_matrix((0, 0)), np.array([], dtype=int)).sizes.size == 0
