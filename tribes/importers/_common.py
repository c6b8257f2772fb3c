"""Helpers shared by the importers: timestamps, id checks and skip counters."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from pathlib import Path

from tribes.errors import InputError
from tribes.events import MAX_ID_CHARS, EventError, parse_ts

__all__ = ["DEFAULT_TS", "MessageThreads", "check_id", "check_ts", "finish_stats", "time_value"]

#: Timestamp given to events of datasets that carry no time (SNAP ego networks, bare edge lists).
DEFAULT_TS = "2012-01-01T00:00:00Z"

log = logging.getLogger("tribes.importers")


def check_ts(
    value: object, *, field: str = "ts", path: str | Path | None = None, line: int | None = None
) -> float:
    """Return Unix seconds for ``value`` or raise :class:`InputError` naming ``field``."""
    try:
        return parse_ts(value, field)
    except EventError as exc:
        raise InputError(exc.problem, path=_str(path), line=line, field=field) from None


def time_value(
    value: object, *, field: str = "ts", path: str | Path | None = None, line: int | None = None
) -> tuple[object, float]:
    """A time read from a file as an event ``ts`` and its Unix seconds: a numeric string becomes
    the number (Unix seconds), anything else stays as given (RFC 3339); :class:`InputError`
    naming ``field`` (and the file and line) when it is no time."""
    if isinstance(value, str):
        for number in (int, float):
            with contextlib.suppress(ValueError):
                value = number(value)
                break
    return value, check_ts(value, field=field, path=path, line=line)


def check_id(
    value: str, *, field: str, path: str | Path | None = None, line: int | None = None
) -> str:
    """Return ``value`` if it is a usable event id, else raise :class:`InputError`."""
    if not value or len(value) > MAX_ID_CHARS or not value.isprintable() or value != value.strip():
        raise InputError(f"unusable id {value[:60]!r}", path=_str(path), line=line, field=field)
    return value


def finish_stats(name: str, counts: Counter, stats: dict | None) -> None:
    """Copy ``counts`` into the caller's ``stats`` dict (if any) and log them at INFO."""
    if stats is not None:
        stats.update(counts)
    log.info("%s import: %s", name, ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


class MessageThreads:
    """Direct messages as posts (the schema has none): a message a → b is a reply to the most
    recent earlier message b → a when there is one (a two-way exchange becomes a thread, the
    reply's text ``""``), else a root post whose text is ``"@b"``. Messages must come in time
    order. Memory O(distinct directed pairs)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], str] = {}  # (a, b) → id of the latest message a → b

    def post(self, post_id: str, a: str, b: str, when: object, counts: Counter) -> dict:
        """The post event of message ``post_id`` a → b at ``when``; counts ``roots`` / ``replies``."""
        target = self._last.get((b, a))
        self._last[(a, b)] = post_id
        if target is None:
            counts["roots"] += 1
            return {"type": "post", "id": post_id, "author": a, "ts": when, "text": f"@{b}"}
        counts["replies"] += 1
        return {
            "type": "post",
            "id": post_id,
            "author": a,
            "ts": when,
            "text": "",
            "reply_to": target,
        }


def _str(path: str | Path | None) -> str | None:
    return None if path is None else str(path)
