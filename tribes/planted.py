"""Planted networks from standard models rather than tribes' own idea of a tribe: the LFR
benchmark and the planted partition model (small groups), as tribes events.

:mod:`tribes.synth` plants tribes the way this project thinks of them (roles, topics, follows
and threads); to check the engine in the general case, this module turns an LFR benchmark
graph (Lancichinetti, Fortunato & Radicchi 2008, as built by networkx's
``LFR_benchmark_graph``: power-law degrees and community sizes, each node with a share ``mu``
of its edges leaving its community) or a planted partition (groups of similar size, ties
inside and between them drawn uniformly) into events, with the communities as the truth.

- :func:`lfr_graph`: the graph as an (E, 2) edge array and a community label per node.
- :func:`lfr_events`: JSON-ready events (valid per :func:`tribes.events.validate`): a ``user``
  per node, then either ``follow`` events (``kind="follow"``: every edge followed both ways)
  or posts and replies (``kind="message"``: every edge becomes threads of replies between the
  two ends, spread over time, as the ``edgelist`` importer models messages).
- :func:`lfr_truth`: ``{"user_id", "tribes": [community]}`` per user, the planted-truth format
  :func:`tribes.evaluation.truth.load_groups` reads.
- :func:`partition_graph`, :func:`partition_events`, :func:`partition_truth`: the same for a
  planted partition (:class:`PartitionConfig`): groups of a few to a few dozen users, each
  pair inside a group tied with one probability and any other pair with another, set by the
  mean degree and the mixing ``mu``. Modularity cannot resolve groups this small in a large
  graph; tribes must keep them apart.

Events carry integer Unix seconds spread over ``days`` before ``end`` and come in time order,
so both evaluation splits apply (edge hold-out and time split). Nothing is textual: users have
no interests and posts no topics, so only the graph (and, for messages, time) carries signal.
The same config always gives the same events. Time and memory are O(users + edges) after
networkx's generator (about 0.1 s for 3,000 nodes).

Examples
--------
>>> from tribes.planted import LFRConfig, lfr_events, lfr_truth
>>> config = LFRConfig(n_users=300, mu=0.1, seed=1)
>>> events = list(lfr_events(config))
>>> events[0]["type"], events[0]["id"], events[-1]["type"]
('user', 'n00000', 'follow')
>>> next(lfr_truth(config))["user_id"]
'n00000'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tribes.errors import InputError
from tribes.events import EventError, parse_ts

__all__ = [
    "KINDS",
    "LFRConfig",
    "LFRGraph",
    "PartitionConfig",
    "lfr_events",
    "lfr_graph",
    "lfr_truth",
    "partition_events",
    "partition_graph",
    "partition_truth",
    "user_ids",
]

#: Event shapes :func:`lfr_events` can emit.
KINDS = ("follow", "message")

_DAY = 86_400
_FOLLOW_BACK_GAP = 6 * 3600.0  # mean seconds before the second direction of a friendship
_REPLY_GAP = 1800.0  # mean seconds between the posts of a thread
# Random streams of the events, one per stage (the graph uses networkx's own seeded draws).
_FOLLOWS, _THREADS, _GROUPS = 1, 2, 3


@dataclass(frozen=True)
class _EventKnobs:
    """The knobs of the events, the same for every planted model (see :class:`LFRConfig`)."""

    seed: int = 0
    kind: str = "follow"
    threads_per_edge: float = 2.0
    replies_per_thread: float = 2.0
    days: int = 56
    end: str = "2026-11-01T00:00:00Z"


@dataclass(frozen=True)
class LFRConfig(_EventKnobs):
    """Knobs of the LFR network and of its events.

    Parameters
    ----------
    n_users : int
        Nodes (users ``n00000`` …), at least 100; default 1000.
    mu : float
        Mixing: the share of each node's edges that leave its community, in [0, 1]; default
        0.3. The realised share is higher than asked (networkx's generator; see
        :attr:`LFRGraph.mixing`).
    seed : int
        Seed of the graph and of the event times (non-negative); default 0.
    kind : str
        ``"follow"`` (default) or ``"message"`` (see the module docstring).
    tau1, tau2 : float
        Power-law exponents of degrees (default 2.5) and community sizes (default 1.5), > 1.
    average_degree : float
        Mean degree, in [2, max_degree); default 10.
    max_degree : int or None
        Largest degree; default ``min(100, n_users // 8)``.
    min_community, max_community : int or None
        Community size bounds; defaults 20 and ``max(50, n_users // 10)``.
    threads_per_edge : float
        ``kind="message"``: mean threads per edge (at least 1 each), default 2.
    replies_per_thread : float
        ``kind="message"``: mean replies in a thread (at least 1, alternating between the two
        ends; 2 or more make the pair two-way), default 2.
    days : int
        Days the events span, ending at ``end``; default 56.
    end : str
        End of the window (RFC 3339), default ``"2026-11-01T00:00:00Z"``.
    attempts : int
        Graphs tried before giving up: networkx raises ``ExceededMaxIterations`` when it cannot
        draw degrees, sizes or an assignment that fit; each retry uses a seed derived from
        ``seed`` and the attempt number. Default 10.
    """

    n_users: int = 1000
    mu: float = 0.3
    tau1: float = 2.5
    tau2: float = 1.5
    average_degree: float = 10.0
    max_degree: int | None = None
    min_community: int | None = None
    max_community: int | None = None
    attempts: int = 10

    def resolved(self) -> dict[str, float | int]:
        """The arguments handed to networkx (defaults filled in)."""
        n = self.n_users
        return {
            "n": n,
            "tau1": self.tau1,
            "tau2": self.tau2,
            "mu": self.mu,
            "average_degree": self.average_degree,
            "max_degree": self.max_degree if self.max_degree is not None else min(100, n // 8),
            "min_community": self.min_community if self.min_community is not None else 20,
            "max_community": self.max_community
            if self.max_community is not None
            else max(50, n // 10),
        }


@dataclass(frozen=True, eq=False)
class LFRGraph:
    """A planted graph (LFR's or a planted partition's): ``edges`` (E, 2) int64 with ``a < b``,
    sorted, no self-loops (networkx's LFR generator may draw some; they are dropped);
    ``labels`` (n,) int64 community per node, numbered by each community's smallest node;
    ``seed_used`` the seed that succeeded."""

    edges: np.ndarray
    labels: np.ndarray
    seed_used: int

    @property
    def mixing(self) -> float:
        """The realised mixing: the share of edges between two communities."""
        if len(self.edges) == 0:
            return 0.0
        return float(np.mean(self.labels[self.edges[:, 0]] != self.labels[self.edges[:, 1]]))


def _check_knobs(
    c: LFRConfig | PartitionConfig,
    ints: dict[str, tuple[int, int]],
    floats: dict[str, tuple[float, float]],
    open_low: tuple[str, ...] = (),
) -> int:
    """Validate the knobs both models share and those named; return the end of the window in
    Unix seconds."""
    ints = {"seed": (0, 2**32 - 1), "days": (2, 36_500), **ints}
    for name, (lo, hi) in ints.items():
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"expected an integer, got {value!r}", field=name)
        if not lo <= value <= hi:
            raise InputError(f"must be in [{lo}, {hi}], got {value!r}", field=name)
    if c.kind not in KINDS:
        raise InputError(f"expected one of {', '.join(KINDS)}, got {c.kind!r}", field="kind")
    floats = {**floats, "threads_per_edge": (1.0, 100.0), "replies_per_thread": (1.0, 100.0)}
    for name, (lo, hi) in floats.items():
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise InputError(f"expected a number, got {value!r}", field=name)
        is_open = name in open_low
        if not (lo < value if is_open else lo <= value) or value > hi:
            raise InputError(
                f"must be in {'(' if is_open else '['}{lo}, {hi}], got {value!r}", field=name
            )
    try:
        end = int(parse_ts(c.end, "end"))
    except EventError as exc:
        raise InputError(exc.problem, field="end") from None
    if end - c.days * _DAY < 0:
        raise InputError("must leave the whole window after 1970", field="end")
    return end


def _check(c: LFRConfig) -> int:
    """Validate ``c``; return the end of the window in Unix seconds."""
    end = _check_knobs(
        c,
        {"n_users": (100, 10**7), "attempts": (1, 1000)},
        {"mu": (0.0, 1.0), "tau1": (1.0, 10.0), "tau2": (1.0, 10.0)},
        open_low=("tau1", "tau2"),
    )
    r = c.resolved()
    if not 1 <= r["max_degree"] <= c.n_users:
        raise InputError(f"must be in [1, n_users], got {r['max_degree']!r}", field="max_degree")
    if not 2 <= c.average_degree < r["max_degree"]:
        raise InputError(
            f"must be in [2, max_degree = {r['max_degree']}), got {c.average_degree!r}",
            field="average_degree",
        )
    if not 1 <= r["min_community"] <= r["max_community"] <= c.n_users:
        raise InputError(
            f"need 1 <= min_community ({r['min_community']}) <= max_community "
            f"({r['max_community']}) <= n_users ({c.n_users})",
            field="max_community",
        )
    return end


def _attempt_seed(seed: int, attempt: int) -> int:
    """The graph seed of ``attempt``: ``seed`` itself first, then derived (independent) seeds."""
    if attempt == 0:
        return seed
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1)[0])


def lfr_graph(config: LFRConfig) -> LFRGraph:
    """Draw the LFR graph of ``config`` (deterministic for a config).

    Raises
    ------
    InputError
        For a knob out of range, or when networkx fails ``config.attempts`` times in a row
        (``ExceededMaxIterations``: the degrees, sizes and mixing asked for do not fit).
    """
    _check(config)
    from networkx import ExceededMaxIterations, NetworkXError
    from networkx.generators.community import LFR_benchmark_graph

    args = config.resolved()
    last = ""
    for attempt in range(config.attempts):
        seed = _attempt_seed(config.seed, attempt)
        try:
            g = LFR_benchmark_graph(**args, seed=seed)
        except ExceededMaxIterations as exc:
            last = str(exc)
            continue
        except NetworkXError as exc:  # parameters networkx itself rejects
            raise InputError(
                f"networkx rejects the LFR parameters {args}: {exc}", field="lfr"
            ) from None
        n = config.n_users
        labels = np.full(n, -1, dtype=np.int64)
        communities = sorted({frozenset(g.nodes[v]["community"]) for v in g}, key=min)
        for number, members in enumerate(communities):
            labels[np.fromiter(members, dtype=np.int64)] = number
        edges = np.array(
            [(a, b) if a < b else (b, a) for a, b in g.edges() if a != b], dtype=np.int64
        )
        edges = np.unique(edges.reshape(-1, 2), axis=0)
        return LFRGraph(edges=edges, labels=labels, seed_used=seed)
    raise InputError(
        f"networkx could not draw an LFR graph in {config.attempts} attempts "
        f"({last}); try more users, a smaller average degree or wider community sizes",
        field="lfr",
    )


def user_ids(n: int) -> np.ndarray:
    """The user ids of ``n`` nodes: ``n00000`` … (at least five digits)."""
    width = max(5, len(str(n - 1)))
    return np.array([f"n{i:0{width}d}" for i in range(n)])


def lfr_events(config: LFRConfig, graph: LFRGraph | None = None) -> Iterator[dict]:
    """Yield the events of ``config``'s LFR network: users, then follows or posts in time order.

    ``graph`` (from :func:`lfr_graph` on the same config) saves drawing it again. O(users +
    edges) memory for the times; events are built one at a time.
    """
    end = _check(config)
    return _planted_events(config, graph if graph is not None else lfr_graph(config), end)


def _planted_events(
    config: LFRConfig | PartitionConfig, graph: LFRGraph, end: int
) -> Iterator[dict]:
    start = end - config.days * _DAY
    ids = user_ids(config.n_users).tolist()
    for uid in ids:
        yield {"type": "user", "id": uid, "ts": start}
    if config.kind == "follow":
        yield from _follow_events(config, graph.edges, ids, start, end)
    else:
        yield from _message_events(config, graph.edges, ids, start, end)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _follow_events(
    c: LFRConfig, edges: np.ndarray, ids: list[str], start: int, end: int
) -> Iterator[dict]:
    """Each edge: one end follows the other at a uniform time, the other follows back later."""
    rng = _rng(c.seed, _FOLLOWS)
    e = len(edges)
    first = rng.integers(0, 2, size=e)
    src = np.concatenate([edges[np.arange(e), first], edges[np.arange(e), 1 - first]])
    dst = np.concatenate([edges[np.arange(e), 1 - first], edges[np.arange(e), first]])
    ts = rng.integers(start + 1, end - _DAY, size=e)
    back = np.minimum(ts + 1 + rng.exponential(_FOLLOW_BACK_GAP, size=e).astype(np.int64), end)
    when = np.concatenate([ts, back])
    for i in np.lexsort((dst, src, when)).tolist():
        yield {"type": "follow", "src": ids[src[i]], "dst": ids[dst[i]], "ts": int(when[i])}


def _message_events(
    c: LFRConfig, edges: np.ndarray, ids: list[str], start: int, end: int
) -> Iterator[dict]:
    """Each edge: threads at uniform times; a root by one end naming the other (``@id``), then
    replies alternating between the two, each answering the post before it."""
    rng = _rng(c.seed, _THREADS)
    e = len(edges)
    threads = 1 + rng.poisson(c.threads_per_edge - 1.0, size=e)
    edge_of = np.repeat(np.arange(e), threads)
    t = len(edge_of)
    starter = rng.integers(0, 2, size=t)
    replies = 1 + rng.poisson(c.replies_per_thread - 1.0, size=t)
    root_ts = rng.integers(start + 1, end - _DAY, size=t)
    posts = 1 + replies  # root and replies, per thread
    thread_of = np.repeat(np.arange(t), posts)
    first = np.concatenate([[0], np.cumsum(posts)[:-1]])
    turn = np.arange(len(thread_of)) - first[thread_of]  # 0 = root
    gaps = np.where(
        turn > 0, 1 + rng.exponential(_REPLY_GAP, size=len(thread_of)).astype(np.int64), 0
    )
    ts = root_ts[thread_of] + _cumsum_within(gaps, first, posts)
    author_end = (starter[thread_of] + turn) % 2  # alternate between the two ends
    author = edges[edge_of[thread_of], author_end]
    other = edges[edge_of[thread_of], 1 - author_end]
    order = np.lexsort((turn, thread_of, ts))  # a reply always comes after the post it answers
    number = np.empty(len(order), dtype=np.int64)
    number[order] = np.arange(len(order))
    width = len(str(max(len(order) - 1, 0)))
    for i in order.tolist():
        event = {
            "type": "post",
            "id": f"p{number[i]:0{width}d}",
            "author": ids[author[i]],
            "ts": int(ts[i]),
        }
        if turn[i] == 0:
            event["text"] = f"@{ids[other[i]]}"
        else:
            event["text"] = ""
            event["reply_to"] = f"p{number[i - 1]:0{width}d}"
        yield event


def _cumsum_within(values: np.ndarray, first: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Running sums of ``values`` restarting at each group (groups contiguous, ``first`` their
    starts, ``sizes`` their lengths)."""
    total = np.cumsum(values)
    before = np.concatenate([[0], total])[first]
    return total - np.repeat(before, sizes)


def lfr_truth(config: LFRConfig, graph: LFRGraph | None = None) -> Iterator[dict]:
    """Yield ``{"user_id", "tribes": [community]}`` for every user, in id order."""
    return _planted_truth(graph if graph is not None else lfr_graph(config))


def _planted_truth(graph: LFRGraph) -> Iterator[dict]:
    for uid, label in zip(user_ids(len(graph.labels)).tolist(), graph.labels.tolist(), strict=True):
        yield {"user_id": uid, "tribes": [label]}


@dataclass(frozen=True)
class PartitionConfig(_EventKnobs):
    """Knobs of a planted partition and of its events.

    Parameters
    ----------
    n_users : int
        Nodes (users ``n00000`` …), at least 10; default 1000.
    mu : float
        Mixing: the expected share of a user's ties that leave their group, in [0, 1]; default
        0.3 (realised: :attr:`LFRGraph.mixing`).
    average_degree : float
        Expected mean degree, > 0; default 8. Each pair inside a group is tied with one
        probability and each other pair with another, set so that a user has on average
        ``(1 - mu) * average_degree`` ties inside and ``mu * average_degree`` outside (the inside
        probability is at most 1: groups too small for the degree asked for get fewer).
    min_community, max_community : int
        Group sizes, drawn uniformly in this range (the last users join the smallest groups);
        defaults 6 and 14.
    seed, kind, threads_per_edge, replies_per_thread, days, end
        As :class:`LFRConfig`.
    """

    n_users: int = 1000
    mu: float = 0.3
    average_degree: float = 8.0
    min_community: int = 6
    max_community: int = 14


def _check_partition(c: PartitionConfig) -> int:
    end = _check_knobs(
        c,
        {"n_users": (10, 10**7), "min_community": (2, 10**6), "max_community": (2, 10**6)},
        {"mu": (0.0, 1.0), "average_degree": (0.0, 1000.0)},
        open_low=("average_degree",),
    )
    if not c.min_community <= c.max_community <= c.n_users:
        raise InputError(
            f"need min_community ({c.min_community}) <= max_community ({c.max_community}) "
            f"<= n_users ({c.n_users})",
            field="max_community",
        )
    return end


def _group_sizes(c: PartitionConfig, rng: np.random.Generator) -> np.ndarray:
    """Sizes in [min_community, max_community] summing to ``n_users``: drawn until they cover
    it; the users left over (fewer than min_community) join the smallest groups, one each in turn."""
    sizes = rng.integers(
        c.min_community, c.max_community + 1, size=c.n_users // c.min_community + 1
    )  # cover n
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), c.n_users, side="right"))]
    left = c.n_users - int(sizes.sum())  # the first size fits: max_community <= n_users
    if left >= c.min_community:
        return np.append(sizes, left)
    extra = np.zeros(sizes.size, dtype=np.int64)
    np.add.at(extra, np.argsort(sizes, kind="stable")[np.arange(left) % sizes.size], 1)
    return sizes + extra


