"""Soak: gunicorn on 127.0.0.1 under a steady, bounded request rate with events interleaved.

``python -m benchmarks.soak --minutes 5`` (``make soak``) builds a synthetic store and model
under ``var/soak`` if needed, starts gunicorn (2 gthread workers, an API key required), and
sends ``--rate`` requests per second (open loop: each request has its due time, so a slow
server gets a backlog rather than a lighter load) from ``--connections`` keep-alive clients:
people, conversations, a user's tribes, the tribes list, a tribe page, the model — and every
``--events-every``-th request a ``POST /v1/events`` batch of new users, posts and follows. It
samples the workers' memory (RSS, and its private part RssAnon, which is what grows on a leak;
the memory-mapped model counts in RSS only), starts ``tribes recompute`` every
``--recompute-every`` seconds so models swap under load, and prints requests, errors, latency, events sent
and found in the store (lost = sent - found), and the memory at the start, the end and its
slope (overall, and between model swaps: loading a new model is a one-off step). Exit 1 when
any request or recompute failed, an event was lost, a key reached the log or the private memory
grew faster than ``--max-growth-mib-per-min`` while serving one model.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .common import REPO, THREAD_CAPS, Context, percentiles
from .server import Gunicorn

__all__ = ["SoakResult", "build_store", "run_soak"]

API_KEY = "soak-key-7f3a9c"  # only ever sent in the Authorization header; checked absent from logs


@dataclass
class SoakResult:
    seconds: float
    rate: float
    requests: int
    errors: int
    statuses: dict[str, int]
    exceptions: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    max_lateness_ms: float
    event_batches: int
    events_sent: int
    users_sent: int
    users_found: int
    lost: int
    rss_mib: list[float] = field(default_factory=list)  # workers' total, per sample
    anon_mib: list[float] = field(default_factory=list)
    sample_times: list[float] = field(default_factory=list)
    anon_slope_mib_per_min: float = 0.0
    rss_slope_mib_per_min: float = 0.0
    key_in_logs: bool = False
    workers_restarted: bool = False
    recomputes: int = 0  # `tribes recompute` runs during the soak (hot swaps under load)
    recompute_failures: int = 0
    versions_served: list[str] = field(default_factory=list)  # as /v1/model reported them, in order
    swap_times: list[float] = field(default_factory=list)  # when each recompute finished (s)
    steady_anon_slope_mib_per_min: float = 0.0  # between swaps, after warm-up (the leak signal)

    def lines(self) -> list[str]:
        return [
            f"soak: {self.seconds:.0f} s at {self.rate:g} requests/s on 127.0.0.1 (2 gthread workers, API key)",
            f"requests {self.requests:,}  errors {self.errors}  statuses {self.statuses}  exceptions {self.exceptions}",
            f"latency p50 {self.p50_ms:.1f} ms  p99 {self.p99_ms:.1f} ms  max {self.max_ms:.1f} ms  "
            f"(worst lateness of the schedule {self.max_lateness_ms:.0f} ms)",
            f"events: {self.event_batches} batches, {self.events_sent:,} events, {self.users_sent:,} new users; "
            f"found in the store {self.users_found:,}; lost {self.lost}",
            f"worker memory: RSS {self.rss_mib[0]:.1f} -> {self.rss_mib[-1]:.1f} MiB "
            f"(slope {self.rss_slope_mib_per_min:+.2f} MiB/min), private (RssAnon) {self.anon_mib[0]:.1f} -> "
            f"{self.anon_mib[-1]:.1f} MiB (slope {self.anon_slope_mib_per_min:+.2f} MiB/min after warm-up; "
            f"{self.steady_anon_slope_mib_per_min:+.2f} MiB/min between model swaps)",
            f"recomputes during the soak: {self.recomputes} ({self.recompute_failures} failed); "
            f"model versions served: {len(self.versions_served)}",
            f"API key in logs: {'YES' if self.key_in_logs else 'no'}; workers restarted: "
            f"{'yes' if self.workers_restarted else 'no'}",
        ]


def build_store(root: Path, users: int, seed: int = 7) -> None:
    """A synthetic store and one published model under ``root`` (skipped when both exist)."""
    from tribes.artifacts import ModelStore
    from tribes.ingest import ingest_objects
    from tribes.recompute import recompute
    from tribes.store import Store
    from tribes.synth import SynthConfig, generate

    root.mkdir(parents=True, exist_ok=True)
    with Store.open(f"sqlite:///{root / 'tribes.db'}") as store:
        if not store.table_counts()["users"]:
            report = ingest_objects(store, generate(SynthConfig(n_users=users, seed=seed)))
            if not report.committed:
                raise RuntimeError(f"synthetic data did not validate: {report.problems[:3]}")
        if ModelStore(root / "models").current() is None:
            recompute(store, root / "models")


def _memory(pids: list[int]) -> tuple[float, float]:
    """(RSS, RssAnon) in MiB summed over ``pids`` (Linux /proc)."""
    rss = anon = 0.0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) / 1024
            elif line.startswith("RssAnon:"):
                anon += int(line.split()[1]) / 1024
    return rss, anon


def _slope(times: list[float], values: list[float], skip: float) -> float:
    """Least-squares slope in units per minute of the samples after the first ``skip`` share."""
    start = int(len(times) * skip)
    t, v = np.asarray(times[start:]), np.asarray(values[start:])
    if len(t) < 3 or t[-1] - t[0] <= 0:
        return 0.0
    return float(np.polyfit(t / 60.0, v, 1)[0])


def _steady_slope(
    times: list[float], values: list[float], skip: float, swaps: list[float], settle: float
) -> float:
    """Duration-weighted mean slope (per minute) of the windows between model swaps after the
    first ``skip`` share, each window starting ``settle`` s after its swap: growth while
    serving one model, without the one-off step of loading the next."""
    start = times[int(len(times) * skip)] if times else 0.0
    windows, lo = [], start
    for swap in sorted(swaps):
        windows.append((lo, swap))
        lo = max(lo, swap + settle)
    windows.append((lo, float("inf")))
    total = weight = 0.0
    for lo, hi in windows:
        keep = [(t, v) for t, v in zip(times, values, strict=True) if lo <= t < hi]
        if len(keep) >= 3 and keep[-1][0] - keep[0][0] >= 20:
            span = keep[-1][0] - keep[0][0]
            total += _slope([t for t, _ in keep], [v for _, v in keep], 0.0) * span
            weight += span
    return total / weight if weight else 0.0


def _users_and_tribes(root: Path) -> tuple[list[str], list[int]]:
    from tribes.recompute import open_current

    model = open_current(root / "models")
    listed = np.flatnonzero((np.asarray(model.arrays["people_items"]) >= 0).any(axis=1))
    rng = np.random.default_rng(0)
    pick = rng.choice(listed, size=min(500, len(listed)), replace=False)
    return [str(model.user_ids[i]) for i in pick], [int(t["tribe_id"]) for t in model.tribes]


def run_soak(
    root: Path,
    *,
    seconds: float,
    rate: float = 100.0,
    connections: int = 8,
    events_every: int = 20,
    sample_seconds: float = 5.0,
    warmup_share: float = 0.2,
    log_dir: Path | None = None,
    recompute_every: float = 0.0,
) -> SoakResult:
    """Drive gunicorn over the store and models under ``root`` for ``seconds``; with
    ``recompute_every`` > 0 a ``tribes recompute`` starts that often (the API swaps models under
    load)."""
    users, tribes = _users_and_tribes(root)
    ctx = Context(sizes=[], quick=True, root=log_dir or root / "run")
    env = {
        "TRIBES_DB": f"sqlite:///{root / 'tribes.db'}",
        "TRIBES_MODELS": str(root / "models"),
        "TRIBES_API_KEYS": API_KEY,
    }
    headers = {"Authorization": f"Bearer {API_KEY}"}
    stamp = f"{int(time.time())}"
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    exceptions: dict[str, int] = {}
    lateness = [0.0]
    versions: list[str] = []
    recomputes = {"runs": 0, "failed": 0}
    swaps: list[float] = []
    sent = {"batches": 0, "events": 0, "users": 0}
    total = int(seconds * rate)

    def request_for(k: int) -> tuple[str, str, bytes | None]:
        if events_every and k % events_every == events_every - 1:
            prefix = f"soak-{stamp}-{k}"
            # events as a client sends them: dated now (ingest rejects the future)
            now = int(time.time())
            batch = []
            for i in range(2):
                user = f"{prefix}-{i}"
                batch += [
                    {"type": "user", "id": user, "ts": now, "interests": ["#soak"]},
                    {
                        "type": "follow",
                        "src": user,
                        "dst": users[(k + i) % len(users)],
                        "ts": now,
                    },
                    {
                        "type": "post",
                        "id": f"{user}-p",
                        "author": user,
                        "ts": now,
                        "text": f"soak post {k} #soak",
                    },
                ]
            return "POST", "/v1/events", json.dumps(batch).encode()
        user = users[(k * 7919) % len(users)]
        choice = k % 10
        if choice < 4:
            return "GET", f"/v1/users/{user}/suggestions/people?limit=20", None
        if choice < 7:
            return "GET", f"/v1/users/{user}/suggestions/conversations?limit=20", None
        if choice == 7:
            return "GET", f"/v1/users/{user}/tribes", None
        if choice == 8:
            return "GET", f"/v1/tribes/{tribes[k % len(tribes)]}" if tribes else "/v1/tribes", None
        return "GET", "/v1/tribes?limit=20" if (k // 10) % 3 == 0 else "/v1/model", None

    with Gunicorn(ctx, "wsgi:app", name="soak", env=env, workers=2, threads=4) as server:
        first_workers = server.workers()
        t0 = time.monotonic()
        samples: list[tuple[float, float, float]] = []
        done = threading.Event()

        def sampler() -> None:
            while not done.is_set():
                rss, anon = _memory(server.workers())
                samples.append((time.monotonic() - t0, rss, anon))
                done.wait(sample_seconds)

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            while True:
                k = next(counter)
                if k >= total:
                    break
                due = t0 + k / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                method, path, body = request_for(k)
                hdrs = dict(headers, **({"Content-Type": "application/json"} if body else {}))
                started = time.monotonic()
                try:
                    conn.request(method, path, body=body, headers=hdrs)
                    response = conn.getresponse()
                    data = response.read()
                    status = response.status
                    if path == "/v1/model" and status == 200:
                        version = json.loads(data)["version"]
                        with lock:
                            if not versions or versions[-1] != version:
                                versions.append(version)
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        exceptions[type(exc).__name__] = exceptions.get(type(exc).__name__, 0) + 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                    continue
                elapsed = time.monotonic() - started
                with lock:
                    latencies.append(elapsed * 1000)
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    lateness[0] = max(lateness[0], (started - due) * 1000)
                    if body and status == 200:
                        sent["batches"] += 1
                        sent["events"] += 6
                        sent["users"] += 2
            conn.close()

        def recomputer() -> None:
            run_env = dict(
                os.environ,
                **THREAD_CAPS,
                TRIBES_DB=env["TRIBES_DB"],
                TRIBES_MODELS=env["TRIBES_MODELS"],
            )
            while not done.wait(recompute_every):
                proc = subprocess.run(
                    [sys.executable, "-m", "tribes", "recompute", "-q"],
                    cwd=REPO,
                    env=run_env,
                    capture_output=True,
                    timeout=max(600, seconds),
                )
                with lock:
                    recomputes["runs"] += 1
                    recomputes["failed"] += proc.returncode != 0
                    swaps.append(time.monotonic() - t0)

        watcher = threading.Thread(target=sampler, daemon=True)
        watcher.start()
        rebuilder = threading.Thread(target=recomputer, daemon=True)
        if recompute_every > 0:
            rebuilder.start()
        pool = [threading.Thread(target=client, daemon=True) for _ in range(connections)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(seconds + 120)
        elapsed = time.monotonic() - t0
        done.set()
        watcher.join(10)
        if recompute_every > 0:
            rebuilder.join(max(600, seconds))
        rss, anon = _memory(server.workers())
        samples.append((time.monotonic() - t0, rss, anon))
        restarted = set(server.workers()) != set(first_workers)
        log_text = server.log_path.read_text(errors="replace")

    db = sqlite3.connect(root / "tribes.db")
    try:
        found = db.execute(
            "SELECT COUNT(*) FROM users WHERE id LIKE ?", (f"soak-{stamp}-%",)
        ).fetchone()[0]
    finally:
        db.close()
    p = percentiles(latencies)
    ok = sum(n for s, n in statuses.items() if s.startswith("2"))
    times = [s[0] for s in samples]
    return SoakResult(
        seconds=elapsed,
        rate=rate,
        requests=sum(statuses.values()) + sum(exceptions.values()),
        errors=(sum(statuses.values()) - ok) + sum(exceptions.values()),
        statuses=statuses,
        exceptions=exceptions,
        p50_ms=p["median"],
        p99_ms=p["p99"],
        max_ms=p["max"],
        max_lateness_ms=lateness[0],
        event_batches=sent["batches"],
        events_sent=sent["events"],
        users_sent=sent["users"],
        users_found=found,
        lost=sent["users"] - found,
        rss_mib=[round(s[1], 1) for s in samples],
        anon_mib=[round(s[2], 1) for s in samples],
        sample_times=[round(t, 1) for t in times],
        anon_slope_mib_per_min=round(_slope(times, [s[2] for s in samples], warmup_share), 3),
        steady_anon_slope_mib_per_min=round(
            _steady_slope(
                times, [s[2] for s in samples], warmup_share, swaps, settle=2 * sample_seconds + 5
            ),
            3,
        ),
        swap_times=[round(t, 1) for t in swaps],
        rss_slope_mib_per_min=round(_slope(times, [s[1] for s in samples], warmup_share), 3),
        key_in_logs=API_KEY in log_text,
        workers_restarted=restarted,
        recomputes=recomputes["runs"],
        recompute_failures=recomputes["failed"],
        versions_served=versions,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="duration (default 5)")
    parser.add_argument("--seconds", type=float, help="duration in seconds (overrides --minutes)")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="requests per second (default 100)"
    )
    parser.add_argument("--connections", type=int, default=8, help="client connections (default 8)")
    parser.add_argument(
        "--events-every", type=int, default=20, help="every Nth request posts events (default 20)"
    )
    parser.add_argument(
        "--users", type=int, default=3000, help="synthetic users when building the store"
    )
    parser.add_argument(
        "--root", default=str(REPO / "var" / "soak"), help="store and models folder"
    )
    parser.add_argument(
        "--max-growth-mib-per-min",
        type=float,
        default=1.0,
        help="largest accepted slope of the workers' private memory after warm-up",
    )
    parser.add_argument(
        "--recompute-every",
        type=float,
        default=120.0,
        help="start `tribes recompute` every this many seconds (0: never; default 120)",
    )
    parser.add_argument("--json", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds else args.minutes * 60
    base, work = Path(args.root) / "base", Path(args.root) / "work"
    print(f"soak: synthetic store and model in {base} ({args.users} users; built once)", flush=True)
    build_store(base, args.users)
    shutil.rmtree(work, ignore_errors=True)  # every soak starts from the same data
    work.mkdir(parents=True)
    for name in ("tribes.db", "models"):
        copy = shutil.copytree if (base / name).is_dir() else shutil.copy2
        copy(base / name, work / name)
    result = run_soak(
        work,
        seconds=seconds,
        rate=args.rate,
        connections=args.connections,
        events_every=args.events_every,
        sample_seconds=max(1.0, min(10.0, seconds / 30)),
        recompute_every=args.recompute_every,
    )
    for line in result.lines():
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(result), indent=1))
    failed = (
        result.errors
        or result.lost
        or result.key_in_logs
        or result.workers_restarted
        or result.recompute_failures
        or result.steady_anon_slope_mib_per_min > args.max_growth_mib_per_min
    )
    print("soak: FAILED" if failed else "soak: passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
