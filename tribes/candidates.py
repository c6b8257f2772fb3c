"""Named candidate sources for people suggestions, and the filters every list obeys.

Each source is a function of a :class:`CandidateContext` returning a (U, U) CSR matrix: row
``u`` holds up to ``candidates_per_source`` candidates for user ``u`` with the source's own
score. Every source filters through ``CandidateContext.keep`` (:func:`exclusion_matrix`,
:func:`apply_filters`) before it truncates, so no source can leak the user themself, someone they follow, block or mute (or who blocks or
mutes them), a non-discoverable person, or someone they dismissed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .behaviour import Behaviour
from .graph import InterestGraph
from .kernels import TwoHopTopK, best_fetched
from .parallel import map_blocks, ranges_by_work
from .params import Params
from .ppr import ppr_forward_push
from .snapshot import Snapshot
from .sparse import binary, drop_diagonal, top_k_per_row

__all__ = ["SOURCES", "CandidateContext", "exclusion_matrix", "generate_candidates"]

_CHUNK = 50_000
_CHUNK_WORK = 20_000_000  # entries touched per product chunk (~0.5 GB of temporaries at most)
_HEAVY_SHARE = 0.001  # approximate ALS: share of items with the largest factor norms scored exactly
_TRAIN_PER_CELL = (
    128  # approximate ALS: k-means sample per index cell (1M users: recall 0.969, as with 256)
)


@dataclass(frozen=True, eq=False)
class CandidateContext:
    snap: Snapshot
    graph: InterestGraph
    labels: np.ndarray  # (U,) primary tribe, -1 none
    memberships: sp.csr_matrix  # (U, K) overlapping tribe shares
    topic_knn: sp.csr_matrix  # (U, U) topic cosine neighbours
    behaviour: Behaviour
    params: Params
    exclusion: sp.csr_matrix  # (U, U) from exclusion_matrix(snap)
    #: (U,) bool: the users to generate candidates for; None = everybody. Learning uses a
    #: sample so its cost stays bounded as the network grows (rows outside stay empty).
    query: np.ndarray | None = None

    def query_rows(self, m: sp.csr_matrix) -> sp.csr_matrix:
        """``m`` with the rows of users outside ``query`` emptied (unchanged when None). O(nnz)."""
        if self.query is None:
            return m.tocsr()
        out = (sp.diags(self.query.astype(np.float32)) @ m).tocsr()
        out.eliminate_zeros()
        out.sort_indices()  # the same summation order as the full matrix: identical rows
        return out

    def query_users(self, users: np.ndarray) -> np.ndarray:
        """The subset of ``users`` (indices) inside ``query``."""
        return users if self.query is None else users[self.query[users]]

    def keep(self, block: sp.csr_matrix, start: int = 0) -> sp.csr_matrix:
        """Filter rows ``start..`` of a candidate matrix, then keep each row's top entries."""
        excluded = self.exclusion[start : start + block.shape[0]]
        return top_k_per_row(
            apply_filters(block, excluded, self.snap.discoverable),
            self.params.candidates_per_source,
        )


def _row_chunks(
    left: sp.csr_matrix, right: sp.csr_matrix, max_work: int = _CHUNK_WORK
) -> list[tuple[int, int]]:
    """Row ranges of ``left`` whose product with ``right`` touches at most ~``max_work``
    entries each (at least one row), so memory stays bounded whatever the degrees."""
    work = left.tocsr() @ np.diff(right.tocsr().indptr).astype(np.float64)
    chunks = []
    for a, b in ranges_by_work(work, max_work):
        for s in range(a, b, _CHUNK):  # and at most _CHUNK rows
            chunks.append((s, min(s + _CHUNK, b)))
    return chunks


