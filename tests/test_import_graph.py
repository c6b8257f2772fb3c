"""The graph importer: GraphML, GML, GEXF, Pajek and node-link JSON files (and networkx graphs
in memory) as events and planted truth, the same whatever the format; clear errors naming the file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import networkx as nx
import orjson
import pytest

from tribes.cli import main
from tribes.errors import InputError
from tribes.importers import IMPORTERS, TRUTH_READERS
from tribes.importers._common import DEFAULT_TS
from tribes.importers.graph import events_from_networkx, read_graph, truth_from_networkx

from .test_importers import collect


def _planted(seed: int = 3) -> nx.Graph:
    """Three blocks of 20 (networkx's SBM writes each node's ``block``) and one isolated node."""
    g = nx.stochastic_block_model(
        [20, 20, 20], [[0.4, 0.02, 0.02], [0.02, 0.4, 0.02], [0.02, 0.02, 0.4]], seed=seed
    )
    g.graph.clear()  # the partition (a list of sets): GraphML and GEXF cannot write it
    g.add_node(60, block=2)
    return g


def _write(g: nx.Graph, path: Path) -> Path:
    if path.name.endswith(".gexf.gz"):
        with gzip.open(path, "wb") as fh:
            nx.write_gexf(g, fh)
    elif path.suffix == ".graphml":
        nx.write_graphml(g, path)
    elif path.suffix == ".gml":
        nx.write_gml(g, path)
    elif path.suffix == ".json":
        path.write_text(json.dumps(nx.node_link_data(g, edges="links")))
    return path


def _follows(events: list[dict]) -> set[tuple[str, str]]:
    return {(e["src"], e["dst"]) for e in events if e["type"] == "follow"}


@pytest.mark.parametrize("name", ["g.graphml", "g.gml", "g.gexf.gz", "g.json"])
def test_every_format_gives_the_same_events_and_truth(tmp_path, name):
    g = _planted()
    path = _write(g, tmp_path / name)
    stats: dict = {}
    events = collect(IMPORTERS["graph"](path, stats=stats))
    users = [e["id"] for e in events if e["type"] == "user"]
    assert sorted(users, key=int) == [str(n) for n in range(61)]  # the isolated node too
    edges = {(str(a), str(b)) for a, b in g.edges}
    assert _follows(events) == edges | {(b, a) for a, b in edges}  # undirected: followed both ways
    assert stats["nodes"] == 61 and stats["edges"] == g.number_of_edges()
    assert all(e["ts"] == DEFAULT_TS for e in events)
    truth = list(TRUTH_READERS["graph"](path))
    assert {row["user_id"]: row["tribes"] for row in truth} == {
        str(n): [str(b)] for n, b in g.nodes(data="block")
    }


def test_directed_edges_with_times_are_follows_or_threaded_messages_as_an_edge_list_gives_them(
    tmp_path,
):
    g = nx.MultiDiGraph()
    for i, (a, b) in enumerate(
        [("x", "y"), ("y", "x"), ("x", "z"), ("z", "x"), ("y", "z"), ("y", "x")]
    ):
        g.add_edge(a, b, time=1_700_000_000 + 3600 * (5 - i))  # stored latest first
    g.add_edge("z", "z", time=1_700_000_000)
    path = tmp_path / "m.graphml"
    nx.write_graphml(g, path)
    follows = collect(IMPORTERS["graph"](path))
    assert [(e["src"], e["dst"]) for e in follows if e["type"] == "follow"] == [
        ("y", "x"),
        ("y", "z"),
        ("z", "x"),
        ("x", "z"),
        ("y", "x"),
        ("x", "y"),
    ]  # time order, one way each
    assert {e["ts"] for e in follows if e["type"] == "user"} == {1_700_000_000}
    stats: dict = {}
    messages = collect(IMPORTERS["graph"](path, kind="message", stats=stats))
    lines = tmp_path / "m.txt"  # the same messages as an edge list, oldest first
    ordered = sorted(((t, a, b) for a, b, t in g.edges(data="time") if a != b))
    lines.write_text("".join(f"{a} {b} {t}\n" for t, a, b in ordered))
    reference = collect(IMPORTERS["edgelist"](lines, kind="message"))
    posts = [e for e in messages if e["type"] == "post"]
    renumber = {p["id"]: i for i, p in enumerate(posts)}
    renumber_ref = {p["id"]: i for i, p in enumerate(reference)}

    def shape(events, ids):
        return [(e["author"], e["ts"], e["text"], ids.get(e.get("reply_to"))) for e in events]

    assert shape(posts, renumber) == shape(reference, renumber_ref)
    assert stats["self_loops"] == 1 and stats["replies"] == 2 and stats["roots"] == 4


def test_lfr_communities_in_memory_are_named_by_their_smallest_member():
    g = nx.LFR_benchmark_graph(250, 3, 1.5, 0.1, average_degree=5, min_community=20, seed=10)
    truth = {row["user_id"]: row["tribes"] for row in truth_from_networkx(g)}
    for node, community in g.nodes(data="community"):
        assert truth[str(node)] == [str(min(community, key=str))]
    assert len({t[0] for t in truth.values()}) == len(
        {frozenset(c) for _, c in g.nodes(data="community")}
    )
    events = list(events_from_networkx(g))
    assert len(_follows(events)) == 2 * g.number_of_edges() - 2 * nx.number_of_selfloops(g)


def test_node_attributes_lists_and_a_named_attribute():
    g = nx.Graph([("a", "b")])
    g.nodes["a"]["Department"], g.nodes["b"]["Department"] = "d1", "d2"
    g.nodes["a"]["groups"] = ["g1", "g2"]
    # 'groups' comes first
    assert list(truth_from_networkx(g)) == [{"user_id": "a", "tribes": ["g1", "g2"]}]
    assert [row["tribes"] for row in truth_from_networkx(g, "Department")] == [["d1"], ["d2"]]


@pytest.mark.parametrize(
    "content, name, problem",
    [
        ("1 2\n", "g.txt", "unknown graph format"),
        ("<graphml><graph", "g.graphml", "not a readable graphml file"),
        ("graph [ node [ id 0 ] node [ id 0 ] ]", "g.gml", "not a readable gml file"),
        ('{"edges": []}', "g.json", "not a readable node-link file"),
    ],
)
def test_unreadable_files_are_input_errors_naming_the_file(tmp_path, content, name, problem):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=problem) as caught:
        read_graph(path)
    assert caught.value.path == str(path)


def test_missing_attributes_are_input_errors(tmp_path):
    g = nx.Graph([(1, 2), (2, 3)])
    g.edges[1, 2]["ts"] = 5
    with pytest.raises(InputError, match="edge 2 -> 3 has no 'ts'"):
        list(events_from_networkx(g))
    with pytest.raises(InputError, match="no edge time attribute 'when'; the graph has: ts"):
        list(events_from_networkx(g, time_attr="when"))
    with pytest.raises(InputError, match="needs the time of each edge"):
        list(events_from_networkx(nx.Graph([(1, 2)]), kind="message"))
    with pytest.raises(InputError, match="no node attribute to take as ground truth"):
        list(truth_from_networkx(g))
    g.edges[2, 3]["ts"] = "not a time"
    with pytest.raises(InputError, match="time of edge 2 -> 3"):
        list(events_from_networkx(g))


def test_cli_imports_a_planted_graph_and_evaluates_against_its_blocks(
    tmp_path, capsys, monkeypatch
):
    import tribes.importers.graph as graph_importer

    path = _write(_planted(), tmp_path / "planted.graphml")
    events, truth = tmp_path / "e.jsonl", tmp_path / "t.jsonl"
    reads = []
    monkeypatch.setattr(
        graph_importer, "read_graph", lambda src: reads.append(src) or read_graph(src)
    )
    assert (
        main(["-q", "import", "graph", str(path), "--out", str(events), "--truth", str(truth)]) == 0
    )
    assert reads == [str(path)]  # one parse serves the truth and the events
    monkeypatch.undo()
    assert (
        main(
            [
                "-q",
                "evaluate",
                str(events),
                "--split",
                "edges",
                "--models",
                "tribes",
                "-k",
                "5",
                "--json",
                "--labels",
                str(truth),
            ]
        )
        == 0
    )
    quality = orjson.loads(capsys.readouterr().out)["tribes"]
    assert quality["nmi"] > 0.8  # three dense blocks, found
    # A missing truth attribute stops before any events are written; a flag of another format is refused.
    assert (
        main(
            [
                "-q",
                "import",
                "graph",
                str(path),
                "--out",
                str(tmp_path / "x.jsonl"),
                "--truth",
                str(tmp_path / "y.jsonl"),
                "--truth-attr",
                "club",
            ]
        )
        == 2
    )
    assert "no truth attribute 'club'; the graph has: block" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "y.jsonl").exists()
    edges = tmp_path / "edges.txt"
    edges.write_text("1 2\n")
    assert main(["-q", "import", "edgelist", str(edges), "--time-attr", "ts"]) == 2
    assert "--time-attr: applies to the graph format only" in capsys.readouterr().err


def test_a_failed_import_writes_neither_file_and_the_truth_attribute_is_named(tmp_path, capsys):
    g = _planted()
    g.add_edge(0, 1, ts=5)  # one edge with a time: every edge then needs one
    path = _write(g, tmp_path / "half_timed.graphml")
    events, truth = tmp_path / "e.jsonl", tmp_path / "t.jsonl"
    assert main(["import", "graph", str(path), "--out", str(events), "--truth", str(truth)]) == 2
    assert "has no 'ts'" in capsys.readouterr().err
    assert not events.exists() and not truth.exists()  # the truth, read first, is not left behind
    g = _planted()
    g.add_node(61)  # no block
    path = _write(g, tmp_path / "planted.graphml")
    assert main(["import", "graph", str(path), "--out", str(events), "--truth", str(truth)]) == 0
    assert (
        "wrote 61 ground-truth records (node attribute 'block'; 1 nodes have none"
        in capsys.readouterr().err
    )
    assert events.exists() and len(truth.read_text().splitlines()) == 61


def test_nodes_that_would_be_one_user_are_an_input_error(tmp_path):
    path = tmp_path / "ids.json"
    path.write_text(
        json.dumps(
            {
                "nodes": [{"id": 1, "club": "a"}, {"id": "1", "club": "b"}, {"id": 2, "club": "a"}],
                "links": [{"source": 1, "target": 2}, {"source": "1", "target": 2}],
            }
        )
    )
    with pytest.raises(InputError, match="nodes 1 and '1' would both be user '1'") as caught:
        list(IMPORTERS["graph"](path))
    assert caught.value.path == str(path)
    with pytest.raises(InputError, match="would both be user"):
        list(TRUTH_READERS["graph"](path))


def test_the_module_examples_run():
    import doctest

    from tribes.importers import graph

    assert doctest.testmod(graph).failed == 0
