"""The interaction graph as DataFrames of weighted directed edges ``(src, dst, w)``.

The same definitions as :func:`tribes.graph.build_graph` (exponential time decay from the
snapshot's ``now``; self-pairs dropped; duplicate pairs summed), computed with joins and
aggregations so it scales with the cluster:

* ``replies``: author of a reply → author of its parent, decayed reply time;
* ``mentions``: author → mentioned user;
* ``follows``: follower → followed, decayed follow time;
* ``interaction``: ``reply_weight·replies + mention_weight·mentions + follow_weight·follows``
  plus ``reciprocity_bonus × min(w[u,v], w[v,u])``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import DAY
from ..params import Params

__all__ = ["FrameGraph", "build_frame_graph", "decayed"]


def decayed(ts_col, now: float, half_life_days: float):
    """Column ``0.5 ** (max(now - ts, 0) / DAY / half_life)`` (1 when the half-life is <= 0)."""
    from pyspark.sql import functions as F

    if half_life_days <= 0:
        return F.lit(1.0)
    age = F.greatest(F.lit(now) - ts_col, F.lit(0.0)) / DAY
    return F.pow(F.lit(2.0), -age / half_life_days)


def _summed(df):
    """Drop self-pairs, sum duplicate (src, dst)."""
    from pyspark.sql import functions as F

    return df.filter(F.col("src") != F.col("dst")).groupBy("src", "dst").agg(F.sum("w").alias("w"))


@dataclass(frozen=True)
class FrameGraph:
    """DataFrames ``(src int, dst int, w double)``; ``talk`` = replies + mentions (undecorated)."""

    replies: object
    mentions: object
    follows: object
    talk: object
    interaction: object


def build_frame_graph(tables: dict, params: Params, now: float) -> FrameGraph:
    """``tables``: name → DataFrame of :mod:`tribes.spark.export`. Lazy: nothing runs yet."""
    from pyspark.sql import functions as F

    posts = tables["posts"]
    child = posts.filter(F.col("parent") >= 0).alias("c")
    parent = posts.alias("p")
    replies = _summed(
        child.join(parent, F.col("c.parent") == F.col("p.p")).select(
            F.col("c.author").alias("src"),
            F.col("p.author").alias("dst"),
            decayed(F.col("c.ts"), now, params.reply_half_life_days).alias("w"),
        )
    )
    mentions = _summed(
        tables["mentions"]
        .join(posts, "p")
        .select(
            F.col("author").alias("src"),
            F.col("u").alias("dst"),
            decayed(F.col("ts"), now, params.reply_half_life_days).alias("w"),
        )
    )
    follows = _summed(
        tables["follows"].select(
            "src", "dst", decayed(F.col("ts"), now, params.follow_half_life_days).alias("w")
        )
    )
    strength = _summed(
        replies.select("src", "dst", (F.col("w") * params.reply_weight).alias("w"))
        .unionByName(mentions.select("src", "dst", (F.col("w") * params.mention_weight).alias("w")))
        .unionByName(follows.select("src", "dst", (F.col("w") * params.follow_weight).alias("w")))
    )
    back = strength.select(
        F.col("src").alias("dst"), F.col("dst").alias("src"), F.col("w").alias("w_back")
    )
    interaction = (
        strength.join(back, ["src", "dst"], "left")
        .select(
            "src",
            "dst",
            (
                F.col("w")
                + params.reciprocity_bonus
                * F.least(F.col("w"), F.coalesce(F.col("w_back"), F.lit(0.0)))
            ).alias("w"),
        )
        .filter(F.col("w") != 0)
    )
    talk = _summed(replies.unionByName(mentions))
    return FrameGraph(
        replies=replies, mentions=mentions, follows=follows, talk=talk, interaction=interaction
    )
