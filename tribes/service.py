"""The suggestion service: the current model plus live facts from the store.

This is the one library object behind the API (and usable from a notebook): it holds the
current :class:`~tribes.serving.Recommender` (swapping it within ``check_interval`` seconds of
a new ``current``, also after a fork), applies *live filters* — follows, blocks, mutes,
dismissals, deletions that arrived after the recompute — and answers users who arrived after
the recompute from what they have done so far (*cold start*).
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import threading
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from .artifacts import ModelStore
from .errors import TribesError
from .rendered import DEFAULT_MAX_BYTES
from .serving import Recommender, tribe_summary
from .store import LiveFilters, Store

__all__ = ["BadCursor", "ModelHolder", "NoModel", "StaleCursor", "SuggestionService", "UnknownUser"]


class UnknownUser(TribesError):
    """Neither the model nor the store knows this user."""


class UnknownTribe(TribesError):
    """No tribe with this id in the current model."""


class NoModel(TribesError):
    """No model has been published yet."""


class BadCursor(TribesError):
    """A cursor that was not issued by this service (or was altered)."""


class StaleCursor(TribesError):
    """A cursor issued for an older model version."""

    def __init__(self, cursor_version: str, current: str):
        super().__init__(
            f"this cursor belongs to model {cursor_version}; the current model is {current}: "
            "start again without a cursor"
        )
        self.cursor_version, self.current = cursor_version, current


class ModelHolder:
    """The current model of a models root, reloaded when ``current`` changes.

    ``get()`` costs a clock read; at most every ``check_interval`` seconds (and always first
    after a fork) it also stats the pointer file. A new version is opened (memory-mapped)
    before it replaces the old one, so requests never see a half-loaded model; a version
    that fails to open is logged and the old one keeps serving.
    """

    def __init__(
        self,
        models_root: str | Path,
        check_interval: float = 2.0,
        render_cache_bytes: int = DEFAULT_MAX_BYTES,
    ):
        self.models = ModelStore(models_root)
        self.check_interval = check_interval
        self.render_cache_bytes = render_cache_bytes
        self._lock = threading.Lock()
        self._model: Recommender | None = None
        self._stamp: tuple | None = None
        self._checked = 0.0
        self._pid = os.getpid()
        self.load_error: str | None = None

    def get(self) -> Recommender | None:
        now = time.monotonic()
        # Without a model every request goes through the lock: threads that arrive while the
        # first one opens it wait for it instead of answering "no model" (a fresh worker).
        if (
            self._model is None
            or now - self._checked >= self.check_interval
            or os.getpid() != self._pid
        ):
            self._refresh(now)
        return self._model

    def _refresh(self, now: float) -> None:
        with self._lock:
            if (
                self._model is not None
                and now - self._checked < self.check_interval
                and os.getpid() == self._pid
            ):
                return
            self._checked, self._pid = now, os.getpid()
            stamp = self.models.pointer_stamp()
            if stamp == self._stamp and self._model is not None:
                return
            path = self.models.current_path()
            if path is None:
                self._stamp = stamp
                return
            try:
                model = Recommender.open(path, self.render_cache_bytes)
            except Exception as exc:  # keep serving the old model; report on /readyz
                self.load_error = f"{path.name}: {type(exc).__name__}: {exc}"
                return
            self._model, self._stamp, self.load_error = model, stamp, None


def _encode_cursor(version: str, kind: str, user: str, offset: int) -> str:
    payload = orjson.dumps([version, kind, user, offset])
    check = zlib.crc32(payload).to_bytes(4, "big")
    return base64.urlsafe_b64encode(check + payload).decode().rstrip("=")


def _decode_cursor(cursor: str, kind: str, user: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        check, payload = raw[:4], raw[4:]
        if zlib.crc32(payload).to_bytes(4, "big") != check:
            raise ValueError("checksum")
        version, c_kind, c_user, offset = orjson.loads(payload)
        if c_kind != kind or c_user != user or not isinstance(offset, int) or offset < 0:
            raise ValueError("scope")
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadCursor(
            "invalid cursor: pass back the next_cursor of a previous page unchanged"
        ) from None
    return str(version), offset


def tracking_id(version: str, user: str, item: str, position: int) -> str:
    """An opaque, stable id of one shown item (model version, user, item, position)."""
    digest = hashlib.blake2b(f"{version}|{user}|{item}|{position}".encode(), digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode()


class SqliteLiveReader:
    """``Store.live_exclusions`` on a cached per-thread ``sqlite3`` connection, with a shortcut.

    The API asks for live filters on every request. Through SQLAlchemy that cost a pool checkout,
    statement compilation and result processing (~0.2 ms); here it is one prepared statement on
    a connection each thread keeps (reopened after a fork), and when no live change at all was
    recorded after the model (``MAX(seq)``, one rowid lookup) not even the per-user query runs.
    Every call reads the committed state of that moment, so a block or a deletion takes effect
    on the next request, as before. SQLite only; other backends keep ``Store.live_exclusions``.
    """

    # Same statement as Store.live_exclusions (tests/test_api.py checks they agree).
    SQL = (
        "SELECT kind, other, CASE WHEN uid IS NULL THEN 1 ELSE 0 END FROM live_changes "
        "WHERE seq > :s AND (uid IS NULL OR uid = (SELECT uid FROM users WHERE id = :u)) "
        "UNION ALL SELECT 'exists', '', 0 FROM users WHERE id = :u"
    )

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    @classmethod
    def for_store(cls, store: Store) -> SqliteLiveReader | None:
        """A reader for a file-backed SQLite store, else None."""
        url = store.engine.url
        if (
            store.engine.dialect.name != "sqlite"
            or not url.database
            or url.database == ":memory:"
            or url.database.startswith("file:")
        ):
            return None
        return cls(url.database)

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA query_only=1")
            local.conn, local.pid = conn, os.getpid()
        return conn

    def exclusions(self, user_id: str, since_seq: int, *, listed: bool) -> LiveFilters:
        """As ``Store.live_exclusions``. ``listed``: the user is in the model, so when nothing
        was recorded after ``since_seq`` (no deletion either) they still exist."""
        conn = self._connection()
        if listed:
            (top,) = conn.execute("SELECT MAX(seq) FROM live_changes").fetchone()
            if (top or 0) <= since_seq:
                return LiveFilters(set(), set(), set(), True)
        return LiveFilters.from_rows(conn.execute(self.SQL, {"s": since_seq, "u": user_id}))


class SuggestionService:
    """People, conversations and tribes for client apps, with live filters and cold start."""

    def __init__(self, store: Store, holder: ModelHolder):
        self.store = store
        self.holder = holder
        self.live_reader = SqliteLiveReader.for_store(store)

    def live(self, user: str, since: int, *, listed: bool = False) -> LiveFilters:
        """Live filters for ``user`` after ``since`` (see ``Store.live_exclusions``)."""
        if self.live_reader is not None:
            return self.live_reader.exclusions(user, since, listed=listed)
        return self.store.live_exclusions(user, since)

    def model(self) -> Recommender:
        model = self.holder.get()
        if model is None:
            raise NoModel("no model has been published yet: run `tribes recompute`")
        return model

    # --- suggestions ------------------------------------------------------------------------
    def suggestions(
        self, user: str, kind: str, limit: int = 20, cursor: str | None = None
    ) -> dict[str, Any]:
        """``kind`` is ``people`` or ``conversations``. The page body the API returns."""
        return orjson.loads(self.suggestions_json(user, kind, limit, cursor))

    def suggestions_json(
        self, user: str, kind: str, limit: int = 20, cursor: str | None = None
    ) -> bytes:
        """:meth:`suggestions` as the JSON bytes the API sends.

        A user the model lists is answered from the model's pre-rendered items
        (:class:`~tribes.rendered.RenderedLists`) after the live filters: no item is rendered
        twice per model version unless it names someone hidden since the recompute.
        """
        model = self.model()
        offset = 0
        if cursor:
            version, offset = _decode_cursor(cursor, kind, user)
            if version != model.version:
                raise StaleCursor(version, model.version)
        since = int(model.manifest.get("live_seq", 0))
        listed = model.index_of(user)
        if (
            listed is not None
            and model.has_suggestions(listed, kind)
            and not self._acted_since(model, listed, user)
        ):
            live = self.live(user, since, listed=True)
            if not live.user_exists:  # erased after the recompute
                raise UnknownUser(f"unknown user {user!r}")
            hidden_people, hidden_threads = live.people, live.threads
            # Nobody hidden since the recompute is named in a reason either (blocks and mutes
            # either way, dismissals; new follows only wait for the next recompute). Threads
            # *started* by hidden people go too (the root author, not whoever is listed first
            # among the participants); excluded before paging, so pages add up.
            if kind == "people":
                exclude = hidden_people
            else:
                exclude = hidden_threads
                if hidden_people:
                    exclude |= model.threads_started_by(hidden_people)
            version = model.version
            items, more = model.rendered.page(
                kind,
                listed,
                limit,
                offset,
                exclude=exclude,
                unseen=hidden_people,
                tracking=lambda item, position: tracking_id(version, user, item, position),
            )
            cursor_out = _encode_cursor(version, kind, user, offset + limit) if more else None
            pieces = [
                b'{"user_id":',
                orjson.dumps(user),
                b',"model_version":',
                orjson.dumps(version),
                b',"cold_start":false,"items":[',
            ]
            for part, tail in items:
                pieces += (part, tail, b",")
            if items:
                pieces.pop()
            pieces += (b'],"next_cursor":', orjson.dumps(cursor_out), b"}")
            return b"".join(pieces)  # the only copy of the items' bytes
        items = self._cold_start(model, user, kind)[offset : offset + limit + 1]
        more = len(items) > limit
        items = items[:limit]
        key = "user_id" if kind == "people" else "thread_id"
        for position, item in enumerate(items, offset):
            item["tracking_id"] = tracking_id(model.version, user, item[key], position)
            item["cold_start"] = True
        return orjson.dumps(
            {
                "user_id": user,
                "model_version": model.version,
                "cold_start": True,
                "items": items,
                "next_cursor": _encode_cursor(model.version, kind, user, offset + limit)
                if more
                else None,
            }
        )

    # --- cold start -------------------------------------------------------------------------
    def _acted_since(self, model: Recommender, u: int, user: str) -> bool:
        """A newcomer's lists (the most welcoming people and live threads, for someone who had
        done nothing at the recompute) give way to cold start once they follow, post or state
        interests: those say more about them than the model could."""
        if not model.is_newcomer(u):
            return False
        facts = self.store.user_facts(user)
        return bool(facts and (facts["follows"] or facts["topics"] or facts["threads"]))

    def _cold_start(self, model: Recommender, user: str, kind: str) -> list[dict]:
        facts = self.store.user_facts(user)
        if facts is None:
            raise UnknownUser(f"unknown user {user!r}")
        live = self.live(user, 0)
        hidden_people, hidden_threads = live.people, live.threads
        u = model.index_of(user)
        # blocks, mutes, dismissals older than the model (pruned from live_changes)
        if u is not None:
            hidden_people |= model.hidden_from(u)
        unseen = set(hidden_people)
        hidden_people |= set(facts["follows"]) | {user}
        tribes = self._matching_tribes(model, facts)
        if kind == "people":
            return self._cold_people(model, facts, tribes, hidden_people)
        # Threads started by someone blocked/muted either way, dismissed, deleted or hidden
        # (not by the people the newcomer follows: those are good first conversations).
        hidden_threads |= model.threads_started_by(hidden_people - set(facts["follows"]))
        return self._cold_threads(model, facts, tribes, hidden_threads, unseen)

    def _matching_tribes(
        self, model: Recommender, facts: dict
    ) -> list[tuple[int, float, list[str]]]:
        """Tribes by (followees in the tribe) + (shared topics with its label topics)."""
        score: Counter = Counter()
        shared: dict[int, list[str]] = {}
        for followee in facts["follows"]:
            i = model.index_of(followee)
            if i is not None and model.labels[i] >= 0:
                score[int(model.labels[i])] += 2.0
        topics = set(facts["topics"])
        for k, tribe in enumerate(model.tribes):
            common = [t for t in tribe.get("topics", []) if t in topics]
            if common:
                score[k] += len(common)
                shared[k] = common
        if not score:  # nothing to go on yet: the largest tribes, as a start
            return [(k, 0.5, []) for k in range(min(3, len(model.tribes)))]
        return [(k, s, shared.get(k, [])) for k, s in score.most_common(3)]

    def _cold_people(self, model, facts, tribes, hidden: set[str]) -> list[dict]:
        if not facts["follows"] and not facts["topics"]:
            # Nothing to go on yet: the most welcoming people, as the recompute lists its newcomers.
            return [self._welcoming(model, c, score) for c, score in model.welcome(hidden)]
        items: dict[str, dict] = {}
        # People those you follow are in touch with.
        counts: Counter = Counter()
        for followee in facts["follows"]:
            i = model.index_of(followee)
            if i is not None:
                counts.update(int(c) for c in model.contacts_out.row(i))
        discoverable = model.arrays["discoverable"]
        for c, n in counts.most_common(60):
            cid = str(model.user_ids[c])
            if cid in hidden or not discoverable[c]:
                continue
            items[cid] = {
                "user_id": cid,
                "score": round(float(n) / (1 + n), 6),
                "tribe_id": model.tribe_id(int(model.labels[c])),
                "reasons": [
                    {
                        "kind": "mutual_contacts",
                        "text": f"{n} of the people you follow "
                        f"{'is' if n == 1 else 'are'} in touch with them",
                        "count": n,
                    }
                ],
            }
        for k, s, common in tribes:
            label = model.tribe_info(k).get("label", "")
            for rank, c in enumerate(model.starter_pack(k, 20)):
                cid = str(model.user_ids[c])
                if cid in hidden or cid in items:
                    continue
                reasons = [
                    {
                        "kind": "same_tribe",
                        "text": f"Welcoming member of {label}",
                        "tribe_id": model.tribe_id(k),
                        "label": label,
                    }
                ]
                if common:
                    reasons.append(
                        {
                            "kind": "shared_topics",
                            "text": "You both talk about " + ", ".join(common),
                            "topics": common,
                        }
                    )
                items[cid] = {
                    "user_id": cid,
                    "score": round(s / (2.0 + rank), 6),
                    "tribe_id": model.tribe_id(k),
                    "reasons": reasons,
                }
        return sorted(items.values(), key=lambda x: (-x["score"], x["user_id"]))

    @staticmethod
    def _welcoming(model, c: int, score: float) -> dict:
        return {
            "user_id": str(model.user_ids[c]),
            "score": round(score, 6),
            "tribe_id": model.tribe_id(int(model.labels[c])),
            "reasons": [model.answers_newcomers(c)],
        }

    def _cold_threads(
        self, model, facts, tribes, hidden: set[str], unseen: set[str] = frozenset()
    ) -> list[dict]:
        out = []
        posted = set(facts["threads"])
        for k, _s, _common in tribes:
            for t in model.live_threads(k, 30):
                tid = str(model.thread_ids[int(t)])
                if tid in hidden or tid in posted:
                    continue
                item = model._thread(None, int(t), model.newcomer_answered(int(t)), 0, unseen)
                label = model.tribe_info(k).get("label", "")
                item["reasons"].insert(
                    0,
                    {
                        "kind": "same_tribe",
                        "text": f"A live conversation in {label}",
                        "tribe_id": model.tribe_id(k),
                        "label": label,
                    },
                )
                out.append(item)
        return out

    # --- tribes -----------------------------------------------------------------------------
    def user_tribes(self, user: str) -> dict[str, Any]:
        model = self.model()
        if model.index_of(user) is None:
            facts = self.store.user_facts(user)
            if facts is None:
                raise UnknownUser(f"unknown user {user!r}")
            tribes = self._matching_tribes(model, facts)
            total = sum(s for _, s, _ in tribes) or 1.0
            items = [
                {
                    "tribe_id": model.tribe_id(k),
                    "label": model.tribe_info(k).get("label", ""),
                    "affinity": round(s / total, 4),
                    "primary": i == 0,
                }
                for i, (k, s, _) in enumerate(tribes)
            ]
            return {
                "user_id": user,
                "model_version": model.version,
                "cold_start": True,
                "tribes": items,
            }
        if not self.live(user, int(model.manifest.get("live_seq", 0)), listed=True).user_exists:
            raise UnknownUser(f"unknown user {user!r}")  # erased after the recompute
        return {
            "user_id": user,
            "model_version": model.version,
            "cold_start": False,
            "tribes": model.user_tribes(user),
        }

    def list_tribes(self, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        model = self.model()
        offset = 0
        if cursor:
            version, offset = _decode_cursor(cursor, "tribes", "")
            if version != model.version:
                raise StaleCursor(version, model.version)
        page = model.tribes[offset : offset + limit]
        more = offset + limit < len(model.tribes)
        return {
            "model_version": model.version,
            "items": [tribe_summary(t) for t in page],
            "next_cursor": _encode_cursor(model.version, "tribes", "", offset + limit)
            if more
            else None,
        }

    def tribe(self, tribe_id: int) -> dict[str, Any]:
        model = self.model()
        k = model.tribe_index(tribe_id)
        if k is None:
            raise UnknownTribe(f"no tribe {tribe_id} in model {model.version}")
        # nobody's existence asked
        live = self.live("", int(model.manifest.get("live_seq", 0)), listed=True)
        hidden_people, hidden_threads = live.people, live.threads
        page = model.tribe_page(k, exclude=hidden_people)
        hidden_threads |= model.threads_started_by(hidden_people)
        page["conversations"] = [
            c for c in page["conversations"] if c["thread_id"] not in hidden_threads
        ]
        return {
            "model_version": model.version,
            **tribe_summary(page),
            "starter_pack": page["starter_pack"],
            "conversations": page["conversations"],
        }

    def model_info(self) -> dict[str, Any]:
        model = self.model()
        m = model.manifest
        return {
            "version": model.version,
            "built_at": m.get("built_at"),
            "counts": m.get("counts", {}),
            "summary": m.get("summary", {}),
        }
