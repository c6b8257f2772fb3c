"""A seeded, deterministic, streaming synthetic social network with planted tribes.

:func:`generate` yields JSON-ready events (valid per :func:`tribes.events.validate`) and
:func:`planted_truth` the tribes and role planted for every user; both derive from the same
seeded draws (:func:`_plan`), so they always agree. Work is vectorised with numpy per block
of users (or of tribes); memory is O(users) numpy arrays plus one block of events.

Events come in phases, each phase in file order, and every event's ``ts`` respects causality
(a follow after both users joined, a reply after its parent, an unfollow after its follow):

1. ``user`` — every user, by id (``ts`` = join time, RFC 3339).
2. in-tribe ``follow`` (often followed back) and a few later ``unfollow``, tribe by tribe.
3. cross-tribe ``follow`` to popular accounts or at random, one-way, user by user.
4. ``post`` — root posts, each followed by its replies in time order (RFC 3339 ``ts``).
5. ``block``/``unblock``, ``mute``/``unmute``.
6. ``delete_post`` (leaf posts only, after the post) and ``delete_user`` (at the end date).

Edge events carry integer Unix seconds. The same config always gives the same events.

Examples
--------
>>> from tribes.synth import SynthConfig, generate, planted_truth
>>> events = list(generate(SynthConfig(n_users=100, seed=1)))
>>> events[0]["type"], events[0]["id"]
('user', 'u000000')
>>> next(planted_truth(SynthConfig(n_users=100, seed=1)))["user_id"]
'u000000'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tribes import _synth_text as text
from tribes.errors import InputError
from tribes.events import EventError, parse_ts

__all__ = ["ROLES", "SynthConfig", "generate", "planted_truth"]

#: Role names, indexed by the role codes used internally.
ROLES = ("conversationalist", "broadcaster", "lurker", "newcomer")
_CONV, _BROAD, _LURK, _NEW = range(4)

_BLOCK = 4096  # users (or tribe memberships) per vectorised block
_DAY = 86_400
# Per role (conversationalist, broadcaster, lurker, newcomer):
_FOLLOW = np.array([1.0, 0.4, 1.2, 0.5])  # how many accounts one follows
_ATTRACT = np.array([1.0, 4.0, 0.25, 0.3])  # how often followed inside the tribe
_FAME = np.array([1.0, 150.0, 0.1, 0.05])  # how often followed from other tribes
_FOLLOW_BACK = np.array([0.65, 0.03, 0.35, 0.4])  # chance of following back a tribe-mate
_TALK = np.array([1.0, 0.03, 0.04, 0.3])  # how often one replies
_POSTS = np.array([1.0, 8.0, 0.1, 0.3])  # root posts, relative to posts_per_user
_REPLIES = np.array([1.0, 4.0, 0.5, 0.5])  # replies a root gets, relative
_OP_TURN = np.array([0.25, 0.005, 0.1, 0.2])  # chance the root's author answers in the thread
# Thread sizes: zipf(2.2) - 1, mean zeta(1.2)/zeta(2.2) - 1; most 0-5, a few hundreds.
_ZIPF_A, _ZIPF_MEAN, _MAX_THREAD = 2.2, 2.7514, 2000
_GAP = 1800.0  # mean seconds between replies of a thread
# Random streams, one per stage: _rng(seed, stage, block).
_PLAN, _VOCAB, _USERS, _TIES, _CROSS, _POSTS_S, _MISC = range(1, 8)


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the synthetic network; every share is a probability in [0, 1].

    Parameters
    ----------
    n_users : int
        Number of users (ids ``u000000`` …), default 1000; at least 1.
    seed : int
        Seed of every random draw (non-negative), default 0.
    n_tribes : int or None
        Planted tribes, 1 .. n_users; default ``max(4, round(n_users / 60))`` (at most
        ``n_users // 2`` for tiny networks).
    overlap : float
        Share of users who also belong to a second tribe, default 0.15.
    follows_per_user : float
        Mean out-degree, follow-backs included, default 10.
    in_tribe_share : float
        Share of follows initiated inside one's tribes, default 0.75.
    popular_share : float
        Share of follows to popular accounts of other tribes (preferential attachment),
        default 0.15; the rest (0.10) go to random users of other tribes.
    broadcaster_share, lurker_share, newcomer_share : float
        Shares of these roles, defaults 0.01, 0.20, 0.05; everyone else is a
        conversationalist.
    hidden_share : float
        Share of users with ``discoverable`` false, default 0.03.
    posts_per_user : float
        Mean root posts of a conversationalist over the whole span, default 3
        (broadcasters x8, lurkers x0.1, newcomers x0.3).
    replies_per_post : float
        Mean replies a conversationalist's root post gets, default 3 (heavy-tailed).
    reply_in_tribe : float
        Share of replies written by members of the thread's tribe, default 0.9.
    unfollow_share : float
        Share of follows undone later, default 0.03.
    block_share, mute_share : float
        Share of users who block (mute) someone, defaults 0.005 and 0.01; 15 % of blocks
        and 10 % of mutes are undone later.
    delete_post_share : float
        Share of leaf posts deleted later, default 0.002.
    users_per_deletion : int
        One ``delete_user`` per this many users (none below it; 0 for none), default 5000.
    days : int
        Days of activity ending at ``end``, default 56.
    newcomer_days : int
        Newcomers join during the last this many days, default 5.
    end : str
        End of the activity window (RFC 3339), default ``"2026-11-01T00:00:00Z"``.
    tribe_size_sigma : float
        Sigma of the lognormal tribe sizes, default 0.45 (sizes ~25-140 at the default
        number of tribes).
    """

    n_users: int = 1000
    seed: int = 0
    n_tribes: int | None = None
    overlap: float = 0.15
    follows_per_user: float = 10.0
    in_tribe_share: float = 0.75
    popular_share: float = 0.15
    broadcaster_share: float = 0.01
    lurker_share: float = 0.20
    newcomer_share: float = 0.05
    hidden_share: float = 0.03
    posts_per_user: float = 3.0
    replies_per_post: float = 3.0
    reply_in_tribe: float = 0.9
    unfollow_share: float = 0.03
    block_share: float = 0.005
    mute_share: float = 0.01
    delete_post_share: float = 0.002
    users_per_deletion: int = 5000
    days: int = 56
    newcomer_days: int = 5
    end: str = "2026-11-01T00:00:00Z"
    tribe_size_sigma: float = 0.45


