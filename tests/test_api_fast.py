"""The fast lane (api/fast.py) answers the suggestion reads exactly as Flask's views and hooks do.

Every request is sent twice: through the app (fast lane in front) and straight to Flask's own
``wsgi_app`` (the lane's fallback), with the same ``X-Request-ID``; status, headers that matter
and body bytes must be equal. Other tests check that the lane takes only what it recognises,
shares one rate window with Flask per key, and leaves the same metrics and access-log line.
"""

from __future__ import annotations

import logging

import numpy as np
import orjson
import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from api.fast import FastLane
from tests.api_fixtures import make_app, make_world

KEY = "fast-lane-key-0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
COMPARED = ("Content-Type", "Content-Length", "X-Request-ID", "WWW-Authenticate", "Retry-After")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = make_world(tmp_path_factory, "api-fast")
    yield w
    w.close()


@pytest.fixture
def keyed(world):
    app = make_app(world.root, api_keys=KEY)
    yield app
    app.extensions["tribes"].store.close()


def listed_users(app, n: int = 3) -> list[str]:
    model = app.extensions["tribes"].holder.get()
    rows = np.flatnonzero((np.asarray(model.arrays["people_items"]) >= 0).sum(axis=1) >= 10)
    return [str(model.user_ids[i]) for i in rows[:n]]


def both(
    app, path: str, headers: dict[str, str], *, rid: str = "same-rid-1"
) -> tuple[Response, Response]:
    """(through the app, straight to Flask) for one GET."""
    assert isinstance(app.wsgi_app, FastLane)
    headers = {**headers, "X-Request-ID": rid}
    local = {"REMOTE_ADDR": "127.0.0.1"}
    fast = Client(app, Response).get(path, headers=headers, environ_base=local)
    flask = Client(app.wsgi_app.fallback, Response).get(path, headers=headers, environ_base=local)
    return fast, flask


def assert_same(fast: Response, flask: Response) -> None:
    assert fast.status == flask.status, (fast.data[:300], flask.data[:300])
    for name in COMPARED:
        assert fast.headers.get(name) == flask.headers.get(name), name
    assert fast.data == flask.data


def test_the_same_answers_as_flask(keyed):
    user = listed_users(keyed)[0]
    first = Client(keyed, Response).get(
        f"/v1/users/{user}/suggestions/people?limit=3", headers=AUTH
    )
    cursor = orjson.loads(first.data)["next_cursor"]
    assert cursor
    cases = [
        (f"/v1/users/{user}/suggestions/people", AUTH, 200),
        (f"/v1/users/{user}/suggestions/conversations", AUTH, 200),
        (f"/v1/users/{user}/suggestions/people?limit=3", AUTH, 200),
        (f"/v1/users/{user}/suggestions/people?limit=3&cursor={cursor}", AUTH, 200),
        (f"/v1/users/{user}/suggestions/people?limit=3&limit=50&other=x", AUTH, 200),
        (f"/v1/users/{user}/suggestions/people?limit=", AUTH, 200),
        (f"/v1/users/{user}/suggestions/people?limit=0", AUTH, 400),
        (f"/v1/users/{user}/suggestions/people?limit=%EF%BC%91", AUTH, 400),  # a full-width 1
        (f"/v1/users/{user}/suggestions/people?cursor=not-a-cursor", AUTH, 400),
        (
            f"/v1/users/{user}/suggestions/conversations?cursor={cursor}",
            AUTH,
            400,
        ),  # another kind's
        ("/v1/users/nobody-at-all/suggestions/people", AUTH, 404),
        (f"/v1/users/%20{user}/suggestions/people", AUTH, 400),  # surrounding spaces
        (f"/v1/users/{user}/suggestions/people", {}, 401),
        (f"/v1/users/{user}/suggestions/people", {"Authorization": "Bearer wrong"}, 401),
        (f"/v1/users/{user}/suggestions/people", {"Authorization": f"bearer   {KEY}  "}, 200),
    ]
    for path, headers, status in cases:
        fast, flask = both(keyed, path, headers)
        assert fast.status_code == status, (path, fast.data[:300])
        assert_same(fast, flask)
        if status >= 400:
            body = orjson.loads(fast.data)
            assert fast.mimetype == "application/problem+json"
            assert body["instance"] == path.split("?")[0].replace("%20", " ")
            assert body["request_id"] == "same-rid-1"
    # Without a client id each answer gets its own random one, in the header and the problem.
    fast = Client(keyed, Response).get(f"/v1/users/{user}/suggestions/people")
    assert fast.status_code == 401 and len(fast.headers["X-Request-ID"]) == 32
    assert orjson.loads(fast.data)["request_id"] == fast.headers["X-Request-ID"]