def _chunked_product(
    ctx: CandidateContext, left: sp.csr_matrix, right: sp.csr_matrix
) -> sp.csr_matrix:
    """Filtered top-k rows of ``left @ right`` (:meth:`CandidateContext.keep` of the product), by
    row chunks on the :mod:`tribes.parallel` workers, never materialising the product."""
    left, right = ctx.query_rows(left), right.tocsr()
    product = TwoHopTopK(
        left, right, ctx.exclusion, ctx.snap.discoverable, ctx.params.candidates_per_source
    )
    parts = map_blocks(lambda ab: product.rows(*ab), _row_chunks(left, right))
    return sp.vstack(parts).tocsr() if parts else sp.csr_matrix(left.shape, dtype=np.float32)


def conversation_2hop(ctx: CandidateContext) -> sp.csr_matrix:
    """People your conversation partners talk with (two hops on the reply/mention graph)."""
    talk = ctx.graph.talk
    talk = top_k_per_row((talk + talk.T).tocsr(), 30)
    return _chunked_product(ctx, talk, talk)


def contact_graph(graph: InterestGraph) -> sp.csr_matrix:
    """(U, U) binary, symmetric: people in touch either way (a follow, a reply or a mention)."""
    c = binary(graph.follows + graph.interaction)
    return drop_diagonal(binary(c + c.T)).tocsr()


def shared_contact_weight(degree: np.ndarray, params: Params) -> np.ndarray:
    """(U,) float32 what sharing contact ``z`` counts for, by its number of contacts:
    ``1 / log deg(z)`` (Adamic-Adar) or ``1 / deg(z)`` (resource allocation, Zhou, Lü & Zhang
    2009: each contact hands out one unit among everyone it knows), per
    ``params.mutual_contacts_index``; 0 for contacts with fewer than 2 or more than
    ``mutual_contacts_hub_degree`` contacts."""
    degree = np.asarray(degree, dtype=np.float64)
    spread = np.maximum(degree, 2)
    value = (
        1.0 / spread
        if params.mutual_contacts_index == "resource_allocation"
        else 1.0 / np.log(spread)
    )
    return np.where(
        (degree >= 2) & (degree <= params.mutual_contacts_hub_degree), value, 0.0
    ).astype(np.float32)


def follow_2hop(ctx: CandidateContext) -> sp.csr_matrix:
    """Mutual contacts: ``Σ_z w(z)`` over the contacts ``z`` you share, ``w`` from
    :func:`shared_contact_weight` (a contact who knows few people says more than one who knows
    everybody; Adamic-Adar by default).

    Each user's ``mutual_contacts_max`` most telling (least connected) contacts are used, and
    contacts with more than ``mutual_contacts_hub_degree`` contacts are skipped as middles, so
    the work per user is bounded on networks with celebrity hubs.
    """
    p = ctx.params
    c = contact_graph(ctx.graph)
    weight = shared_contact_weight(np.diff(c.indptr), p)
    middles = c @ sp.diags(weight)
    middles.eliminate_zeros()
    left = binary(top_k_per_row(middles, p.mutual_contacts_max))
    return _chunked_product(ctx, left, (sp.diags(weight) @ c).tocsr())


def same_tribe(ctx: CandidateContext) -> sp.csr_matrix:
    """The starter packs of your tribes: members most likely to answer, weighted by your share."""
    pack = starter_packs(ctx.labels, ctx.behaviour, ctx.params.candidates_per_source)
    return _chunked_product(ctx, ctx.memberships.tocsr(), pack)


def shared_interests(ctx: CandidateContext) -> sp.csr_matrix:
    """Nearest neighbours by topic cosine."""
    return ctx.keep(ctx.query_rows(ctx.topic_knn))


