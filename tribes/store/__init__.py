"""The event store behind a small interface. ``Store.open(url)`` picks the backend.

SQLite is the default (``sqlite:///var/tribes.db``); a PostgreSQL backend plugs in later
behind the same methods.
"""

from .sql import LiveFilters, Store
from .writer import Applied, Conflict, Writer, add_feedback

__all__ = ["Applied", "Conflict", "LiveFilters", "Store", "Writer", "add_feedback"]
