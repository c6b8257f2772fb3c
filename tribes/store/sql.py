"""The SQL store: SQLAlchemy Core over SQLite (default) or PostgreSQL (psycopg 3), same SQL.

All writes go through :class:`Writer`, one per transaction; a batch of validated events is
applied with a handful of ``executemany`` statements, so ingest costs O(events) statements
per table rather than per event (psycopg pipelines them: one round trip per statement and
batch, not per row). Writers are serialized on both backends — SQLite's ``BEGIN IMMEDIATE``,
PostgreSQL's transaction-level advisory lock — so concurrent ingests wait instead of failing,
and ``live_changes.seq`` grows in commit order. Reads for the engine live in ``reads.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..errors import InputError
from ..events import EdgeEvent, Event, PostDeleteEvent, PostEvent, UserDeleteEvent, UserEvent
from . import schema

__all__ = ["Conflict", "LiveFilters", "Store", "Writer", "add_feedback"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_connect(dbapi_conn, _record) -> None:
    # Let SQLAlchemy, not the sqlite3 module, emit BEGIN (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    # A large page cache: ingest runs one long transaction per file, and index lookups on a
    # growing WAL otherwise go to the page cache of the OS for every row.
    cur.execute("PRAGMA cache_size=-262144")  # KiB, i.e. 256 MiB at most, allocated lazily
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


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


@dataclass(frozen=True)
class Conflict:
    """An event that contradicts what is stored (``index`` into the batch given to apply)."""

    index: int
    field: str
    problem: str


# --- SQL -------------------------------------------------------------------------------------

# Users named by a batch are looked up first (_USERS_SEEN), then only the new ones inserted and
# only earlier sightings updated. An INSERT … ON CONFLICT upsert would be one statement, but on
# PostgreSQL it draws a uid from the sequence for every row, conflicting or not: uids would
# depend on batching and grow with every replay (read_snapshot sizes an array by the largest).
# The uids found are then written into edges and posts directly (no join per row).
_USERS_SEEN = "SELECT id, uid, first_seen_ts FROM users WHERE id {}"
_INSERT_USER = "INSERT INTO users (id, discoverable, first_seen_ts) VALUES (:id, true, :ts)"
_SEEN_EARLIER = "UPDATE users SET first_seen_ts = :ts WHERE id = :id AND first_seen_ts > :ts"
_UPSERT_PROFILE = (
    "UPDATE users SET name = COALESCE(:name, name), bio = COALESCE(:bio, bio), "
    "interests = COALESCE(:interests, interests), "
    "discoverable = COALESCE(:discoverable, discoverable), profile_ts = :ts "
    "WHERE id = :id AND (profile_ts IS NULL OR profile_ts <= :ts)"
)
_UPSERT_EDGE = (
    "INSERT INTO edges (relation, src, dst, active, ts) VALUES (:relation, :src, :dst, :active, :ts) "
    "ON CONFLICT (relation, src, dst) DO UPDATE SET active = excluded.active, ts = excluded.ts "
    "WHERE excluded.ts > edges.ts OR (excluded.ts = edges.ts "
    "AND excluded.active <> edges.active AND excluded.active = (edges.relation <> 'follow'))"
)
_INSERT_POST = (
    "INSERT INTO posts (id, author, ts, text, tags, reply_to, thread_id, content_hash) "
    # PostgreSQL deduces one type per parameter: the casts make the VALUES list agree with the
    # comparison below (an untyped parameter there would be text, the columns are varchar).
    "VALUES (CAST(:id AS VARCHAR), :author, :ts, :text, :tags, CAST(:reply_to AS VARCHAR), "
    # the parent's thread, else the (missing) parent, else the post itself (a root)
    "COALESCE((SELECT p.thread_id FROM posts p WHERE p.id = :reply_to), :reply_to, :id), :hash) "
    "ON CONFLICT (id) DO NOTHING"
)
# A post that arrives after its replies adopts them: they pointed at it as their thread. Rare in
# a time-ordered stream, so one query finds the posts that have such replies (_HAS_REPLIES) and
# only those run the UPDATE (one statement per reply posted would cost more than the inserts).
_HAS_REPLIES = "SELECT thread_id, COUNT(*) FROM posts WHERE thread_id {} AND id <> thread_id GROUP BY thread_id"
_ADOPT_REPLIES = (
    "UPDATE posts SET thread_id = (SELECT p.thread_id FROM posts p WHERE p.id = :id) "
    "WHERE thread_id = :id AND id <> :id"
)
_NAMED = re.compile(r"(?<!:):(\w+)")


def _for_driver(conn: sa.Connection, sql: str) -> str:
    """SQL written with ``:name`` placeholders in the driver's own style (sqlite3 takes
    ``:name``; psycopg ``%(name)s``)."""
    return sql if conn.dialect.name == "sqlite" else _NAMED.sub(r"%(\1)s", sql)


_POST_HASHES = "SELECT id, content_hash FROM posts WHERE id {}"


def post_hash(event: PostEvent) -> str:
    """A stable digest of a post's content, to tell a replay from a conflicting reuse."""
    blob = orjson.dumps([event.author, event.ts, event.text, list(event.tags), event.reply_to])
    return hashlib.sha1(blob).hexdigest()


