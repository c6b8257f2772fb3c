"""The store on both backends: migrations, settings, URLs, live changes (see conftest)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tribes.errors import InputError
from tribes.store import Store
from tribes.store.schema import metadata


def test_migrations_build_exactly_the_declared_schema(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_open_is_idempotent_and_keeps_data(db_url):
    with Store.open(db_url) as s, s.transaction() as w:
        w.conn.execute(sa.text("INSERT INTO users (id, first_seen_ts) VALUES ('a', 1)"))
    with Store.open(db_url) as s:
        assert s.table_counts()["users"] == 1


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 't.db'}") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_a_new_connection_switches_to_wal_after_another_connections_write_ends(tmp_path):
    """SQLite refuses a journal-mode change at once ("database is locked", no busy wait) while
    another connection writes; two gunicorn workers booting on a new store hit it, and the
    worker that failed to boot stopped the server. The connection now waits for the write."""
    import sqlite3
    import threading

    from tribes.store.sql import _sqlite_connect

    path = tmp_path / "fresh.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (x)")
    assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(
        sqlite3.OperationalError, match="locked"
    ):  # what the old order of pragmas met
        sqlite3.connect(path, isolation_level=None, timeout=5).execute("PRAGMA journal_mode=WAL")
    done = threading.Timer(0.3, writer.execute, args=("COMMIT",))
    done.start()
    conn = sqlite3.connect(path, timeout=0)
    _sqlite_connect(conn, None)
    done.join()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1  # the write is kept
    # Already in WAL: a new connection does not need the database to itself.
    writer.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0)
    _sqlite_connect(other, None)
    writer.execute("COMMIT")
    assert other.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_failed_transaction_rolls_back(store):
    with pytest.raises(RuntimeError), store.transaction() as w:
        w.conn.execute(sa.text("INSERT INTO users (id, first_seen_ts) VALUES ('a', 1)"))
        raise RuntimeError("boom")
    assert store.table_counts()["users"] == 0


@pytest.mark.parametrize("url", ["not a url", "mysql://x/y", "postgresql+psycopg2://u@h/d"])
def test_bad_store_urls_are_input_errors(url):
    with pytest.raises(InputError) as info:
        Store.open(url)
    assert info.value.field == "db"


def test_relative_sqlite_path_creates_its_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Store.open("sqlite:///var/sub/t.db"):
        pass
    assert (tmp_path / "var" / "sub" / "t.db").exists()


def test_live_changes_record_real_changes_only(store):
    from tribes.ingest import ingest_lines
    from tribes.store import add_feedback

    from .conftest import lines

    events = lines(
        {"type": "follow", "src": "a", "dst": "b", "ts": 1},
        {"type": "block", "src": "c", "dst": "a", "ts": 2},
        {"type": "post", "id": "t1", "author": "d", "ts": 3, "text": "root"},
        {"type": "user", "id": "e", "ts": 4, "discoverable": False},
    )
    ingest_lines(store, events, source="f")

    def excl(user, since):
        f = store.live_exclusions(user, since)
        return f.people, f.threads

    assert excl("a", 0) == ({"b", "c", "e"}, set())
    assert excl("c", 0) == ({"a", "e"}, set())
    assert store.live_exclusions("a", 0).everywhere == {"e"}
    assert store.live_exclusions("a", 0).user_exists
    assert not store.live_exclusions("nobody", 0).user_exists
    seq = store.live_seq()
    ingest_lines(store, events, source="f")  # a replay changes nothing
    assert store.live_seq() == seq
    assert excl("a", seq) == (set(), set())
    ingest_lines(
        store,
        lines(
            {"type": "delete_user", "id": "b", "ts": 9},
            {"type": "delete_post", "id": "t1", "ts": 9},
        ),
        source="g",
    )
    with store.transaction() as w:
        add_feedback(w, "a", "user", "zed", "dismiss", 10.0)
        add_feedback(w, "a", "thread", "t9", "accept", 10.0)
    assert excl("a", seq) == ({"b", "zed"}, {"t1"})
    assert excl("d", seq) == ({"b"}, {"t1"})
    assert not store.live_exclusions("b", seq).user_exists  # deleted
    assert store.prune_live_changes(seq) > 0
    assert excl("a", 0) == ({"b", "zed"}, {"t1"})


LIVE_TRIGGERS = {
    "live_edge_insert",
    "live_edge_update",
    "live_user_hidden",
    "live_user_deleted",
    "live_thread_deleted",
    "live_dismissed",
}


def triggers(store) -> set[str]:
    sql = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        if store.engine.dialect.name == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    )
    with store.engine.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql(sql)}


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from tribes.store.sql import _MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def migrate_to(url: str, revision: str) -> Store:
    """A store at an older ``revision`` (not migrated further)."""
    from alembic import command
    from alembic.config import Config

    from tribes.store.sql import _MIGRATIONS

    old = Store.open(url, migrate=False)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with old.engine.connect() as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return old


def test_two_processes_migrating_an_empty_database_at_once(new_db_url):
    import threading

    url = new_db_url(migrated=False)
    errors = []
    start = threading.Barrier(2)

    def open_store():
        try:
            start.wait(10)
            Store.open(url).close()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with Store.open(url) as store, store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        assert triggers(store) == LIVE_TRIGGERS


def test_feedback_is_idempotent_and_only_dismissals_are_live(store):
    from tribes.ingest import ingest_lines
    from tribes.store import add_feedback

    from .conftest import lines

    ingest_lines(store, lines({"type": "user", "id": "a", "ts": 1}), source="f")
    seq = store.live_seq()
    for ts in (5.0, 5.0, 4.0):  # a replay and an older one change nothing
        with store.transaction() as w:
            assert add_feedback(w, "a", "user", "b", "dismiss", ts)
            assert add_feedback(w, "a", "thread", "t", "accept", ts)
    with store.transaction() as w:
        assert not add_feedback(w, "nobody", "user", "b", "dismiss", 1.0)
    assert store.live_seq() == seq + 1
    assert store.live_exclusions("a", seq).people == {"b"}
    with store.engine.connect() as conn:
        assert sorted(conn.execute(sa.text("SELECT action, ts FROM feedback")).all()) == [
            ("accept", 5.0),
            ("dismiss", 5.0),
        ]


def test_deleting_a_user_hides_their_threads_live(store):
    from tribes.ingest import ingest_lines

    from .conftest import lines

    ingest_lines(
        store,
        lines(
            {"type": "post", "id": "root", "author": "a", "ts": 1, "text": "r"},
            {
                "type": "post",
                "id": "reply",
                "author": "a",
                "ts": 2,
                "text": "x",
                "reply_to": "other",
            },
        ),
        source="f",
    )
    seq = store.live_seq()
    ingest_lines(store, lines({"type": "delete_user", "id": "a", "ts": 3}), source="g")
    live = store.live_exclusions("someone", seq)
    assert (live.people, live.threads, live.everywhere) == ({"a"}, {"root"}, {"a"})
    assert store.table_counts()["posts"] == 0


def test_a_snapshot_is_one_state_while_an_ingest_commits(store):
    import threading

    from tribes.ingest import ingest_lines
    from tribes.store.reads import read_snapshot

    from .conftest import lines

    ingest_lines(store, lines({"type": "follow", "src": "a", "dst": "b", "ts": 1}), source="f")
    committed = []

    def commit_in_between(conn, cursor, statement, *args):
        # Right after read_snapshot's first query, another connection commits new users and a
        # follow between them: a per-statement snapshot would see the follow but not the users.
        if statement.lstrip().startswith("SELECT uid, id") and not committed:
            writer = threading.Thread(
                target=lambda: committed.append(
                    ingest_lines(
                        store,
                        lines({"type": "follow", "src": "c", "dst": "d", "ts": 2}),
                        source="g",
                    ).committed
                )
            )
            writer.start()
            writer.join(30)

    sa.event.listen(store.engine, "after_cursor_execute", commit_in_between)
    try:
        snap = read_snapshot(store)
    finally:
        sa.event.remove(store.engine, "after_cursor_execute", commit_in_between)
    assert committed == [True]
    assert list(snap.user_ids) == ["a", "b"] and snap.follow_src.tolist() == [0]
    assert read_snapshot(store).follow_src.size == 2


def test_live_change_numbers_never_go_back_after_a_prune_or_a_cascade(store):
    """A served model remembers the newest live change it includes (``live_seq``); changes
    recorded later must be numbered above it, or the API would ignore them (a block after two
    recomputes with nothing new in between used to be numbered 1 again and not hide anyone)."""
    from tribes.ingest import ingest_lines

    from .conftest import lines

    ingest_lines(
        store,
        lines(
            {"type": "block", "src": "a", "dst": "b", "ts": 1},
            {"type": "block", "src": "x", "dst": "y", "ts": 1},
        ),
        source="f",
    )
    model_seq = store.live_seq()
    assert model_seq > 0
    store.prune_live_changes(model_seq)  # the recompute that published a model with model_seq
    assert store.table_counts()["live_changes"] == 0
    ingest_lines(store, lines({"type": "block", "src": "a", "dst": "c", "ts": 2}), source="g")
    assert store.live_exclusions("a", model_seq).people == {"c"}
    # The newest row can also vanish by cascade (its user deleted): numbering still goes on.
    seq = store.live_seq()
    ingest_lines(store, lines({"type": "delete_user", "id": "a", "ts": 3}), source="h")
    assert store.live_seq() > seq
    ingest_lines(store, lines({"type": "block", "src": "x", "dst": "z", "ts": 4}), source="i")
    assert store.live_exclusions("x", seq).people >= {"z"}


def test_upgrading_from_0002_keeps_live_changes_and_their_triggers(tmp_path):
    """A store made before migration 0003 keeps its rows and numbering, and the triggers
    still record changes into the rebuilt table."""
    from tribes.ingest import ingest_lines

    from .conftest import lines

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = migrate_to(url, "0002")
    ingest_lines(old, lines({"type": "block", "src": "a", "dst": "b", "ts": 1}), source="f")
    before = old.live_seq()
    old.close()
    with Store.open(url) as store:  # migrates to head
        assert store.live_seq() == before
        assert store.live_exclusions("a", 0).people == {"b"}
        ingest_lines(store, lines({"type": "block", "src": "a", "dst": "c", "ts": 2}), source="g")
        assert store.live_exclusions("a", before).people == {"c"}
        assert triggers(store) == LIVE_TRIGGERS


def test_upgrading_from_0003_keeps_edges_live_triggers_and_erasure(new_db_url):
    """Migration 0004 re-keys edges (src first; SQLite: WITHOUT ROWID): every edge survives with
    its state, live changes are neither lost nor added, the edge triggers still fire and
    erasing a user still cascades to their edges in both directions."""
    from tribes.ingest import ingest_lines

    from .conftest import dump_tables, lines

    url = new_db_url(migrated=False)
    old = migrate_to(url, "0003")
    ingest_lines(
        old,
        lines(
            {"type": "follow", "src": "a", "dst": "b", "ts": 1},
            {"type": "follow", "src": "b", "dst": "a", "ts": 1},
            {"type": "unfollow", "src": "c", "dst": "a", "ts": 2},
            {"type": "block", "src": "c", "dst": "b", "ts": 3},
            {"type": "mute", "src": "b", "dst": "c", "ts": 4},
        ),
        source="f",
    )
    before = dump_tables(old)
    old.close()
    with Store.open(url) as store:  # migrates to head
        assert dump_tables(store) == before
        assert triggers(store) == LIVE_TRIGGERS
        seq = store.live_seq()
        ingest_lines(store, lines({"type": "follow", "src": "c", "dst": "a", "ts": 5}), source="g")
        assert store.live_exclusions("c", seq).people == {"a"}
        ingest_lines(store, lines({"type": "delete_user", "id": "a", "ts": 9}), source="h")
        with store.engine.connect() as conn:
            left = conn.exec_driver_sql(
                "SELECT e.relation, s.id, d.id FROM edges e "
                "JOIN users s ON s.uid = e.src JOIN users d ON d.uid = e.dst"
            ).all()
        assert sorted(left) == [("block", "c", "b"), ("mute", "b", "c")]


def test_erasing_a_user_seeks_their_edges_instead_of_scanning(store):
    """The cascades from users to edges (by src and by dst) have a key to seek: without one,
    every deletion read the whole edges table twice."""
    with store.engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert inspector.get_pk_constraint("edges")["constrained_columns"][0] == "src"
        by_dst = {i["name"]: i["column_names"] for i in inspector.get_indexes("edges")}
        assert by_dst["ix_edges_dst"][0] == "dst"
        if conn.dialect.name == "sqlite":
            for column in ("src", "dst"):
                plan = conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN DELETE FROM edges WHERE {column} = 1"
                ).all()
                assert "SEARCH" in plan[-1][-1], plan