def partition_graph(config: PartitionConfig) -> LFRGraph:
    """Draw the planted partition of ``config`` (deterministic for a config). Time and memory
    O(users + pairs inside groups + edges).

    Raises
    ------
    InputError
        For a knob out of range.
    """
    _check_partition(config)
    rng = _rng(config.seed, _GROUPS)
    sizes = _group_sizes(config, rng)
    n = config.n_users
    pairs_inside = int((sizes * (sizes - 1) // 2).sum())
    pairs_between = n * (n - 1) // 2 - pairs_inside
    # Each user's expected ties: (1 - mu) * average_degree inside, mu * average_degree between.
    p_in = min(1.0, (1 - config.mu) * config.average_degree * n / max(2 * pairs_inside, 1))
    p_out = min(1.0, config.mu * config.average_degree * n / max(2 * pairs_between, 1))
    labels = np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    inside = []
    for size in np.unique(sizes).tolist():  # the pairs of every group of one size at once
        a, b = np.triu_indices(size, 1)
        starts = first[sizes == size]
        tied = rng.random((starts.size, a.size)) < p_in
        group, pair = np.nonzero(tied)
        inside.append(np.column_stack([starts[group] + a[pair], starts[group] + b[pair]]))
    wanted = int(rng.binomial(pairs_between, p_out)) if pairs_between else 0
    between = np.zeros((0, 2), dtype=np.int64)
    while len(between) < wanted:  # uniform pairs across groups, drawn until enough distinct ones
        draw = rng.integers(0, n, size=(2 * (wanted - len(between)) + 16, 2))
        draw = np.sort(draw, axis=1)
        draw = draw[labels[draw[:, 0]] != labels[draw[:, 1]]]
        between = np.unique(np.concatenate([between, draw]), axis=0)
        if len(between) > wanted:
            between = between[np.sort(rng.choice(len(between), wanted, replace=False))]
    edges = np.unique(np.concatenate([*inside, between]).astype(np.int64), axis=0)
    return LFRGraph(edges=edges.reshape(-1, 2), labels=labels, seed_used=config.seed)


def partition_events(config: PartitionConfig, graph: LFRGraph | None = None) -> Iterator[dict]:
    """Yield the events of ``config``'s planted partition, as :func:`lfr_events` does for LFR."""
    end = _check_partition(config)
    return _planted_events(config, graph if graph is not None else partition_graph(config), end)


def partition_truth(config: PartitionConfig, graph: LFRGraph | None = None) -> Iterator[dict]:
    """Yield ``{"user_id", "tribes": [group]}`` for every user, in id order."""
    return _planted_truth(graph if graph is not None else partition_graph(config))
