"""Tribes from a user affinity graph: detection, overlapping memberships, labels, stable ids.

Pure functions: numpy/scipy arrays and keyword parameters in, arrays out. The input is the
engine's affinity matrix, a symmetric scipy CSR ``(U, U)`` with weights >= 0 and a zero
diagonal. Labels are ``(U,)`` ints, ``0..K-1`` or ``-1`` for users in no tribe. The only random
step is igraph's Leiden, seeded per call by :func:`_seeded_igraph`.

>>> import numpy as np, scipy.sparse as sp
>>> i, j = np.array([(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5), (2, 3)]).T
>>> a = sp.coo_matrix((np.ones(7), (i, j)), shape=(6, 6))
>>> a = (a + a.T).tocsr()  # two triangles joined by one edge
>>> detect_communities(a, min_size=3)
array([0, 0, 0, 1, 1, 1], dtype=int32)
>>> round(modularity(a, [0, 0, 0, 1, 1, 1]), 4)
0.3571
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from itertools import chain
from typing import NamedTuple

import igraph
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee
from scipy.special import gammaln

from .sparse import entry_rows

__all__ = [
    "conductance",
    "description_length",
    "detect_communities",
    "kept_inside",
    "label_tribes",
    "match_tribe_ids",
    "modularity",
    "planted_partition_length",
    "tribe_affinities",
    "weak_community_share",
]

log = logging.getLogger(__name__)

_EDGE_CHUNK = 1 << 20  # edges converted to Python ints per batch: bounds the memory it takes
#: ``objective="auto"``: CPM's tribes stand when at least this share of the users sit in a
#: community in the weak sense; below it CPM is cutting sparse communities into fragments.
WEAK_SHARE_MIN = 0.5


@contextmanager
def _seeded_igraph(seed: int) -> Iterator[None]:
    """Draw igraph's random numbers from ``random.Random(seed)``, then restore its default.

    igraph has one process-wide generator (by default the ``random`` module, which ``finally``
    puts back): threads running igraph's random algorithms at the same moment would share it.
    """
    igraph.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        igraph.set_random_number_generator(random)


def _check_sparse(x: sp.spmatrix | sp.sparray, name: str, n: int | None = None) -> sp.csr_matrix:
    """``x`` as CSR (no copy if it is one), finite weights >= 0; square, or ``n`` rows."""
    if not sp.issparse(x):
        raise TypeError(f"{name}: expected a scipy sparse matrix, got {type(x).__name__}")
    x = sp.csr_matrix(x)
    if n is None and x.shape[0] != x.shape[1]:
        raise ValueError(f"{name}: expected a square (U, U) matrix, got shape {x.shape}")
    if n is not None and x.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows (one per label), got {x.shape[0]}")
    if x.nnz and not (np.all(np.isfinite(x.data)) and x.data.min() >= 0):
        raise ValueError(f"{name}: weights must be finite and >= 0")
    return x


def _check_labels(labels: np.ndarray, n: int, name: str = "labels") -> np.ndarray:
    """``labels`` as an int64 ``(n,)`` array of values >= -1."""
    lab = np.asarray(labels)
    if lab.shape != (n,) or (lab.size and not np.issubdtype(lab.dtype, np.integer)):
        raise ValueError(f"{name}: expected ({n},) integers, got {lab.shape} {lab.dtype}")
    lab = lab.astype(np.int64, copy=False)
    if lab.size and lab.min() < -1:
        raise ValueError(f"{name}: values must be >= -1, got {lab.min()}")
    return lab


def _n_tribes(labels: np.ndarray) -> int:
    return int(labels.max()) + 1 if labels.size else 0


def _one_hot(labels: np.ndarray, k: int) -> sp.csr_matrix:
    """``(U, k)`` CSR with a 1 at ``(u, labels[u])`` for every labelled user."""
    rows = np.flatnonzero(labels >= 0)
    return sp.csr_matrix((np.ones(rows.size), (rows, labels[rows])), shape=(labels.size, k))


def _rank_in_group(group: np.ndarray, *keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort by ``group``, then ``keys`` ascending (first most significant). O(n log n).

    Returns the permutation and each sorted entry's 0-based rank within its group.
    """
    order = np.lexsort((*reversed(keys), group))
    g = group[order]
    start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if g.size else np.zeros(0, np.int64)
    return order, np.arange(g.size) - np.repeat(start, np.diff(np.r_[start, g.size]))


def _leiden(
    graph: igraph.Graph, w: np.ndarray, cpm: bool, resolution: float, seed: int, n_iterations: int
) -> np.ndarray:
    """(vertices,) int64 Leiden membership of igraph's vertices, CPM or modularity."""
    with _seeded_igraph(seed):
        found = graph.community_leiden(
            objective_function="CPM" if cpm else "modularity",
            # CPM's resolution in median-weight units: independent of the weight scale. A float64
            # array is read as a sequence, without a Python list.
            weights=w / np.median(w) if cpm else w,
            resolution=resolution,
            n_iterations=n_iterations,
        )
    return np.asarray(found.membership, dtype=np.int64)


