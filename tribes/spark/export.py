"""The snapshot as Parquet tables, written by the driver with pyarrow (no JDBC jar needed).

Spark's executors then read the files themselves (``spark.read.parquet``), so on a cluster
``root`` must be shared storage every executor can read: a path on a shared filesystem, or a
URL pyarrow and Spark both understand (``hdfs://…``, ``s3a://…`` with the cluster's
credentials). Locally a temporary folder is enough.

Tables (all indices are the snapshot's dense ``0..n-1`` numbering):

=============  ================================================================
users          u int32, discoverable bool
follows        src, dst int32, ts float64 (active follows)
blocks, mutes  src, dst int32 (active)
posts          p, author, parent int32 (-1 for roots), ts float64
mentions       p, u int32: post p @mentions user u (parsed on the driver: the texts stay there)
dismissed      u, c int32: u dismissed person c
user_topic     u, v int32, w float32: the TF-IDF topic weights (``InterestGraph.user_topic``; the
               topic neighbours broadcast the driver's matrix instead, see ``affinity``)
=============  ================================================================
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..graph import _mention_pairs
from ..snapshot import Snapshot

__all__ = ["TABLES", "export_snapshot"]

TABLES = ("users", "follows", "blocks", "mutes", "posts", "mentions", "dismissed", "user_topic")


def _i32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int32)


def snapshot_tables(snap: Snapshot, user_topic: sp.csr_matrix) -> dict[str, dict[str, np.ndarray]]:
    """The tables above as columns of numpy arrays. O(U + F + P + nnz)."""
    index = snap.user_index()
    dismissed = [(u, index[t]) for u, kind, t in snap.dismissed if kind == "user" and t in index]
    m_posts, m_users = _mention_pairs(snap, index)
    topic = user_topic.tocoo()
    return {
        "users": {
            "u": np.arange(snap.n_users, dtype=np.int32),
            "discoverable": np.asarray(snap.discoverable, bool),
        },
        "follows": {
            "src": _i32(snap.follow_src),
            "dst": _i32(snap.follow_dst),
            "ts": np.asarray(snap.follow_ts, np.float64),
        },
        "blocks": {"src": _i32(snap.block_src), "dst": _i32(snap.block_dst)},
        "mutes": {"src": _i32(snap.mute_src), "dst": _i32(snap.mute_dst)},
        "posts": {
            "p": np.arange(snap.n_posts, dtype=np.int32),
            "author": _i32(snap.post_author),
            "parent": _i32(snap.post_parent),
            "ts": np.asarray(snap.post_ts, np.float64),
        },
        "mentions": {"p": _i32(m_posts), "u": _i32(m_users)},
        "dismissed": {"u": _i32([d[0] for d in dismissed]), "c": _i32([d[1] for d in dismissed])},
        "user_topic": {
            "u": _i32(topic.row),
            "v": _i32(topic.col),
            "w": topic.data.astype(np.float32),
        },
    }


def export_snapshot(snap: Snapshot, user_topic: sp.csr_matrix, root: str) -> dict[str, str]:
    """Write every table to ``root/<table>.parquet``; return table → location for Spark.

    ``root`` is a local folder or a URL pyarrow can write (shared storage on a cluster).
    """
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    # Spark's S3 connector is s3a://, pyarrow's is s3:// (same bucket and key).
    uri = "s3://" + root[len("s3a://") :] if root.startswith("s3a://") else root
    filesystem, base = (
        pafs.FileSystem.from_uri(uri) if "://" in uri else (pafs.LocalFileSystem(), uri)
    )
    filesystem.create_dir(base, recursive=True)
    out = {}
    for name, columns in snapshot_tables(snap, user_topic).items():
        path = f"{base.rstrip('/')}/{name}.parquet"
        pq.write_table(pa.table(columns), path, filesystem=filesystem)
        out[name] = f"{root.rstrip('/')}/{name}.parquet"
    return out
