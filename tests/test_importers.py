"""Importers: exact events on tiny hand-written dumps, then sanity checks on the real dumps."""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from pathlib import Path

import pytest

from tribes.errors import InputError
from tribes.events import validate
from tribes.importers import IMPORTERS, TRUTH_READERS, get_importer
from tribes.importers._common import DEFAULT_TS
from tribes.importers.snap_ego import interest_name
from tribes.importers.stackexchange import html_to_text, parse_tags

from .conftest import shared_data


def collect(events) -> list[dict]:
    """All events, each validated; reply targets and users must come before their use."""
    out, posts, users = [], set(), set()
    for event in events:
        validate(event)
        if event["type"] == "user":
            users.add(event["id"])
        elif event["type"] == "post":
            assert event.get("reply_to") is None or event["reply_to"] in posts, event
            posts.add(event["id"])
        out.append(event)
    return out


def test_registry():
    assert set(IMPORTERS) == {"stackexchange", "snap-ego", "edgelist", "graph"}
    assert set(TRUTH_READERS) == {"snap-ego", "graph"}
    assert get_importer("edgelist") is IMPORTERS["edgelist"]
    with pytest.raises(InputError, match="unknown format 'csv'"):
        get_importer("csv")


# --------------------------------------------------------------------------- Stack Exchange

SE_USERS = """\ufeff<?xml version="1.0" encoding="utf-8"?>
<users>
  <row Id="-1" CreationDate="2018-03-09T18:48:09.477" DisplayName="Community" AboutMe="&lt;p&gt;Bot&lt;/p&gt;" />
  <row Id="10" CreationDate="2018-03-10T10:00:00.000" DisplayName=" Alice " AboutMe="&lt;p&gt;I like &amp;lt;b&amp;gt; &amp;amp; &lt;b&gt;qubits&lt;/b&gt;&lt;/p&gt;&#xA;&lt;p&gt;Bye&lt;/p&gt;" />
  <row Id="11" CreationDate="2018-03-11T11:00:00.000" DisplayName="Bob" />
  <row Id="12" CreationDate="2018-03-12T12:00:00.000" DisplayName="Carol" />
</users>
"""
SE_POSTS = """<?xml version="1.0" encoding="utf-8"?>
<posts>
  <row Id="1" PostTypeId="1" CreationDate="2018-03-12T17:00:45.567" OwnerUserId="10" Title="What  is a qubit?" Body="&lt;p&gt;Is &amp;lt;0| a &amp;amp; state?&lt;/p&gt;&#xA;&#xA;&lt;pre&gt;&lt;code&gt;x = 1&#xA;if x &amp;lt; 2: print(x)&#xA;&lt;/code&gt;&lt;/pre&gt;" Tags="&lt;qubit&gt;&lt;Basics&gt;" />
  <row Id="4" PostTypeId="2" ParentId="1" CreationDate="2018-03-12T18:00:00.000" OwnerUserId="11" Body="&lt;p&gt;A &lt;em&gt;two&lt;/em&gt;-level&lt;br/&gt;system. #include&lt;/p&gt;" />
  <row Id="2" PostTypeId="1" CreationDate="2018-03-13T09:00:00.000" OwnerDisplayName="user99" Title="Bell states" Body="&lt;p&gt;Entangled?&lt;/p&gt;" Tags="|entanglement|bell-basis|" />
  <row Id="3" PostTypeId="1" CreationDate="2018-03-14T09:00:00.000" OwnerUserId="11" Title="Gates" Body="" Tags="&lt;gates&gt;" />
  <row Id="5" PostTypeId="2" ParentId="99" CreationDate="2018-03-14T10:00:00.000" OwnerUserId="10" Body="&lt;p&gt;orphan&lt;/p&gt;" />
  <row Id="6" PostTypeId="4" CreationDate="2018-03-14T11:00:00.000" OwnerUserId="-1" Body="&lt;p&gt;wiki excerpt&lt;/p&gt;" />
  <row Id="7" PostTypeId="5" CreationDate="2018-03-14T11:00:00.000" OwnerUserId="-1" Body="&lt;p&gt;wiki&lt;/p&gt;" />
</posts>
"""
SE_COMMENTS = """<?xml version="1.0" encoding="utf-8"?>
<comments>
  <row Id="1" PostId="4" CreationDate="2018-03-12T19:00:00.000" UserId="10" Text="Nice,   thanks &lt;3" />
  <row Id="2" PostId="6" CreationDate="2018-03-14T12:00:00.000" UserId="11" Text="on a tag wiki" />
  <row Id="3" PostId="2" CreationDate="2018-03-15T12:00:00.000" Text="from a deleted account" />
</comments>
"""


