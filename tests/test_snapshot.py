"""read_snapshot: the store as dense arrays, active relations only, threads resolved."""

from __future__ import annotations

import numpy as np

from tribes.ingest import ingest_lines
from tribes.store.reads import read_snapshot

from .conftest import lines


def test_snapshot_arrays(store):
    ingest_lines(store, lines(
        {"type": "user", "id": "b", "ts": 5, "interests": ["#x"], "discoverable": False},
        {"type": "follow", "src": "c", "dst": "a", "ts": 10},
        {"type": "follow", "src": "a", "dst": "b", "ts": 11},
        {"type": "follow", "src": "a", "dst": "c", "ts": 12},
        {"type": "unfollow", "src": "a", "dst": "c", "ts": 13},
        {"type": "block", "src": "b", "dst": "c", "ts": 14},
        {"type": "mute", "src": "c", "dst": "b", "ts": 15},
        {"type": "post", "id": "q2", "author": "b", "ts": 21, "text": "re", "reply_to": "q1"},
        {"type": "post", "id": "q1", "author": "a", "ts": 20, "text": "root #y"},
        {"type": "post", "id": "z", "author": "c", "ts": 22, "text": "orphan", "reply_to": "gone"},
    ), source="t")
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
    assert snap.counts() == {"users": 3, "follows": 2, "blocks": 1, "mutes": 1, "posts": 3, "threads": 2}


def test_empty_store_gives_an_empty_snapshot(store):
    snap = read_snapshot(store)
    assert snap.n_users == 0 and snap.n_posts == 0 and len(snap.follow_src) == 0
