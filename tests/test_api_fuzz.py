"""Property-based tests of the API against its own ``/openapi.json`` (schemathesis, in process).

Every operation of the document gets generated requests (valid and invalid ones) sent through
the WSGI app, with no network; each response must not be a 5xx and must conform to the
document: a documented status code, the documented content type and headers, and a body that
matches its schema. Requests that violate the document must be rejected with a 4xx.

The document is loaded at import time from an app built with the same settings as the tested
one but no store (serving ``/openapi.json`` touches none), so that ``schema.parametrize()``
gives one test per operation, which pytest-xdist can spread. (``schemathesis.pytest.from_fixture``
would load it from the fixture's app instead, but in schemathesis 4.32 it reads
``request.node._nodeid``, which pytest 9.2 no longer has.) Each case is then sent to the app over
a real synthetic store with ``case.call(app=...)``; a test checks both apps serve the same document.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from tests.api_fixtures import empty_root, make_app, make_world
from tribes.config import Settings

CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# No store is opened: SERVICE is given, and nothing here calls it.
_document_app = create_app(
    {"SETTINGS": Settings.load(environ={}), "SERVICE": object(), "ACCESS_LOG": False}
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", _document_app)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = make_world(tmp_path_factory, "fuzz")
    yield w
    w.close()


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_conforms_to_the_document(case, world):
    response = case.call(app=world.app)
    case.validate_response(response, checks=[*CONFORMANCE, negative_data_rejection])


def test_the_tested_app_serves_this_document(world):
    served = world.client.get("/openapi.json").json
    assert served == _document_app.config["OPENAPI"] == schema.raw_schema
    labels = {result.ok().label for result in schema.get_all_operations()}
    # Every documented operation is fuzzed, except the document itself (schemathesis skips it).
    documented = {f"{m.upper()} {p}" for p, ops in served["paths"].items() for m in ops}
    assert labels == documented - {"GET /openapi.json"}


# Known-good requests, so the success bodies (which random ids rarely reach) are validated
# against the document too, by the same schemathesis checks.
GOOD = [
    ("GET", "/v1/users/{user_id}/suggestions/people", {"path_parameters": {"user_id": "u000010"}}),
    (
        "GET",
        "/v1/users/{user_id}/suggestions/people",
        {"path_parameters": {"user_id": "u000010"}, "query": {"limit": 100}},
    ),
    (
        "GET",
        "/v1/users/{user_id}/suggestions/conversations",
        {"path_parameters": {"user_id": "u000010"}},
    ),
    ("GET", "/v1/users/{user_id}/tribes", {"path_parameters": {"user_id": "u000010"}}),
    (
        "POST",
        "/v1/users/{user_id}/feedback",
        {
            "path_parameters": {"user_id": "u000010"},
            "body": {
                "target_kind": "user",
                "target_id": "u000011",
                "action": "accept",
                "tracking_id": "t",
            },
        },
    ),
    ("GET", "/v1/tribes", {"query": {"limit": 2}}),
    ("GET", "/v1/tribes/{tribe_id}", {"path_parameters": {"tribe_id": 0}}),
    ("POST", "/v1/events", {"body": [{"type": "user", "id": "fuzz-known", "ts": 1_790_000_000}]}),
    ("GET", "/v1/model", {}),
    ("GET", "/livez", {}),
    ("GET", "/readyz", {}),
    ("GET", "/metrics", {}),
    ("GET", "/docs", {}),
]


@pytest.mark.parametrize(("method", "path", "parts"), GOOD, ids=[f"{m} {p}" for m, p, _ in GOOD])
def test_successful_responses_conform_to_the_document(world, method, path, parts):
    case = schema[path][method].Case(**parts)
    response = case.call(app=world.app)
    assert response.status_code in (200, 201), response.text[:500]
    case.validate_response(response, checks=CONFORMANCE)


def _conforms(case, response, status: int) -> None:
    assert response.status_code == status, response.text[:500]
    # A 503 without a model is the documented answer, not a server error.
    checks = (
        CONFORMANCE if status < 500 else [c for c in CONFORMANCE if c is not not_a_server_error]
    )
    case.validate_response(response, checks=checks)


def test_limits_and_missing_models_answer_as_documented(world, tmp_path_factory):
    """Statuses random requests never reach: bodies over the limit, no model published."""
    small = make_app(world.root, max_body_bytes=300)
    bare = make_app(empty_root(tmp_path_factory, "fuzz-empty"))
    try:
        big_events = [{"type": "user", "id": f"big-{i}", "ts": 1} for i in range(20)]
        big_feedback = {"target_kind": "user", "target_id": "x" * 256, "action": "dismiss"}
        for path, parts in (
            ("/v1/events", {"body": big_events}),
            (
                "/v1/users/{user_id}/feedback",
                {"path_parameters": {"user_id": "u000010"}, "body": big_feedback},
            ),
        ):
            case = schema[path]["POST"].Case(**parts)
            _conforms(case, case.call(app=small), 413)
        for method, path, parts in GOOD:
            if method == "GET" and path.startswith("/v1/"):  # every read needs the model
                case = schema[path][method].Case(**parts)
                _conforms(case, case.call(app=bare), 503)
        case = schema["/readyz"]["GET"].Case()
        _conforms(case, case.call(app=bare), 503)
    finally:
        for app in (small, bare):
            app.extensions["tribes"].store.close()


def test_auth_and_rate_limit_answers_as_documented(world):
    keyed = make_app(world.root, api_keys="fuzz-key", rate_limit_per_minute=2)
    try:
        keyed_schema = schemathesis.openapi.from_wsgi("/openapi.json", keyed)
        for method, path, parts in GOOD:
            operation = keyed_schema[path][method]
            secured = bool(operation.definition.raw.get("security"))
            assert secured == path.startswith("/v1/")
            if not secured:
                continue
            case = operation.Case(**parts)
            _conforms(case, case.call(), 401)
        for method, path, parts in GOOD[:3]:
            case = keyed_schema[path][method].Case(
                **parts, headers={"Authorization": "Bearer fuzz-key"}
            )
            response = case.call()
            if response.status_code != 429:
                continue
            _conforms(case, response, 429)
            break
        else:
            pytest.fail("the rate limit never answered")
    finally:
        keyed.extensions["tribes"].store.close()
