"""Compiled loops (numba) for the few hot paths that numpy and scipy cannot vectorise well.

Each kernel is a plain function over numpy arrays, compiled on first use (seconds; cached in
``__pycache__`` for later processes) and releasing the GIL, so
:func:`tribes.parallel.map_blocks` can run it on several cores.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

__all__ = [
    "TwoHopTopK",
    "best_fetched",
    "csr_values",
    "pair_dots",
    "pair_hashes",
    "within_column_budget",
    "within_group_budget",
]


@njit(nogil=True, cache=True)
def _pair_dots(
    a_ptr, a_idx, a_val, b_ptr, b_idx, b_val, rows, cols, out
):  # pragma: no cover - compiled
    # The sum scipy's ``a[rows].multiply(b[cols]).sum(axis=1)`` gives for float32 rows whose
    # matches come in increasing column order: ``np.add.reduceat`` adds the first nonzero
    # product to the float32 sum of the others (exact while a pair shares at most 8 columns).
    for i in range(len(rows)):
        j, j_end = a_ptr[rows[i]], a_ptr[rows[i] + 1]
        k, k_end = b_ptr[cols[i]], b_ptr[cols[i] + 1]
        found = False
        head = a_val.dtype.type(0.0)
        rest = a_val.dtype.type(-0.0)
        while j < j_end and k < k_end:
            if a_idx[j] == b_idx[k]:
                product = a_val[j] * b_val[k]
                if product != 0:
                    if found:
                        rest += product
                    else:
                        head = product
                        found = True
                j += 1
                k += 1
            elif a_idx[j] < b_idx[k]:
                j += 1
            else:
                k += 1
        out[i] = head + rest if found else 0.0


def pair_dots(
    a: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, b: sp.csr_matrix | None = None
) -> np.ndarray:
    """(pairs,) float32: ``a[rows[i]] · b[cols[i]]`` for every i (``b`` defaults to ``a``; same
    number of columns), by merging the two sorted rows. Equal to scipy's
    ``a[rows].multiply(b[cols]).sum(axis=1)`` for float32 rows sharing up to 8 columns (within
    float rounding beyond). O(Σ nnz of both rows), no temporaries."""
    a = a.tocsr()
    a = a if a.has_sorted_indices else a.sorted_indices()
    b = a if b is None else b.tocsr()
    b = b if b.has_sorted_indices else b.sorted_indices()
    dtype = np.result_type(a.dtype, b.dtype)
    out = np.zeros(len(rows), dtype=np.float32)
    if len(rows):
        _pair_dots(
            *_csr_arrays(a, dtype),
            *_csr_arrays(b, dtype),
            np.asarray(rows, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            out,
        )
    return out


@njit(nogil=True, cache=True)
def _two_hop_top_k(
    lp, li, lx, rp, ri, rx, ep, ei, shown, start, stop, k, acc, out_cols, out_vals, out_counts
):  # pragma: no cover - compiled
    n = len(acc)
    touched_flag = np.zeros(n, np.bool_)
    banned = np.zeros(n, np.bool_)
    touched = np.empty(n, np.int64)
    cand_c = np.empty(n, np.int64)
    cand_v = np.empty(n, acc.dtype)
    for u in range(start, stop):
        t = 0
        for a in range(lp[u], lp[u + 1]):  # the same summation order as scipy's csr_matmat
            m = li[a]
            v = lx[a]
            for b in range(rp[m], rp[m + 1]):
                c = ri[b]
                acc[c] += v * rx[b]
                if not touched_flag[c]:
                    touched_flag[c] = True
                    touched[t] = c
                    t += 1
        for e in range(ep[u], ep[u + 1]):
            banned[ei[e]] = True
        cnt = 0
        for j in range(t):
            c = touched[j]
            if acc[c] != 0 and shown[c] and not banned[c]:
                cand_c[cnt] = c
                cand_v[cnt] = acc[c]
                cnt += 1
            acc[c] = 0
            touched_flag[c] = False
        for e in range(ep[u], ep[u + 1]):
            banned[ei[e]] = False
        row = u - start
        if cnt <= k:
            take_c = cand_c[:cnt].copy()
            take_v = cand_v[:cnt].copy()
        else:
            kth = np.partition(cand_v[:cnt].copy(), cnt - k)[cnt - k]  # the k-th largest value
            take_c = np.empty(k, np.int64)
            take_v = np.empty(k, acc.dtype)
            s = 0
            for j in range(cnt):
                if cand_v[j] > kth:
                    take_c[s] = cand_c[j]
                    take_v[s] = cand_v[j]
                    s += 1
            tied = np.sort(cand_c[:cnt][cand_v[:cnt] == kth])  # ties: the smaller columns
            for j in range(k - s):
                take_c[s + j] = tied[j]
                take_v[s + j] = kth
        order = np.argsort(take_c)
        for j in range(len(order)):
            out_cols[row, j] = take_c[order[j]]
            out_vals[row, j] = take_v[order[j]]
        out_counts[row] = len(order)


def _csr_arrays(m: sp.csr_matrix, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """indptr int64, indices int32, data ``dtype``: one compiled signature for every matrix."""
    m = m.tocsr()
    return (
        m.indptr.astype(np.int64, copy=False),
        m.indices.astype(np.int32, copy=False),
        m.data.astype(dtype, copy=False),
    )


class TwoHopTopK:
    """Rows of ``left @ right`` with the entries that ``exclusion`` marks in the same row, columns
    not ``shown`` and zeros dropped, cut to each row's ``k`` largest (ties: smaller column).

    ``rows(start, stop)`` equals, value for value, ``top_k_per_row(apply_filters(left[start:stop]
    @ right, ...), k)`` (:mod:`tribes.candidates`) but never materialises the product: one
    dense accumulator of n values per call. O(Σ_rows Σ_middles nnz(right row) + n) per call.
    Arrays are converted once here; calls are independent (thread-safe).
    """

    def __init__(
        self,
        left: sp.csr_matrix,
        right: sp.csr_matrix,
        exclusion: sp.csr_matrix,
        shown: np.ndarray,
        k: int,
    ):
        self.dtype = np.result_type(left.dtype, right.dtype)
        self.left = _csr_arrays(left, self.dtype)
        self.right = _csr_arrays(right, self.dtype)
        self.exclusion = _csr_arrays(exclusion, np.float32)[:2]
        self.shown = np.asarray(shown, dtype=np.bool_)
        self.n, self.k = right.shape[1], int(k)

    def rows(self, start: int, stop: int) -> sp.csr_matrix:
        """A (stop - start, n) CSR with sorted columns."""
        rows, k = stop - start, max(self.k, 0)
        out_cols = np.zeros((rows, k), dtype=np.int64)
        out_vals = np.zeros((rows, k), dtype=self.dtype)
        out_counts = np.zeros(rows, dtype=np.int64)
        if rows and k:
            _two_hop_top_k(
                *self.left,
                *self.right,
                *self.exclusion,
                self.shown,
                start,
                stop,
                k,
                np.zeros(self.n, dtype=self.dtype),
                out_cols,
                out_vals,
                out_counts,
            )
        valid = np.arange(k) < out_counts[:, None]
        indptr = np.r_[0, np.cumsum(out_counts)]
        return sp.csr_matrix(
            (out_vals[valid], out_cols[valid].astype(np.int32), indptr), shape=(rows, self.n)
        )


@njit(nogil=True, cache=True, inline="always")
def _acceptable(c, v, u, liked_idx, lo, hi):  # pragma: no cover - compiled
    """Person ``c`` with score ``v`` may be suggested to ``u``: not ``u``, a finite positive
    score, and not among the people ``u`` already interacts with (sorted ``liked_idx[lo:hi]``)."""
    if c == u or not (np.isfinite(v) and v > 0):
        return False
    at = lo + np.searchsorted(liked_idx[lo:hi], c)
    return not (at < hi and liked_idx[at] == c)


@njit(nogil=True, cache=True)
def _best_fetched(
    batch,
    ids,
    distance,
    query_norms,
    lift2,
    heavy,
    heavy_scores,
    liked_ptr,
    liked_idx,
    k,
    out_count,
    out_col,
    out_val,
):  # pragma: no cover - compiled
    fetch = ids.shape[1]
    cand_c = np.empty(fetch + len(heavy), dtype=np.int64)
    cand_v = np.empty(fetch + len(heavy), dtype=np.float32)
    pick = np.empty(fetch + len(heavy), dtype=np.int64)
    two = np.float32(2.0)
    for i in range(len(batch)):
        u = batch[i]
        lo, hi = liked_ptr[u], liked_ptr[u + 1]
        n = 0
        for j in range(fetch):  # faiss's order: distance up, so score down
            c = ids[i, j]
            if c < 0:  # padding
                continue
            v = (query_norms[u] + lift2 - distance[i, j]) / two
            if _acceptable(c, v, u, liked_idx, lo, hi):
                cand_c[n] = c
                cand_v[n] = v
                n += 1
        # Only heavy items at least as good as the k-th fetched one can enter the top k.
        threshold = cand_v[k - 1] if n >= k else -np.inf
        for h in range(len(heavy)):
            v = heavy_scores[i, h]
            c = heavy[h]
            if v >= threshold and _acceptable(c, v, u, liked_idx, lo, hi):
                cand_c[n] = c
                cand_v[n] = v
                n += 1
        m = n
        if n > k:  # the k best: above the k-th largest score, then its ties by smaller column
            kth = -np.partition(-cand_v[:n], k - 1)[k - 1]
            m = 0
            for j in range(n):
                if cand_v[j] > kth:
                    pick[m] = j
                    m += 1
            ties = np.flatnonzero(cand_v[:n] == kth)
            ties = ties[np.argsort(cand_c[ties], kind="mergesort")][: k - m]
            pick[m : m + len(ties)] = ties
            m += len(ties)
        else:
            pick[:n] = np.arange(n)
        chosen = pick[:m][np.argsort(cand_c[pick[:m]])]  # written in column order
        out_count[i] = m
        for j in range(m):
            out_col[i * k + j] = cand_c[chosen[j]]
            out_val[i * k + j] = cand_v[chosen[j]]


def best_fetched(
    batch: np.ndarray,
    ids: np.ndarray,
    distance: np.ndarray,
    query_norms: np.ndarray,
    lift2: float,
    heavy: np.ndarray,
    heavy_scores: np.ndarray,
    liked: sp.csr_matrix,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's ``k`` best people from an inner-product index search, as (rows, cols, scores)
    in (row, col) order: the approximate ALS source's step after ``faiss`` (see
    ``tribes.candidates._als_approximate``).

    ``batch`` (B,) user indices, increasing; ``ids``/``distance`` (B, fetch) the index's result
    per user (nearest first, ``-1`` padded), a score being ``(query_norms[u] + lift2 -
    distance) / 2`` in float32; ``heavy`` (H,) people scored exactly, ``heavy_scores`` (B, H).
    A candidate is dropped when it is the user, scores ≤ 0 or not finite, or is in the user's
    row of ``liked`` (CSR, sorted indices). Best = highest score, ties to the smaller column.
    O(B · (fetch · log liked + H)); heavy people below the k-th fetched score are skipped unread.
    """
    b = len(batch)
    count = np.zeros(b, dtype=np.int64)
    col = np.empty(b * k, dtype=np.int64)
    val = np.empty(b * k, dtype=np.float32)
    if b and k:
        liked = liked if liked.has_sorted_indices else liked.sorted_indices()
        _best_fetched(
            np.asarray(batch, np.int64),
            np.asarray(ids, np.int64),
            np.asarray(distance, np.float32),
            np.asarray(query_norms, np.float32),
            np.float32(lift2),
            np.asarray(heavy, np.int64),
            np.asarray(heavy_scores, np.float32),
            liked.indptr,
            liked.indices,
            k,
            count,
            col,
            val,
        )
    used = (np.arange(k)[None, :] < count[:, None]).ravel()
    return np.repeat(np.asarray(batch, np.int64), count), col[used], val[used]


