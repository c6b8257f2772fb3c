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
"""

from __future__ import annotations

import threading
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

    def __init__(self, ids: list[str], scores: list[float], flags: list[int]):
        self.ids = ids
        self.scores = scores
        self.flags = flags
        n = len(ids)
        # parts[j]: the item's JSON object without its closing brace (tracking_id goes there).
        self.parts: list[bytes | None] = [None] * n
        self.refs: list[frozenset[str]] = [frozenset()] * n
        self.tids: list[bytes | None] = [None] * n  # tracking id when shown at position j
        self.nbytes = 200 + n * _ID_BYTES


class RenderedLists:
    """Rendered items of one model, per ``(kind, user index)``; thread-safe, LRU-bounded.

    ``kind`` is ``people`` or ``conversations``. A request touching a cached list costs
    O(items walked) dictionary and set lookups and no rendering.
    """

    def __init__(self, model: Recommender, max_bytes: int = DEFAULT_MAX_BYTES):
        self.model = model
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._lists: OrderedDict[tuple[str, int], _List] = OrderedDict()
        self._lock = threading.Lock()

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
            [str(x) for x in ids[row[:n]]],
            m.arrays[f"{prefix}_scores"][u][:n].tolist(),
            m.arrays[f"{prefix}_flags"][u][:n].tolist(),
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
    ) -> tuple[bytes, frozenset]:
        """The item's JSON without its closing brace, and the ids of the people it names."""
        m = self.model
        if kind == "people":
            c = int(m.index_of(lst.ids[j]))
            item = m._person(u, c, lst.scores[j], lst.flags[j], unseen)
            refs = frozenset(str(m.user_ids[x]) for x in m.mutual_contacts(u, c))
        else:
            t = int(m.thread_index_of(lst.ids[j]))
            item = m._thread(u, t, lst.scores[j], lst.flags[j], unseen)
            refs = frozenset(str(m.user_ids[x]) for x in m.thread_users.row(t).tolist())
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
        out: list[tuple[bytes, bytes]] = []
        skipped = 0
        ids, parts, refs, tids = lst.ids, lst.parts, lst.refs, lst.tids
        for j in range(len(ids)):
            if exclude and ids[j] in exclude:
                continue
            if skipped < offset:
                skipped += 1
                continue
            if len(out) >= k:
                return out, True
            part = parts[j]
            if part is None:
                part, found = self._render(kind, u, lst, j, static)
                if parts[j] is None:
                    parts[j], refs[j] = part, found
                    grown = len(part) + _ID_BYTES * (len(found) + 1)
                    with self._lock:
                        lst.nbytes += grown
                        if self._lists.get((kind, u)) is lst:  # not evicted meanwhile
                            self.nbytes += grown
                            self._evict()
            if unseen and not refs[j].isdisjoint(
                unseen
            ):  # names someone hidden since the recompute
                part, _ = self._render(kind, u, lst, j, {*static, *unseen})
            position = offset + len(out)
            if position == j:
                tail = tids[j]
                if tail is None:
                    tail = tids[j] = b',"tracking_id":' + orjson.dumps(tracking(ids[j], j)) + b"}"
            else:
                tail = b',"tracking_id":' + orjson.dumps(tracking(ids[j], position)) + b"}"
            out.append((part, tail))
        return out, False
