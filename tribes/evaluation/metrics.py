"""Model-agnostic evaluation metrics: pure, vectorised functions of arrays.

Recommendation lists are ``(B, k)`` integer arrays of item indices, best first, ``-1``
padded; the truth is a binary scipy CSR ``(U, N)`` (e.g. ``Split.future_partners``).
Every function states its formula; each is tested against a slow reference in
``tests/test_eval_metrics.py``. ``modularity``, ``conductance`` and ``weak_community_share`` are re-exported from
:mod:`tribes.communities`.

>>> import numpy as np, scipy.sparse as sp
>>> truth = sp.csr_matrix(np.array([[0, 0, 1, 0, 0, 1]]))
>>> m = ranking_metrics(np.array([[5, 1, 2]]), np.array([0]), truth, k=3)
>>> round(m["recall"], 3), round(m["precision"], 3), m["mrr"], round(m["ndcg"], 4)
(1.0, 0.667, 1.0, 0.9197)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ..communities import conductance, modularity, weak_community_share

__all__ = [
    "ari",
    "best_match_f1",
    "bootstrap_interval",
    "catalogue_coverage",
    "conductance",
    "exposure",
    "gini",
    "modularity",
    "mrr",
    "ndcg_at_k",
    "nmi",
    "novelty",
    "per_user_recall",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "recall_ceiling",
    "top_percent",
    "top_share",
    "tribes_per_list",
    "weak_community_share",
]


def _check_recs(recs: np.ndarray, n_items: int | None = None) -> np.ndarray:
    """``recs`` as a 2-D int64 array of values in ``[-1, n_items)``."""
    r = np.asarray(recs)
    if r.ndim != 2 or (r.size and not np.issubdtype(r.dtype, np.integer)):
        raise ValueError(f"recs: expected a 2-D integer array, got {r.shape} {r.dtype}")
    r = r.astype(np.int64, copy=False)
    if r.size and r.min() < -1:
        raise ValueError(f"recs: values must be >= -1, got {r.min()}")
    if n_items is not None and r.size and r.max() >= n_items:
        raise ValueError(f"recs: item {r.max()} out of range for {n_items} items")
    return r


def _first_occurrence(recs: np.ndarray) -> np.ndarray:
    """(B, k) bool: the entry is a real item not already listed earlier in its row."""
    order = np.argsort(recs, axis=1, kind="stable")
    srt = np.take_along_axis(recs, order, axis=1)
    repeat = np.zeros(recs.shape, dtype=bool)
    same = srt[:, 1:] == srt[:, :-1]  # stable sort: the earliest copy comes first
    rows = np.broadcast_to(np.arange(recs.shape[0])[:, None], same.shape)
    repeat[rows[same], order[:, 1:][same]] = True
    return (recs >= 0) & ~repeat


def _hits(
    recs: np.ndarray, users: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(B, k) bool: the item at each rank is relevant and not a repeat; (B,) relevant items per
    user. Validates the inputs as :func:`ranking_metrics` documents."""
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k!r}")
    if not sp.issparse(truth):
        raise TypeError(f"truth: expected a scipy sparse matrix, got {type(truth).__name__}")
    truth = sp.csr_matrix(truth)
    n_users, n_items = truth.shape
    r = _check_recs(recs, n_items)
    u = np.asarray(users, dtype=np.int64).ravel()
    if u.shape != (r.shape[0],):
        raise ValueError(f"users: expected ({r.shape[0]},) to match recs, got {u.shape}")
    if u.size and (u.min() < 0 or u.max() >= n_users):
        raise ValueError(f"users: indices must be in [0, {n_users}), got {u.min()}..{u.max()}")
    r = r[:, :k]
    if r.shape[1] < k:
        r = np.hstack([r, np.full((r.shape[0], k - r.shape[1]), -1, dtype=np.int64)])

    sub = truth[u]
    sub.sum_duplicates()  # canonical: sorted columns, one entry each, so the keys are sorted
    nonzero = sub.data != 0
    entry_row = np.repeat(np.arange(u.size, dtype=np.int64), np.diff(sub.indptr))[nonzero]
    keys = entry_row * n_items + sub.indices[nonzero].astype(np.int64)
    n_rel = np.bincount(entry_row, minlength=u.size)

    query = np.arange(u.size, dtype=np.int64)[:, None] * n_items + r
    pos = np.minimum(np.searchsorted(keys, query), max(keys.size - 1, 0))
    hit = _first_occurrence(r) & (keys[pos] == query) if keys.size else np.zeros(r.shape, bool)

    return hit, n_rel


