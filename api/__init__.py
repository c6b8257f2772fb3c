"""The tribes JSON API (Flask): a thin layer over ``tribes.service.SuggestionService``.

``create_app(test_config=None)`` builds the app from :class:`tribes.config.Settings`
(``TRIBES_*`` variables), then ``test_config`` overrides. Nothing is opened at import time.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections import defaultdict, deque
from typing import Any

import orjson
from flask import Flask, g, request

from tribes import __version__
from tribes.config import Settings
from tribes.service import ModelHolder, SuggestionService
from tribes.store import Store

from . import problems
from .access_log import AccessLogBuffer
from .auth import check_bearer, load_key_digests
from .metrics import request_metrics
from .problems import problem_response
from .routes import events, suggestions, system, tribes
from .spec import build_spec

__all__ = ["create_app"]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access_log = logging.getLogger("tribes.access")


_stderr_handler: logging.StreamHandler | None = None
_access_buffer = AccessLogBuffer()


def _configure_logging() -> None:
    global _stderr_handler
    if access_log.handlers:
        return
    _stderr_handler = logging.StreamHandler(sys.stderr)
    _stderr_handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(_stderr_handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def flush_access_log() -> None:
    """Write the access-log lines this process has queued (see ``access_log.py``)."""
    _access_buffer.flush()


def _log_access(line: bytes) -> None:
    """One JSON line on the ``tribes.access`` logger. With only the default stderr handler
    attached the bytes go to its file descriptor in batches (``access_log.py``; a LogRecord cost
    ~10 us a request, a write per line ~100 us of CPU to a file on a busy machine); any other
    handler (files, collectors, tests) gets the usual logging path."""
    handlers = access_log.handlers
    if len(handlers) == 1 and handlers[0] is _stderr_handler and access_log.isEnabledFor(logging.INFO):
        try:
            fd = _stderr_handler.stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = -1
        if fd >= 0:  # whole lines, in batches under PIPE_BUF: never interleaved with another
            try:
                _access_buffer.write(fd, line + b"\n")
                return
            except OSError:
                pass
    access_log.info(line.decode())


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the API. ``test_config`` may set ``SETTINGS`` (a Settings), ``SERVICE``, Flask keys."""
    app = Flask(__name__)
    test_config = dict(test_config or {})
    settings: Settings = test_config.pop("SETTINGS", None) or Settings.load()
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        TRIBES_SETTINGS=settings,
        ACCESS_LOG=True,
    )
    app.config.update(test_config)
    keys = load_key_digests(settings.api_keys, settings.api_keys_file or None)
    app.config["AUTH_ENABLED"] = bool(keys)
    service = app.config.get("SERVICE") or SuggestionService(
        Store.open(settings.db), ModelHolder(settings.models, check_interval=settings.model_check_seconds))
    app.extensions["tribes"] = service
    _configure_logging()
    problems.register(app)
    for module in (suggestions, tribes, events, system):
        app.register_blueprint(module.bp)
    app.config["OPENAPI"] = build_spec("tribes", __version__, secured=bool(keys))
    rate = settings.rate_limit_per_minute
    windows: dict[bytes, deque] = defaultdict(deque)
    windows_lock = threading.Lock()

    # The hooks run on every request: they read the request object and the WSGI environ once
    # instead of going through Flask's context proxies for each field (~1 us per access).
    @app.before_request
    def _before():
        req, ctx = request._get_current_object(), g._get_current_object()
        environ = req.environ
        ctx.started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        ctx.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()
        if keys and req.path.startswith("/v1/"):
            header = environ.get("HTTP_AUTHORIZATION")
            if not check_bearer(header, keys):
                response = problem_response(401, "unauthorized", "Unauthorized",
                                            "send Authorization: Bearer <API key>")
                response.headers["WWW-Authenticate"] = 'Bearer realm="tribes"'
                return response
            if rate:
                import hashlib

                # The key as check_bearer reads it: spacing must not open a second window.
                who = hashlib.sha256(header[7:].strip().encode()).digest()
                with windows_lock:  # gthread workers: one window, checked and updated at once
                    now = time.monotonic()
                    window = windows[who]
                    while window and now - window[0] > 60:
                        window.popleft()
                    retry_after = max(1, int(60 - (now - window[0]))) if len(window) >= rate else 0
                    if not retry_after:
                        window.append(now)
                if retry_after:
                    response = problem_response(429, "rate-limited", "Too Many Requests",
                                                f"more than {rate} requests per minute for this key")
                    response.headers["Retry-After"] = str(retry_after)
                    return response
        return None

    @app.after_request
    def _after(response):
        req, ctx = request._get_current_object(), g._get_current_object()
        rid = getattr(ctx, "request_id", None) or os.urandom(16).hex()
        response.headers["X-Request-ID"] = rid
        started = getattr(ctx, "started", None)
        elapsed = time.perf_counter() - started if started else 0.0
        rule = req.url_rule
        endpoint = rule.rule if rule else "unmatched"
        status = response.status_code
        count, latency = request_metrics(endpoint, req.method, status)
        count.inc()
        latency.observe(elapsed)
        if app.config["ACCESS_LOG"]:
            _log_access(orjson.dumps({
                "ts": round(time.time(), 3), "request_id": rid, "method": req.method,
                "path": req.path, "endpoint": endpoint, "status": status,
                "ms": round(elapsed * 1000, 2), "bytes": response.calculate_content_length(),
                "remote": req.remote_addr}))
        return response

    return app
