"""``tribes recompute --engine spark``: store → Spark fit → a new model version.

The same contract as :func:`tribes.recompute.recompute`: tribe ids carry over from the
current version, a failure leaves ``current`` untouched, old versions are pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from ..artifacts import ModelStore
from ..recompute import open_current, publish
from ..store import Store
from . import check_spark

__all__ = ["recompute_spark"]


def recompute_spark(
    store: Store,
    models_root: str | Path,
    params: Mapping[str, Any] | None = None,
    *,
    master: str = "local[*]",
    keep: int = 5,
    threads: int = 1,
    export_root: str | None = None,
    driver_memory: str = "2g",
    partitions: int = 0,
    on_stage: Callable[[str], None] | None = None,
) -> tuple[str, Any]:
    """Fit with Spark at ``master`` on the whole store, publish it as ``current``, prune.

    ``export_root``: where the Parquet snapshot is written (must be shared storage that every
    executor can read when ``master`` is a cluster). Raises
    :class:`tribes.spark.SparkUnavailable` when pyspark or Java is missing.
    """
    check_spark()
    from .engine import fit_spark
    from .session import is_local, spark_session

    if not is_local(master) and not export_root:
        from ..errors import InputError

        raise InputError(
            "a cluster master needs a shared export location for the Parquet snapshot "
            "(--export URL or TRIBES_SPARK_EXPORT)",
            field="spark_export",
        )
    models = ModelStore(models_root)
    previous = open_current(models_root)
    with (
        spark_session(master, partitions=partitions, driver_memory=driver_memory) as spark,
        threadpool_limits(limits=threads),
    ):
        model = fit_spark(
            spark,
            store,
            dict(params or {}),
            previous=previous,
            on_stage=on_stage,
            export_root=export_root,
        )
    return publish(model, models, store, previous, keep), model
