"""Baselines behind the :class:`~tribes.evaluation.base.EvalModel` interface, and tribes itself.

Every model stores its keyword parameters unchanged in ``__init__`` (``seed`` and
``batch_size`` included), validates them in ``fit(snap)`` and answers ``recommend_people`` /
``recommend_threads`` with ``(len(users), k)`` int32 indices in the snapshot's numbering, best
first, ``-1`` padded. Scores are computed for blocks of users (sparse products, or dense
``(B, N)`` arrays of at most ``_MAX_CELLS`` cells) and cut with the semantics of
top-k ranking (positive scores only, ties to the smaller
index) after the product's filters: never the user, anyone they follow, block or mute or who
blocks or mutes them, someone they dismissed, a non-discoverable person (the pairs of
``candidates.exclusion_matrix`` plus non-discoverable people); never a thread they posted in (``base.thread_exclusions``).

Cost of a call: O(nnz log nnz) for sparse score blocks (friends-of-friends, PPR, content),
O(len(users) × N) for dense ones (``N`` users or threads; ALS through implicit's C top-k);
:class:`Popularity` and :class:`Random` look at O(k + excluded) items per user.

>>> from tribes.model import snapshot_from
>>> from tribes.synth import SynthConfig, generate
>>> snap = snapshot_from(generate(SynthConfig(n_users=200, seed=1)))
>>> BASELINES["friends-of-friends"]().fit(snap).recommend_people([0, 1], k=5).shape
(2, 5)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import fields
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ..candidates import apply_filters, exclusion_matrix
from ..graph import DAY, square, topic_matrices
from ..params import Params
from ..ppr import ppr_batch
from ..snapshot import Snapshot
from ..sparse import binary, rank_within, row_normalize, top_k_per_row
from .base import EvalModel, thread_exclusions

__all__ = ["ALS", "BASELINES", "Content", "FriendsOfFriends", "PersonalizedPageRank"]
__all__ += ["Popularity", "Random", "Tribes"]

_MAX_CELLS = 10_000_000  # dense scores per block (about 250 MB of working arrays)
_SPARSE_SHARE = 0.04  # sparser score blocks are ranked entry by entry, denser ones as arrays


def _graphs(snap: Snapshot) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Counts as float32 CSR: follows (U, U), replies by row to column (U, U, self-replies
    dropped) and posts per user and thread (U, T)."""
    n, child = snap.n_users, np.flatnonzero(snap.post_parent >= 0)
    ones = np.ones(max(len(snap.follow_src), snap.n_posts), np.float32)
    follows = square(snap.follow_src, snap.follow_dst, ones[: len(snap.follow_src)], n)
    parent_author = snap.post_author[snap.post_parent[child]]
    replies = square(snap.post_author[child], parent_author, ones[: len(child)], n)
    shape = (n, snap.n_threads)
    posts = sp.csr_matrix((ones[: snap.n_posts], (snap.post_author, snap.post_thread)), shape)
    posts.sum_duplicates()
    return follows, replies, posts


def _draws(seed: int, stream: int, rows: np.ndarray, n_draws: int) -> np.ndarray:
    """(len(rows), n_draws) floats in [0, 1): a splitmix64 hash of (seed, stream, row, draw),
    so row ``u``'s draws depend only on ``(seed, stream, u)``."""
    key = np.array([(seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03) % 2**64], np.uint64)
    x = rows.astype(np.uint64)[:, None] * np.uint64(0x632BE59BD9B4E019)
    x = x + np.arange(n_draws, dtype=np.uint64)[None, :] + key
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        x ^= x >> np.uint64(shift)
        x *= np.uint64(mult)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _filtered(block: sp.spmatrix, excluded: sp.csr_matrix, hidden: np.ndarray | None):
    """``block`` as CSR without the excluded pairs and (if given) the hidden columns."""
    visible = np.ones(block.shape[1], bool) if hidden is None else ~hidden
    return apply_filters(sp.csr_matrix(block), excluded, visible)


def _top_k_sparse(block: sp.csr_matrix, k: int) -> np.ndarray:
    """Each row's ``k`` best positive entries of a filtered block (ties: smaller column), as
    (B, k) int32, -1 padded. O(nnz log nnz) instead of O(B × N)."""
    block = sp.csr_matrix(block)
    out = np.full((block.shape[0], k), -1, dtype=np.int32)
    rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
    pos = block.data > 0
    rows, cols, vals = rows[pos], block.indices[pos], block.data[pos]
    rank = rank_within(rows, np.lexsort((cols, -vals, rows)))
    top = rank < k
    out[rows[top], rank[top]] = cols[top]
    return out


