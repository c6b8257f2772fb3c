"""Topic neighbours and the symmetric user affinity as DataFrames.

The same weighting as :mod:`tribes.affinity`: reciprocal conversation (``log1p`` of replies +
mentions) > mutual follows > one-way follows damped by the target's followers > topic cosine
of the k nearest neighbours. Edges ``(src, dst, w)`` appear in both directions, no self-pairs.
"""

from __future__ import annotations

from ..params import Params
from .frames import symmetric_pairs, top_k

__all__ = ["frame_affinity", "frame_topic_neighbours"]


def frame_topic_neighbours(user_topic, *, k: int, min_similarity: float, max_df: int):
    """``(u, c, w)``: cosine of topic rows, each u's top ``k`` >= ``min_similarity``.

    Topics used by fewer than 2 or more than ``max_df`` users are left out (as locally), rows
    are l2-normalised over the kept topics, and the product is a self-join on the topic:
    O(Σ over kept topics of df²) pairs, spread over the cluster.
    """
    from pyspark.sql import functions as F

    ut = user_topic.filter(F.col("w") > 0)
    df_ = (
        ut.groupBy("v")
        .agg(F.count("*").alias("df"))
        .filter((F.col("df") >= 2) & (F.col("df") <= max_df))
    )
    kept = ut.join(df_.select("v"), "v")
    norm = kept.groupBy("u").agg(F.sqrt(F.sum(F.col("w") * F.col("w"))).alias("norm"))
    x = kept.join(norm, "u").select("u", "v", (F.col("w") / F.col("norm")).alias("x"))
    left, right = x.alias("l"), x.alias("r")
    sims = (
        left.join(right, F.col("l.v") == F.col("r.v"))
        .filter(F.col("l.u") != F.col("r.u"))
        .groupBy(F.col("l.u").alias("u"), F.col("r.u").alias("c"))
        .agg(F.sum(F.col("l.x") * F.col("r.x")).alias("w"))
        .filter(F.col("w") >= min_similarity)
    )
    return top_k(sims, k)


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
