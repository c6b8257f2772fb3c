"""People ranking on Spark with the local engine's own functions.

1. **Pairs.** The union of every source's ``(u, c)`` with each source's value; the
   ``conversation_2hop``, ``als`` and ``ppr`` values are scaled by their row maximum (and
   ``mutual_share`` is the mutual-contact sum so scaled), and
   ``inbound`` (how much c already reached out to u) is joined in — as
   :func:`tribes.ranking.pair_features`.
2. **Scores** (``mapInPandas``, any split of the pairs): the topic and tribe dot products
   and :func:`tribes.ranking.pair_scores` / :func:`tribes.ranking.reason_flags`, with the
   per-user vectors (behaviour, labels, normalised topics, memberships) broadcast once.
3. **Exposure budget** — a *global* constraint: a person may appear in at most
   ``budget`` lists, ``budget`` from the number of users with any candidate (one count over
   all pairs). ``groupBy(candidate bucket).applyInPandas`` sees every pair of a candidate at
   once and calls :func:`tribes.ranking.within_exposure_budget`; ties are broken by a seeded
   hash of the pair instead of the local engine's random draw.
4. **Queues** — ``groupBy(user bucket).applyInPandas``: :func:`tribes.ranking.split_lists`
   (diversity, then each user's ``max_people`` best top-account pairs and best other pairs;
   ``shared["top"]`` from :func:`tribes.ranking.top_accounts`).
5. **Top-exposure cap** — a *global* constraint over all lists, on the driver (the queues are
   O(users × max_people)): :func:`tribes.ranking.cap_top_exposure` merges each user's two
   queues into the final list, as the local engine does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..params import Params
from ..ranking import (
    _row_dot,
    cap_top_exposure,
    exposure_budget,
    lists_made,
    pair_scores,
    reason_flags,
    split_lists,
    within_exposure_budget,
)

__all__ = ["capped_lists", "rank_frames"]

_SOURCE_COLUMNS = {
    "conversation_2hop": "conv",
    "follow_2hop": "mutual",
    "same_tribe": "tribe_src",
    "shared_interests": "topic_src",
    "als": "als",
    "ppr": "ppr",
}


def pair_frame(candidates: dict, interaction):
    """``(u, c, conv, mutual, mutual_share, als, ppr, inbound)``: one row per candidate pair."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    parts = [
        df.select("u", "c", F.lit(name).alias("source"), F.col("w").cast("double").alias("w"))
        for name, df in candidates.items()
    ]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    pairs = union.groupBy("u", "c").agg(
        *[
            F.coalesce(F.max(F.when(F.col("source") == name, F.col("w"))), F.lit(0.0)).alias(col)
            for name, col in _SOURCE_COLUMNS.items()
        ]
    )
    by_user = Window.partitionBy("u")
    peak = F.max("mutual").over(by_user)
    pairs = pairs.withColumn(
        "mutual_share", F.when(peak > 0, F.col("mutual") / peak).otherwise(F.lit(0.0))
    )
    for col in ("conv", "als", "ppr"):
        peak = F.max(col).over(by_user)
        pairs = pairs.withColumn(col, F.when(peak > 0, F.col(col) / peak).otherwise(F.lit(0.0)))
    inbound = interaction.select(
        F.col("dst").alias("u"), F.col("src").alias("c"), F.col("w").alias("inbound")
    )
    return pairs.join(inbound, ["u", "c"], "left").select(
        "u",
        "c",
        "conv",
        "mutual",
        "mutual_share",
        "als",
        "ppr",
        F.coalesce("inbound", F.lit(0.0)).alias("inbound"),
    )


