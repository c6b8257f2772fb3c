"""Concurrency: ingest through the API and the CLI while a recompute reads and the API serves.

Writers: two API threads posting event batches (one replays a batch), feedback, and three
``tribes ingest`` processes (one file twice, concurrently: a replay). Readers: API threads asking
for suggestions and tribe pages. A ``tribes recompute`` process runs at the same time. Afterwards
the store holds exactly the expected rows (nothing lost, nothing doubled), no request failed, no
"database is locked" reached anyone, and the store passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from benchmarks.common import THREAD_CAPS
from tests.api_fixtures import LATER, make_world
from tribes.service import ModelHolder

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # real subprocesses
TS = LATER  # after the synthetic world, before the server's clock


def _batch(prefix: str, n_users: int, existing: list[str]) -> list[dict]:
    """Users, one root post each, a reply to the previous user's post, follows to old users."""
    events: list[dict] = []
    for i in range(n_users):
        user = f"{prefix}-{i}"
        events.append({"type": "user", "id": user, "ts": TS + i, "interests": ["#cc"]})
        events.append(
            {
                "type": "post",
                "id": f"{user}-p",
                "author": user,
                "ts": TS + i,
                "text": f"#cc hello {i}",
            }
        )
        if i:
            events.append(
                {
                    "type": "post",
                    "id": f"{user}-r",
                    "author": user,
                    "ts": TS + i + 0.5,
                    "text": "a reply",
                    "reply_to": f"{prefix}-{i - 1}-p",
                }
            )
        events.append(
            {"type": "follow", "src": user, "dst": existing[i % len(existing)], "ts": TS + i}
        )
    return events


def _expected(batches: list[list[dict]]) -> tuple[set[str], set[str], set[tuple[str, str]]]:
    users, posts, follows = set(), set(), set()
    for batch in batches:
        for e in batch:
            if e["type"] == "user":
                users.add(e["id"])
            elif e["type"] == "post":
                posts.add(e["id"])
            elif e["type"] == "follow":
                follows.add((e["src"], e["dst"]))
    return users, posts, follows


