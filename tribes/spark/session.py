"""A SparkSession configured for the recompute: quiet, capped, local-friendly.

``local[*]``-style masters run everything in one JVM on this machine: the driver memory is
the cap, shuffles use a few partitions (the default 200 would mean hundreds of tiny tasks on
small data) and Spark binds to 127.0.0.1. On a cluster URL only what the job needs is set;
the cluster's own defaults (executor memory, partitions) apply unless given here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["is_local", "spark_session"]

_LOG4J = Path(__file__).with_name("log4j2.properties")


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


@contextmanager
def spark_session(
    master: str = "local[*]",
    *,
    partitions: int = 0,
    driver_memory: str = "2g",
    app_name: str = "tribes-recompute",
) -> Iterator:
    """Start (or reuse) a SparkSession; stop it on exit if this call started it.

    ``partitions`` sets ``spark.sql.shuffle.partitions`` (0: twice the local cores, or the
    cluster's default). Python workers run this interpreter (``PYSPARK_PYTHON``), so they
    import the same tribes.
    """
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    if existing is not None:
        yield existing
        return
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    local = is_local(master)
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{_LOG4J}")
        .config("spark.executor.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{_LOG4J}")
    )
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        cores = os.cpu_count() or 1
        if master.startswith("local[") and master[6:-1].isdigit():
            cores = int(master[6:-1])
        builder = (
            builder.config("spark.driver.memory", driver_memory)
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", str(partitions or max(2, 2 * cores)))
            .config("spark.default.parallelism", str(partitions or max(2, 2 * cores)))
        )
    elif partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(partitions))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()
