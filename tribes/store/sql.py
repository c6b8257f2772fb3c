"""The SQL store: SQLAlchemy Core over SQLite (default) or PostgreSQL (psycopg 3), same SQL.

All writes go through :class:`~tribes.store.writer.Writer`, one per transaction (``writer.py``).
Writers are serialized on both backends — SQLite's ``BEGIN IMMEDIATE``,
PostgreSQL's transaction-level advisory lock — so concurrent ingests wait instead of failing,
and ``live_changes.seq`` grows in commit order. Reads for the engine live in ``reads.py``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..errors import InputError
from . import schema
from .writer import Writer, _for_driver

__all__ = ["LiveFilters", "Store"]

_MIGRATIONS = Path(__file__).parent / "migrations"


_BUSY_TIMEOUT_S = 30.0


def _sqlite_connect(dbapi_conn, _record) -> None:
    # Let SQLAlchemy, not the sqlite3 module, emit BEGIN (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
    _use_wal(cur)
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # A large page cache: ingest runs one long transaction per file, and index lookups on a
    # growing WAL otherwise go to the page cache of the OS for every row.
    cur.execute("PRAGMA cache_size=-262144")  # KiB, i.e. 256 MiB at most, allocated lazily
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def _use_wal(cur: sqlite3.Cursor) -> None:
    """Switch the database to write-ahead logging unless it already is (the mode is stored in
    the file, so this happens once per database).

    Changing the mode needs the database to itself, and SQLite answers "database is locked" at
    once, without waiting on ``busy_timeout``, while another connection holds a write lock:
    two gunicorn workers booting on a new store hit this, and a worker that fails to boot
    stops the whole server. So wait for that write to finish, as ``busy_timeout`` would.
    """
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline, pause = time.monotonic() + _BUSY_TIMEOUT_S, 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.25)


def _sqlite_begin(conn: sa.Connection) -> None:
    # Writers take the write lock up front (BEGIN IMMEDIATE) and so wait on busy_timeout;
    # a deferred transaction that reads and then writes would instead fail at once with
    # "database is locked" when another writer committed in between.
    write = conn.get_execution_options().get("tribes_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# Any constant names the lock; advisory locks are per database, so stores on one server do not
# contend. The value is b"tribes\0w" read as a signed 64-bit integer.
_PG_WRITE_LOCK = int.from_bytes(b"tribes\0w", "big", signed=True)


def _postgresql_begin(conn: sa.Connection) -> None:
    # Writers queue on one transaction-level advisory lock, taken first and released by COMMIT or
    # ROLLBACK, like SQLite's BEGIN IMMEDIATE: two ingests never interleave (no deadlocks on
    # rows both touch, no unique violations from racing inserts), and live_changes.seq, drawn
    # inside the lock, is in commit order, so a reader's MAX(seq) never skips a later commit.
    # Readers take no lock: MVCC shows them committed transactions only.
    if conn.get_execution_options().get("tribes_write", False):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")


def _engine(url: sa.URL) -> sa.Engine:
    """An engine with the store's per-backend settings (see module docstring)."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.drivername == "postgresql":  # the default DBAPI would be psycopg2; we ship psycopg 3
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername != "postgresql+psycopg":
        raise InputError(
            f"unsupported driver {url.drivername!r} (use postgresql+psycopg://)", field="db"
        )
    # pre_ping: a server restart costs one reconnect instead of errors on every pooled connection.
    engine = sa.create_engine(url, pool_pre_ping=True)
    sa.event.listen(engine, "begin", _postgresql_begin)
    return engine


