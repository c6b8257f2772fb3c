"""One conversation-first ranker for people suggestions.

For every candidate pair (user u, candidate c) from any source::

    score = p(u engages c) × p(c answers people like u) × activity(c) × damping(followers of c)

``p(engage)`` is ``1 - exp(-Σ w_i f_i)`` over named features (talking with the same people,
mutual contacts, shared topics, shared tribes, ALS, PPR, c already reached out to u);
``p(answer)`` is c's smoothed answer rate toward people of u's tribe (see ``behaviour``);
the damping ``1 - (1 - floor) · f / (f + pivot)`` of c's follower count f saturates at
``floor``, so popularity neither wins nor is punished without limit. Then a per-person **exposure budget** (nobody appears in more
than a share of all lists) and **tribe diversity** (each further item from the same tribe is
multiplied by ``tribe_diversity``) shape the final lists. Last, the **top-exposure cap**: the
top 1% of accounts by followers and by replies received (:func:`top_accounts`, the evaluation's
definitions) together fill at most ``top_exposure_cap`` of the list slots of every list prefix
(:func:`cap_top_exposure`); their weakest appearances move down and the next candidates move
up. All steps are vectorised over pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp

from .candidates import CandidateContext
from .evaluation.metrics import top_percent
from .flags import REASON_FLAGS
from .kernels import pair_dots, pair_hashes, within_column_budget, within_group_budget
from .kernels_rank import new_queues, split_diversified_lists
from .parallel import map_blocks, ranges_by_work
from .sparse import aligned_values, binary, entry_rows, rank_within, row_normalize

__all__ = [
    "REASON_FLAGS",
    "PairInputs",
    "RankedPeople",
    "cap_top_exposure",
    "pair_features",
    "rank_people",
    "top_accounts",
]

_SCORE_CHUNK = 4_000_000  # candidate entries scored per block of users (~0.5 GB of features)
_GATHER_ROWS = 65_536  # users per block when the capped lists are turned into candidates


@dataclass(frozen=True, eq=False)
class RankedPeople:
    """Final lists. Shapes ``(U, L)`` with ``L = params.max_people``; ``-1`` pads ``items``."""

    items: np.ndarray  # int32 candidate user index
    scores: np.ndarray  # float32
    flags: np.ndarray  # uint8 REASON_FLAGS bits per item
    sources: dict[str, int]  # candidate pairs contributed per source (before ranking)
    top: np.ndarray  # (U,) bool: the accounts the top-exposure cap limits (:func:`top_accounts`)
    newcomers: np.ndarray | None = (
        None  # (U,) bool: the list is a newcomer's (tribes.newcomers), None: no such lists
    )
    newcomer_slot_weight: float | None = (
        None  # what a newcomer-list slot counted against the budget (tribes.newcomers)
    )


def _row_dot(x: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``x[rows[i]] · x[cols[i]]`` for every i (:func:`tribes.kernels.pair_dots`). O(pairs × row nnz)."""
    return pair_dots(x, rows, cols)