def _infomap(graph: igraph.Graph, w: np.ndarray, seed: int) -> np.ndarray:
    """(vertices,) int64 Infomap membership of igraph's vertices (one trial)."""
    with _seeded_igraph(seed):
        found = graph.community_infomap(edge_weights=w, trials=1)
    return np.asarray(found.membership, dtype=np.int64)


def _unless_cpm_fragments(
    a: sp.csr_matrix,
    graph: igraph.Graph,
    w: np.ndarray,
    position: np.ndarray,
    cpm: np.ndarray,
    seed: int,
    n_iterations: int,
    settle,
    merge: bool = True,
) -> tuple[np.ndarray, str]:
    """``objective="auto"`` after CPM: ``(partition, method)``. Where CPM's groups are
    communities in the weak sense (most users in one), CPM's, with the pieces of sparse groups
    merged (:func:`_merge_where_one_group_explains_more`). Where they are not, but Infomap's
    modules are, Infomap's, merged the same way: Infomap can split sparse modules (its field of
    view), and modularity's proposals put them back together where one block describes them in
    fewer nats. Where Infomap finds no such communities either (ties spread with no clear
    groups, as in much real messaging), CPM's human-scale tribes stay. ``merge`` False: no
    merging (the partition as found)."""
    share = weak_community_share(a, cpm)
    base, name = cpm, "cpm"
    if share < WEAK_SHARE_MIN:
        flow = _infomap(graph, w, seed)[position]
        flow_share = weak_community_share(a, flow)
        if flow_share < WEAK_SHARE_MIN:
            log.info(
                "tribes: weak communities hold %.0f%% of the users with CPM, %.0f%% with Infomap: keeping CPM",
                100 * share,
                100 * flow_share,
            )
            return cpm, "cpm"
        log.info(
            "tribes: weak communities hold %.0f%% of the users with CPM, %.0f%% with Infomap: using Infomap",
            100 * share,
            100 * flow_share,
        )
        base, name = flow, "infomap"
    if not merge:
        return base, name
    return _merge_where_one_group_explains_more(
        a, graph, w, position, base, name, seed, n_iterations, settle
    )


