"""RFC 9457 problem details: every 4xx and 5xx leaves as ``application/problem+json``."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

PROBLEM_TYPE = "https://tribes.dev/problems/"
PROBLEM_MIMETYPE = "application/problem+json"


class Problem(Exception):
    """Raise from a view to answer with a problem document."""

    def __init__(self, status: int, slug: str, title: str, detail: str, **extra: Any):
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.extra = (
            status,
            slug,
            title,
            detail,
            extra,
        )


#: slug, title and detail of the answer to an unexpected error (Flask's handler and the fast lane).
INTERNAL_ERROR = (
    "internal-error",
    "Internal Server Error",
    "the server failed to answer; the request id identifies it in the logs",
)


def problem_body(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None,
    request_id: str | None,
    **extra: Any,
) -> bytes:
    """The problem document as JSON bytes (no Flask context needed: the fast lane uses it)."""
    body = {
        "type": PROBLEM_TYPE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    if request_id:
        body["request_id"] = request_id
    return orjson.dumps(body)


def problem_response(status: int, slug: str, title: str, detail: str, **extra: Any) -> Response:
    body = problem_body(
        status,
        slug,
        title,
        detail,
        request.path if request else None,
        getattr(g, "request_id", None),
        **extra,
    )
    return Response(body, status=status, mimetype=PROBLEM_MIMETYPE)


def register(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem):
        return problem_response(exc.status, exc.slug, exc.title, exc.detail, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        slug = (exc.name or "error").lower().replace(" ", "-")
        detail = exc.description or exc.name
        if exc.code == 413:
            detail = f"request body larger than {app.config.get('MAX_CONTENT_LENGTH')} bytes"
        if exc.code == 405:
            detail = f"{request.method} is not allowed on {request.path}"
        if exc.code == 404:
            detail = f"no endpoint at {request.path}"
        response = problem_response(exc.code or 500, slug, exc.name, detail)
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # required on a 405
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return problem_response(500, *INTERNAL_ERROR)
