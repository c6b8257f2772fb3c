"""Ingest rules: idempotent, all-or-nothing per source, latest ts wins, threads, erasure."""

from __future__ import annotations

import itertools
import random

import pytest
import sqlalchemy as sa

from tribes.ingest import ingest_lines, ingest_objects

from .conftest import dump_tables, lines


def ingest(store, *events, **kw):
    return ingest_lines(store, lines(*events), source="f.jsonl", **kw)


def query(store, sql: str, **params):
    with store.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def edge_state(store, relation, src, dst):
    rows = query(
        store,
        "SELECT e.active FROM edges e JOIN users s ON s.uid = e.src JOIN users d ON d.uid = e.dst "
        "WHERE e.relation = :r AND s.id = :s AND d.id = :d",
        r=relation, s=src, d=dst,
    )
    return None if not rows else bool(rows[0][0])


SAMPLE = [
    {"type": "user", "id": "ann", "ts": "2026-09-21T12:26:40Z", "name": "Ann", "interests": ["#Go"]},
    {"type": "user", "id": "bob", "ts": "2026-09-21T12:26:40Z"},
    {"type": "follow", "src": "ann", "dst": "bob", "ts": 1_790_000_000},
    {"type": "follow", "src": "bob", "dst": "cy", "ts": 1_790_000_100},
    {"type": "post", "id": "p1", "author": "ann", "ts": 1_790_000_200, "text": "root #go"},
    {"type": "post", "id": "p2", "author": "bob", "ts": 1_790_000_300, "text": "reply", "reply_to": "p1"},
    {"type": "block", "src": "cy", "dst": "ann", "ts": 1_790_000_400},
    {"type": "mute", "src": "ann", "dst": "dee", "ts": 1_790_000_500},
]


def test_sample_is_stored_with_implicit_users(store):
    report = ingest(store, *SAMPLE)
    assert report.committed and report.rejected == 0
    assert report.accepted == len(SAMPLE)
    assert dict(report.counts) == {"user": 2, "follow": 2, "post": 2, "block": 1, "mute": 1}
    counts = store.table_counts()
    assert counts["users"] == 4  # ann, bob + implicit cy, dee
    assert counts["edges"] == 4 and counts["posts"] == 2
    assert query(store, "SELECT name, interests, discoverable FROM users WHERE id='ann'") == [("Ann", '["go"]', 1)]
    # An implicit user is discoverable and first seen at the first event naming them.
    assert query(store, "SELECT profile_ts, first_seen_ts, discoverable FROM users WHERE id='cy'") == [
        (None, 1_790_000_100.0, 1)
    ]


def test_same_file_twice_changes_nothing(store):
    ingest(store, *SAMPLE)
    before = dump_tables(store)
    report = ingest(store, *SAMPLE)
    assert report.committed
    assert dump_tables(store) == before


def test_numbers_are_kept_as_decimal_strings(store):
    ingest(store, {"type": "follow", "src": 1, "dst": 20, "ts": 1})
    assert sorted(r[0] for r in query(store, "SELECT id FROM users")) == ["1", "20"]


@pytest.mark.parametrize("relation", ["follow", "block", "mute"])
def test_latest_ts_wins_whatever_the_order(db_url, relation, tmp_path):
    from tribes.store import Store

    off = {"follow": "unfollow", "block": "unblock", "mute": "unmute"}[relation]
    history = [
        {"type": relation, "src": "a", "dst": "b", "ts": 1},
        {"type": off, "src": "a", "dst": "b", "ts": 2},
        {"type": relation, "src": "a", "dst": "b", "ts": 3},
        {"type": off, "src": "a", "dst": "b", "ts": 4},
    ]
    for k, order in enumerate(itertools.permutations(history)):
        with Store.open(f"sqlite:///{tmp_path / f'{k}.db'}") as s:
            # one batch, and one event per batch
            ingest(s, *order)
            assert edge_state(s, relation, "a", "b") is False, order
        with Store.open(f"sqlite:///{tmp_path / f'{k}b.db'}") as s:
            for event in order[:-1]:
                ingest(s, event)
            assert edge_state(s, relation, "a", "b") == (order[:-1] and max(order[:-1], key=lambda e: e["ts"])["type"] == relation)