@dataclass(frozen=True)
class _Plan:
    """Per-user draws shared by :func:`generate` and :func:`planted_truth`."""

    n: int
    n_tribes: int
    ids: np.ndarray  # (n,) str
    primary: np.ndarray  # (n,) int32
    secondary: np.ndarray  # (n,) int32, -1 = none
    role: np.ndarray  # (n,) int8
    discoverable: np.ndarray  # (n,) bool
    deleted: np.ndarray  # (n,) bool
    join: np.ndarray  # (n,) int64 Unix seconds
    active: np.ndarray  # (n,) int64, max(join, start)
    follow: np.ndarray  # (n,) mean follows initiated
    posting: np.ndarray  # (n,) mean root posts
    mem_off: np.ndarray  # (n_tribes + 1,) tribe t's memberships are mem_off[t]:mem_off[t+1]
    mem_user: np.ndarray  # (memberships,) user of each membership
    mem_tribe: np.ndarray  # (memberships,)
    mem_primary: np.ndarray  # (memberships,) bool
    attract_cum: np.ndarray  # (memberships + 1,) cumulative in-tribe attractiveness
    talk_cum: np.ndarray  # (memberships + 1,) cumulative talkativeness, per membership
    fame_cum: np.ndarray  # (n + 1,) cumulative global fame
    talk_all_cum: np.ndarray  # (n + 1,) cumulative talkativeness
    end: int


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """The one source of randomness: an independent stream per (seed, stage, block)."""
    return np.random.default_rng([seed, *stream])


