"""Small sparse-matrix helpers shared by the engine stages (vectorised; no per-row Python)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .kernels import csr_values

__all__ = [
    "aligned_values",
    "binary",
    "descending_key",
    "drop_diagonal",
    "entry_keys",
    "entry_rows",
    "in_sorted",
    "key_value",
    "rank_within",
    "row_normalize",
    "top_k_per_row",
]


def top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep each row's ``k`` largest entries (ties: smaller column first).

    Only rows longer than ``k`` are sorted, by one stable sort of a (row, value) key
    (:func:`_row_value_order`). O(nnz + L log L) for the L entries of the long rows.
    """
    m = m.tocsr()
    m.sum_duplicates()
    m.sort_indices()
    if m.nnz == 0 or k <= 0:
        return sp.csr_matrix(m.shape, dtype=m.dtype)
    counts = np.diff(m.indptr)
    if counts.max() <= k:
        return m.copy()
    long_rows = counts > k
    entry_row = np.repeat(np.arange(m.shape[0]), counts)
    in_long = long_rows[entry_row]
    long_entries = np.flatnonzero(in_long)
    if len(long_entries) > _PREFILTER_MIN and len(long_entries) > 4 * k * int(long_rows.sum()):
        long_entries = long_entries[
            _at_least_top_k(entry_row[long_entries], m.data[long_entries], k)
        ]
    rows = entry_row[long_entries]
    order = long_entries[_row_value_order(rows, m.data[long_entries])]
    # Entries of long rows come row by row in ``order``: rank = position - the row's first slot.
    row_counts = np.bincount(rows, minlength=m.shape[0])[long_rows]
    firsts = np.r_[0, np.cumsum(row_counts)][:-1]
    rank = np.arange(len(order)) - np.repeat(firsts, row_counts)
    keep = np.concatenate([np.flatnonzero(~in_long), order[rank < k]])
    keep.sort()
    return sp.csr_matrix(
        (m.data[keep], m.indices[keep], np.r_[0, np.cumsum(np.minimum(counts, k))]), shape=m.shape
    )


_PREFILTER_MIN = 1_000_000  # long-row entries above which a linear pre-filter pays for itself
_BINS = 256


