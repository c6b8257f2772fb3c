"""Section 2: the JSON API under gunicorn, side by side with a minimal Flask app, per worker class.

For each worker class both servers (tribes over the smallest model, the minimal app) run under
the same gunicorn settings; the three endpoints are loaded in interleaved rounds (minimal,
people, conversations, then again), each round a fresh wrk run with new connections, so the
ratio compares figures taken minutes apart at most and a lucky or unlucky spread of keep-alive
connections over the workers is averaged rather than decisive.
"""

from __future__ import annotations

import math
import statistics

from . import datasets
from .common import Context, Section, Target, display_path, fmt_ms
from .load import LoadResult, ensure_wrk, python_load, write_script, wrk_load, wrk_version
from .server import Gunicorn

__all__ = ["run"]

RATIO_TARGET = 0.75
P99_TARGET_MS = 20.0
CONNECTIONS, WRK_THREADS = 32, 2
ENDPOINTS = (
    ("minimal", "/minimal"),
    ("people", "/suggestions/people"),
    ("conversations", "/suggestions/conversations"),
    ("tribes", "/tribes"),
)
# wrk has no open-loop rate control (wrk2 is not packaged): a pause before each request paces
# the CONNECTIONS connections at about PACED_RPS requests/s in all, for p99 without queueing.
PACED_RPS = 400
SUGGESTIONS = ("people", "conversations")  # the endpoints the targets are about
# The API runs as in production, with an API key required on /v1/*: every request (the
# minimal app's too, which ignores it) carries this header.
API_KEY = "bench-api-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# (worker class, workers, threads per worker)
CLASSES = (("sync", 2, 1), ("gthread", 2, 4))


def _label(worker_class: str, workers: int, threads: int) -> str:
    if worker_class == "gthread":
        return f"gthread ({workers} workers × {threads} threads)"
    return f"{worker_class} ({workers} workers)"


def _split(r: LoadResult, worker_class: str) -> str:
    if worker_class == "sync":
        return "–"  # no keep-alive: a connection lives for one request
    return "/".join(str(c) for c in r.split) if r.split else "?"


def _summary(runs: list[LoadResult]) -> dict:
    requests = sum(r.requests for r in runs)
    seconds = sum(r.seconds for r in runs)
    return {
        "rps": requests / seconds if seconds else 0.0,
        "requests": requests,
        "p50": statistics.median(r.p50_ms for r in runs),
        "p99": statistics.median(r.p99_ms for r in runs),
        "p99s": [r.p99_ms for r in runs],
        "max": max(r.max_ms for r in runs),
        "non2xx": sum(r.non2xx for r in runs),
        "errors": sum(r.errors for r in runs),
        "bytes": statistics.mean(r.bytes_per_response for r in runs),
        "cpu": statistics.median(c) if (c := [r.cpu_us for r in runs if r.cpu_us]) else None,
    }


