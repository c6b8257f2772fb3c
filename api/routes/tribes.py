"""Tribes: the list and one tribe's page (starter pack, live conversations)."""

from __future__ import annotations

from flask import Blueprint

from tribes.service import BadCursor, NoModel, StaleCursor, UnknownTribe

from ..http import int_arg, json_response, service, str_arg
from ..problems import Problem
from ..schemas import TribePage, TribesPage
from ..spec import Param, operation
from .suggestions import CURSOR, LIMIT, raise_service_error

bp = Blueprint("tribes", __name__)

operation(
    method="GET",
    path="/v1/tribes",
    tag="tribes",
    summary="All tribes, largest first",
    params=[LIMIT, CURSOR],
    responses={200: TribesPage, 410: None, 503: None},
)
operation(
    method="GET",
    path="/v1/tribes/{tribe_id}",
    tag="tribes",
    summary="One tribe: label, size, topics, starter pack and live conversations",
    params=[Param("tribe_id", "path", {"type": "integer", "minimum": 0})],
    responses={200: TribePage, 404: None, 503: None},
)


@bp.get("/v1/tribes")
def list_tribes():
    try:
        return json_response(service().list_tribes(int_arg("limit", 20, 1, 100), str_arg("cursor")))
    except (StaleCursor, BadCursor, NoModel) as exc:
        raise_service_error(exc)


@bp.get("/v1/tribes/<tribe_id>")
def tribe(tribe_id: str):
    if not tribe_id.isascii() or not tribe_id.isdigit() or len(tribe_id) > 18:
        raise Problem(
            400,
            "invalid-parameter",
            "Invalid parameter",
            f"tribe_id: expected a non-negative integer, got {tribe_id[:40]!r}",
            field="tribe_id",
        )
    try:
        return json_response(service().tribe(int(tribe_id)))
    except UnknownTribe as exc:
        raise Problem(404, "unknown-tribe", "Unknown tribe", str(exc)) from None
    except NoModel as exc:
        raise_service_error(exc)
