"""Synthetic datasets under ``var/bench/n<N>/``: events file, SQLite store, model versions.

``build`` runs ``tribes generate`` → ``tribes ingest`` → ``tribes recompute`` as subprocesses
and measures each; ``ensure`` reuses a finished folder (``built.json``) when the recompute
section is not part of the run, so ``--only api`` does not rebuild a model first.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import Context, Measured, display_path, run_measured

__all__ = ["Dataset", "build", "copy_store", "ensure", "graph_probe"]


@dataclass(frozen=True)
class Dataset:
    n: int
    folder: Path

    @property
    def events(self) -> Path:
        return self.folder / "events.jsonl"

    @property
    def db_path(self) -> Path:
        return self.folder / "tribes.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def models(self) -> Path:
        return self.folder / "models"

    @property
    def marker(self) -> Path:
        return self.folder / "built.json"

    def current(self) -> Path:
        name = (self.models / "current").read_text().strip()
        return self.models / name

    def manifest(self) -> dict:
        return json.loads((self.current() / "manifest.json").read_text())

    def model_arrays(self, name: str) -> np.ndarray:
        return np.load(self.current() / f"{name}.npy", mmap_mode="r", allow_pickle=False)

    def sample_users(self, k: int, seed: int = 0) -> list[str]:
        """``k`` user ids (seeded) among those with precomputed people and conversations."""
        ids = self.model_arrays("user_ids")
        listed = (np.asarray(self.model_arrays("people_items")) >= 0).any(axis=1)
        listed &= (np.asarray(self.model_arrays("conv_items")) >= 0).any(axis=1)
        pool = np.flatnonzero(listed)
        rng = np.random.default_rng(seed)
        pick = rng.choice(pool, size=min(k, len(pool)), replace=False)
        return [str(ids[i]) for i in pick]


def _timeouts(n: int) -> dict[str, float]:
    """Generous bounds (seconds) so a stuck stage stops by itself: ~10x what this machine needs."""
    return {
        "generate": 120 + n / 200,
        "ingest": 300 + n / 50,
        "recompute": 600 + n / 10,
        "probe": 300 + n / 50,
    }


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tribes", *args]


def build(ctx: Context, n: int) -> dict:
    """Build the dataset of ``n`` users from scratch; return the measurements of each step."""
    ds = Dataset(n, ctx.root / f"n{n}")
    shutil.rmtree(ds.folder, ignore_errors=True)
    ds.folder.mkdir(parents=True)
    limits = _timeouts(n)
    steps: dict[str, Measured] = {}
    print(f"[recompute] n={n:,}: generate …", flush=True)
    steps["generate"] = run_measured(
        ctx,
        _cli(
            "generate",
            "--users",
            str(n),
            "--seed",
            str(ctx.seed),
            "--out",
            str(ds.events),
            "--quiet",
        ),
        timeout=limits["generate"],
        log_name=f"n{n}-generate",
    )
    print(f"[recompute] n={n:,}: ingest … (generate {steps['generate'].wall_s:.1f} s)", flush=True)
    steps["ingest"] = run_measured(
        ctx,
        _cli("ingest", str(ds.events), "--json", "--quiet", "--db", ds.db_url),
        timeout=limits["ingest"],
        log_name=f"n{n}-ingest",
    )
    report = json.loads(steps["ingest"].stdout.strip().splitlines()[-1])
    print(
        f"[recompute] n={n:,}: recompute … (ingest {steps['ingest'].wall_s:.1f} s, "
        f"{report['events_per_second']:,} events/s)",
        flush=True,
    )
    steps["recompute"] = run_measured(
        ctx,
        _cli("recompute", "--quiet", "--db", ds.db_url, "--models", str(ds.models)),
        timeout=limits["recompute"],
        log_name=f"n{n}-recompute",
    )
    manifest = ds.manifest()
    print(
        f"[recompute] n={n:,}: done (recompute {steps['recompute'].wall_s:.1f} s, peak RSS "
        f"{steps['recompute'].peak_rss_mib:,.0f} MiB)",
        flush=True,
    )
    ds.marker.write_text(
        json.dumps(
            {
                "n": n,
                "seed": ctx.seed,
                "version": manifest.get("version"),
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    )
    ctx.datasets[n] = ds
    result = {
        "steps": steps,
        "ingest_report": report,
        "manifest": manifest,
        "events_bytes": ds.events.stat().st_size,
        "db_bytes": _db_bytes(ds),
    }
    ctx.builds[n] = result
    return result


def _db_bytes(ds: Dataset) -> int:
    return sum(p.stat().st_size for p in ds.folder.glob("tribes.db*"))


def ensure(ctx: Context, n: int) -> Dataset:
    """The dataset of ``n`` users: built in this run, reused from ``var/bench``, or built now."""
    if n in ctx.datasets:
        return ctx.datasets[n]
    ds = Dataset(n, ctx.root / f"n{n}")
    try:
        marker = json.loads(ds.marker.read_text())
        ok = marker.get("seed") == ctx.seed and ds.current().is_dir() and ds.events.is_file()
    except (OSError, ValueError):
        ok = False
    if ok:
        print(f"[data] reusing {ds.folder} (built {marker.get('built')})", flush=True)
        ctx.notes.append(
            f"The {n:,}-user dataset was reused from an earlier run "
            f"(`{display_path(ds.folder)}`, built {marker.get('built')}); "
            "`--only` without `recompute` does not rebuild it."
        )
        ctx.datasets[n] = ds
        return ds
    build(ctx, n)
    return ctx.datasets[n]


def copy_store(ds: Dataset, dest: Path) -> str:
    """A consistent copy of the dataset's SQLite store (online backup API); its URL."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for old in dest.parent.glob(dest.name + "*"):
        old.unlink()
    src = sqlite3.connect(ds.db_path)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return f"sqlite:///{dest}"


def graph_probe(ctx: Context, ds: Dataset) -> dict:
    """Interaction-graph bytes per edge and PPR timings of ``ds`` (a subprocess, cached per run)."""
    if ds.n in ctx.probes:
        return ctx.probes[ds.n]
    sources = 20 if ctx.quick else 100
    print(f"[graph] n={ds.n:,}: snapshot → build_graph → {sources} PPR sources …", flush=True)
    m = run_measured(
        ctx,
        [
            sys.executable,
            "-m",
            "benchmarks.graph_probe",
            "--db",
            ds.db_url,
            "--sources",
            str(sources),
            "--seed",
            "0",
        ],
        timeout=_timeouts(ds.n)["probe"],
        log_name=f"n{ds.n}-graph-probe",
    )
    result = json.loads(m.stdout.strip().splitlines()[-1])
    result["wall_s"], result["peak_rss_mib"] = m.wall_s, m.peak_rss_mib
    ctx.probes[ds.n] = result
    return result