def rank_frames(
    spark,
    candidates: dict,
    interaction,
    shared: dict,
    params: Params,
    *,
    pivot: float,
    partitions: int,
) -> pd.DataFrame:
    """The final lists as a pandas frame ``(u, position, c, score, flags)``.

    ``shared``: ``labels`` (U,), ``behaviour`` (:class:`tribes.behaviour.Behaviour`),
    ``topic`` (U, V) l2-normalised CSR, ``memberships`` (U, K) CSR, ``top`` (U,) bool
    (:func:`tribes.ranking.top_accounts`) — broadcast to executors.
    """
    from pyspark.sql import functions as F

    p = params
    pairs = pair_frame(candidates, interaction)
    listed = pairs.select("u").distinct().count()
    if listed == 0:
        return pd.DataFrame({"u": [], "position": [], "c": [], "score": [], "flags": []})
    budget = exposure_budget(p, lists_made(p, len(shared["labels"]), listed))
    bc = spark.sparkContext.broadcast(shared)

    def score(batches):
        s = bc.value
        labels, b = s["labels"], s["behaviour"]
        for pdf in batches:
            rows = pdf["u"].to_numpy(np.int64)
            cols = pdf["c"].to_numpy(np.int64)
            mutual = pdf["mutual"].to_numpy(np.float32)
            inbound = pdf["inbound"].to_numpy(np.float32)
            feats = {
                "conversation_2hop": pdf["conv"].to_numpy(np.float32),
                "mutual_contacts": np.log1p(mutual).astype(np.float32),
                "topic": _row_dot(s["topic"], rows, cols),
                "tribe": _row_dot(s["memberships"], rows, cols),
                "als": pdf["als"].to_numpy(np.float32),
                "ppr": pdf["ppr"].to_numpy(np.float32),
                "inbound": (1 - np.exp(-inbound)).astype(np.float32),
                "mutual_share": pdf["mutual_share"].to_numpy(np.float32),
                "mutual_count": mutual,
                "inbound_raw": inbound,
            }
            scores = pair_scores(
                p,
                feats,
                b.answer_rate_for(cols, labels[rows]),
                b.activity[cols],
                b.followers[cols],
                pivot,
            )
            same = (labels[rows] >= 0) & (labels[rows] == labels[cols])
            flags = reason_flags(feats, same, b.answer_rate[cols], b.reached_by[cols])
            yield pd.DataFrame(
                {
                    "u": rows,
                    "c": cols,
                    "score": scores.astype(np.float64),
                    "flags": flags.astype(np.int32),
                }
            )

    scored = pairs.mapInPandas(score, "u long, c long, score double, flags int").withColumn(
        "tiebreak", F.xxhash64("u", "c", F.lit(p.seed))
    )

    def budgeted(pdf: pd.DataFrame) -> pd.DataFrame:
        keep = within_exposure_budget(
            pdf["c"].to_numpy(),
            pdf["score"].to_numpy(np.float32),
            pdf["tiebreak"].to_numpy(),
            budget,
        )
        return pdf.loc[keep, ["u", "c", "score", "flags"]]

    kept = (
        scored.withColumn("g", F.col("c") % partitions)
        .groupBy("g")
        .applyInPandas(budgeted, "u long, c long, score double, flags int")
    )
    width, diversity = p.max_people, p.tribe_diversity

    def queues(pdf: pd.DataFrame) -> pd.DataFrame:
        labels, top = bc.value["labels"], bc.value["top"]
        rows = pdf["u"].to_numpy(np.int64)
        cols = pdf["c"].to_numpy(np.int64)
        is_top = top[cols]
        take, position, s = split_lists(
            rows,
            cols,
            pdf["score"].to_numpy(np.float32),
            labels[cols].astype(np.int64),
            is_top,
            diversity,
            width,
        )
        return pd.DataFrame(
            {
                "u": rows[take],
                "top": is_top[take],
                "position": position[take],
                "c": cols[take],
                "score": s[take],
                "flags": pdf["flags"].to_numpy()[take],
            }
        )

    queued = (
        kept.withColumn("g", F.col("u") % partitions)
        .groupBy("g")
        .applyInPandas(queues, "u long, top boolean, position long, c long, score float, flags int")
        .toPandas()
    )
    bc.unpersist()
    return capped_lists(queued, len(shared["labels"]), width, p.top_exposure_cap, p.seed)


def capped_lists(queued: pd.DataFrame, n: int, width: int, cap: float, seed: int) -> pd.DataFrame:
    """``(u, position, c, score, flags)`` from the queues ``(u, top, position, c, score, flags)``
    of every user: :func:`tribes.ranking.cap_top_exposure` over (n, width) arrays."""
    cand = np.full((2, n, width), -1, dtype=np.int32)  # 9 bytes per queue slot
    score = np.zeros((2, n, width), dtype=np.float32)
    flags = np.zeros((2, n, width), dtype=np.uint8)
    at = (
        queued["top"].to_numpy(bool).astype(np.int64),
        queued["u"].to_numpy(np.int64),
        queued["position"].to_numpy(np.int64),
    )
    cand[at] = queued["c"].to_numpy(np.int32)
    score[at] = queued["score"].to_numpy(np.float32)
    flags[at] = queued["flags"].to_numpy(np.uint8)
    take, capped = cap_top_exposure(
        cand[1], score[1], cand[0], score[0], cap, seed, rows=np.arange(n)
    )
    users, position = np.nonzero(take >= 0)
    which = take[users, position]
    queue, slot = (which >= width).astype(np.int64), which % width
    return pd.DataFrame(
        {
            "u": users.astype(np.int64),
            "position": position.astype(np.int64),
            "c": cand[queue, users, slot].astype(np.int64),
            "score": capped[users, position].astype(np.float64),
            "flags": flags[queue, users, slot].astype(np.int32),
        }
    )