def _row_max_normalize(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    peak = np.zeros(n, dtype=np.float32)
    np.maximum.at(peak, rows, values)
    return np.divide(values, peak[rows], out=np.zeros_like(values), where=peak[rows] > 0)


#: Engagement features and the parameter weighting each one (``p(engage) = 1 - exp(-Σ w f)``).
ENGAGE_WEIGHTS = {
    "conversation_2hop": "w_conversation_2hop",
    "mutual_contacts": "w_follow_2hop",
    "topic": "w_topic",
    "tribe": "w_tribe",
    "als": "w_als",
    "ppr": "w_ppr",
    "inbound": "w_inbound",
    "mutual_share": "w_mutual_share",
}


def candidate_pairs(n: int, candidates: dict[str, sp.csr_matrix]) -> sp.csr_matrix:
    """The union of every source's candidates, binary with sorted indices. Shape: the sources'
    own ((rows, U); ``(n, n)`` when there are none)."""
    shape = next(iter(candidates.values())).shape if candidates else (n, n)
    union = sp.csr_matrix(shape, dtype=np.float32)
    for m in candidates.values():
        union = union + binary(m)
    union = binary(union.tocsr())
    union.sort_indices()
    return union


@dataclass(frozen=True, eq=False)
class PairInputs:
    """The user-level matrices every chunk of pair features reads, computed once per ranking."""

    topic: sp.csr_matrix  # (U, V) user topics, rows l2-normalised
    memberships: sp.csr_matrix  # (U, K) tribe shares
    inbound: sp.csr_matrix  # (U, U) interaction transposed: [u, c] = how much c reached out to u

    @classmethod
    def of(cls, ctx: CandidateContext) -> PairInputs:
        g = ctx.graph
        return cls(
            row_normalize(g.user_topic, "l2").tocsr(),
            ctx.memberships.tocsr(),
            g.interaction.T.tocsr(),
        )


def pair_features(
    ctx: CandidateContext,
    candidates: dict[str, sp.csr_matrix],
    union: sp.csr_matrix,
    *,
    start: int = 0,
    inputs: PairInputs | None = None,
) -> dict[str, np.ndarray]:
    """The engagement features of every pair of ``union`` (in its order), each in [0, ~1],
    plus ``mutual_count`` (the Adamic-Adar sum of mutual contacts) and ``inbound_raw``
    (unscaled, for reasons).

    ``candidates`` and ``union`` may be the row block ``start : start + union.shape[0]`` of the
    whole matrices (:func:`rank_people` scores in such blocks); ``inputs`` as from
    :meth:`PairInputs.of`, computed here when None.
    """
    inputs = inputs if inputs is not None else PairInputs.of(ctx)
    n = union.shape[0]
    local = entry_rows(union)
    rows = local + start
    cols = union.indices.astype(np.int64)

    def scaled(name: str) -> np.ndarray:
        m = candidates.get(name)
        if m is None:
            return np.zeros(len(rows), dtype=np.float32)
        return _row_max_normalize(aligned_values(union, m), local, n)

    mutual = (
        aligned_values(union, candidates["follow_2hop"])
        if "follow_2hop" in candidates
        else np.zeros(len(rows), np.float32)
    )
    inbound = aligned_values(union, inputs.inbound[start : start + n])
    return {
        "conversation_2hop": scaled("conversation_2hop"),
        "mutual_contacts": np.log1p(mutual).astype(np.float32),  # mutual: the Adamic-Adar sum
        "topic": _row_dot(inputs.topic, rows, cols),
        "tribe": _row_dot(inputs.memberships, rows, cols),
        "als": scaled("als"),
        "ppr": scaled("ppr"),
        "inbound": (1 - np.exp(-inbound)).astype(np.float32),
        "mutual_share": _row_max_normalize(
            mutual, local, n
        ),  # the user's best mutual-contact candidate: 1
        "mutual_count": mutual,
        "inbound_raw": inbound,
    }


def rank_people(
    ctx: CandidateContext,
    candidates: dict[str, sp.csr_matrix],
    features: dict[str, np.ndarray] | None = None,
) -> RankedPeople:
    """Score every candidate pair, apply the exposure budget and diversity, cut to lists, cap
    the top accounts' share of the lists (:func:`cap_top_exposure`).

    Pairs are scored in blocks of users (about ``_SCORE_CHUNK`` pairs each); only three compact
    arrays per pair (candidate, score, flags: 9 bytes) and a count per user are kept across blocks for the exposure budget, which needs
    every pair of a candidate at once. The cap needs every list at once: each block keeps two
    queues per user (its ``max_people`` best top-account and other pairs, O(U · max_people)),
    merged over all users at the end. ``features``: :func:`pair_features` of these candidates
    over the whole union, when already computed (learning reuses them; one block).
    """
    p = ctx.params
    n = ctx.snap.n_users
    width = p.max_people
    sources = {name: int(m.nnz) for name, m in candidates.items()}
    top = top_accounts(ctx.snap, ctx.behaviour.followers)
    blocks = [(0, n)] if features is not None else _row_blocks(candidates, n, _SCORE_CHUNK)
    inputs = PairInputs.of(ctx) if features is None else None
    pivot = popularity_pivot(p, ctx.behaviour.followers)
    scored = map_blocks(
        lambda ab: _score_block(ctx, candidates, *ab, inputs, pivot, features), blocks
    )
    # Pairs in (user, candidate) order; a user's pairs are starts[u]:starts[u + 1] (no per-pair row).
    per_user, cols, score, flags = _concatenate_fields(scored)
    starts = np.r_[0, np.cumsum(per_user)]
    if len(cols) == 0:
        return RankedPeople(
            np.full((n, width), -1, dtype=np.int32),
            np.zeros((n, width), dtype=np.float32),
            np.zeros((n, width), dtype=np.uint8),
            sources,
            top,
        )

    # Exposure budget: each candidate keeps only the `budget` users it scores best with. Only
    # candidates in more lists than that need sorting. Ties: a seeded hash of the pair.
    # (A compiled pass: 8 bytes per pair of a crowded candidate, hashes only for ties.)
    budget = exposure_budget(p, lists_made(p, n, int(np.count_nonzero(per_user))))
    keep, per_user = within_column_budget(starts, cols, score, budget, p.seed)
    starts = np.r_[0, np.cumsum(per_user)]
    # One field at a time, so that only one old and one new field are held at once.
    cols = cols[keep]
    score = score[keep]
    flags = flags[keep]
    del keep

    # Diversity per user (pairs are grouped by user, in column order), each list split into
    # two queues: the best `width` pairs of top accounts and of the others.
    queues = new_queues(n, width, len(cols))
    map_blocks(
        partial(
            _split_block,
            starts,
            score,
            cols,
            ctx.labels.astype(np.int64),
            top,
            p.tribe_diversity,
            queues,
        ),
        blocks,
    )
    top_pair, top_score, other_pair, other_score = queues
    del queues
    # The cap over all lists at once; `take` indexes [other queue | top queue] per user.
    # The scores of empty slots are 0 (lists fill from the front), so they are the result as is.
    take, scores = cap_top_exposure(
        top_pair,
        top_score,
        other_pair,
        other_score,
        p.top_exposure_cap,
        p.seed,
        rows=np.arange(n),
        candidate=cols,
    )
    del top_score, other_score
    items = np.full((n, width), -1, dtype=np.int32)
    flag_out = np.zeros((n, width), dtype=np.uint8)
    for lo in range(0, n, _GATHER_ROWS):  # in row blocks: no (users, 2W) temporaries
        hi = min(n, lo + _GATHER_ROWS)
        filled = take[lo:hi] >= 0
        queue_pairs = np.concatenate([other_pair[lo:hi], top_pair[lo:hi]], axis=1)
        pair = np.take_along_axis(queue_pairs, np.maximum(take[lo:hi], 0), axis=1)[filled]
        items[lo:hi][filled] = cols[pair]
        flag_out[lo:hi][filled] = flags[pair]
    return RankedPeople(items=items, scores=scores, flags=flag_out, sources=sources, top=top)


def _split_block(
    starts, score, cols, tribe_of, top, diversity, queues, bound: tuple[int, int]
) -> None:
    """Fill rows ``bound`` of the ``queues`` (blocks hold disjoint users: disjoint output rows)."""
    first, last = bound
    split_diversified_lists(
        starts[first : last + 1],
        score,
        cols,
        tribe_of,
        top,
        diversity,
        queues[0].shape[1],
        out=tuple(q[first:last] for q in queues),
    )


def _concatenate_fields(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Each field of the blocks' result tuples, concatenated. Empties ``parts`` and frees every
    block's arrays of a field once it is copied: the peak is all blocks plus the largest field,
    not twice all blocks."""
    fields = [list(field) for field in zip(*parts, strict=True)]
    parts.clear()
    out = []
    for field in fields:
        out.append(np.concatenate(field))
        field.clear()
    return tuple(out)


def top_accounts(snap, followers: np.ndarray) -> np.ndarray:
    """(U,) bool: the accounts :func:`cap_top_exposure` limits — the top 1% by ``followers``
    (active followers per user, ``Behaviour.followers``) and the top 1% by replies received (every
    reply to one of their posts), each by the evaluation's ``top_percent`` (ties to the smaller
    index), among accounts with any. O(U log U + P)."""
    n = snap.n_users
    mask = np.zeros(n, dtype=bool)
    for counts in (np.asarray(followers), snap.replies_received()):
        best = top_percent(counts, 1.0) if n else np.zeros(0, dtype=np.int64)
        mask[best[counts[best] > 0]] = True
    return mask


def cap_top_exposure(
    top: np.ndarray,
    top_score: np.ndarray,
    other: np.ndarray,
    other_score: np.ndarray,
    cap: float,
    seed: int,
    *,
    rows: np.ndarray,
    candidate: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge each user's two queues into one list in which the top accounts fill at most
    ``cap`` of the filled slots of the first k positions of all lists, for every k.

    ``top`` / ``other`` (users, W): each user's best top-account entries and other entries,
    best first, ``-1`` padded, with their scores; ``rows`` (users,) the user of each row and
    ``candidate`` maps an entry to its candidate (identity when None); within a user, entries
    must order like their candidates. Without the cap a list is the two queues merged by score
    (ties: smaller candidate) — the uncapped list. Position by position, over all users: a
    user's next item is the better head; when more users' next item is a top account than
    ``floor(cap · slots filled so far) - top slots so far`` allows, the weakest of them (lowest
    score, ties by :func:`pair_hash`) take their next other item instead and the top account
    waits for a later position. A user with only top accounts left takes one regardless (lists
    stay full: the cap then holds as far as the candidates allow). Lists keep their length
    ``min(W, entries)``.

    Returns ``(take, score)``: (users, W) int32 index into ``[other | top]`` (``j`` or ``W + j``;
    -1 empty) and float32 scores made non-increasing along each list (a moved-down item shows
    at most the score of the item above it). O(W · users) time and memory.
    """
    users, width = top.shape
    take = np.full((users, width), -1, dtype=np.int32)
    out = np.zeros((users, width), dtype=np.float32)
    if users == 0 or width == 0:
        return take, out
    ident = candidate is None
    n_top = np.count_nonzero(top >= 0, axis=1)
    n_other = np.count_nonzero(other >= 0, axis=1)
    length = np.minimum(width, n_top + n_other)
    # Users without a top account keep their other queue as it is; the loop visits the rest.
    plain = np.flatnonzero(n_top == 0)
    slot = np.arange(width)
    take[plain] = np.where(slot < length[plain, None], slot, -1)
    out[plain] = other_score[plain]
    # [j]: lists longer than j
    slots_filled = np.cumsum(np.bincount(length, minlength=width + 1)[::-1])[::-1][1:]
    mixed = np.flatnonzero(n_top > 0)
    at_top = np.zeros(users, dtype=np.int64)
    at_other = np.zeros(users, dtype=np.int64)
    filled = placed = 0
    for j in range(width):
        filled += int(slots_filled[j])
        act = mixed[length[mixed] > j]
        if act.size == 0:
            break
        t, o = at_top[act], at_other[act]
        has_t, has_o = t < n_top[act], o < n_other[act]
        t_safe, o_safe = np.minimum(t, width - 1), np.minimum(o, width - 1)
        st, so = top_score[act, t_safe], other_score[act, o_safe]
        et, eo = top[act, t_safe], other[act, o_safe]
        wants = has_t & (~has_o | (st > so) | ((st == so) & (et < eo)))
        chosen = wants & ~has_o  # nothing else left: the top account takes the slot anyway
        optional = np.flatnonzero(wants & has_o)
        room = max(int(np.floor(cap * filled + 1e-9)) - placed - int(chosen.sum()), 0)
        if optional.size <= room:
            chosen[optional] = True
        elif room > 0:
            who = et[optional] if ident else candidate[et[optional]]
            order = np.lexsort((pair_hash(rows[act[optional]], who, seed), -st[optional]))
            chosen[optional[order[:room]]] = True
        placed += int(chosen.sum())
        take[act, j] = np.where(chosen, width + t, o)
        out[act, j] = np.where(chosen, st, so)
        at_top[act] += chosen
        at_other[act] += ~chosen
    return take, np.minimum.accumulate(out, axis=1, out=out)


def split_lists(
    rows: np.ndarray,
    cols: np.ndarray,
    score: np.ndarray,
    tribe_of: np.ndarray,
    is_top: np.ndarray,
    diversity: float,
    width: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The queues :func:`cap_top_exposure` merges, pair by pair (any order; every pair of a user
    at once): :func:`diversify`, then each pair's position among its user's top-account pairs
    (``is_top``) or other pairs, best first (ties: smaller candidate). Returns ``(keep, position,
    damped)``: pairs within the ``width`` best of their queue, their 0-based position and
    diversified score. The Spark engine's form of :func:`tribes.kernels_rank.split_diversified_lists`."""
    damped = diversify(rows, cols, score, tribe_of, diversity)
    position = list_positions(rows * 2 + is_top.astype(np.int64), cols, damped)
    return position < width, position, damped


def _row_blocks(
    candidates: dict[str, sp.csr_matrix], n: int, max_pairs: int
) -> list[tuple[int, int]]:
    """Consecutive user ranges whose candidate entries (summed over sources) stay near
    ``max_pairs`` each (a user's own entries are never split)."""
    per_user = sum(
        (np.diff(m.tocsr().indptr) for m in candidates.values()), np.zeros(n, dtype=np.int64)
    )
    return ranges_by_work(per_user, max_pairs) or [(0, n)]


def _score_block(
    ctx: CandidateContext,
    candidates: dict[str, sp.csr_matrix],
    start: int,
    stop: int,
    inputs: PairInputs | None,
    pivot: float,
    features: dict[str, np.ndarray] | None,
):
    """(pairs per user int64 (stop - start,), cols int32, score float32, flags uint8) of the
    candidate pairs of users ``start:stop``, in (row, col) order."""
    p, b = ctx.params, ctx.behaviour
    block = {name: m.tocsr()[start:stop] for name, m in candidates.items()}
    union = candidate_pairs(stop - start, block)
    rows = entry_rows(union) + start
    cols = union.indices.astype(np.int64)
    feats = (
        features
        if features is not None
        else pair_features(ctx, block, union, start=start, inputs=inputs)
    )
    score = pair_scores(
        p,
        feats,
        b.answer_rate_for(cols, ctx.labels[rows]),
        b.activity[cols],
        b.followers[cols],
        pivot,
    )
    same = (ctx.labels[rows] >= 0) & (ctx.labels[rows] == ctx.labels[cols])
    flags = reason_flags(feats, same, b.answer_rate[cols], b.reached_by[cols])
    return np.diff(union.indptr).astype(np.int64), cols.astype(np.int32), score, flags


def pair_hash(rows: np.ndarray, cols: np.ndarray, seed: int) -> np.ndarray:
    """(pairs,) uint64: a seeded hash of each (row, col) pair (splitmix64's finaliser), so ties
    break the same way however the pairs are split into blocks (:func:`tribes.kernels.pair_hashes`)."""
    return pair_hashes(rows, cols, seed)


# --- the per-pair steps of rank_people, shared with the Spark engine (tribes.spark.rank) ---
def popularity_pivot(p, followers: np.ndarray) -> float:
    """Followers at which the popularity damping is halfway: ``p.popularity_pivot`` itself, or
    below 1 that quantile of ``followers`` (all users' counts), at least 5."""
    pivot = p.popularity_pivot
    if pivot < 1:  # relative to this network: only its most followed are damped much
        pivot = max(float(np.quantile(followers, pivot)) if len(followers) else 1.0, 5.0)
    return float(pivot)


def pair_scores(
    p,
    feats: dict[str, np.ndarray],
    answer_rate: np.ndarray,
    activity: np.ndarray,
    followers: np.ndarray,
    pivot: float,
) -> np.ndarray:
    """``p(engage) × p(answer)^answer_exponent × activity × damping`` per pair (float32).

    ``feats`` as from :func:`pair_features`; the other arrays are the candidate's values per pair
    (``answer_rate`` toward the user's tribe, see ``Behaviour.answer_rate_for``).
    """
    z = sum(getattr(p, weight) * feats[name] for name, weight in ENGAGE_WEIGHTS.items())
    engage = 1.0 - np.exp(-z)
    answer = answer_rate**p.answer_exponent
    f = followers.astype(np.float32)
    damping = 1.0 - (1.0 - p.popularity_floor) * f / (f + pivot)
    return (engage * answer * activity * damping).astype(np.float32)


def reason_flags(
    feats: dict[str, np.ndarray],
    same_tribe: np.ndarray,
    answer_rate: np.ndarray,
    reached_by: np.ndarray,
) -> np.ndarray:
    """uint8 :data:`REASON_FLAGS` bits per pair; ``answer_rate``/``reached_by`` of the candidate."""
    flags = np.zeros(len(same_tribe), dtype=np.uint8)
    flags |= np.where(
        feats["conversation_2hop"] > 0, REASON_FLAGS["talks_with_your_contacts"], 0
    ).astype(np.uint8)
    flags |= np.where(feats["mutual_count"] > 0, REASON_FLAGS["mutual_contacts"], 0).astype(
        np.uint8
    )
    flags |= np.where(feats["topic"] >= 0.05, REASON_FLAGS["shared_topics"], 0).astype(np.uint8)
    flags |= np.where(same_tribe, REASON_FLAGS["same_tribe"], 0).astype(np.uint8)
    flags |= np.where(
        (answer_rate >= 0.5) & (reached_by >= 2), REASON_FLAGS["answers_newcomers"], 0
    ).astype(np.uint8)
    flags |= np.where(feats["inbound_raw"] > 0, REASON_FLAGS["reached_out"], 0).astype(np.uint8)
    flags |= np.where(
        (feats["als"] > 0.5) | (feats["ppr"] > 0.5), REASON_FLAGS["similar_people"], 0
    ).astype(np.uint8)
    return flags


def exposure_budget(p, listed: int) -> int:
    """Lists one person may appear in, given ``listed`` users who get a list (:func:`lists_made`)."""
    return max(
        p.exposure_budget_min,
        min(p.exposure_budget_max, int(np.ceil(p.exposure_budget_share * listed))),
    )


def lists_made(p, n_users: int, with_candidates: int) -> int:
    """Users who get a people list from this recompute, the base of the budget's share: every
    user when newcomers are welcomed (``welcome_newcomers``: the lists ranking leaves empty are
    filled from the same per-person budgets, :mod:`tribes.newcomers`), else the
    ``with_candidates`` users ranking has anything for. One base for both, so a person's budget
    is one share of all the lists, spent where they score best first."""
    return n_users if p.welcome_newcomers else with_candidates


def within_exposure_budget(
    cols: np.ndarray, score: np.ndarray, tiebreak: np.ndarray, budget: int
) -> np.ndarray:
    """(pairs,) bool: the pair is among the ``budget`` best-scored of its candidate ``cols``
    (ties by ``tiebreak``). Needs every pair of a candidate at once. O(pairs) plus a selection
    per crowded candidate (:func:`tribes.kernels.within_group_budget`)."""
    return within_group_budget(cols, score, tiebreak, budget)


def diversify(
    rows: np.ndarray, cols: np.ndarray, score: np.ndarray, tribe_of: np.ndarray, diversity: float
) -> np.ndarray:
    """Tribe diversity: the j-th item of a list from one tribe (``tribe_of`` the candidate's
    tribe, -1 none) is multiplied by ``diversity ** j``. Needs every pair of a user at once."""
    if len(rows) == 0:
        return score
    group = rows * (int(tribe_of.max()) + 2) + (tribe_of + 1)
    by_group = _order_within(group, score, rows, cols)
    return score * (diversity ** rank_within(group, by_group)).astype(np.float32)


def list_positions(rows: np.ndarray, cols: np.ndarray, score: np.ndarray) -> np.ndarray:
    """0-based position of each pair in its user's list, best first (ties: smaller candidate)."""
    return rank_within(rows, _order_within(rows, score, rows, cols))


def _order_within(
    group: np.ndarray, score: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Indices sorted by ``group``, then best ``score``, then smaller ``cols``. When the pairs come
    in (row, col) order — as :func:`rank_people` passes them — a stable two-key sort already
    breaks ties by column (about 3× faster than the three-key one)."""
    if len(rows) < 2 or bool(
        np.all((rows[1:] > rows[:-1]) | ((rows[1:] == rows[:-1]) & (cols[1:] > cols[:-1])))
    ):
        return np.lexsort((-score, group))
    return np.lexsort((cols, -score, group))
