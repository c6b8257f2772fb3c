"""Pre-rendered suggestion items: each item's JSON rendered once per model version, then reused.

Rendering an item with its reasons (mutual contacts, shared topics, tribe, answer counts) costs
tens of microseconds of Python; a page of 20 costs about a millisecond, which was most of a
request. :class:`RenderedLists` keeps, per ``(kind, user)``, the ids of the stored list and
each item's JSON as bytes (rendered lazily, the first time the item is shown), so a request is a
walk over ids (live filters, paging) and a join of byte strings.

It belongs to one :class:`~tribes.serving.Recommender`: a new model version is a new
Recommender with an empty cache, so nothing rendered from an older version is ever served.
Live filters still apply on every request: excluded ids are skipped before paging, and an item
whose reasons or participants name someone hidden since the recompute (``unseen``) is rendered
afresh for that request instead of served from the cache.

Memory is bounded: least recently used lists are dropped once their bytes (an estimate
counting the JSON, the ids and the names each item mentions) exceed ``max_bytes``.

The cache is kept light for Python's cyclic garbage collector, whose full collections stop
every thread of a worker for as long as they take to walk the tracked containers: a list's ids,
scores and flags, each item's JSON and tracking id and the names it mentions are all tuples of
strings, bytes and numbers, which the collector stops tracking after it first sees them, so a
cached list costs it one object whatever its length (with frozensets and lists a full
collection over a 1M-user model's warm cache took ~200 ms; ``benchmarks/RESULTS.md``,
*The API over a 1,000,000-user model, and garbage-collector pauses*).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from .serving import Recommender

__all__ = ["RenderedLists"]

DEFAULT_MAX_BYTES = 128 * 2**20
_ID_BYTES = 64  # a str id in a Python list or set, roughly


class _List:
    """One stored list of one user: item ids, and per shown item its JSON and the names in it."""

    __slots__ = ("flags", "ids", "nbytes", "parts", "refs", "scores", "tids")

    def __init__(self, ids: tuple[str, ...], scores: tuple[float, ...], flags: tuple[int, ...]):
        self.ids = ids
        self.scores = scores
        self.flags = flags
        n = len(ids)
        # parts[j]: the item's JSON object without its closing brace (tracking_id goes there).
        # All tuples, replaced whole when a page renders more (RenderedLists._keep).
        self.parts: tuple[bytes | None, ...] = (None,) * n
        self.refs: tuple[tuple[str, ...], ...] = ((),) * n  # the ids of the people item j names
        self.tids: tuple[bytes | None, ...] = (None,) * n  # tracking id when shown at position j
        self.nbytes = 200 + n * _ID_BYTES


class RenderedLists:
    """Rendered items of one model, per ``(kind, user index)``; thread-safe, LRU-bounded.

    ``kind`` is ``people`` or ``conversations``. A request touching a cached list costs
    O(items walked) dictionary and set lookups and no rendering.
    """

    def __init__(self, model: Recommender, max_bytes: int = DEFAULT_MAX_BYTES):
        # A weak reference: the model holds this cache, and a cycle between them would keep a
        # swapped-out model (its mapped arrays, its cache) alive until a full collection.
        self._model = weakref.ref(model)
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._lists: OrderedDict[tuple[str, int], _List] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model(self) -> Recommender:
        """The model these items belong to (alive while anyone asks it for a page)."""
        model = self._model()
        if model is None:
            raise RuntimeError("the model of these rendered items is gone")
        return model

    def __len__(self) -> int:
        return len(self._lists)

    def _list(self, kind: str, u: int) -> _List:
        key = (kind, u)
        with self._lock:
            found = self._lists.get(key)
            if found is not None:
                self._lists.move_to_end(key)
                return found
        m = self.model
        prefix, ids = ("people", m.user_ids) if kind == "people" else ("conv", m.thread_ids)
        row = m.arrays[f"{prefix}_items"][u]
        n = int((row >= 0).sum())
        made = _List(
            tuple(str(x) for x in ids[row[:n]]),
            tuple(m.arrays[f"{prefix}_scores"][u][:n].tolist()),
            tuple(m.arrays[f"{prefix}_flags"][u][:n].tolist()),
        )
        with self._lock:
            found = self._lists.get(key)
            if found is not None:  # another thread made it meanwhile
                return found
            self._lists[key] = made
            self.nbytes += made.nbytes
            self._evict()
        return made

    def _evict(self) -> None:
        while self.nbytes > self.max_bytes and len(self._lists) > 1:
            _, old = self._lists.popitem(last=False)
            self.nbytes -= old.nbytes

    def _render(
        self, kind: str, u: int, lst: _List, j: int, unseen: Collection[str]
    ) -> tuple[bytes, tuple[str, ...]]:
        """The item's JSON without its closing brace, and the ids of the people it names."""
        m = self.model
        if kind == "people":
            c = int(m.index_of(lst.ids[j]))
            item = m._person(u, c, lst.scores[j], lst.flags[j], unseen)
            refs = tuple(str(m.user_ids[x]) for x in m.mutual_contacts(u, c))
        else:
            t = int(m.thread_index_of(lst.ids[j]))
            item = m._thread(u, t, lst.scores[j], lst.flags[j], unseen)
            refs = tuple(str(m.user_ids[x]) for x in m.thread_users.row(t).tolist())
        return orjson.dumps(item)[:-1], refs

    def page(
        self,
        kind: str,
        u: int,
        k: int,
        offset: int = 0,
        *,
        exclude: Collection[str] = (),
        unseen: Collection[str] = (),
        tracking: Callable[[str, int], str],
    ) -> tuple[list[tuple[bytes, bytes]], bool]:
        """Up to ``k`` items of the stored list after skipping ``exclude`` and then ``offset``
        survivors, each a JSON object in two pieces — the item without its closing brace and
        ``,"tracking_id":"…"}`` — so the caller copies the bytes once, into the body; and
        whether more survivors follow.

        ``unseen``: ids that must appear nowhere (hidden since the recompute); the people the
        model already hides from ``u`` (``Recommender.hidden_from``) are always applied.
        ``tracking(item_id, position)`` makes the tracking id of an item shown at ``position``
        (``offset`` + its place on the page); it is cached for the usual case, an item shown at
        its place in the stored list.
        """
        lst = self._list(kind, u)
        if not exclude and not unseen:  # the usual page: nothing hidden since the recompute
            end = offset + k
            parts, tids = lst.parts[offset:end], lst.tids[offset:end]
            if None not in parts and None not in tids:  # all rendered, shown at their places
                return list(zip(parts, tids, strict=True)), end < len(lst.ids)
        static = self.model.hidden_from(u)
        if unseen and not isinstance(unseen, set | frozenset):
            unseen = set(unseen)
        out: list[tuple[bytes, bytes]] = []
        rendered: dict[int, tuple[bytes, tuple[str, ...]]] = {}  # items rendered now: kept below
        tails: dict[int, bytes] = {}
        more = False
        skipped = 0
        ids, parts, refs, tids = lst.ids, lst.parts, lst.refs, lst.tids
        for j in range(len(ids)):
            if exclude and ids[j] in exclude:
                continue
            if skipped < offset:
                skipped += 1
                continue
            if len(out) >= k:
                more = True
                break
            part, found = parts[j], refs[j]
            if part is None:
                part, found = rendered[j] = self._render(kind, u, lst, j, static)
            # An item naming someone hidden since the recompute is rendered afresh, without them.
            if unseen and not unseen.isdisjoint(found):
                part, _ = self._render(kind, u, lst, j, {*static, *unseen})
            position = offset + len(out)
            if position == j:
                tail = tids[j]
                if tail is None:
                    tail = tails[j] = b',"tracking_id":' + orjson.dumps(tracking(ids[j], j)) + b"}"
            else:
                tail = b',"tracking_id":' + orjson.dumps(tracking(ids[j], position)) + b"}"
            out.append((part, tail))
        if rendered or tails:
            self._keep(kind, u, lst, rendered, tails)
        return out, more

    def _keep(
        self,
        kind: str,
        u: int,
        lst: _List,
        rendered: dict[int, tuple[bytes, tuple[str, ...]]],
        tails: dict[int, bytes],
    ) -> None:
        """Store what a page rendered in ``lst``: its tuples are replaced whole, under the lock
        (a reader sees the old tuple or the new one), and the byte estimate grows."""
        with self._lock:
            parts, refs, tids = list(lst.parts), list(lst.refs), list(lst.tids)
            grown = 0
            for j, (part, found) in rendered.items():
                if parts[j] is None:  # (another thread may have stored it meanwhile)
                    parts[j], refs[j] = part, found
                    grown += len(part) + _ID_BYTES * (len(found) + 1)
            for j, tail in tails.items():
                if tids[j] is None:
                    tids[j] = tail
            lst.parts, lst.refs, lst.tids = tuple(parts), tuple(refs), tuple(tids)
            lst.nbytes += grown
            if self._lists.get((kind, u)) is lst:  # not evicted meanwhile
                self.nbytes += grown
                self._evict()
