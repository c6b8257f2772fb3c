"""Small helpers shared by the views: JSON responses, parameter parsing, the service."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Response, current_app, request

from tribes.service import SuggestionService

from .problems import Problem

_ID = re.compile(r"[^\x00-\x1f\x7f]{1,256}")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def service() -> SuggestionService:
    return current_app.extensions["tribes"]


def check_id(value: str, field: str) -> str:
    if not _ID.fullmatch(value) or value != value.strip():
        raise Problem(
            400,
            "invalid-parameter",
            "Invalid parameter",
            f"{field}: expected 1-256 printable characters without surrounding spaces",
            field=field,
        )
    return value


def int_arg(
    name: str, default: int, low: int, high: int, args: Mapping[str, str] | None = None
) -> int:
    """Query parameter ``name`` (from ``args``, default the request's) as an int in [low, high]."""
    raw = (request.args if args is None else args).get(name)
    if raw is None or raw == "":
        return default
    try:  # ASCII digits only: int() alone takes "１０", " 5" and "1_0"
        value = int(raw) if raw.isascii() and raw.removeprefix("-").isdigit() else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise Problem(
            400,
            "invalid-parameter",
            "Invalid parameter",
            f"{name}: expected an integer from {low} to {high}, got {raw[:40]!r}",
            field=name,
        )
    return value


def str_arg(name: str, max_len: int = 512, args: Mapping[str, str] | None = None) -> str | None:
    raw = (request.args if args is None else args).get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_len:
        raise Problem(
            400, "invalid-parameter", "Invalid parameter", f"{name}: too long", field=name
        )
    return raw
