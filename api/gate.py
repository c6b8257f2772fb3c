"""The door of ``/v1/*``: an API key (``Authorization: Bearer``) and a per-key rate limit.

One :class:`Gate` per app, shared by Flask's ``before_request`` hook and the WSGI fast lane
(``api/fast.py``), so a key has one rate window whichever way its requests are served. It reads
the WSGI environ only.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import NamedTuple

from .auth import bearer_digest

__all__ = ["Gate", "Refusal"]


class Refusal(NamedTuple):
    """Why a request is turned away: a problem document's fields and extra response headers."""

    status: int
    slug: str
    title: str
    detail: str
    headers: tuple[tuple[str, str], ...]


class Gate:
    """API keys (SHA-256 ``digests``; none: open) and at most ``rate_per_minute`` requests per
    key in any 60 s (0: no limit). Thread-safe: a key's window is checked and updated under one
    lock, so gthread workers let exactly ``rate_per_minute`` through."""

    def __init__(self, digests: list[bytes], rate_per_minute: int = 0):
        self.digests = digests
        self.rate = rate_per_minute
        self._windows: dict[bytes, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, environ: dict, path: str) -> Refusal | None:
        """None when the request may go on; else the 401 or 429 to answer. Only ``/v1/*`` is
        guarded (health, metrics and the docs stay open)."""
        if not self.digests or not path.startswith("/v1/"):
            return None
        who = bearer_digest(environ.get("HTTP_AUTHORIZATION"), self.digests)
        if who is None:
            return Refusal(
                401,
                "unauthorized",
                "Unauthorized",
                "send Authorization: Bearer <API key>",
                (("WWW-Authenticate", 'Bearer realm="tribes"'),),
            )
        rate = self.rate
        if not rate:
            return None
        with self._lock:
            now = time.monotonic()
            window = self._windows[who]
            while window and now - window[0] > 60:
                window.popleft()
            retry_after = max(1, int(60 - (now - window[0]))) if len(window) >= rate else 0
            if not retry_after:
                window.append(now)
        if retry_after:
            return Refusal(
                429,
                "rate-limited",
                "Too Many Requests",
                f"more than {rate} requests per minute for this key",
                (("Retry-After", str(retry_after)),),
            )
        return None
