"""The event schema: normalisation and one clear message per problem."""

from __future__ import annotations

import pytest

from tribes.events import (
    MAX_LINE_BYTES,
    EdgeEvent,
    EventError,
    PostEvent,
    UserEvent,
    format_ts,
    hashtags,
    parse_line,
    parse_ts,
    to_json,
    validate,
)


def test_user_event_normalises_ids_tags_and_time():
    e = validate(
        {
            "type": "user",
            "id": 42,
            "ts": "2026-01-01T00:00:00Z",
            "interests": ["#Go", "go", " #Rust"],
        }
    )
    assert e == UserEvent(id="42", ts=1767225600.0, interests=("go", "rust"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, 0.0),
        (1767225600, 1767225600.0),
        ("1767225600.5", 1767225600.5),
        ("2026-01-01T00:00:00Z", 1767225600.0),
        ("2026-01-01T01:00:00+01:00", 1767225600.0),
        ("2026-01-01 00:00:00", 1767225600.0),
        ("2026-01-01", 1767225600.0),
    ],
)
def test_timestamps_rfc3339_or_unix_seconds(raw, expected):
    assert parse_ts(raw) == expected
    assert parse_ts(format_ts(expected)) == float(int(expected))  # and back, to the second


def test_format_ts_keeps_whole_seconds_in_utc():
    assert format_ts(1767225600.9) == "2026-01-01T00:00:00Z"
    assert parse_ts(format_ts(1_793_491_199.5)) == 1_793_491_199.0


@pytest.mark.parametrize(
    "raw",
    ["yesterday", "2026-13-01T00:00:00Z", True, None, [], -5, 1767225600000, "nan", float("inf")],
)
def test_bad_timestamps_are_named(raw):
    with pytest.raises(EventError) as info:
        parse_ts(raw)
    assert info.value.field == "ts"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 2026-01-01T00:00:00Z ", 1767225600.0),  # spaces around an RFC 3339 time
        ("2026-01-01T00:00:00Z\n", 1767225600.0),
        (" 1767225600 ", 1767225600.0),  # a number as text
        ("1e3", 1000.0),
        ("1.2e-5555", 0.0),  # a dash after a mantissa: still a number
        (1767225600.25, 1767225600.25),
    ],
)
def test_timestamps_the_fast_paths_leave_to_the_general_one(raw, expected):
    assert parse_ts(raw) == expected


@pytest.mark.parametrize("raw", ["2026-01-01T00:00:00", "12345-01-01", "٢٠٢٦-01-01"])
def test_four_digits_and_a_dash_are_a_date_or_an_error(raw):
    # ISO dates without offset are UTC; other digit-dash strings are named errors, not numbers
    if raw == "2026-01-01T00:00:00":
        assert parse_ts(raw) == 1767225600.0
    else:
        with pytest.raises(EventError, match="cannot parse timestamp"):
            parse_ts(raw)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("\u00a0a", "surrounding spaces"),  # no-break space
        ("a\u2028", "surrounding spaces"),  # line separator
        ("a\x85", "surrounding spaces"),  # next line (C1): whitespace to str.strip
        ("a\x7fb", "control characters"),
        ("a\x1fb", "control characters"),
        (" a", "surrounding spaces"),
    ],
)
def test_ids_with_unusual_characters_are_still_checked(raw, words):
    with pytest.raises(EventError, match=words):
        validate({"type": "user", "id": raw, "ts": 1})


def test_unprintable_but_legal_ids_are_kept():
    # not printable, yet neither a control character nor surrounding space: accepted as before
    for raw in ("a\u200bb", "a\u00adb", "a\u00a0b"):
        assert validate({"type": "user", "id": raw, "ts": 1}).id == raw


def test_post_tags_default_to_hashtags_in_text():
    e = validate(
        {
            "type": "post",
            "id": "p1",
            "author": "a",
            "ts": 1,
            "text": "Hi #Quantum and #qubits, not a#b",
        }
    )
    assert isinstance(e, PostEvent)
    assert e.tags == ("quantum", "qubits")
    assert e.reply_to is None


