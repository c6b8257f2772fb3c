"""Tribes on Spark: CPM by distributed local moving, small groups merged, memberships.

The local engine runs igraph's Leiden on the Constant Potts Model (CPM). Leiden is a
sequential algorithm; here the same objective is optimised by *local moving* in bulk
synchronous rounds. With edge weights in median-weight units (as locally) and
``γ = resolution``, moving user ``u`` from tribe ``A`` to ``B`` changes the CPM quality by::

    gain = [w(u, B) - γ·n_B] - [w(u, A \\ u) - γ·(n_A - 1)]

The edges are partitioned by ``u`` once and kept in executor memory; the driver holds the
label vector (U,) and broadcasts it with the tribe sizes each round. One ``mapInPandas`` pass
computes, partition by partition with numpy, every user's best tribe (ties: the lower label);
a seeded random half of the users that gain move (moving everyone at once makes neighbours
swap labels forever). Rounds stop when nobody gains or after ``max_rounds``. Then, as
locally, tribes smaller than ``min_size`` are dissolved: each member joins the remaining
tribe it has the most affinity with (one more pass), else has none; users without edges have
none. Cost per round: O(E) on the executors, O(U) on the driver and in the broadcast.

Agreement with the local engine is measured, not assumed: ``tests/test_spark.py`` checks the
NMI between the two engines' tribes on a planted network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["cpm_local_moving", "frame_memberships"]


def _best_by_group(u: np.ndarray, lab: np.ndarray, w: np.ndarray):
    """Sum ``w`` per (u, lab); return the unique pairs and their sums."""
    base = int(lab.max()) + 1
    keys, inverse = np.unique(u * base + lab, return_inverse=True)
    return keys // base, keys % base, np.bincount(inverse, weights=w, minlength=len(keys))


def _first_per_user(u: np.ndarray, score: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Indices of each user's highest ``score`` (ties: lower ``lab``)."""
    order = np.lexsort((lab, -score, u))
    first = np.r_[True, u[order][1:] != u[order][:-1]] if len(order) else np.zeros(0, bool)
    return order[first]


def _moves(
    edges: pd.DataFrame, labels: np.ndarray, sizes: np.ndarray, active: np.ndarray, gamma: float
) -> pd.DataFrame:
    """The users of ``edges`` (all their edges) that gain by moving: ``(u, c, active)``."""
    u = edges["u"].to_numpy(np.int64)
    if len(u) == 0:
        return pd.DataFrame(
            {"u": np.zeros(0, np.int64), "c": np.zeros(0, np.int64), "active": np.zeros(0, bool)}
        )
    uu, cc, wc = _best_by_group(
        u, labels[edges["v"].to_numpy(np.int64)], edges["w"].to_numpy(np.float64)
    )
    own = labels[uu]
    users = np.unique(uu)
    stay = -gamma * (sizes[labels[users]] - 1.0)
    inside = cc == own
    stay[np.searchsorted(users, uu[inside])] += wc[inside]
    out = ~inside
    score = wc[out] - gamma * sizes[cc[out]]
    best = _first_per_user(uu[out], score, cc[out])
    bu, bc, bs = uu[out][best], cc[out][best], score[best]
    gains = bs > stay[np.searchsorted(users, bu)] + 1e-9
    return pd.DataFrame({"u": bu[gains], "c": bc[gains], "active": active[bu[gains]]})


def _merge_small(edges: pd.DataFrame, labels: np.ndarray, small: np.ndarray) -> pd.DataFrame:
    """For users of dissolved tribes, the kept tribe they have the most affinity with."""
    u = edges["u"].to_numpy(np.int64)
    v = edges["v"].to_numpy(np.int64)
    ok = small[u] & (labels[v] >= 0) if len(u) else np.zeros(0, bool)
    if not ok.any():
        return pd.DataFrame({"u": np.zeros(0, np.int64), "c": np.zeros(0, np.int64)})
    uu, cc, wc = _best_by_group(u[ok], labels[v[ok]], edges["w"].to_numpy(np.float64)[ok])
    best = _first_per_user(uu, wc, cc)
    best = best[wc[best] > 0]
    return pd.DataFrame({"u": uu[best], "c": cc[best]})


