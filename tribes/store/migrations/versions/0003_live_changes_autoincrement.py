"""Live changes are numbered by a counter that never goes back (SQLite AUTOINCREMENT).

Without it SQLite reuses the numbers of deleted rows: after a recompute pruned every live change
(or a cascade deleted the newest), new changes were numbered at or below the served model's
``live_seq`` and the API ignored them until the next recompute. PostgreSQL's sequence never
goes back, so this migration changes nothing there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _triggers() -> dict:
    """The SQLite trigger statements and names of migration 0002 (one definition of them)."""
    path = Path(__file__).with_name("0002_live_changes.py")
    spec = importlib.util.spec_from_file_location("tribes_migration_0002", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {"create": module._SQLITE_TRIGGERS, "names": list(module._PG_TRIGGERS)}


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    triggers = _triggers()
    # The triggers on other tables insert into live_changes: drop them while the table is
    # replaced (SQLite checks trigger bodies on rename), then create them again.
    for name in triggers["names"]:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP INDEX IF EXISTS ix_live_changes_uid_seq")
    op.execute("ALTER TABLE live_changes RENAME TO live_changes_old")
    op.execute(
        "CREATE TABLE live_changes ("
        f"seq INTEGER NOT NULL PRIMARY KEY{' AUTOINCREMENT' if autoincrement else ''}, "
        "uid INTEGER, kind VARCHAR(8) NOT NULL, other VARCHAR NOT NULL, "
        "FOREIGN KEY(uid) REFERENCES users (uid) ON DELETE CASCADE)"
    )
    op.execute(
        "INSERT INTO live_changes (seq, uid, kind, other) "
        "SELECT seq, uid, kind, other FROM live_changes_old"
    )
    op.execute("DROP TABLE live_changes_old")
    op.execute("CREATE INDEX ix_live_changes_uid_seq ON live_changes (uid, seq)")
    for statement in triggers["create"]:
        op.execute(statement)


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
