"""Ingest: stream JSON Lines into the store, one transaction per source, all or nothing.

Memory is bounded by the batch size (``Settings.batch_size`` events) and the user keys the
writer remembers (capped, see ``tribes.store.writer``), not by the file size.
Every problem is reported as ``FILE:LINE: field: problem`` (up to ``max_problems``; the rest
are counted). Without ``skip_invalid`` a single problem rolls the whole source back.

``not_after`` (Unix seconds; the service passes :func:`latest_allowed`, its clock plus
``TRIBES_MAX_FUTURE_SECONDS``) rejects events dated later: the newest timestamp in the store is
the recompute's "now", so one event from a client whose clock says 2106 would otherwise age
every thread, post and follow by eighty years and empty everyone's conversation suggestions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .events import Event, EventError, format_ts, parse_line, validate
from .store import Store, Writer

__all__ = ["IngestReport", "Problem", "ingest_lines", "ingest_objects", "latest_allowed"]


@dataclass(frozen=True)
class Problem:
    source: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        text = f"{self.field}: {self.problem}" if self.field else self.problem
        return f"{self.source}:{self.line}: {text}"


@dataclass
class IngestReport:
    """What one ingest call did. ``committed`` is False when it stored nothing."""

    source: str
    counts: Counter = field(default_factory=Counter)  # accepted events by type
    rejected: int = 0
    ignored_erased: int = 0  # events about deleted users/posts (older than the deletion)
    problems: list[Problem] = field(default_factory=list)
    lines: int = 0
    seconds: float = 0.0
    committed: bool = False

    @property
    def accepted(self) -> int:
        return sum(self.counts.values())

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "committed": self.committed,
            "accepted": self.accepted,
            "by_type": dict(sorted(self.counts.items())),
            "rejected": self.rejected,
            "ignored_erased": self.ignored_erased,
            "problems": [str(p) for p in self.problems],
            "lines": self.lines,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second),
        }


class _Aborted(Exception):
    """Raised inside the transaction to roll it back."""


def ingest_lines(
    store: Store,
    lines: Iterable[bytes],
    *,
    source: str,
    skip_invalid: bool = False,
    batch_size: int = 2000,
    max_problems: int = 20,
    on_progress: Callable[[int], None] | None = None,
    not_after: float | None = None,
) -> IngestReport:
    """Validate and store JSON Lines (blank lines are skipped; numbering starts at 1).

    Parameters
    ----------
    lines : iterable of bytes
        Raw lines, e.g. an open binary file.
    source : str
        Name used in problems (the file name, ``-`` for stdin, ``request``).
    on_progress : callable, optional
        Called with the number of bytes consumed since the last call.
    not_after : float, optional
        Events with a later ``ts`` (Unix seconds) are problems (:func:`latest_allowed`).
    """

    consumed = 0

    def numbered() -> Iterator[tuple[int, bytes]]:
        nonlocal consumed
        for number, raw in enumerate(lines, 1):
            consumed += len(raw)
            if raw and not raw.isspace():  # blank (no copy of every line as strip() would make)
                yield number, raw

    def progress() -> None:
        nonlocal consumed
        if on_progress is not None and consumed:
            on_progress(consumed)
            consumed = 0

    return _ingest(
        store,
        _batches(numbered(), _dated_until(parse_line, not_after), batch_size, progress),
        source=source,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )


def latest_allowed(max_future_seconds: float, clock: Callable[[], float] = time.time) -> float:
    """The latest event time an ingest accepts: the clock (Unix seconds) plus the leeway."""
    return clock() + max_future_seconds


def _dated_until(parse: Callable[[Any], Event], not_after: float | None) -> Callable[[Any], Event]:
    """``parse``, with events dated after ``not_after`` raised as an :class:`EventError` on ``ts``."""
    if not_after is None:
        return parse

    def checked(item: Any) -> Event:
        event = parse(item)
        if event.ts > not_after:
            raise EventError(
                "ts",
                f"{format_ts(event.ts)} is in the future: after {format_ts(not_after)}, the server's "
                "clock plus TRIBES_MAX_FUTURE_SECONDS",
            )
        return event

    return checked


def _batches(
    numbered: Iterable[tuple[int, Any]],
    parse: Callable[[Any], Any],
    batch_size: int,
    on_batch: Callable[[], None] = lambda: None,
) -> Iterator[_Batch]:
    """``batch_size`` parsed events at a time with their numbers; problems in batches of the
    same bound (a file of bad lines keeps memory bounded). ``on_batch`` runs before each yield
    of a full batch and once at the end."""
    batch = _Batch()
    for number, item in numbered:
        batch.last = number
        try:
            batch.events.append(parse(item))
        except EventError as exc:
            batch.problems.append((number, exc))
            if len(batch.problems) >= batch_size:
                yield _Batch(problems=batch.problems, last=number)
                batch.problems = []
            continue
        batch.numbers.append(number)
        if len(batch.numbers) >= batch_size:
            on_batch()
            yield batch
            batch = _Batch(last=number)
    on_batch()
    yield batch


def ingest_objects(
    store: Store,
    objects: Iterable[object],
    *,
    source: str = "request",
    skip_invalid: bool = False,
    batch_size: int = 2000,
    max_problems: int = 20,
    not_after: float | None = None,
) -> IngestReport:
    """Validate and store already-decoded JSON values (the API's request bodies); ``not_after``
    as for :func:`ingest_lines`."""
    return _ingest(
        store,
        _batches(enumerate(objects, 1), _dated_until(validate, not_after), batch_size),
        source=source,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )


@dataclass
class _Batch:
    """Up to ``batch_size`` valid events with their line numbers, the problems met among the
    lines they were read from, and the number of the last line that was not blank."""

    events: list[Event] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    problems: list[tuple[int, EventError]] = field(default_factory=list)
    last: int = 0


def _ingest(
    store, batches: Iterable[_Batch], *, source, skip_invalid, max_problems
) -> IngestReport:
    report = IngestReport(source=source)
    clock = time.perf_counter()

    def problem(line: int, field: str, text: str) -> None:
        report.rejected += 1
        if len(report.problems) < max_problems:
            report.problems.append(Problem(source, line, field, text))

    try:
        with store.transaction() as writer:
            for batch in batches:
                report.lines = batch.last
                for number, exc in batch.problems:
                    problem(number, exc.field, exc.problem)
                # After a problem in strict mode writing goes on, so that conflicts with stored
                # data are found and reported too; the transaction is rolled back at the end.
                if batch.events:
                    _flush(writer, batch.events, batch.numbers, report, problem)
            if report.rejected and not skip_invalid:
                raise _Aborted
        report.committed = True
    except _Aborted:
        report.counts.clear()
        report.ignored_erased = 0
    report.problems.sort(key=lambda p: p.line)
    report.seconds = time.perf_counter() - clock
    return report


def _flush(
    writer: Writer, batch: list[Event], numbers: list[int], report: IngestReport, problem
) -> None:
    applied = writer.apply(batch)
    report.counts.update(event.type for event in batch)
    report.ignored_erased += len(applied.erased)
    for i in applied.erased:
        report.counts[batch[i].type] -= 1
    for conflict in applied.conflicts:
        report.counts[batch[conflict.index].type] -= 1
        problem(numbers[conflict.index], conflict.field, conflict.problem)
    report.counts += Counter()  # drop the types whose every event was left out
