"""PostgreSQL only: what SQLite cannot show (collations, driver URLs, per-database locks).

The shared store suite (test_store, test_ingest, test_snapshot, test_cli) already runs on both
backends; these need the test server (``make test``) and skip without it.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
import sqlalchemy as sa

from tribes.errors import InputError
from tribes.ingest import ingest_objects
from tribes.store import Store
from tribes.store.reads import read_snapshot

# Ids whose code-point order differs from a linguistic collation's ("a-b" < "ab" < "B" < "é"
# in English; by code point "B" < "a-b" < "ab" < "é").
IDS = ["ab", "B", "a-b", "é", "Z9", "z10", "_x"]


def events() -> list[dict]:
    out = [
        {"type": "user", "id": u, "ts": i + 1, "interests": [f"t{i}"]} for i, u in enumerate(IDS)
    ]
    out += [
        {"type": "follow", "src": a, "dst": b, "ts": 10 + i}
        for i, (a, b) in enumerate(itertools.pairwise(IDS))
    ]
    out += [
        {"type": "post", "id": f"P{u}", "author": u, "ts": 20, "text": f"hi #{u[-1]}"} for u in IDS
    ]
    out += [
        {
            "type": "post",
            "id": f"p{u}",
            "author": IDS[0],
            "ts": 21,
            "text": "re",
            "reply_to": f"P{u}",
        }
        for u in IDS
    ]
    return out


def test_snapshot_is_the_same_on_both_backends_whatever_the_database_collation(
    pg_databases, tmp_path
):
    url = pg_databases.new(
        options="LOCALE_PROVIDER icu ICU_LOCALE 'en' LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    with Store.open(url) as pg, Store.open(f"sqlite:///{tmp_path / 't.db'}") as lite:
        with pg.engine.connect() as conn:  # the database really sorts linguistically
            assert (
                conn.exec_driver_sql(
                    "SELECT daticulocale FROM pg_database WHERE datname = current_database()"
                ).scalar()
                == "en"
            )
            ordered = [
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT x FROM unnest(ARRAY['B', 'a-b', 'ab']) x ORDER BY x"
                )
            ]
            assert ordered != sorted(ordered)
        for store in (pg, lite):
            assert ingest_objects(store, events()).committed
        a, b = read_snapshot(pg), read_snapshot(lite)
    assert list(a.user_ids) == sorted(IDS)
    for name, value in vars(a).items():
        other = getattr(b, name)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, other, err_msg=name)
        else:
            assert value == other, name


def test_a_url_without_driver_uses_psycopg_and_other_drivers_are_refused(pg_databases):
    url = sa.make_url(pg_databases.new())
    with Store.open(
        url.set(drivername="postgresql").render_as_string(hide_password=False)
    ) as store:
        assert store.engine.dialect.driver == "psycopg" and store.is_reachable()
    with pytest.raises(InputError, match="psycopg"):
        Store.open(url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False))


def test_the_write_lock_is_per_database(pg_databases):
    one, two = pg_databases.new(), pg_databases.new()
    with Store.open(one) as first, Store.open(two) as second, first.transaction():
        # `first` holds its database's write lock: a writer of another database does not wait
        done = []
        worker = threading.Thread(
            target=lambda: done.append(
                ingest_objects(second, [{"type": "user", "id": "a", "ts": 1}]).committed
            )
        )
        worker.start()
        worker.join(30)
        assert done == [True]


def test_unreachable_server_is_not_ready():
    # Nothing listens on port 1: opening without migrating must not connect, readiness says no.
    store = Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none", migrate=False)
    try:
        assert not store.is_reachable()
    finally:
        store.close()