def test_explicit_tags_win_over_hashtags():
    e = validate({"type": "post", "id": "p1", "author": "a", "ts": 1, "text": "#x", "tags": ["Y"]})
    assert e.tags == ("y",)


def test_edge_event_relation_and_effect():
    e = validate({"type": "unblock", "src": 1, "dst": 2, "ts": 5})
    assert e == EdgeEvent(type="unblock", src="1", dst="2", ts=5.0)
    assert (e.relation, e.active) == ("block", False)


@pytest.mark.parametrize(
    ("obj", "field", "words"),
    [
        ({"id": "a", "ts": 1}, "type", "missing"),
        ({"type": "like", "id": "a", "ts": 1}, "type", "unknown event type 'like'"),
        ({"type": "user", "ts": 1}, "id", "missing"),
        ({"type": "user", "id": "a"}, "ts", "missing"),
        ({"type": "user", "id": 1.5, "ts": 1}, "id", "expected a string or integer id"),
        ({"type": "user", "id": True, "ts": 1}, "id", "expected a string or integer id"),
        ({"type": "user", "id": "", "ts": 1}, "id", "non-empty"),
        ({"type": "user", "id": "a\nb", "ts": 1}, "id", "control characters"),
        ({"type": "user", "id": "x" * 300, "ts": 1}, "id", "longer than"),
        (
            {"type": "user", "id": "a", "ts": 1, "discoverable": "yes"},
            "discoverable",
            "true or false",
        ),
        ({"type": "user", "id": "a", "ts": 1, "interests": "#go"}, "interests", "list of strings"),
        (
            {"type": "user", "id": "a", "ts": 1, "interests": ["#go", 3]},
            "interests[1]",
            "expected a string",
        ),
        ({"type": "follow", "src": "a", "dst": "a", "ts": 1}, "dst", "themself"),
        ({"type": "follow", "src": "a", "ts": 1}, "dst", "missing"),
        ({"type": "post", "id": "p", "author": "a", "ts": 1}, "text", "missing"),
        (
            {"type": "post", "id": "p", "author": "a", "ts": 1, "text": 5},
            "text",
            "expected a string",
        ),
        (
            {"type": "post", "id": "p", "author": "a", "ts": 1, "text": "x", "reply_to": "p"},
            "reply_to",
            "itself",
        ),
        ({"type": "delete_user", "ts": 1}, "id", "missing"),
    ],
)
def test_each_problem_names_its_field(obj, field, words):
    with pytest.raises(EventError) as info:
        validate(obj)
    assert info.value.field == field
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b'{"type": "user", "id": "a", "ts": 1', "malformed JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"type":"user","id":"\xff","ts":1}', "invalid UTF-8"),
        (b"[" * 2000 + b"]" * 2000, "malformed JSON"),
        (b" " * (MAX_LINE_BYTES + 1), "line longer than"),
    ],
)
def test_bad_lines(line, words):
    with pytest.raises(EventError) as info:
        parse_line(line)
    assert words in str(info.value)


def test_odd_unicode_is_kept_verbatim():
    e = parse_line('{"type":"post","id":"ü-1","author":"名前","ts":1,"text":"💬 #Tëst"}'.encode())
    assert (e.id, e.author, e.tags) == ("ü-1", "名前", ("tëst",))


def test_to_json_round_trips():
    for obj in [
        {
            "type": "user",
            "id": "a",
            "ts": 1.0,
            "name": "A",
            "interests": ["go"],
            "discoverable": False,
        },
        {"type": "mute", "src": "a", "dst": "b", "ts": 2.0},
        {
            "type": "post",
            "id": "p",
            "author": "a",
            "ts": 3.0,
            "text": "t",
            "tags": ["x"],
            "reply_to": "q",
        },
        {"type": "delete_post", "id": "p", "ts": 4.0},
    ]:
        assert to_json(validate(obj)) == obj


def test_hashtags_dedupe_in_order():
    assert hashtags("#b #a #B") == ("b", "a")
