"""Candidate sources on Spark, with the local engine's filters.

Each source is a DataFrame ``(u, c, w)``: up to ``candidates_per_source`` candidates ``c`` for
user ``u`` with the source's own score, filtered by :func:`keep` *before* it truncates, as
:meth:`tribes.candidates.CandidateContext.keep` does: never ``u`` themself, anyone ``u``
follows, blocks or mutes or is blocked or muted by, a dismissed person, or a
non-discoverable one; zero scores dropped.

* ``conversation_2hop``: two hops on the reply/mention graph (each side's top 30 partners);
* ``follow_2hop``: mutual contacts, Adamic-Adar or resource-allocation weighted (as locally);
* ``same_tribe``: tribe shares × each tribe's starter pack (answer rate × activity);
* ``shared_interests``: topic cosine neighbours;
* ``als``: Spark MLlib ALS with implicit preferences on the interaction graph;
* ``ppr``: personalized PageRank by forward push (the same Python function), for the most
  active users, spread over the executors with ``mapInPandas``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..params import Params
from ..ppr import ppr_forward_push
from .frames import top_k

__all__ = ["exclusion_pairs", "frame_candidates", "keep"]


def exclusion_pairs(tables):
    """``(u, c)`` pairs never suggested (self excluded separately): follows, blocks and mutes
    either way, dismissed people."""
    from pyspark.sql import functions as F

    def both(name):
        t = tables[name]
        return t.select(F.col("src").alias("u"), F.col("dst").alias("c")).unionByName(
            t.select(F.col("dst").alias("u"), F.col("src").alias("c"))
        )

    follows = tables["follows"].select(F.col("src").alias("u"), F.col("dst").alias("c"))
    return (
        follows.unionByName(both("blocks"))
        .unionByName(both("mutes"))
        .unionByName(tables["dismissed"].select("u", "c"))
        .distinct()
    )


def keep(df, excluded, discoverable, k: int):
    """Filter ``(u, c, w)`` (self, ``excluded`` pairs, non-discoverable ``c``, w <= 0), then
    each u's top ``k`` (ties: smaller c)."""
    from pyspark.sql import functions as F

    filtered = (
        df.filter((F.col("u") != F.col("c")) & (F.col("w") > 0))
        .join(excluded, ["u", "c"], "left_anti")
        .join(discoverable, "c", "left_semi")
    )
    return top_k(filtered, k)


def _product(left, right):
    """``left @ right`` on ``(u, m, w)`` × ``(m, c, w)`` → ``(u, c, w)``."""
    from pyspark.sql import functions as F

    l_, r_ = left.alias("l"), right.alias("r")
    return (
        l_.join(r_, F.col("l.c") == F.col("r.u"))
        .groupBy(F.col("l.u").alias("u"), F.col("r.c").alias("c"))
        .agg(F.sum(F.col("l.w") * F.col("r.w")).alias("w"))
    )