@pytest.fixture
def se_dump(tmp_path: Path) -> Path:
    folder = tmp_path / "se"
    folder.mkdir()
    (folder / "Users.xml").write_text(SE_USERS, encoding="utf-8")
    (folder / "Posts.xml").write_text(SE_POSTS, encoding="utf-8")
    (folder / "Comments.xml").write_text(SE_COMMENTS, encoding="utf-8")
    return folder


def test_stackexchange_exact_events(se_dump: Path):
    stats: dict = {}
    events = collect(IMPORTERS["stackexchange"](se_dump, stats=stats))
    user = {"type": "user"}
    q1_text = "What is a qubit?\n\nIs <0| a & state? x = 1 if x < 2: print(x)"
    assert events == [
        {
            **user,
            "id": "-1",
            "ts": "2018-03-09T18:48:09.477Z",
            "name": "Community",
            "bio": "Bot",
            "discoverable": False,
        },
        {
            **user,
            "id": "10",
            "ts": "2018-03-10T10:00:00.000Z",
            "name": "Alice",
            "bio": "I like <b> & qubits Bye",
        },
        {**user, "id": "11", "ts": "2018-03-11T11:00:00.000Z", "name": "Bob"},
        {**user, "id": "12", "ts": "2018-03-12T12:00:00.000Z", "name": "Carol"},
        {
            "type": "post",
            "id": "p1",
            "author": "10",
            "ts": "2018-03-12T17:00:45.567Z",
            "text": q1_text,
            "tags": ["qubit", "Basics"],
        },
        {
            **user,
            "id": "deleted:user99",
            "ts": "2018-03-13T09:00:00.000Z",
            "name": "user99",
            "discoverable": False,
        },
        {
            "type": "post",
            "id": "p2",
            "author": "deleted:user99",
            "ts": "2018-03-13T09:00:00.000Z",
            "text": "Bell states\n\nEntangled?",
            "tags": ["entanglement", "bell-basis"],
        },
        {
            "type": "post",
            "id": "p3",
            "author": "11",
            "ts": "2018-03-14T09:00:00.000Z",
            "text": "Gates",
            "tags": ["gates"],
        },
        {
            "type": "post",
            "id": "p4",
            "author": "11",
            "ts": "2018-03-12T18:00:00.000Z",
            "text": "A two-level system. #include",
            "tags": [],
            "reply_to": "p1",
        },
        {
            "type": "post",
            "id": "c1",
            "author": "10",
            "ts": "2018-03-12T19:00:00.000Z",
            "text": "Nice, thanks <3",
            "tags": [],
            "reply_to": "p4",
        },
        {
            **user,
            "id": "deleted",
            "ts": "2018-03-15T12:00:00.000Z",
            "name": "(deleted account)",
            "discoverable": False,
        },
        {
            "type": "post",
            "id": "c3",
            "author": "deleted",
            "ts": "2018-03-15T12:00:00.000Z",
            "text": "from a deleted account",
            "tags": [],
            "reply_to": "p2",
        },
    ]
    assert stats["questions"] == 3 and stats["answers"] == 1 and stats["comments"] == 2
    assert stats["orphans"] == 2  # the answer to post 99 and the comment on the tag wiki
    assert stats["deleted_authors"] == 2
    assert stats["posts_type4_skipped"] == stats["posts_type5_skipped"] == 1
    # explicit empty tags: "#include" in an answer is code, not a hashtag
    assert validate(events[8]).tags == ()


def test_stackexchange_active_only(se_dump: Path):
    events = collect(IMPORTERS["stackexchange"](se_dump, active_only=True))
    users = [e["id"] for e in events if e["type"] == "user"]
    assert users == ["-1", "10", "11", "deleted:user99", "deleted"]  # Carol never posted