@njit(nogil=True, cache=True)
def _csr_values(indptr, indices, data, rows, cols, out):  # pragma: no cover - compiled
    for i in range(len(rows)):
        lo, hi = indptr[rows[i]], indptr[rows[i] + 1]
        at = lo + np.searchsorted(indices[lo:hi], cols[i])
        if at < hi and indices[at] == cols[i]:
            out[i] = data[at]


def csr_values(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(pairs,) float32: ``m[rows[i], cols[i]]`` for every i (0 where absent), as scipy's fancy
    indexing gives it, by a binary search in each row. O(pairs · log row nnz), no temporaries."""
    m = m.tocsr()
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    out = np.zeros(len(rows), dtype=np.float32)
    if len(rows) and m.nnz:
        _csr_values(m.indptr, m.indices, m.data, np.asarray(rows), np.asarray(cols), out)
    return out


@njit(inline="always")
def _cut_below_budget(mine, score, budget, keep):  # pragma: no cover - compiled
    """Of the elements ``mine`` (more than ``budget``), drop (``keep`` False) those scored below
    the ``budget``-th best score; return the ones tied at it and how many are above it."""
    values = score[mine]
    kth = -np.partition(-values, budget - 1)[budget - 1]  # the budget-th best score
    above = 0
    for j in range(len(mine)):
        if values[j] > kth:
            above += 1
        elif values[j] < kth:
            keep[mine[j]] = False
    return mine[values == kth], above


@njit(nogil=True, cache=True)
def _within_group_budget(
    groups, score, tiebreak, budget, n_groups, keep
):  # pragma: no cover - compiled
    counts = np.zeros(n_groups + 1, dtype=np.int64)
    for g in groups:
        counts[g + 1] += 1
    crowded = False
    for g in range(n_groups):
        crowded |= counts[g + 1] > budget
        counts[g + 1] += counts[g]
    if not crowded:
        return
    fill = counts[:-1].copy()
    members = np.empty(len(groups), dtype=np.int64)  # element indices, group by group
    for i in range(len(groups)):
        members[fill[groups[i]]] = i
        fill[groups[i]] += 1
    for g in range(n_groups):
        lo, hi = counts[g], counts[g + 1]
        if hi - lo <= budget:
            continue
        ties, above = _cut_below_budget(members[lo:hi], score, budget, keep)
        if above + len(ties) > budget:  # of the tied, the smallest tiebreaks stay
            order = np.argsort(tiebreak[ties], kind="mergesort")
            for j in range(budget - above, len(ties)):
                keep[ties[order[j]]] = False


@njit(inline="always")
def _pair_hash(row, col, seed_mix):  # pragma: no cover - compiled
    x = (np.uint64(row) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(col)
    x ^= seed_mix
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@njit(nogil=True, cache=True)
def _pair_hashes(rows, cols, seed_mix, out):  # pragma: no cover - compiled
    for i in range(len(rows)):
        out[i] = _pair_hash(rows[i], cols[i], seed_mix)


def _seed_mix(seed: int) -> np.uint64:
    return np.uint64((int(seed) * 0xD1B54A32D192ED03) & 0xFFFFFFFFFFFFFFFF)


def pair_hashes(rows: np.ndarray, cols: np.ndarray, seed: int) -> np.ndarray:
    """(pairs,) uint64: splitmix64's finaliser of each (row, col) pair mixed with ``seed`` (the
    definition :func:`tribes.ranking.pair_hash` and the exposure budget's ties share). O(pairs)."""
    rows, cols = np.broadcast_arrays(
        np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    )
    out = np.empty(rows.shape, dtype=np.uint64)
    _pair_hashes(rows.ravel(), cols.ravel(), _seed_mix(seed), out.reshape(-1))
    return out


@njit(nogil=True, cache=True)
def _within_column_budget(
    starts, cols, score, budget, n_cols, seed_mix, keep, kept
):  # pragma: no cover
    counts = np.zeros(n_cols + 1, dtype=np.int64)
    for c in cols:
        counts[c + 1] += 1
    # Offsets of the crowded columns only: members holds just their pairs.
    offsets = np.zeros(n_cols + 1, dtype=np.int64)
    for c in range(n_cols):
        offsets[c + 1] = offsets[c] + (counts[c + 1] if counts[c + 1] > budget else 0)
    if offsets[n_cols] > 0:
        fill = offsets[:-1].copy()
        members = np.empty(offsets[n_cols], dtype=np.int64)
        for i in range(len(cols)):
            c = cols[i]
            if counts[c + 1] > budget:
                members[fill[c]] = i
                fill[c] += 1
        for c in range(n_cols):
            lo, hi = offsets[c], offsets[c + 1]
            if hi == lo:
                continue
            ties, above = _cut_below_budget(members[lo:hi], score, budget, keep)
            if above + len(ties) > budget:  # of the tied, the smallest pair hashes stay
                hashes = np.empty(len(ties), dtype=np.uint64)
                for j in range(len(ties)):
                    row = np.searchsorted(starts, ties[j], side="right") - 1
                    hashes[j] = _pair_hash(row, c, seed_mix)
                order = np.argsort(hashes, kind="mergesort")
                for j in range(budget - above, len(ties)):
                    keep[ties[order[j]]] = False
    for u in range(len(starts) - 1):
        for i in range(starts[u], starts[u + 1]):
            kept[u] += keep[i]


def within_column_budget(
    starts: np.ndarray, cols: np.ndarray, score: np.ndarray, budget: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs grouped by row (row ``u``'s are ``starts[u]:starts[u + 1]``): which stay among the
    ``budget`` best of their column ``cols`` — highest ``score``, ties by the smaller seeded
    :func:`tribes.ranking.pair_hash` of (row, col), then position — and how many stay per row.
    Same answer as :func:`within_group_budget` with that hash as tiebreak, but without a
    per-pair row, hash or int64 column: 8 bytes per pair of a crowded column, hashes only for
    ties. Returns ((pairs,) bool, (rows,) int64). O(pairs + Σ crowded columns' sizes)."""
    n_pairs = len(cols)
    keep = np.ones(n_pairs, dtype=bool)
    kept = np.zeros(max(len(starts) - 1, 0), dtype=np.int64)
    if n_pairs == 0:
        return keep, kept
    if budget <= 0:
        return np.zeros(n_pairs, dtype=bool), kept
    _within_column_budget(
        np.asarray(starts, dtype=np.int64),
        np.asarray(cols),
        np.asarray(score),
        int(budget),
        int(cols.max()) + 1,
        _seed_mix(seed),
        keep,
        kept,
    )
    return keep, kept


def within_group_budget(
    groups: np.ndarray, score: np.ndarray, tiebreak: np.ndarray, budget: int
) -> np.ndarray:
    """(n,) bool: the element is among the ``budget`` best of its group — highest ``score``,
    ties by smaller ``tiebreak`` (then by position) — as ranking by
    ``np.lexsort((tiebreak, -score, groups))`` would say. ``groups`` non-negative ints.
    O(n + Σ crowded groups' sizes): a counting sort, then one selection per crowded group."""
    keep = np.ones(len(groups), dtype=bool)
    if len(groups) and budget >= 0:
        if budget == 0:
            return np.zeros(len(groups), dtype=bool)
        groups = np.asarray(groups, dtype=np.int64)
        _within_group_budget(
            groups,
            np.asarray(score),
            np.asarray(tiebreak),
            int(budget),
            int(groups.max()) + 1,
            keep,
        )
    return keep
