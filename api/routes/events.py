"""Events in: a JSON array or NDJSON, validated whole, stored all-or-nothing, idempotent."""

from __future__ import annotations

import orjson
from flask import Blueprint, current_app, request

from tribes.ingest import ingest_lines, ingest_objects, latest_allowed

from ..http import json_response, service
from ..metrics import EVENTS
from ..problems import Problem
from ..schemas import EventsResult
from ..spec import operation

bp = Blueprint("events", __name__)

operation(
    method="POST",
    path="/v1/events",
    tag="events",
    summary="Store events (the `tribes ingest` schema): all or nothing, idempotent",
    body={
        "type": "array",
        "items": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"type": "string"}},
        },
    },
    body_description="A JSON array of events, or NDJSON with Content-Type application/x-ndjson",
    responses={200: EventsResult, 413: None, 415: None, 422: None},
)


@bp.post("/v1/events")
def post_events():
    mimetype = request.mimetype
    raw = request.get_data(cache=False)
    store = service().store
    not_after = latest_allowed(current_app.config["TRIBES_SETTINGS"].max_future_seconds)
    if mimetype in ("application/x-ndjson", "application/jsonl", "application/json-seq"):
        report = ingest_lines(store, raw.splitlines(), source="request", not_after=not_after)
    elif mimetype == "application/json":
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Problem(
                400,
                "malformed-json",
                "Malformed JSON",
                f"the body is not JSON: {exc.msg} at character {exc.pos}",
            ) from None
        if not isinstance(body, list):
            raise Problem(
                400,
                "invalid-body",
                "Invalid body",
                f"expected a JSON array of events, got {type(body).__name__}",
            )
        report = ingest_objects(store, body, source="request", not_after=not_after)
    else:
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported Media Type",
            "send application/json (an array) or application/x-ndjson",
        )
    if not report.committed:
        errors = [
            {"index": p.line - 1, "line": p.line, "field": p.field, "problem": p.problem}
            for p in report.problems
        ]
        raise Problem(
            422,
            "invalid-events",
            "Invalid events",
            f"{report.rejected} of {report.lines} events are invalid; nothing was stored. "
            + "; ".join(
                f"event {e['index']}: {e['field'] + ': ' if e['field'] else ''}{e['problem']}"
                for e in errors[:3]
            ),
            errors=errors,
            rejected=report.rejected,
        )
    for kind, n in report.counts.items():
        EVENTS.labels(kind).inc(n)
    return json_response(
        {
            "accepted": report.accepted,
            "by_type": dict(sorted(report.counts.items())),
            "ignored_erased": report.ignored_erased,
        }
    )