def test_stackexchange_bad_input(tmp_path: Path, se_dump: Path):
    with pytest.raises(InputError, match=r"Posts\.xml not found"):
        list(IMPORTERS["stackexchange"](tmp_path))
    posts = se_dump / "Posts.xml"
    posts.write_text(SE_POSTS.replace("</posts>", "<row Id='9'"), encoding="utf-8")
    with pytest.raises(
        InputError, match=r"Posts\.xml:10: malformed XML: unclosed token \(column 0\)$"
    ) as err:
        list(IMPORTERS["stackexchange"](se_dump))
    assert err.value.path == str(posts) and err.value.line == 10
    posts.write_text(SE_POSTS.replace("2018-03-13T09:00:00.000", "yesterday"), encoding="utf-8")
    with pytest.raises(InputError, match="row Id=2") as err:
        list(IMPORTERS["stackexchange"](se_dump))
    assert err.value.field == "CreationDate"


def test_html_to_text_and_tags():
    assert html_to_text("<p>a&nbsp;&amp;&#39;b</p><ul><li>x</li><li>y</li></ul>") == "a &'b x y"
    assert html_to_text("<pre><code>for i in range(3):\n    print(i &lt; 2)</code></pre>") == (
        "for i in range(3): print(i < 2)"
    )
    assert html_to_text("E = mc<sup>2</sup>, <b>bold</b>") == "E = mc2, bold"
    assert parse_tags("<a><b-c>") == parse_tags("|a|b-c|") == ["a", "b-c"]
    assert parse_tags("") == []


# --------------------------------------------------------------------------- SNAP ego networks

# Two egos, 9 and 10 (10 sorts after 9 numerically, before it as text). Ego 9's .featnames has a
# hashtag, a mention, a hashtag with punctuation and a digit-only hashtag.
SNAP_FILES = {
    "9.edges": "3 4\n4 3\n5 5\n",
    "9.feat": "3 1 0 1 0\n4 0 1 0 1\n6 0 0 0 0\n",
    "9.egofeat": "1 0 1 0\n",
    "9.featnames": "0 #Python\n1 @bob\n2 #ML!\n3 #2012\n",
    "9.circles": "friends\t3\t4\t3\nlonely\n",
    "10.edges": "9 3\r\n",
    "10.feat": "9 1 0\r\n3 0 1\r\n",
    "10.egofeat": "0 0\r\n",
    "10.featnames": "0 #ml\r\n1 #python\r\n",
    "10.circles": "0\t9\t3\r\n",
}


def _user(uid: str, interests: list[str] | None = None) -> dict:
    event = {"type": "user", "id": uid, "ts": DEFAULT_TS}
    return event if interests is None else {**event, "interests": interests}


def _follows(*pairs: str) -> list[dict]:
    return [
        {"type": "follow", "src": p.split(">")[0], "dst": p.split(">")[1], "ts": DEFAULT_TS}
        for p in pairs
    ]


SNAP_EVENTS = [
    _user("3", ["python", "ml"]),  # python twice (egos 9 and 10), ml once
    _user("4"),  # only @bob and #2012: no interests
    _user("5"),
    _user("6"),
    _user("9", ["ml", "python"]),  # egofeat of 9 (python, ml) + row in 10 (ml)
    _user("10"),
    *_follows("3>4", "4>3", "9>3", "9>4", "9>5", "9>6", "10>3", "10>9"),
]
SNAP_TRUTH = [
    {"circle_id": "9:friends", "ego": "9", "members": ["3", "4"]},
    {"circle_id": "10:0", "ego": "10", "members": ["9", "3"]},
]


@pytest.fixture
def snap_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ego"
    folder.mkdir()
    for name, text in SNAP_FILES.items():
        (folder / name).write_bytes(text.encode())
    (folder / "readme.txt").write_text("not an ego file")
    return folder


@pytest.fixture
def snap_tar(tmp_path: Path, snap_folder: Path) -> Path:
    archive = tmp_path / "ego.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in reversed(SNAP_FILES):  # archive order differs from the folder's
            tar.add(snap_folder / name, arcname=f"ego/{name}")
    return archive


def test_snap_ego_exact_events(snap_folder: Path):
    stats: dict = {}
    assert collect(IMPORTERS["snap-ego"](snap_folder, stats=stats)) == SNAP_EVENTS
    assert stats["self_loops"] == 1 and stats["egos"] == 2 and stats["follows"] == 8
    assert list(TRUTH_READERS["snap-ego"](snap_folder)) == SNAP_TRUTH


