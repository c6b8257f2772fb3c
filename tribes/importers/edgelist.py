"""Import a whitespace-separated edge list ``SRC DST [TS]`` (SNAP style).

Each non-blank line that does not start with ``#`` or ``%`` holds a source id, a destination id
and optionally a timestamp (Unix seconds, or RFC 3339 without spaces). SNAP's CollegeMsg
(``SRC DST UNIXTS``, one line per private message) is the reference input. ``.gz`` files and
``-`` (stdin) are read transparently.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from tribes.errors import InputError
from tribes.importers._common import DEFAULT_TS, check_id, check_ts, finish_stats
from tribes.jsonl import open_input

__all__ = ["KINDS", "iter_events"]

KINDS = ("follow", "message")


def iter_events(
    src: str | Path,
    *,
    kind: str = "follow",
    ts: str | float = DEFAULT_TS,
    undirected: bool = False,
    stats: dict | None = None,
) -> Iterator[dict]:
    """Yield tribes events for the edge list ``src``, one line at a time.

    Parameters
    ----------
    src
        Path of the edge list (``.gz`` allowed, ``-`` for stdin).
    kind
        ``"follow"`` (default): every line is a ``follow`` event SRC → DST; repeated pairs are
        kept (following again is idempotent in the store), so CollegeMsg gives one follow per
        message (59,835).
        ``"message"``: every line is a ``post`` by SRC with id ``m<LINE>`` (LINE = 1-based line
        number in the file). The schema has no direct messages, so a message a → b is modelled
        as a reply to the most recent earlier message b → a when there is one (a two-way
        exchange becomes a thread; the reply's text is ``""``), otherwise as a root post whose
        text is ``"@b"``. This gives evaluations real reply/conversation signal.
    ts
        Timestamp for lines without a third column (RFC 3339 or Unix seconds).
    undirected
        With ``kind="follow"``, also emit DST → SRC for every line (for undirected lists such
        as SNAP's ``facebook_combined.txt``).
    stats
        Optional dict that receives counters when the generator is exhausted: ``lines``,
        ``events``, ``self_loops`` (skipped), ``comments`` (comment and blank lines),
        ``replies``, ``roots``. Not a CLI option.

    Raises
    ------
    InputError
        For a malformed line (not 2 or 3 columns, unusable id, bad timestamp), naming
        ``FILE:LINE``; for an unknown ``kind``; for a bad default ``ts``.

    Notes
    -----
    Memory is constant for ``kind="follow"`` and O(distinct directed pairs) for ``"message"``.
    A self-loop line (SRC == DST) is skipped and counted. Users are not emitted: the store
    creates them implicitly from the follows and posts.
    """
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", field="kind")
    if undirected and kind != "follow":
        raise InputError("undirected applies to kind='follow' only", field="undirected")
    check_ts(ts)
    name = str(src)
    counts: Counter = Counter(lines=0, comments=0, self_loops=0, events=0)
    last: dict[tuple[str, str], str] = {}  # (a, b) → id of the latest message a → b
    with open_input(src) as fh:
        for lineno, raw in enumerate(fh, 1):
            counts["lines"] += 1
            stripped = raw.strip()
            if not stripped or stripped[:1] in (b"#", b"%"):
                counts["comments"] += 1
                continue
            a, b, when = _parse(stripped, name, lineno, ts)
            if a == b:
                counts["self_loops"] += 1
                continue
            if kind == "follow":
                yield {"type": "follow", "src": a, "dst": b, "ts": when}
                if undirected:
                    yield {"type": "follow", "src": b, "dst": a, "ts": when}
                    counts["events"] += 1
            else:
                post_id = f"m{lineno}"
                target = last.get((b, a))
                if target is None:
                    counts["roots"] += 1
                    yield {"type": "post", "id": post_id, "author": a, "ts": when, "text": f"@{b}"}
                else:
                    counts["replies"] += 1
                    yield {
                        "type": "post",
                        "id": post_id,
                        "author": a,
                        "ts": when,
                        "text": "",
                        "reply_to": target,
                    }
                last[(a, b)] = post_id
            counts["events"] += 1
    finish_stats("edgelist", counts, stats)


def _parse(line: bytes, name: str, lineno: int, default_ts: str | float) -> tuple[str, str, object]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid UTF-8 at byte {exc.start}", path=name, line=lineno) from None
    parts = text.split()
    if len(parts) not in (2, 3):
        raise InputError(
            f"expected 'SRC DST [TS]', got {len(parts)} columns: {text[:80]!r}",
            path=name,
            line=lineno,
        )
    a = check_id(parts[0], field="src", path=name, line=lineno)
    b = check_id(parts[1], field="dst", path=name, line=lineno)
    if len(parts) == 2:
        return a, b, default_ts
    value: object = parts[2]  # Unix seconds (int or float) or an RFC 3339 string
    for number in (int, float):
        with contextlib.suppress(ValueError):
            value = number(parts[2])
            break
    check_ts(value, path=name, line=lineno)
    return a, b, value
