"""Health, model info, metrics, the OpenAPI document and its docs page."""

from __future__ import annotations

import html

from flask import Blueprint, Response, current_app

from tribes.service import NoModel

from ..http import json_response, service
from ..metrics import render
from ..problems import Problem, problem_response
from ..schemas import Health, ModelInfo
from ..spec import operation

bp = Blueprint("system", __name__)

operation(
    method="GET",
    path="/v1/model",
    tag="system",
    summary="The served model: version, build time, counts",
    responses={200: ModelInfo, 503: None},
)
operation(
    method="GET",
    path="/livez",
    tag="system",
    summary="The process is up",
    responses={200: Health},
    secured=False,
)
operation(
    method="GET",
    path="/readyz",
    tag="system",
    summary="A model is loaded and the store answers",
    responses={200: Health, 503: None},
    secured=False,
)
operation(
    method="GET",
    path="/metrics",
    tag="system",
    summary="Prometheus metrics (all workers)",
    responses={200: "text"},
    secured=False,
)
operation(
    method="GET",
    path="/openapi.json",
    tag="system",
    summary="This document",
    responses={200: None},
    secured=False,
)
operation(
    method="GET",
    path="/docs",
    tag="system",
    summary="Human-readable API documentation",
    responses={200: "html"},
    secured=False,
)


@bp.get("/v1/model")
def model_info():
    try:
        return json_response(service().model_info())
    except NoModel as exc:
        raise Problem(503, "no-model", "No model yet", str(exc)) from None


@bp.get("/livez")
def livez():
    return json_response({"status": "ok", "checks": {}})


@bp.get("/readyz")
def readyz():
    svc = service()
    checks = {"store": "ok" if svc.store.is_reachable() else "unreachable"}
    model = svc.holder.get()
    checks["model"] = (
        model.version if model is not None else (svc.holder.load_error or "none published")
    )
    if model is None or checks["store"] != "ok":
        return problem_response(
            503,
            "not-ready",
            "Not ready",
            f"model: {checks['model']}; store: {checks['store']}",
            checks=checks,
        )
    return json_response({"status": "ok", "checks": checks})


@bp.get("/metrics")
def metrics():
    body, content_type = render()
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
def openapi():
    return json_response(current_app.config["OPENAPI"])


@bp.get("/docs")
def docs():
    spec = current_app.config["OPENAPI"]
    rows = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            codes = ", ".join(op["responses"])
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{html.escape(params)}</td><td>{codes}</td></tr>"
            )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>tribes API</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
        "td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
        f"<h1>{html.escape(spec['info']['title'])} {html.escape(spec['info']['version'])}</h1>"
        f"<p>{html.escape(spec['info']['description'])} Errors are "
        "<code>application/problem+json</code> (RFC 9457). The machine-readable spec is "
        "<a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1).</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th><th>responses</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return Response(page, mimetype="text/html")