def test_snap_ego_tar_equals_folder(snap_folder: Path, snap_tar: Path):
    importer, truth = IMPORTERS["snap-ego"], TRUTH_READERS["snap-ego"]
    assert collect(importer(snap_tar)) == SNAP_EVENTS
    assert list(truth(snap_tar)) == SNAP_TRUTH
    assert list(importer(snap_tar, limit_egos=1)) == list(importer(snap_folder, limit_egos=1))
    assert list(truth(snap_tar, limit_egos=1)) == SNAP_TRUTH[:1]


def test_snap_ego_options(snap_folder: Path):
    importer = IMPORTERS["snap-ego"]
    first = collect(importer(snap_folder, limit_egos=1, ts="2020-01-01T00:00:00Z"))
    assert {e["id"] for e in first if e["type"] == "user"} == {"3", "4", "5", "6", "9"}
    assert all(e["ts"] == "2020-01-01T00:00:00Z" for e in first)
    capped = collect(importer(snap_folder, max_interests=1))
    assert [e.get("interests") for e in capped[:6]] == [["python"], None, None, None, ["ml"], None]
    both = collect(importer(snap_folder, undirected=True))
    pairs = {(e["src"], e["dst"]) for e in both if e["type"] == "follow"}
    assert len(pairs) == 14 and all((d, s) in pairs for s, d in pairs)
    with pytest.raises(InputError, match="max_interests"):
        list(importer(snap_folder, max_interests=0))


def test_snap_ego_undirected_auto(tmp_path: Path, snap_folder: Path):
    renamed = snap_folder.rename(tmp_path / "facebook")
    follows = [e for e in IMPORTERS["snap-ego"](renamed) if e["type"] == "follow"]
    assert len(follows) == 14


def test_snap_ego_bad_input(tmp_path: Path, snap_folder: Path):
    with pytest.raises(InputError, match="expected a folder of ego files or a tar archive"):
        list(IMPORTERS["snap-ego"](snap_folder / "readme.txt"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no ego network files"):
        list(IMPORTERS["snap-ego"](empty))
    (snap_folder / "9.edges").write_text("3 4\n4 3 7\n")
    with pytest.raises(InputError, match=r"9\.edges:2: expected 'SRC DST'"):
        list(IMPORTERS["snap-ego"](snap_folder))
    (snap_folder / "9.edges").write_text("3 4\n")
    (snap_folder / "9.feat").write_text("3 1 0 1 0\n4 0 1 0\n")
    with pytest.raises(InputError, match=r"9\.feat:2: 3 features, earlier rows have 4"):
        list(IMPORTERS["snap-ego"](snap_folder))
    (snap_folder / "9.feat").write_text("3 1 0 1\n")
    with pytest.raises(InputError, match=r"3 feature columns but \.featnames lists 4"):
        list(IMPORTERS["snap-ego"](snap_folder))


def test_interest_names():
    assert interest_name("#Obama.") == "obama"
    assert interest_name("#%ing") is None and interest_name("#12") is None
    assert interest_name("@nytimes") is None
    assert interest_name("education;school;id;anonymized feature 84") == "education-school-84"
    assert interest_name("location;id;anonymized feature 127") == "location-127"
    assert interest_name("gender;anonymized feature 77") is None
    assert interest_name("last_name;anonymized feature 110") is None


# --------------------------------------------------------------------------- edge lists

EDGELIST = (
    "# SRC DST TS\n% another comment\n\n1 2 100\n2 1 200\n3 3 300\n1 3\n2 1 2004-04-15T00:00:00Z\n"
)


@pytest.fixture
def edges_file(tmp_path: Path) -> Path:
    path = tmp_path / "edges.txt"
    path.write_text(EDGELIST)
    return path


def test_edgelist_follows(edges_file: Path):
    stats: dict = {}
    events = collect(IMPORTERS["edgelist"](edges_file, stats=stats))
    follow = {"type": "follow"}
    assert events == [
        {**follow, "src": "1", "dst": "2", "ts": 100},
        {**follow, "src": "2", "dst": "1", "ts": 200},
        {**follow, "src": "1", "dst": "3", "ts": DEFAULT_TS},
        {**follow, "src": "2", "dst": "1", "ts": "2004-04-15T00:00:00Z"},
    ]
    assert stats == {
        "lines": 8,
        "comments": 3,
        "self_loops": 1,
        "events": 4,
        "times": "1970-01-01T00:01:40Z … 2012-01-01T00:00:00Z",
    }  # a line without one: DEFAULT_TS
    both = collect(IMPORTERS["edgelist"](edges_file, undirected=True))
    assert [(e["src"], e["dst"]) for e in both][:2] == [("1", "2"), ("2", "1")]
    assert len(both) == 8


def test_edgelist_messages(edges_file: Path):
    events = collect(IMPORTERS["edgelist"](edges_file, kind="message", ts=0))
    post = {"type": "post"}
    assert events == [  # in time order: the line without a time (ts=0) comes first
        {**post, "id": "m7", "author": "1", "ts": 0, "text": "@3"},
        {**post, "id": "m4", "author": "1", "ts": 100, "text": "@2"},
        {**post, "id": "m5", "author": "2", "ts": 200, "text": "", "reply_to": "m4"},
        {
            **post,
            "id": "m8",
            "author": "2",
            "ts": "2004-04-15T00:00:00Z",
            "text": "",
            "reply_to": "m4",
        },
    ]


@pytest.mark.parametrize("from_stdin", [False, True])
def test_edgelist_messages_out_of_time_order_are_threaded_in_time_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_stdin: bool
):
    # Grouped by sender, not by time: 1's answer (line 3) is dated after 2's message (line 1).
    lines = (
        "2 1 300\n2 3 100\n1 2 2024-01-01T00:00:00Z\n3 2 150.5\n"  # int, float and RFC 3339 times
    )
    path = tmp_path / "by_sender.txt"
    path.write_text(lines)
    if from_stdin:  # read once: held and sorted
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(lines.encode())))
    events = collect(IMPORTERS["edgelist"]("-" if from_stdin else path, kind="message"))
    assert [(e["id"], e["ts"], e.get("reply_to")) for e in events] == [
        ("m2", 100, None),
        ("m4", 150.5, "m2"),
        ("m1", 300, None),
        ("m3", "2024-01-01T00:00:00Z", "m1"),
    ]
    assert [type(e["ts"]) for e in events] == [int, float, int, str]  # each time as written
    sorted_file = tmp_path / "sorted.txt"
    sorted_file.write_text("2 3 100\n3 2 150.5\n2 1 300\n1 2 2024-01-01T00:00:00Z\n")
    # streamed: already in order
    again = collect(IMPORTERS["edgelist"](sorted_file, kind="message"))
    assert [(e["author"], e["ts"], "reply_to" in e) for e in again] == [
        (e["author"], e["ts"], "reply_to" in e) for e in events
    ]


