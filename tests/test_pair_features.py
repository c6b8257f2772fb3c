"""Engagement features per pair (tribes.ranking.pair_features): ``mutual_share``."""

from __future__ import annotations

import numpy as np

from tribes.model import _candidates, snapshot_from
from tribes.params import Params
from tribes.ranking import PairInputs, candidate_pairs, pair_features
from tribes.synth import SynthConfig, generate


def test_mutual_share_is_the_adamic_adar_sum_relative_to_the_users_best_in_any_block():
    snap = snapshot_from(list(generate(SynthConfig(n_users=300, seed=2))))
    ctx, candidates, _ = _candidates(snap, Params(seed=1), False)
    union = candidate_pairs(snap.n_users, candidates)
    feats = pair_features(ctx, candidates, union)
    rows = np.repeat(np.arange(snap.n_users), np.diff(union.indptr))
    share, mutual = feats["mutual_share"], feats["mutual_count"]
    assert share.dtype == np.float32 and (share >= 0).all() and (share <= 1).all()
    for u in range(snap.n_users):  # slow reference: each user's sums over their largest
        mine = rows == u
        peak = mutual[mine].max(initial=0)
        want = mutual[mine] / peak if peak > 0 else np.zeros(int(mine.sum()), np.float32)
        assert np.allclose(share[mine], want, rtol=1e-6, atol=0)
    assert (share == 1).sum() >= np.count_nonzero(np.bincount(rows, weights=mutual > 0))
    # A block of users gives the same values as the whole.
    inputs, start, stop = PairInputs.of(ctx), 100, 220
    block = {name: m.tocsr()[start:stop] for name, m in candidates.items()}
    part = pair_features(
        ctx, block, candidate_pairs(stop - start, block), start=start, inputs=inputs
    )
    lo, hi = union.indptr[start], union.indptr[stop]
    assert np.array_equal(part["mutual_share"], share[lo:hi])