def _top_k_dense(scores, excluded: sp.csr_matrix, hidden: np.ndarray | None, k: int):
    """:func:`_top_k_sparse` of a dense (B, N) block, filtered here. Only entries at least as
    good as the row's k-th best are sorted, so ties at the cut go to smaller columns
    (``argpartition`` alone leaves those in arbitrary order)."""
    scores = np.array(scores, dtype=np.float64)
    coo = excluded.tocoo()
    scores[coo.row, coo.col] = 0.0
    if hidden is not None:
        scores[:, hidden] = 0.0
    k_eff = min(k, scores.shape[1])
    if k_eff == 0:
        return np.full((scores.shape[0], k), -1, dtype=np.int32)
    kth = -np.partition(-scores, k_eff - 1, axis=1)[:, k_eff - 1]
    rows, cols = np.nonzero((scores >= kth[:, None]) & (scores > 0))
    return _top_k_sparse(sp.csr_matrix((scores[rows, cols], (rows, cols)), scores.shape), k)


class _Baseline:
    """Parameters, filters and batched top-k shared by the models. Subclasses set ``name`` and
    ``defaults`` and implement ``_fit`` and ``_people_scores`` / ``_thread_scores`` (a block of
    users → (B, N) dense or sparse scores), or override ``_people`` / ``_threads``."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, seed: int = 0, batch_size: int = 2000, **params: Any):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown parameter(s): {', '.join(unknown)}")
        self.seed, self.batch_size = seed, batch_size
        for key, default in self.defaults.items():
            setattr(self, key, params.get(key, default))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        names = ["seed", "batch_size", *self.defaults]
        return {key: getattr(self, key) for key in names}

    def set_params(self, **params: Any) -> _Baseline:
        unknown = sorted(set(params) - set(self.get_params()))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown parameter(s): {', '.join(unknown)}")
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        initial = {"seed": 0, "batch_size": 2000, **self.defaults}
        changed = {k: v for k, v in self.get_params().items() if v != initial[k]}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def fit(self, snap: Snapshot) -> _Baseline:
        """Learn from ``snap``; recommendations use its user and thread numbering."""
        if not isinstance(snap, Snapshot):
            raise TypeError(f"snap: expected a Snapshot, got {type(snap).__name__}")
        self._check("batch_size", isinstance(self.batch_size, Integral) and self.batch_size > 0)
        self._check("seed", isinstance(self.seed, Integral), "an integer")
        self._validate()
        self.snap_ = snap
        # The pairs of candidates.exclusion_matrix, but non-discoverable people stay a column mask:
        # as matrix columns they would cost U × hidden entries (300M at 100k users).
        self.people_excluded_ = exclusion_matrix(snap)
        self.hidden_ = ~np.asarray(snap.discoverable, dtype=bool)
        self.thread_excluded_ = thread_exclusions(snap)
        self._fit(snap)
        return self

    def recommend_people(self, users: np.ndarray, k: int) -> np.ndarray:
        """(len(users), k) int32 user indices, best first, -1 padded."""
        self._check_fitted()
        return self._people(users, k)

    def recommend_threads(self, users: np.ndarray, k: int) -> np.ndarray:
        """(len(users), k) int32 thread indices, best first, -1 padded."""
        self._check_fitted()
        return self._threads(users, k)

    def _check_fitted(self) -> None:
        if not hasattr(self, "snap_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit(snap)")

    def _check(self, key: str, ok: bool, rule: str = "> 0") -> None:
        if not ok:
            raise ValueError(f"{key}: must be {rule}, got {getattr(self, key)!r}")

    def _positive(self, *names: str) -> None:
        for key in names:
            value = getattr(self, key)
            self._check(key, isinstance(value, Real) and value > 0)

    def _validate(self) -> None:
        pass

    def _fit(self, snap: Snapshot) -> None:
        pass

    def _people(self, users, k) -> np.ndarray:
        return self._rank(users, k, self._people_scores, self.people_excluded_, self.hidden_)

    def _threads(self, users, k) -> np.ndarray:
        return self._rank(users, k, self._thread_scores, self.thread_excluded_, None)

    def _batches(self, users: Any, k: int, n_items: int):
        """Validated users and k, the -1 filled output and its (start, users) blocks."""
        users = np.asarray(users, dtype=np.int64).ravel()
        n = self.snap_.n_users
        if users.size and (users.min() < 0 or users.max() >= n):
            raise IndexError(f"users: must be in [0, {n}), got [{users.min()}, {users.max()}]")
        if int(k) != k or k < 0:
            raise ValueError(f"k: must be a non-negative integer, got {k!r}")
        out = np.full((len(users), int(k)), -1, dtype=np.int32)
        step = max(1, min(int(self.batch_size), _MAX_CELLS // max(n_items, 1)))
        return users, int(k), out, [(s, users[s : s + step]) for s in range(0, len(users), step)]

    def _rank(self, users, k, score, excluded, hidden) -> np.ndarray:
        users, k, out, batches = self._batches(users, k, excluded.shape[1])
        for start, batch in batches:
            block = score(batch)
            if sp.issparse(block) and block.nnz < _SPARSE_SHARE * np.prod(block.shape):
                top = _top_k_sparse(_filtered(block, excluded[batch], hidden), k)
            else:
                block = block.toarray() if sp.issparse(block) else block
                top = _top_k_dense(block, excluded[batch], hidden, k)
            out[start : start + len(batch)] = top
        return out


class Popularity(_Baseline):
    """People by in-degree (followers + distinct repliers); threads by posts in the last
    ``window_days`` before ``snap.now``, ties broken by the number of participants."""

    name = "popularity"
    defaults: ClassVar[dict] = dict(window_days=14.0)

    def _validate(self) -> None:
        self._positive("window_days")

    def _fit(self, snap: Snapshot) -> None:
        follows, replies, posts = _graphs(snap)
        in_degree = np.diff(follows.tocsc().indptr) + np.diff(replies.tocsc().indptr)
        self.people_score_ = np.where(self.hidden_, 0.0, in_degree)
        recent = snap.post_ts >= snap.now - self.window_days * DAY
        n_recent = np.bincount(snap.post_thread[recent], minlength=snap.n_threads)
        people = np.diff(posts.tocsc().indptr)
        self.thread_score_ = n_recent + people / (people.max(initial=0) + 1.0)

    def _people(self, users, k) -> np.ndarray:
        return self._global(users, k, self.people_score_, self.people_excluded_)

    def _threads(self, users, k) -> np.ndarray:
        return self._global(users, k, self.thread_score_, self.thread_excluded_)

    def _global(self, users, k, score, excluded) -> np.ndarray:
        """One ranking for all: each row needs only the ``k + excluded`` best columns."""
        users, k, out, batches = self._batches(users, k, len(score))
        order = np.lexsort((np.arange(len(score)), -score))
        for start, batch in batches if len(score) else ():
            rows = excluded[batch]
            head = np.sort(order[: k + int(np.diff(rows.indptr).max(initial=0))])
            block = np.broadcast_to(score[head], (len(batch), len(head)))
            top = _top_k_dense(block, rows[:, head], None, k)
            out[start : start + len(batch)] = np.where(top >= 0, head[np.maximum(top, 0)], -1)
        return out


class FriendsOfFriends(_Baseline):
    """Adamic-Adar on the undirected union of follows and replies:
    ``score(u, c) = Σ_{z ∈ N(u) ∩ N(c)} 1 / log deg(z)``. Threads: ``Σ_{v ∈ N(u)} w(v)``
    over the neighbours who posted in the thread, ``w(v) = 1 / log(1 + deg v)``
    (``thread_weight="adamic_adar"``) or 1 (``"count"``)."""

    name = "friends-of-friends"
    defaults: ClassVar[dict] = dict(thread_weight="adamic_adar")

    def _validate(self) -> None:
        self._check("thread_weight", self.thread_weight in ("adamic_adar", "count"), "known")

    def _fit(self, snap: Snapshot) -> None:
        follows, replies, posts = _graphs(snap)
        self.adjacency_ = binary(follows + follows.T + replies + replies.T)
        deg = np.diff(self.adjacency_.indptr).astype(np.float64)
        aa = np.divide(1.0, np.log(np.maximum(deg, 1)), out=np.zeros_like(deg), where=deg > 1)
        self.weighted_ = sp.csr_matrix(sp.diags(aa) @ self.adjacency_)
        w = 1.0 / np.log1p(np.maximum(deg, 1))
        w = w if self.thread_weight == "adamic_adar" else np.ones_like(deg)
        self.neighbour_threads_ = sp.csr_matrix(sp.diags(w) @ binary(posts))

    def _people_scores(self, batch):
        return self.adjacency_[batch] @ self.weighted_

    def _thread_scores(self, batch):
        return self.adjacency_[batch] @ self.neighbour_threads_


class Content(_Baseline):
    """TF-IDF topic cosine. Documents are posts (decayed with ``half_life_days``, 0 = none;
    every post alike unless ``length_exponent`` > 0, as in tribes' own topics: classic TF-IDF
    was the stronger content baseline on se-quantumcomputing) and profiles (their tags, weight
    ``interest_weight``); a user's topics sum their
    documents, a thread's its posts (:func:`tribes.text.aggregate`); rows L2-normalised.
    A topic only leads to its ``max_per_topic`` heaviest users and threads (0: all), so a
    cosine sums the shared topics in which the item is among the topic's heaviest: exact
    for most pairs, and O(topics × max_per_topic) per user instead of O(N)."""

    name = "content"
    defaults: ClassVar[dict] = dict(
        half_life_days=60.0,
        interest_weight=1.0,
        min_df=2,
        max_df_share=0.3,
        length_exponent=0.0,
        max_per_topic=300,
    )

    def _validate(self) -> None:
        self._check("half_life_days", self.half_life_days >= 0, ">= 0")
        self._positive("interest_weight")
        self._check("length_exponent", self.length_exponent >= 0, ">= 0")
        cap = self.max_per_topic
        self._check("max_per_topic", isinstance(cap, Integral) and cap >= 0, "an integer >= 0")

    def _fit(self, snap: Snapshot) -> None:
        user_topic, thread_topic, self.vocabulary_ = topic_matrices(
            snap,
            half_life_days=self.half_life_days,
            interest_weight=self.interest_weight,
            min_df=self.min_df,
            max_df_share=self.max_df_share,
            length_exponent=self.length_exponent,
        )
        self.user_topic_ = row_normalize(user_topic, "l2").tocsr()
        cap = int(self.max_per_topic) or max(snap.n_users, snap.n_threads)
        self.user_topic_t_ = top_k_per_row(self.user_topic_.T.tocsr(), cap)
        self.thread_topic_t_ = top_k_per_row(row_normalize(thread_topic, "l2").T.tocsr(), cap)

    def _people_scores(self, batch):
        return self.user_topic_[batch] @ self.user_topic_t_

    def _thread_scores(self, batch):
        return self.user_topic_[batch] @ self.thread_topic_t_


class ALS(_Baseline):
    """Implicit-feedback ALS (``implicit``): one model on user → user follows plus replies for
    people, one on user × thread posts for threads; confidence ``alpha * log1p(count)``.
    Lists are the positive ``user_factors @ item_factors.T`` by implicit's filtered top-k (C,
    threaded; float ties in its order); users without any interaction get none.
    ``num_threads=0`` means ``min(2, cores)``, as in the engine."""

    name = "als"
    defaults: ClassVar[dict] = dict(
        factors=32, iterations=15, regularization=0.05, alpha=10.0, num_threads=0
    )

    def _validate(self) -> None:
        self._positive("factors", "iterations", "alpha")
        self._check("regularization", self.regularization >= 0, ">= 0")

    def _fit(self, snap: Snapshot) -> None:
        follows, replies, posts = _graphs(snap)
        self.threads_ = self.num_threads or min(2, os.cpu_count() or 1)
        self.people_factors_ = self._factorize((follows + replies).tocsr())
        self.thread_factors_ = self._factorize(posts)

    def _factorize(self, counts: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """(user factors (U, f), item factors (N, f)); zeros when there is nothing to learn."""
        f = int(self.factors)
        users = np.zeros((counts.shape[0], f), np.float32)
        if counts.nnz == 0:
            return users, np.zeros((counts.shape[1], f), np.float32)
        from implicit.cpu.als import AlternatingLeastSquares

        confidence = counts.astype(np.float32, copy=True)
        confidence.data = (self.alpha * np.log1p(confidence.data)).astype(np.float32)
        # implicit parallelises itself; a BLAS thread pool on top only oversubscribes the cores.
        with threadpool_limits(1, "blas"):
            kw = dict(iterations=int(self.iterations), random_state=self.seed)
            model = AlternatingLeastSquares(
                factors=f, regularization=self.regularization, num_threads=self.threads_, **kw
            )
            model.fit(confidence, show_progress=False)
        active = np.diff(counts.indptr) > 0  # CG leaves the others near their random start
        users[active] = np.asarray(model.user_factors)[active]
        return users, np.asarray(model.item_factors, dtype=np.float32)

    def _people(self, users, k) -> np.ndarray:
        return self._top(users, k, self.people_factors_, self.people_excluded_, self.hidden_)

    def _threads(self, users, k) -> np.ndarray:
        return self._top(users, k, self.thread_factors_, self.thread_excluded_, None)

    def _top(self, users, k, factors, excluded, hidden) -> np.ndarray:
        from implicit.cpu.topk import topk

        users, k, out, batches = self._batches(users, k, 1)
        user_factors, item_factors = factors
        skip = None if hidden is None else np.flatnonzero(hidden).astype(np.int32)
        width = min(k, len(item_factors))
        # Fetched deeper, then re-scored exactly and re-sorted (ties: smaller id): a float32 GEMM
        # rounds the same dot product differently with the batch's shape, which reordered items
        # with equal factors between calls (a list must not depend on who else is asked for).
        fetch = min(2 * width + 8, len(item_factors))
        for start, batch in batches if width else ():
            with threadpool_limits(1, "blas"):
                ids, scores = topk(
                    item_factors,
                    user_factors[batch],
                    fetch,
                    num_threads=self.threads_,
                    filter_query_items=excluded[batch],
                    filter_items=skip,
                )
            out[start : start + len(batch), :width] = _exact_order(
                ids, scores, user_factors[batch], item_factors, width
            )
        return out


def _exact_order(
    ids: np.ndarray,
    scores: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    width: int,
) -> np.ndarray:
    """(B, width) the best ``ids`` (B, F) by their dot product recomputed in float64 and rounded
    to float32 — the same for a pair whatever the batch — ties to the smaller id; -1 where
    fewer than ``width`` have a positive score (implicit gives filtered items a large negative
    ``scores``)."""
    valid = (ids >= 0) & (scores > 0)
    safe = np.where(valid, ids, 0)
    exact = np.einsum(
        "bf,bkf->bk", user_factors.astype(np.float64), item_factors[safe].astype(np.float64)
    ).astype(np.float32)
    exact = np.where(valid & (exact > 0), exact, -np.inf)
    order = np.lexsort((safe, -exact), axis=1)[:, :width]
    best = np.take_along_axis(safe, order, axis=1)
    return np.where(np.isfinite(np.take_along_axis(exact, order, axis=1)), best, -1).astype(
        np.int32
    )


class PersonalizedPageRank(_Baseline):
    """Personalized PageRank by forward push (:func:`tribes.ppr.ppr_batch`) from each user on
    the follow + reply graph (weight 1 per follow plus the replies; undirected unless
    ``directed``); about ``1 / (alpha * epsilon)`` edge visits per user. Threads: the PPR
    mass of their participants, the user excluded."""

    name = "ppr"
    defaults: ClassVar[dict] = dict(alpha=0.15, epsilon=1e-4, directed=False)

    def _validate(self) -> None:
        self._check("alpha", isinstance(self.alpha, Real) and 0 < self.alpha < 1, "in (0, 1)")
        self._positive("epsilon")

    def _fit(self, snap: Snapshot) -> None:
        follows, replies, posts = _graphs(snap)
        x = (follows + replies).tocsr()
        self.graph_ = x if self.directed else (x + x.T).tocsr()
        self.participants_ = binary(posts)

    def _people_scores(self, batch):
        n, alpha, epsilon = self.snap_.n_users, self.alpha, self.epsilon
        return ppr_batch(self.graph_, batch, k=n, alpha=alpha, epsilon=epsilon)

    def _thread_scores(self, batch):
        return self._people_scores(batch) @ self.participants_


class Random(_Baseline):
    """Uniform among allowed items, in random order: row ``u`` draws items with replacement
    from a hash of (seed, u, draw number) and keeps the first ``k`` distinct allowed ones,
    i.e. samples without replacement among the allowed. A list depends only on the seed and
    the user. O(k + excluded) per user when most items are allowed."""

    name = "random"

    def _people(self, users, k) -> np.ndarray:
        return self._sample(users, k, 0, self.people_excluded_, self.hidden_)

    def _threads(self, users, k) -> np.ndarray:
        return self._sample(users, k, 1, self.thread_excluded_, None)

    def _sample(self, users, k, stream, excluded, hidden) -> np.ndarray:
        n = excluded.shape[1]
        hidden = np.zeros(n, bool) if hidden is None else hidden
        owner = np.repeat(np.arange(excluded.shape[0]), np.diff(excluded.indptr))
        overlap = np.bincount(owner[hidden[excluded.indices]], minlength=excluded.shape[0])
        blocked = np.diff(excluded.indptr) + hidden.sum() - overlap  # per user: not allowed
        users, k, out, batches = self._batches(users, k, 1)
        for start, batch in batches if n else ():
            need = np.minimum(k, n - blocked[batch])
            # Enough draws for most rows; the others draw 4x more, up to 64 n draws.
            draws = int((2 * k + 16) * n / max(n - np.median(blocked[batch]), 1.0)) + 1
            todo = np.arange(len(batch))
            while todo.size:
                done = np.zeros(todo.size, bool)
                step = max(1, _MAX_CELLS // draws)
                for s in range(0, todo.size, step):
                    part = todo[s : s + step]
                    top = self._first(batch[part], k, stream, draws, excluded, hidden)
                    ok = ((top >= 0).sum(axis=1) >= need[part]) | (draws > 64 * n)
                    out[start + part[ok]] = top[ok]
                    done[s : s + step] = ok
                todo, draws = todo[~done], draws * 4
        return out

    def _first(self, rows, k, stream, draws, excluded, hidden) -> np.ndarray:
        """The first ``k`` distinct allowed items among each row's first ``draws`` draws."""
        n = excluded.shape[1]
        picks = np.minimum(
            (_draws(int(self.seed), stream, rows, draws) * n).astype(np.int64), n - 1
        )
        keys, at = np.unique(np.arange(len(rows))[:, None] * n + picks, return_index=True)
        score = (draws - at % draws).astype(np.float64)  # the earlier drawn, the better
        block = sp.csr_matrix((score, (keys // n, keys % n)), shape=(len(rows), n))
        return _top_k_sparse(_filtered(block, excluded[rows], hidden), k)


class Tribes(_Baseline):
    """``tribes.model.TribeModel(seed=seed, **params)`` (any :class:`tribes.params.Params`)
    fitted on the snapshot: its stored ``people_items`` / ``conv_items`` rows, re-filtered with
    the shared filters (the engine applies them already, and more: live threads only)."""

    name = "tribes"
    defaults: ClassVar[dict[str, Any]] = {
        f.name: getattr(Params(), f.name) for f in fields(Params) if f.name != "seed"
    }

    def _fit(self, snap: Snapshot) -> None:
        from ..model import TribeModel

        params = {key: value for key, value in self.get_params().items() if key != "batch_size"}
        self.model_ = TribeModel(**params).fit(snap)
        arrays = self.model_.arrays_
        for what, ids in (("user", self.model_.user_ids_), ("thread", arrays["thread_ids"])):
            if not np.array_equal(np.asarray(ids, str), getattr(snap, f"{what}_ids").astype(str)):
                raise AssertionError(f"TribeModel numbers its {what}s unlike the snapshot")
        self.people_items_ = np.asarray(arrays["people_items"])
        self.conv_items_ = np.asarray(arrays["conv_items"])

    def _people(self, users, k) -> np.ndarray:
        return self._take(users, k, self.people_items_, self.people_excluded_, self.hidden_)

    def _threads(self, users, k) -> np.ndarray:
        return self._take(users, k, self.conv_items_, self.thread_excluded_, None)

    def _take(self, users, k, items, excluded, hidden) -> np.ndarray:
        users, k, out, batches = self._batches(users, k, items.shape[1])
        width = min(k, items.shape[1]) if excluded.shape[1] else 0
        for start, batch in batches if width else ():
            rows = items[batch, :width].astype(np.int32)
            safe = np.maximum(rows, 0)
            pairs = excluded[np.repeat(batch, width), safe.ravel()]
            bad = (rows < 0) | (np.asarray(pairs).reshape(rows.shape) > 0)
            if hidden is not None:
                bad |= hidden[safe]
            rows[bad] = -1
            order = np.argsort(bad, axis=1, kind="stable")  # survivors first, order kept
            out[start : start + len(batch), :width] = np.take_along_axis(rows, order, axis=1)
        return out


#: name → constructor of every evaluated model (keyword parameters and ``seed``).
BASELINES: dict[str, Callable[..., EvalModel]] = {
    cls.name: cls
    for cls in (Popularity, FriendsOfFriends, Content, ALS, PersonalizedPageRank, Random, Tribes)
}
