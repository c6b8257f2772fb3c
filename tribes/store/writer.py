"""Writing events into the store: :class:`Writer`, one per write transaction.

A batch of validated events is applied with a handful of ``executemany`` statements, so ingest
costs O(events) rows per table rather than statements per event (psycopg pipelines them: one
round trip per statement and batch, not per row). Rows are positional tuples where a statement
is run for every event (edges, posts): cheaper to build and to bind than dicts; edges, the most
numerous, go many rows to a statement.

Within its transaction a writer remembers each user's ``uid`` and ``first_seen_ts`` once read
or inserted (writers are serialized, so nothing else changes them meanwhile), so a long ingest
looks up only the users it has not met yet; the memory this takes is capped
(``_USER_CACHE_MAX``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa

from ..events import (
    EDGE_TYPES,
    EdgeEvent,
    Event,
    PostDeleteEvent,
    PostEvent,
    UserDeleteEvent,
    UserEvent,
)
from . import schema

__all__ = ["Applied", "Conflict", "Writer", "add_feedback", "post_hash"]

_NAMED = re.compile(r"(?<!:):(\w+)")


def _for_driver(conn: sa.Connection, sql: str) -> str:
    """SQL written with ``:name`` or ``?`` placeholders in the driver's own style (sqlite3 takes
    both; psycopg ``%(name)s`` and ``%s``)."""
    if conn.dialect.name == "sqlite":
        return sql
    return _NAMED.sub(r"%(\1)s", sql).replace("?", "%s")


@dataclass(frozen=True)
class Conflict:
    """An event that contradicts what is stored (``index`` into the batch given to apply)."""

    index: int
    field: str
    problem: str


@dataclass
class Applied:
    """What :meth:`Writer.apply` did not store of a batch (indexes into the batch)."""

    conflicts: list[Conflict] = field(default_factory=list)
    #: events about a deleted post, or not newer than their user's deletion: ignored
    erased: list[int] = field(default_factory=list)


# --- SQL -------------------------------------------------------------------------------------

# Users named by a batch are looked up first (_USERS_SEEN), then only the new ones inserted and
# only earlier sightings updated. An INSERT … ON CONFLICT upsert would be one statement, but on
# PostgreSQL it draws a uid from the sequence for every row, conflicting or not: uids would
# depend on batching and grow with every replay (read_snapshot sizes an array by the largest).
# The uids found are then written into edges and posts directly (no join per row).
_USERS_SEEN = "SELECT id, uid, first_seen_ts FROM users WHERE id {}"
_INSERT_USER = "INSERT INTO users (id, discoverable, first_seen_ts) VALUES (?, true, ?)"
_SEEN_EARLIER = "UPDATE users SET first_seen_ts = :ts WHERE id = :id AND first_seen_ts > :ts"
_UPSERT_PROFILE = (
    "UPDATE users SET name = COALESCE(:name, name), bio = COALESCE(:bio, bio), "
    "interests = COALESCE(:interests, interests), "
    "discoverable = COALESCE(:discoverable, discoverable), profile_ts = :ts "
    "WHERE id = :id AND (profile_ts IS NULL OR profile_ts <= :ts)"
)
# Rows: (relation, src uid, dst uid, active, ts), many per statement (see _upsert_edges).
_UPSERT_EDGES = (
    "INSERT INTO edges (relation, src, dst, active, ts) VALUES {} "
    "ON CONFLICT (relation, src, dst) DO UPDATE SET active = excluded.active, ts = excluded.ts "
    "WHERE excluded.ts > edges.ts OR (excluded.ts = edges.ts "
    "AND excluded.active <> edges.active AND excluded.active = (edges.relation <> 'follow'))"
)
_EDGES_PER_STATEMENT = 64
# Rows: (id, author uid, ts, text, tags, reply_to, reply_to, reply_to, id, hash).
_INSERT_POST = (
    "INSERT INTO posts (id, author, ts, text, tags, reply_to, thread_id, content_hash) "
    # PostgreSQL deduces one type per parameter: the casts make the VALUES list agree with the
    # comparison below (an untyped parameter there would be text, the columns are varchar).
    "VALUES (CAST(? AS VARCHAR), ?, ?, ?, ?, CAST(? AS VARCHAR), "
    # the parent's thread, else the (missing) parent, else the post itself (a root)
    "COALESCE((SELECT p.thread_id FROM posts p WHERE p.id = CAST(? AS VARCHAR)), "
    "CAST(? AS VARCHAR), CAST(? AS VARCHAR)), ?) "
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
_POST_HASHES = "SELECT id, content_hash FROM posts WHERE id {}"
_TOMBSTONE = (
    "INSERT INTO tombstones (kind, id, ts) VALUES (:kind, :id, :ts) "
    "ON CONFLICT (kind, id) DO UPDATE SET ts = excluded.ts WHERE excluded.ts > tombstones.ts"
)

#: Users a writer remembers (id → uid, first seen) before it starts over: ~150 bytes each.
_USER_CACHE_MAX = 500_000
_INF = float("inf")


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
    _users: dict[str, list] = field(default_factory=dict)  # id -> [uid, first_seen_ts]

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
        """True when the event is about a deleted post or is not newer than a user's deletion."""
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

    def apply(self, events: Sequence[Event]) -> Applied:
        """Apply ``events`` in order; return the ones not stored: conflicts and erased.

        Deletions split the batch, so an erase sees exactly what came before it, and what comes
        after it sees its tombstone (as if each event were its own batch). Conflicting events
        are not applied; the caller decides whether that aborts the transaction.
        """
        if not self._loaded:
            self._load_tombstones()
        applied = Applied()
        start = 0
        for i, event in enumerate(events):
            if type(event) is UserDeleteEvent or type(event) is PostDeleteEvent:
                self._apply_run(events, start, i, applied)
                if self.is_erased(event):
                    applied.erased.append(i)
                else:
                    self._erase(event)
                start = i + 1
        self._apply_run(events, start, len(events), applied)
        return applied

    def _apply_run(self, events: Sequence[Event], start: int, stop: int, applied: Applied) -> None:
        if start >= stop:
            return
        check_erased = bool(self.user_tombstones or self.post_tombstones)
        seen: dict[str, float] = {}  # user id -> earliest ts in this run, in order of appearance
        profiles: list[dict] = []
        edges: list[tuple] = []
        posts: list[tuple] = []
        post_index: dict[str, tuple[int, str]] = {}  # id -> (index, content hash)
        conflicts = applied.conflicts
        get = seen.get
        for i in range(start, stop):
            event = events[i]
            if check_erased and self.is_erased(event):
                applied.erased.append(i)
                continue
            kind = type(event)
            ts = event.ts
            if kind is EdgeEvent:
                src, dst = event.src, event.dst
                if get(src, _INF) > ts:
                    seen[src] = ts
                if get(dst, _INF) > ts:
                    seen[dst] = ts
                relation, active = EDGE_TYPES[event.type]
                edges.append((relation, src, dst, active, ts))
            elif kind is PostEvent:
                author = event.author
                if get(author, _INF) > ts:
                    seen[author] = ts
                digest = post_hash(event)
                pid = event.id
                earlier = post_index.get(pid)
                if earlier is not None:
                    if earlier[1] != digest:
                        conflicts.append(
                            Conflict(i, "id", f"post {pid!r} reused with different content")
                        )
                    continue
                post_index[pid] = (i, digest)
                reply_to = event.reply_to
                tags = orjson.dumps(list(event.tags)).decode()
                posts.append(
                    (pid, author, ts, event.text, tags, reply_to, reply_to, reply_to, pid, digest)
                )
            elif kind is UserEvent:
                user = event.id
                if get(user, _INF) > ts:
                    seen[user] = ts
                profiles.append(
                    {
                        "id": user,
                        "ts": ts,
                        "name": event.name,
                        "bio": event.bio,
                        "interests": None
                        if event.interests is None
                        else orjson.dumps(list(event.interests)).decode(),
                        "discoverable": event.discoverable,
                    }
                )
        if posts:
            stored = self._lookup(_POST_HASHES, list(post_index))
            if stored:
                bad = {pid for pid, (h,) in stored.items() if h != post_index[pid][1]}
                for pid in bad:
                    conflicts.append(
                        Conflict(
                            post_index[pid][0],
                            "id",
                            f"post {pid!r} already stored with different content",
                        )
                    )
                posts = [r for r in posts if r[0] not in stored]
        run = self._executemany
        uid = self._uids(seen) if seen else {}
        if profiles:
            run(_UPSERT_PROFILE, profiles)
        if posts:
            run(_INSERT_POST, [(r[0], uid[r[1]], *r[2:]) for r in posts])
            # Roots need no adoption: their replies already name them as the thread.
            replies = [r[0] for r in posts if r[5] is not None]
            if replies:
                waiting = self._lookup(_HAS_REPLIES, replies)
                adopters = [{"id": pid} for pid in replies if pid in waiting]  # in arrival order
                if adopters:
                    run(_ADOPT_REPLIES, adopters)
        if edges:
            self._upsert_edges(edges, uid)

    def _uids(self, seen: dict[str, float]) -> dict[str, int]:
        """The uid of every user in ``seen`` (id -> earliest ts in the run): unknown ones are
        inserted in order of appearance, earlier sightings move ``first_seen_ts`` back."""
        cache = self._users
        missing = [u for u in seen if u not in cache]
        if missing:
            if len(cache) + len(missing) > _USER_CACHE_MAX:
                cache.clear()
                missing = list(seen)
            known = self._lookup(_USERS_SEEN, missing)  # id -> (uid, first_seen_ts)
            new = [u for u in missing if u not in known]
            if new:
                self._executemany(_INSERT_USER, [(u, seen[u]) for u in new])
                known.update(self._lookup(_USERS_SEEN, new))
            for u, (uid, first_seen) in known.items():
                cache[u] = [uid, first_seen]
        uid: dict[str, int] = {}
        earlier: list[dict] = []
        for u, t in seen.items():
            entry = cache[u]
            uid[u] = entry[0]
            if t < entry[1]:
                earlier.append({"id": u, "ts": t})
                entry[1] = t
        if earlier:
            self._executemany(_SEEN_EARLIER, earlier)
        return uid

    def _upsert_edges(self, rows: list[tuple], uid: dict[str, int]) -> None:
        """Upsert edge rows ``(relation, src id, dst id, active, ts)`` in order, with the users'
        ``uid``, up to _EDGES_PER_STATEMENT per statement (a statement per row costs more than
        the row's own work in SQLite).

        A statement never holds two rows of one (relation, src, dst): PostgreSQL refuses to
        update a row twice in one statement, so a repeated key starts the next statement.
        Statements run in row order, consecutive ones of one size in one ``executemany``.
        """
        chunks: list[tuple] = []  # flat parameters, one tuple per statement
        sizes: list[int] = []
        params: list = []
        keys: set[tuple] = set()
        for relation, src, dst, active, ts in rows:
            key = (relation, src, dst)
            if key in keys or len(keys) == _EDGES_PER_STATEMENT:
                chunks.append(tuple(params))
                sizes.append(len(keys))
                params, keys = [], set()
            keys.add(key)
            params += (relation, uid[src], uid[dst], active, ts)
        if keys:
            chunks.append(tuple(params))
            sizes.append(len(keys))
        start = 0
        for i in range(1, len(chunks) + 1):
            if i == len(chunks) or sizes[i] != sizes[start]:
                values = ", ".join(["(?, ?, ?, ?, ?)"] * sizes[start])
                self._executemany(_UPSERT_EDGES.format(values), chunks[start:i])
                start = i

    def _executemany(self, sql: str, rows: list) -> None:
        # Straight to the driver: SQLAlchemy's per-row parameter processing would cost more
        # than the database's own work here. psycopg runs executemany in pipeline mode.
        self.conn.exec_driver_sql(_for_driver(self.conn, sql), rows)

    def _lookup(self, template: str, ids: list[str]) -> dict[str, tuple]:
        """{id: (other columns)} of the stored rows among ``ids`` (``template``: SELECT id, … WHERE id {}).

        SQLite: ``IN (?, …)`` by 500; PostgreSQL: ``= ANY(%s)`` with one array parameter (one
        plan, no per-id placeholders to parse). Rows are fetched from the DBAPI cursor (no
        SQLAlchemy row objects).
        """
        out: dict = {}
        if not ids:
            return out
        cursor = self.conn.connection.cursor()
        try:
            if self.conn.dialect.name != "sqlite":
                cursor.execute(template.format("= ANY(%s)"), (ids,))
                out.update((row[0], tuple(row[1:])) for row in cursor.fetchall())
                return out
            for k in range(0, len(ids), 500):
                chunk = ids[k : k + 500]
                cursor.execute(template.format(f"IN ({', '.join('?' * len(chunk))})"), chunk)
                out.update((row[0], tuple(row[1:])) for row in cursor.fetchall())
        finally:
            cursor.close()
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
            self._users.pop(event.id, None)
            kind = "user"
            self.user_tombstones[event.id] = max(
                event.ts, self.user_tombstones.get(event.id, event.ts)
            )
        else:
            conn.execute(sa.delete(schema.posts).where(schema.posts.c.id == event.id))
            kind = "post"
            self.post_tombstones.add(event.id)
        conn.execute(sa.text(_TOMBSTONE), {"kind": kind, "id": event.id, "ts": event.ts})


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
