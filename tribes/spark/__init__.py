"""The Spark engine: the recompute on Apache Spark (``tribes recompute --engine spark``).

Nothing here is imported by ``import tribes``: pyspark (the ``spark`` extra) and a Java
runtime are needed only when this package is used. The driver reads the store into a
:class:`~tribes.snapshot.Snapshot`, exports it to Parquet (:mod:`.export`), and Spark builds
the interaction graph with DataFrames (:mod:`.graph`), the affinity and topic neighbours
(:mod:`.affinity`), tribes by distributed CPM local moving (:mod:`.communities`), candidates
with joins, MLlib ALS and distributed PPR (:mod:`.candidates`), and ranks pairs with the same
Python functions as the local engine (:mod:`.rank`, ``mapInPandas``/``applyInPandas``).
:mod:`.engine` assembles the model in exactly the local engine's format.
"""

from __future__ import annotations

import importlib.util
import shutil

__all__ = ["SparkUnavailable", "check_spark"]


class SparkUnavailable(RuntimeError):
    """pyspark or a Java runtime is missing (the message says how to install it)."""


def check_spark() -> None:
    """Raise :class:`SparkUnavailable` unless pyspark, pyarrow, pandas and ``java`` are present."""
    missing = [m for m in ("pyspark", "pyarrow", "pandas") if importlib.util.find_spec(m) is None]
    if missing:
        raise SparkUnavailable(
            f"the spark engine needs {', '.join(missing)}: "
            "pip install 'tribes[spark]' (or `make install`)"
        )
    import os

    java_home = os.environ.get("JAVA_HOME")
    if (
        not (java_home and os.path.exists(os.path.join(java_home, "bin", "java")))
        and shutil.which("java") is None
    ):
        raise SparkUnavailable(
            "the spark engine needs a Java 17+ runtime: `bash scripts/java.sh` "
            "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