_SHARES = ("overlap", "in_tribe_share", "popular_share", "broadcaster_share", "lurker_share")
_SHARES += ("newcomer_share", "hidden_share", "reply_in_tribe", "unfollow_share", "block_share")
_RANGES = {  # knob: (type, lowest, highest)
    **dict.fromkeys((*_SHARES, "mute_share", "delete_post_share"), (float, 0.0, 1.0)),
    **dict.fromkeys(("follows_per_user", "posts_per_user", "replies_per_post"), (float, 0, 1e3)),
    "tribe_size_sigma": (float, 0.0, 3.0),
    "n_users": (int, 1, 10**9),
    "seed": (int, 0, 2**63 - 1),
    "users_per_deletion": (int, 0, 10**9),
    "days": (int, 2, 36_500),
    "newcomer_days": (int, 1, 36_500),
}


def _check(c: SynthConfig) -> int:
    """Validate ``c``; return the end date in Unix seconds."""
    for name, (kind, lo, hi) in _RANGES.items():
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int if kind is int else int | float):
            raise InputError(f"expected {kind.__name__}, got {value!r}", field=name)
        if not lo <= value <= hi:
            raise InputError(f"must be in [{lo}, {hi}], got {value!r}", field=name)
    if c.n_tribes is not None and not 1 <= c.n_tribes <= c.n_users:
        raise InputError(f"must be in 1 .. n_users, got {c.n_tribes!r}", field="n_tribes")
    if c.in_tribe_share + c.popular_share > 1.0:
        raise InputError("in_tribe_share + popular_share must be <= 1", field="popular_share")
    if c.broadcaster_share + c.lurker_share + c.newcomer_share > 1.0:
        raise InputError("role shares add up to more than 1", field="newcomer_share")
    if c.newcomer_days >= c.days:
        raise InputError("must be less than days", field="newcomer_days")
    try:
        end = int(parse_ts(c.end, "end"))
    except EventError as exc:
        raise InputError(exc.problem, field="end") from None
    if end - (c.days + 730) * _DAY < 0:
        raise InputError("must leave days + two years after 1970 for join dates", field="end")
    return end