def als(ctx: CandidateContext) -> sp.csr_matrix:
    """Implicit-feedback ALS (``implicit``) on who interacts with whom.

    Up to ``als_exact_max_users`` users every user is scored against everybody (O(U² f));
    above, only against the people in the ``als_ann_probe`` nearest of ``√U`` cells of an
    inverted-file index (faiss ``IndexIVFFlat``; the 0.1% of people with the largest factor
    norms are scored exactly against everyone): O(U · probe · √U · f). At 100,000 users that
    finds 95% of the exact pairs in a third of the time (``scripts/bench_als.py``).
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    p = ctx.params
    n = ctx.snap.n_users
    items = ctx.graph.interaction.tocsr().astype(np.float32)
    if items.nnz == 0 or n < 3:
        return sp.csr_matrix((n, n), dtype=np.float32)
    items.data = np.log1p(items.data * 10).astype(np.float32)
    factors = max(1, min(p.als_factors, n - 1))
    # implicit parallelises itself; a BLAS thread pool on top only oversubscribes the cores.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            iterations=p.als_iterations,
            regularization=p.als_regularization,
            random_state=p.seed,
            num_threads=min(2, os.cpu_count() or 1),
        )
        model.fit(items, show_progress=False)
    active = ctx.query_users(np.flatnonzero(np.diff(items.indptr) > 0))
    k = min(p.candidates_per_source, n - 1)
    if n > p.als_exact_max_users:
        return ctx.keep(_als_approximate(model, items, active, k, p))
    rows, cols, vals = [], [], []
    for s in range(0, len(active), _CHUNK):
        users = active[s : s + _CHUNK]
        ids, scores = model.recommend(users, items[users], N=k, filter_already_liked_items=True)
        ok = (ids >= 0) & np.isfinite(scores) & (scores > 0)
        rows.append(np.repeat(users, ids.shape[1])[ok.ravel()])
        cols.append(ids.ravel()[ok.ravel()])
        vals.append(scores.ravel()[ok.ravel()])
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return ctx.keep(
        sp.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, n),
        )
    )


def _als_approximate(
    model, items: sp.csr_matrix, users: np.ndarray, k: int, p: Params
) -> sp.csr_matrix:
    """(U, U) the ``k`` best-scored people per user by an IVF index of the factors, without the
    people the user already interacts with (users left short are searched again deeper)."""
    import faiss

    n = items.shape[0]
    faiss.omp_set_num_threads(min(2, os.cpu_count() or 1))
    # Inner product → nearest neighbour (Bachrach et al. 2014): items get one more coordinate
    # sqrt(M² - |x|²), queries a 0, so |q - x|² = |q|² + M² - 2 q·x ranks like q·x. Factor
    # norms are heavy-tailed (at 1M users the largest is ~2,700× the median): with M the
    # largest norm every other item sits at nearly the same lift, and the cells nearest a query
    # are the few holding the largest items (recall 0.20 at 1M). So M is the norm quantile
    # 1 - _HEAVY_SHARE; the few items above it are scored exactly against every query.
    item_factors = np.asarray(model.item_factors, dtype=np.float32)
    user_factors = np.asarray(model.user_factors, dtype=np.float32)
    norms = np.linalg.norm(item_factors, axis=1)
    cap = float(np.quantile(norms, 1.0 - _HEAVY_SHARE))
    heavy = np.flatnonzero(norms > cap)
    light = np.flatnonzero(norms <= cap)
    lift = np.sqrt(np.maximum(cap**2 - norms[light] ** 2, 0.0)).astype(np.float32)
    item_points = np.ascontiguousarray(np.hstack([item_factors[light], lift[:, None]]))
    user_points = np.ascontiguousarray(np.hstack([user_factors, np.zeros((n, 1), np.float32)]))
    dim = item_points.shape[1]
    # faiss wants >= 39 points per cell
    cells = int(max(1, min(np.sqrt(len(light)), len(light) // 39)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, cells, faiss.METRIC_L2)
    train = item_points
    # k-means on a seeded sample is enough to place the cells
    if len(light) > _TRAIN_PER_CELL * cells:
        train = item_points[
            np.random.default_rng(p.seed).choice(len(light), _TRAIN_PER_CELL * cells, replace=False)
        ]
    index.cp.seed = p.seed
    index.train(train)
    index.add_with_ids(item_points, light.astype(np.int64))
    index.nprobe = min(p.als_ann_probe, cells)
    heavy_factors = item_factors[heavy]
    query_norms = np.einsum("ij,ij->i", user_factors, user_factors)
    liked = binary(items)
    liked.sort_indices()

    def search(batch: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, ALS scores) of the ``k`` best of the ``fetch`` nearest and the heavy
        people of each user in ``batch`` (sorted), without the user, people they already
        interact with and non-positive scores (:func:`tribes.kernels.best_fetched`)."""
        distance, ids = index.search(user_points[batch], min(fetch, len(light)))
        # Every lifted point has norm `cap`, so q·x = (|q|² + cap² - |q - x|²) / 2: the ALS score
        # from the distance, without gathering factor rows. Heavy people are scored exactly.
        heavy_scores = user_factors[batch] @ heavy_factors.T
        return best_fetched(
            batch, ids, distance, query_norms, cap**2, heavy, heavy_scores, liked, k
        )

    # Fetch 2k + 1 for everyone; then users left short because their own contacts filled the
    # fetch are searched again with their degree added, in batches of bounded size (their
    # first results are replaced).
    # ~2.5M pairs (and their factor rows) per search
    batch = max(1, _CHUNK_WORK // 8 // (2 * (2 * k + 1)))
    parts = [search(users[s : s + batch], 2 * k + 1) for s in range(0, len(users), batch)]
    found_per_user = (
        np.bincount(np.concatenate([r for r, _, _ in parts]), minlength=n) if parts else np.zeros(n)
    )
    degree = np.diff(liked.indptr)
    short = users[(found_per_user[users] < k) & (degree[users] > k)]
    short = short[np.argsort(degree[short], kind="stable")]
    is_short = np.zeros(n, dtype=bool)
    is_short[short] = True
    parts = [(r[~is_short[r]], c[~is_short[r]], v[~is_short[r]]) for r, c, v in parts]
    start = 0
    while start < len(short):  # sorted by degree: a batch's last user needs the largest fetch
        end = start + 1
        while (
            end < len(short)
            and (end - start + 1) * (k + 1 + degree[short[end]]) <= _CHUNK_WORK // 8
        ):
            end += 1
        batch = short[start:end]
        parts.append(search(np.sort(batch), int(k + 1 + degree[batch[-1]])))
        start = end
    return _rows_to_csr(parts, n)


def _rows_to_csr(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int) -> sp.csr_matrix:
    """(n, n) float32 CSR with sorted indices from ``(rows, cols, values)`` parts, each part's rows
    non-decreasing and every row in one part only, written straight into place: 8 bytes per
    entry, where concatenating the parts and converting COO to CSR held ~50 (1 GB per 20M)."""
    per_row = np.zeros(n, dtype=np.int64)
    for rows, _, _ in parts:
        present, count = np.unique(rows, return_counts=True)
        if per_row[present].any():  # a row in two parts would be written over itself
            raise ValueError("a row appears in more than one part")
        per_row[present] += count
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per_row, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    for rows, cols, values in parts:
        # row start + rank in row
        at = indptr[rows] + np.arange(len(rows)) - np.searchsorted(rows, rows)
        indices[at] = cols
        data[at] = values
    index_type = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
    out = sp.csr_matrix((data, indices, indptr.astype(index_type)), shape=(n, n))
    out.sort_indices()
    return out


def ppr(ctx: CandidateContext) -> sp.csr_matrix:
    """Personalized PageRank by forward push, for the most active users (bounded work each)."""
    p = ctx.params
    g = ctx.graph.interaction.tocsr()
    n = g.shape[0]
    degree = np.diff(g.indptr)
    active = ctx.query_users(np.flatnonzero(degree > 0))
    if len(active) > p.ppr_max_users:
        order = np.lexsort((active, -degree[active]))
        active = np.sort(active[order[: p.ppr_max_users]])
    rows, cols, vals = [], [], []
    for u in active:
        nodes, scores = ppr_forward_push(
            g.indptr, g.indices, g.data, int(u), alpha=p.ppr_alpha, epsilon=p.ppr_epsilon
        )
        rows.append(np.full(len(nodes), u))
        cols.append(nodes)
        vals.append(scores)
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return ctx.keep(
        sp.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, n),
        )
    )


