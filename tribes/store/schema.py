"""The store's tables (SQLAlchemy Core). Migrations in ``migrations/versions`` create them.

The store holds *state*, not a raw log: the latest relation between two users, each post,
each user's profile. Users and posts carry an integer surrogate key (``uid``, ``pid``) so
relations and snapshots work on integers; their public ids are strings.

Invariants
----------
- ``edges`` has one row per (relation, src, dst); ``ts`` is the time of the latest event,
  ``active`` its effect. An older event never overwrites a newer one. On equal ``ts`` the
  privacy-safer state wins: *not following*, *blocking*, *muting*.
- ``posts.thread_id`` is the id of the earliest known ancestor (the root once it arrives).
- Erasing a user (``delete_user``) deletes their rows in every table (foreign keys cascade);
  ``tombstones`` keeps only the id and time, so older events cannot bring them back.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("uid", sa.Integer, primary_key=True),
    sa.Column("id", sa.String, nullable=False, unique=True),
    sa.Column("name", sa.String),
    sa.Column("bio", sa.Text),
    sa.Column("interests", sa.Text),  # JSON array of normalised tags
    sa.Column("discoverable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("profile_ts", sa.Float),  # ts of the latest `user` event; NULL if implicit
    sa.Column("first_seen_ts", sa.Float, nullable=False),  # earliest ts of any event naming them
)

# Keyed by src first and indexed by dst first, so erasing a user seeks both cascades (0004);
# on SQLite the key is the table (WITHOUT ROWID).
edges = sa.Table(
    "edges",
    metadata,
    sa.Column("relation", sa.String(8), nullable=False),  # follow | block | mute
    sa.Column("src", sa.Integer, sa.ForeignKey("users.uid", ondelete="CASCADE"), nullable=False),
    sa.Column("dst", sa.Integer, sa.ForeignKey("users.uid", ondelete="CASCADE"), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("src", "relation", "dst"),
    sa.Index("ix_edges_dst", "dst", "relation"),
    sqlite_with_rowid=False,
)

posts = sa.Table(
    "posts",
    metadata,
    sa.Column("pid", sa.Integer, primary_key=True),
    sa.Column("id", sa.String, nullable=False, unique=True),
    sa.Column("author", sa.Integer, sa.ForeignKey("users.uid", ondelete="CASCADE"), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),  # JSON array of normalised tags
    sa.Column("reply_to", sa.String),  # parent post id; the parent may be missing
    sa.Column("thread_id", sa.String, nullable=False),
    sa.Column("content_hash", sa.String(40), nullable=False),
    sa.Index("ix_posts_thread", "thread_id"),
    sa.Index("ix_posts_author", "author"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("uid", sa.Integer, sa.ForeignKey("users.uid", ondelete="CASCADE"), primary_key=True),
    sa.Column("target_kind", sa.String(8), primary_key=True),  # user | thread
    sa.Column("target_id", sa.String, primary_key=True),
    sa.Column("action", sa.String(8), primary_key=True),  # dismiss | accept | report
    sa.Column("ts", sa.Float, nullable=False),
)

tombstones = sa.Table(
    "tombstones",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),  # user | post
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
)

# Facts the API applies at serve time until the next recompute: row ``uid`` must not be shown
# ``other`` (a user id or thread id, by ``kind``); ``uid`` NULL hides ``other`` from everyone
# (deleted or non-discoverable users, deleted threads). ``seq`` orders arrivals; a model
# records the last ``seq`` its snapshot saw.
live_changes = sa.Table(
    "live_changes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uid", sa.Integer, sa.ForeignKey("users.uid", ondelete="CASCADE")),
    sa.Column("kind", sa.String(8), nullable=False),  # user | thread
    sa.Column("other", sa.String, nullable=False),
    sa.Index("ix_live_changes_uid_seq", "uid", "seq"),
    sqlite_autoincrement=True,  # numbers never go back (migration 0003)
)

TABLES = ("users", "edges", "posts", "feedback", "tombstones", "live_changes")