def detect_communities(
    affinity: sp.csr_matrix,
    *,
    resolution: float = 1.0,
    seed: int = 0,
    n_iterations: int = 2,
    min_size: int = 5,
    objective: str = "modularity",
    return_method: bool = False,
    merge_max_users: int | None = None,
) -> np.ndarray | tuple[np.ndarray, str]:
    """Tribes: Leiden communities (modularity or CPM) or Infomap's, with the small ones dissolved.

    Parameters
    ----------
    affinity : (U, U) sparse, symmetric, weights >= 0
        Only the strict upper triangle is read; the lower one is assumed to mirror it.
    resolution : float
        > 0; higher gives more, smaller tribes. For ``"modularity"`` the usual γ (1 is
        classic modularity). For ``"cpm"`` the constant Potts model's density threshold, in
        units of the median edge weight: a tribe's internal weight must exceed
        ``resolution × median weight`` per pair of members. CPM has no resolution limit, so
        tribes keep a human scale however large the graph (modularity merges small
        communities as the graph grows).
    seed : int
        Seeds igraph's generator for this call: equal inputs and seed give equal labels.
    n_iterations : int
        Leiden iterations; negative runs until an iteration changes nothing (on a million
        users that took 7 iterations for the quality of 2).
    objective : {"modularity", "cpm", "auto", "infomap"}
        ``"infomap"``: the map equation's modules (igraph's Infomap, one trial; no resolution,
        ~6x Leiden's time). ``"auto"``: CPM at ``resolution``, unless fewer than
        ``WEAK_SHARE_MIN`` of the users then sit in communities in the weak sense
        (:func:`weak_community_share`) while Infomap's modules hold at least that share: CPM's
        density threshold is then cutting communities sparser than it (large ones in a sparse
        graph) into fragments whose ties mostly leave them, and Infomap's modules are used.
        Either way modularity's groups (γ = 1) are then proposals: one is taken where the ties
        among the CPM groups or Infomap modules it mostly holds take fewer nats as one block
        than as those groups (:func:`planted_partition_length` of that subgraph; method ``"cpm-merged"`` or
        ``"infomap-merged"``): CPM's threshold can also cut sparse groups into dense pieces that
        pass, and Infomap splits sparse modules.
    min_size : int
        Communities smaller than this are dissolved: each member joins the remaining one it
        has the most affinity with (ties: the lower Leiden id), else gets -1.
    merge_max_users : int or None
        ``"auto"`` merges pieces (modularity's proposals, see above) only on graphs of at most
        this many users; None: always. The step costs one more Leiden run (~30 s at a million
        users, where CPM's human-scale tribes are what is wanted anyway).
    return_method : bool
        Also return the method that made the partition: ``"cpm"``, ``"modularity"``,
        ``"infomap"``, ``"cpm-merged"`` or ``"infomap-merged"`` (for ``"auto"``, what it chose).

    Returns
    -------
    (U,) int32
        ``0..K-1`` by decreasing size (ties: smallest member index first); -1 for users with
        no edges or left without a tribe. With ``return_method``, ``(labels, method)``.

    Notes
    -----
    Time O(nnz) to hand the graph to igraph (~0.6 µs per edge: its constructor takes Python
    ints) plus Leiden, O(edges) per iteration but cache-bound: ~0.7 µs per edge at 1.6M edges,
    ~2 µs at 15M. Users are renumbered in reverse Cuthill-McKee order first (O(nnz)), so that
    neighbours sit close in igraph's arrays: ~20% faster at 15M edges. Memory ~140 bytes per
    edge at peak, mostly igraph's.
    """
    a = _check_sparse(affinity, "affinity")
    if not resolution > 0:
        raise ValueError(f"resolution: must be > 0, got {resolution!r}")
    if objective not in ("modularity", "cpm", "auto", "infomap"):
        raise ValueError(
            f"objective: expected 'modularity', 'cpm', 'auto' or 'infomap', got {objective!r}"
        )
    if min_size < 1:
        raise ValueError(f"min_size: must be >= 1, got {min_size!r}")
    n = a.shape[0]
    rows = entry_rows(a, np.int32)
    upper = (a.indices > rows) & (a.data > 0)
    src, dst, w = rows[upper], a.indices[upper], a.data[upper].astype(np.float64)
    del rows, upper
    method = "cpm" if objective == "auto" else objective
    if src.size == 0:
        empty = np.full(n, -1, dtype=np.int32)
        return (empty, method) if return_method else empty
    position = np.empty(n, dtype=np.int64)  # igraph's vertex of each user
    position[reverse_cuthill_mckee(a, symmetric_mode=True)] = np.arange(n)
    edges = chain.from_iterable(
        zip(
            position[src[i : i + _EDGE_CHUNK]].tolist(),
            position[dst[i : i + _EDGE_CHUNK]].tolist(),
            strict=True,
        )
        for i in range(0, src.size, _EDGE_CHUNK)
    )
    graph = igraph.Graph(n=n, edges=edges, directed=False)

    if objective == "infomap":
        comm = _infomap(graph, w, seed)[position]
    else:
        comm = _leiden(graph, w, objective != "modularity", resolution, seed, n_iterations)[
            position
        ]
    has_edge = np.zeros(n, dtype=bool)
    has_edge[src] = has_edge[dst] = True
    del src, dst
    settle = partial(_dissolve_small, a, has_edge=has_edge, min_size=min_size)
    if objective == "auto":
        merge = merge_max_users is None or n <= merge_max_users
        comm, method = _unless_cpm_fragments(
            a, graph, w, position, comm, seed, n_iterations, settle, merge
        )
    del graph, w, position  # free igraph's memory now
    labels = _renumber_by_size(settle(comm))
    return (labels, method) if return_method else labels


def _dissolve_small(
    a: sp.csr_matrix, comm: np.ndarray, *, has_edge: np.ndarray, min_size: int
) -> np.ndarray:
    """``comm`` (ids >= 0, or -1 for none) with groups under ``min_size`` dissolved: each member joins the
    remaining group it has the most affinity with (ties: the lower id), else -1; users
    without ties -1. O(nnz of the small groups' rows)."""
    labelled = comm >= 0  # -1: already in no group
    size = np.bincount(comm[labelled], minlength=int(comm.max(initial=-1)) + 1)
    small = np.zeros(comm.size, dtype=bool)
    small[labelled] = size[comm[labelled]] < min_size
    small &= has_edge
    if small.any():
        comm = np.where(small, -1, comm)
        to_kept = (a[small] @ _one_hot(comm, size.size)).tocoo()  # (n_small, communities)
        order, rank = _rank_in_group(to_kept.row, -to_kept.data, to_kept.col)
        best = order[rank == 0]
        best = best[to_kept.data[best] > 0]
        moved = np.full(int(small.sum()), -1, dtype=np.int64)
        moved[to_kept.row[best]] = to_kept.col[best]
        comm[small] = moved
    return np.where(has_edge, comm, -1)


