"""The event schema: one JSON object per line, validated into plain tuples.

Every event has a ``type``. The names and shapes are fixed::

    {"type":"user","id":…,"ts":…,"name"?:…,"bio"?:…,"interests"?:["#tag",…],"discoverable"?:true}
    {"type":"follow"|"unfollow"|"block"|"unblock"|"mute"|"unmute","src":…,"dst":…,"ts":…}
    {"type":"post","id":…,"author":…,"ts":…,"text":…,"tags"?:[…],"reply_to"?:POST_ID}
    {"type":"delete_user","id":…,"ts":…}
    {"type":"delete_post","id":…,"ts":…}

``ts`` is RFC 3339 or Unix seconds; it is normalised to float Unix seconds (UTC). Ids are
strings; integers are accepted and kept as their decimal string. Unknown extra fields are
ignored, so producers may add optional fields freely.

Validation is hand-written rather than generated (pydantic) because ingest must sustain
≥ 50,000 events/s on one core and every problem must name its field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

__all__ = [
    "EDGE_TYPES",
    "EVENT_TYPES",
    "MAX_LINE_BYTES",
    "EdgeEvent",
    "Event",
    "EventError",
    "PostDeleteEvent",
    "PostEvent",
    "UserDeleteEvent",
    "UserEvent",
    "format_ts",
    "hashtags",
    "parse_line",
    "parse_ts",
    "validate",
]

#: Edge event type → (relation stored, whether the event switches it on).
EDGE_TYPES: dict[str, tuple[str, bool]] = {
    "follow": ("follow", True),
    "unfollow": ("follow", False),
    "block": ("block", True),
    "unblock": ("block", False),
    "mute": ("mute", True),
    "unmute": ("mute", False),
}
EVENT_TYPES = ("user", *EDGE_TYPES, "post", "delete_user", "delete_post")

MAX_LINE_BYTES = 1 << 20  # one event line, 1 MiB
MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 100_000
MAX_NAME_CHARS = 200
MAX_BIO_CHARS = 5_000
MAX_TAGS = 100
MAX_TAG_CHARS = 100
# Unix seconds accepted: 1970-01-01 .. 2200-01-01 (millisecond timestamps are caught by this).
MAX_TS = 7_258_118_400.0

_HASHTAG = re.compile(r"(?<![\w#])#(\w[\w-]{0,99})", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class EventError(ValueError):
    """A problem with one event. ``field`` names the offending field (or ``""``)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class UserEvent:
    id: str
    ts: float
    name: str | None = None
    bio: str | None = None
    interests: tuple[str, ...] | None = None
    discoverable: bool | None = None
    type: str = "user"


@dataclass(frozen=True, slots=True)
class EdgeEvent:
    type: str  # follow, unfollow, block, unblock, mute, unmute
    src: str
    dst: str
    ts: float

    @property
    def relation(self) -> str:
        return EDGE_TYPES[self.type][0]

    @property
    def active(self) -> bool:
        return EDGE_TYPES[self.type][1]


@dataclass(frozen=True, slots=True)
class PostEvent:
    id: str
    author: str
    ts: float
    text: str
    tags: tuple[str, ...]
    reply_to: str | None = None
    type: str = "post"


@dataclass(frozen=True, slots=True)
class UserDeleteEvent:
    id: str
    ts: float
    type: str = "delete_user"


@dataclass(frozen=True, slots=True)
class PostDeleteEvent:
    id: str
    ts: float
    type: str = "delete_post"


Event = UserEvent | EdgeEvent | PostEvent | UserDeleteEvent | PostDeleteEvent


def parse_ts(value: object, field: str = "ts") -> float:
    """Return Unix seconds (float, UTC) for an RFC 3339 string or a number of Unix seconds."""
    kind = type(value)
    if kind is str and value[4:5] == "-" and value[:4].isdigit():
        # The usual RFC 3339 string: four digits and a dash are never a number, so this is
        # what the general path below would do after float() failed (an exception per event).
        seconds = _parse_rfc3339(value.strip(), field)
    elif kind is float or kind is int:
        seconds = float(value)
    else:
        seconds = _parse_any_ts(value, field)
    if not 0.0 <= seconds < MAX_TS:  # also False for NaN
        raise EventError(field, f"{value!r} is out of range (Unix seconds 0 .. {MAX_TS:.0f})")
    return seconds


