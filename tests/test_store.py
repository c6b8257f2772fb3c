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
    with Store.open(db_url) as s:
        with s.transaction() as w:
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