SOURCES: dict[str, Callable[[CandidateContext], sp.csr_matrix]] = {
    "conversation_2hop": conversation_2hop,
    "follow_2hop": follow_2hop,
    "same_tribe": same_tribe,
    "shared_interests": shared_interests,
    "als": als,
    "ppr": ppr,
}


def starter_packs(labels: np.ndarray, behaviour: Behaviour, size: int) -> sp.csr_matrix:
    """(K, U) each tribe's members scored by how likely they answer a newcomer, top ``size``.

    Score = answer rate × activity: the welcoming, present members, not the most followed.
    """
    n = len(labels)
    k = int(labels.max()) + 1 if n and labels.max() >= 0 else 0
    members = np.flatnonzero(labels >= 0)
    score = behaviour.answer_rate[members] * behaviour.activity[members]
    m = sp.csr_matrix((score.astype(np.float32), (labels[members], members)), shape=(k, n))
    return top_k_per_row(m, size)


def exclusion_matrix(snap: Snapshot) -> sp.csr_matrix:
    """(U, U) 1 where row must never be shown column: self, follows, blocks and mutes either
    way, dismissed people. Non-discoverable people are excluded by :func:`apply_filters`."""
    return _pairs(snap, with_self_and_follows=True)


def hidden_matrix(snap: Snapshot) -> sp.csr_matrix:
    """(U, U) 1 where row must not see column anywhere, not even named inside a reason or
    among a thread's participants: blocks and mutes either way, dismissed people."""
    return _pairs(snap, with_self_and_follows=False)