def run(ctx: Context, section: Section) -> None:
    n = min(ctx.sizes)
    ds = datasets.ensure(ctx, n)
    ids = ds.sample_users(500 if ctx.quick else 2000, seed=1)
    rounds, round_seconds, warmup, light_seconds = (1, 3, 1, 2) if ctx.quick else (3, 5, 2, 5)
    # After the first warm-up, the tribes endpoints get more: each worker renders a user's items
    # the first time it serves them (tribes/rendered.py), so the rounds measure the steady state
    # and the first seconds after a start are reported on their own ("cold" below).
    fill_seconds = 2 if ctx.quick else 8
    # A time-based fill is too short on a busy machine: at 700 req/s, 8 s left about 1 in 7 of the
    # (user, worker) lists unrendered, and the rounds then measured rendering. The fill runs at
    # least long enough for `fill_visits` requests per sampled user at the warm-up's rate (a sync
    # request goes to either worker: a user asked 12 times is missed by one with p = 2^-12).
    fill_visits, fill_cap = (2, 10) if ctx.quick else (12, 60)
    pause_ms = CONNECTIONS * 1000 / PACED_RPS
    wrk = ensure_wrk(ctx)
    tool = (
        f"wrk ({wrk_version(wrk)})"
        if wrk
        else "Python threads + http.client keep-alive (wrk unavailable)"
    )
    scripts = {
        name: write_script(ctx.root / "tmp" / f"rotate-{name}.lua", ids, suffix, AUTH)
        for name, suffix in ENDPOINTS
    }
    paced_scripts = {
        name: write_script(
            ctx.root / "tmp" / f"paced-{name}.lua", ids, suffix, AUTH, pause_ms=pause_ms
        )
        for name, suffix in ENDPOINTS
    }
    tribes_env = {
        "TRIBES_DB": ds.db_url,
        "TRIBES_MODELS": str(ds.models),
        "TRIBES_API_KEYS": API_KEY,
    }

    def load(
        server: Gunicorn,
        name: str,
        secs: int,
        tag: str,
        connections: int,
        threads: int,
        paced: bool = False,
    ) -> LoadResult:
        if wrk:
            return wrk_load(
                ctx,
                wrk,
                server.port,
                (paced_scripts if paced else scripts)[name],
                connections=connections,
                threads=threads,
                seconds=secs,
                log_name=tag,
                probe=server.connection_split,
                cpu=server.cpu_seconds,
            )
        suffix = dict(ENDPOINTS)[name]
        paths = [f"/v1/users/{i}{suffix}" for i in ids]
        return python_load(server.port, paths, connections=connections, seconds=secs, headers=AUTH)

    loaded: dict[tuple[str, str], list[LoadResult]] = {}
    light: dict[tuple[str, str], LoadResult] = {}
    cold: dict[tuple[str, str], LoadResult] = {}
    paced: dict[tuple[str, str], LoadResult] = {}
    for worker_class, workers, threads in CLASSES:
        label = _label(worker_class, workers, threads)
        common = {"worker_class": worker_class, "workers": workers, "threads": threads}
        with (
            Gunicorn(
                ctx, "benchmarks.minimal_app:create_app()", name="minimal", **common
            ) as minimal,
            Gunicorn(
                ctx, "wsgi:app", name="tribes", env=tribes_env, ready_path="/readyz", **common
            ) as tribes,
        ):
            servers = {name: tribes for name, _suffix in ENDPOINTS}
            servers["minimal"] = minimal
            for name, _suffix in ENDPOINTS:  # page cache, lazy model loads in every worker
                cold[(worker_class, name)] = r = load(
                    servers[name],
                    name,
                    warmup,
                    f"api-{worker_class}-{name}-warmup",
                    CONNECTIONS,
                    WRK_THREADS,
                )
                print(
                    f"[api] {label:32s} {name:14s} first {warmup} s: {r.rps:7,.0f} req/s  "
                    f"p99 {fmt_ms(r.p99_ms)} ms",
                    flush=True,
                )
            for name, _suffix in ENDPOINTS[1:]:  # each worker renders the sampled users' items
                rate = cold[(worker_class, name)].rps
                seconds = fill_seconds
                if rate > 0:
                    seconds = max(seconds, min(fill_cap, math.ceil(fill_visits * len(ids) / rate)))
                load(
                    servers[name],
                    name,
                    seconds,
                    f"api-{worker_class}-{name}-fill",
                    CONNECTIONS,
                    WRK_THREADS,
                )
            for i in range(rounds):
                for name, _suffix in ENDPOINTS:
                    r = load(
                        servers[name],
                        name,
                        round_seconds,
                        f"api-{worker_class}-{name}-{i + 1}",
                        CONNECTIONS,
                        WRK_THREADS,
                    )
                    loaded.setdefault((worker_class, name), []).append(r)
                    print(
                        f"[api] {label:32s} {name:14s} round {i + 1}: {r.rps:7,.0f} req/s  p50 "
                        f"{fmt_ms(r.p50_ms)} ms  p99 {fmt_ms(r.p99_ms)} ms  non-2xx {r.non2xx}  "
                        f"errors {r.errors}  connections per worker {_split(r, worker_class)}",
                        flush=True,
                    )
            for (
                name,
                _suffix,
            ) in ENDPOINTS:  # one connection per worker: service time, little queueing
                r = load(
                    servers[name],
                    name,
                    light_seconds,
                    f"api-{worker_class}-{name}-light",
                    workers,
                    1,
                )
                light[(worker_class, name)] = r
                print(
                    f"[api] {label:32s} {name:14s} {workers} connections: {r.rps:7,.0f} req/s  "
                    f"p50 {fmt_ms(r.p50_ms)} ms  p99 {fmt_ms(r.p99_ms)} ms",
                    flush=True,
                )
            for name, _suffix in ENDPOINTS:  # paced: p99 at a moderate rate, little queueing
                r = load(
                    servers[name],
                    name,
                    round_seconds,
                    f"api-{worker_class}-{name}-paced",
                    CONNECTIONS,
                    WRK_THREADS,
                    paced=True,
                )
                paced[(worker_class, name)] = r
                print(
                    f"[api] {label:32s} {name:14s} paced: {r.rps:7,.0f} req/s  "
                    f"p50 {fmt_ms(r.p50_ms)} ms  p99 {fmt_ms(r.p99_ms)} ms",
                    flush=True,
                )

    section.add(
        f"Model: the {n:,}-user dataset (`{display_path(ds.current())}`). Load: {tool}, {CONNECTIONS} "
        f"connections, {WRK_THREADS} threads, rotating over {len(ids):,} real user ids (default `limit` 20). "
        f"After a {warmup} s warm-up per endpoint (and {fill_seconds} s more for each tribes endpoint, "
        f"longer when the warm-up rate promises fewer than {fill_visits} requests per sampled user, "
        f"up to {fill_cap} s; "
        "so that every worker has rendered the sampled users' items once: see *cold* below), "
        f"{rounds} round(s) of minimal → people → conversations → tribes (`GET /v1/users/{{id}}/tribes`), "
        f"{round_seconds} s each ({rounds * round_seconds} s per endpoint in all), each run a fresh wrk "
        "process with new connections. Both servers run the project's `gunicorn.conf.py` with the same "
        "`TRIBES_WORKER_CLASS`/`TRIBES_WORKERS`/`TRIBES_THREADS`. *req/s* = all requests ÷ all seconds "
        "of the endpoint's rounds; *p50*/*p99* = median over rounds of wrk's percentiles; *worker CPU* "
        "= the gunicorn workers' user + system CPU time (from /proc) ÷ requests, median over rounds: "
        "unlike req/s it does not count time spent waiting for a core that other work holds, so "
        "*minimal's CPU ÷ this CPU* is the steadier ratio on a shared machine. The load "
        "generator shares the machine's CPUs with the workers (see *effective cores* above: how much "
        "parallel work the machine really does).",
        "",
    )
    rows = []
    for worker_class, workers, threads in CLASSES:
        base = _summary(loaded[(worker_class, "minimal")])
        for name, _suffix in ENDPOINTS:
            runs = loaded[(worker_class, name)]
            s = _summary(runs)
            ratio = s["rps"] / base["rps"] if base["rps"] else 0.0
            per_round = [
                r.rps / m.rps if m.rps else 0.0
                for r, m in zip(runs, loaded[(worker_class, "minimal")], strict=True)
            ]
            rows.append(
                [
                    _label(worker_class, workers, threads),
                    name,
                    f"{s['rps']:,.0f}",
                    " / ".join(f"{r.rps:,.0f}" for r in runs),
                    fmt_ms(s["p50"]),
                    fmt_ms(s["p99"]),
                    " / ".join(fmt_ms(x) for x in s["p99s"]),
                    fmt_ms(s["max"]),
                    f"{s['requests']:,}",
                    f"{s['non2xx']:,}",
                    f"{s['errors']:,}",
                    f"{s['bytes']:,.0f}",
                    " · ".join(_split(r, worker_class) for r in runs),
                    f"{ratio:.2f}",
                    " / ".join(f"{x:.2f}" for x in per_round),
                    f"{s['cpu']:,.0f}" if s["cpu"] else "–",
                    f"{base['cpu'] / s['cpu']:.2f}" if s["cpu"] and base["cpu"] else "–",
                ]
            )
            if name in SUGGESTIONS:
                at = f"{n:,}-user model, {worker_class} {workers}×{threads}, {CONNECTIONS} connections"
                section.targets.append(
                    Target(
                        f"API {name}: req/s ÷ minimal app req/s ({worker_class})",
                        f"≥ {RATIO_TARGET}",
                        f"{ratio:.2f} ({s['rps']:,.0f} / {base['rps']:,.0f})",
                        ratio >= RATIO_TARGET,
                        at,
                    )
                )
                section.targets.append(
                    Target(
                        f"API {name}: p99 latency ({worker_class})",
                        f"≤ {P99_TARGET_MS:g} ms",
                        f"{fmt_ms(s['p99'])} ms (minimal app: {fmt_ms(base['p99'])} ms)",
                        s["p99"] <= P99_TARGET_MS,
                        at,
                    )
                )
                p = paced[(worker_class, name)]
                section.targets.append(
                    Target(
                        f"API {name}: p99 latency, paced at ~{PACED_RPS} req/s ({worker_class})",
                        f"≤ {P99_TARGET_MS:g} ms",
                        f"{fmt_ms(p.p99_ms)} ms at {p.rps:,.0f} req/s (minimal app: "
                        f"{fmt_ms(paced[(worker_class, 'minimal')].p99_ms)} ms)",
                        p.p99_ms <= P99_TARGET_MS,
                        at,
                    )
                )
    section.table(
        [
            "worker class",
            "endpoint",
            "req/s",
            "req/s per round",
            "p50 ms",
            "p99 ms",
            "p99 per round",
            "max ms",
            "requests",
            "non-2xx",
            "socket errors",
            "bytes/response (with headers)",
            "connections per worker (per round)",
            "÷ minimal",
            "÷ minimal per round",
            "worker CPU µs/request",
            "minimal's CPU ÷ this CPU",
        ],
        rows,
    )
    section.add(
        "Latency is measured by the load generator in a closed loop (each connection sends its next "
        f"request when the previous answer arrives): with {CONNECTIONS} connections on 2 workers it is "
        "mostly queueing, p50 ≈ connections ÷ throughput. The sync worker closes the connection after "
        "each response (no keep-alive), so each of its requests also pays a TCP connect but lands on "
        "whichever worker is free. Under gthread a keep-alive connection stays with the worker that "
        "accepted it; each gthread worker listens on a socket of its own (`SO_REUSEPORT`, "
        "gunicorn.conf.py), so the kernel deals connections out by a hash of the client address "
        "(with one shared socket one worker often took 28-32 of the 32), while sync workers share "
        "one socket, so the free one takes the next connection: *connections per worker* (sampled "
        "half-way through each run from /proc) shows how they split.",
        "",
    )
    section.add("### Without queueing: one connection per worker", "")
    section.add(
        f"The same servers, one wrk thread, as many connections as workers, {light_seconds} s per "
        "endpoint: close to the time one request takes to serve (wrk still shares the CPUs, and under "
        "gthread both connections may sit on one worker: *per worker*).",
        "",
    )
    rows = []
    for worker_class, workers, threads in CLASSES:
        base_rps = light[(worker_class, "minimal")].rps
        for name, _suffix in ENDPOINTS:
            r = light[(worker_class, name)]
            rows.append(
                [
                    _label(worker_class, workers, threads),
                    name,
                    f"{workers}",
                    _split(r, worker_class),
                    f"{r.rps:,.0f}",
                    fmt_ms(r.p50_ms),
                    fmt_ms(r.p90_ms),
                    fmt_ms(r.p99_ms),
                    fmt_ms(r.max_ms),
                    f"{r.non2xx:,}",
                    f"{r.rps / base_rps:.2f}" if base_rps else "–",
                ]
            )
    section.table(
        [
            "worker class",
            "endpoint",
            "connections",
            "per worker",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "non-2xx",
            "÷ minimal",
        ],
        rows,
    )
    section.add("### Paced: p99 at a moderate rate", "")
    section.add(
        f"The same {CONNECTIONS} connections, but each waits {pause_ms:g} ms before every request "
        f"(wrk's `delay()`), which paces the load at about {PACED_RPS} req/s in all, {round_seconds} s "
        "per endpoint, after the rounds above (so caches are warm). wrk measures each request from "
        "its write to the end of its answer; the pause is not counted. This is not wrk2's open "
        "loop: a slow answer delays that connection's next request instead of queueing it.",
        "",
    )
    rows = []
    for worker_class, workers, threads in CLASSES:
        for name, _suffix in ENDPOINTS:
            r = paced[(worker_class, name)]
            rows.append(
                [
                    _label(worker_class, workers, threads),
                    name,
                    f"{r.rps:,.0f}",
                    fmt_ms(r.p50_ms),
                    fmt_ms(r.p90_ms),
                    fmt_ms(r.p99_ms),
                    fmt_ms(r.max_ms),
                    f"{r.non2xx:,}",
                ]
            )
    section.table(
        ["worker class", "endpoint", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "non-2xx"],
        rows,
    )
    section.add("### Cold: the first seconds after a start", "")
    section.add(
        f"The first {warmup} s of load on freshly started servers, per endpoint ({CONNECTIONS} "
        "connections): tribes renders a user's items the first time a worker serves them and keeps "
        "them for the model version (`tribes/rendered.py`), so this is what the first views after a "
        "start or a model swap cost.",
        "",
    )
    rows = []
    for worker_class, workers, threads in CLASSES:
        base_rps = cold[(worker_class, "minimal")].rps
        for name, _suffix in ENDPOINTS:
            r = cold[(worker_class, name)]
            rows.append(
                [
                    _label(worker_class, workers, threads),
                    name,
                    f"{r.rps:,.0f}",
                    fmt_ms(r.p50_ms),
                    fmt_ms(r.p99_ms),
                    f"{r.non2xx:,}",
                    f"{r.rps / base_rps:.2f}" if base_rps else "–",
                ]
            )
    section.table(
        ["worker class", "endpoint", "req/s", "p50 ms", "p99 ms", "non-2xx", "÷ minimal"], rows
    )
