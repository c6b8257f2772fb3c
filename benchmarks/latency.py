"""Section 4: cold-start suggestion latency (in-process and over HTTP) and PPR per source."""

from __future__ import annotations

import http.client
import json
import shutil
import time
from collections.abc import Callable

import numpy as np
import orjson

from . import datasets
from .common import Context, Section, Target, display_path, fmt_ms, percentiles
from .server import Gunicorn

__all__ = ["run"]

PPR_TARGET_MS = 50.0
KINDS = ("people", "conversations")


class _World:
    """What cold-start users are made of: the model's tribes, their members and topics."""

    def __init__(self, ds: datasets.Dataset):
        self.ids = np.asarray(ds.model_arrays("user_ids"))
        self.labels = np.asarray(ds.model_arrays("labels"))
        self.tribes = json.loads((ds.current() / "tribes.json").read_text())
        self.now = float(ds.manifest().get("data_now") or time.time())

    def events(self, user: str, rng: np.random.Generator) -> list[dict]:
        """A newcomer: a user event, 3 follows inside one tribe, 1 post on its topics."""
        k = int(rng.integers(len(self.tribes))) if self.tribes else -1
        members = np.flatnonzero(self.labels == k) if k >= 0 else np.arange(len(self.ids))
        if len(members) < 3:
            members = np.arange(len(self.ids))
        follows = rng.choice(members, size=3, replace=False)
        topics = (self.tribes[k].get("topics") or ["hello"])[:3] if k >= 0 else ["hello"]
        ts = self.now + 60
        out = [
            {
                "type": "user",
                "id": user,
                "ts": ts,
                "name": "Bench Newcomer",
                "interests": [f"#{topics[0]}"],
                "discoverable": True,
            }
        ]
        out += [
            {"type": "follow", "src": user, "dst": str(self.ids[f]), "ts": ts + 1 + i}
            for i, f in enumerate(follows)
        ]
        out.append(
            {
                "type": "post",
                "id": f"{user}-p1",
                "author": user,
                "ts": ts + 10,
                "text": "Hi all, new here: " + " ".join(f"#{t}" for t in topics),
            }
        )
        return out


def _cold_start(
    world: _World,
    n_users: int,
    prefix: str,
    post: Callable[[bytes], int],
    get: Callable[[str], tuple[int, bytes]],
) -> dict:
    """Create each user, then time GET people and GET conversations; returns timings and checks."""
    rng = np.random.default_rng(3)
    times = {kind: [] for kind in KINDS}
    cold = {kind: 0 for kind in KINDS}
    items = {kind: [] for kind in KINDS}
    bad = 0
    for i in range(n_users):
        user = f"{prefix}{i:04d}"
        if post(orjson.dumps(world.events(user, rng))) != 200:
            bad += 1
            continue
        for kind in KINDS:
            start = time.perf_counter()
            status, body = get(f"/v1/users/{user}/suggestions/{kind}")
            times[kind].append((time.perf_counter() - start) * 1000)
            if status != 200:
                bad += 1
                continue
            page = orjson.loads(body)
            cold[kind] += bool(page.get("cold_start"))
            items[kind].append(len(page.get("items", [])))
    return {"times": times, "cold": cold, "items": items, "bad": bad}


def _known_users(
    users: list[str], get: Callable[[str], tuple[int, bytes]]
) -> dict[str, list[float]]:
    times = {kind: [] for kind in KINDS}
    for user in users:
        for kind in KINDS:
            start = time.perf_counter()
            get(f"/v1/users/{user}/suggestions/{kind}")
            times[kind].append((time.perf_counter() - start) * 1000)
    return times


def _in_process(
    ds: datasets.Dataset, db_url: str, world: _World, n_users: int, known: list[str]
) -> dict:
    from api import create_app
    from tribes.config import Settings

    settings = Settings.load({"db": db_url, "models": str(ds.models)}, environ={})
    app = create_app({"SETTINGS": settings, "ACCESS_LOG": False, "TESTING": True})
    client = app.test_client()

    def post(body: bytes) -> int:
        return client.post("/v1/events", data=body, content_type="application/json").status_code

    def get(path: str) -> tuple[int, bytes]:
        r = client.get(path)
        return r.status_code, r.get_data()

    get(f"/v1/users/{known[0]}/suggestions/people")  # opens the model (lazily, on first use)
    result = _cold_start(world, n_users, "bench-cold-ip-", post, get)
    result["known"] = _known_users(known, get)
    service = app.extensions["tribes"]
    service.store.close()
    return result


