"""API keys: stored as SHA-256 digests, compared in constant time, never logged."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def load_key_digests(keys: str | None, keys_file: str | None) -> list[bytes]:
    """Digests of the configured keys.

    ``keys``: comma-separated keys (``TRIBES_API_KEYS``). ``keys_file``: one key per line, or
    ``sha256:<hex>`` lines so the file holds no plain keys; ``#`` comments and blank lines skipped.
    """
    out: list[bytes] = []
    for key in (keys or "").split(","):
        if key.strip():
            out.append(digest(key.strip()))
    if keys_file:
        for number, line in enumerate(Path(keys_file).read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("sha256:"):
                try:
                    value = bytes.fromhex(line[7:])
                except ValueError:
                    value = b""
                if len(value) != 32:
                    raise ValueError(f"{keys_file}:{number}: sha256: expected 64 hex digits")
                out.append(value)
            else:
                out.append(digest(line))
    return out


def bearer_digest(header: str | None, digests: list[bytes]) -> bytes | None:
    """The digest of the key in ``Authorization: Bearer <key>`` when it matches a configured
    key, else None (the rate limiter keys its windows by it).

    Every digest is compared (no early exit), each with ``hmac.compare_digest``.
    """
    scheme, _, key = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():  # the scheme is case-insensitive (RFC 7235)
        return None
    candidate = digest(key.strip())
    ok = False
    for d in digests:
        ok |= hmac.compare_digest(candidate, d)
    return candidate if ok else None


def check_bearer(header: str | None, digests: list[bytes]) -> bool:
    """True when ``Authorization: Bearer <key>`` matches a configured key (:func:`bearer_digest`)."""
    return bearer_digest(header, digests) is not None
