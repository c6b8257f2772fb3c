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
    # idempotent) and every write path (CLI, API, feedback) is covered. Same rules on both
    # backends: SQLite triggers hold their statements, PostgreSQL's call plpgsql functions.
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRESQL_TRIGGERS if postgresql else _SQLITE_TRIGGERS:
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


def _plpgsql(name: str, body: str) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {body} RETURN NULL; END $$"
    )


# trigger -> (table, event, condition, function); the functions have the triggers' names.
_PG_TRIGGERS = {
    "live_edge_insert": ("edges", "INSERT", "NEW.active", "live_edge_hides"),
    "live_edge_update": (
        "edges",
        "UPDATE OF active",
        "NEW.active AND NOT OLD.active",
        "live_edge_hides",
    ),
    "live_user_hidden": (
        "users",
        "UPDATE OF discoverable",
        "NOT NEW.discoverable AND OLD.discoverable",
        "live_user_hidden",
    ),
    "live_user_deleted": ("users", "DELETE", None, "live_user_deleted"),
    "live_thread_deleted": ("posts", "DELETE", "OLD.reply_to IS NULL", "live_thread_deleted"),
    "live_dismissed": ("feedback", "INSERT", "NEW.action = 'dismiss'", "live_dismissed"),
}
_POSTGRESQL_TRIGGERS = [
    _plpgsql(
        "live_edge_hides",
        """
        INSERT INTO live_changes (uid, kind, other) SELECT NEW.src, 'user', id FROM users WHERE uid = NEW.dst;
        IF NEW.relation <> 'follow' THEN
            INSERT INTO live_changes (uid, kind, other) SELECT NEW.dst, 'user', id FROM users WHERE uid = NEW.src;
        END IF;""",
    ),
    _plpgsql(
        "live_user_hidden",
        "INSERT INTO live_changes (uid, kind, other) VALUES (NULL, 'user', NEW.id);",
    ),
    _plpgsql(
        "live_user_deleted",
        "INSERT INTO live_changes (uid, kind, other) VALUES (NULL, 'user', OLD.id);",
    ),
    _plpgsql(
        "live_thread_deleted",
        "INSERT INTO live_changes (uid, kind, other) VALUES (NULL, 'thread', OLD.id);",
    ),
    _plpgsql(
        "live_dismissed",
        "INSERT INTO live_changes (uid, kind, other) VALUES (NEW.uid, NEW.target_kind, NEW.target_id);",
    ),
] + [
    f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW "
    + (f"WHEN ({when}) " if when else "")
    + f"EXECUTE FUNCTION {function}()"
    for name, (table, event, when, function) in _PG_TRIGGERS.items()
]


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, (table, *_) in _PG_TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgresql else ""))
    if postgresql:
        for function in sorted({f for *_, f in _PG_TRIGGERS.values()}):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_index("ix_live_changes_uid_seq", "live_changes")
    op.drop_table("live_changes")