def test_edgelist_messages_from_a_pipe_are_read_once(tmp_path: Path):
    # `tribes import edgelist <(zcat messages.gz) --kind message`: a second read would find nothing.
    import os
    import threading

    fifo = tmp_path / "messages.pipe"
    os.mkfifo(fifo)
    result: dict = {}
    reader = threading.Thread(
        target=lambda: result.update(events=collect(IMPORTERS["edgelist"](fifo, kind="message"))),
        daemon=True,
    )
    reader.start()
    fifo.write_text("1 2 100\n2 1 200\n")  # (opening blocks until the reader opens its end)
    reader.join(10)
    if reader.is_alive():  # a second read waits for another writer: give it one, empty, and fail
        fifo.write_text("")
        reader.join(10)
        pytest.fail(f"the pipe was opened twice; the second read gave {result.get('events')}")
    assert [(e["id"], e.get("reply_to")) for e in result["events"]] == [("m1", None), ("m2", "m1")]


def test_cli_imports_an_edge_list_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    from tribes.cli import main

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"2 1 200\n1 2 100\n")))
    out = tmp_path / "m.jsonl"
    assert main(["import", "edgelist", "-", "--kind", "message", "--out", str(out)]) == 0
    assert [line.count('"reply_to"') for line in out.read_text().splitlines()] == [0, 1]
    assert "order held and sorted by time (read once)" in capsys.readouterr().err
    # only an edge list is read from stdin
    assert main(["import", "graph", "-", "--out", str(out)]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_edgelist_csv_fields_follow_csv_quoting_and_a_bom_is_not_part_of_the_first_id(
    tmp_path: Path,
):
    path = tmp_path / "people.csv"
    path.write_bytes('\ufeffsource,target\n"smith, jo",ann\n"say ""hi""",ann\nann , bo\n'.encode())
    events = collect(IMPORTERS["edgelist"](path, header=True))
    assert [(e["src"], e["dst"]) for e in events] == [
        ("smith, jo", "ann"),
        ('say "hi"', "ann"),
        ("ann", "bo"),
    ]
    headless = tmp_path / "plain.csv"
    headless.write_bytes("\ufeffa,b\n".encode())
    assert [(e["src"], e["dst"]) for e in collect(IMPORTERS["edgelist"](headless))] == [("a", "b")]


def test_edgelist_gzip(tmp_path: Path, edges_file: Path):
    packed = tmp_path / "edges.txt.gz"
    packed.write_bytes(gzip.compress(edges_file.read_bytes()))
    assert list(IMPORTERS["edgelist"](packed)) == list(IMPORTERS["edgelist"](edges_file))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("1 2 3 4", "got 4 columns"),
        ("7", "got 1 columns"),
        ("1 2 soon", "ts: cannot parse timestamp 'soon'"),
        ("1 2 1700000000000", "ts: 1700000000000 is out of range"),
    ],
)
def test_edgelist_malformed_line(tmp_path: Path, line: str, problem: str):
    path = tmp_path / "bad.txt"
    path.write_text(f"# header\n1 2 5\n{line}\n4 5 6\n")
    with pytest.raises(InputError, match=re.escape(problem)) as err:
        list(IMPORTERS["edgelist"](path))
    assert str(err.value).startswith(f"{path}:3: ")


