"""Suggestions, a user's tribes and feedback."""

from __future__ import annotations

import time
from collections.abc import Mapping

from flask import Blueprint, Response, request
from pydantic import ValidationError

from tribes.service import BadCursor, NoModel, StaleCursor, SuggestionService, UnknownUser
from tribes.store import add_feedback

from ..http import check_id, int_arg, json_response, service, str_arg
from ..problems import Problem
from ..schemas import ConversationsPage, Feedback, FeedbackResult, PeoplePage, UserTribes
from ..spec import Param, operation

bp = Blueprint("suggestions", __name__)

USER = Param("user_id", "path", {"type": "string", "minLength": 1, "maxLength": 256})
LIMIT = Param(
    "limit",
    "query",
    {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    "items per page",
)
CURSOR = Param(
    "cursor", "query", {"type": "string", "maxLength": 512}, "next_cursor of the previous page"
)

operation(
    method="GET",
    path="/v1/users/{user_id}/suggestions/people",
    tag="suggestions",
    summary="People to talk with, ranked for two-way conversation, each with reasons",
    params=[USER, LIMIT, CURSOR],
    responses={200: PeoplePage, 404: None, 410: None, 503: None},
)
operation(
    method="GET",
    path="/v1/users/{user_id}/suggestions/conversations",
    tag="suggestions",
    summary="Live conversations to join, each with reasons",
    params=[USER, LIMIT, CURSOR],
    responses={200: ConversationsPage, 404: None, 410: None, 503: None},
)
operation(
    method="GET",
    path="/v1/users/{user_id}/tribes",
    tag="tribes",
    summary="The user's tribes with affinities (primary first)",
    params=[USER],
    responses={200: UserTribes, 404: None, 503: None},
)
operation(
    method="POST",
    path="/v1/users/{user_id}/feedback",
    tag="feedback",
    summary="Store what came of a suggestion; dismissed items never come back",
    params=[USER],
    body=Feedback,
    responses={201: FeedbackResult, 404: None, 413: None, 415: None},
)


def raise_service_error(exc: Exception) -> None:
    if isinstance(exc, UnknownUser):
        raise Problem(404, "unknown-user", "Unknown user", str(exc))
    if isinstance(exc, StaleCursor):
        raise Problem(
            410,
            "stale-cursor",
            "Cursor from an older model",
            str(exc),
            cursor_model=exc.cursor_version,
            current_model=exc.current,
        )
    if isinstance(exc, BadCursor):
        raise Problem(400, "invalid-cursor", "Invalid cursor", str(exc), field="cursor")
    if isinstance(exc, NoModel):
        raise Problem(503, "no-model", "No model yet", str(exc))
    raise exc


def suggestions_body(
    svc: SuggestionService, user_id: str, kind: str, args: Mapping[str, str] | None
) -> bytes:
    """The JSON page of ``kind`` (people or conversations) for ``user_id``; ``args``: the query
    parameters (None: no query string, the usual first page). Raises :class:`Problem`.
    The Flask views and the fast lane (``api/fast.py``) both answer with it."""
    user = check_id(user_id, "user_id")
    if args:
        limit, cursor = int_arg("limit", 20, 1, 100, args), str_arg("cursor", args=args)
    else:
        limit, cursor = 20, None
    try:
        return svc.suggestions_json(user, kind, limit, cursor)
    except (UnknownUser, StaleCursor, BadCursor, NoModel) as exc:
        raise_service_error(exc)


def _suggest(user_id: str, kind: str):
    args = request.args if request.environ.get("QUERY_STRING") else None
    return Response(suggestions_body(service(), user_id, kind, args), mimetype="application/json")


@bp.get("/v1/users/<path:user_id>/suggestions/people", merge_slashes=False)  # ids may hold "/"
def people(user_id: str):
    return _suggest(user_id, "people")


@bp.get("/v1/users/<path:user_id>/suggestions/conversations", merge_slashes=False)
def conversations(user_id: str):
    return _suggest(user_id, "conversations")


@bp.get("/v1/users/<path:user_id>/tribes", merge_slashes=False)
def user_tribes(user_id: str):
    try:
        return json_response(service().user_tribes(check_id(user_id, "user_id")))
    except (UnknownUser, NoModel) as exc:
        raise_service_error(exc)


@bp.post("/v1/users/<path:user_id>/feedback", merge_slashes=False)
def feedback(user_id: str):
    user = check_id(user_id, "user_id")
    if not request.is_json:
        raise Problem(
            415, "unsupported-media-type", "Unsupported Media Type", "send application/json"
        )
    try:
        body = Feedback.model_validate_json(request.get_data())
    except ValidationError as exc:
        raise Problem(
            400,
            "invalid-body",
            "Invalid feedback",
            "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors()[:5]
            ),
            errors=[
                {"field": ".".join(str(x) for x in e["loc"]), "problem": e["msg"]}
                for e in exc.errors()[:20]
            ],
        ) from None
    store = service().store
    with store.transaction() as writer:
        known = add_feedback(
            writer, user, body.target_kind, body.target_id, body.action, time.time()
        )
    if not known:
        raise Problem(404, "unknown-user", "Unknown user", f"unknown user {user!r}")
    return json_response(
        {
            "stored": True,
            "user_id": user,
            "target_kind": body.target_kind,
            "target_id": body.target_id,
            "action": body.action,
        },
        status=201,
    )
