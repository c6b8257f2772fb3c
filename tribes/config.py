"""Settings: one object that documents every key and its default.

Precedence: command-line flags > ``TRIBES_*`` environment variables > defaults.
Model hyperparameters live with the model (``tribes.model``), not here: these are the
deployment's settings — where data lives and how the service runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from .rendered import DEFAULT_MAX_BYTES

__all__ = ["Settings", "describe_settings"]


def _setting(default: Any, doc: str, minimum: int | None = None) -> Any:
    """A documented setting; an integer one with ``minimum`` is checked by :meth:`Settings.load`."""
    return field(default=default, metadata={"doc": doc, "minimum": minimum})


@dataclass(frozen=True)
class Settings:
    """Where tribes keeps its data and how it runs. Each key reads ``TRIBES_<KEY>``."""

    db: str = _setting(
        "sqlite:///var/tribes.db",
        "Store URL. sqlite:///PATH (relative to the working directory), sqlite:////ABS/PATH, "
        "or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB (an existing database).",
    )
    models: str = _setting(
        "var/models", "Folder of versioned model artifacts; `current` points at the served one."
    )
    keep_models: int = _setting(
        5, "Model versions kept by recompute (the current one is always kept).", minimum=1
    )
    recompute_threads: int = _setting(
        1,
        "Cores a recompute may use: BLAS/OpenMP threads and block threads "
        "(tribes.parallel; same results for any number). Leave cores to the API.",
        minimum=1,
    )
    api_keys: str = _setting(
        "",
        "Comma-separated API keys; when set (or api_keys_file), /v1/* needs `Authorization: Bearer <key>`.",
    )
    api_keys_file: str = _setting("", "File of API keys, one per line (or `sha256:<hex>` digests).")
    max_body_bytes: int = _setting(
        10 * 1024 * 1024, "Largest POST body the API accepts (413 beyond).", minimum=1
    )
    render_cache_mb: int = _setting(
        DEFAULT_MAX_BYTES // 2**20,
        "Rendered suggestion items each API worker keeps per model version (MiB, "
        "least recently used lists dropped beyond): a request for a kept list "
        "renders nothing. Raise it when many more distinct users ask than fit.",
        minimum=1,
    )
    model_check_seconds: int = _setting(
        2, "How often each API worker looks for a new current model.", minimum=0
    )
    rate_limit_per_minute: int = _setting(
        0, "Requests per minute per API key (0: no limit); 429 beyond.", minimum=0
    )
    batch_size: int = _setting(2000, "Events written per statement batch during ingest.", minimum=1)
    max_problems: int = _setting(
        20, "Problems listed per ingest before the rest are only counted.", minimum=0
    )
    max_future_seconds: int = _setting(
        86_400,
        "Ingest (CLI and API) rejects events dated more than this many seconds "
        "after the server's clock: the newest event is the recompute's now, so "
        "one wrong client clock would age everything else.",
        minimum=0,
    )
    engine: str = _setting(
        "local",
        "Recompute engine: `local` (numpy/scipy in one process) or `spark` (pyspark; the `spark` extra and Java 17+).",
    )
    spark_master: str = _setting(
        "local[*]",
        "Spark master URL for `--engine spark`: local[N] or a cluster (spark://host:7077, yarn, k8s://...).",
    )
    spark_export: str = _setting(
        "",
        "Where the Spark engine writes the Parquet snapshot; empty: a temporary local folder. A cluster needs shared storage every executor reads (path or hdfs://, s3a:// URL).",
    )
    spark_driver_memory: str = _setting(
        "2g", "Spark driver memory in local mode (the driver JVM also runs the executors there)."
    )
    spark_partitions: int = _setting(
        0,
        "spark.sql.shuffle.partitions; 0: twice the local cores, or the cluster's default.",
        minimum=0,
    )

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from defaults, then ``TRIBES_*`` variables, then ``overrides``.

        ``None`` values in ``overrides`` (flags not given) are ignored.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"TRIBES_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.type, raw, f.name)
        for key, value in (overrides or {}).items():
            if value is not None:
                values[key] = value
        settings = replace(cls(), **values)
        for f in fields(cls):
            low = f.metadata.get("minimum")
            if low is not None and getattr(settings, f.name) < low:
                raise ValueError(
                    f"TRIBES_{f.name.upper()}: must be at least {low}, got {getattr(settings, f.name)!r}"
                )
        return settings


def _coerce(type_name: Any, raw: str, name: str) -> Any:
    if type_name in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"TRIBES_{name.upper()}: expected an integer, got {raw!r}") from None
    return raw


def describe_settings() -> list[tuple[str, Any, str]]:
    """``(environment variable, default, description)`` for every setting."""
    out = []
    for f in fields(Settings):
        default = f.default if f.default is not MISSING else None
        doc, low = f.metadata.get("doc", ""), f.metadata.get("minimum")
        out.append(
            (f"TRIBES_{f.name.upper()}", default, doc if low is None else f"{doc} (at least {low})")
        )
    return out