def test_edgelist_konect_layout_takes_the_named_columns(tmp_path: Path):
    # KONECT: "% sym ..." comments, then SRC DST WEIGHT TS; the weight is ignored.
    path = tmp_path / "out.reply"
    path.write_text(
        "% asym unweighted\n% 3 3 3\n1 2 1 1148000000\n2 1 5 1148000060\n2 3 1 1148000120 x\n"
    )
    events = collect(IMPORTERS["edgelist"](path, kind="message", columns="src,dst,-,ts"))
    assert [(e["author"], e["ts"], e.get("reply_to")) for e in events] == [
        ("1", 1148000000, None),
        ("2", 1148000060, "m3"),
        ("2", 1148000120, None),
    ]
    # Without the layout the 4-column lines are an error naming the first one.
    with pytest.raises(InputError, match="got 4 columns") as err:
        list(IMPORTERS["edgelist"](path))
    assert str(err.value).startswith(f"{path}:3: ")


def test_edgelist_csv_with_header_and_columns_in_any_order(tmp_path: Path):
    path = tmp_path / "ratings.csv"
    path.write_text("TIME,SOURCE,TARGET,RATING\n1289241911, 6 ,2,4\n1289241941,6,5,-2\n")
    stats: dict = {}
    # a .csv file: comma-separated without being told
    events = collect(IMPORTERS["edgelist"](path, columns="ts,src,dst,-", header=True, stats=stats))
    assert events == [
        {"type": "follow", "src": "6", "dst": "2", "ts": 1289241911},
        {"type": "follow", "src": "6", "dst": "5", "ts": 1289241941},
    ]
    assert stats["header"] == 1 and stats["events"] == 2
    # Without header=True the header line's TIME is not a timestamp: FILE:1.
    with pytest.raises(InputError, match="cannot parse timestamp 'TIME'") as err:
        list(IMPORTERS["edgelist"](path, columns="ts,src,dst,-"))
    assert str(err.value).startswith(f"{path}:1: ")


def test_edgelist_tab_separated_ids_may_hold_spaces(tmp_path: Path):
    path = tmp_path / "edges.tsv"
    path.write_text("ada lovelace\tcharles babbage\t100\nb\tc\n")
    events = collect(IMPORTERS["edgelist"](path, sep="\\t"))  # as typed on a command line
    assert [(e["src"], e["dst"], e["ts"]) for e in events] == [
        ("ada lovelace", "charles babbage", 100),
        ("b", "c", DEFAULT_TS),
    ]
    assert collect(IMPORTERS["edgelist"](path, sep="\t")) == events


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"columns": "src,dst,weight"}, "unknown column name(s) 'weight'"),
        ({"columns": "src,-,ts"}, "must name both src and dst"),
        ({"columns": "src,dst,ts,ts"}, "column 'ts' named twice"),
        ({"sep": ";;"}, "sep must be one character"),
        ({"sep": " "}, "sep must be one character"),
    ],
)
def test_edgelist_bad_layout_options(edges_file: Path, options: dict, problem: str):
    with pytest.raises(InputError, match=re.escape(problem)):
        list(IMPORTERS["edgelist"](edges_file, **options))


