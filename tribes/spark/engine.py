"""``fit_spark``: the recompute on Spark, producing a model in exactly the local format.

Where each stage runs (``U`` users, ``E`` edges, ``P`` posts):

============== ========================================================================
driver         read the store (snapshot), text → topics and the per-thread arrays
               (``tribes.graph.build_graph``), export to Parquet; per-user vectors
               (behaviour, O(U + E)); tribe labels and stable ids; conversations
               (``tribes.conversations``, O(threads × candidates)); writing the model
Spark          the interaction graph (DataFrames), topic neighbours and affinity, tribes
               (CPM local moving), memberships, every candidate source (joins, MLlib ALS,
               PPR in ``mapInPandas``), pair scores, the exposure budget and the lists
============== ========================================================================

Learning (``learn_weights``) runs on the driver with the local engine's code, as a local fit
runs it (:meth:`tribes.model.TribeModel._learn`: on a connected sample of about
``learn_graph_users`` users above that size, so its cost does not grow with the network), and
the Spark stages rank with what it chose. Not supported here (recorded in the manifest's
``engine``): a ``tribe_objective`` other than CPM: tribes are always CPM at ``resolution``
(``auto``'s check for fragmented communities and its Infomap and modularity alternatives run
only locally; learning's own candidates, on its sample, use them).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..behaviour import measure_behaviour
from ..candidates import CandidateContext, exclusion_matrix, starter_packs
from ..communities import _renumber_by_size, label_tribes, match_tribe_ids
from ..conversations import rank_conversations, thread_stats
from ..graph import build_graph
from ..model import TribeModel, _previous_membership, snapshot_from, stage_timer
from ..newcomers import with_newcomers
from ..params import Params
from ..ranking import RankedPeople, popularity_pivot, top_accounts
from ..sparse import row_normalize
from .frames import to_csr

__all__ = ["SparkTribeModel", "fit_spark"]


class SparkTribeModel(TribeModel):
    """A :class:`~tribes.model.TribeModel` fitted by :func:`fit_spark`: same arrays, same
    files; the manifest also says which engine built it."""

    engine_: dict

    def manifest(self) -> dict:
        out = super().manifest()
        out["engine"] = self.engine_
        return out


def _frame(spark, columns: dict[str, np.ndarray], schema: str):
    import pandas as pd

    return spark.createDataFrame(pd.DataFrame(columns), schema)


def fit_spark(
    spark,
    data: Any,
    params: dict | None = None,
    *,
    previous: Any = None,
    on_stage: Callable[[str], None] | None = None,
    export_root: str | None = None,
    partitions: int | None = None,
    collect_candidates: bool = False,
) -> SparkTribeModel:
    """Fit on ``data`` (a ``Store``, ``Snapshot``, path or events) with ``spark``.

    ``export_root``: where the Parquet snapshot goes (shared storage on a cluster); default a
    temporary local folder, removed afterwards. ``partitions``: buckets for the grouped pandas
    steps (default ``spark.sql.shuffle.partitions``). ``collect_candidates``: also keep every
    source's candidates (``candidates_``, name → (U, U) CSR), the interaction graph
    (``interaction_``) and the affinity (``affinity_``) on the driver, for notebooks and tests.
    """
    from pyspark.sql import functions as F

    from .affinity import frame_affinity, frame_topic_neighbours
    from .candidates import frame_candidates
    from .communities import cpm_local_moving, frame_memberships
    from .export import export_snapshot
    from .graph import build_frame_graph
    from .rank import rank_frames

    model = SparkTribeModel(**dict(params or {}))
    p = Params(**model.get_params()).validate()
    parts = int(partitions or spark.conf.get("spark.sql.shuffle.partitions"))
    model.timings_ = {}
    stage = stage_timer(model.timings_, on_stage)

    with stage("snapshot"):
        snap = snapshot_from(data)
    p = model._learn(snap, p, previous, stage)  # on the driver, as the local engine learns
    n = snap.n_users
    temp = None
    if export_root is None:
        temp = tempfile.TemporaryDirectory(prefix="tribes-spark-")
        export_root = temp.name
    try:
        with stage("graph"):
            graph = build_graph(snap, p)  # driver: topics (text) and per-thread arrays
            paths = export_snapshot(snap, graph.user_topic, export_root)
            tables = {name: spark.read.parquet(path) for name, path in paths.items()}
            frames = build_frame_graph(tables, p, snap.now)
            interaction = frames.interaction.localCheckpoint()
            talk = frames.talk.localCheckpoint()
            frames = replace(frames, interaction=interaction, talk=talk)
        with stage("affinity"):
            follows = (
                tables["follows"]
                .filter(F.col("src") != F.col("dst"))
                .select("src", "dst")
                .distinct()
            )
            knn = frame_topic_neighbours(
                spark,
                graph.user_topic,
                k=max(p.topic_neighbours, p.candidates_per_source),
                min_similarity=p.min_topic_similarity,
                max_df=p.knn_max_df,
                partitions=parts,
            ).localCheckpoint()
            affinity = frame_affinity(frames, follows, knn, p).localCheckpoint()
        with stage("tribes"):
            raw = cpm_local_moving(
                spark,
                affinity,
                n,
                resolution=p.resolution,
                seed=p.seed,
                min_size=p.min_tribe_size,
                partitions=parts,
            )
            labels = _renumber_by_size(raw)
            labelled = np.flatnonzero(labels >= 0)
            labels_df = _frame(
                spark,
                {"u": labelled.astype(np.int32), "k": labels[labelled].astype(np.int32)},
                "u int, k int",
            )
            k = int(labels.max()) + 1 if n and labels.max() >= 0 else 0
            member_pdf = frame_memberships(
                affinity, labels_df, top_k=p.tribe_top_k, min_share=p.min_tribe_share
            ).toPandas()
            memberships = sp.csr_matrix(
                (
                    member_pdf["share"].to_numpy(np.float32),
                    (member_pdf["u"].to_numpy(np.int64), member_pdf["k"].to_numpy(np.int64)),
                ),
                shape=(n, k),
            )
            topics, names = label_tribes(
                labels, graph.user_topic, graph.vocabulary, n_topics=p.tribe_topics
            )
            tribe_ids = match_tribe_ids(
                labels,
                *_previous_membership(previous, snap.user_ids),
                min_jaccard=p.stable_id_min_jaccard,
            )
        with stage("behaviour"):
            behaviour = measure_behaviour(snap, graph, labels, p)
        with stage("candidates"):
            pack = starter_packs(labels, behaviour, p.candidates_per_source).tocoo()
            packs = _frame(
                spark,
                {
                    "u": pack.row.astype(np.int32),
                    "c": pack.col.astype(np.int32),
                    "w": pack.data.astype(np.float64),
                },
                "u int, c int, w double",
            )
            members = _frame(
                spark,
                {
                    "u": member_pdf["u"].to_numpy(np.int32),
                    "k": member_pdf["k"].to_numpy(np.int32),
                    "share": member_pdf["share"].to_numpy(np.float64),
                },
                "u int, k int, share double",
            )
            sources = frame_candidates(
                spark, tables, frames, knn, members, packs, graph.interaction, p, n, parts
            )
            sources = {name: df.localCheckpoint() for name, df in sources.items()}
            source_counts = {name: int(df.count()) for name, df in sources.items()}
            if collect_candidates:
                model.interaction_ = to_csr(
                    interaction.toPandas(), (n, n), row="src", col="dst", value="w"
                )
                model.affinity_ = to_csr(
                    affinity.toPandas(), (n, n), row="src", col="dst", value="w"
                )
                model.candidates_ = {
                    name: to_csr(df.toPandas(), (n, n), row="u", col="c", value="w")
                    for name, df in sources.items()
                }
        with stage("rank_people"):
            shared = {
                "labels": labels,
                "behaviour": behaviour,
                "memberships": memberships.tocsr(),
                "topic": row_normalize(graph.user_topic, "l2").tocsr(),
                "top": top_accounts(snap, behaviour.followers),
            }
            lists = rank_frames(
                spark,
                sources,
                interaction,
                shared,
                p,
                pivot=popularity_pivot(p, behaviour.followers),
                partitions=parts,
            )
            # the newcomers' filters, and the conversations' below
            exclusion = exclusion_matrix(snap)
            people = with_newcomers(
                _people_arrays(lists, n, p.max_people, source_counts, shared["top"]),
                snap,
                behaviour,
                p,
                exclusion,
            )
        with stage("conversations"):
            ctx = CandidateContext(
                snap=snap,
                graph=graph,
                labels=labels,
                memberships=memberships,
                topic_knn=sp.csr_matrix((n, n), dtype=np.float32),
                behaviour=behaviour,
                params=p,
                exclusion=exclusion,
            )
            stats = thread_stats(ctx)
            threads = rank_conversations(ctx, stats)
    finally:
        if temp is not None:
            temp.cleanup()

    model.tribe_method_ = "cpm"  # CPM local moving, whatever tribe_objective says (see engine_)
    model._set_fitted(
        snap,
        graph,
        labels,
        tribe_ids,
        topics,
        names,
        memberships,
        behaviour,
        people,
        stats,
        threads,
    )
    model.engine_ = {
        "name": "spark",
        "spark_version": spark.version,
        "master": spark.sparkContext.master,
        "shuffle_partitions": parts,
        "tribe_objective": "cpm"
        if p.tribe_objective == "cpm"
        else f"{p.tribe_objective}: not supported by this engine, cpm used",
    }
    return model


def _people_arrays(
    lists, n: int, width: int, sources: dict[str, int], top: np.ndarray
) -> RankedPeople:
    items = np.full((n, width), -1, dtype=np.int32)
    scores = np.zeros((n, width), dtype=np.float32)
    flags = np.zeros((n, width), dtype=np.uint8)
    rows = lists["u"].to_numpy(np.int64)
    pos = lists["position"].to_numpy(np.int64)
    items[rows, pos] = lists["c"].to_numpy(np.int32)
    scores[rows, pos] = lists["score"].to_numpy(np.float32)
    flags[rows, pos] = lists["flags"].to_numpy(np.uint8)
    return RankedPeople(items=items, scores=scores, flags=flags, sources=sources, top=top)