@pytest.mark.parametrize(("on", "off", "winner"), [("follow", "unfollow", False), ("block", "unblock", True), ("mute", "unmute", True)])
def test_equal_ts_ties_go_to_the_privacy_safer_state(store, on, off, winner):
    ingest(store, {"type": on, "src": "a", "dst": "b", "ts": 5}, {"type": off, "src": "a", "dst": "b", "ts": 5})
    assert edge_state(store, on.removesuffix("s"), "a", "b") is winner
    ingest(store, {"type": off, "src": "c", "dst": "d", "ts": 5})
    ingest(store, {"type": on, "src": "c", "dst": "d", "ts": 5})
    assert edge_state(store, on, "c", "d") is winner


THREAD = [
    {"type": "post", "id": "r", "author": "a", "ts": 1, "text": "root"},
    {"type": "post", "id": "x", "author": "b", "ts": 2, "text": "x", "reply_to": "r"},
    {"type": "post", "id": "y", "author": "c", "ts": 3, "text": "y", "reply_to": "x"},
    {"type": "post", "id": "z", "author": "a", "ts": 4, "text": "z", "reply_to": "y"},
    {"type": "post", "id": "w", "author": "d", "ts": 5, "text": "w", "reply_to": "r"},
]


def test_thread_is_the_root_whatever_the_arrival_order(tmp_path):
    from tribes.store import Store

    rng = random.Random(3)
    orders = [THREAD, THREAD[::-1]] + [rng.sample(THREAD, len(THREAD)) for _ in range(10)]
    for k, order in enumerate(orders):
        for per_event in (False, True):
            with Store.open(f"sqlite:///{tmp_path / f'{k}-{per_event}.db'}") as s:
                if per_event:
                    for event in order:
                        ingest(s, event)
                else:
                    ingest(s, *order)
                threads = dict(query(s, "SELECT id, thread_id FROM posts"))
                assert threads == dict.fromkeys("rxyzw", "r"), order


def test_reply_to_a_missing_post_is_rooted_at_the_missing_post(store):
    ingest(store, {"type": "post", "id": "c", "author": "a", "ts": 2, "text": "c", "reply_to": "gone"})
    assert query(store, "SELECT thread_id FROM posts WHERE id='c'") == [("gone",)]


def test_reused_post_id_with_other_content_is_an_error_and_stores_nothing(store):
    ingest(store, *SAMPLE)
    before = dump_tables(store)
    report = ingest(store, {"type": "follow", "src": "x", "dst": "y", "ts": 9},
                    {"type": "post", "id": "p1", "author": "ann", "ts": 1_790_000_200, "text": "edited"})
    assert not report.committed
    assert [str(p) for p in report.problems] == ["f.jsonl:2: id: post 'p1' already stored with different content"]
    assert dump_tables(store) == before


def test_duplicate_post_ids_within_one_file(store):
    same = {"type": "post", "id": "p", "author": "a", "ts": 1, "text": "t"}
    assert ingest(store, same, same).committed
    report = ingest(store, {"type": "post", "id": "q", "author": "a", "ts": 1, "text": "t"},
                    {"type": "post", "id": "q", "author": "a", "ts": 1, "text": "other"})
    assert not report.committed
    assert [str(p) for p in report.problems] == ["f.jsonl:2: id: post 'q' reused with different content"]