def test_api_and_cli_ingest_during_a_recompute_lose_and_double_nothing(tmp_path_factory):
    world = make_world(tmp_path_factory, "concurrency")
    try:
        client, store = world.client, world.store
        model = world.service.holder.get()
        existing = [str(u) for u in model.user_ids[:50]]
        before = store.table_counts()
        api_batches = {
            t: [_batch(f"cc-api{t}-{b}", 5, existing) for b in range(12)] for t in range(2)
        }
        cli_batches = [_batch(f"cc-cli{f}", 150, existing) for f in range(2)]
        files = []
        for f, batch in enumerate(cli_batches):
            path = world.root / f"cli-{f}.jsonl"
            path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in batch))
            files.append(path)
        env = dict(os.environ, **THREAD_CAPS, TRIBES_DB=world.db, TRIBES_MODELS=str(world.models))
        responses: list[tuple[str, int, bytes]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def record(what: str, response) -> None:
            with lock:
                responses.append((what, response.status_code, response.data))

        def api_writer(t: int) -> None:
            c = world.app.test_client()
            for b, batch in enumerate(api_batches[t]):
                record("events", c.post("/v1/events", json=batch))
                if b == 3:  # a replay: idempotent
                    record("events", c.post("/v1/events", json=batch))
                record(
                    "feedback",
                    c.post(
                        f"/v1/users/{existing[b]}/feedback",
                        json={
                            "target_kind": "user",
                            "target_id": existing[b + 1],
                            "action": "accept",
                        },
                    ),
                )

        def api_reader(t: int) -> None:
            c = world.app.test_client()
            j = t
            while not stop.is_set():
                user = existing[j % len(existing)]
                j += 1
                record("people", c.get(f"/v1/users/{user}/suggestions/people?limit=10"))
                record(
                    "conversations", c.get(f"/v1/users/{user}/suggestions/conversations?limit=10")
                )
                record("tribes", c.get("/v1/tribes?limit=5"))

        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "tribes", "recompute", "-q"],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
        ]
        procs += [
            subprocess.Popen(
                [sys.executable, "-m", "tribes", "ingest", "-q", str(path)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for path in (files[0], files[1], files[0])
        ]
        threads = [threading.Thread(target=api_writer, args=(t,)) for t in range(2)]
        threads += [threading.Thread(target=api_reader, args=(t,)) for t in range(2)]
        for t in threads:
            t.start()
        outputs = [p.communicate(timeout=300) for p in procs]
        for t in threads[:2]:
            t.join(120)
        time.sleep(0.3)
        stop.set()
        for t in threads[2:]:
            t.join(60)

        for p, (_out, err) in zip(procs, outputs, strict=True):
            assert p.returncode == 0, err.decode()[-2000:]
            assert b"locked" not in err and b"Traceback" not in err, err.decode()[-2000:]
        bad = [
            (what, status, data[:200])
            for what, status, data in responses
            if status not in (200, 201)
        ]
        assert not bad, bad[:5]
        assert not [r for r in responses if b"locked" in r[2]]
        assert sum(1 for r in responses if r[0] == "events") == 2 * 12 + 2
        assert sum(1 for r in responses if r[0] == "people") >= 10

        users, posts, follows = _expected([*api_batches[0], *api_batches[1], *cli_batches])
        after = store.table_counts()
        assert after["users"] - before["users"] == len(users)
        assert after["posts"] - before["posts"] == len(posts)
        assert after["edges"] - before["edges"] == len(follows)
        with store.engine.connect() as conn:
            stored_users = {
                r[0] for r in conn.execute(sa.text("SELECT id FROM users WHERE id LIKE 'cc-%'"))
            }
            stored_posts = {
                r[0] for r in conn.execute(sa.text("SELECT id FROM posts WHERE id LIKE 'cc-%'"))
            }
            stored_follows = set(
                conn.execute(
                    sa.text(
                        "SELECT s.id, d.id FROM edges e JOIN users s ON s.uid = e.src JOIN users d ON d.uid = e.dst "
                        "WHERE e.relation = 'follow' AND e.active AND s.id LIKE 'cc-%'"
                    )
                ).all()
            )
            # Replies found their thread whatever the order the batches landed in.
            threads = dict(
                conn.execute(
                    sa.text("SELECT id, thread_id FROM posts WHERE id LIKE 'cc-%-r'")
                ).all()
            )
        assert stored_users == users and stored_posts == posts and stored_follows == follows
        expected_threads = {}
        for reply in threads:
            prefix, i = reply[: -len("-r")].rsplit("-", 1)
            expected_threads[reply] = f"{prefix}-{int(i) - 1}-p"
        assert threads == expected_threads
        print(
            f"\nconcurrency: {len(responses)} API requests during 3 CLI ingests and a recompute; "
            f"{len(users)} users, {len(posts)} posts, {len(follows)} follows expected and found; 0 errors"
        )
        db = sqlite3.connect(world.root / "tribes.db")
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            db.close()
        # The new model serves; the newcomers are answered (cold start or listed).
        assert client.get("/v1/users/cc-api0-0-0/suggestions/people").status_code == 200
        assert client.get("/v1/users/cc-cli1-149/tribes").status_code == 200
    finally:
        world.close()


def test_a_fresh_worker_never_answers_no_model_while_its_first_load_runs(
    tmp_path_factory, monkeypatch
):
    """Threads of a new worker that arrive while the first one opens the model wait for it
    (they used to see no model and answer 503)."""
    world = make_world(tmp_path_factory, "concurrency-holder")
    world.close()
    from tribes import service

    real_open = service.Recommender.open

    def slow_open(path, *args):
        time.sleep(0.3)
        return real_open(path, *args)

    monkeypatch.setattr(service.Recommender, "open", staticmethod(slow_open))
    holder = ModelHolder(world.models, check_interval=2.0)
    seen: list = []
    start = threading.Barrier(4)

    def ask() -> None:
        start.wait()
        seen.append(holder.get())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(seen) == 4 and all(m is not None for m in seen)
    assert len({id(m) for m in seen}) == 1  # opened once