@dataclass
class Writer:
    """Applies batches of events inside one transaction (see :meth:`Store.transaction`)."""

    conn: sa.Connection
    user_tombstones: dict[str, float] = field(default_factory=dict)
    post_tombstones: set[str] = field(default_factory=set)
    _loaded: bool = False

    def _load_tombstones(self) -> None:
        rows = self.conn.execute(
            sa.select(schema.tombstones.c.kind, schema.tombstones.c.id, schema.tombstones.c.ts)
        )
        for kind, ident, ts in rows:
            if kind == "user":
                self.user_tombstones[ident] = ts
            else:
                self.post_tombstones.add(ident)
        self._loaded = True

    def is_erased(self, event: Event) -> bool:
        """True when the event is about a deleted post or predates a user's deletion."""
        if not self._loaded:
            self._load_tombstones()
        if isinstance(event, PostEvent | PostDeleteEvent) and event.id in self.post_tombstones:
            return True
        dead = self.user_tombstones
        if not dead:
            return False
        for user in _users_named(event):
            erased_at = dead.get(user)
            if erased_at is not None and event.ts <= erased_at:
                return True
        return False

    def apply(self, events: Sequence[Event]) -> list[Conflict]:
        """Apply ``events`` in order; return the ones that conflict with stored data.

        Deletions split the batch, so an erase sees exactly what came before it. Conflicting
        events are not applied; the caller decides whether that aborts the transaction.
        """
        conflicts: list[Conflict] = []
        start = 0
        for i, event in enumerate(events):
            if isinstance(event, UserDeleteEvent | PostDeleteEvent):
                conflicts += self._apply_run(events, start, i)
                self._erase(event)
                start = i + 1
        conflicts += self._apply_run(events, start, len(events))
        return conflicts

    def _apply_run(self, events: Sequence[Event], start: int, stop: int) -> list[Conflict]:
        if start >= stop:
            return []
        seen: dict[str, float] = {}
        profiles, edge_rows, post_rows = [], [], []
        post_index: dict[str, tuple[int, str]] = {}
        conflicts: list[Conflict] = []
        for i in range(start, stop):
            event = events[i]
            for user in _users_named(event):
                if seen.get(user, float("inf")) > event.ts:
                    seen[user] = event.ts
            if isinstance(event, EdgeEvent):
                edge_rows.append(
                    {
                        "relation": event.relation,
                        "active": event.active,
                        "ts": event.ts,
                        "src": event.src,
                        "dst": event.dst,
                    }
                )
            elif isinstance(event, PostEvent):
                digest = post_hash(event)
                earlier = post_index.get(event.id)
                if earlier is not None:
                    if earlier[1] != digest:
                        conflicts.append(
                            Conflict(i, "id", f"post {event.id!r} reused with different content")
                        )
                    continue
                post_index[event.id] = (i, digest)
                post_rows.append(
                    {
                        "id": event.id,
                        "author": event.author,
                        "ts": event.ts,
                        "text": event.text,
                        "tags": orjson.dumps(list(event.tags)).decode(),
                        "reply_to": event.reply_to,
                        "hash": digest,
                    }
                )
            elif isinstance(event, UserEvent):
                profiles.append(
                    {
                        "id": event.id,
                        "ts": event.ts,
                        "name": event.name,
                        "bio": event.bio,
                        "interests": None
                        if event.interests is None
                        else orjson.dumps(list(event.interests)).decode(),
                        "discoverable": event.discoverable,
                    }
                )
        if post_rows:
            stored = self._lookup(_POST_HASHES, list(post_index))
            bad = {pid for pid, (h,) in stored.items() if h != post_index[pid][1]}
            for pid in bad:
                conflicts.append(
                    Conflict(
                        post_index[pid][0],
                        "id",
                        f"post {pid!r} already stored with different content",
                    )
                )
            post_rows = [r for r in post_rows if r["id"] not in bad and r["id"] not in stored]
        run = self._executemany
        uid: dict[str, int] = {}
        if seen:
            known = self._lookup(_USERS_SEEN, list(seen))  # id -> (uid, first_seen_ts)
            new = [{"id": u, "ts": t} for u, t in seen.items() if u not in known]
            earlier = [
                {"id": u, "ts": t} for u, t in seen.items() if u in known and t < known[u][1]
            ]
            if new:
                run(_INSERT_USER, new)
                known.update(self._lookup(_USERS_SEEN, [r["id"] for r in new]))
            if earlier:
                run(_SEEN_EARLIER, earlier)
            uid = {u: row[0] for u, row in known.items()}
        if profiles:
            run(_UPSERT_PROFILE, profiles)
        if post_rows:
            for r in post_rows:
                r["author"] = uid[r["author"]]
            run(_INSERT_POST, post_rows)
            # Roots need no adoption: their replies already name them as the thread.
            replies = [r["id"] for r in post_rows if r["reply_to"] is not None]
            if replies:
                waiting = self._lookup(_HAS_REPLIES, replies)
                adopters = [{"id": pid} for pid in replies if pid in waiting]  # in arrival order
                if adopters:
                    run(_ADOPT_REPLIES, adopters)
        if edge_rows:
            for r in edge_rows:
                r["src"], r["dst"] = uid[r["src"]], uid[r["dst"]]
            run(_UPSERT_EDGE, edge_rows)
        return conflicts

    def _executemany(self, sql: str, rows: list[dict]) -> None:
        # Straight to the driver: SQLAlchemy's per-row parameter processing would cost more
        # than the database's own work here. psycopg runs executemany in pipeline mode.
        self.conn.exec_driver_sql(_for_driver(self.conn, sql), rows)

    def _lookup(self, template: str, ids: list[str]) -> dict[str, tuple]:
        """{id: (other columns)} of the stored rows among ``ids`` (``template``: SELECT id, … WHERE id {}).

        SQLite: ``IN (?, …)`` by 500; PostgreSQL: ``= ANY(%s)`` with one array parameter (one
        plan, no per-id placeholders to parse).
        """
        out: dict = {}
        if self.conn.dialect.name != "sqlite":
            if ids:
                rows = self.conn.exec_driver_sql(template.format("= ANY(%s)"), (ids,))
                out.update((row[0], tuple(row[1:])) for row in rows)
            return out
        for k in range(0, len(ids), 500):
            chunk = tuple(ids[k : k + 500])
            rows = self.conn.exec_driver_sql(
                template.format(f"IN ({', '.join('?' * len(chunk))})"), chunk
            )
            out.update((row[0], tuple(row[1:])) for row in rows)
        return out

    def _erase(self, event: UserDeleteEvent | PostDeleteEvent) -> None:
        conn = self.conn
        if isinstance(event, UserDeleteEvent):
            # Feedback *about* the user goes too; their own rows cascade from users.
            conn.execute(
                sa.delete(schema.feedback).where(
                    schema.feedback.c.target_kind == "user", schema.feedback.c.target_id == event.id
                )
            )
            conn.execute(sa.delete(schema.users).where(schema.users.c.id == event.id))
            kind = "user"
            self.user_tombstones[event.id] = max(
                event.ts, self.user_tombstones.get(event.id, event.ts)
            )
        else:
            conn.execute(sa.delete(schema.posts).where(schema.posts.c.id == event.id))
            kind = "post"
            self.post_tombstones.add(event.id)
        conn.execute(
            sa.text(
                "INSERT INTO tombstones (kind, id, ts) VALUES (:kind, :id, :ts) "
                "ON CONFLICT (kind, id) DO UPDATE SET ts = excluded.ts WHERE excluded.ts > tombstones.ts"
            ),
            {"kind": kind, "id": event.id, "ts": event.ts},
        )