def _merge_where_one_group_explains_more(
    a: sp.csr_matrix,
    graph: igraph.Graph,
    w: np.ndarray,
    position: np.ndarray,
    base: np.ndarray,
    name: str,
    seed: int,
    n_iterations: int,
    settle,
) -> tuple[np.ndarray, str]:
    """``(partition, method)``: the ``base`` partition (CPM's or Infomap's, called ``name``)
    with the pieces of sparse groups merged. CPM's threshold can cut a sparse group into dense
    pieces that each pass the weak test (a 3,000-user partition graph of 30 groups: 92 pieces),
    and Infomap can split sparse modules. Modularity (γ = 1) proposes larger groups; a proposal
    is taken when the ties among the base groups (after ``settle``) it mostly holds take fewer
    nats as one block than as those groups (:func:`planted_partition_length` of that subgraph:
    are they tied as densely to each other as inside?); elsewhere the base groups stay. A few
    members of groups lying mostly elsewhere are left out of the judgement (each would be a
    costly block of its own and tip it towards merging) but go with the proposal when it is
    taken. Deciding each proposal on its own subgraph keeps the
    decision honest at scale: one description length of the whole graph charges for every pair
    of blocks, so with thousands of human-scale tribes it prefers a few large ones (modularity's
    resolution limit, again: on a million synthetic users it would trade 16,660 tribes for
    780). The result is ``base`` unless a proposal was taken and most users still sit in weak
    communities; then ``name + "-merged"``. Cost: one more Leiden run, and O(nnz of the
    proposals' members) for the lengths."""
    pieces = settle(base.copy())
    proposed = _leiden(graph, w, False, 1.0, seed, n_iterations)[position]
    users = np.argsort(proposed, kind="stable")  # users grouped by proposal
    bounds = np.searchsorted(proposed[users], np.arange(int(proposed.max()) + 2))
    piece_size = np.bincount(pieces[pieces >= 0])
    taken = []
    for h in range(len(bounds) - 1):
        members = users[bounds[h] : bounds[h + 1]]
        local = pieces[members]
        ids, count = np.unique(local[local >= 0], return_counts=True)
        held = ids[2 * count > piece_size[ids]]
        if len(held) < 2:  # nothing for the base and modularity to disagree about
            continue
        # Judged on the pieces it mostly holds: a few members of pieces that lie elsewhere
        # would be blocks of their own here, costly to describe, and tip the balance to merging.
        judged = members[(local < 0) | np.isin(local, held)]
        sub = a[judged][:, judged]
        one = planted_partition_length(sub, np.zeros(len(judged), dtype=np.int64))
        if one < planted_partition_length(sub, pieces[judged]):
            taken.append(h)
    if not taken:
        return base, name
    merged = pieces.copy()
    inside = np.isin(proposed, taken)
    # past the base's ids: a group of its own
    merged[inside] = int(pieces.max()) + 1 + proposed[inside]
    if weak_community_share(a, merged) < WEAK_SHARE_MIN:
        return base, name
    log.info(
        "tribes: %d of modularity's groups describe their ties in fewer nats than %s's pieces of them",
        len(taken),
        name,
    )
    return merged, f"{name}-merged"


def _renumber_by_size(comm: np.ndarray) -> np.ndarray:
    """``comm`` (ids >= 0 or -1) as int32 ``0..K-1`` by decreasing size, ties by first member."""
    out = np.full(comm.size, -1, dtype=np.int32)
    members = np.flatnonzero(comm >= 0)
    if members.size:
        ids, first, count = np.unique(comm[members], return_index=True, return_counts=True)
        new_id = np.empty(ids.max() + 1, dtype=np.int32)
        new_id[ids[np.lexsort((members[first], -count))]] = np.arange(ids.size)
        out[members] = new_id[comm[members]]
    return out


