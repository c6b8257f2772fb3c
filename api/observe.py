"""What every request leaves behind: a request id, Prometheus samples and one access-log line.

Both ways a request is answered — Flask's hooks (``api/__init__.py``) and the WSGI fast lane
(``api/fast.py``) — call these, so the id rules, the metric labels and the log fields are the
same whichever served it. Everything reads the WSGI environ directly (no Flask context).
"""

from __future__ import annotations

import logging
import random
import re
import sys
import time

import orjson

from .access_log import AccessLogBuffer
from .metrics import request_metrics

__all__ = ["configure_logging", "flush_access_log", "record", "request_id"]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access_log = logging.getLogger("tribes.access")
_stderr_handler: logging.StreamHandler | None = None
_access_buffer = AccessLogBuffer()


def configure_logging() -> None:
    """The ``tribes.access`` logger writes bare JSON lines to stderr (once per process)."""
    global _stderr_handler
    if access_log.handlers:
        return
    _stderr_handler = logging.StreamHandler(sys.stderr)
    _stderr_handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(_stderr_handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def flush_access_log() -> None:
    """Write the access-log lines this process has queued (see ``access_log.py``)."""
    _access_buffer.flush()


def request_id(environ: dict) -> str:
    """The client's ``X-Request-ID`` when it is 1-64 of ``[A-Za-z0-9._-]``, else 32 random hex digits.

    The digits come from the process's PRNG (``random`` reseeds itself in every forked worker):
    an id is for tracing, not a secret, and ``os.urandom`` is a system call that, under gthread
    workers, hands the GIL to another thread in the middle of every request."""
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if _REQUEST_ID.fullmatch(incoming) else f"{random.getrandbits(128):032x}"


def _log_access(line: bytes) -> None:
    """One JSON line on the ``tribes.access`` logger. With only the default stderr handler
    attached the bytes go to its file descriptor in batches (``access_log.py``; a LogRecord cost
    ~10 us a request, a write per line ~100 us of CPU to a file on a busy machine); any other
    handler (files, collectors, tests) gets the usual logging path."""
    handlers = access_log.handlers
    if (
        len(handlers) == 1
        and handlers[0] is _stderr_handler
        and access_log.isEnabledFor(logging.INFO)
    ):
        try:
            fd = _stderr_handler.stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = -1
        if fd >= 0:  # whole lines, in batches under PIPE_BUF: never interleaved with another
            try:
                _access_buffer.write(fd, line + b"\n")
                return
            except OSError:
                pass
    access_log.info(line.decode())


def record(
    *,
    rid: str,
    method: str,
    path: str,
    endpoint: str,
    status: int,
    elapsed: float,
    nbytes: int | None,
    remote: str | None,
    log: bool,
) -> None:
    """Count the request and its latency (``elapsed``, seconds) under ``endpoint`` (the route
    rule, or ``unmatched``); with ``log``, queue its access-log line."""
    count, latency = request_metrics(endpoint, method, status)
    count.inc()
    latency.observe(elapsed)
    if log:
        _log_access(
            orjson.dumps(
                {
                    "ts": round(time.time(), 3),
                    "request_id": rid,
                    "method": method,
                    "path": path,
                    "endpoint": endpoint,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "bytes": nbytes,
                    "remote": remote,
                }
            )
        )
