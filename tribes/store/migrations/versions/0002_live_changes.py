"""Live changes: what the API must hide before the next recompute.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_changes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.Integer, sa.ForeignKey("users.uid", ondelete="CASCADE")),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("other", sa.String, nullable=False),
    )
    op.create_index("ix_live_changes_uid_seq", "live_changes", ["uid", "seq"])
    # Triggers record only real changes, so replaying a file adds no rows (ingest stays
    # idempotent) and every write path (CLI, API, feedback) is covered.
    for statement in _SQLITE_TRIGGERS:
        op.execute(statement)


_HIDE_PAIR = """
    INSERT INTO live_changes (uid, kind, other) SELECT NEW.src, 'user', id FROM users WHERE uid = NEW.dst;
    INSERT INTO live_changes (uid, kind, other)
        SELECT NEW.dst, 'user', id FROM users WHERE uid = NEW.src AND NEW.relation <> 'follow';
"""
_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER live_edge_insert AFTER INSERT ON edges WHEN NEW.active BEGIN {_HIDE_PAIR} END",
    f"CREATE TRIGGER live_edge_update AFTER UPDATE OF active ON edges "
    f"WHEN NEW.active AND NOT OLD.active BEGIN {_HIDE_PAIR} END",
    "CREATE TRIGGER live_user_hidden AFTER UPDATE OF discoverable ON users "
    "WHEN NOT NEW.discoverable AND OLD.discoverable BEGIN "
    "INSERT INTO live_changes (uid, kind, other) VALUES (NULL, 'user', NEW.id); END",
    "CREATE TRIGGER live_user_deleted AFTER DELETE ON users BEGIN "
    "INSERT INTO live_changes (uid, kind, other) VALUES (NULL, 'user', OLD.id); END",
    "CREATE TRIGGER live_thread_deleted AFTER DELETE ON posts WHEN OLD.reply_to IS NULL BEGIN "
    "INSERT INTO live_changes (uid, kind, other) VALUES (NULL, 'thread', OLD.id); END",
    "CREATE TRIGGER live_dismissed AFTER INSERT ON feedback WHEN NEW.action = 'dismiss' BEGIN "
    "INSERT INTO live_changes (uid, kind, other) VALUES (NEW.uid, NEW.target_kind, NEW.target_id); END",
]


def downgrade() -> None:
    for name in ("live_edge_insert", "live_edge_update", "live_user_hidden", "live_user_deleted",
                 "live_thread_deleted", "live_dismissed"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_live_changes_uid_seq", "live_changes")
    op.drop_table("live_changes")