def tribe_affinities(
    affinity: sp.csr_matrix, labels: np.ndarray, *, top_k: int = 3, min_share: float = 0.1
) -> sp.csr_matrix:
    """Overlapping memberships: the share of each user's affinity going to each tribe.

    As SimClusters' InterestedIn: ``D⁻¹ A H`` with ``D`` the weighted degrees and ``H`` the
    one-hot labels; a row sums to at most 1 (the rest goes to users in no tribe).

    Parameters
    ----------
    affinity : (U, U) sparse, symmetric, weights >= 0
    labels : (U,) int, ``0..K-1`` or -1; ``K = labels.max() + 1``
    top_k : int
        At most this many tribes per user, a labelled user's own tribe among them.
    min_share : float
        Tribes other than the user's own are kept only from this share up.

    Returns
    -------
    (U, K) CSR float32
        Per row the user's own tribe first (stored even as an explicit 0, e.g. a singleton
        tribe when ``min_size=1``), then the largest shares (ties: lower tribe).

    Notes
    -----
    Time O(nnz + C log C) for the C candidate entries with share >= ``min_share``; memory
    O(nnz + U); nothing dense of shape (U, K).
    """
    a = _check_sparse(affinity, "affinity")
    n = a.shape[0]
    lab = _check_labels(labels, n)
    if top_k < 1:
        raise ValueError(f"top_k: must be >= 1, got {top_k!r}")
    k = _n_tribes(lab)
    degree = np.asarray(a.sum(axis=1), dtype=np.float64).ravel()
    share = (a @ _one_hot(lab, k)).tocoo()
    share.data /= degree[share.row]  # a stored entry implies a positive degree
    own = np.flatnonzero(lab >= 0)
    # every share plus a 0 at each user's own tribe; the duplicates are summed
    rows, cols = np.r_[share.row, own], np.r_[share.col, lab[own]]
    cand = sp.csr_matrix((np.r_[share.data, np.zeros(own.size)], (rows, cols)), shape=(n, k))
    cand = cand.tocoo()
    primary = cand.col == lab[cand.row]
    ok = primary | (cand.data >= min_share)  # filter before the sort, the costly part
    row, col, val, primary = cand.row[ok], cand.col[ok], cand.data[ok], primary[ok]
    order, rank = _rank_in_group(row, ~primary, -val, col)
    keep = order[rank < top_k]
    return sp.csr_matrix((val[keep].astype(np.float32), (row[keep], col[keep])), shape=(n, k))


def label_tribes(
    labels: np.ndarray,
    user_topic: sp.csr_matrix,
    vocabulary: np.ndarray,
    *,
    n_topics: int = 5,
    min_support: int = 2,
    min_lift: float = 1.5,
    tribe_ids: np.ndarray | None = None,
) -> tuple[list[list[str]], list[str]]:
    """Each tribe's most distinctive topics and a short human label.

    Score of topic ``v`` in tribe ``k``: ``lift * log(1 + support)``, where ``lift`` is the
    share of the tribe's topic weight on ``v`` over the share of everyone's, and ``support``
    the number of members with ``v``. Topics with ``support < min_support`` or ``lift <
    min_lift`` (not much more common in the tribe than overall: a word everyone uses) are
    ignored. A tribe holding a share ``s`` of all topic weight has lifts of at most ``1 / s``;
    where that is below ``2 * min_lift - 1`` (a tribe with most of the weight), it needs
    ``1 + (1/s - 1) / 2``, half of the most it could reach.

    Parameters
    ----------
    labels : (U,) int, ``0..K-1`` or -1
    user_topic : (U, V) sparse, weights >= 0
    vocabulary : (V,) str
    n_topics, min_support, min_lift
        Topics kept per tribe and the two filters above.
    tribe_ids : (K,) int, optional
        Public ids for the fallback name ``"tribe <id>"``; default the tribe index.

    Returns
    -------
    topics : list of K lists of str, best first
    names : list of K str
        The top three topics joined by ``" · "``, or ``"tribe <id>"`` when there are none.

    Notes
    -----
    Time O(nnz log nnz + K * n_topics); memory O(nnz).
    """
    n = len(labels)
    lab = _check_labels(labels, n)
    x = _check_sparse(user_topic, "user_topic", n)
    n_vocab = x.shape[1]
    vocab = np.asarray(vocabulary)
    if vocab.shape != (n_vocab,):
        raise ValueError(f"vocabulary: expected shape ({n_vocab},), got {vocab.shape}")
    k = _n_tribes(lab)
    ids = np.arange(k) if tribe_ids is None else np.asarray(tribe_ids)
    if ids.shape != (k,):
        raise ValueError(f"tribe_ids: expected shape ({k},), got {ids.shape}")
    if not x.has_canonical_format:  # so that each (user, topic) is stored once
        x = x.copy()
        x.sum_duplicates()
    coo = x.tocoo()
    pos = coo.data > 0
    user, topic, weight = coo.row[pos], coo.col[pos].astype(np.int64), coo.data[pos]
    overall = np.bincount(topic, weights=weight, minlength=n_vocab).astype(np.float64)
    overall /= overall.sum() or 1.0
    inside = lab[user] >= 0
    key = lab[user[inside]] * n_vocab + topic[inside]
    pair, inverse, support = np.unique(key, return_inverse=True, return_counts=True)
    mass = np.bincount(inverse, weights=weight[inside], minlength=pair.size)
    t, v = pair // n_vocab, pair % n_vocab
    tribe_mass = np.bincount(t, weights=mass, minlength=k)
    lift = mass / tribe_mass[t] / overall[v]
    # A tribe holding a share s > 1/2 of all topic weight cannot reach a lift of 1 / s: it
    # needs half of what it could reach (1 + (1/s - 1) / 2), or the largest tribe has no name.
    share = tribe_mass / (weight.sum() or 1.0)
    with np.errstate(divide="ignore"):
        needed = np.minimum(min_lift, 1.0 + (1.0 / share - 1.0) / 2.0)
    ok = (support >= min_support) & (lift >= needed[t])
    t, v, score = t[ok], v[ok], lift[ok] * np.log1p(support[ok])
    order, rank = _rank_in_group(t, -score, v)
    best = order[rank < n_topics]
    per_tribe = np.split(v[best], np.searchsorted(t[best], np.arange(1, k))) if k else []
    topics = [vocab[p].astype(str).tolist() for p in per_tribe]
    names = [" · ".join(tp[:3]) if tp else f"tribe {ids[i]}" for i, tp in enumerate(topics)]
    return topics, names