def test_edgelist_short_line_for_the_layout_names_file_and_line(tmp_path: Path):
    path = tmp_path / "short.txt"
    path.write_text("1 2 0.5 100\n3 4 0.5\n")
    with pytest.raises(InputError, match="expected at least 4 columns, got 3") as err:
        list(IMPORTERS["edgelist"](path, columns="src,dst,-,ts"))
    assert str(err.value).startswith(f"{path}:2: ")


def test_edgelist_bad_options(edges_file: Path):
    with pytest.raises(InputError, match="unknown kind"):
        list(IMPORTERS["edgelist"](edges_file, kind="like"))
    with pytest.raises(InputError, match="undirected"):
        list(IMPORTERS["edgelist"](edges_file, kind="message", undirected=True))
    with pytest.raises(InputError, match="ts"):
        list(IMPORTERS["edgelist"](edges_file, ts="someday"))


# --------------------------------------------------------------------------- real dumps

_HTML = re.compile(
    r"</?(?:p|a|div|span|pre|code|em|strong|b|i|br|hr|img|ul|ol|li|h\d|"
    r"blockquote|sup|sub|table|tr|td)(?:\s[^<>]*)?/?>|&(?:[a-z]+|#x?[0-9a-f]+);",
    re.IGNORECASE,
)


@pytest.mark.realdata
def test_real_stackexchange():
    stats: dict = {}
    events = collect(IMPORTERS["stackexchange"](shared_data("se-quantumcomputing"), stats=stats))
    posts = [e for e in events if e["type"] == "post"]
    roots = [e for e in posts if "reply_to" not in e]
    assert len(roots) == 612
    assert len(posts) - len(roots) == 1060 + 3413  # answers + comments
    assert all(e["tags"] for e in roots)
    assert not [e["id"] for e in posts if _HTML.search(e["text"])]
    assert stats["orphans"] == 0
    users = {e["id"] for e in events if e["type"] == "user"}
    assert {e["author"] for e in posts} <= users


@pytest.mark.realdata
def test_real_ego_twitter_first_egos():
    archive = shared_data("ego-twitter/twitter.tar.gz")
    events = collect(IMPORTERS["snap-ego"](archive, limit_egos=5))
    users = {e["id"]: e for e in events if e["type"] == "user"}
    follows = [(e["src"], e["dst"]) for e in events if e["type"] == "follow"]
    assert len(follows) == len(set(follows)) > 5000
    assert {u for pair in follows for u in pair} <= set(users)
    with_tags = [u for u in users.values() if u.get("interests")]
    assert len(with_tags) > len(users) / 3
    assert all(
        not t.startswith(("#", "@")) and t == t.lower() and not t.isdigit()
        for u in with_tags
        for t in u["interests"]
    )
    circles = list(TRUTH_READERS["snap-ego"](archive, limit_egos=5))
    assert len({c["ego"] for c in circles}) == 5
    assert all(c["members"] and set(c["members"]) <= set(users) for c in circles)
    assert circles[0]["circle_id"] == "12831:1"


@pytest.mark.realdata
def test_real_ego_facebook():
    folder = shared_data("ego-facebook/facebook")
    events = collect(IMPORTERS["snap-ego"](folder))
    follows = {(e["src"], e["dst"]) for e in events if e["type"] == "follow"}
    assert len(follows) == 2 * 88_234  # facebook_combined.txt, both directions
    assert all((d, s) in follows for s, d in follows)
    interests = {t for e in events if e["type"] == "user" for t in e.get("interests", [])}
    assert any(t.startswith("education-school-") for t in interests)
    assert not any(t.startswith(("gender", "birthday", "last-name")) for t in interests)
    circles = list(TRUTH_READERS["snap-ego"](folder))
    assert len(circles) == 193
    assert len({m for c in circles for m in c["members"]}) == 2_884


@pytest.mark.realdata
def test_real_collegemsg():
    path = shared_data("collegemsg/CollegeMsg.txt")
    stats: dict = {}
    follows = collect(IMPORTERS["edgelist"](path, stats=stats))
    assert len(follows) == 59_835 - stats["self_loops"]
    messages = collect(IMPORTERS["edgelist"](path, kind="message"))
    assert len(messages) == len(follows)
    replies = sum(1 for e in messages if "reply_to" in e)
    assert replies > len(messages) / 2
