"""Topic neighbours and the symmetric user affinity as DataFrames.

The same weighting as :mod:`tribes.affinity`: reciprocal conversation (``log1p`` of replies +
mentions) > mutual follows > one-way follows damped by the target's followers > topic cosine
of the k nearest neighbours. Edges ``(src, dst, w)`` appear in both directions, no self-pairs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..params import Params
from ..sparse import row_normalize, top_k_per_row
from .frames import symmetric_pairs, top_k

__all__ = ["frame_affinity", "frame_topic_neighbours"]


def frame_topic_neighbours(
    spark,
    user_topic: sp.csr_matrix,
    *,
    k: int,
    min_similarity: float,
    max_df: int,
    partitions: int,
    block: int = 2048,
):
    """``(u, c, w)``: cosine of topic rows, each u's top ``k`` >= ``min_similarity``.

    Topics used by fewer than 2 or more than ``max_df`` users are left out and rows are
    l2-normalised over the kept topics, as in :func:`tribes.affinity.topic_neighbours`. The
    normalised (U, V) matrix is broadcast once; each task multiplies one block of rows by its
    transpose with scipy and keeps the block's top ``k`` per row: O(Σ over kept topics of df²)
    multiply-adds spread over the executors (a topic self-join would materialise every pair).
    """
    import pandas as pd

    n = user_topic.shape[0]
    df = np.bincount(user_topic.indices, minlength=user_topic.shape[1])
    keep_cols = np.flatnonzero((df <= max_df) & (df >= 2))
    x = row_normalize(user_topic[:, keep_cols], norm="l2").tocsr()
    shared = spark.sparkContext.broadcast((x, x.T.tocsr()))

    def neighbours(batches):
        x, xt = shared.value
        for batch in batches:
            for start in batch["start"].to_numpy():
                stop = min(n, int(start) + block)
                sims = (x[start:stop] @ xt).tocoo()
                ok = (sims.data >= min_similarity) & (sims.row + start != sims.col)
                m = sp.csr_matrix(
                    (sims.data[ok], (sims.row[ok], sims.col[ok])), shape=(stop - start, n)
                )
                top = top_k_per_row(m, k).tocoo()
                yield pd.DataFrame(
                    {
                        "u": (top.row + start).astype(np.int32),
                        "c": top.col.astype(np.int32),
                        "w": top.data.astype(np.float64),
                    }
                )

    starts = spark.createDataFrame(pd.DataFrame({"start": np.arange(0, n, block, dtype=np.int64)}))
    return starts.repartition(max(1, min(partitions, (n + block - 1) // block))).mapInPandas(
        neighbours, "u int, c int, w double"
    )


def frame_affinity(graph, follows_binary, knn, params: Params):
    """``(src, dst, w)`` symmetric affinity; ``knn`` as from :func:`frame_topic_neighbours`."""
    from pyspark.sql import functions as F

    p = params
    talk = graph.talk.select("src", "dst", F.log1p("w").alias("w"))
    t = symmetric_pairs(talk)
    conversation = t.select(
        "a",
        "b",
        (
            p.conversation_affinity * F.least("ab", "ba")
            + p.oneway_reply_affinity * (F.col("ab") + F.col("ba"))
        ).alias("w"),
    )

    followers = follows_binary.groupBy(F.col("dst").alias("u")).agg(F.count("*").alias("followers"))
    damping = followers.select(
        "u", (1.0 / (1.0 + F.col("followers") / max(p.broadcaster_followers, 1e-9))).alias("d")
    )
    f = symmetric_pairs(follows_binary.withColumn("w", F.lit(1.0)))
    f = f.join(damping.select(F.col("u").alias("a"), F.col("d").alias("da")), "a", "left").join(
        damping.select(F.col("u").alias("b"), F.col("d").alias("db")), "b", "left"
    )
    mutual = F.col("ab") * F.col("ba")
    oneway_ab = F.col("ab") * (1 - F.col("ba")) * F.coalesce("db", F.lit(1.0))
    oneway_ba = F.col("ba") * (1 - F.col("ab")) * F.coalesce("da", F.lit(1.0))
    follow_part = f.select(
        "a",
        "b",
        (
            p.mutual_follow_affinity * mutual + p.oneway_follow_affinity * (oneway_ab + oneway_ba)
        ).alias("w"),
    )

    near = top_k(knn, p.topic_neighbours)
    s = symmetric_pairs(near, src="u", dst="c")
    topic_part = s.select("a", "b", (p.topic_affinity * F.greatest("ab", "ba")).alias("w"))

    return (
        conversation.unionByName(follow_part)
        .unionByName(topic_part)
        .filter(F.col("a") != F.col("b"))
        .groupBy(F.col("a").alias("src"), F.col("b").alias("dst"))
        .agg(F.sum("w").alias("w"))
        .filter(F.col("w") > 0)
    )