class Store:
    """The event store. Open with :meth:`open`; the schema is migrated to head on open.

    Parameters
    ----------
    url : str
        ``sqlite:///PATH`` (relative) or ``sqlite:////ABS/PATH``, or
        ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE`` (the database must exist).
    """

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise InputError(f"not a database URL: {url!r}", field="db") from None
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise InputError(
                f"unsupported store {parsed.get_backend_name()!r} (supported: sqlite, postgresql)",
                field="db",
            )
        store = cls(_engine(parsed))
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> None:
        """Bring the schema to the newest migration (no-op when already there)."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        with self.engine.connect() as conn, conn.execution_options(tribes_write=True).begin():
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(tribes_write=True)
            with conn.begin():
                yield Writer(conn)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sa.Connection]:
        """A read-only transaction in which every query sees the same committed state.

        SQLite gives that to any transaction under WAL; PostgreSQL's default (READ COMMITTED)
        takes a new snapshot per statement, so this asks for REPEATABLE READ.
        """
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            with conn.begin():
                yield conn

    def live_exclusions(self, user_id: str, since_seq: int) -> LiveFilters:
        """What changed after ``since_seq`` that hides people or threads from ``user_id``.

        One indexed query. ``people``/``threads`` include changes that hide someone from
        everybody (deleted or non-discoverable users, deleted threads), which are also listed in
        ``everywhere``; ``user_exists`` is False for a user the store does not (or no longer) know.
        """
        sql = (
            "SELECT kind, other, CASE WHEN uid IS NULL THEN 1 ELSE 0 END FROM live_changes "
            "WHERE seq > :s AND (uid IS NULL OR uid = (SELECT uid FROM users WHERE id = :u)) "
            "UNION ALL SELECT 'exists', '', 0 FROM users WHERE id = :u"
        )
        with self.engine.connect() as conn:
            return LiveFilters.from_rows(
                conn.exec_driver_sql(_for_driver(conn, sql), {"s": since_seq, "u": user_id})
            )

    def user_facts(self, user_id: str) -> dict | None:
        """What a user has done so far (for cold start), or None for an unknown user:
        ``follows`` (ids), ``topics`` (interests, tags and words of their last 50 posts),
        ``threads`` (thread ids they posted in)."""
        from ..text import tokenize

        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT uid, interests FROM users WHERE id = :u"), {"u": user_id}
            ).first()
            if row is None:
                return None
            uid = row[0]
            follows = [
                r[0]
                for r in conn.execute(
                    sa.text(
                        "SELECT d.id FROM edges e JOIN users d ON d.uid = e.dst "
                        "WHERE e.relation = 'follow' AND e.active AND e.src = :uid"
                    ),
                    {"uid": uid},
                )
            ]
            posts = conn.execute(
                sa.text(
                    "SELECT tags, text, thread_id FROM posts WHERE author = :uid ORDER BY ts DESC LIMIT 50"
                ),
                {"uid": uid},
            ).all()
        topics = list(orjson.loads(row[1])) if row[1] else []
        for tags, text, _thread in posts:
            topics += orjson.loads(tags)
            topics += tokenize(text)[:20]
        return {"follows": follows, "topics": topics, "threads": [p[2] for p in posts]}

    def is_reachable(self) -> bool:
        """True when a trivial query succeeds (readiness)."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def live_seq(self) -> int:
        """The newest live-change sequence number (0 when there is none)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM live_changes")).scalar_one()
            )

    def prune_live_changes(self, up_to_seq: int) -> int:
        """Delete live changes every served model already includes (seq ≤ ``up_to_seq``)."""
        with self.transaction() as w:
            return w.conn.execute(
                sa.text("DELETE FROM live_changes WHERE seq <= :s"), {"s": up_to_seq}
            ).rowcount

    def table_counts(self) -> dict[str, int]:
        """Rows per table."""
        with self.engine.connect() as conn:
            return {
                name: conn.execute(
                    sa.select(sa.func.count()).select_from(schema.metadata.tables[name])
                ).scalar_one()
                for name in schema.TABLES
            }


@dataclass
class LiveFilters:
    """Serve-time filters from changes after a model's snapshot (see ``live_exclusions``)."""

    people: set[str]
    threads: set[str]
    everywhere: set[str]
    user_exists: bool

    @classmethod
    def from_rows(cls, rows) -> LiveFilters:
        """From ``(kind, other, everyone)`` rows of the live-exclusions query."""
        out = cls(set(), set(), set(), False)
        for kind, other, everyone in rows:
            if kind == "exists":
                out.user_exists = True
            elif kind == "user":
                out.people.add(other)
                if everyone:
                    out.everywhere.add(other)
            else:
                out.threads.add(other)
        return out
