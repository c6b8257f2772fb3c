"""The tribes JSON API (Flask): a thin layer over ``tribes.service.SuggestionService``.

``create_app(test_config=None)`` builds the app from :class:`tribes.config.Settings`
(``TRIBES_*`` variables), then ``test_config`` overrides. Nothing is opened at import time.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, g, request

from tribes import __version__
from tribes.config import Settings
from tribes.service import ModelHolder, SuggestionService
from tribes.store import Store

from . import problems
from .auth import load_key_digests
from .fast import FastLane
from .gate import Gate
from .observe import configure_logging, flush_access_log, record, request_id
from .problems import problem_response
from .routes import events, suggestions, system, tribes
from .spec import build_spec

__all__ = ["create_app", "flush_access_log"]


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
        Store.open(settings.db),
        ModelHolder(
            settings.models,
            check_interval=settings.model_check_seconds,
            render_cache_bytes=settings.render_cache_mb * 2**20,
        ),
    )
    app.extensions["tribes"] = service
    configure_logging()
    problems.register(app)
    for module in (suggestions, tribes, events, system):
        app.register_blueprint(module.bp)
    app.config["OPENAPI"] = build_spec("tribes", __version__, secured=bool(keys))
    gate = Gate(keys, settings.rate_limit_per_minute)

    # The hooks run on every request Flask serves: they read the request object and the WSGI
    # environ once instead of going through Flask's context proxies for each field (~1 us each).
    @app.before_request
    def _before():
        req, ctx = request._get_current_object(), g._get_current_object()
        ctx.started = time.perf_counter()
        ctx.request_id = request_id(req.environ)
        refusal = gate.check(req.environ, req.path)
        if refusal is None:
            return None
        response = problem_response(refusal.status, refusal.slug, refusal.title, refusal.detail)
        response.headers.extend(refusal.headers)
        return response

    @app.after_request
    def _after(response):
        req, ctx = request._get_current_object(), g._get_current_object()
        rid = getattr(ctx, "request_id", None) or os.urandom(16).hex()
        response.headers["X-Request-ID"] = rid
        started = getattr(ctx, "started", None)
        rule = req.url_rule
        record(
            rid=rid,
            method=req.method,
            path=req.path,
            endpoint=rule.rule if rule else "unmatched",
            status=response.status_code,
            elapsed=time.perf_counter() - started if started else 0.0,
            nbytes=response.calculate_content_length(),
            remote=req.remote_addr,
            log=app.config["ACCESS_LOG"],
        )
        return response

    # The two suggestion reads skip Flask's per-request machinery (same answers: api/fast.py).
    app.wsgi_app = FastLane(app, gate, app.wsgi_app)
    return app