def match_tribe_ids(
    new_labels: np.ndarray,
    old_labels: np.ndarray | None,
    old_ids: np.ndarray | None,
    *,
    min_jaccard: float = 0.2,
    next_id: int | None = None,
) -> np.ndarray:
    """Stable public tribe ids across recomputes, by greedy Jaccard matching of member sets.

    Parameters
    ----------
    new_labels : (U,) int, ``0..K-1`` or -1
    old_labels : (U,) int or None
        The previous model's labels of the same users (-1 for users it did not have).
    old_ids : (K_old,) int or None
        ``old_ids[j]``: the public id of old tribe ``j``.
    min_jaccard : float
        Pairs below this are never matched (nor pairs without a common member).
    next_id : int, optional
        Lowest id never handed out (default ``max(old_ids) + 1``): pass the model's high-water
        mark so that the ids of tribes which vanished in earlier recomputes stay retired.

    Returns
    -------
    (K,) int64
        Pairs are taken by decreasing Jaccard (ties: lower new, then lower old tribe), each
        old id at most once; unmatched tribes get fresh ids upwards in tribe order. Without
        an old model: ``next_id or 0`` upwards.

    Notes
    -----
    Time O(U + P log P) for the P <= U overlapping pairs (a sparse contingency table); the
    greedy loop runs over the at most ``K / min_jaccard`` pairs that pass ``min_jaccard``.
    """
    new = _check_labels(new_labels, len(new_labels), "new_labels")
    k = _n_tribes(new)
    if old_labels is None or old_ids is None:
        if old_labels is not None or old_ids is not None:
            raise ValueError("old_labels, old_ids: give both or neither")
        return np.arange(k, dtype=np.int64) + (next_id or 0)
    old = _check_labels(old_labels, new.size, "old_labels")
    ids = np.asarray(old_ids, dtype=np.int64)
    if ids.ndim != 1 or np.unique(ids).size != ids.size:
        raise ValueError("old_ids: expected a 1-d array of distinct ids")
    if _n_tribes(old) > ids.size:
        raise ValueError(f"old_labels: tribe {old.max()} has no id (old_ids has {ids.size})")
    fresh = max(int(ids.max()) + 1 if ids.size else 0, next_id or 0)
    both = (new >= 0) & (old >= 0)
    table = sp.csr_matrix(
        (np.ones(int(both.sum())), (new[both], old[both])), shape=(k, ids.size)
    ).tocoo()  # contingency: common members per (new, old) pair
    union = np.bincount(new[new >= 0], minlength=k)[table.row] - table.data
    jaccard = table.data / (union + np.bincount(old[old >= 0], minlength=ids.size)[table.col])
    cand = np.flatnonzero(jaccard >= min_jaccard)
    cand = cand[np.lexsort((table.col[cand], table.row[cand], -jaccard[cand]))]
    out = np.full(k, -1, dtype=np.int64)
    taken = np.zeros(ids.size, dtype=bool)
    for i, j in zip(table.row[cand].tolist(), table.col[cand].tolist(), strict=True):
        if out[i] < 0 and not taken[j]:
            out[i], taken[j] = ids[j], True
    unmatched = out < 0
    out[unmatched] = fresh + np.arange(int(unmatched.sum()))
    return out


