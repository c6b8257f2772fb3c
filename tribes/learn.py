"""Learn the engagement weights from the data itself (self-supervised, per recompute).

Fixed weights cannot suit every network: on a pure friendship graph mutual contacts predict
new ties best, on a Q&A site shared topics do, in messaging the people one's contacts talk
with. So before ranking, the pipeline is run on the *earlier* part of the snapshot (before
the ``learn_holdout`` quantile of interaction times), every candidate pair gets its
features, and a logistic regression with non-negative weights learns which features
predicted the pairs that interacted afterwards (a reply either way, or a follow). The
learned weights, rescaled to the defaults' total, replace ``w_*`` for the final ranking.
Nothing here looks at evaluation data: the held-out slice is inside the training snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from .params import Params
from .ranking import ENGAGE_WEIGHTS, candidate_pairs, pair_features
from .snapshot import Snapshot
from .sparse import aligned_values

__all__ = ["learn_engage_weights", "learning_sample", "snapshot_before"]

MIN_POSITIVES = 30
MAX_PAIRS = 400_000


def snapshot_before(snap: Snapshot, cut: float) -> Snapshot:
    """The snapshot as it was at ``cut``: follows and posts after it removed (users kept)."""
    keep_f = snap.follow_ts <= cut
    keep_p = np.flatnonzero(snap.post_ts <= cut)
    new_index = np.full(snap.n_posts, -1, dtype=np.int64)
    new_index[keep_p] = np.arange(len(keep_p))
    parent = snap.post_parent[keep_p]
    parent = np.where(parent >= 0, new_index[np.maximum(parent, 0)], -1).astype(np.int32)
    threads_used = np.unique(snap.post_thread[keep_p])
    thread_map = np.full(snap.n_threads, -1, dtype=np.int64)
    thread_map[threads_used] = np.arange(len(threads_used))
    return replace(
        snap,
        follow_src=snap.follow_src[keep_f], follow_dst=snap.follow_dst[keep_f], follow_ts=snap.follow_ts[keep_f],
        post_ids=snap.post_ids[keep_p], post_author=snap.post_author[keep_p], post_ts=snap.post_ts[keep_p],
        post_parent=parent, post_thread=thread_map[snap.post_thread[keep_p]].astype(np.int32),
        post_text=[snap.post_text[i] for i in keep_p], post_tags=[snap.post_tags[i] for i in keep_p],
        thread_ids=snap.thread_ids[threads_used], now=float(cut),
    )


def _future_pairs(snap: Snapshot, cut: float) -> sp.csr_matrix:
    """(U, U) 1 where u and v interacted after ``cut``: a reply either way or u followed v."""
    n = snap.n_users
    late = np.flatnonzero((snap.post_ts > cut) & (snap.post_parent >= 0))
    a = snap.post_author[late]
    b = snap.post_author[snap.post_parent[late]]
    fl = snap.follow_ts > cut
    rows = np.concatenate([a, b, snap.follow_src[fl]]).astype(np.int64)
    cols = np.concatenate([b, a, snap.follow_dst[fl]]).astype(np.int64)
    keep = rows != cols
    m = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows[keep], cols[keep])), shape=(n, n))
    m.sum_duplicates()
    m.data[:] = 1
    return m


def learning_sample(n_users: int, params: Params) -> np.ndarray | None:
    """(U,) bool mask of at most ``learn_max_users`` users (seeded), or None for all."""
    if params.learn_max_users <= 0 or n_users <= params.learn_max_users:
        return None
    mask = np.zeros(n_users, dtype=bool)
    mask[np.random.default_rng(params.seed).choice(n_users, params.learn_max_users, replace=False)] = True
    return mask


def _fit_nonnegative_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Class-balanced logistic regression, weights >= 0, free intercept. Returns the weights."""
    pos = y.sum()
    sample_w = np.where(y > 0, 0.5 / max(pos, 1), 0.5 / max(len(y) - pos, 1))

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        log1pexp = np.logaddexp(0, z)
        value = np.sum(sample_w * (log1pexp - y * z)) + l2 * w @ w
        sig = 1.0 / (1.0 + np.exp(-z))
        grad_z = sample_w * (sig - y)
        return value, np.concatenate([x.T @ grad_z + 2 * l2 * w, [grad_z.sum()]])

    start = np.concatenate([np.full(x.shape[1], 0.1), [0.0]])
    bounds = [(0.0, None)] * x.shape[1] + [(None, None)]
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x[:-1]


def learn_engage_weights(snap: Snapshot, params: Params,
                         candidates_for: Callable[[Snapshot, Params], tuple]) -> dict[str, float] | None:
    """Learned ``w_*`` values, or None when the held-out slice has too few interactions.

    ``candidates_for(snapshot, params, query)`` runs the pipeline up to the candidates and
    returns ``(ctx, candidates)`` — the caller's own stages, so learning sees exactly what ranking
    sees. ``query`` (a (U,) bool mask or None) limits candidate generation to a seeded sample
    of ``params.learn_max_users`` users: graph, affinity and tribes still use everybody, so the
    features are those of the full network, while the per-user work stays bounded.
    """
    times = np.concatenate([snap.post_ts, snap.follow_ts])
    if len(times) < 100:
        return None
    if np.ptp(times) > 0:
        cut = float(np.quantile(times, 1.0 - params.learn_holdout))
        future = _future_pairs(snap, cut)
        past = snapshot_before(snap, cut)
    else:  # no time to split on (e.g. SNAP ego networks): hold out a random share of follows
        held = np.random.default_rng(params.seed).random(len(snap.follow_src)) < params.learn_holdout
        future = sp.csr_matrix((np.ones(int(held.sum()), np.float32),
                                (snap.follow_src[held], snap.follow_dst[held])), shape=(snap.n_users,) * 2)
        past = replace(snap, follow_src=snap.follow_src[~held], follow_dst=snap.follow_dst[~held],
                       follow_ts=snap.follow_ts[~held])
    if future.nnz < MIN_POSITIVES:
        return None
    ctx, candidates = candidates_for(past, params, learning_sample(past.n_users, params))
    union = candidate_pairs(past.n_users, candidates)
    if union.nnz == 0:
        return None
    feats = pair_features(ctx, candidates, union)
    y = (aligned_values(union, future) > 0).astype(np.float64)
    if y.sum() < MIN_POSITIVES:
        return None
    x = np.column_stack([feats[name] for name in ENGAGE_WEIGHTS]).astype(np.float64)
    if len(y) > MAX_PAIRS:
        pick = np.random.default_rng(params.seed).choice(len(y), MAX_PAIRS, replace=False)
        x, y = x[pick], y[pick]
    w = _fit_nonnegative_logistic(x, y)
    if not np.isfinite(w).all() or w.sum() <= 0:
        return None
    defaults = Params()
    total = sum(getattr(defaults, weight) for weight in ENGAGE_WEIGHTS.values())
    w = w * (total / w.sum())
    return {weight: round(float(v), 4) for (_, weight), v in zip(ENGAGE_WEIGHTS.items(), w, strict=True)}
