"""Shared fixtures: a fresh SQLite store per test and helpers to read it back."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from tribes.store import Store
from tribes.store.schema import TABLES

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tribes.db'}"


@pytest.fixture
def store(db_url: str):
    with Store.open(db_url) as s:
        yield s


def dump_tables(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: compare two of these to prove nothing changed."""
    out = {}
    with store.engine.connect() as conn:
        for name in TABLES:
            rows = conn.execute(sa.text(f"SELECT * FROM {name}")).all()
            out[name] = sorted(tuple(r) for r in rows)
    return out


def lines(*events: dict | bytes | str) -> list[bytes]:
    """JSON Lines from dicts (raw bytes/str pass through unchanged)."""
    out = []
    for e in events:
        if isinstance(e, dict):
            out.append(orjson.dumps(e))
        elif isinstance(e, str):
            out.append(e.encode())
        else:
            out.append(e)
    return out


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"../shared/data/{name} not found beside the project root ({path})")
    return path
