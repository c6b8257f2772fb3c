"""Import an edge list: ``SRC DST [TS]`` lines (SNAP style), or any delimited layout.

Each non-blank line that does not start with ``#`` or ``%`` holds a source id, a destination id
and optionally a timestamp (Unix seconds, or RFC 3339 without spaces). SNAP's CollegeMsg
(``SRC DST UNIXTS``, one line per private message) is the reference input. Other layouts are
described by ``columns`` and ``sep``: KONECT's ``SRC DST WEIGHT TS`` is
``columns="src,dst,-,ts"``, a CSV such as ``SOURCE,TARGET,RATING,TIME`` with a header line is
``sep=",", columns="src,dst,-,ts", header=True`` (a ``.csv`` file is comma-separated unless
told otherwise). ``.gz`` files and ``-`` (stdin) are read transparently.
"""

from __future__ import annotations

import csv
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from tribes.errors import InputError
from tribes.events import format_ts
from tribes.importers._common import (
    DEFAULT_TS,
    MessageThreads,
    check_id,
    check_ts,
    finish_stats,
    time_value,
)
from tribes.jsonl import open_input

__all__ = ["KINDS", "iter_events"]

KINDS = ("follow", "message")
#: Names a ``columns`` spec may use; ``-`` marks a column to ignore (a weight, a sign, a label).
COLUMN_NAMES = ("src", "dst", "ts", "-")
#: UTF-8 byte order mark, which spreadsheet programs put before a CSV's first field.
_BOM = b"\xef\xbb\xbf"


def parse_columns(spec: str | None) -> tuple[int, int, int | None, int] | None:
    """``"src,dst,-,ts"`` → (src position, dst position, ts position or None, fields needed);
    None for the default layout (``SRC DST [TS]``). :class:`InputError` for a bad spec."""
    if spec is None:
        return None
    names = [name.strip() for name in spec.split(",")]
    unknown = sorted({n for n in names if n not in COLUMN_NAMES})
    if unknown:
        raise InputError(
            f"unknown column name(s) {', '.join(map(repr, unknown))} in {spec!r}; "
            f"use {', '.join(COLUMN_NAMES)}",
            field="columns",
        )
    for name in ("src", "dst", "ts"):
        if names.count(name) > 1:
            raise InputError(f"column {name!r} named twice in {spec!r}", field="columns")
    if "src" not in names or "dst" not in names:
        raise InputError(f"columns {spec!r} must name both src and dst", field="columns")
    ts = names.index("ts") if "ts" in names else None
    return names.index("src"), names.index("dst"), ts, len(names)


