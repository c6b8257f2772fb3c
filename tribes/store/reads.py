"""Reads for the engine: the whole store as a :class:`~tribes.snapshot.Snapshot`.

Rows come from the driver's cursor as plain tuples, in chunks (a server-side cursor on
PostgreSQL), and each chunk is turned column-wise into numpy arrays: no SQLAlchemy rows, little
per-row Python work. Surrogate keys do the mapping: the database joins a reply to its parent's
``pid`` and numpy maps ``uid``/``pid`` to dense indices; thread ids go through one dict of the
distinct threads. Tag lists are decoded per chunk with their words shared, so 10M posts do not
hold 10M copies of the same tags. At 1M users (21M events) this is about three times faster
than reading SQLAlchemy rows and half the memory.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import numpy as np
import orjson
import sqlalchemy as sa

from ..snapshot import Snapshot
from ..text import DenseIds
from .sql import Store
from .writer import _for_driver

__all__ = ["read_snapshot"]

_CHUNK = 5_000  # rows per fetch: small enough that a chunk is still in the CPU cache when read


def _chunks(conn: sa.Connection, sql: str, params: dict | None = None) -> Iterator[list[tuple]]:
    """Rows as plain tuples, _CHUNK at a time. SQLAlchemy executes the query (its events fire;
    on PostgreSQL a server-side cursor, since psycopg would otherwise hold the whole result in
    memory) and the rows come from the driver's cursor, so no Row objects. Closed even on error.
    """
    options = conn.execution_options(stream_results=True)
    with options.exec_driver_sql(_for_driver(conn, sql), params or {}) as result:
        # The first chunk through the result: a streamed one holds a row it read ahead.
        rows = [tuple(row) for row in result.fetchmany(_CHUNK)]
        if rows:
            yield rows
        if len(rows) == _CHUNK:  # fewer: the cursor is done (and may be closed)
            cursor = result.cursor
            while rows := cursor.fetchmany(_CHUNK):
                yield rows


def _columns(conn: sa.Connection, sql: str, params: dict | None = None) -> Iterator[tuple]:
    """Each chunk of rows as a tuple of columns (each a tuple of values)."""
    for rows in _chunks(conn, sql, params):
        yield tuple(zip(*rows, strict=True))


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector: reading creates tens of millions of tuples (rows,
    tags) and no cycles, and every full collection would walk all of them again (measured: a
    third of the CPU time at 100k users). Restored on exit, even on error."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _small_page_cache(conn: sa.Connection) -> Iterator[None]:
    """SQLite: a 32 MiB page cache while reading (the store's connections keep up to 256 MiB for
    ingest's index lookups; one pass over every table gains nothing from it but resident
    memory). The connection's own size is restored on exit."""
    if conn.dialect.name != "sqlite":
        yield
        return
    size = int(conn.exec_driver_sql("PRAGMA cache_size").scalar())  # < 0: KiB, > 0: pages
    conn.exec_driver_sql(f"PRAGMA cache_size={max(size, -32768) if size < 0 else size}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={size}")


def _ints(values: tuple) -> np.ndarray:
    return np.fromiter(values, dtype=np.int64, count=len(values))


def _floats(values: tuple) -> np.ndarray:
    return np.fromiter(values, dtype=np.float64, count=len(values))


def _joined(parts: list[np.ndarray], dtype) -> np.ndarray:
    """The chunks' arrays as one; ``parts`` is emptied (so the pieces are freed at once)."""
    joined = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    parts.clear()
    return joined


def _by_id(conn: sa.Connection, column: str = "id") -> str:
    # Public ids sort by code point on both backends (a PostgreSQL database's own collation,
    # e.g. en_US, would order "a-b" and "ab" otherwise), so one data set gives one snapshot.
    if conn.dialect.name == "postgresql":
        return f'ORDER BY {column} COLLATE "C"'
    return f"ORDER BY {column}"


class _Tags:
    """Decodes JSON arrays of tags into tuples: one ``orjson`` call per chunk of rows for its
    distinct texts (rows of a chunk with the same text share one tuple), and equal words are
    one shared ``str`` across all tuples (10M posts would otherwise hold a fresh copy of every
    tag they carry). A cache across chunks grew to millions of texts at 1M users: slower."""

    def __init__(self) -> None:
        self._words: dict[str, str] = {}

    def decode(self, texts: tuple[str | None, ...]) -> list[tuple[str, ...]]:
        """``texts``: JSON arrays of strings (empty strings and None read as ``[]``)."""
        share = self._words.setdefault
        distinct = dict.fromkeys(texts)
        arrays = orjson.loads("[" + ",".join(text or "[]" for text in distinct) + "]")
        for text, words in zip(distinct, arrays, strict=True):
            distinct[text] = tuple(map(share, words, words)) if words else ()
        return list(map(distinct.__getitem__, texts))


def _relation(conn: sa.Connection, relation: str, dense: np.ndarray) -> tuple[np.ndarray, ...]:
    """Active ``relation`` edges as (src, dst, ts), dense user indices sorted by (src, dst)."""
    src_parts, dst_parts, ts_parts = [], [], []
    for src, dst, ts in _columns(
        conn, "SELECT src, dst, ts FROM edges WHERE relation = :r AND active", {"r": relation}
    ):
        src_parts.append(dense[_ints(src)])
        dst_parts.append(dense[_ints(dst)])
        ts_parts.append(_floats(ts))
    if not src_parts:
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty.copy(), np.zeros(0, dtype=np.float64)
    src, dst = _joined(src_parts, np.int32), _joined(dst_parts, np.int32)
    ts = _joined(ts_parts, np.float64)
    # (src, dst) is the table's key, so one distinct int64 per edge: any sort orders them
    # exactly as lexsort((dst, src)) did, and numpy's default (quicksort) is the fastest.
    order = np.argsort(src.astype(np.int64) * (len(dense) + 1) + dst)
    return src[order], dst[order], ts[order]


