"""People lists for users the ranking has nothing for: the most welcoming people, shared fairly.

A user who has registered but not yet posted, replied or followed anyone has no candidate
from any source, so ranking leaves their list empty. Every platform has many of them (on the
quantum-computing Stack Exchange about 2,400 of 2,700 users before a cut), and they are
exactly the people a newcomer's first conversation depends on. :func:`welcome_newcomers` gives
each of them the people most likely to answer someone new — recently active, and answering
many of those who reach out (``answered × activity``, with at least ``min_reached`` people
having reached out and one answered: a welcome is evidence, not a prior) — under the same
limits as every other list. A newcomer has reached out to nobody yet: their first
conversation starts when they post and someone answers, so what counts is how many people a
person answers (and that they still do), not the share of those who reach out to them that
they answer, which ranks the people one would reach out to (``tribes.candidates.starter_packs``;
ordering the starter packs by ``answered`` instead cost CollegeMsg 0.110 → 0.096):

- **The per-person exposure budget**: nobody ends up in more lists than
  :func:`tribes.ranking.exposure_budget` allows over all lists, counting the lists they are
  already in; the most welcoming are used up to it, then the next ones. The budget protects
  people's time, and a list slot asks something of them only when its owner reaches out, which
  newcomers do far less often than active users: a newcomer's slot counts
  :func:`newcomer_slot_weight` of an active user's, measured on the platform's own history
  (quantum-computing Stack Exchange: 0.02–0.03, about 4 in 1,000 users who had done nothing
  acted in the next period against 15–17% of active ones; 1 where there is too little to tell).
- **The top-1% cap**: in every newcomer list the top accounts (:func:`tribes.ranking.top_accounts`)
  fill at most ``top_exposure_cap`` of every prefix (with 0.2, positions 5, 10, 15 and 20), so
  the cap that holds over the other lists still holds over all of them.
- **Filters**: nobody the user must not see (``exclusion``: self, blocks and mutes either way,
  dismissals) and nobody non-discoverable.

Slots are dealt position by position across the newcomers (everyone's first slot, then
everyone's second, …) from the welcoming people in order, each repeated as often as their
budget allows, so the first positions go to the most welcoming and nobody appears twice in one
list. O(newcomers × width + U). Both engines call it after ranking; learning does not (its
held-out users have histories).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .flags import REASON_FLAGS

if TYPE_CHECKING:
    from .ranking import RankedPeople

_BLOCK = 65_536  # newcomers filled at a time

__all__ = [
    "newcomer_slot_weight",
    "welcome_list",
    "welcome_newcomers",
    "welcoming_people",
    "with_newcomers",
]

#: Fewer users than this on either side (had done nothing / had acted by the cut): a newcomer's
#: slot counts in full.
MIN_USERS_TO_MEASURE = 30


def welcoming_people(
    activity: np.ndarray,
    reached_by: np.ndarray,
    answered: np.ndarray,
    discoverable: np.ndarray,
    activity_floor: float,
    min_reached: int = 2,
) -> np.ndarray:
    """(U,) float32 welcome in [0, 1], ``answered × activity`` (people answered, discounted by how
    recently active) scaled so that the most welcoming is 1, for discoverable people active since
    their activity floor who were reached by at least ``min_reached`` people and answered one; 0
    for everyone else. (It is the score newcomers' lists carry.) Where nobody is above the floor
    (activity is measured in posts: a network of follows alone has none, and a quiet one none
    lately), activity cannot tell anyone apart and the people answered decide alone; else every
    newcomer of a friendship graph would be left with an empty list."""
    active = activity > activity_floor + 1e-6
    if not active.any():
        active, activity = np.ones_like(active), np.ones_like(activity)
    ok = discoverable & active & (reached_by >= min_reached) & (answered >= 1)
    welcome = np.where(ok, answered * activity, 0.0)
    return (welcome / welcome.max() if welcome.size and welcome.max() > 0 else welcome).astype(
        np.float32
    )


def newcomer_slot_weight(snap, holdout: float) -> float:
    """What a slot in a newcomer's list asks of the person in it, against a slot in an active
    user's list, in (0, 1]: of the users known by the cut (the ``1 - holdout`` quantile of post
    and follow times, learning's cut), the share of those who had neither posted nor followed by
    then who did after it, over the share of those who had who did again (each add-one
    smoothed). 1 without timestamps or with fewer than ``MIN_USERS_TO_MEASURE`` users on either
    side. Only the snapshot's past is used. O(P + F + U)."""
    times = np.concatenate([snap.post_ts, snap.follow_ts])
    if len(times) == 0 or np.ptp(times) <= 0 or not 0 < holdout < 1:
        return 1.0
    cut = float(np.quantile(times, 1.0 - holdout))
    before = _acted(snap, snap.post_ts <= cut, snap.follow_ts <= cut)
    after = _acted(snap, snap.post_ts > cut, snap.follow_ts > cut)
    known = snap.first_seen <= cut
    dormant, active = known & ~before, known & before
    if min(dormant.sum(), active.sum()) < MIN_USERS_TO_MEASURE:
        return 1.0
    woke = (after[dormant].sum() + 1) / (dormant.sum() + 2)
    again = (after[active].sum() + 1) / (active.sum() + 2)
    return float(min(1.0, woke / again))


def _acted(snap, posts: np.ndarray, follows: np.ndarray) -> np.ndarray:
    """(U,) bool: the user wrote one of the ``posts`` or made one of the ``follows`` (masks)."""
    acted = np.zeros(snap.n_users, dtype=bool)
    acted[snap.post_author[posts]] = True
    acted[snap.follow_src[follows]] = True
    return acted


def _top_positions(width: int, cap: float) -> np.ndarray:
    """(width,) bool: the 0-based positions a top account may take so that every prefix holds
    at most ``floor(cap × length)`` of them — the t-th at position ``ceil(t / cap)``."""
    allowed = np.zeros(width, dtype=bool)
    if cap <= 0:
        return allowed
    t = np.arange(1, width + 1)
    spots = np.ceil(t / cap - 1e-9).astype(np.int64) - 1
    allowed[spots[spots < width]] = True
    return allowed


def _copies(people: np.ndarray, copies: np.ndarray, limit: int) -> np.ndarray:
    """(<= limit,) int64: each of ``people`` repeated ``copies`` times, in order, cut after
    ``limit`` entries — memory O(limit), however large the copies (a light newcomer slot lets
    one person into up to every newcomer's list)."""
    ends = np.cumsum(copies)
    needed = int(np.searchsorted(ends, limit)) + 1  # people whose copies reach the limit
    people, copies = people[:needed], copies[:needed].copy()
    if len(copies) and ends[len(copies) - 1] > limit:
        copies[-1] -= ends[len(copies) - 1] - limit
    return np.repeat(people, copies).astype(np.int64)


def welcome_list(tops: np.ndarray, others: np.ndarray, cap: float, size: int) -> np.ndarray:
    """One newcomer list of up to ``size`` (int64): the ``others`` in order, with the ``tops``
    (top accounts, in order) at the positions where every prefix keeps them within ``cap``
    (:func:`_top_positions`, as :func:`welcome_newcomers` deals them); a top position with no
    top account left takes the next other person, and the list ends where the others run out.
    For a single user the recompute did not list (the service's cold start). O(size)."""
    top_slot = _top_positions(size, cap)
    out, t, o = [], 0, 0
    for slot in top_slot:
        if slot and t < len(tops):
            out.append(tops[t])
            t += 1
        elif o < len(others):
            out.append(others[o])
            o += 1
        else:
            break
    return np.asarray(out, dtype=np.int64)


def _deal(stream: np.ndarray, slots: int, newcomers: int, block: slice) -> np.ndarray:
    """``(block rows, slots)`` int64: the ``block`` of newcomers' share of ``stream`` (each
    person repeated once per list they may join, at most once per newcomer) laid out
    position-major — everyone's first slot, then everyone's second — so a person's copies go
    to different lists; -1 where it runs out."""
    at = np.arange(slots)[None, :] * newcomers + np.arange(block.start, block.stop)[:, None]
    if len(stream) == 0:
        return np.full(at.shape, -1, dtype=np.int64)
    return np.where(at < len(stream), stream[np.minimum(at, len(stream) - 1)], -1)


def _compact(lists: np.ndarray) -> np.ndarray:
    """Each row's items (>= 0) moved to its front, in order; -1 after them."""
    front = np.argsort(lists < 0, axis=1, kind="stable")
    return np.take_along_axis(lists, front, axis=1)


def _within_cap(lists: np.ndarray, is_top: np.ndarray, cap: float) -> np.ndarray:
    """Compacted ``lists`` without the top accounts that would make a prefix hold more than
    ``floor(cap × length)`` of them (short lists: where the others ran out, the tops dealt to
    later positions would otherwise move up). Repeated until nothing moves; each round only
    removes items. O(rounds × lists)."""
    while True:
        top = (lists >= 0) & is_top[np.maximum(lists, 0)]
        allowed = np.floor(cap * np.arange(1, lists.shape[1] + 1) + 1e-9)
        over = top & (np.cumsum(top, axis=1) > allowed)
        if not over.any():
            return lists
        lists = _compact(np.where(over, -1, lists))


def welcome_newcomers(
    people: RankedPeople,
    welcome: np.ndarray,
    is_top: np.ndarray,
    exclusion: sp.csr_matrix,
    budget: int,
    cap: float,
    slot_weight: float = 1.0,
) -> RankedPeople:
    """``people`` with every empty list filled, in place, from the ``welcome``-ordered people
    (see the module docstring). ``budget``: lists one person may be in, over all lists, where
    a newcomer's list counts ``slot_weight`` (0 < w <= 1) of one already filled;
    ``cap``: the top accounts' share of every list prefix. Scores are the welcome
    (non-increasing along each list); the reason is ``answers_newcomers``. Lists with any item
    are left as they are. Newcomers are filled ``_BLOCK`` at a time: memory O(block × width)."""
    # numba and the ranking pipeline are the recompute's: the API imports this module without them
    from .kernels import csr_values
    from .ranking import RankedPeople

    items = people.items
    n, width = items.shape
    newcomers = np.flatnonzero(items[:, 0] < 0)
    candidates = np.flatnonzero(welcome > 0)
    if len(newcomers) == 0 or len(candidates) == 0 or width == 0:
        return people
    count = len(newcomers)
    if not 0 < slot_weight <= 1:
        raise ValueError(f"slot_weight must be in (0, 1], got {slot_weight!r}")
    left = np.maximum(budget - np.bincount(items[items >= 0], minlength=n), 0)
    room = np.minimum(np.floor(left / slot_weight + 1e-9), count).astype(np.int64)
    order = candidates[np.lexsort((candidates, -welcome[candidates]))]
    order = order[room[order] > 0]
    top_slot = _top_positions(width, cap)
    tops, others = order[is_top[order]], order[~is_top[order]]
    # Only the first width × count copies can be dealt (the tops': top slots × count).
    other_stream = _copies(others, room[others], width * count)
    # Top slots no top account can take go to the other people the other slots left.
    used = min(len(other_stream), int((~top_slot).sum()) * count)
    top_stream = np.r_[_copies(tops, room[tops], int(top_slot.sum()) * count), other_stream[used:]]
    excl = exclusion.tocsr()
    filled_total, marked = 0, np.zeros(n, dtype=bool)
    for start in range(0, count, _BLOCK):
        block = slice(start, min(start + _BLOCK, count))
        rows = newcomers[block]
        chosen = np.full((len(rows), width), -1, dtype=np.int64)
        chosen[:, ~top_slot] = _deal(other_stream, int((~top_slot).sum()), count, block)
        chosen[:, top_slot] = _deal(top_stream, int(top_slot.sum()), count, block)
        owner = np.repeat(rows, width)
        flat = chosen.ravel()
        ok = (flat >= 0) & (flat != owner)
        if excl.nnz and ok.any():  # self, blocks and mutes either way, dismissals
            ok[ok] = csr_values(excl, owner[ok], flat[ok]) == 0
        # Someone dealt twice to one list (the top slots' share of the others' rest): the first stays.
        key = np.repeat(np.arange(len(rows), dtype=np.int64), width)[ok] * n + flat[ok]
        first = np.zeros(int(ok.sum()), dtype=bool)
        first[np.unique(key, return_index=True)[1]] = True
        ok[ok] = first
        picked = _within_cap(_compact(np.where(ok.reshape(chosen.shape), chosen, -1)), is_top, cap)
        filled = picked >= 0
        items[rows] = np.where(filled, picked, -1).astype(items.dtype)
        people.scores[rows] = np.where(
            filled,
            np.minimum.accumulate(np.where(filled, welcome[np.maximum(picked, 0)], 0.0), axis=1),
            0.0,
        ).astype(people.scores.dtype)
        people.flags[rows] = np.where(filled, REASON_FLAGS["answers_newcomers"], 0).astype(
            people.flags.dtype
        )
        marked[rows[filled.any(axis=1)]] = True
        filled_total += int(filled.sum())
    return RankedPeople(
        items=items,
        scores=people.scores,
        flags=people.flags,
        sources={**people.sources, "welcome_newcomers": filled_total},
        top=people.top,
        newcomers=marked,
        newcomer_slot_weight=float(slot_weight),
    )


def with_newcomers(
    people: RankedPeople, snap, behaviour, params, exclusion: sp.csr_matrix
) -> RankedPeople:
    """:func:`welcome_newcomers` as both engines call it after ranking (``params.welcome_newcomers``
    1), with the budget over every user's list, a newcomer's slot weighed by
    ``params.newcomer_slot_weight`` (0: :func:`newcomer_slot_weight` of the snapshot, only when
    there are newcomers) and the top accounts the ranking capped (``people.top``)."""
    from .ranking import exposure_budget

    if not params.welcome_newcomers:
        return people
    welcome = welcoming_people(
        behaviour.activity,
        behaviour.reached_by,
        behaviour.answered,
        snap.discoverable,
        params.activity_floor,
    )
    weight = params.newcomer_slot_weight
    if weight == 0:
        weight = (
            newcomer_slot_weight(snap, params.learn_holdout)
            if (people.items[:, :1] < 0).any()
            else 1.0
        )
    return welcome_newcomers(
        people,
        welcome,
        people.top,
        exclusion,
        exposure_budget(params, snap.n_users),
        params.top_exposure_cap,
        weight,
    )
