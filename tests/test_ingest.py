"""Ingest rules: idempotent, all-or-nothing per source, latest ts wins, threads, erasure,
concurrent writers — on both backends (the ``store``/``db_url`` fixtures, see conftest)."""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest
import sqlalchemy as sa

from tribes.events import validate
from tribes.ingest import ingest_lines, ingest_objects, latest_allowed
from tribes.store import Store
from tribes.store.reads import read_snapshot

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
        r=relation,
        s=src,
        d=dst,
    )
    return None if not rows else bool(rows[0][0])


SAMPLE = [
    {
        "type": "user",
        "id": "ann",
        "ts": "2026-09-21T12:26:40Z",
        "name": "Ann",
        "interests": ["#Go"],
    },
    {"type": "user", "id": "bob", "ts": "2026-09-21T12:26:40Z"},
    {"type": "follow", "src": "ann", "dst": "bob", "ts": 1_790_000_000},
    {"type": "follow", "src": "bob", "dst": "cy", "ts": 1_790_000_100},
    {"type": "post", "id": "p1", "author": "ann", "ts": 1_790_000_200, "text": "root #go"},
    {
        "type": "post",
        "id": "p2",
        "author": "bob",
        "ts": 1_790_000_300,
        "text": "reply",
        "reply_to": "p1",
    },
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
    assert query(store, "SELECT name, interests, discoverable FROM users WHERE id='ann'") == [
        ("Ann", '["go"]', 1)
    ]
    # An implicit user is discoverable and first seen at the first event naming them.
    assert query(
        store, "SELECT profile_ts, first_seen_ts, discoverable FROM users WHERE id='cy'"
    ) == [(None, 1_790_000_100.0, 1)]


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
def test_latest_ts_wins_whatever_the_order(store, relation):
    off = {"follow": "unfollow", "block": "unblock", "mute": "unmute"}[relation]
    history = [
        {"type": relation, "ts": 1},
        {"type": off, "ts": 2},
        {"type": relation, "ts": 3},
        {"type": off, "ts": 4},
    ]
    # Every order on its own pair of users: one batch (a{k} -> b{k}), and one event per batch
    # without the last event (c{k} -> d{k}).
    for k, order in enumerate(itertools.permutations(history)):
        ingest(store, *({**e, "src": f"a{k}", "dst": f"b{k}"} for e in order))
        assert edge_state(store, relation, f"a{k}", f"b{k}") is False, order
        for event in order[:-1]:
            ingest(store, {**event, "src": f"c{k}", "dst": f"d{k}"})
        latest = max(order[:-1], key=lambda e: e["ts"])
        assert edge_state(store, relation, f"c{k}", f"d{k}") == (latest["type"] == relation), order


@pytest.mark.parametrize(
    ("on", "off", "winner"),
    [("follow", "unfollow", False), ("block", "unblock", True), ("mute", "unmute", True)],
)
def test_equal_ts_ties_go_to_the_privacy_safer_state(store, on, off, winner):
    ingest(
        store,
        {"type": on, "src": "a", "dst": "b", "ts": 5},
        {"type": off, "src": "a", "dst": "b", "ts": 5},
    )
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


def test_thread_is_the_root_whatever_the_arrival_order(store):
    rng = random.Random(3)
    orders = [THREAD, THREAD[::-1]] + [rng.sample(THREAD, len(THREAD)) for _ in range(10)]
    for k, order in enumerate(orders):
        for per_event in (False, True):
            # each run on its own post ids: r -> r-{k}-{per_event}
            tag = f"-{k}-{per_event}"
            renamed = [
                {**e, "id": e["id"] + tag}
                | ({"reply_to": e["reply_to"] + tag} if "reply_to" in e else {})
                for e in order
            ]
            if per_event:
                for event in renamed:
                    ingest(store, event)
            else:
                ingest(store, *renamed)
            threads = dict(
                query(store, "SELECT id, thread_id FROM posts WHERE id LIKE :t", t=f"%{tag}")
            )
            assert threads == {p + tag: "r" + tag for p in "rxyzw"}, order


def test_reply_to_a_missing_post_is_rooted_at_the_missing_post(store):
    ingest(
        store, {"type": "post", "id": "c", "author": "a", "ts": 2, "text": "c", "reply_to": "gone"}
    )
    assert query(store, "SELECT thread_id FROM posts WHERE id='c'") == [("gone",)]


def test_reused_post_id_with_other_content_is_an_error_and_stores_nothing(store):
    ingest(store, *SAMPLE)
    before = dump_tables(store)
    report = ingest(
        store,
        {"type": "follow", "src": "x", "dst": "y", "ts": 9},
        {"type": "post", "id": "p1", "author": "ann", "ts": 1_790_000_200, "text": "edited"},
    )
    assert not report.committed
    assert [str(p) for p in report.problems] == [
        "f.jsonl:2: id: post 'p1' already stored with different content"
    ]
    assert dump_tables(store) == before


def test_duplicate_post_ids_within_one_file(store):
    same = {"type": "post", "id": "p", "author": "a", "ts": 1, "text": "t"}
    assert ingest(store, same, same).committed
    report = ingest(
        store,
        {"type": "post", "id": "q", "author": "a", "ts": 1, "text": "t"},
        {"type": "post", "id": "q", "author": "a", "ts": 1, "text": "other"},
    )
    assert not report.committed
    assert [str(p) for p in report.problems] == [
        "f.jsonl:2: id: post 'q' reused with different content"
    ]


BAD_LINES = {
    "malformed JSON": (b'{"type":"user",', "f.jsonl:2: malformed JSON"),
    "missing field": ({"type": "follow", "src": "a", "ts": 1}, "f.jsonl:2: dst: missing"),
    "wrong type": (
        {"type": "user", "id": ["a"], "ts": 1},
        "f.jsonl:2: id: expected a string or integer id, got list",
    ),
    "unknown type": (
        {"type": "retweet", "id": "a", "ts": 1},
        "f.jsonl:2: type: unknown event type 'retweet'",
    ),
    "invalid utf-8": (b'{"type":"user","id":"\xc3\x28","ts":1}', "f.jsonl:2: invalid UTF-8"),
    "oversize line": (
        b'{"type":"post","id":"p","author":"a","ts":1,"text":"' + b"x" * (1 << 20) + b'"}',
        "f.jsonl:2: line longer than",
    ),
    "self-follow": (
        {"type": "follow", "src": "a", "dst": "a", "ts": 1},
        "f.jsonl:2: dst: a user cannot follow themself",
    ),
    "bad timestamp": (
        {"type": "user", "id": "a", "ts": "last tuesday"},
        "f.jsonl:2: ts: cannot parse timestamp",
    ),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_bad_input_is_reported_and_leaves_every_table_unchanged(store, case):
    ingest(store, *SAMPLE)
    before = dump_tables(store)
    bad, message = BAD_LINES[case]
    report = ingest(
        store,
        {"type": "user", "id": "new", "ts": 1},
        bad,
        {"type": "follow", "src": "new", "dst": "ann", "ts": 2},
    )
    assert not report.committed
    assert report.rejected == 1
    assert str(report.problems[0]).startswith(message)
    assert dump_tables(store) == before


def test_a_file_of_bad_lines_is_counted_in_bounded_batches(store):
    bad = [{"type": "nope", "ts": 1}] * 25
    report = ingest_lines(
        store,
        lines(*bad, {"type": "user", "id": "a", "ts": 1}, *bad, b""),
        source="f",
        batch_size=4,
        max_problems=3,
    )
    assert report.rejected == 50 and report.lines == 51 and not report.committed
    assert [p.line for p in report.problems] == [1, 2, 3]


def test_every_problem_is_reported_up_to_the_cap(store):
    bad = [{"type": "nope", "ts": 1}] * 30
    report = ingest_lines(store, lines(*bad), source="f", max_problems=5)
    assert report.rejected == 30
    assert [p.line for p in report.problems] == [1, 2, 3, 4, 5]


def test_skip_invalid_stores_the_valid_lines(store):
    report = ingest(
        store,
        {"type": "user", "id": "a", "ts": 1},
        b"{oops",
        {"type": "follow", "src": "a", "dst": "b", "ts": 2},
        skip_invalid=True,
    )
    assert report.committed and report.rejected == 1 and report.accepted == 2
    assert store.table_counts()["edges"] == 1


def test_events_dated_after_not_after_are_problems_and_store_nothing(store):
    ingest(store, *SAMPLE)
    before = dump_tables(store)
    limit = 1_790_001_000.0  # 2026-09-21T14:30:00Z
    on_time = {"type": "user", "id": "new", "ts": limit}
    late = {"type": "follow", "src": "new", "dst": "ann", "ts": "2106-10-31T12:00:00Z"}
    report = ingest(store, on_time, late, not_after=limit)
    assert not report.committed and report.rejected == 1
    assert str(report.problems[0]) == (
        "f.jsonl:2: ts: 2106-10-31T12:00:00Z is in the future: after 2026-09-21T14:30:00Z, "
        "the server's clock plus TRIBES_MAX_FUTURE_SECONDS"
    )
    assert dump_tables(store) == before
    # The same rule for decoded values (the API), and skip_invalid keeps the event on time.
    kept = ingest_objects(store, [on_time, late], not_after=limit, skip_invalid=True)
    assert kept.committed and kept.accepted == 1 and kept.problems[0].line == 2
    # Without a limit (offline data: its newest event is its own "now") the date is stored.
    assert ingest(store, late).committed


def test_latest_allowed_is_the_clock_plus_the_leeway():
    assert latest_allowed(86_400, clock=lambda: 1_790_000_000.0) == 1_790_086_400.0


def test_blank_lines_are_skipped_and_numbering_counts_them(store):
    report = ingest(store, b"", {"type": "user", "id": "a", "ts": 1}, b"   ", b"{bad")
    assert [p.line for p in report.problems] == [4]


def test_delete_user_erases_everything_about_them(store):
    ingest(store, *SAMPLE)
    with store.transaction() as w:
        w.conn.execute(
            sa.text(
                "INSERT INTO feedback (uid, target_kind, target_id, action, ts) "
                "SELECT uid, 'user', 'bob', 'dismiss', 1 FROM users WHERE id='ann'"
            )
        )
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
    events = [
        *SAMPLE,
        {"type": "delete_user", "id": "bob", "ts": 1_790_009_000},
        {"type": "delete_post", "id": "p1", "ts": 1_790_009_000},
    ]
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
    ingest(
        store,
        {"type": "user", "id": "a", "ts": 10, "name": "New", "discoverable": False},
        {"type": "user", "id": "a", "ts": 5, "name": "Old", "bio": "hello"},
    )
    assert query(store, "SELECT name, bio, discoverable FROM users") == [("New", None, 0)]


def test_batches_smaller_than_the_file_give_the_same_state(new_db_url):
    events = (
        SAMPLE + THREAD + [{"type": "unfollow", "src": "ann", "dst": "bob", "ts": 1_790_000_001}]
    )
    with Store.open(new_db_url()) as a, Store.open(new_db_url()) as b:
        ingest(a, *events)
        ingest(b, *events, batch_size=2)
        assert dump_tables(a) == dump_tables(b)


ERASE_IN_ONE_BATCH = [
    {"type": "follow", "src": "a", "dst": "b", "ts": 1},
    {"type": "post", "id": "p", "author": "a", "ts": 2, "text": "hi"},
    {"type": "delete_user", "id": "a", "ts": 5},
    {"type": "delete_post", "id": "q", "ts": 5},
    # older than the deletions: ignored, as they would be in a later batch or file
    {"type": "follow", "src": "a", "dst": "c", "ts": 3},
    {"type": "user", "id": "a", "ts": 5, "name": "Old"},
    {"type": "post", "id": "q", "author": "b", "ts": 6, "text": "gone"},
    {"type": "delete_user", "id": "a", "ts": 4},
    # newer: a re-registration, with a new key
    {"type": "follow", "src": "c", "dst": "a", "ts": 7},
    {"type": "post", "id": "p2", "author": "a", "ts": 8, "text": "back", "reply_to": "p"},
]


def test_events_after_a_deletion_in_the_same_batch_see_its_tombstone(new_db_url):
    """Erased events are found where they stand in the batch, not before it is applied: a
    follow older than a deletion earlier in the same batch used to bring the user back."""
    reports, states = [], []
    for batch_size in (2000, 3, 1):
        with Store.open(new_db_url()) as store:
            reports.append(ingest(store, *ERASE_IN_ONE_BATCH, batch_size=batch_size))
            states.append(dump_tables(store))
            assert logical_state(store)["edges"] == [("follow", "c", "a", 1, 7.0)]
            assert query(store, "SELECT name, first_seen_ts FROM users WHERE id = 'a'") == [
                (None, 7.0)
            ]
    assert states[0] == states[1] == states[2]
    assert [r.ignored_erased for r in reports] == [4, 4, 4]
    assert [dict(r.counts) for r in reports] == [
        {"follow": 2, "post": 2, "delete_user": 1, "delete_post": 1}
    ] * 3


def test_one_ingest_in_small_batches_keeps_user_keys_and_first_sightings(new_db_url):
    """A writer remembers users across the batches of one transaction: what it remembers must
    follow first sightings moving back and users deleted and named again."""
    events = [
        {"type": "follow", "src": "a", "dst": "b", "ts": 10},
        {"type": "follow", "src": "b", "dst": "c", "ts": 8},
        {"type": "follow", "src": "c", "dst": "a", "ts": 6},  # a seen earlier than at first
        {"type": "delete_user", "id": "b", "ts": 9},
        {"type": "follow", "src": "b", "dst": "d", "ts": 12},  # b again, a new key
        {"type": "mute", "src": "a", "dst": "b", "ts": 13},
        {"type": "post", "id": "p", "author": "a", "ts": 2, "text": "early"},  # a even earlier
    ]
    states = []
    for batch_size in (2000, 1):
        with Store.open(new_db_url()) as store:
            assert ingest(store, *events, batch_size=batch_size).committed
            states.append(dump_tables(store))
            assert query(store, "SELECT id, uid, first_seen_ts FROM users ORDER BY id") == [
                ("a", 1, 2.0),
                ("b", 4, 12.0),
                ("c", 3, 6.0),
                ("d", 5, 12.0),
            ]
    assert states[0] == states[1]


def test_many_edges_per_statement_apply_in_order_like_one_event_per_batch(new_db_url):
    """Edges go many rows to a statement; a key repeated within a batch starts a new statement
    (PostgreSQL would refuse to update one row twice). The state and the live changes, with
    their numbers, are those of applying one event at a time."""
    rng = random.Random(5)
    kinds = ["follow", "unfollow", "block", "unblock", "mute"]
    events = []
    for _ in range(400):
        src, dst = rng.sample(range(12), 2)  # few pairs: keys repeat, often within 64 rows
        events.append(
            {
                "type": rng.choice(kinds),
                "src": f"u{src}",
                "dst": f"u{dst}",
                "ts": rng.randint(1, 60),
            }
        )
    states = []
    for batch_size in (2000, 1):
        with Store.open(new_db_url()) as store:
            assert ingest(store, *events, batch_size=batch_size).committed
            states.append(dump_tables(store))
    assert states[0] == states[1]
    assert len(states[0]["live_changes"]) > 0


def test_ingest_objects_validates_decoded_values(store):
    report = ingest_objects(store, [{"type": "user", "id": "a", "ts": 1}, "nope"])
    assert not report.committed
    assert str(report.problems[0]) == "request:2: expected a JSON object, got str"


def test_replays_and_batching_do_not_use_up_user_keys(store):
    # PostgreSQL draws a serial key even for an INSERT that ends in ON CONFLICT: users must be
    # looked up, not upserted, or uids would grow with every replay and depend on batch sizes.
    for batch_size in (2000, 1, 2000):
        ingest(store, *SAMPLE, batch_size=batch_size)
    ingest(store, {"type": "follow", "src": "ann", "dst": "newcomer", "ts": 1_790_000_900})
    assert query(store, "SELECT uid FROM users WHERE id = 'newcomer'") == [(5,)]
    # an older event arriving later still moves first_seen back (and only back)
    ingest(
        store,
        {"type": "follow", "src": "cy", "dst": "ann", "ts": 5},
        {"type": "mute", "src": "ann", "dst": "cy", "ts": 9},
    )
    assert query(
        store, "SELECT first_seen_ts FROM users WHERE id IN ('ann', 'cy', 'newcomer') ORDER BY id"
    ) == [(5.0,), (5.0,), (1_790_000_900.0,)]


# --- concurrency: writers serialize, readers never see part of an ingest ---------------------


def logical_state(store) -> dict[str, list[tuple]]:
    """The store by public ids (surrogate keys depend on who committed first)."""
    return {
        "users": sorted(
            query(store, "SELECT id, name, discoverable, profile_ts, first_seen_ts FROM users")
        ),
        "edges": sorted(
            query(
                store,
                "SELECT e.relation, s.id, d.id, e.active, e.ts FROM edges e "
                "JOIN users s ON s.uid = e.src JOIN users d ON d.uid = e.dst",
            )
        ),
        "posts": sorted(
            query(
                store,
                "SELECT p.id, u.id, p.thread_id FROM posts p JOIN users u ON u.uid = p.author",
            )
        ),
    }


def crossing_files(n: int = 300) -> tuple[list[dict], list[dict]]:
    """Two sources naming the same users and edges in opposite orders, with other timestamps."""
    one = [
        {"type": "follow", "src": f"u{i % 40}", "dst": f"u{(i * 7 + 1) % 40}", "ts": i}
        for i in range(n)
    ]
    one = [e for e in one if e["src"] != e["dst"]]
    two = [{**e, "type": "unfollow", "ts": e["ts"] + 0.5} for e in reversed(one)]
    two += [
        {"type": "post", "id": f"q{i}", "author": f"u{i % 40}", "ts": i, "text": "x"}
        for i in range(50)
    ]
    return one, two


def test_concurrent_ingests_both_commit_as_if_one_after_the_other(db_url, store, new_db_url):
    one, two = crossing_files()
    reports, errors = {}, []
    start = threading.Barrier(2)

    def run(name, events):
        try:
            with Store.open(db_url) as own:  # as two processes would: one store each
                start.wait(10)
                reports[name] = ingest_objects(own, events, batch_size=7)
        except Exception as exc:  # surfaced below with the thread's name
            errors.append((name, exc))

    threads = [threading.Thread(target=run, args=args) for args in (("one", one), ("two", two))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and all(r.committed for r in reports.values())
    with Store.open(new_db_url()) as sequential:
        ingest_objects(sequential, one)
        ingest_objects(sequential, two)
        assert logical_state(store) == logical_state(sequential)


def test_readers_never_see_part_of_an_ingest(store):
    halfway, looked = threading.Event(), threading.Event()
    n = 400

    def events():
        for i in range(n):
            if i == n // 2:  # 20 batches written, not committed: let the reader look
                halfway.set()
                looked.wait(30)
            yield {"type": "follow", "src": f"a{i}", "dst": f"b{i}", "ts": i}

    reports = []
    writer = threading.Thread(
        target=lambda: reports.append(ingest_objects(store, events(), batch_size=10))
    )
    writer.start()
    assert halfway.wait(30)
    try:
        during = (store.table_counts(), read_snapshot(store).follow_src.size, store.live_seq())
    finally:
        looked.set()
        writer.join(60)
    assert during == ({name: 0 for name in during[0]}, 0, 0)
    assert reports[0].committed and store.table_counts()["edges"] == n
    assert read_snapshot(store).follow_src.size == n


def test_a_second_writer_waits_for_the_first(store, backend):
    done = []
    with store.transaction() as w:  # holds the write lock from BEGIN to COMMIT
        w.apply([validate({"type": "follow", "src": "a", "dst": "b", "ts": 1})])
        second = threading.Thread(
            target=lambda: done.append(
                ingest(store, {"type": "follow", "src": "c", "dst": "d", "ts": 2}).committed
            )
        )
        second.start()
        if backend == "postgresql":  # it queues on the advisory lock
            deadline = time.monotonic() + 20
            while not query(
                store, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ):
                assert time.monotonic() < deadline, "the second writer never waited"
                time.sleep(0.02)
        else:  # it waits on busy_timeout
            second.join(0.5)
        assert second.is_alive() and done == []
        assert store.table_counts()["edges"] == 0  # neither is visible yet
    second.join(60)
    assert done == [True]
    assert store.table_counts()["edges"] == 2