def _users(conn: sa.Connection, tags: _Tags) -> tuple:
    uid_parts, id_parts, discoverable_parts, first_seen_parts, interests = [], [], [], [], []
    for uid, ids, discoverable, first_seen, texts in _columns(
        conn, f"SELECT uid, id, discoverable, first_seen_ts, interests FROM users {_by_id(conn)}"
    ):
        uid_parts.append(_ints(uid))
        id_parts.append(np.array(ids, dtype=object))
        discoverable_parts.append(np.array(discoverable, dtype=bool))
        first_seen_parts.append(_floats(first_seen))
        interests.extend(tags.decode(texts))
    uids = _joined(uid_parts, np.int64)
    dense = np.full(int(uids.max(initial=0)) + 1, -1, dtype=np.int32)
    dense[uids] = np.arange(len(uids), dtype=np.int32)
    return (
        dense,
        _joined(id_parts, object),
        _joined(discoverable_parts, bool),
        _joined(first_seen_parts, np.float64),
        interests,
    )


def _posts(conn: sa.Connection, dense: np.ndarray, tags: _Tags) -> dict:
    """Posts in id order; parents found by the database (its ``pid``), threads numbered here."""
    pid_parts, id_parts, author_parts, ts_parts, parent_parts, code_parts = [], [], [], [], [], []
    texts: list[str] = []
    post_tags: list[tuple[str, ...]] = []
    threads = DenseIds()
    sql = (
        "SELECT p.pid, p.id, p.author, p.ts, COALESCE(q.pid, -1), p.thread_id, p.text, p.tags "
        f"FROM posts p LEFT JOIN posts q ON q.id = p.reply_to {_by_id(conn, 'p.id')}"
    )
    for pid, ids, author, ts, parent, thread, text, tag_texts in _columns(conn, sql):
        pid_parts.append(_ints(pid))
        id_parts.append(np.array(ids, dtype=object))
        author_parts.append(dense[_ints(author)])
        ts_parts.append(_floats(ts))
        parent_parts.append(_ints(parent))
        code_parts.append(np.fromiter(map(threads.__getitem__, thread), np.int32, len(thread)))
        texts.extend(text)
        post_tags.extend(tags.decode(tag_texts))
    pids = _joined(pid_parts, np.int64)
    dense_post = np.full(int(pids.max(initial=0)) + 1, -1, dtype=np.int32)
    dense_post[pids] = np.arange(len(pids), dtype=np.int32)
    del pids
    parent_pid = _joined(parent_parts, np.int64)
    parent = np.full(len(parent_pid), -1, dtype=np.int32)
    has_parent = parent_pid >= 0
    parent[has_parent] = dense_post[parent_pid[has_parent]]
    del parent_pid, has_parent, dense_post
    # Threads sorted by id (code point, as Python sorts str): code → rank.
    first_seen = list(threads)
    del threads
    by_id = sorted(range(len(first_seen)), key=first_seen.__getitem__)
    rank = np.empty(len(first_seen), dtype=np.int32)
    rank[np.array(by_id, dtype=np.int64)] = np.arange(len(first_seen), dtype=np.int32)
    return {
        "post_ids": _joined(id_parts, object),
        "post_author": _joined(author_parts, np.int32),
        "post_ts": _joined(ts_parts, np.float64),
        "post_parent": parent,
        "post_thread": rank[_joined(code_parts, np.int32)],
        "post_text": texts,
        "post_tags": post_tags,
        "thread_ids": np.array([first_seen[i] for i in by_id], dtype=object),
    }


def read_snapshot(store: Store) -> Snapshot:
    """Read the store in one read transaction (:meth:`Store.snapshot`: one consistent state,
    even while ingests commit).

    Cost: O(rows) time plus sorting follows (F log F) and threads (T log T); memory ≈ the
    returned arrays, post ids and texts, one chunk of rows and a dict of the distinct threads.
    """
    tags = _Tags()
    with _no_cycle_collection(), store.snapshot() as conn, _small_page_cache(conn):
        dense, user_ids, discoverable, first_seen, interests = _users(conn, tags)
        follow_src, follow_dst, follow_ts = _relation(conn, "follow", dense)
        block_src, block_dst, _ = _relation(conn, "block", dense)
        mute_src, mute_dst, _ = _relation(conn, "mute", dense)
        posts = _posts(conn, dense, tags)
        del tags
        # Small results: plain SQLAlchemy (dismissals in the database's order).
        live_seq = conn.exec_driver_sql("SELECT COALESCE(MAX(seq), 0) FROM live_changes").scalar()
        dismissed = [
            (int(dense[uid]), kind, target)
            for uid, kind, target in conn.exec_driver_sql(
                "SELECT uid, target_kind, target_id FROM feedback WHERE action = 'dismiss'"
            )
        ]

    times = [first_seen.max(initial=0.0), posts["post_ts"].max(initial=0.0)]
    times.append(follow_ts.max(initial=0.0))
    return Snapshot(
        user_ids=user_ids,
        discoverable=discoverable,
        first_seen=first_seen,
        interests=interests,
        follow_src=follow_src,
        follow_dst=follow_dst,
        follow_ts=follow_ts,
        block_src=block_src,
        block_dst=block_dst,
        mute_src=mute_src,
        mute_dst=mute_dst,
        dismissed=dismissed,
        now=float(max(times)),
        live_seq=int(live_seq),
        **posts,
    )
