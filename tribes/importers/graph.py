"""Import a graph file — GraphML, GML, GEXF, Pajek or node-link JSON — or a networkx graph.

Planted networks often come as one graph file whose nodes carry their community (networkx's
``stochastic_block_model`` writes ``block``, its LFR generator ``community``, Zachary's karate
club ``club``). Every node becomes a user; every edge a ``follow`` (both ways when the graph is
undirected, or with ``undirected=True``), or with ``kind="message"`` a message from the edge's
source to its target at the edge's time, threaded as the ``edgelist`` importer threads them.
The node attribute is the ground truth (:func:`iter_truth`, the JSON Lines ``tribes evaluate
--labels`` reads).

The format follows the file name (``.graphml``/``.xml``, ``.gml``, ``.gexf``, ``.net``/
``.pajek``, ``.json``; ``.gz`` or ``.bz2`` after it is read transparently). In a notebook,
:func:`events_from_networkx` and :func:`truth_from_networkx` take a graph object directly.

>>> import networkx as nx
>>> g = nx.Graph([(1, 2)]); g.nodes[1]["block"] = g.nodes[2]["block"] = 0
>>> [e["type"] for e in events_from_networkx(g)]
['user', 'user', 'follow', 'follow']
>>> list(truth_from_networkx(g))
[{'user_id': '1', 'tribes': ['0']}, {'user_id': '2', 'tribes': ['0']}]
"""

from __future__ import annotations

import bz2
import gzip
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import networkx as nx

from tribes.errors import InputError
from tribes.importers._common import (
    DEFAULT_TS,
    MessageThreads,
    check_id,
    check_ts,
    finish_stats,
    time_value,
)

__all__ = [
    "FORMATS",
    "TIME_ATTRS",
    "TRUTH_ATTRS",
    "events_from_networkx",
    "iter_events",
    "iter_truth",
    "read_graph",
    "truth_from_networkx",
]

#: File name suffix → format.
FORMATS = {
    ".graphml": "graphml",
    ".xml": "graphml",
    ".gml": "gml",
    ".gexf": "gexf",
    ".net": "pajek",
    ".pajek": "pajek",
    ".json": "node-link",
}
#: Node attributes taken as the ground truth when none is named, first found first.
TRUTH_ATTRS = (
    "community",
    "communities",
    "block",
    "group",
    "groups",
    "club",
    "department",
    "dept",
    "circle",
    "circles",
    "cluster",
    "module",
    "class",
    "value",
)
#: Edge attributes taken as the edge's time when none is named, first found first.
TIME_ATTRS = ("timestamp", "ts", "time", "datetime", "date")
KINDS = ("follow", "message")


def read_graph(src: str | Path) -> nx.Graph:
    """The networkx graph in ``src``, by its suffix (see :data:`FORMATS`). :class:`InputError`
    naming the file for an unknown suffix or a file the format's reader rejects."""
    path = Path(src)
    if not path.is_file():
        raise InputError("no such file", path=str(src))
    suffixes = [s.lower() for s in path.suffixes]
    packed = suffixes[-1] if suffixes and suffixes[-1] in (".gz", ".bz2") else None
    suffix = (
        suffixes[-2]
        if packed and len(suffixes) > 1
        else (suffixes[-1] if suffixes and not packed else "")
    )
    fmt = FORMATS.get(suffix)
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise InputError(
            f"unknown graph format {suffix or path.name!r}; expected a file ending in {known} "
            "(optionally .gz or .bz2); edge lists: tribes import edgelist",
            path=str(src),
        )
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(packed or "", open)
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
        if fmt == "node-link":
            return _node_link(json.loads(data))
        if fmt == "graphml":
            return nx.parse_graphml(data.decode("utf-8"))
        if fmt == "gexf":
            import io

            return nx.read_gexf(io.BytesIO(data))
        lines = data.decode("utf-8").splitlines()
        if fmt == "pajek":
            return nx.parse_pajek(lines)
        try:
            return nx.parse_gml(lines, label="label")
        except nx.NetworkXError as exc:  # nodes without labels (or repeated ones): name them by id
            if "label" not in str(exc):
                raise
            return nx.parse_gml(lines, label="id")
    except InputError:
        raise
    except (
        Exception
    ) as exc:  # the readers raise many types (XML, JSON, networkx, Unicode) for bad files
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"not a readable {fmt} file: {problem[:200]}", path=str(src)) from None


