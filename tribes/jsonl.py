"""Reading and writing JSON Lines files (``-`` means stdin/stdout)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

__all__ = ["open_input", "open_output", "write_jsonl"]


@contextlib.contextmanager
def open_input(path: str | Path) -> Iterator[BinaryIO]:
    """Open ``path`` for binary reading; ``-`` is stdin. Transparently reads ``.gz``."""
    if str(path) == "-":
        yield sys.stdin.buffer
        return
    p = Path(path)
    if p.suffix == ".gz":
        import gzip
        import zlib

        from .errors import InputError

        with gzip.open(p, "rb") as fh:
            try:
                yield fh  # type: ignore[misc]
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:  # corrupt or truncated
                raise InputError(f"not a readable gzip file: {exc}", path=str(path)) from None
    else:
        with p.open("rb") as fh:
            yield fh


@contextlib.contextmanager
def open_output(path: str | Path) -> Iterator[BinaryIO]:
    """Open ``path`` for binary writing; ``-`` is stdout.

    A file is written to ``PATH.tmp`` and renamed into place only when the block succeeds,
    so a failed or interrupted export never leaves a truncated file behind. A path that exists
    and is not a regular file (``/dev/null``, a FIFO, ``/dev/stdout``) is written directly: the
    rename would replace the device or pipe with a regular file.
    """
    if str(path) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    p = Path(path)
    if p.exists() and not p.is_file():
        with p.open("wb") as fh:
            yield fh
        return
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    try:
        with tmp.open("wb") as fh:
            yield fh
        tmp.replace(p)
    finally:
        tmp.unlink(missing_ok=True)


def write_jsonl(records: Iterable[dict], out: BinaryIO) -> int:
    """Write one compact JSON object per line; return the number written."""
    n = 0
    for record in records:
        out.write(orjson.dumps(record))
        out.write(b"\n")
        n += 1
    return n
