"""Shared fixtures: a fresh store per test on each backend, and helpers to read it back.

``store``, ``db_url`` and ``new_db_url`` run every test that uses them twice: on SQLite and on
PostgreSQL. The PostgreSQL runs need the server that ``make test`` starts
(``scripts/postgres.sh``), named by ``TRIBES_TEST_PG_URL``; without it they skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from tribes.store import Store
from tribes.store.schema import TABLES

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PG_URL = os.environ.get("TRIBES_TEST_PG_URL", "")
NO_PG = (
    "PostgreSQL: TRIBES_TEST_PG_URL is unset (make test starts a server: scripts/postgres.sh run)"
)


class PostgresDatabases:
    """Throwaway databases on the test server, named by xdist worker and a random run id.

    ``new()`` gives a migrated, empty database that no other test uses: a copy of a template
    migrated once per session (CREATE DATABASE … TEMPLATE), or one a finished test released
    and that was emptied (TRUNCATE … RESTART IDENTITY: the same state as a copy, cheaper).
    ``new(migrated=False)`` is empty, for migration tests; ``options`` go to CREATE DATABASE
    (an empty one). ``release`` hands one back, ``close`` drops them all.
    """

    def __init__(self, url: str):
        self.url = sa.make_url(url)
        self.admin = sa.create_engine(
            self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.prefix = f"tribes_test_{worker}_{uuid.uuid4().hex[:8]}"
        self.count = 0
        self.live: set[str] = set()
        self.template: str | None = None
        self.reusable: set[str] = set()  # copies of the template
        self.free: list[str] = []  # released and emptied copies (URLs)

    def _create(self, template: str, options: str = "") -> str:
        name = f"{self.prefix}_{self.count}"
        self.count += 1
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}" {options}')
        self.live.add(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def new(self, *, migrated: bool = True, options: str = "") -> str:
        if not migrated or options:
            return self._create("template0", options)
        if self.free:
            return self.free.pop()
        if self.template is None:
            url = self._create("template0")
            Store.open(url).close()  # migrate; no connection may stay open on a template
            self.template = sa.make_url(url).database
        url = self._create(self.template)
        self.reusable.add(sa.make_url(url).database)
        return url

    def release(self, url: str) -> None:
        """Empty a template copy for the next test (drop it if that fails; drop the others)."""
        if sa.make_url(url).database in self.reusable and self._empty(url):
            self.free.append(url)
        else:
            self.drop(url)

    def _empty(self, url: str) -> bool:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
                # sessions the test left open (a thread's store) would hold locks: end them
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                conn.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
            return True
        except sa.exc.DBAPIError:
            return False
        finally:
            engine.dispose()

    def drop(self, url: str) -> None:
        name = sa.make_url(url).database
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.live.discard(name)
        self.reusable.discard(name)

    def close(self) -> None:
        for name in sorted(self.live):
            self.drop(str(self.url.set(database=name)))
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    if not PG_URL:
        pytest.skip(NO_PG)
    databases = PostgresDatabases(PG_URL)
    yield databases
    databases.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """The store backend under test; PostgreSQL skips when no test server is configured."""
    if request.param == "postgresql" and not PG_URL:
        pytest.skip(NO_PG)
    return request.param


@pytest.fixture
def new_db_url(backend: str, tmp_path: Path, request) -> Iterator[Callable[..., str]]:
    """A factory of URLs of fresh stores of ``backend``: ``new_db_url(migrated=True)``.

    SQLite files are created (and migrated) by ``Store.open``; PostgreSQL databases are migrated
    and empty (see ``PostgresDatabases``), or empty with ``migrated=False``; released after it.
    """
    made: list[str] = []
    pg = request.getfixturevalue("pg_databases") if backend == "postgresql" else None

    def new(*, migrated: bool = True) -> str:
        if pg is None:
            url = f"sqlite:///{tmp_path / (f'tribes{len(made)}.db' if made else 'tribes.db')}"
        else:
            url = pg.new(migrated=migrated)
        made.append(url)
        return url

    yield new
    if pg is not None:
        for url in made:
            pg.release(url)


@pytest.fixture
def db_url(new_db_url: Callable[..., str]) -> str:
    return new_db_url()


@pytest.fixture
def store(db_url: str):
    with Store.open(db_url) as s:
        yield s


def dump_tables(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: compare two of these to prove nothing changed."""
    out = {}
    with store.engine.connect() as conn:
        for name in TABLES:
            rows = conn.execute(sa.text(f"SELECT * FROM {name}")).all()
            out[name] = sorted(tuple(r) for r in rows)
    return out


def lines(*events: dict | bytes | str) -> list[bytes]:
    """JSON Lines from dicts (raw bytes/str pass through unchanged)."""
    out = []
    for e in events:
        if isinstance(e, dict):
            out.append(orjson.dumps(e))
        elif isinstance(e, str):
            out.append(e.encode())
        else:
            out.append(e)
    return out


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"../shared/data/{name} not found beside the project root ({path})")
    return path
