"""Learn the engagement weights from the data itself (self-supervised, per recompute).

Fixed weights cannot suit every network: on a pure friendship graph mutual contacts predict
new ties best, on a Q&A site shared topics do, in messaging the people one's contacts talk
with. So before ranking, the pipeline is run on the *earlier* part of the snapshot (before
the ``learn_holdout`` quantile of interaction times), every candidate pair gets its
features, and a logistic regression with non-negative weights learns which features
predicted the pairs that interacted afterwards (a reply either way, or a follow). The
learned weights replace ``w_*`` for the final ranking, scaled to whichever of
``ENGAGE_TOTALS`` ranks the held-out pairs best (how much strong evidence saturates differs
by network: on a friendship graph mutual contacts should keep ranking, in messaging the
candidate's answer rate and activity should decide among the strong).
Nothing here looks at evaluation data: the held-out slice is inside the training snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from .params import Params
from .ranking import ENGAGE_WEIGHTS, candidate_pairs, pair_features, rank_people
from .snapshot import Snapshot
from .sparse import aligned_values, binary, drop_diagonal

__all__ = ["learn_engage_weights", "learning_sample", "snapshot_before"]

MIN_POSITIVES = 30
MAX_PAIRS = 400_000
#: Candidate sums of the learned weights: the scale sets how soon ``p(engage) = 1 - e^{-z}``
#: saturates (small: strong evidence keeps ranking; large: answer rate and activity decide
#: among the strong). Chosen per recompute by the recall of the held-out pairs.
ENGAGE_TOTALS = (2.0, 4.0, 7.0, 12.0)
RECALL_AT = 20


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


def _new_two_way_pairs(snap: Snapshot, cut: float) -> sp.csr_matrix:
    """(U, U) 1 where u and v replied to each other after ``cut`` and had not both before."""
    n = snap.n_users
    replied = snap.post_parent >= 0
    a = snap.post_author[replied]
    b = snap.post_author[snap.post_parent[replied]]
    late = snap.post_ts[replied] > cut

    def two_way(mask: np.ndarray) -> sp.csr_matrix:
        m = binary(sp.csr_matrix((np.ones(int(mask.sum()), np.float32), (a[mask], b[mask])), shape=(n, n)))
        return drop_diagonal(m.multiply(m.T)).tocsr()

    after, before = two_way(late), two_way(~late)
    return binary((after - after.multiply(before)).tocsr())


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
    goal = None  # the pairs whose recall picks the scale: new two-way partners where there are enough
    if np.ptp(times) > 0:
        cut = float(np.quantile(times, 1.0 - params.learn_holdout))
        future = _future_pairs(snap, cut)
        past = snapshot_before(snap, cut)
        goal = _new_two_way_pairs(snap, cut)
        goal = goal if goal.nnz >= 2 * MIN_POSITIVES else None
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
    best = None
    for total in ENGAGE_TOTALS:  # how saturating p(engage) is: chosen by held-out recall
        weights = {weight: round(float(v), 4)
                   for (_, weight), v in zip(ENGAGE_WEIGHTS.items(), w * (total / w.sum()), strict=True)}
        ranked = rank_people(replace(ctx, params=replace(params, **weights)), candidates, feats)
        recall = _list_recall(ranked.items, future if goal is None else goal, ctx.query)
        if best is None or recall > best[0] + 1e-9:
            best = (recall, weights)
    return best[1]


def _list_recall(items: np.ndarray, future: sp.csr_matrix, query: np.ndarray | None) -> float:
    """Share of the future pairs of the (queried) users that their top ``RECALL_AT`` items hold."""
    n = items.shape[0]
    top = items[:, :RECALL_AT]
    rows = np.repeat(np.arange(n), top.shape[1])
    ok = top.ravel() >= 0
    listed = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (rows[ok], top.ravel()[ok])), shape=future.shape)
    users = np.ones(n, dtype=bool) if query is None else query
    truth = sp.diags(users.astype(np.float32)) @ binary(future)
    return float(binary(listed).multiply(truth).sum() / max(truth.sum(), 1.0))
