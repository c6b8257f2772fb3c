"""Initial schema: users, edges, posts, feedback, tombstones.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("uid", sa.Integer, primary_key=True),
        sa.Column("id", sa.String, nullable=False, unique=True),
        sa.Column("name", sa.String),
        sa.Column("bio", sa.Text),
        sa.Column("interests", sa.Text),
        sa.Column("discoverable", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("profile_ts", sa.Float),
        sa.Column("first_seen_ts", sa.Float, nullable=False),
    )
    op.create_table(
        "edges",
        sa.Column("relation", sa.String(8), primary_key=True),
        sa.Column(
            "src", sa.Integer, sa.ForeignKey("users.uid", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "dst", sa.Integer, sa.ForeignKey("users.uid", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_index("ix_edges_dst", "edges", ["relation", "dst"])
    op.create_table(
        "posts",
        sa.Column("pid", sa.Integer, primary_key=True),
        sa.Column("id", sa.String, nullable=False, unique=True),
        sa.Column(
            "author", sa.Integer, sa.ForeignKey("users.uid", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("reply_to", sa.String),
        sa.Column("thread_id", sa.String, nullable=False),
        sa.Column("content_hash", sa.String(40), nullable=False),
    )
    op.create_index("ix_posts_thread", "posts", ["thread_id"])
    op.create_index("ix_posts_author", "posts", ["author"])
    op.create_table(
        "feedback",
        sa.Column(
            "uid", sa.Integer, sa.ForeignKey("users.uid", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("target_kind", sa.String(8), primary_key=True),
        sa.Column("target_id", sa.String, primary_key=True),
        sa.Column("action", sa.String(8), primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_table(
        "tombstones",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("tombstones", "feedback", "posts", "edges", "users"):
        op.drop_table(table)