def _apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``weights`` summing to ``total`` (largest remainder)."""
    raw = weights / weights.sum() * total
    out = np.floor(raw).astype(np.int64)
    out[np.argsort(out - raw, kind="stable")[: total - out.sum()]] += 1
    return out


def _cum(weights: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(weights)])


def _plan(c: SynthConfig) -> _Plan:
    """Draw tribes, roles, join times and activity weights for every user. O(users)."""
    end = _check(c)
    rng = _rng(c.seed, _PLAN)
    n = c.n_users
    t = c.n_tribes or min(max(4, round(n / 60)), max(1, n // 2))
    s = c.tribe_size_sigma
    sizes = 1 + _apportion(np.clip(rng.lognormal(0.0, s, t), np.exp(-2 * s), np.exp(2 * s)), n - t)
    primary = np.repeat(np.arange(t, dtype=np.int32), sizes)[rng.permutation(n)]
    other = ((primary + 1 + rng.integers(0, max(t - 1, 1), n)) % t).astype(np.int32)
    secondary = np.where((rng.random(n) < c.overlap) & (t > 1), other, np.int32(-1))
    role = np.full(n, _CONV, dtype=np.int8)
    counts = [round(n * x) for x in (c.broadcaster_share, c.lurker_share, c.newcomer_share)]
    bounds = np.cumsum([0, *counts])
    order = rng.permutation(n)
    for code, lo, hi in zip((_BROAD, _LURK, _NEW), bounds[:-1], bounds[1:], strict=True):
        role[order[lo:hi]] = code
    discoverable = rng.random(n) >= c.hidden_share
    start, recent = end - c.days * _DAY, end - c.newcomer_days * _DAY
    before = start - rng.integers(0, 730 * _DAY, n)  # 85 % joined up to two years earlier
    join = np.where(rng.random(n) < 0.85, before, rng.integers(start, recent, n))
    join = np.where(role == _NEW, rng.integers(recent, end - 6 * 3600, n), join).astype(np.int64)
    attract = rng.lognormal(0.0, 0.8, n)
    attract = np.where(role == _BROAD, np.maximum(attract, 1.5), attract) * _ATTRACT[role]
    fame = attract**1.5 * _FAME[role]
    talk = rng.lognormal(0.0, 0.8, n) * _TALK[role]
    posting = c.posts_per_user * rng.lognormal(-0.245, 0.7, n) * _POSTS[role]
    back_rate = float((attract * _FOLLOW_BACK[role]).sum() / attract.sum())
    mult = _FOLLOW[role] / _FOLLOW[role].mean()
    base = c.follows_per_user / (1.0 + c.in_tribe_share * back_rate)
    follow = base * mult * rng.lognormal(-0.125, 0.5, n)
    deleted = np.zeros(n, dtype=bool)
    if c.users_per_deletion:
        candidates = np.flatnonzero((role == _CONV) | (role == _LURK))
        k = min(n // c.users_per_deletion, len(candidates))
        deleted[rng.choice(candidates, size=k, replace=False)] = True

    has2 = secondary >= 0
    users = np.concatenate([np.arange(n), np.flatnonzero(has2)])
    tribes = np.concatenate([primary, secondary[has2]])
    order = np.lexsort((users, tribes))
    mem_user, mem_tribe = users[order], tribes[order]
    mem_primary = (np.arange(len(users)) < n)[order]
    in_weight = attract[mem_user] * np.where(mem_primary, 1.0, 0.5)
    width = max(6, len(str(n - 1)))
    ids = np.char.add("u", np.char.zfill(np.arange(n).astype(str), width))
    return _Plan(
        n=n,
        n_tribes=t,
        ids=ids,
        primary=primary,
        secondary=secondary,
        role=role,
        discoverable=discoverable,
        deleted=deleted,
        join=join,
        active=np.maximum(join, start),
        follow=follow,
        posting=posting,
        mem_off=np.searchsorted(mem_tribe, np.arange(t + 1)),
        mem_user=mem_user,
        mem_tribe=mem_tribe,
        mem_primary=mem_primary,
        attract_cum=_cum(in_weight),
        talk_cum=_cum(talk[mem_user] * np.where(mem_primary, 1.0, 0.4)),
        fame_cum=_cum(fame),
        talk_all_cum=_cum(talk),
        end=end,
    )


def _pick(rng: np.random.Generator, tribe: np.ndarray, off: np.ndarray, cum: np.ndarray):
    """One membership index per entry of ``tribe``, drawn by weight within that tribe."""
    lo, hi = off[tribe], off[tribe + 1]
    r = cum[lo] + rng.random(len(tribe)) * (cum[hi] - cum[lo])
    return np.clip(np.searchsorted(cum, r, side="right") - 1, lo, hi - 1)


def _pick_global(rng: np.random.Generator, cum: np.ndarray, size: int) -> np.ndarray:
    """``size`` user indices drawn by weight."""
    idx = np.searchsorted(cum, rng.random(size) * cum[-1], side="right") - 1
    return np.clip(idx, 0, len(cum) - 2)


def _shared(p: _Plan, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether users ``a[i]`` and ``b[i]`` share a tribe."""
    pa, sa, pb, sb = p.primary[a], p.secondary[a], p.primary[b], p.secondary[b]
    return (pa == pb) | (pa == sb) | ((sa >= 0) & ((sa == pb) | (sa == sb)))


def _distinct(n, group, src, dst, valid, want) -> np.ndarray:
    """Indices of the first ``want[g]`` valid draws with distinct ``(src, dst)`` per group ``g``.

    Draws are oversampled and grouped: ``group`` is non-decreasing.
    """
    pos = np.flatnonzero(valid)
    _, first = np.unique(src[pos].astype(np.int64) * n + dst[pos], return_index=True)
    pos = np.sort(pos[first])
    rank = np.arange(len(pos)) - np.searchsorted(group[pos], group[pos])
    return pos[rank < want[group[pos]]]


def _later(rng: np.random.Generator, ts: np.ndarray, end: int) -> np.ndarray:
    """A time in ``(ts, end]`` for each ``ts < end``."""
    return ts + 1 + (rng.random(len(ts)) * (end - ts - 1)).astype(np.int64)


