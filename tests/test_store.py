"""The store: migrations, SQLite settings, URLs."""

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


def test_sqlite_runs_in_wal_with_foreign_keys(store):
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_failed_transaction_rolls_back(store):
    with pytest.raises(RuntimeError), store.transaction() as w:
        w.conn.execute(sa.text("INSERT INTO users (id, first_seen_ts) VALUES ('a', 1)"))
        raise RuntimeError("boom")
    assert store.table_counts()["users"] == 0


@pytest.mark.parametrize("url", ["not a url", "mysql://x/y"])
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
    ingest_lines(store, lines({"type": "delete_user", "id": "b", "ts": 9},
                              {"type": "delete_post", "id": "t1", "ts": 9}), source="g")
    with store.transaction() as w:
        add_feedback(w, "a", "user", "zed", "dismiss", 10.0)
        add_feedback(w, "a", "thread", "t9", "accept", 10.0)
    assert excl("a", seq) == ({"b", "zed"}, {"t1"})
    assert excl("d", seq) == ({"b"}, {"t1"})
    assert not store.live_exclusions("b", seq).user_exists  # deleted
    assert store.prune_live_changes(seq) > 0
    assert excl("a", 0) == ({"b", "zed"}, {"t1"})