def format_ts(ts: float) -> str:
    """Unix seconds → RFC 3339 in UTC to the second (``2026-11-01T09:00:00Z``)."""
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_any_ts(value: object, field: str) -> float:
    if isinstance(value, bool):
        raise EventError(field, f"expected RFC 3339 or Unix seconds, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = _parse_rfc3339(text, field)
    else:
        raise EventError(field, f"expected RFC 3339 or Unix seconds, got {type(value).__name__}")
    return seconds


def _parse_rfc3339(text: str, field: str) -> float:
    if len(text) < 10 or len(text) > 40:
        raise EventError(field, f"cannot parse timestamp {text[:60]!r}")
    normal = text[:-1] + "+00:00" if text[-1] in "zZ" else text
    try:
        moment = datetime.fromisoformat(normal)
    except ValueError:
        raise EventError(field, f"cannot parse timestamp {text[:60]!r}") from None
    if moment.tzinfo is None:
        # A bare date or a date-time without offset is read as UTC.
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _id(obj: dict, field: str, *, required: bool = True) -> str | None:
    value = obj.get(field)
    if (
        type(value) is str
        and 0 < len(value) <= MAX_ID_CHARS
        and value.isprintable()  # no control characters (nor any other unprintable one)
        and not value[0].isspace()
        and not value[-1].isspace()
    ):
        return value  # the usual id, accepted without the checks below that name a problem
    if value is None:
        if required:
            raise EventError(field, "missing")
        return None
    if isinstance(value, bool):
        raise EventError(field, f"expected a string or integer id, got {value!r}")
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise EventError(field, f"expected a string or integer id, got {type(value).__name__}")
    if not value or value != value.strip():
        raise EventError(field, "must be non-empty without surrounding spaces")
    if len(value) > MAX_ID_CHARS:
        raise EventError(field, f"longer than {MAX_ID_CHARS} characters")
    if _CONTROL.search(value):
        raise EventError(field, "contains control characters")
    return value


def _text(obj: dict, field: str, limit: int, *, required: bool = False) -> str | None:
    value = obj.get(field)
    if value is None:
        if required:
            raise EventError(field, "missing")
        return None
    if not isinstance(value, str):
        raise EventError(field, f"expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise EventError(field, f"longer than {limit} characters")
    return value


def _tags(obj: dict, field: str) -> tuple[str, ...] | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, list):
        raise EventError(field, f"expected a list of strings, got {type(value).__name__}")
    if len(value) > MAX_TAGS:
        raise EventError(field, f"more than {MAX_TAGS} entries")
    out: list[str] = []
    for i, tag in enumerate(value):
        if not isinstance(tag, str):
            raise EventError(f"{field}[{i}]", f"expected a string, got {type(tag).__name__}")
        norm = normalise_tag(tag)
        if not norm:
            raise EventError(f"{field}[{i}]", f"empty tag {tag!r}")
        if len(norm) > MAX_TAG_CHARS:
            raise EventError(f"{field}[{i}]", f"longer than {MAX_TAG_CHARS} characters")
        if norm not in out:
            out.append(norm)
    return tuple(out)


def normalise_tag(tag: str) -> str:
    """``"#Quantum "`` → ``"quantum"``: tags and interests are stored lower-case without '#'."""
    return tag.strip().lstrip("#").strip().lower()


def hashtags(text: str) -> tuple[str, ...]:
    """The distinct #hashtags in ``text``, normalised, in order of appearance."""
    if "#" not in text:
        return ()
    return tuple(dict.fromkeys(tag.lower() for tag in _HASHTAG.findall(text)))[:MAX_TAGS]


def validate(obj: object) -> Event:
    """Validate one decoded JSON value and return the typed event.

    Raises
    ------
    EventError
        naming the field and the problem.
    """
    if not isinstance(obj, dict):
        raise EventError("", f"expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind is None:
        raise EventError("type", "missing")
    if not isinstance(kind, str) or kind not in _VALIDATORS:
        raise EventError(
            "type", f"unknown event type {kind!r}; expected one of {', '.join(EVENT_TYPES)}"
        )
    return _VALIDATORS[kind](obj)


def _ts(obj: dict) -> float:
    value = obj.get("ts")
    if value is None:
        raise EventError("ts", "missing")
    return parse_ts(value)


def _user(obj: dict) -> UserEvent:
    discoverable = obj.get("discoverable")
    if discoverable is not None and not isinstance(discoverable, bool):
        raise EventError("discoverable", f"expected true or false, got {discoverable!r}")
    return UserEvent(
        _id(obj, "id"),
        _ts(obj),
        _text(obj, "name", MAX_NAME_CHARS),
        _text(obj, "bio", MAX_BIO_CHARS),
        _tags(obj, "interests"),
        discoverable,
    )


def _edge(obj: dict) -> EdgeEvent:
    src, dst = _id(obj, "src"), _id(obj, "dst")
    ts = _ts(obj)
    if src == dst:
        raise EventError("dst", f"a user cannot {obj['type']} themself ({src!r})")
    return EdgeEvent(obj["type"], src, dst, ts)  # positional: cheaper, as in every validator


def _post(obj: dict) -> PostEvent:
    post_id, author = _id(obj, "id"), _id(obj, "author")
    ts = _ts(obj)
    text = _text(obj, "text", MAX_TEXT_CHARS, required=True)
    tags = _tags(obj, "tags")
    reply_to = _id(obj, "reply_to", required=False)
    if reply_to == post_id:
        raise EventError("reply_to", "a post cannot reply to itself")
    return PostEvent(
        post_id, author, ts, text, tags if tags is not None else hashtags(text), reply_to
    )


def _delete_user(obj: dict) -> UserDeleteEvent:
    return UserDeleteEvent(_id(obj, "id"), _ts(obj))


def _delete_post(obj: dict) -> PostDeleteEvent:
    return PostDeleteEvent(_id(obj, "id"), _ts(obj))


_VALIDATORS = {
    "user": _user,
    **dict.fromkeys(EDGE_TYPES, _edge),
    "post": _post,
    "delete_user": _delete_user,
    "delete_post": _delete_post,
}


def parse_line(line: bytes | str) -> Event:
    """Decode and validate one JSON Lines line (bytes must be UTF-8)."""
    if len(line) > MAX_LINE_BYTES:
        raise EventError("", f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if isinstance(line, bytes):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as uexc:
                raise EventError("", f"invalid UTF-8 at byte {uexc.start}") from None
        raise EventError("", f"malformed JSON at column {exc.colno}: {exc.msg}") from None
    return validate(obj)


def to_json(event: Event) -> dict:
    """The canonical JSON object of an event (inverse of :func:`validate`, ts in Unix seconds)."""
    out: dict = {"type": event.type}
    for name in event.__slots__:
        if name == "type":
            continue
        value = getattr(event, name)
        if value is None:
            continue
        out[name] = list(value) if isinstance(value, tuple) else value
    return out