def cpm_local_moving(
    spark,
    affinity,
    n_users: int,
    *,
    resolution: float,
    seed: int,
    min_size: int,
    partitions: int,
    max_rounds: int = 60,
) -> np.ndarray:
    """(U,) int64 tribe label per user (arbitrary ids >= 0, -1 none) from the symmetric
    ``affinity`` edges ``(src, dst, w)``."""
    from pyspark.sql import functions as F

    median = (
        affinity.filter(F.col("src") < F.col("dst"))
        .agg(F.percentile("w", 0.5).alias("m"))
        .first()["m"]
    )
    if median is None:
        return np.full(n_users, -1, dtype=np.int64)
    edges = (
        affinity.select(
            F.col("src").cast("long").alias("u"),
            F.col("dst").cast("long").alias("v"),
            (F.col("w") / float(median)).alias("w"),
        )
        .repartition(partitions, "u")
        .persist()
    )
    has_edge = np.zeros(n_users, dtype=bool)
    has_edge[edges.select("u").distinct().toPandas()["u"].to_numpy(np.int64)] = True
    labels = np.arange(n_users, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sc = spark.sparkContext
    gamma = float(resolution)
    for _ in range(max_rounds):
        sizes = np.bincount(labels, minlength=n_users).astype(np.float64)
        shared = sc.broadcast((labels, sizes, rng.random(n_users) < 0.5))

        def step(batches, shared=shared):
            parts = list(batches)
            if parts:
                lab, size, active = shared.value
                yield _moves(pd.concat(parts, ignore_index=True), lab, size, active, gamma)

        moves = edges.mapInPandas(step, "u long, c long, active boolean").toPandas()
        shared.destroy()
        if moves.empty:
            break
        go = moves["active"].to_numpy(bool)
        labels[moves["u"].to_numpy(np.int64)[go]] = moves["c"].to_numpy(np.int64)[go]

    labels[~has_edge] = -1
    sizes = np.bincount(labels[labels >= 0], minlength=n_users)
    small = (labels >= 0) & (sizes[np.maximum(labels, 0)] < min_size)
    if small.any():
        labels = np.where(small, -1, labels)
        shared = sc.broadcast((labels, small))

        def merge(batches, shared=shared):
            parts = list(batches)
            if parts:
                lab, sm = shared.value
                yield _merge_small(pd.concat(parts, ignore_index=True), lab, sm)

        moved = edges.mapInPandas(merge, "u long, c long").toPandas()
        shared.destroy()
        labels[moved["u"].to_numpy(np.int64)] = moved["c"].to_numpy(np.int64)
    edges.unpersist()
    return labels


def frame_memberships(affinity, labels_df, *, top_k: int, min_share: float):
    """``(u, k, share)``: the share of each user's affinity going to each tribe, the user's own
    tribe first (even at 0), then shares >= ``min_share``, at most ``top_k`` — as
    :func:`tribes.communities.tribe_affinities`. ``labels_df``: ``(u, k)`` for labelled users."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    degree = affinity.groupBy(F.col("src").alias("u")).agg(F.sum("w").alias("degree"))
    share = (
        affinity.join(labels_df.select(F.col("u").alias("dst"), "k"), "dst")
        .groupBy(F.col("src").alias("u"), "k")
        .agg(F.sum("w").alias("w"))
        .join(degree, "u")
        .select("u", "k", (F.col("w") / F.col("degree")).alias("share"))
    )
    own = labels_df.select("u", F.col("k").alias("own"))
    cand = (
        share.join(own, "u", "left")
        .unionByName(labels_df.select("u", "k", F.lit(0.0).alias("share"), F.col("k").alias("own")))
        .groupBy("u", "k")
        .agg(F.sum("share").alias("share"), F.first("own", ignorenulls=True).alias("own"))
        .withColumn("primary", F.coalesce(F.col("k") == F.col("own"), F.lit(False)))
        .filter(F.col("primary") | (F.col("share") >= min_share))
    )
    order = Window.partitionBy("u").orderBy(
        F.col("primary").desc(), F.col("share").desc(), F.col("k").asc()
    )
    return (
        cand.withColumn("_r", F.row_number().over(order))
        .filter(F.col("_r") <= top_k)
        .select("u", "k", "share")
    )