def test_only_what_it_recognises(keyed, monkeypatch):
    user = listed_users(keyed)[0]
    lane = keyed.wsgi_app
    seen: list[str] = []
    real = lane.fallback

    def spy(environ, start_response):
        seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return real(environ, start_response)

    monkeypatch.setattr(lane, "fallback", spy)
    client = Client(keyed, Response)
    for kind in ("people", "conversations"):
        assert (
            client.get(f"/v1/users/{user}/suggestions/{kind}?limit=2", headers=AUTH).status_code
            == 200
        )
    assert client.get("/v1/users/%20x/suggestions/people", headers=AUTH).status_code == 400
    assert seen == []  # all answered by the lane
    # control char
    assert client.get("/v1/users/x%00y/suggestions/people", headers=AUTH).status_code == 400
    assert client.head(f"/v1/users/{user}/suggestions/people", headers=AUTH).status_code == 200
    assert client.get(f"/v1/users/{user}/tribes", headers=AUTH).status_code == 200
    # "/" in the id
    assert client.get("/v1/users/a/b/suggestions/people", headers=AUTH).status_code == 404
    # non-ASCII
    assert client.get("/v1/users/%C3%A9/suggestions/people", headers=AUTH).status_code == 404
    assert client.get(f"/v1/users/{user}/suggestions/people/", headers=AUTH).status_code == 404
    assert client.post(f"/v1/users/{user}/suggestions/people", headers=AUTH).status_code == 405
    assert len(seen) == 7, seen


def test_one_rate_window_for_both_ways(world):
    app = make_app(world.root, api_keys=KEY, rate_limit_per_minute=3)
    try:
        user = listed_users(app)[0]
        fast, flask = Client(app, Response), Client(app.wsgi_app.fallback, Response)
        path = f"/v1/users/{user}/suggestions/people"
        statuses = [
            fast.get(path, headers=AUTH).status_code,
            flask.get(path, headers=AUTH).status_code,
            fast.get("/v1/model", headers=AUTH).status_code,
        ]
        assert statuses == [200, 200, 200]
        for client in (fast, flask):
            refused = client.get(path, headers=AUTH)
            assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
    finally:
        app.extensions["tribes"].store.close()


def test_the_same_metrics_and_access_log_line(world):
    app = make_app(world.root, access_log=True)
    access = logging.getLogger("tribes.access")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect()
    access.addHandler(handler)
    try:
        user = listed_users(app)[1]
        path = f"/v1/users/{user}/suggestions/conversations"
        fast, flask = both(app, path, {}, rid="rid-log-1")
        assert fast.status_code == flask.status_code == 200
        metrics = Client(app, Response).get("/metrics").get_data(as_text=True)
    finally:
        access.removeHandler(handler)
        app.extensions["tribes"].store.close()
    logged = [orjson.loads(x) for x in lines if "rid-log-1" in x]
    assert len(logged) == 2
    for line in logged:
        line.pop("ts"), line.pop("ms")
    assert (
        logged[0]
        == logged[1]
        == {
            "request_id": "rid-log-1",
            "method": "GET",
            "path": path,
            "endpoint": "/v1/users/<path:user_id>/suggestions/conversations",
            "status": 200,
            "bytes": len(fast.data),
            "remote": "127.0.0.1",
        }
    )
    assert (
        'tribes_requests_total{endpoint="/v1/users/<path:user_id>/suggestions/conversations",'
        'method="GET",status="200"}'
    ) in metrics


def test_no_hook_the_lane_would_skip(keyed):
    """The lane repeats what the app's two hooks do; a hook added later (before/after/teardown,
    app-wide or per blueprint) would be skipped for the suggestion reads: this fails first."""
    hooks = {
        "before": keyed.before_request_funcs,
        "after": keyed.after_request_funcs,
        "teardown": keyed.teardown_request_funcs,
        "url_value_preprocessors": keyed.url_value_preprocessors,
    }
    counts = {name: {k: len(v) for k, v in funcs.items() if v} for name, funcs in hooks.items()}
    assert counts == {
        "before": {None: 1},
        "after": {None: 1},
        "teardown": {},
        "url_value_preprocessors": {},
    }