BAD_LINES = {
    "malformed JSON": (b'{"type":"user",', "f.jsonl:2: malformed JSON"),
    "missing field": ({"type": "follow", "src": "a", "ts": 1}, "f.jsonl:2: dst: missing"),
    "wrong type": ({"type": "user", "id": ["a"], "ts": 1}, "f.jsonl:2: id: expected a string or integer id, got list"),
    "unknown type": ({"type": "retweet", "id": "a", "ts": 1}, "f.jsonl:2: type: unknown event type 'retweet'"),
    "invalid utf-8": (b'{"type":"user","id":"\xc3\x28","ts":1}', "f.jsonl:2: invalid UTF-8"),
    "oversize line": (b'{"type":"post","id":"p","author":"a","ts":1,"text":"' + b"x" * (1 << 20) + b'"}', "f.jsonl:2: line longer than"),
    "self-follow": ({"type": "follow", "src": "a", "dst": "a", "ts": 1}, "f.jsonl:2: dst: a user cannot follow themself"),
    "bad timestamp": ({"type": "user", "id": "a", "ts": "last tuesday"}, "f.jsonl:2: ts: cannot parse timestamp"),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_bad_input_is_reported_and_leaves_every_table_unchanged(store, case):
    ingest(store, *SAMPLE)
    before = dump_tables(store)
    bad, message = BAD_LINES[case]
    report = ingest(store, {"type": "user", "id": "new", "ts": 1}, bad, {"type": "follow", "src": "new", "dst": "ann", "ts": 2})
    assert not report.committed
    assert report.rejected == 1
    assert str(report.problems[0]).startswith(message)
    assert dump_tables(store) == before


def test_every_problem_is_reported_up_to_the_cap(store):
    bad = [{"type": "nope", "ts": 1}] * 30
    report = ingest_lines(store, lines(*bad), source="f", max_problems=5)
    assert report.rejected == 30
    assert [p.line for p in report.problems] == [1, 2, 3, 4, 5]


def test_skip_invalid_stores_the_valid_lines(store):
    report = ingest(store, {"type": "user", "id": "a", "ts": 1}, b"{oops", {"type": "follow", "src": "a", "dst": "b", "ts": 2},
                    skip_invalid=True)
    assert report.committed and report.rejected == 1 and report.accepted == 2
    assert store.table_counts()["edges"] == 1


def test_blank_lines_are_skipped_and_numbering_counts_them(store):
    report = ingest(store, b"", {"type": "user", "id": "a", "ts": 1}, b"   ", b"{bad")
    assert [p.line for p in report.problems] == [4]


def test_delete_user_erases_everything_about_them(store):
    ingest(store, *SAMPLE)
    with store.transaction() as w:
        w.conn.execute(sa.text(
            "INSERT INTO feedback (uid, target_kind, target_id, action, ts) "
            "SELECT uid, 'user', 'bob', 'dismiss', 1 FROM users WHERE id='ann'"))
    ingest(store, {"type": "delete_user", "id": "ann", "ts": 1_790_001_000})
    assert query(store, "SELECT id FROM users ORDER BY id") == [("bob",), ("cy",), ("dee",)]
    assert store.table_counts()["edges"] == 1  # only bob -> cy is left
    assert query(store, "SELECT id FROM posts") == [("p2",)]
    assert store.table_counts()["feedback"] == 0
    everything = str(dump_tables(store))
    assert "Ann" not in everything and "root #go" not in everything


def test_erased_user_is_not_resurrected_by_older_events(store):
    ingest(store, *SAMPLE)
    ingest(store, {"type": "delete_user", "id": "ann", "ts": 1_790_001_000})
    after_delete = dump_tables(store)
    report = ingest(store, *SAMPLE)  # replay: everything naming ann is older than the deletion
    assert report.committed
    assert report.ignored_erased == 5
    assert query(store, "SELECT count(*) FROM users WHERE id='ann'") == [(0,)]
    assert dump_tables(store) == after_delete
    # ...but a newer event (a re-registration) is accepted.
    ingest(store, {"type": "user", "id": "ann", "ts": 1_790_002_000})
    assert query(store, "SELECT count(*) FROM users WHERE id='ann'") == [(1,)]


def test_delete_then_replay_in_one_file_is_idempotent(store):
    events = [*SAMPLE, {"type": "delete_user", "id": "bob", "ts": 1_790_009_000},
              {"type": "delete_post", "id": "p1", "ts": 1_790_009_000}]
    ingest(store, *events)
    once = dump_tables(store)
    ingest(store, *events)
    assert dump_tables(store) == once
    assert query(store, "SELECT id FROM posts") == []


def test_deleted_post_stays_deleted(store):
    ingest(store, *SAMPLE, {"type": "delete_post", "id": "p2", "ts": 1_790_009_000})
    ingest(store, SAMPLE[5])
    assert query(store, "SELECT id FROM posts") == [("p1",)]


def test_profile_latest_user_event_wins_and_keeps_unsent_fields(store):
    ingest(store, {"type": "user", "id": "a", "ts": 10, "name": "New", "discoverable": False},
           {"type": "user", "id": "a", "ts": 5, "name": "Old", "bio": "hello"})
    assert query(store, "SELECT name, bio, discoverable FROM users") == [("New", None, 0)]


def test_batches_smaller_than_the_file_give_the_same_state(db_url, tmp_path):
    from tribes.store import Store

    events = SAMPLE + THREAD + [{"type": "unfollow", "src": "ann", "dst": "bob", "ts": 1_790_000_001}]
    with Store.open(f"sqlite:///{tmp_path / 'one.db'}") as a, Store.open(f"sqlite:///{tmp_path / 'many.db'}") as b:
        ingest(a, *events)
        ingest(b, *events, batch_size=2)
        assert dump_tables(a) == dump_tables(b)


def test_ingest_objects_validates_decoded_values(store):
    report = ingest_objects(store, [{"type": "user", "id": "a", "ts": 1}, "nope"])
    assert not report.committed
    assert str(report.problems[0]) == "request:2: expected a JSON object, got str"
