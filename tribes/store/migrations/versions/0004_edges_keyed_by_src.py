"""Edges keyed by (src, relation, dst), indexed by (dst, relation); SQLite: WITHOUT ROWID.

Deleting a user cascades to their edges through ``src`` and ``dst``. Neither key of migration
0001 starts with those columns, so every deletion scanned the whole table twice (SQLite and
PostgreSQL alike): at a million edges, erasing 20 users cost seconds. Putting ``src`` first in
the primary key and ``dst`` first in ``ix_edges_dst`` lets both cascades seek; the conflict
target ``(relation, src, dst)`` names the same unique key (column order does not matter there).
On SQLite the table becomes WITHOUT ROWID: the primary key *is* the table, one B-tree less to
update per edge written. Reads by relation are full scans of a narrow table instead of a range.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = "relation, src, dst, active, ts"


def _edge_triggers() -> list[str]:
    """The SQLite statements creating the triggers on edges (migration 0002, one definition)."""
    path = Path(__file__).with_name("0002_live_changes.py")
    spec = importlib.util.spec_from_file_location("tribes_migration_0002", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [s for s in module._SQLITE_TRIGGERS if s.startswith("CREATE TRIGGER live_edge_")]


def _rebuild_sqlite(key: str, dst_index: str, without_rowid: bool) -> None:
    # Dropping the old table drops its triggers and index: make them again on the new one.
    # No trigger fires while rows are copied, so live_changes is untouched.
    op.execute("ALTER TABLE edges RENAME TO edges_old")
    op.execute(
        "CREATE TABLE edges ("
        "relation VARCHAR(8) NOT NULL, src INTEGER NOT NULL, dst INTEGER NOT NULL, "
        f"active BOOLEAN NOT NULL, ts FLOAT NOT NULL, PRIMARY KEY ({key}), "
        "FOREIGN KEY(src) REFERENCES users (uid) ON DELETE CASCADE, "
        "FOREIGN KEY(dst) REFERENCES users (uid) ON DELETE CASCADE)"
        + (" WITHOUT ROWID" if without_rowid else "")
    )
    op.execute(f"INSERT INTO edges ({_COLUMNS}) SELECT {_COLUMNS} FROM edges_old")
    op.execute("DROP TABLE edges_old")
    op.execute(f"CREATE INDEX ix_edges_dst ON edges ({dst_index})")
    for statement in _edge_triggers():
        op.execute(statement)


def _rekey_postgresql(key: str, dst_index: str) -> None:
    (name,) = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'edges'::regclass AND contype = 'p'"
        )
        .one()
    )
    op.execute(
        f'ALTER TABLE edges DROP CONSTRAINT "{name}", ADD CONSTRAINT "{name}" PRIMARY KEY ({key})'
    )
    op.execute("DROP INDEX ix_edges_dst")
    op.execute(f"CREATE INDEX ix_edges_dst ON edges ({dst_index})")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite("src, relation, dst", "dst, relation", without_rowid=True)
    else:
        _rekey_postgresql("src, relation, dst", "dst, relation")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite("relation, src, dst", "relation, dst", without_rowid=False)
    else:
        _rekey_postgresql("relation, src, dst", "relation, dst")