def iter_events(
    src: str | Path,
    *,
    kind: str = "follow",
    ts: str | float = DEFAULT_TS,
    undirected: bool = False,
    columns: str | None = None,
    sep: str | None = None,
    header: bool = False,
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
        text is ``"@b"``. This gives evaluations real reply/conversation signal. "Earlier" is by
        time: the messages are threaded, and yielded, in time order (equal times in line
        order), however the file is sorted.
    ts
        Timestamp for lines without a third column (RFC 3339 or Unix seconds).
    undirected
        With ``kind="follow"``, also emit DST → SRC for every line (for undirected lists such
        as SNAP's ``facebook_combined.txt``).
    columns
        What each field of a line is, comma-separated names from ``src``, ``dst``, ``ts`` and
        ``-`` (ignored), e.g. ``"src,dst,-,ts"``; a line needs at least that many fields and
        any further ones are ignored. Default: ``SRC DST [TS]`` and nothing more.
    sep
        Field separator, one character (``","``, ``"\t"``; fields are stripped of spaces).
        Default: runs of whitespace, or ``","`` for a file named ``*.csv`` / ``*.csv.gz``.
    header
        The first line that is not blank or a comment names the columns: skip it.
    stats
        Optional dict that receives counters when the generator is exhausted: ``lines``,
        ``events``, ``self_loops`` (skipped), ``comments`` (comment and blank lines),
        ``replies``, ``roots``. Not a CLI option.

    Raises
    ------
    InputError
        For a malformed line (not 2 or 3 columns, or fewer than ``columns`` names; unusable
        id, bad timestamp), naming ``FILE:LINE``; for an unknown ``kind``, a bad ``columns``
        spec or ``sep``, a bad default ``ts``.

    Notes
    -----
    Memory is constant for ``kind="follow"``, and O(distinct directed pairs) for ``"message"``
    when the file is in time order (it is read twice: once to check); plus about 25 bytes a
    line when it is not, or is stdin or a pipe (the lines are held and sorted). Fields
    separated by ``sep`` are read as CSV: a quoted field may hold the separator. A UTF-8 byte
    order mark before the first line is ignored.
    A self-loop line (SRC == DST) is skipped and counted. Users are not emitted: the store
    creates them implicitly from the follows and posts.
    """
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", field="kind")
    if undirected and kind != "follow":
        raise InputError("undirected applies to kind='follow' only", field="undirected")
    default_seconds = check_ts(ts)
    layout = parse_columns(columns)
    name = str(src)
    if sep is None and name.lower().endswith((".csv", ".csv.gz")):
        sep = ","
    sep = {"\\t": "\t", "tab": "\t"}.get(sep, sep) if sep is not None else None
    if sep is not None and (len(sep) != 1 or (sep.isspace() and sep != "\t")):
        raise InputError(
            f"sep must be one character such as ',' or a tab, got {sep!r}", field="sep"
        )
    split = _splitter(sep)
    counts: Counter = Counter(lines=0, comments=0, self_loops=0, events=0)

    def rows(tally: Counter) -> Iterator[tuple[int, str, str, object, float]]:
        return _rows(src, name, header, (ts, default_seconds), split, layout, tally)

    if kind == "follow":
        for _, a, b, when, _ in rows(counts):
            yield {"type": "follow", "src": a, "dst": b, "ts": when}
            counts["events"] += 1
            if undirected:
                yield {"type": "follow", "src": b, "dst": a, "ts": when}
                counts["events"] += 1
    else:
        threads = MessageThreads()
        once = name == "-" or not Path(name).is_file()  # stdin, a pipe (`<(zcat …)`): one read only
        for lineno, a, b, when, _ in _in_time_order(rows, once, counts):
            yield threads.post(f"m{lineno}", a, b, when, counts)
            counts["events"] += 1
    finish_stats("edgelist", counts, stats)


def _rows(
    src: str | Path,
    name: str,
    header: bool,
    default_ts: tuple[str | float, float],
    split: Callable[[str], list[str]],
    layout: tuple[int, int, int | None, int] | None,
    counts: Counter,
) -> Iterator[tuple[int, str, str, object, float]]:
    """``(line number, src id, dst id, event ts, Unix seconds)`` of each edge line of ``src``,
    skipping (and counting) comments, blank lines, the header and self-loops; when exhausted,
    ``counts["times"]`` is the first and last time read."""
    span = [float("inf"), float("-inf")]
    with open_input(src) as fh:
        for lineno, raw in enumerate(fh, 1):
            counts["lines"] += 1
            stripped = (raw.removeprefix(_BOM) if lineno == 1 else raw).strip()
            if not stripped or stripped[:1] in (b"#", b"%"):
                counts["comments"] += 1
                continue
            if header:
                header = False
                counts["header"] = 1
                continue
            row = _parse(stripped, name, lineno, default_ts, split, layout)
            if row[1] == row[2]:
                counts["self_loops"] += 1
                continue
            span[0], span[1] = min(span[0], row[4]), max(span[1], row[4])
            yield row
    # the times read, to see at once that a layout took the wrong column as time
    if span[0] <= span[1]:
        counts["times"] = f"{format_ts(span[0])} … {format_ts(span[1])}"


def _in_time_order(
    rows: Callable[[Counter], Iterator[tuple]], once: bool, counts: Counter
) -> Iterator[tuple]:
    """``rows(counts)`` in time order (ties in line order), which threading messages needs.

    A file is read twice: a first pass checks the order (and every line), and one already in
    time order (SNAP's temporal networks) is then streamed, in O(1) memory; otherwise, or when
    it can be read only ``once`` (stdin, a pipe), its rows are held and sorted, O(lines) memory."""
    if not once:
        latest = float("-inf")
        for *_, seconds in rows(Counter()):
            if seconds < latest:
                break
            latest = seconds
        else:
            yield from rows(counts)
            return
    yield from _sorted_compactly(rows(counts))
    counts["order"] = (
        "threaded after sorting by time" if not once else "held and sorted by time (read once)"
    )


def _sorted_compactly(rows: Iterator[tuple[int, str, str, object, float]]) -> Iterator[tuple]:
    """``rows`` sorted by time, equal times in their order, held in about 25 bytes a row (ids
    as numbers, a time written as a number kept only as its seconds) rather than ~250 as
    tuples: 60 million unsorted lines take about 1.5 GB (3 million random messages: 815 MB
    peak for the whole import, most of it the threading's pairs, as for a sorted file)."""
    ids: dict[str, int] = {}  # id → number, in order of first appearance
    line, src, dst = array("q"), array("i"), array("i")
    seconds, kind = (
        array("d"),
        array("b"),
    )  # kind: 0 an int time, 1 a float time, 2 as written (in `written`)
    written: list[object] = []
    for lineno, a, b, when, at in rows:
        src.append(ids.setdefault(a, len(ids)))
        dst.append(ids.setdefault(b, len(ids)))
        line.append(lineno)
        seconds.append(at)
        if type(when) is int and when == at:
            kind.append(0)
        elif type(when) is float and when == at:
            kind.append(1)
        else:
            kind.append(2)
            written.append(when)
    names = list(ids)
    # the row's index in `written`, for kind 2
    where = np.cumsum(np.frombuffer(kind, dtype=np.int8) == 2) - 1
    for i in np.argsort(np.frombuffer(seconds, dtype=np.float64), kind="stable"):
        at = seconds[i]
        when = int(at) if kind[i] == 0 else at if kind[i] == 1 else written[where[i]]
        yield line[i], names[src[i]], names[dst[i]], when, at


def _splitter(sep: str | None) -> Callable[[str], list[str]]:
    """Runs of whitespace; or, with ``sep``, CSV fields (quoted ones may hold the separator,
    ``""`` is a quote), each stripped of spaces."""
    if sep is None:
        return str.split
    return lambda text: [field.strip() for field in next(csv.reader([text], delimiter=sep))]


def _parse(
    line: bytes,
    name: str,
    lineno: int,
    default_ts: tuple[str | float, float],
    split: Callable[[str], list[str]],
    layout: tuple[int, int, int | None, int] | None,
) -> tuple[int, str, str, object, float]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid UTF-8 at byte {exc.start}", path=name, line=lineno) from None
    parts = split(text)
    if layout is None:
        if len(parts) not in (2, 3):
            raise InputError(
                f"expected 'SRC DST [TS]', got {len(parts)} columns: {text[:80]!r}",
                path=name,
                line=lineno,
            )
        at_src, at_dst, at_ts = 0, 1, 2 if len(parts) == 3 else None
    else:
        at_src, at_dst, at_ts, needed = layout
        if len(parts) < needed:
            raise InputError(
                f"expected at least {needed} columns, got {len(parts)}: {text[:80]!r}",
                path=name,
                line=lineno,
            )
    a = check_id(parts[at_src], field="src", path=name, line=lineno)
    b = check_id(parts[at_dst], field="dst", path=name, line=lineno)
    if at_ts is None:
        return lineno, a, b, *default_ts
    when, seconds = time_value(parts[at_ts], path=name, line=lineno)  # Unix seconds or RFC 3339
    return lineno, a, b, when, seconds