def _edges(p: _Plan, kind: str, src: np.ndarray, dst: np.ndarray, ts: np.ndarray):
    for s, d, t in zip(p.ids[src].tolist(), p.ids[dst].tolist(), ts.tolist(), strict=True):
        yield {"type": kind, "src": s, "dst": d, "ts": t}


def _follow_block(p, c, rng, src, dst, ts):
    """Emit follows, then unfollows of a random ``unfollow_share`` of them."""
    yield from _edges(p, "follow", src, dst, ts)
    undo = (rng.random(len(src)) < c.unfollow_share) & (ts < p.end)
    yield from _edges(p, "unfollow", src[undo], dst[undo], _later(rng, ts[undo], p.end))


def _tie_chunk(p: _Plan, c: SynthConfig, t0: int, t1: int, rng: np.random.Generator):
    """In-tribe follows of tribes ``t0:t1``; each pair is handled in its lowest shared tribe."""
    m = np.arange(p.mem_off[t0], p.mem_off[t1])
    u = p.mem_user[m]
    share = np.where(p.secondary[u] < 0, 1.0, np.where(p.mem_primary[m], 0.7, 0.3))
    k = rng.poisson(p.follow[u] * c.in_tribe_share * share)
    k = np.where(p.mem_primary[m] & (p.role[u] == _NEW), np.maximum(k, 3), k)
    src_m = np.repeat(m, 2 * k + 2)
    tribe = p.mem_tribe[src_m]
    src, dst = p.mem_user[src_m], p.mem_user[_pick(rng, tribe, p.mem_off, p.attract_cum)]
    a, b = p.primary[src], p.secondary[src]
    in_dst = lambda x: (x >= 0) & (x < tribe) & ((x == p.primary[dst]) | (x == p.secondary[dst]))  # noqa: E731
    take = _distinct(p.n, src_m - m[0], src, dst, (src != dst) & ~in_dst(a) & ~in_dst(b), k)
    src, dst = src[take], dst[take]
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    pairs, inv = np.unique(lo.astype(np.int64) * p.n + hi, return_inverse=True)
    fwd = np.zeros(len(pairs), dtype=bool)
    bwd = np.zeros(len(pairs), dtype=bool)
    fwd[inv[src < dst]] = True
    bwd[inv[src > dst]] = True
    lo, hi = pairs // p.n, pairs % p.n
    lo_first = np.where(fwd & bwd, rng.random(len(pairs)) < 0.5, fwd)
    x, y = np.where(lo_first, lo, hi), np.where(lo_first, hi, lo)
    back = (fwd & bwd) | (rng.random(len(pairs)) < _FOLLOW_BACK[p.role[y]])
    since = np.maximum(p.active[x], p.active[y])
    ts1 = since + (rng.random(len(pairs)) * (p.end - since)).astype(np.int64)
    ts2 = np.minimum(p.end, ts1 + 60 + rng.exponential(12 * 3600, len(pairs)).astype(np.int64))
    order = np.argsort(np.concatenate([np.arange(len(x)) * 2, np.flatnonzero(back) * 2 + 1]))
    src = np.concatenate([x, y[back]])[order]
    dst = np.concatenate([y, x[back]])[order]
    yield from _follow_block(p, c, rng, src, dst, np.concatenate([ts1, ts2[back]])[order])


def _cross_block(p: _Plan, c: SynthConfig, b0: int, b1: int, rng: np.random.Generator):
    """One-way follows from users ``b0:b1`` to popular or random users of other tribes."""
    rest = 1.0 - c.in_tribe_share
    k = rng.poisson(p.follow[b0:b1] * rest)
    group = np.repeat(np.arange(b1 - b0), 2 * k + 2)
    src = group + b0
    popular = rng.random(len(src)) * rest < c.popular_share
    dst = np.where(popular, _pick_global(rng, p.fame_cum, len(src)), rng.integers(0, p.n, len(src)))
    take = _distinct(p.n, group, src, dst, (src != dst) & ~_shared(p, src, dst), k)
    src, dst = src[take], dst[take]
    since = np.maximum(p.active[src], p.active[dst])
    ts = since + (rng.random(len(src)) * (p.end - since)).astype(np.int64)
    yield from _follow_block(p, c, rng, src, dst, ts)