def _node_link(data: object) -> nx.Graph:
    """networkx's node-link JSON (``nodes`` and ``links`` or ``edges``), read the same way by every
    networkx version (the key of the edges changed in 3.4)."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise ValueError("expected an object with a 'nodes' list (networkx node-link data)")
    edges = data.get("links", data.get("edges", []))
    graph = nx.MultiDiGraph() if data.get("directed") else nx.MultiGraph()
    for node in data["nodes"]:
        attrs = dict(node)
        graph.add_node(attrs.pop("id"), **attrs)
    for edge in edges:
        attrs = dict(edge)
        graph.add_edge(attrs.pop("source"), attrs.pop("target"), **attrs)
    return graph


def _pick(names: set[str], wanted: str | None, known: tuple[str, ...], what: str) -> str | None:
    """The attribute to use: ``wanted`` (must exist), else the first of ``known`` present
    (case-insensitive), else None."""
    if wanted is not None:
        if wanted not in names:
            have = ", ".join(sorted(names)) or "none"
            raise InputError(f"no {what} attribute {wanted!r}; the graph has: {have}", field=what)
        return wanted
    lower = {name.lower(): name for name in sorted(names)}
    return next((lower[k] for k in known if k in lower), None)


def _user_ids(graph: nx.Graph) -> dict[object, str]:
    """Each node's user id, its ``str``; :class:`InputError` when two nodes get the same one
    (``1`` and ``"1"`` in a node-link file), which would silently merge two people."""
    ids: dict[object, str] = {}
    seen: dict[str, object] = {}
    for node in graph.nodes:
        user = ids[node] = check_id(str(node), field="node")
        if user in seen:
            raise InputError(
                f"nodes {seen[user]!r} and {node!r} would both be user {user!r}; "
                "give the nodes distinct names",
                field="node",
            )
        seen[user] = node
    return ids


def events_from_networkx(
    graph: nx.Graph,
    *,
    kind: str = "follow",
    ts: str | float = DEFAULT_TS,
    time_attr: str | None = None,
    undirected: bool | None = None,
    stats: dict | None = None,
) -> Iterator[dict]:
    """Yield tribes events for a networkx graph: a ``user`` per node, then one event per edge.

    ``kind="follow"``: edge u → v is a follow (and v → u when the graph is undirected or
    ``undirected`` is True). ``kind="message"``: a message u → v (threaded as in the
    ``edgelist`` importer); it needs edge times. ``time_attr`` names the edge attribute
    holding each edge's time (Unix seconds or RFC 3339); default: the first of
    :data:`TIME_ATTRS` any edge has, else every event at ``ts``. Edges are emitted in time
    order (ties keep the graph's order); self-loops are skipped and counted. Users get the
    earliest time. O(nodes + edges log edges) time, O(nodes + edges) memory.
    """
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", field="kind")
    default_seconds = check_ts(ts)
    both_ways = (not graph.is_directed()) if undirected is None else bool(undirected)
    if kind == "message" and undirected:
        raise InputError("undirected applies to kind='follow' only", field="undirected")
    names = {key for *_, attrs in graph.edges(data=True) for key in attrs}
    attr = _pick(names, time_attr, TIME_ATTRS, "edge time")
    if kind == "message" and attr is None:
        raise InputError(
            "kind='message' needs the time of each edge (an edge attribute such as "
            f"{', '.join(TIME_ATTRS)}; name it with the time attribute option)",
            field="kind",
        )
    ids = _user_ids(graph)
    edges = []
    counts: Counter = Counter(nodes=graph.number_of_nodes(), edges=0, self_loops=0, events=0)
    for u, v, attrs in graph.edges(data=True):
        counts["edges"] += 1
        if u == v:
            counts["self_loops"] += 1
            continue
        if attr is not None and attr not in attrs:
            raise InputError(
                f"edge {u!r} -> {v!r} has no {attr!r} (every edge needs a time once one has)",
                field="edge time",
            )
        when, seconds = (
            time_value(attrs[attr], field=f"time of edge {u!r} -> {v!r}")
            if attr is not None
            else (ts, default_seconds)
        )
        edges.append((seconds, len(edges), ids[u], ids[v], when))
    edges.sort()
    start = edges[0][4] if edges else ts
    for node in graph.nodes:
        counts["events"] += 1
        yield {"type": "user", "id": ids[node], "ts": start}
    threads = MessageThreads()
    for _, number, a, b, when in edges:
        if kind == "message":
            counts["events"] += 1
            yield threads.post(f"e{number + 1}", a, b, when, counts)
            continue
        counts["events"] += 1 + both_ways
        yield {"type": "follow", "src": a, "dst": b, "ts": when}
        if both_ways:
            yield {"type": "follow", "src": b, "dst": a, "ts": when}
    finish_stats("graph", counts, stats)


def _groups(node: object, value: object, graph: nx.Graph) -> list[str]:
    """A node's truth value as group keys: a scalar is one group, a list or set several; a set of
    *nodes* holding the node (networkx's LFR ``community``) is named by its smallest member."""
    if isinstance(value, frozenset | set) and node in value and all(v in graph for v in value):
        return [str(min(value, key=str))]
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v) for v in value]
    return [str(value)]


