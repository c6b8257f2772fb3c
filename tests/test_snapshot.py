"""read_snapshot: the store as dense arrays, active relations only, threads resolved."""

from __future__ import annotations

import gc

import numpy as np
import orjson
import pytest

from tribes.ingest import ingest_lines, ingest_objects
from tribes.store import reads
from tribes.store.reads import read_snapshot
from tribes.store.writer import add_feedback
from tribes.synth import SynthConfig, generate

from .conftest import lines


def test_snapshot_arrays(store):
    ingest_lines(
        store,
        lines(
            {"type": "user", "id": "b", "ts": 5, "interests": ["#x"], "discoverable": False},
            {"type": "follow", "src": "c", "dst": "a", "ts": 10},
            {"type": "follow", "src": "a", "dst": "b", "ts": 11},
            {"type": "follow", "src": "a", "dst": "c", "ts": 12},
            {"type": "unfollow", "src": "a", "dst": "c", "ts": 13},
            {"type": "block", "src": "b", "dst": "c", "ts": 14},
            {"type": "mute", "src": "c", "dst": "b", "ts": 15},
            {"type": "post", "id": "q2", "author": "b", "ts": 21, "text": "re", "reply_to": "q1"},
            {"type": "post", "id": "q1", "author": "a", "ts": 20, "text": "root #y"},
            {
                "type": "post",
                "id": "z",
                "author": "c",
                "ts": 22,
                "text": "orphan",
                "reply_to": "gone",
            },
        ),
        source="t",
    )
    snap = read_snapshot(store)
    assert list(snap.user_ids) == ["a", "b", "c"]
    assert list(snap.discoverable) == [True, False, True]
    assert snap.interests == [(), ("x",), ()]
    assert list(zip(snap.follow_src, snap.follow_dst, strict=True)) == [(0, 1), (2, 0)]
    assert (list(snap.block_src), list(snap.block_dst)) == ([1], [2])
    assert (list(snap.mute_src), list(snap.mute_dst)) == ([2], [1])
    assert list(snap.post_ids) == ["q1", "q2", "z"]
    assert list(snap.post_author) == [0, 1, 2]
    assert list(snap.post_parent) == [-1, 0, -1]
    assert list(snap.thread_ids) == ["gone", "q1"]
    assert list(snap.post_thread) == [1, 1, 0]
    assert snap.post_tags[0] == ("y",)
    assert snap.now == 22.0
    assert snap.follow_src.dtype == np.int32
    assert snap.counts() == {
        "users": 3,
        "follows": 2,
        "blocks": 1,
        "mutes": 1,
        "posts": 3,
        "threads": 2,
    }

    assert list(snap.replies_received()) == [1, 0, 0]  # q2 answers a's q1; z's parent is missing
    light = snap.without_text()
    assert snap.has_text and not light.has_text
    assert light.counts() == snap.counts() and light.now == snap.now
    assert (
        light.post_text == []
        and light.post_tags == []
        and light.interests == []
        and len(light.post_ids) == 0
    )
    # shared, not copied
    assert light.post_author is snap.post_author and light.post_thread is snap.post_thread
    # Ids become fixed-width unicode: no Python string of the read pins the freed texts' memory.
    assert light.user_ids.dtype.kind == "U" and list(light.user_ids) == ["a", "b", "c"]
    assert light.thread_ids.dtype.kind == "U" and list(light.thread_ids) == ["gone", "q1"]
    assert list(snap.post_ids) == ["q1", "q2", "z"] and snap.post_tags[0] == (
        "y",
    )  # the original is untouched
    from tribes.graph import build_graph
    from tribes.params import Params

    with pytest.raises(ValueError, match="without_text"):
        build_graph(light, Params())


def test_empty_store_gives_an_empty_snapshot(store):
    snap = read_snapshot(store)
    assert snap.n_users == 0 and snap.n_posts == 0 and len(snap.follow_src) == 0