def _over_http(
    ctx: Context, ds: datasets.Dataset, db_url: str, world: _World, n_users: int, known: list[str]
) -> dict:
    with Gunicorn(
        ctx,
        "wsgi:app",
        name="latency",
        env={"TRIBES_DB": db_url, "TRIBES_MODELS": str(ds.models)},
        ready_path="/readyz",
    ) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

        def roundtrip(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
            nonlocal conn
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            return response.status, payload

        try:
            for user in known[:20]:  # both workers open the model and touch its pages
                roundtrip("GET", f"/v1/users/{user}/suggestions/people")
            result = _cold_start(
                world,
                n_users,
                "bench-cold-http-",
                lambda body: roundtrip("POST", "/v1/events", body)[0],
                lambda path: roundtrip("GET", path),
            )
            result["known"] = _known_users(known, lambda path: roundtrip("GET", path))
        finally:
            conn.close()
    return result


def run(ctx: Context, section: Section) -> None:
    n_small = min(ctx.sizes)
    ds = datasets.ensure(ctx, n_small)
    n_users = 10 if ctx.quick else 50
    known = ds.sample_users(50 if ctx.quick else 200, seed=2)
    world = _World(ds)
    work = ctx.root / "tmp" / "latency"
    shutil.rmtree(work, ignore_errors=True)
    results = {}
    try:
        print(f"[latency] cold start, in-process, {n_users} new users …", flush=True)
        results["in-process (Flask test client)"] = _in_process(
            ds, datasets.copy_store(ds, work / "inproc.db"), world, n_users, known
        )
        print(f"[latency] cold start, over HTTP, {n_users} new users …", flush=True)
        results["HTTP (gunicorn gthread 2×4, one keep-alive connection)"] = _over_http(
            ctx, ds, datasets.copy_store(ds, work / "http.db"), world, n_users, known
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    section.add("### Cold-start suggestions", "")
    section.add(
        f"On a copy of the {n_small:,}-user store and its model: {n_users} new users, each created "
        "with one `POST /v1/events` (a user event, 3 follows inside one tribe, 1 post on the tribe's "
        "topics), then `GET …/suggestions/people` and `GET …/suggestions/conversations` timed one "
        "after the other (default `limit` 20). For comparison, the same GETs for "
        f"{len(known)} users with precomputed lists. In-process runs `create_app` with the access log "
        "off; over HTTP it is on (stderr to a file).",
        "",
    )
    rows = []
    for where, r in results.items():
        for kind in KINDS:
            p = percentiles(r["times"][kind])
            q = percentiles(r["known"][kind])
            mean_items = float(np.mean(r["items"][kind])) if r["items"][kind] else 0.0
            rows.append(
                [
                    where,
                    kind,
                    f"{p['n']}",
                    fmt_ms(p["median"]),
                    fmt_ms(p["p90"]),
                    fmt_ms(p["p99"]),
                    f"{r['cold'][kind]}/{p['n']}",
                    f"{mean_items:.1f}",
                    fmt_ms(q["median"]),
                    fmt_ms(q["p99"]),
                ]
            )
            print(
                f"[latency] {where}: cold {kind}: median {fmt_ms(p['median'])} ms, p99 {fmt_ms(p['p99'])} ms; "
                f"known users median {fmt_ms(q['median'])} ms",
                flush=True,
            )
        if r["bad"]:
            section.add(f"**{where}: {r['bad']} requests did not answer 200.**", "")
    section.table(
        [
            "where",
            "kind",
            "new users",
            "median ms",
            "p90 ms",
            "p99 ms",
            "answered cold_start",
            "items per page",
            "known users: median ms",
            "known users: p99 ms",
        ],
        rows,
    )

    section.add("### Personalized PageRank per source", "")
    largest = max(ctx.sizes)
    probe_sizes = sorted(set(ctx.probes) | {largest})
    for n in probe_sizes:
        datasets.graph_probe(ctx, datasets.ensure(ctx, n))
    rows = []
    for n in probe_sizes:
        p = ctx.probes[n]
        ppr = p["ppr"]
        t = percentiles(ppr["ms"])
        touched = percentiles([float(x) for x in ppr["touched"]])
        rows.append(
            [
                f"{n:,}",
                f"{p['nnz']['interaction']:,}",
                f"{ppr['sources']}",
                fmt_ms(t["median"]),
                fmt_ms(t["p90"]),
                fmt_ms(t["p99"]),
                fmt_ms(t["max"]),
                f"{touched['median']:,.0f}",
                f"{touched['max']:,.0f}",
                f"{ppr['mean_degree']:.1f}",
            ]
        )
        print(
            f"[latency] PPR n={n:,}: median {fmt_ms(t['median'])} ms, p99 {fmt_ms(t['p99'])} ms",
            flush=True,
        )
        if n == largest:
            section.targets.append(
                Target(
                    "Single-user PPR (`ppr_forward_push`), p99",
                    f"≤ {PPR_TARGET_MS:g} ms (at 1M/10M users)",
                    f"{fmt_ms(t['p99'])} ms (median {fmt_ms(t['median'])})",
                    t["p99"] <= PPR_TARGET_MS,
                    f"{n:,} users (not 1M/10M)" if n < 1_000_000 else f"{n:,} users",
                )
            )
    section.add(
        f"`tribes.ppr.ppr_forward_push` on `build_graph(...).interaction` (weighted, as "
        f"`candidates.ppr` calls it: alpha {ctx.probes[largest]['ppr']['alpha']}, epsilon "
        f"{ctx.probes[largest]['ppr']['epsilon']}), sources drawn (seed 0) among users with out-edges, "
        "after one warm-up call; in a separate process (`python -m benchmarks.graph_probe`).",
        "",
    )
    section.table(
        [
            "users",
            "interaction nnz",
            "sources",
            "median ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "nodes settled (median)",
            "nodes settled (max)",
            "mean out-degree of sources",
        ],
        rows,
    )
    section.add(f"Model used for cold start: `{display_path(ds.current())}`.", "")
