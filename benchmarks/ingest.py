"""Section 3: ingest throughput, from a file (`tribes ingest --json`) and through `POST /v1/events`."""

from __future__ import annotations

import http.client
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from . import datasets
from .common import Context, Section, Target, fmt_ms, percentiles, run_measured
from .server import Gunicorn

__all__ = ["run"]

FILE_TARGET = 50_000  # events/s
BATCH = 1000


def _file_figures(ctx: Context, section: Section) -> None:
    largest = max(ctx.sizes)
    if largest not in ctx.builds:  # the recompute section did not run: ingest the file on its own
        work = ctx.root / "tmp" / "ingest-file"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        events = datasets.Dataset(largest, ctx.root / f"n{largest}").events
        if not events.is_file():
            events = work / "events.jsonl"
            run_measured(
                ctx,
                [
                    sys.executable,
                    "-m",
                    "tribes",
                    "generate",
                    "--users",
                    str(largest),
                    "--seed",
                    str(ctx.seed),
                    "--out",
                    str(events),
                    "--quiet",
                ],
                timeout=120 + largest / 200,
                log_name=f"ingest-generate-{largest}",
            )
        m = run_measured(
            ctx,
            [
                sys.executable,
                "-m",
                "tribes",
                "ingest",
                str(events),
                "--json",
                "--quiet",
                "--db",
                f"sqlite:///{work / 'tribes.db'}",
            ],
            timeout=300 + largest / 50,
            log_name=f"ingest-file-{largest}",
        )
        ctx.builds.setdefault(largest, {})["ingest_only"] = (
            m,
            json.loads(m.stdout.strip().splitlines()[-1]),
        )
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for n in sorted(ctx.builds):
        b = ctx.builds[n]
        if "ingest_report" in b:
            m, rep = b["steps"]["ingest"], b["ingest_report"]
        elif "ingest_only" in b:
            m, rep = b["ingest_only"]
        else:
            continue
        by_type = ", ".join(f"{k} {v:,}" for k, v in rep["by_type"].items())
        rows.append(
            [
                f"{n:,}",
                f"{rep['lines']:,}",
                f"{rep['seconds']:.1f}",
                f"{rep['events_per_second']:,}",
                f"{m.wall_s:.1f}",
                f"{rep['lines'] / m.wall_s:,.0f}",
                f"{m.peak_rss_mib:,.0f}",
                by_type,
            ]
        )
        if n == largest:
            eps = rep["events_per_second"]
            section.targets.append(
                Target(
                    "Ingest from a file (`tribes ingest --json`: events_per_second)",
                    f"≥ {FILE_TARGET:,} events/s",
                    f"{eps:,} events/s",
                    eps >= FILE_TARGET,
                    f"{n:,}-user file, {rep['lines']:,} events, empty store",
                )
            )
            print(f"[ingest] file, {n:,} users: {eps:,} events/s", flush=True)
    section.add("### From a file", "")
    section.add(
        "`tribes ingest FILE --json` into an empty SQLite store (one transaction, batches of "
        "`TRIBES_BATCH_SIZE` = 2000); *events/s* is the report's `events_per_second` (lines ÷ "
        "seconds inside `ingest_lines`), *wall* includes process start-up and migrations.",
        "",
    )
    section.table(
        [
            "users",
            "events",
            "seconds (report)",
            "events/s (report)",
            "wall s",
            "events/s (wall)",
            "peak RSS MiB",
            "events by type",
        ],
        rows,
    )


def _batches(path: Path, size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                batch.append(line.rstrip(b"\n"))
                if len(batch) == size:
                    yield batch
                    batch = []
    if batch:
        yield batch


def _post_phase(port: int, batches: Iterator[list[bytes]], seconds: float, kind: str) -> dict:
    """POST batches sequentially on one keep-alive connection for ``seconds``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    accepted = posted = failed = 0
    latencies: list[float] = []
    exhausted = True
    started = time.perf_counter()
    try:
        for batch in batches:
            if kind == "ndjson":
                body, ctype = b"\n".join(batch), "application/x-ndjson"
            else:
                body, ctype = b"[" + b",".join(batch) + b"]", "application/json"
            t0 = time.perf_counter()
            conn.request("POST", "/v1/events", body=body, headers={"Content-Type": ctype})
            response = conn.getresponse()
            payload = response.read()
            latencies.append((time.perf_counter() - t0) * 1000)
            posted += len(batch)
            if response.status == 200:
                accepted += json.loads(payload)["accepted"]
            else:
                failed += 1
            if time.perf_counter() - started >= seconds:
                exhausted = False
                break
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    return {
        "kind": kind,
        "batches": len(latencies),
        "posted": posted,
        "accepted": accepted,
        "failed": failed,
        "seconds": elapsed,
        "eps": posted / elapsed if elapsed else 0.0,
        "latency": percentiles(latencies),
        "exhausted": exhausted,
    }


def _http_figures(ctx: Context, section: Section) -> None:
    largest = max(ctx.sizes)
    events = datasets.Dataset(largest, ctx.root / f"n{largest}").events
    if not events.is_file():
        events = datasets.ensure(ctx, min(ctx.sizes)).events
    work = ctx.root / "tmp" / "ingest-http"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    seconds = 3.0 if ctx.quick else 20.0
    env = {"TRIBES_DB": f"sqlite:///{work / 'tribes.db'}", "TRIBES_MODELS": str(work / "models")}
    phases = []
    try:
        with Gunicorn(ctx, "wsgi:app", name="ingest", env=env) as server:
            source = _batches(events, BATCH)
            phases.append(_post_phase(server.port, source, seconds, "ndjson"))
            phases.append(_post_phase(server.port, source, seconds / 2, "json"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section.add("### Through the API", "")
    section.add(
        f"`POST /v1/events`, batches of {BATCH:,} consecutive lines of the {largest:,}-user file, posted "
        "one after another on one keep-alive connection to gunicorn (project defaults: 2 gthread "
        f"workers × 4 threads) over an empty store: NDJSON for {seconds:g} s, then the following lines "
        f"as JSON arrays for {seconds / 2:g} s.",
        "",
    )
    rows = []
    for p in phases:
        lat = p["latency"]
        rows.append(
            [
                p["kind"] + (" (file exhausted: stopped early)" if p["exhausted"] else ""),
                f"{p['batches']:,}",
                f"{p['posted']:,}",
                f"{p['accepted']:,}",
                f"{p['failed']:,}",
                f"{p['seconds']:.1f}",
                f"{p['eps']:,.0f}",
                fmt_ms(lat["median"]),
                fmt_ms(lat["p99"]),
            ]
        )
        print(
            f"[ingest] POST /v1/events ({p['kind']}): {p['eps']:,.0f} events/s, batch p50 "
            f"{fmt_ms(lat['median'])} ms",
            flush=True,
        )
    section.table(
        [
            "body",
            "batches",
            "events posted",
            "accepted",
            "non-200 batches",
            "seconds",
            "events/s",
            "batch p50 ms",
            "batch p99 ms",
        ],
        rows,
    )


def run(ctx: Context, section: Section) -> None:
    _file_figures(ctx, section)
    _http_figures(ctx, section)