def _loose_as_singletons(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """A copy of ``labels`` where each user labelled -1 is a group of their own, numbered after
    ``0..K-1``; and the number of groups then."""
    lab = labels.copy()
    loose = np.flatnonzero(lab < 0)
    k = _n_tribes(lab)
    lab[loose] = k + np.arange(loose.size)
    return lab, k + loose.size


def _partition_sums(a: sp.csr_matrix, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per community the weight inside (both directions) and the volume; users labelled -1
    are singleton communities numbered after ``0..K-1``."""
    lab, n_groups = _loose_as_singletons(labels)
    rows = entry_rows(a, np.int32)
    same = lab[rows] == lab[a.indices]
    internal = np.bincount(lab[rows[same]], weights=a.data[same], minlength=n_groups)
    return internal, np.bincount(lab[rows], weights=a.data, minlength=n_groups)


def kept_inside(weights: sp.spmatrix, labels: np.ndarray) -> np.ndarray:
    """(K,) the share of each tribe's members' tie weight that stays inside the tribe: 1 for a
    tribe that talks only among itself, 0 for one whose members talk only with others (and for
    one without ties). ``weights`` (U, U), >= 0, either direction (symmetrised here); ``labels``
    ``0..K-1`` or -1. O(nnz)."""
    a = _check_sparse(weights, "weights")
    lab = _check_labels(labels, a.shape[0])
    k = _n_tribes(lab)
    rows = entry_rows(a, np.int32)
    # Symmetrised without a copy: each entry counts at both of its ends.
    ends = [lab[rows], lab[a.indices]]
    volume = sum(np.bincount(e[e >= 0], weights=a.data[e >= 0], minlength=k) for e in ends)
    same = (ends[0] == ends[1]) & (ends[0] >= 0)
    internal = 2.0 * np.bincount(ends[0][same], weights=a.data[same], minlength=k)
    return np.divide(internal, volume, out=np.zeros(k), where=volume > 0)


def weak_community_share(affinity: sp.csr_matrix, labels: np.ndarray) -> float:
    """Share of the users with a label (>= 0) whose group is a community in the weak sense
    (Radicchi et al. 2004): more of its members' affinity weight stays inside the group than
    leaves it. Taken symmetrically, as conductance below 1/2, so that a group holding most of
    the graph does not pass by its size alone: for a group with at most half of all the weight
    this is exactly Radicchi's test; a bigger one must also keep more than half of the rest's
    weight away from it; one holding all the weight is no community. 1.0 when nobody has a
    label. ``affinity`` symmetric (U, U). O(nnz)."""
    a = _check_sparse(affinity, "affinity")
    lab = _check_labels(labels, a.shape[0])
    k = _n_tribes(lab)
    if not (lab >= 0).any():
        return 1.0
    internal, volume = _partition_sums(a, lab)
    cut, vol = volume[:k] - internal[:k], volume[:k]
    weak = 2 * cut < np.minimum(vol, float(a.data.sum()) - vol)
    size = np.bincount(lab[lab >= 0], minlength=k)
    return float(size[weak].sum() / size.sum())


class _BlockTies(NamedTuple):
    """How a partition's blocks hold a simple graph's ties (users without ties left out)."""

    size: np.ndarray  # (B,) users per block
    degree: np.ndarray  # (n,) ties of each tied user
    block_degree: np.ndarray  # (B,) tie ends per block
    r: np.ndarray  # (P,) block pairs r <= t holding at least one tie ...
    t: np.ndarray
    ties: np.ndarray  # (P,) ... and their ties


def _block_ties(affinity: sp.csr_matrix, labels: np.ndarray) -> _BlockTies | None:
    """The support of ``affinity`` (ties; weights ignored) counted per block of ``labels``
    (-1: a block of one); None without ties. O(nnz log nnz + U), ~50 bytes per entry."""
    a = _check_sparse(affinity, "affinity")
    lab = _check_labels(labels, a.shape[0])
    rows = entry_rows(a, np.int32)
    tie = (a.data > 0) & (rows != a.indices)
    rows, cols = rows[tie], a.indices[tie]  # each tie twice, once from each end
    degree = np.bincount(rows, minlength=a.shape[0])
    tied = degree > 0
    if not tied.any():
        return None
    lab, _ = _loose_as_singletons(lab)
    _, block = np.unique(lab[tied], return_inverse=True)
    node_block = np.zeros(a.shape[0], dtype=np.int64)
    node_block[tied] = block
    b = int(block.max()) + 1
    r, t = node_block[rows], node_block[cols]
    pair, ends = np.unique(r * b + t, return_counts=True)  # tie ends per ordered block pair
    r, t = pair // b, pair % b
    keep = r <= t
    ties = np.where(r == t, ends // 2, ends)[keep]  # inside a block each tie has both ends there
    return _BlockTies(
        np.bincount(block, minlength=b),
        degree[tied],
        np.bincount(block, weights=degree[tied], minlength=b),
        r[keep],
        t[keep],
        ties,
    )


def _ln_choose(m, k):
    return gammaln(m + 1) - gammaln(k + 1) - gammaln(m - k + 1)


def _partition_length(size: np.ndarray) -> float:
    """Nats to name a partition of ``size.sum()`` users into these block sizes: the number of
    blocks, their sizes, then who is in which (the partition prior of Peixoto 2017)."""
    n, b = int(size.sum()), size.size
    return float(gammaln(n + 1) - gammaln(size + 1).sum() + _ln_choose(n - 1, b - 1) + np.log(n))


def description_length(affinity: sp.csr_matrix, labels: np.ndarray) -> float:
    """Nats to encode the graph's ties with a degree-corrected stochastic block model on
    ``labels``: the microcanonical DC-SBM of Peixoto (Phys. Rev. E 95, 012317, 2017) with
    uniform priors on the partition, the block edge counts and the degrees. Lower is a partition
    that explains the ties better for its complexity (more blocks cost more to describe).

    Reads only which pairs are tied (the support of ``affinity``, a simple undirected graph);
    users labelled -1 count as singleton blocks, users without ties are left out. Time
    O(nnz log nnz + U) (the block pairs are counted by a sort), memory O(nnz): ~50 bytes per
    stored entry at peak. See :func:`planted_partition_length` for judging tribes.
    """
    c = _block_ties(affinity, labels)
    if c is None:
        return 0.0
    inside = c.r == c.t
    e = int(c.ties.sum())
    b = c.size.size
    ties = (
        gammaln(c.block_degree + 1).sum()
        - gammaln(c.ties[~inside] + 1).sum()
        - (c.ties[inside] * np.log(2) + gammaln(c.ties[inside] + 1)).sum()
        - gammaln(c.degree + 1).sum()
    )
    degrees = _ln_choose(c.size + c.block_degree - 1, c.block_degree).sum()
    block_ties = _ln_choose(b * (b + 1) / 2 + e - 1, e)
    return float(ties + degrees + block_ties + _partition_length(c.size))


def planted_partition_length(affinity: sp.csr_matrix, labels: np.ndarray) -> float:
    """Nats to encode the graph's ties as groups tied more densely inside than between: a
    microcanonical planted-partition block model (Zhang & Peixoto, Phys. Rev. Research 2,
    043271, 2020), not degree-corrected. Given the partition, the number of ties inside each
    block and between each pair of blocks, which pairs are tied is one choice among
    ``C(pairs, ties)`` per block and per pair of blocks. Those counts are described as: how many
    ties fall inside blocks, how they spread over the blocks, and which pairs of blocks the
    others join, every pair alike.

    The question this answers is whether groups are worth telling apart: merging a sparse
    group's pieces (ties as dense between them as inside) shortens it, and merging small dense
    groups joined by a tie or two lengthens it. :func:`description_length`'s flat prior on a
    free B × B matrix of counts cannot tell small groups apart (it merges a 10- and a 6-user
    group with 34 ties inside them and 1 between: 86.2 nats as one block, 87.3 as two; 72.7
    and 61.9 here), and with so few users neither can its degree correction under this prior.

    Reads only which pairs are tied (a simple undirected graph); -1 is a block of one; users
    without ties are left out. O(nnz log nnz + U).
    """
    c = _block_ties(affinity, labels)
    if c is None:
        return 0.0
    inside = c.r == c.t
    size = c.size.astype(np.float64)
    pairs = np.where(inside, size[c.r] * (size[c.r] - 1) / 2, size[c.r] * size[c.t])
    ties = _ln_choose(pairs, c.ties).sum()
    b = size.size
    block_ties = 0.0
    if b > 1:
        e_in, between = int(c.ties[inside].sum()), c.ties[~inside]
        e_out = int(between.sum())
        block_ties = (
            np.log(e_in + e_out + 1)
            + _ln_choose(b + e_in - 1, e_in)
            + e_out * np.log(b * (b - 1) / 2)
            - gammaln(e_out + 1)
            + gammaln(between + 1).sum()
        )
    return float(ties + block_ties + _partition_length(c.size))


def modularity(affinity: sp.csr_matrix, labels: np.ndarray, *, resolution: float = 1.0) -> float:
    """Newman's weighted modularity ``sum_c [L_c / 2m - resolution * (d_c / 2m) ** 2]``.

    ``L_c`` is the sum of tribe ``c``'s block of ``affinity`` (its inner weight counted both
    ways), ``d_c`` its volume, ``2m`` the sum of all entries. Users labelled -1 count as
    singletons. 0.0 for a graph without edges. Time O(nnz + U).
    """
    a = _check_sparse(affinity, "affinity")
    internal, volume = _partition_sums(a, _check_labels(labels, a.shape[0]))
    two_m = float(a.data.sum())
    if two_m == 0:
        return 0.0
    return float(internal.sum() / two_m - resolution * np.sum((volume / two_m) ** 2))


def conductance(affinity: sp.csr_matrix, labels: np.ndarray) -> np.ndarray:
    """``(K,)`` float64 per tribe: ``cut(S) / min(vol(S), vol(V - S))``, 0 if nothing leaves.

    Lower is a better separated tribe. Time O(nnz + U).
    """
    a = _check_sparse(affinity, "affinity")
    lab = _check_labels(labels, a.shape[0])
    k = _n_tribes(lab)
    internal, volume = _partition_sums(a, lab)
    cut, vol = volume[:k] - internal[:k], volume[:k]
    denom = np.minimum(vol, float(a.data.sum()) - vol)
    return np.divide(cut, denom, out=np.zeros(k), where=cut > 0)