_UPSERT_FEEDBACK = (
    "INSERT INTO feedback (uid, target_kind, target_id, action, ts) "
    "SELECT u.uid, :kind, :target, :action, :ts FROM users u WHERE u.id = :user "
    "ON CONFLICT (uid, target_kind, target_id, action) DO UPDATE SET ts = excluded.ts "
    "WHERE excluded.ts > feedback.ts"
)


def add_feedback(
    writer: Writer, user: str, target_kind: str, target_id: str, action: str, ts: float
) -> bool:
    """Store one feedback row (idempotent; the latest ts is kept). False if the user is unknown."""
    if target_kind not in ("user", "thread"):
        raise ValueError(f"target_kind: expected 'user' or 'thread', got {target_kind!r}")
    if action not in ("dismiss", "accept", "report"):
        raise ValueError(f"action: expected 'dismiss', 'accept' or 'report', got {action!r}")
    result = writer.conn.exec_driver_sql(
        _for_driver(writer.conn, _UPSERT_FEEDBACK),
        {"user": user, "kind": target_kind, "target": target_id, "action": action, "ts": ts},
    )
    if result.rowcount:
        return True
    exists = writer.conn.execute(
        sa.select(schema.users.c.uid).where(schema.users.c.id == user)
    ).first()
    return exists is not None


def _users_named(event: Event) -> tuple[str, ...]:
    if isinstance(event, EdgeEvent):
        return (event.src, event.dst)
    if isinstance(event, PostEvent):
        return (event.author,)
    if isinstance(event, UserEvent | UserDeleteEvent):
        return (event.id,)
    return ()
