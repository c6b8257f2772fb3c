"""The fast lane: ``GET /v1/users/<id>/suggestions/{people,conversations}`` answered as plain WSGI.

A suggestions page is bytes the service already holds (``tribes/rendered.py``); what Flask adds
around it per request — request and app contexts, URL adapter, session, signals, a ``Response``
object, ``before``/``after_request`` hooks through context proxies — cost about as much CPU as
the page itself (benchmarks/RESULTS.md, "Before and after"). :class:`FastLane` wraps
``app.wsgi_app``: a request it recognises is answered here with the same steps Flask's hooks and
the view take (request id, :class:`~api.gate.Gate`, :func:`~api.routes.suggestions.suggestions_body`,
problem+json, metrics, access log), everything else goes to Flask unchanged.

Recognised: method ``GET``, an ASCII path ``/v1/users/<id>/suggestions/<kind>`` whose id is
printable ASCII without ``/``, and an ASCII query string. Anything else (HEAD, ids with ``/`` or
non-ASCII, other routes) is Flask's, so routing, 404/405 and redirects stay Flask's own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.datastructures import MultiDict
from werkzeug.http import HTTP_STATUS_CODES

from .gate import Gate
from .observe import record, request_id
from .problems import INTERNAL_ERROR, PROBLEM_MIMETYPE, Problem, problem_body
from .routes.suggestions import suggestions_body

__all__ = ["FastLane"]

# Printable ASCII without "/": exactly the ids Flask's `path` converter would take here too.
_PATH = re.compile(r"/v1/users/([\x20-\x2e\x30-\x7e]+)/suggestions/(people|conversations)")
_JSON = [("Content-Type", "application/json")]
_PROBLEM = [("Content-Type", PROBLEM_MIMETYPE)]
# as werkzeug says it
_STATUS = {code: f"{code} {name.upper()}" for code, name in HTTP_STATUS_CODES.items()}
StartResponse = Callable[..., object]


class FastLane:
    """WSGI middleware for the two suggestion reads; ``fallback`` (Flask's ``wsgi_app``) gets the rest."""

    def __init__(
        self, app: Flask, gate: Gate, fallback: Callable[[dict, StartResponse], Iterable[bytes]]
    ):
        self.app, self.gate, self.fallback = app, gate, fallback
        rules = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
        # The metric and log label is the Flask rule, as for every other endpoint.
        self.endpoints = {
            kind: rules[f"suggestions.{kind}"] for kind in ("people", "conversations")
        }

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "GET" or not path.isascii():
            return self.fallback(environ, start_response)
        match = _PATH.fullmatch(path)
        query = environ.get("QUERY_STRING", "")
        if match is None or not query.isascii():
            return self.fallback(environ, start_response)
        return self._answer(environ, start_response, path, match[1], match[2], query)

    def _answer(self, environ, start_response, path, user_id, kind, query) -> list[bytes]:
        started = time.perf_counter()
        app = self.app
        rid = request_id(environ)
        headers = _JSON
        refusal = self.gate.check(environ, path)
        if refusal is not None:
            status = refusal.status
            body = problem_body(status, refusal.slug, refusal.title, refusal.detail, path, rid)
            headers = [*_PROBLEM, *refusal.headers]
        else:
            try:
                args = (
                    MultiDict(parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote"))
                    if query
                    else None
                )  # as Flask's request.args
                body, status = suggestions_body(app.extensions["tribes"], user_id, kind, args), 200
            except Problem as exc:
                status, headers = exc.status, _PROBLEM
                body = problem_body(status, exc.slug, exc.title, exc.detail, path, rid, **exc.extra)
            except Exception:  # as Flask's handler: logged with its traceback, a bare 500 out
                app.logger.exception("unhandled error")
                status, headers = 500, _PROBLEM
                body = problem_body(500, *INTERNAL_ERROR, path, rid)
        start_response(
            _STATUS[status], [*headers, ("Content-Length", str(len(body))), ("X-Request-ID", rid)]
        )
        record(
            rid=rid,
            method="GET",
            path=path,
            endpoint=self.endpoints[kind],
            status=status,
            elapsed=time.perf_counter() - started,
            nbytes=len(body),
            remote=environ.get("REMOTE_ADDR"),
            log=app.config["ACCESS_LOG"],
        )
        return [body]