def reference_snapshot(store) -> dict:
    """The snapshot read the slow, obvious way: whole tables, dicts and ``sorted`` by public id
    (Python sorts str by code point, as the store must)."""
    with store.snapshot() as conn:
        users = conn.exec_driver_sql(
            "SELECT uid, id, discoverable, first_seen_ts, interests FROM users"
        ).all()
        edges = conn.exec_driver_sql("SELECT relation, src, dst, active, ts FROM edges").all()
        posts = conn.exec_driver_sql(
            "SELECT id, author, ts, reply_to, thread_id, text, tags FROM posts"
        ).all()
        feedback = conn.exec_driver_sql(
            "SELECT uid, target_kind, target_id, action FROM feedback"
        ).all()
        seqs = [r[0] for r in conn.exec_driver_sql("SELECT seq FROM live_changes")]
    users = sorted(users, key=lambda u: u.id)
    user_index = {u.uid: i for i, u in enumerate(users)}
    relations = {}
    for relation in ("follow", "block", "mute"):
        relations[relation] = sorted(
            (user_index[e.src], user_index[e.dst], e.ts)
            for e in edges
            if e.relation == relation and e.active
        )
    posts = sorted(posts, key=lambda p: p.id)
    post_index = {p.id: i for i, p in enumerate(posts)}
    thread_ids = sorted({p.thread_id for p in posts})
    thread_index = {t: i for i, t in enumerate(thread_ids)}
    follows = relations["follow"]
    return {
        "user_ids": [u.id for u in users],
        "discoverable": [bool(u.discoverable) for u in users],
        "first_seen": [u.first_seen_ts for u in users],
        "interests": [tuple(orjson.loads(u.interests)) if u.interests else () for u in users],
        "follow_src": [s for s, _, _ in follows],
        "follow_dst": [d for _, d, _ in follows],
        "follow_ts": [t for _, _, t in follows],
        "block_src": [s for s, _, _ in relations["block"]],
        "block_dst": [d for _, d, _ in relations["block"]],
        "mute_src": [s for s, _, _ in relations["mute"]],
        "mute_dst": [d for _, d, _ in relations["mute"]],
        "post_ids": [p.id for p in posts],
        "post_author": [user_index[p.author] for p in posts],
        "post_ts": [p.ts for p in posts],
        "post_parent": [post_index.get(p.reply_to, -1) for p in posts],
        "post_thread": [thread_index[p.thread_id] for p in posts],
        "post_text": [p.text for p in posts],
        "post_tags": [tuple(orjson.loads(p.tags)) for p in posts],
        "thread_ids": thread_ids,
        "dismissed": sorted(
            (user_index[f.uid], f.target_kind, f.target_id)
            for f in feedback
            if f.action == "dismiss"
        ),
        "now": max(
            [0.0]
            + [u.first_seen_ts for u in users]
            + [p.ts for p in posts]
            + [t for _, _, t in follows]
        ),
        "live_seq": max(seqs, default=0),
    }


DTYPES = {
    "user_ids": object,
    "discoverable": bool,
    "first_seen": np.float64,
    "follow_src": np.int32,
    "follow_dst": np.int32,
    "follow_ts": np.float64,
    "block_src": np.int32,
    "block_dst": np.int32,
    "mute_src": np.int32,
    "mute_dst": np.int32,
    "post_ids": object,
    "post_author": np.int32,
    "post_ts": np.float64,
    "post_parent": np.int32,
    "post_thread": np.int32,
    "thread_ids": object,
}


