"""Small DataFrame helpers shared by the Spark stages (the counterparts of ``tribes.sparse``)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["symmetric_pairs", "to_csr", "top_k"]


def top_k(df, k: int, *, row: str = "u", col: str = "c", value: str = "w"):
    """Each ``row``'s ``k`` largest ``value`` entries (ties: smaller ``col``), like
    :func:`tribes.sparse.top_k_per_row`. One window over a shuffle by ``row``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy(row).orderBy(F.col(value).desc(), F.col(col).asc())
    return (
        df.withColumn("_rank", F.row_number().over(order)).filter(F.col("_rank") <= k).drop("_rank")
    )


def symmetric_pairs(df, *, src: str = "src", dst: str = "dst", value: str = "w"):
    """``(a, b, ab, ba)`` for every unordered pair seen in either direction: the value of
    (a→b) and of (b→a), 0 when absent. Each pair appears in both orders."""
    from pyspark.sql import functions as F

    forward = df.select(
        F.col(src).alias("a"),
        F.col(dst).alias("b"),
        F.col(value).alias("ab"),
        F.lit(0.0).alias("ba"),
    )
    backward = df.select(
        F.col(dst).alias("a"),
        F.col(src).alias("b"),
        F.lit(0.0).alias("ab"),
        F.col(value).alias("ba"),
    )
    return (
        forward.unionByName(backward)
        .groupBy("a", "b")
        .agg(F.sum("ab").alias("ab"), F.sum("ba").alias("ba"))
    )


def to_csr(pdf, shape: tuple[int, int], *, row: str, col: str, value: str | None) -> sp.csr_matrix:
    """A collected pandas frame as float32 CSR (duplicates summed; ``value=None``: ones)."""
    rows = pdf[row].to_numpy(np.int64)
    cols = pdf[col].to_numpy(np.int64)
    data = np.ones(len(rows), np.float32) if value is None else pdf[value].to_numpy(np.float32)
    m = sp.csr_matrix((data, (rows, cols)), shape=shape, dtype=np.float32)
    m.sum_duplicates()
    m.sort_indices()
    return m