def _at_least_top_k(rows: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """(len(rows),) bool: a superset of each row's ``k`` largest entries, in O(entries).

    Each row's values are cut into ``_BINS`` equal bins between its min and max; every entry in
    the bin holding the row's k-th largest value or above is kept. Binning is monotone in the
    value, so no entry of the top k (nor one tied with it) is lost. ``rows`` sorted, every row
    holding more than ``k`` entries.
    """
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    v = values.astype(np.float32, copy=False)
    if not np.isfinite(v).all():
        return np.ones(len(rows), dtype=bool)
    low = np.minimum.reduceat(v, starts)
    span = np.maximum.reduceat(v, starts) - low
    scale = np.divide(np.float32(_BINS), span, out=np.zeros_like(span), where=span > 0)
    group = np.repeat(np.arange(len(starts), dtype=np.int64), np.diff(np.r_[starts, len(rows)]))
    if not np.isfinite(scale).all():
        return np.ones(len(rows), dtype=bool)
    # Constant rows: scale 0 puts every entry in bin 0, and all of them are kept.
    b = np.minimum((v - low[group]) * scale[group], np.float32(_BINS - 1)).astype(np.int64)
    counts = np.bincount(group * _BINS + b, minlength=len(starts) * _BINS).reshape(
        len(starts), _BINS
    )
    from_top = np.cumsum(counts[:, ::-1], axis=1)  # entries in this bin or above, highest bin first
    threshold = _BINS - 1 - np.argmax(from_top >= k, axis=1)  # the k-th largest value's bin
    return b >= threshold[group]


def _row_value_order(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Indices sorting by ``rows`` ascending, then ``values`` descending, ties kept in input order
    (a stable sort). float32 values go through one :func:`descending_key`: about 4× faster than
    lexsort."""
    if (
        values.dtype != np.float32
        or len(rows) == 0
        or int(rows.max()) >= 2**32
        or np.isnan(values).any()
    ):
        return np.lexsort((-values, rows))
    return np.argsort(descending_key(rows, values), kind="stable")


def descending_key(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(n,) uint64 keys that sort by ``group`` (0 ≤ group < 2³²) ascending, then by ``values``
    (float32, no NaN) descending: the group in the high 32 bits, the value's order-preserving
    bit pattern inverted in the low 32. Equal values (-0.0 and +0.0 too) give equal keys;
    :func:`key_value` reads the value back."""
    bits = (values.astype(np.float32, copy=False) + np.float32(0)).view(np.uint32)  # -0.0 → +0.0
    ordered = np.where(bits >= np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))
    return (group.astype(np.uint64) << np.uint64(32)) | (~ordered).astype(np.uint64)


def key_value(keys: np.ndarray) -> np.ndarray:
    """(n,) float32: the value each :func:`descending_key` holds."""
    ordered = ~(keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    bits = np.where(ordered >= np.uint32(0x80000000), ordered & np.uint32(0x7FFFFFFF), ~ordered)
    return bits.astype(np.uint32).view(np.float32)


def row_normalize(m: sp.csr_matrix, norm: str = "l1") -> sp.csr_matrix:
    """Rows scaled to unit ``l1`` or ``l2`` norm (zero rows stay zero)."""
    m = m.tocsr().astype(np.float32)
    if norm == "l1":
        sums = np.asarray(abs(m).sum(axis=1)).ravel()
    else:
        sums = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    scale = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return sp.diags(scale.astype(np.float32)) @ m


def binary(m: sp.csr_matrix) -> sp.csr_matrix:
    """1.0 where ``m`` has a positive entry."""
    out = (m > 0).astype(np.float32).tocsr()
    out.eliminate_zeros()
    return out


def drop_diagonal(m: sp.spmatrix) -> sp.csr_matrix:
    """``m`` without its diagonal entries, as CSR."""
    c = m.tocoo()
    keep = c.row != c.col
    return sp.csr_matrix((c.data[keep], (c.row[keep], c.col[keep])), shape=m.shape)


def entry_rows(m: sp.csr_matrix, dtype=np.int64) -> np.ndarray:
    """(nnz,) the row of every stored entry of CSR ``m``, in storage order. O(nnz)."""
    return np.repeat(np.arange(m.shape[0], dtype=dtype), np.diff(m.indptr))


def entry_keys(m: sp.csr_matrix) -> np.ndarray:
    """``row · n_cols + column`` of each entry, int64; increasing when ``m`` is canonical CSR
    (sorted indices, no duplicates). O(nnz)."""
    m = m.tocsr()
    return entry_rows(m) * np.int64(m.shape[1]) + m.indices


def in_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(len(keys),) bool: each key occurs in the increasing array ``sorted_keys``.
    O(len(keys) · log len(sorted_keys))."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    return sorted_keys[np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)] == keys


def aligned_values(pattern: sp.csr_matrix, m: sp.spmatrix) -> np.ndarray:
    """(nnz,) float32: values of ``m`` at the entries of ``pattern`` (0 where absent), in
    ``pattern``'s order (:func:`tribes.kernels.csr_values`). O(nnz · log row nnz of m)."""
    pattern = pattern.tocsr()
    return csr_values(m, entry_rows(pattern), pattern.indices)


def rank_within(groups: np.ndarray, order: np.ndarray) -> np.ndarray:
    """0-based rank of each element within its group, following ``order``.

    ``order`` must list elements group by group (e.g. from ``np.lexsort`` with ``groups`` as
    the primary key). Returns an array aligned with the original elements.
    """
    g = groups[order]
    if len(g) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    out = np.empty(len(g), dtype=np.int64)
    out[order] = rank
    return out
