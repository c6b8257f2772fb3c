"""Auth hardening: every /v1 operation refuses a missing or wrong key (wherever it is sent),
keys are compared as digests in constant time and never logged on any path (2xx, 4xx, 401,
429, 500), and the per-key rate limit answers 429 problem+json with Retry-After, opens again
after its window, and stays correct under concurrent requests.

(``tests/test_api.py`` covers the basics; the short soak checks a real gunicorn's log.)
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
import time

import orjson
import pytest

import api.auth
from api import create_app
from tests.api_fixtures import make_app, make_world, settings_for
from tests.conftest import dump_tables
from tribes.service import SuggestionService

KEYS = ("alpha-key-0001", "bravo-key-0002", "charlie-key-0003")
PROBLEM = "application/problem+json"
ROUNDS = 60


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = make_world(tmp_path_factory, "hardening-auth")
    yield w
    w.close()


@pytest.fixture(scope="module")
def keyed(world):
    app = make_app(world.root, api_keys=",".join(KEYS))
    yield app
    app.extensions["tribes"].store.close()


def operations(client) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json
    out = []
    for template, methods in spec["paths"].items():
        for method, op in methods.items():
            path = template.replace("{user_id}", "u000001").replace("{tribe_id}", "0")
            out.append((method.upper(), path, bool(op.get("security"))))
    return out


def test_every_v1_operation_refuses_missing_and_wrong_keys(world, keyed):
    client = keyed.test_client()
    ops = operations(client)
    assert {secured for _, path, secured in ops if path.startswith("/v1/")} == {True}
    wrong = [
        {},
        {"Authorization": "Bearer " + KEYS[0][:-1]},
        {"Authorization": "Bearer " + KEYS[0] + "x"},
        {"Authorization": "Bearer " + KEYS[0].upper()},
        {"Authorization": "Token " + KEYS[0]},
        {"Authorization": "Bearer " + hashlib.sha256(KEYS[0].encode()).hexdigest()},
        {"Authorization": "Bearer sha256:" + hashlib.sha256(KEYS[0].encode()).hexdigest()},
        {"X-API-Key": KEYS[0]},
        {"Cookie": f"api_key={KEYS[0]}"},
        {"Authorization": "Bearer \u00e9" + KEYS[0]},
        {"Authorization": "Bearer " + "k" * 10_000},
    ]
    body = orjson.dumps([{"type": "user", "id": "auth-never", "ts": 1}])
    before = dump_tables(world.store)
    tried = 0
    for method, path, secured in ops:
        if not secured:
            assert client.open(path, method=method).status_code == 200
            continue
        for headers in wrong:
            response = client.open(
                path + f"?api_key={KEYS[0]}",
                method=method,
                headers=headers,
                data=body if method == "POST" else None,
                content_type="application/json",
            )
            assert response.status_code == 401, (method, path, headers)
            assert response.mimetype == PROBLEM and response.json["status"] == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert KEYS[0] not in response.get_data(as_text=True)
            tried += 1
    assert tried >= 8 * len(wrong)
    assert dump_tables(world.store) == before  # nothing a refused request carried was stored


@pytest.mark.parametrize("which", [0, 2, None])
def test_every_digest_is_compared_in_constant_time(monkeypatch, which):
    digests = api.auth.load_key_digests(",".join(KEYS), None)
    calls: list[tuple[bytes, bytes]] = []
    real = api.auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api.auth.hmac, "compare_digest", spy)
    key = KEYS[which] if which is not None else "nobody-key"
    assert api.auth.check_bearer(f"Bearer {key}", digests) is (which is not None)
    # No early exit: every configured digest is compared, each as a 32-byte SHA-256 digest of
    # the presented key (so the time does not depend on where or whether the key matches).
    assert len(calls) == len(KEYS)
    assert all(a == hashlib.sha256(key.encode()).digest() and len(b) == 32 for a, b in calls)
    assert [b for _, b in calls] == digests


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record) + (record.exc_text or ""))


def test_keys_never_reach_any_log_on_any_path(world, caplog, capsys):
    class Broken(SuggestionService):
        def tribe(self, *args, **kwargs):
            raise RuntimeError("boom")

    settings = settings_for(world.root, api_keys=",".join(KEYS), rate_limit_per_minute=3)
    app = create_app(
        {
            "SETTINGS": settings,
            "ACCESS_LOG": True,
            "SERVICE": Broken(world.store, world.service.holder),
        }
    )
    collect = _Collect()
    loggers = [logging.getLogger("tribes.access"), app.logger, logging.getLogger()]
    for logger in loggers:
        logger.addHandler(collect)
    statuses = []
    try:
        client = app.test_client()
        with caplog.at_level(logging.DEBUG):
            for key, path in [
                (KEYS[0], "/v1/model"),  # 200
                (KEYS[0], "/v1/tribes/0"),  # 500 (the broken service)
                (KEYS[0], "/v1/tribes?limit=x"),  # 400
                (KEYS[0], "/v1/model"),  # 429
                ("wrong-" + KEYS[1], "/v1/model"),  # 401
                (KEYS[1], "/v1/users/nobody/tribes"),  # 404
            ]:
                statuses.append(
                    client.get(path, headers={"Authorization": f"Bearer {key}"}).status_code
                )
    finally:
        for logger in loggers:
            logger.removeHandler(collect)
    assert statuses == [200, 500, 400, 429, 401, 404]
    everything = "\n".join([*collect.lines, caplog.text, *capsys.readouterr()])
    assert "boom" in everything  # the 500 was logged, with its traceback
    for key in KEYS:
        assert key not in everything and key[6:] not in everything
        assert hashlib.sha256(key.encode()).hexdigest() not in everything


def test_rate_limit_429_then_the_window_opens_again(world, monkeypatch):
    app = make_app(world.root, api_keys=",".join(KEYS), rate_limit_per_minute=2)
    offset = [0.0]
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + offset[0])
    try:
        client = app.test_client()
        auth = {"Authorization": f"Bearer {KEYS[0]}"}
        assert [client.get("/v1/model", headers=auth).status_code for _ in range(2)] == [200, 200]
        response = client.get("/v1/model", headers=auth)
        assert response.status_code == 429 and response.mimetype == PROBLEM
        assert response.json["status"] == 429 and "per minute" in response.json["detail"]
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        offset[0] += 61
        assert client.get("/v1/model", headers=auth).status_code == 200
    finally:
        app.extensions["tribes"].store.close()


def _hammer(app, key: str, *, threads: int, rounds: int) -> list[int]:
    """Statuses of ``threads`` × ``rounds`` concurrent GET /v1/model with ``key``."""
    statuses: list[int] = []

    def hammer() -> None:
        client = app.test_client()
        for _ in range(rounds):
            response = client.get("/v1/model", headers={"Authorization": f"Bearer {key}"})
            statuses.append(response.status_code)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    return statuses


def test_rate_limit_under_concurrent_requests_never_errs(world, monkeypatch):
    """Many threads of one key while the window keeps expiring (old entries are dropped while
    others are added): only 200s and 429s, never a 500."""
    app = make_app(world.root, api_keys=",".join(KEYS), rate_limit_per_minute=5)
    clock = [1_000.0]
    tick = threading.Lock()

    def fake() -> float:
        with tick:
            clock[0] += 0.7  # a minute passes every ~86 calls
            return clock[0]

    monkeypatch.setattr(time, "monotonic", fake)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        statuses = _hammer(app, KEYS[1], threads=8, rounds=ROUNDS)
    finally:
        sys.setswitchinterval(old)
        app.extensions["tribes"].store.close()
    assert len(statuses) == 8 * ROUNDS
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    assert 200 in statuses and 429 in statuses


def test_rate_limit_is_exact_under_concurrent_requests(world, monkeypatch):
    """Within one minute exactly ``rate`` requests of a key pass, however many threads race
    (the window is checked and updated under one lock)."""
    app = make_app(world.root, api_keys=",".join(KEYS), rate_limit_per_minute=5)
    monkeypatch.setattr(time, "monotonic", lambda: 5_000.0)  # the clock stands still
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        statuses = _hammer(app, KEYS[2], threads=8, rounds=10)
    finally:
        sys.setswitchinterval(old)
        app.extensions["tribes"].store.close()
    assert len(statuses) == 80
    assert statuses.count(200) == 5 and statuses.count(429) == 75
