"""Reads for the engine: the whole store as a :class:`~tribes.snapshot.Snapshot`.

Rows are streamed in chunks (a server-side cursor on PostgreSQL) and mapped to dense indices
with numpy, so memory stays near the size of the arrays (about 20 bytes per follow) rather than
of Python row objects.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson
import sqlalchemy as sa

from ..snapshot import Snapshot
from .sql import Store

__all__ = ["read_snapshot"]

_CHUNK = 200_000


def _stream(conn: sa.Connection, sql: str, params: dict | None = None) -> Iterator[list[sa.Row]]:
    """Rows in chunks of _CHUNK: a server-side cursor on PostgreSQL (psycopg would otherwise hold
    the whole result in memory); sqlite3 steps rows lazily anyway. Closed even on error."""
    options = conn.execution_options(stream_results=True, max_row_buffer=_CHUNK)
    with options.execute(sa.text(sql), params) as result:
        while rows := result.fetchmany(_CHUNK):
            yield rows


def _by_id(conn: sa.Connection) -> str:
    # Public ids sort by code point on both backends (a PostgreSQL database's own collation,
    # e.g. en_US, would order "a-b" and "ab" otherwise), so one data set gives one snapshot.
    return 'ORDER BY id COLLATE "C"' if conn.dialect.name == "postgresql" else "ORDER BY id"


def _relation(conn: sa.Connection, relation: str, dense: np.ndarray) -> tuple[np.ndarray, ...]:
    src_parts, dst_parts, ts_parts = [], [], []
    for rows in _stream(
        conn, "SELECT src, dst, ts FROM edges WHERE relation = :r AND active", {"r": relation}
    ):
        block = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(-1, 3)
        src_parts.append(dense[block[:, 0].astype(np.int64)])
        dst_parts.append(dense[block[:, 1].astype(np.int64)])
        ts_parts.append(block[:, 2])
    if not src_parts:
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty.copy(), np.zeros(0, dtype=np.float64)
    src, dst, ts = np.concatenate(src_parts), np.concatenate(dst_parts), np.concatenate(ts_parts)
    order = np.lexsort((dst, src))
    return src[order], dst[order], ts[order]


def read_snapshot(store: Store) -> Snapshot:
    """Read the store in one read transaction (:meth:`Store.snapshot`: one consistent state,
    even while ingests commit).

    Cost: O(rows) time; memory ≈ the returned arrays plus post texts.
    """
    with store.snapshot() as conn:
        users = [
            row
            for rows in _stream(
                conn,
                f"SELECT uid, id, discoverable, first_seen_ts, interests FROM users {_by_id(conn)}",
            )
            for row in rows
        ]
        max_uid = max((u[0] for u in users), default=0)
        dense = np.full(max_uid + 1, -1, dtype=np.int32)
        dense[np.fromiter((u[0] for u in users), dtype=np.int64, count=len(users))] = np.arange(
            len(users), dtype=np.int32
        )
        user_ids = np.array([u[1] for u in users], dtype=object)
        discoverable = np.array([bool(u[2]) for u in users], dtype=bool)
        first_seen = np.array([u[3] for u in users], dtype=np.float64)
        interests = [tuple(orjson.loads(u[4])) if u[4] else () for u in users]
        del users

        follow_src, follow_dst, follow_ts = _relation(conn, "follow", dense)
        block_src, block_dst, _ = _relation(conn, "block", dense)
        mute_src, mute_dst, _ = _relation(conn, "mute", dense)

        post_ids, author, ts, reply_to, thread, texts, tags = [], [], [], [], [], [], []
        for rows in _stream(
            conn,
            f"SELECT id, author, ts, reply_to, thread_id, text, tags FROM posts {_by_id(conn)}",
        ):
            for r in rows:
                post_ids.append(r[0])
                author.append(r[1])
                ts.append(r[2])
                reply_to.append(r[3])
                thread.append(r[4])
                texts.append(r[5])
                tags.append(tuple(orjson.loads(r[6])))
        post_index = {p: i for i, p in enumerate(post_ids)}
        thread_ids = sorted(set(thread))
        thread_index = {t: i for i, t in enumerate(thread_ids)}

        live_seq = int(
            conn.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM live_changes")).scalar_one()
        )
        dismissed = [
            (int(dense[r[0]]), r[1], r[2])
            for r in conn.execute(
                sa.text("SELECT uid, target_kind, target_id FROM feedback WHERE action = 'dismiss'")
            )
        ]

    post_ts = np.array(ts, dtype=np.float64)
    times = [first_seen.max(initial=0.0), post_ts.max(initial=0.0), follow_ts.max(initial=0.0)]
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
        post_ids=np.array(post_ids, dtype=object),
        post_author=dense[np.array(author, dtype=np.int64)] if author else np.zeros(0, np.int32),
        post_ts=post_ts,
        post_parent=np.fromiter(
            (post_index.get(r, -1) if r is not None else -1 for r in reply_to),
            dtype=np.int32,
            count=len(reply_to),
        ),
        post_thread=np.fromiter(
            (thread_index[t] for t in thread), dtype=np.int32, count=len(thread)
        ),
        post_text=texts,
        post_tags=tags,
        thread_ids=np.array(thread_ids, dtype=object),
        dismissed=dismissed,
        now=float(max(times)),
        live_seq=live_seq,
    )