def _pairs(snap: Snapshot, *, with_self_and_follows: bool) -> sp.csr_matrix:
    n = snap.n_users
    rows = [snap.block_src, snap.block_dst, snap.mute_src, snap.mute_dst]
    cols = [snap.block_dst, snap.block_src, snap.mute_dst, snap.mute_src]
    if with_self_and_follows:
        rows += [np.arange(n), snap.follow_src]
        cols += [np.arange(n), snap.follow_dst]
    index = None
    dismissed_rows, dismissed_cols = [], []
    for u, kind, target in snap.dismissed:
        if kind != "user":
            continue
        index = index if index is not None else snap.user_index()
        c = index.get(target)
        if c is not None:
            dismissed_rows.append(u)
            dismissed_cols.append(c)
    rows.append(np.asarray(dismissed_rows, dtype=np.int64))
    cols.append(np.asarray(dismissed_cols, dtype=np.int64))
    r = np.concatenate([np.asarray(x, dtype=np.int64) for x in rows])
    c = np.concatenate([np.asarray(x, dtype=np.int64) for x in cols])
    return binary(sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n, n)))


def apply_filters(
    candidates: sp.csr_matrix, exclusion: sp.csr_matrix, discoverable: np.ndarray
) -> sp.csr_matrix:
    """Remove excluded pairs and non-discoverable columns. O(nnz)."""
    c = candidates.tocsr()
    c = (c - c.multiply(exclusion)).tocsr()
    c.data = c.data * discoverable[c.indices]  # a column mask: O(nnz), no sparse product
    c.eliminate_zeros()
    return c


def generate_candidates(
    ctx: CandidateContext, sources: list[str] | None = None
) -> dict[str, sp.csr_matrix]:
    """Run the named sources (all by default). Returns name → filtered (U, U) CSR."""
    return {name: SOURCES[name](ctx) for name in sources or list(SOURCES)}