def _contacts(graph):
    """``(u, c)``: people in touch either way (a follow, a reply or a mention), no self-pairs,
    as :func:`tribes.candidates.contact_graph`."""
    from pyspark.sql import functions as F

    edges = graph.follows.select("src", "dst").unionByName(graph.interaction.select("src", "dst"))
    both = edges.unionByName(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    return (
        both.filter(F.col("src") != F.col("dst"))
        .select(F.col("src").alias("u"), F.col("dst").alias("c"))
        .distinct()
    )


def _mutual_contacts(contacts, params: Params):
    """``(u, v, Σ_z w(z))`` over shared contacts ``z``, ``w(z) = 1 / log deg(z)`` (Adamic-Adar)
    or ``1 / deg(z)`` (``mutual_contacts_index`` resource allocation): each u's
    ``mutual_contacts_max`` least connected contacts as middles, hubs (more than
    ``mutual_contacts_hub_degree`` contacts) skipped, as :func:`tribes.candidates.follow_2hop`."""
    from pyspark.sql import functions as F

    p = params
    degree = contacts.groupBy(F.col("u").alias("z")).agg(F.count("*").alias("deg"))
    spread = F.greatest(F.col("deg"), F.lit(2)).cast("double")
    value = 1.0 / (spread if p.mutual_contacts_index == "resource_allocation" else F.log(spread))
    weight = degree.filter(
        (F.col("deg") >= 2) & (F.col("deg") <= p.mutual_contacts_hub_degree)
    ).select("z", value.alias("zw"))
    middles = contacts.join(weight, contacts["c"] == weight["z"]).select(
        "u", F.col("z").alias("c"), F.col("zw").alias("w")
    )
    left = top_k(middles, p.mutual_contacts_max).select("u", "c", F.lit(1.0).alias("w"))
    right = contacts.join(weight, contacts["u"] == weight["z"]).select(
        F.col("z").alias("u"), "c", F.col("zw").alias("w")
    )
    return _product(left, right)


def _edges(df):
    from pyspark.sql import functions as F

    return df.select(F.col("src").alias("u"), F.col("dst").alias("c"), F.col("w"))


def als_candidates(spark, interaction, params: Params, n_users: int, partitions: int):
    """``(u, c, w)``: MLlib ALS (implicit) on ``log1p(10·interaction)``, top ``k`` unseen per
    active user. Already-interacted items are removed from ``k + extra`` recommendations,
    where ``extra`` is the 99th percentile of interactions per user."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    p = params
    ratings = interaction.select(
        F.col("src").cast("int").alias("u"),
        F.col("dst").cast("int").alias("c"),
        F.log1p(F.col("w") * 10).cast("float").alias("r"),
    )
    if n_users < 3 or ratings.isEmpty():
        return spark.createDataFrame([], "u int, c int, w double")
    k = min(p.candidates_per_source, n_users - 1)
    degree = ratings.groupBy("u").count()
    extra = int(degree.agg(F.percentile("count", 0.99)).first()[0] or 0)
    blocks = max(1, min(partitions, 8))
    model = ALS(
        rank=max(1, min(p.als_factors, n_users - 1)),
        maxIter=p.als_iterations,
        regParam=p.als_regularization,
        implicitPrefs=True,
        alpha=1.0,
        userCol="u",
        itemCol="c",
        ratingCol="r",
        seed=p.seed,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        coldStartStrategy="drop",
    ).fit(ratings)
    recs = (
        model.recommendForAllUsers(min(k + extra, n_users))
        .select("u", F.explode("recommendations").alias("rec"))
        .select("u", F.col("rec.c").alias("c"), F.col("rec.rating").cast("double").alias("w"))
    )
    unseen = recs.join(ratings.select("u", "c"), ["u", "c"], "left_anti").filter(
        (F.col("w") > 0) & ~F.isnan("w")
    )
    return top_k(unseen, k)


def ppr_candidates(spark, interaction_csr, params: Params, partitions: int):
    """``(u, c, w)``: forward-push PPR for the ``ppr_max_users`` users with most interaction
    edges (ties: lower index), the graph broadcast once to every executor."""
    p = params
    g = interaction_csr
    degree = np.diff(g.indptr)
    active = np.flatnonzero(degree > 0)
    if len(active) > p.ppr_max_users:
        active = np.sort(active[np.lexsort((active, -degree[active]))[: p.ppr_max_users]])
    if len(active) == 0:
        return spark.createDataFrame([], "u int, c int, w double")
    shared = spark.sparkContext.broadcast((g.indptr, g.indices, g.data))
    alpha, epsilon = p.ppr_alpha, p.ppr_epsilon

    def push(batches):
        indptr, indices, data = shared.value
        for batch in batches:
            us, cs, ws = [], [], []
            for u in batch["u"].to_numpy():
                nodes, scores = ppr_forward_push(
                    indptr, indices, data, int(u), alpha=alpha, epsilon=epsilon
                )
                us.append(np.full(len(nodes), u, np.int32))
                cs.append(np.asarray(nodes, np.int32))
                ws.append(np.asarray(scores, np.float64))
            if us:
                yield pd.DataFrame(
                    {"u": np.concatenate(us), "c": np.concatenate(cs), "w": np.concatenate(ws)}
                )

    users = spark.createDataFrame(pd.DataFrame({"u": active.astype(np.int32)})).repartition(
        partitions
    )
    return users.mapInPandas(push, "u int, c int, w double")


def frame_candidates(
    spark,
    tables,
    graph,
    knn,
    memberships,
    packs,
    interaction_csr,
    params: Params,
    n_users: int,
    partitions: int,
) -> dict:
    """Source name → filtered ``(u, c, w)`` DataFrame (lazy except ALS's fit).

    ``memberships``: ``(u, k, share)``; ``packs``: ``(k, c, w)`` starter packs."""
    from pyspark.sql import functions as F

    p = params
    n = p.candidates_per_source
    excluded = exclusion_pairs(tables)
    discoverable = tables["users"].filter(F.col("discoverable")).select(F.col("u").alias("c"))

    talk = _edges(graph.talk)
    talk = (
        talk.unionByName(talk.select(F.col("c").alias("u"), F.col("u").alias("c"), "w"))
        .groupBy("u", "c")
        .agg(F.sum("w").alias("w"))
    )
    talk30 = top_k(talk, 30)
    contacts = _contacts(graph)
    out = {
        "conversation_2hop": keep(_product(talk30, talk30), excluded, discoverable, n),
        "follow_2hop": keep(_mutual_contacts(contacts, p), excluded, discoverable, n),
        "same_tribe": keep(
            _product(
                memberships.select("u", F.col("k").alias("c"), F.col("share").alias("w")), packs
            ),
            excluded,
            discoverable,
            n,
        ),
        "shared_interests": keep(knn, excluded, discoverable, n),
        "als": keep(
            als_candidates(spark, graph.interaction, p, n_users, partitions),
            excluded,
            discoverable,
            n,
        ),
        "ppr": keep(
            ppr_candidates(spark, interaction_csr, p, partitions), excluded, discoverable, n
        ),
    }
    return out