def truth_from_networkx(
    graph: nx.Graph, attr: str | None = None, stats: dict | None = None
) -> Iterator[dict]:
    """Yield ``{"user_id", "tribes": [group, …]}`` for every node with the truth attribute
    ``attr`` (default: the first of :data:`TRUTH_ATTRS` any node has; :class:`InputError`
    when none has one), the planted-truth JSON Lines ``tribes evaluate --labels`` reads.
    ``stats``, when given, receives ``attribute`` (the one used) and ``nodes_without`` (nodes
    that have no value for it, so no record)."""
    names = {key for _, attrs in graph.nodes(data=True) for key in attrs}
    chosen = _pick(names, attr, TRUTH_ATTRS, "truth")
    if chosen is None:
        have = ", ".join(sorted(names)) or "none"
        raise InputError(
            f"no node attribute to take as ground truth (looked for {', '.join(TRUTH_ATTRS)}; "
            f"the nodes have: {have}); name one with the truth attribute option",
            field="truth",
        )
    ids = _user_ids(graph)
    without = 0
    for node, attrs in graph.nodes(data=True):
        if attrs.get(chosen) is None:
            without += 1
            continue
        yield {"user_id": ids[node], "tribes": _groups(node, attrs[chosen], graph)}
    if stats is not None:
        stats.update(attribute=chosen, nodes_without=without)


def iter_events(
    src: str | Path,
    *,
    kind: str = "follow",
    ts: str | float = DEFAULT_TS,
    time_attr: str | None = None,
    undirected: bool | None = None,
    stats: dict | None = None,
    graph: nx.Graph | None = None,
) -> Iterator[dict]:
    """Yield the events of the graph file ``src`` (:func:`read_graph`, then
    :func:`events_from_networkx` with these options). The whole graph is read first;
    ``graph``, the result of ``read_graph(src)`` already at hand, saves reading it again."""
    return _in_file(
        src,
        lambda g: events_from_networkx(
            g, kind=kind, ts=ts, time_attr=time_attr, undirected=undirected, stats=stats
        ),
        graph,
    )


def iter_truth(
    src: str | Path,
    *,
    attr: str | None = None,
    stats: dict | None = None,
    graph: nx.Graph | None = None,
) -> Iterator[dict]:
    """Yield the ground truth of the graph file ``src`` (:func:`truth_from_networkx`);
    ``graph`` as for :func:`iter_events`."""
    return _in_file(src, lambda g: truth_from_networkx(g, attr, stats), graph)


def _in_file(
    src: str | Path, rows: Callable[[nx.Graph], Iterator[dict]], graph: nx.Graph | None = None
) -> Iterator[dict]:
    """``rows(read_graph(src))`` (or ``rows(graph)``), with input errors that name no file
    naming ``src``."""
    if graph is None:
        graph = read_graph(src)
    try:
        yield from rows(graph)
    except InputError as exc:
        if exc.path is None:
            raise InputError(exc.problem, path=str(src), field=exc.field) from None
        raise