def _repliers(p: _Plan, c: SynthConfig, rng, tribe: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Reply authors drawn by talkativeness, mostly from ``tribe``; -1 if none had joined by ``ts``."""
    who = np.full(len(ts), -1)
    todo = np.arange(len(ts))
    for _ in range(4):  # redraw those who had not joined yet
        local = p.mem_user[_pick(rng, tribe[todo], p.mem_off, p.talk_cum)]
        anyone = _pick_global(rng, p.talk_all_cum, len(todo))
        pick = np.where(rng.random(len(todo)) < c.reply_in_tribe, local, anyone)
        ok = p.active[pick] <= ts[todo]
        who[todo[ok]] = pick[ok]
        todo = todo[~ok]
    return who


def _post_block(p, c, vocab, b0, b1, rng, first_num, deletions):
    """Root posts of authors ``b0:b1`` with their reply threads; return the next post number."""
    root_author = np.repeat(np.arange(b0, b1), rng.poisson(p.posting[b0:b1]))
    nr = len(root_author)
    sec = p.secondary[root_author]
    topic = np.where((sec >= 0) & (rng.random(nr) < 0.2), sec, p.primary[root_author])
    ra_role = p.role[root_author]
    scale = c.replies_per_post / _ZIPF_MEAN * _REPLIES[ra_role]
    r = np.minimum(rng.zipf(_ZIPF_A, nr) - 1, _MAX_THREAD) * scale + rng.random(nr)
    r = np.minimum(r.astype(np.int64), _MAX_THREAD)
    since = p.active[root_author]
    root_ts = since + (rng.random(nr) * (p.end - 3600 - 2 * r - since)).astype(np.int64)
    # Replies: thread th, position j; ts strictly increasing within a thread, before the end.
    th = np.repeat(np.arange(nr), r)
    starts = np.cumsum(r) - r
    j = np.arange(len(th)) - starts[th]
    gaps = rng.exponential(_GAP, len(th))
    cs = np.cumsum(gaps)
    offs = cs - (cs - gaps)[starts[th]]
    span = np.ones(nr)
    span[r > 0] = offs[(starts + r - 1)[r > 0]]
    factor = np.minimum(1.0, (p.end - root_ts - r - 1) / np.maximum(span, 1.0))
    reply_ts = root_ts[th] + np.floor(offs * factor[th]).astype(np.int64) + j + 1
    ra = root_author[th]
    op = (j > 0) & (rng.random(len(th)) < _OP_TURN[p.role[ra]])
    to_root = ~op & ((j == 0) | (rng.random(len(th)) < 0.55))
    parent_pos = np.where(to_root, -1, (rng.random(len(th)) * j).astype(np.int64))
    who = _repliers(p, c, rng, topic[th], reply_ts)
    who = np.where(op | (who < 0), ra, who)
    # Post numbers: each root, then its replies.
    root_at = np.arange(nr) + starts
    reply_at = root_at[th] + 1 + j
    total = nr + len(th)
    author, ts = np.empty(total, np.int64), np.empty(total, np.int64)
    parent, post_topic = np.full(total, -1, np.int64), np.empty(total, np.int64)
    author[root_at], author[reply_at] = root_author, who
    ts[root_at], ts[reply_at] = root_ts, reply_ts
    parent[reply_at] = np.where(parent_pos < 0, root_at[th], root_at[th] + 1 + parent_pos)
    post_topic[root_at], post_topic[reply_at] = topic, topic[th]
    is_reply = parent >= 0
    leaf = np.ones(total, dtype=bool)
    leaf[parent[is_reply]] = False
    gone = np.flatnonzero(leaf & (rng.random(total) < c.delete_post_share))
    deletions.extend(
        zip((gone + first_num).tolist(), _later(rng, ts[gone], p.end).tolist(), strict=True)
    )
    yield from text.post_events(rng, vocab, first_num, p.ids[author], ts, parent, post_topic)
    return first_num + total


def _misc(p: _Plan, c: SynthConfig, rng: np.random.Generator):
    """Blocks of random strangers, mutes of popular accounts; a few undone later."""
    for kind, undo_kind, share, undo_share in (
        ("block", "unblock", c.block_share, 0.15),
        ("mute", "unmute", c.mute_share, 0.10),
    ):
        src = np.flatnonzero(rng.random(p.n) < share)
        if kind == "block":
            dst = rng.integers(0, p.n, len(src))
            keep = (src != dst) & ~_shared(p, src, dst)
        else:
            dst = _pick_global(rng, p.fame_cum, len(src))
            keep = src != dst
        src, dst = src[keep], dst[keep]
        since = np.maximum(p.active[src], p.active[dst])
        ts = since + (rng.random(len(src)) * (p.end - since)).astype(np.int64)
        yield from _edges(p, kind, src, dst, ts)
        undo = rng.random(len(src)) < undo_share
        yield from _edges(p, undo_kind, src[undo], dst[undo], _later(rng, ts[undo], p.end))


def generate(config: SynthConfig) -> Iterator[dict]:
    """Yield the events of the synthetic network, streaming, in the phases listed above.

    Parameters
    ----------
    config : SynthConfig
        The knobs; the same config always yields the same events.

    Yields
    ------
    dict
        One JSON-ready event, valid per :func:`tribes.events.validate`. About 21 events
        per user at the defaults; O(users) memory, O(events) time.

    Raises
    ------
    InputError
        If a knob is out of range (raised on the first ``next``).
    """
    p = _plan(config)
    seed = config.seed
    vocab = text.make_vocabulary(_rng(seed, _VOCAB), p.n_tribes, p.n)
    for block, b0 in enumerate(range(0, p.n, _BLOCK)):
        b1 = min(b0 + _BLOCK, p.n)
        users = slice(b0, b1)
        yield from text.user_events(
            _rng(seed, _USERS, block),
            vocab,
            p.ids[users],
            p.join[users],
            p.primary[users],
            p.secondary[users],
            p.discoverable[users],
        )
    t0, chunk = 0, 0
    while t0 < p.n_tribes:
        t1 = int(np.searchsorted(p.mem_off, p.mem_off[t0] + _BLOCK, side="left"))
        t1 = min(max(t1, t0 + 1), p.n_tribes)
        yield from _tie_chunk(p, config, t0, t1, _rng(seed, _TIES, chunk))
        t0, chunk = t1, chunk + 1
    for block, b0 in enumerate(range(0, p.n, _BLOCK)):
        yield from _cross_block(p, config, b0, min(b0 + _BLOCK, p.n), _rng(seed, _CROSS, block))
    deletions: list[tuple[int, int]] = []
    num = 1
    for block, b0 in enumerate(range(0, p.n, _BLOCK)):
        rng = _rng(seed, _POSTS_S, block)
        num = yield from _post_block(
            p, config, vocab, b0, min(b0 + _BLOCK, p.n), rng, num, deletions
        )
    yield from _misc(p, config, _rng(seed, _MISC))
    for number, when in deletions:
        yield {"type": "delete_post", "id": text.post_id(number), "ts": when}
    for user in np.flatnonzero(p.deleted).tolist():
        yield {"type": "delete_user", "id": str(p.ids[user]), "ts": p.end}


def planted_truth(config: SynthConfig) -> Iterator[dict]:
    """Yield the planted truth of each user, in id order.

    Yields
    ------
    dict
        ``{"user_id", "tribes": [primary, secondary?], "role", "discoverable", "joined"
        (Unix seconds), "deleted"}``; ``role`` is one of :data:`ROLES`.
    """
    p = _plan(config)
    ids, primary, secondary = p.ids.tolist(), p.primary.tolist(), p.secondary.tolist()
    role, disc, join, gone = p.role.tolist(), p.discoverable.tolist(), p.join.tolist(), p.deleted
    for i in range(p.n):
        yield {
            "user_id": ids[i],
            "tribes": [primary[i]] if secondary[i] < 0 else [primary[i], secondary[i]],
            "role": ROLES[role[i]],
            "discoverable": disc[i],
            "joined": join[i],
            "deleted": bool(gone[i]),
        }