def per_user_recall(
    recs: np.ndarray, users: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int
) -> np.ndarray:
    """(B,) float64 recall@k of each list, NaN for users with no relevant item: the values
    :func:`ranking_metrics`' recall averages (for bootstrap intervals). Same cost."""
    hit, n_rel = _hits(recs, users, truth, k)
    out = np.full(len(n_rel), np.nan)
    ev = n_rel > 0
    out[ev] = hit[ev].sum(axis=1) / n_rel[ev]
    return out


def bootstrap_interval(
    values: dict[str, np.ndarray], n: int, seed: int = 0, level: float = 0.95
) -> dict[str, list[float]]:
    """Percentile intervals of the mean of each (B,) array, resampling the same users for
    every array (paired: the interval of a difference array is that of the paired difference).
    NaN entries are users the mean leaves out. Users NaN in every array are not resampled (a
    truth few users have, 7 of 1,171, would otherwise draw resamples without any of them);
    [nan, nan] for an array when a resample still has none of its users.
    O(n × B × arrays) time in blocks of draws (each a (draws, B) count matrix)."""
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n!r}")
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level!r}")
    names = list(values)
    stacked = (
        np.column_stack([np.asarray(values[m], dtype=np.float64) for m in names])
        if names
        else np.zeros((0, 0))
    )
    stacked = stacked[~np.isnan(stacked).all(axis=1)]
    b = stacked.shape[0]
    if b == 0:
        return {m: [float("nan"), float("nan")] for m in names}
    known = ~np.isnan(stacked)
    filled = np.where(known, stacked, 0.0)
    rng = np.random.default_rng(seed)
    means = np.empty((n, len(names)))
    block = max(1, 2_000_000 // b)
    for start in range(0, n, block):
        draws = min(block, n - start)
        picks = rng.integers(0, b, size=(draws, b))
        counts = np.zeros((draws, b))
        np.add.at(counts, (np.repeat(np.arange(draws), b), picks.ravel()), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[start : start + draws] = (counts @ filled) / (counts @ known)
    tail = (1 - level) / 2
    out = {}
    for j, m in enumerate(names):
        column = means[:, j]
        out[m] = (
            [float("nan")] * 2
            if np.isnan(column).any()
            else [float(np.quantile(column, tail)), float(np.quantile(column, 1 - tail))]
        )
    return out


def ranking_metrics(
    recs: np.ndarray, users: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int
) -> dict[str, float]:
    """Top-k accuracy of ``recs`` for ``users`` against binary ``truth``, averaged over users.

    Only users with at least one relevant item (a nonzero in their ``truth`` row) are
    averaged; ``"users"`` is how many that is (all metrics are 0.0 when it is 0). Lists are
    cut to their first ``k`` columns (narrower ones count as ``-1`` padded); ``-1`` and
    repeats of an item already listed earlier in the row are misses. With ``rel`` a user's
    relevant set, ``hit_i`` = 1 if the item at rank ``i`` (1-based) is in ``rel``:

    - recall@k = ``|rec ∩ rel| / |rel|`` (divided by ``|rel|``, **not** ``min(|rel|, k)``,
      so a user with more than ``k`` relevant items cannot reach 1);
    - precision@k = ``|rec ∩ rel| / k`` (padding counts in the denominator);
    - nDCG@k = ``DCG / IDCG`` with binary gains, ``DCG = sum_i hit_i / log2(i + 1)`` and
      ``IDCG = sum_{i <= min(|rel|, k)} 1 / log2(i + 1)``;
    - mrr = ``1 / rank`` of the first hit within the top k, 0 if none (MRR@k);
    - hit_rate = share of users with at least one hit.

    Parameters
    ----------
    recs : (B, k') int array of item indices in ``[0, N)``, ``-1`` padded.
    users : (B,) row of ``truth`` for each list.
    truth : (U, N) sparse matrix; any stored nonzero is relevant.
    k : cut-off, >= 1.

    Returns
    -------
    dict with float ``recall``, ``precision``, ``ndcg``, ``mrr``, ``hit_rate`` and int ``users``.

    Time O(nnz(truth[users]) + B k log(B k)): one ``searchsorted`` of every listed item in the
    sorted ``row * N + column`` keys of the users' truth rows; no loop over users.
    """
    hit, n_rel = _hits(recs, users, truth, k)
    ev = n_rel > 0
    n_eval = int(ev.sum())
    if n_eval == 0:
        return dict.fromkeys(("recall", "precision", "ndcg", "mrr", "hit_rate"), 0.0) | {"users": 0}
    hit, n_rel = hit[ev], n_rel[ev]
    n_hit = hit.sum(axis=1)
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(n_rel, k)]
    any_hit = n_hit > 0
    first = np.argmax(hit, axis=1)
    return {
        "recall": float(np.mean(n_hit / n_rel)),
        "precision": float(np.mean(n_hit / k)),
        "ndcg": float(np.mean((hit @ discount) / ideal)),
        "mrr": float(np.mean(np.where(any_hit, 1.0 / (first + 1.0), 0.0))),
        "hit_rate": float(np.mean(any_hit)),
        "users": n_eval,
    }


def recall_ceiling(users: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int) -> tuple[float, int]:
    """(the recall@k a perfect list reaches, users averaged): ``min(|rel|, k) / |rel|`` averaged
    over the ``users`` with at least one relevant item, as :func:`ranking_metrics` averages
    recall — below 1 where users have more than ``k``. ``(0.0, 0)`` when nobody has any. O(B)."""
    n_rel = np.diff(sp.csr_matrix(truth).indptr)[np.asarray(users, dtype=np.int64)]
    n_rel = n_rel[n_rel > 0]
    if n_rel.size == 0:
        return 0.0, 0
    return float(np.mean(np.minimum(n_rel, k) / n_rel)), int(n_rel.size)


def recall_at_k(recs: np.ndarray, users: np.ndarray, truth: sp.spmatrix, k: int) -> float:
    """Mean ``|rec ∩ rel| / |rel|`` over users with relevant items; see :func:`ranking_metrics`."""
    return ranking_metrics(recs, users, truth, k)["recall"]


def precision_at_k(recs: np.ndarray, users: np.ndarray, truth: sp.spmatrix, k: int) -> float:
    """Mean ``|rec ∩ rel| / k`` over users with relevant items; see :func:`ranking_metrics`."""
    return ranking_metrics(recs, users, truth, k)["precision"]


def ndcg_at_k(recs: np.ndarray, users: np.ndarray, truth: sp.spmatrix, k: int) -> float:
    """Mean binary-gain nDCG@k over users with relevant items; see :func:`ranking_metrics`."""
    return ranking_metrics(recs, users, truth, k)["ndcg"]


def mrr(recs: np.ndarray, users: np.ndarray, truth: sp.spmatrix, k: int) -> float:
    """Mean ``1 / rank`` of the first hit in the top k (0 if none); see :func:`ranking_metrics`."""
    return ranking_metrics(recs, users, truth, k)["mrr"]


def exposure(recs: np.ndarray, n_items: int) -> np.ndarray:
    """(n_items,) int64: how many times each item appears in ``recs`` (``-1`` ignored). O(B k + N)."""
    r = _check_recs(recs, n_items)
    return np.bincount(r[r >= 0], minlength=n_items).astype(np.int64, copy=False)


def catalogue_coverage(recs: np.ndarray, n_items: int) -> float:
    """Distinct recommended items / ``n_items`` (``-1`` ignored). O(B k + N)."""
    if n_items < 1:
        raise ValueError(f"n_items: must be >= 1, got {n_items!r}")
    return float(np.count_nonzero(exposure(recs, n_items)) / n_items)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative ``values`` over **all** entries, zeros included.

    ``G = sum_i (2 i - n - 1) x_(i) / (n sum x)`` with ``x_(1) <= ... <= x_(n)`` (i 1-based):
    0 when all are equal, ``(n - 1) / n`` when one entry holds everything; 0.0 for an empty
    or all-zero input. O(n log n).
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size and x[0] < 0:
        raise ValueError(f"values: must be >= 0, got {x[0]}")
    total = x.sum()
    if x.size == 0 or total == 0:
        return 0.0
    n = x.size
    return float(np.sum((2.0 * np.arange(1, n + 1) - n - 1) * x) / (n * total))


def top_share(exposure: np.ndarray, top_items: np.ndarray) -> float:
    """Share of total exposure going to ``top_items`` (each counted once); 0.0 if none at all."""
    e = np.asarray(exposure, dtype=np.float64).ravel()
    total = e.sum()
    if total == 0:
        return 0.0
    return float(e[np.unique(np.asarray(top_items, dtype=np.int64))].sum() / total)


def top_percent(scores: np.ndarray, percent: float = 1.0) -> np.ndarray:
    """int64 indices of the ``max(1, ceil(n * percent / 100))`` highest ``scores``, best first.

    Ties go to the smaller index. ``percent`` in (0, 100]. Empty for empty ``scores``.
    O(n log n).
    """
    if not 0 < percent <= 100:
        raise ValueError(f"percent: must be in (0, 100], got {percent!r}")
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        return np.zeros(0, dtype=np.int64)
    n_top = max(1, int(np.ceil(s.size * percent / 100.0 - 1e-9)))
    order = np.lexsort((np.arange(s.size), -s))
    return order[:n_top].astype(np.int64)


def novelty(recs: np.ndarray, popularity: np.ndarray) -> float:
    """Mean self-information ``-log2 p_i`` (bits) over all listed items (``-1`` ignored).

    Add-one smoothing: ``p_i = (pop_i + 1) / (sum(pop) + N)``, so unseen items stay finite.
    0.0 when nothing is listed. O(B k + N).
    """
    pop = np.asarray(popularity, dtype=np.float64).ravel()
    if pop.size and pop.min() < 0:
        raise ValueError(f"popularity: must be >= 0, got {pop.min()}")
    r = _check_recs(recs, pop.size)
    items = r[r >= 0]
    if items.size == 0:
        return 0.0
    p = (pop[items] + 1.0) / (pop.sum() + pop.size)
    return float(np.mean(-np.log2(p)))


def tribes_per_list(recs: np.ndarray, labels: np.ndarray) -> float:
    """Mean number of distinct tribes (``labels >= 0``) among the items of each non-empty list.

    A list is non-empty if it holds at least one item (``>= 0``); its unlabelled items add no
    tribe. 0.0 when every list is empty. O(B k log k).
    """
    lab = np.asarray(labels, dtype=np.int64).ravel()
    r = _check_recs(recs, lab.size)
    nonempty = (r >= 0).any(axis=1)
    if not nonempty.any():
        return 0.0
    t = np.sort(np.where(r >= 0, lab[np.maximum(r, 0)], -1)[nonempty], axis=1)
    new = t >= 0
    new[:, 1:] &= t[:, 1:] != t[:, :-1]
    return float(new.sum(axis=1).mean())


def _contingency(a: np.ndarray, b: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Sparse contingency table ``(K_a, K_b)`` of ``a`` × ``b``, its row and column sums."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape:
        raise ValueError(f"labels: a and b must have the same length, got {a.size} and {b.size}")
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    ia, ib = ia.ravel(), ib.ravel()
    shape = (int(ia.max(initial=-1)) + 1, int(ib.max(initial=-1)) + 1)
    c = sp.csr_matrix((np.ones(a.size), (ia, ib)), shape=shape)  # duplicates are summed
    c.sum_duplicates()
    return c, np.bincount(ia, minlength=shape[0]) * 1.0, np.bincount(ib, minlength=shape[1]) * 1.0


def nmi(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised mutual information of two partitions, arithmetic-mean normalisation.

    ``NMI = I(A; B) / ((H(A) + H(B)) / 2)`` with ``I = sum_ij (n_ij / n) log(n n_ij / (a_i b_j))``
    over the nonzero cells of the sparse contingency table ``n_ij`` (row sums ``a_i``, column
    sums ``b_j``). Every distinct value (``-1`` included) is one cluster. 1.0 when both are a
    single cluster (or empty), 0.0 when only one is. Invariant to relabelling. O(n log n).
    """
    c, rows, cols = _contingency(a, b)
    n = float(rows.sum())
    if n == 0:
        return 1.0
    h_a = -np.sum(rows / n * np.log(rows / n))
    h_b = -np.sum(cols / n * np.log(cols / n))
    if h_a == 0 and h_b == 0:
        return 1.0
    row_of = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    mi = np.sum(c.data / n * (np.log(c.data * n) - np.log(rows[row_of] * cols[c.indices])))
    return float(np.clip(mi / ((h_a + h_b) / 2.0), 0.0, 1.0))


def ari(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index (Hubert & Arabie) of two partitions.

    ``ARI = (S - E) / ((S_a + S_b) / 2 - E)`` with ``S = sum_ij C(n_ij, 2)``,
    ``S_a = sum_i C(a_i, 2)``, ``S_b = sum_j C(b_j, 2)``, ``E = S_a S_b / C(n, 2)``. 1.0 for
    identical partitions up to relabelling (and when the denominator is 0, which happens only
    for two identical trivial partitions); about 0 for independent ones. O(n log n).
    """
    c, rows, cols = _contingency(a, b)
    n = float(rows.sum())
    s, s_a, s_b = (float(np.sum(x * (x - 1.0) / 2.0)) for x in (c.data, rows, cols))
    expected = s_a * s_b / (n * (n - 1.0) / 2.0) if n > 1 else 0.0
    denom = (s_a + s_b) / 2.0 - expected
    if denom == 0:
        return 1.0
    return float((s - expected) / denom)


def _incidence(groups: Sequence[np.ndarray] | np.ndarray, name: str) -> list[np.ndarray]:
    """Non-empty member sets (unique int64) of ``groups``; a 1-D int array is read as labels."""
    if isinstance(groups, np.ndarray) and groups.ndim == 1 and groups.dtype.kind in "iu":
        lab = groups.astype(np.int64)
        ids = np.flatnonzero(lab >= 0)
        order = np.argsort(lab[ids], kind="stable")
        cut = np.flatnonzero(np.diff(lab[ids][order])) + 1
        groups = np.split(ids[order], cut) if ids.size else []
    out = [np.unique(np.asarray(g, dtype=np.int64).ravel()) for g in groups]
    if any(g.size and g[0] < 0 for g in out):
        raise ValueError(f"{name}: member indices must be >= 0")
    return [g for g in out if g.size]


def best_match_f1(
    found: Sequence[np.ndarray] | np.ndarray, truth_groups: Sequence[np.ndarray]
) -> float:
    """Average best-match F1 between found communities and (possibly overlapping) true groups.

    ``F1(T, F) = 2 |T ∩ F| / (|T| + |F|)``. The score is the mean of both directions (as in
    Yang, McAuley & Leskovec 2013): ``(mean_T max_F F1 + mean_F max_T F1) / 2``, a group with
    no overlapping partner scoring 0. ``found`` is a list of member-index arrays, or a 1-D
    int label array (node ``i`` in community ``found[i]``, ``-1`` in none); empty groups are
    dropped. 1.0 for a perfect match, 0.0 if either side is empty. Time O(total members +
    nnz(T Fᵀ)), with the overlaps from one sparse product.
    """
    f_sets = _incidence(found, "found")
    t_sets = _incidence(truth_groups, "truth_groups")
    if not f_sets or not t_sets:
        return 0.0
    n_nodes = int(max(g[-1] for g in f_sets + t_sets)) + 1

    def matrix(sets: list[np.ndarray]) -> sp.csr_matrix:
        sizes = np.array([g.size for g in sets])
        rows = np.repeat(np.arange(len(sets)), sizes)
        data = np.ones(rows.size, np.int64)
        return sp.csr_matrix((data, (rows, np.concatenate(sets))), shape=(len(sets), n_nodes))

    t_mat, f_mat = matrix(t_sets), matrix(f_sets)
    overlap = (t_mat @ f_mat.T).tocoo()
    t_size = np.diff(t_mat.indptr).astype(np.float64)
    f_size = np.diff(f_mat.indptr).astype(np.float64)
    f1 = 2.0 * overlap.data / (t_size[overlap.row] + f_size[overlap.col])
    best_t, best_f = np.zeros(len(t_sets)), np.zeros(len(f_sets))
    np.maximum.at(best_t, overlap.row, f1)
    np.maximum.at(best_f, overlap.col, f1)
    return float((best_t.mean() + best_f.mean()) / 2.0)