def test_snapshot_equals_a_slow_reference_reading(store, monkeypatch):
    """A seeded network with replies, deleted posts (missing parents and roots), erased users,
    blocks, mutes (some undone), hidden users and dismissals, plus ids whose code-point order
    differs from a linguistic one: every field equals the reference, arrays with their dtypes."""
    config = SynthConfig(
        n_users=400,
        seed=7,
        users_per_deletion=40,
        delete_post_share=0.1,
        block_share=0.05,
        mute_share=0.05,
        hidden_share=0.1,
    )
    assert ingest_objects(store, generate(config)).committed
    assert ingest_objects(
        store,
        [
            {"type": "user", "id": "é", "ts": 1, "interests": ["#x", "y"]},
            {"type": "user", "id": "B", "ts": 2, "interests": ["y"]},
            {"type": "follow", "src": "é", "dst": "B", "ts": 3},
            {"type": "follow", "src": "B", "dst": "u000001", "ts": 4},
            {
                "type": "post",
                "id": "a-b",
                "author": "é",
                "ts": 5,
                "text": "#x",
                "reply_to": "never",
            },
            {"type": "post", "id": "ab", "author": "B", "ts": 6, "text": "#y", "reply_to": "a-b"},
            {"type": "post", "id": "Z", "author": "B", "ts": 7, "text": "later", "reply_to": "ab"},
        ],
    ).committed
    with store.transaction() as w:
        first, second = [r[0] for r in w.conn.exec_driver_sql("SELECT id FROM users LIMIT 2")]
        for user, kind, target in [
            ("é", "user", "B"),
            ("B", "thread", "p00000001"),
            (second, "user", first),
            ("B", "user", "gone"),
        ]:
            assert add_feedback(w, user, kind, target, "dismiss", 9.0)
        assert add_feedback(w, "é", "user", first, "accept", 9.0)

    want = reference_snapshot(store)
    snap = read_snapshot(store)
    # The data really has what this test is about.
    assert snap.n_users > 300 and len(snap.block_src) > 5 and len(snap.mute_src) > 5
    assert (snap.post_parent == -1).sum() > snap.n_threads  # replies to missing posts
    assert not set(snap.thread_ids) <= set(snap.post_ids)  # threads whose root is gone
    assert (snap.post_parent >= 0).any() and len(snap.dismissed) == 4
    assert want["post_ids"] != sorted(want["post_ids"], key=str.lower)
    assert gc.isenabled()  # paused while reading only
    monkeypatch.setattr(reads, "_CHUNK", 50)  # many chunks (server-side FETCHes) per query
    for read in (snap, read_snapshot(store)):
        for name, expected in want.items():
            value = getattr(read, name)
            if isinstance(value, np.ndarray):
                assert value.dtype == DTYPES[name] and value.ndim == 1, name
                assert value.tolist() == expected, name
            elif name == "dismissed":  # in the database's order
                assert sorted(value) == expected, name
            else:
                assert type(value) is type(expected) and value == expected, name


@pytest.mark.parametrize("n_users", [0, 1, 3, 4, 5, 8, 9])
def test_chunk_boundaries_lose_no_row(store, monkeypatch, n_users):
    """Results shorter than, as long as, and longer than one or two chunks (of 4 rows)."""
    events = [
        {"type": "user", "id": f"u{i}", "ts": i, "interests": [f"t{i % 2}"]} for i in range(n_users)
    ]
    events += [
        {"type": "follow", "src": f"u{i}", "dst": f"u{(i + 1) % n_users}", "ts": 9}
        for i in range(n_users)
        if n_users > 1
    ]
    assert ingest_objects(store, events).committed
    monkeypatch.setattr(reads, "_CHUNK", 4)
    snap, want = read_snapshot(store), reference_snapshot(store)
    assert snap.user_ids.tolist() == want["user_ids"] == [f"u{i}" for i in range(n_users)]
    assert snap.interests == want["interests"]
    assert snap.follow_src.tolist() == want["follow_src"] and len(want["follow_src"]) == (
        n_users if n_users > 1 else 0
    )
    assert snap.follow_dst.tolist() == want["follow_dst"]


def test_reading_leaves_a_paused_garbage_collector_paused(store):
    gc.disable()
    try:
        read_snapshot(store)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_reading_gives_the_connection_its_page_cache_back(store):
    def cache_size() -> int:
        with store.engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA cache_size").scalar()

    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's page cache")
    before = cache_size()
    assert before < -32768  # the store's own (larger) setting
    read_snapshot(store)
    assert cache_size() == before
