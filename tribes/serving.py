"""Serving: answer "suggest people / conversations / tribes for X" from a model's arrays.

The CLI's ``suggest``, the API and notebooks all call :class:`Recommender`. It reads only
precomputed arrays (memory-mapped when opened from disk) and renders each item with its
reasons; no graph work happens here. Live filters (new follows, blocks, dismissals since the
recompute) are passed in as ``exclude`` sets by the caller that knows the store.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .events import format_ts
from .flags import REASON_FLAGS, THREAD_FLAGS
from .rendered import DEFAULT_MAX_BYTES, RenderedLists

__all__ = ["Recommender", "tribe_summary"]

STARTER_PACK_SIZE = 10


class _Csr:
    """Row access to a CSR stored as ``NAME_indptr``/``NAME_indices``[/``NAME_data``] arrays."""

    def __init__(self, arrays: dict[str, np.ndarray], name: str):
        self.indptr = arrays[f"{name}_indptr"]
        self.indices = arrays[f"{name}_indices"]
        self.data = arrays.get(f"{name}_data")

    def row(self, i: int) -> np.ndarray:
        return np.asarray(self.indices[self.indptr[i] : self.indptr[i + 1]])

    def row_data(self, i: int) -> np.ndarray:
        return np.asarray(self.data[self.indptr[i] : self.indptr[i + 1]])


def tribe_summary(tribe: dict) -> dict[str, Any]:
    """A tribe's public fields, as the API and the CLI list it; ``cohesion`` is None for models
    saved before it was measured."""
    return {
        "tribe_id": tribe["tribe_id"],
        "label": tribe["label"],
        "size": tribe["size"],
        "topics": tribe["topics"],
        "cohesion": tribe.get("cohesion"),
    }


class Recommender:
    """Suggestions from one model version. Cheap to create; thread-safe for reads."""

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        manifest: dict,
        tribes: list[dict] | None = None,
        render_cache_bytes: int = DEFAULT_MAX_BYTES,
    ):
        # Plain ndarray views of memory-mapped arrays: same shared pages, without np.memmap's
        # per-access Python overhead (it dominated request time).
        self.mapped = arrays
        self.arrays = arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.manifest = manifest
        self.version: str = manifest.get("version", "unsaved")
        self.user_ids = arrays["user_ids"]
        self.thread_ids = arrays["thread_ids"]
        self.labels = arrays["labels"]
        self.tribe_ids = arrays["tribe_ids"]
        self.vocabulary = arrays["vocabulary"]
        self.tribes = tribes if tribes is not None else []
        self._tribe_pos = {int(t): k for k, t in enumerate(self.tribe_ids)}
        self.memberships = _Csr(arrays, "memberships")
        self.user_topic = _Csr(arrays, "user_topic")
        self.thread_topic = _Csr(arrays, "thread_topic")
        self.contacts_out = _Csr(arrays, "contacts_out")
        self.contacts_in = _Csr(arrays, "contacts_in")
        self.thread_users = _Csr(arrays, "thread_users")
        # Blocks and mutes either way and dismissals at the recompute (absent in older models).
        self.hidden = _Csr(arrays, "hidden") if "hidden_indptr" in arrays else None
        self._starter: dict[int, np.ndarray] = {}
        self._welcome: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None
        self._started_by: tuple[np.ndarray, np.ndarray] | None = None
        # Items rendered once per version (see rendered.py), at most ``render_cache_bytes`` of them.
        self.rendered = RenderedLists(self, max_bytes=render_cache_bytes)

    @classmethod
    def open(cls, path: Path, render_cache_bytes: int = DEFAULT_MAX_BYTES) -> Recommender:
        """Memory-map a saved model folder; ``render_cache_bytes`` bounds its rendered items."""
        from .artifacts import load_arrays, load_json

        manifest = load_json(path, "manifest")
        tribes = load_json(path, "tribes")
        if isinstance(tribes, dict):  # older layout
            tribes = tribes.get("tribes", [])
        return cls(load_arrays(path), manifest, tribes, render_cache_bytes)

    # --- lookups ----------------------------------------------------------------------------
    def index_of(self, user_id: str) -> int | None:
        """Dense index of a public user id (binary search on the sorted ids), or None."""
        ids = self.user_ids
        i = int(ids.searchsorted(user_id))  # the method: a third of np.searchsorted's overhead
        return i if i < len(ids) and ids[i] == user_id else None

    def thread_index_of(self, thread_id: str) -> int | None:
        ids = self.thread_ids
        i = int(ids.searchsorted(thread_id))
        return i if i < len(ids) and ids[i] == thread_id else None

    def tribe_id(self, k: int) -> int | None:
        return int(self.tribe_ids[k]) if k >= 0 else None

    def tribe_info(self, k: int) -> dict:
        return self.tribes[k] if 0 <= k < len(self.tribes) else {}

    # --- people -----------------------------------------------------------------------------
    def people(
        self,
        user_id: str,
        k: int = 20,
        *,
        offset: int = 0,
        exclude: Collection[str] = (),
        unseen: Collection[str] = (),
    ) -> list[dict]:
        """Ranked people for ``user_id`` (``[]`` for an unknown user: the caller decides).

        ``exclude``: people not to suggest; ``unseen``: people not to show anywhere, not even
        inside a reason (deleted or hidden since the recompute)."""
        return self._page(
            user_id, "people", self.user_ids, self._person, k, offset, exclude, unseen
        )

    def _page(self, user_id, prefix, ids, render, k, offset, exclude, unseen) -> list[dict]:
        """Walk a stored list (``{prefix}_items/_scores/_flags``) skipping excluded ids, then
        ``offset`` survivors, and render the next ``k``."""
        u = self.index_of(user_id)
        if u is None:
            return []
        hidden = self.hidden_from(u)
        if hidden:
            unseen = {*unseen, *hidden}
        items = self.arrays[f"{prefix}_items"][u]
        scores = self.arrays[f"{prefix}_scores"][u]
        flags = self.arrays[f"{prefix}_flags"][u]
        out: list[dict] = []
        skipped = 0
        for j in range(len(items)):
            i = int(items[j])
            if i < 0:
                break
            if exclude and str(ids[i]) in exclude:
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append(render(u, i, float(scores[j]), int(flags[j]), unseen))
            if len(out) >= k:
                break
        return out

    def hidden_from(self, u: int) -> set[str]:
        """Ids never shown to user index ``u``, not even in a reason: blocks and mutes either
        way and dismissals known at the recompute. Usually empty."""
        if self.hidden is None:
            return set()
        row = self.hidden.row(u)
        return {str(self.user_ids[x]) for x in row.tolist()} if row.size else set()

    def is_newcomer(self, u: int) -> bool:
        """Whether user index ``u``'s people list is the newcomers' one (:mod:`tribes.newcomers`):
        they had done nothing when the model was built. False for models saved before it."""
        marks = self.arrays.get("people_newcomer")
        return bool(marks is not None and marks[u])

    def has_suggestions(self, u: int, kind: str) -> bool:
        """Whether the model holds any precomputed item of ``kind`` for user index ``u``."""
        return bool(self.arrays["people_items" if kind == "people" else "conv_items"][u, 0] >= 0)

    def _person(
        self, u: int, c: int, score: float, flags: int, unseen: Collection[str] = ()
    ) -> dict:
        k = int(self.labels[c])
        reasons: list[dict] = []
        if flags & REASON_FLAGS["reached_out"]:
            reasons.append({"kind": "reached_out", "text": "Already reached out to you"})
        mutual = self.mutual_contacts(u, c)
        if unseen:
            mutual = [x for x in mutual if str(self.user_ids[x]) not in unseen]
        if mutual:
            names = ", ".join(str(self.user_ids[x]) for x in mutual[:3])
            reasons.append(
                {
                    "kind": "mutual_contacts",
                    "text": f"{len(mutual)} of your contacts "
                    f"{'knows' if len(mutual) == 1 else 'know'} them ({names})",
                    "user_ids": [str(self.user_ids[x]) for x in mutual[:3]],
                    "count": len(mutual),
                }
            )
        topics = self.shared_topics(self.user_topic, u, self.user_topic, c)
        if topics:
            reasons.append(
                {
                    "kind": "shared_topics",
                    "text": "You both talk about " + ", ".join(topics),
                    "topics": topics,
                }
            )
        if k >= 0 and k == int(self.labels[u]):
            label = self.tribe_info(k).get("label", "")
            reasons.append(
                {
                    "kind": "same_tribe",
                    "text": f"In your tribe: {label}",
                    "tribe_id": self.tribe_id(k),
                    "label": label,
                }
            )
        if flags & REASON_FLAGS["answers_newcomers"]:
            reasons.append(self.answers_newcomers(c))
        if flags & REASON_FLAGS["talks_with_your_contacts"] and not mutual:
            reasons.append(
                {"kind": "talks_with_your_contacts", "text": "Talks with people you talk with"}
            )
        if not reasons:
            reasons.append(
                {"kind": "similar_people", "text": "People who interact like you talk with them"}
            )
        return {
            "user_id": str(self.user_ids[c]),
            "score": round(score, 6),
            "tribe_id": self.tribe_id(k),
            "reasons": reasons,
        }

    def mutual_contacts(self, u: int, c: int) -> list[int]:
        """People ``u`` is in touch with who are in touch with ``c`` (ascending indices)."""
        mine = set(self.contacts_out.row(u).tolist())
        return [x for x in self.contacts_in.row(c).tolist() if x in mine]

    @cached_property
    def topic_specificity(self) -> np.ndarray:
        """(V,) :func:`tribes.text.term_specificity`; computed here for models saved without it."""
        saved = self.arrays.get("topic_specificity")
        if saved is not None:
            return saved
        import scipy.sparse as sp

        from .text import term_specificity

        m = self.user_topic
        shape = (len(m.indptr) - 1, len(self.vocabulary))
        return term_specificity(sp.csr_matrix((m.data, m.indices, m.indptr), shape=shape))

    @cached_property
    def _specificity_list(self) -> list[float]:
        """``topic_specificity`` as a list: indexing it per topic is 10x cheaper than numpy's
        (at most 50,000 topics: about 1 MB)."""
        return self.topic_specificity.tolist()

    def shared_topics(self, a: _Csr, i: int, b: _Csr, j: int, k: int = 3) -> list[str]:
        """Topics both rows weigh, most telling first: ``min(a, b)`` times the topic's
        specificity, so a word nearly everyone uses is not the reason (ties: vocabulary order).
        Python sets: on rows of tens of entries they beat numpy's per-call overhead."""
        wa = dict(zip(a.row(i).tolist(), a.row_data(i).tolist(), strict=True))
        spec = self._specificity_list
        common = [
            (min(wa[t], w) * spec[t], t)
            for t, w in zip(b.row(j).tolist(), b.row_data(j).tolist(), strict=True)
            if t in wa and spec[t] > 0
        ]
        if not common:
            return []
        common.sort(key=lambda x: (-x[0], x[1]))
        return [str(self.vocabulary[t]) for _, t in common[:k]]

    # --- conversations ----------------------------------------------------------------------
    def conversations(
        self,
        user_id: str,
        k: int = 20,
        *,
        offset: int = 0,
        exclude: Collection[str] = (),
        unseen: Collection[str] = (),
    ) -> list[dict]:
        """Ranked live threads; ``exclude`` thread ids, ``unseen`` user ids kept out of the
        participants and reasons."""
        return self._page(
            user_id, "conv", self.thread_ids, self._thread, k, offset, exclude, unseen
        )

    def threads_started_by(self, user_ids: Collection[str]) -> set[str]:
        """Ids of the threads whose root post is by one of ``user_ids`` (for live filters)."""
        users = [u for u in (self.index_of(x) for x in user_ids) if u is not None]
        if not users:
            return set()
        if self._started_by is None:  # threads grouped by root author, built once: O(T log T)
            roots = np.asarray(self.arrays["thread_root_author"])
            order = np.argsort(roots, kind="stable")
            self._started_by = (
                order,
                np.searchsorted(roots[order], np.arange(len(self.user_ids) + 1)),
            )
        order, starts = self._started_by
        return {
            str(self.thread_ids[t])
            for u in users
            for t in order[starts[u] : starts[u + 1]].tolist()
        }

    def _thread(
        self, u: int | None, t: int, score: float, flags: int, unseen: Collection[str] = ()
    ) -> dict:
        k = int(self.arrays["thread_tribe"][t])
        participants = self.thread_users.row(t)
        if unseen:
            participants = np.array(
                [x for x in participants.tolist() if str(self.user_ids[x]) not in unseen],
                dtype=np.int64,
            )
        topics = [
            str(self.vocabulary[x])
            for x in self.thread_topic.row(t)[
                np.argsort(-self.thread_topic.row_data(t), kind="stable")[:5]
            ]
        ]
        last = float(self.arrays["thread_last_activity"][t])
        reasons: list[dict] = []
        if u is not None:
            shared = self.shared_topics(self.user_topic, u, self.thread_topic, t)
            if shared:
                reasons.append(
                    {
                        "kind": "shared_topics",
                        "text": "About " + ", ".join(shared),
                        "topics": shared,
                    }
                )
            mine = set(self.contacts_out.row(u).tolist())
            contacts = [x for x in participants.tolist() if x in mine]
            if contacts:
                ids = [str(self.user_ids[x]) for x in contacts[:3]]
                reasons.append(
                    {
                        "kind": "people_you_talk_with",
                        "text": "With people you talk with: " + ", ".join(ids),
                        "user_ids": ids,
                        "count": len(contacts),
                    }
                )
            if k >= 0 and k == int(self.labels[u]):
                label = self.tribe_info(k).get("label", "")
                reasons.append(
                    {
                        "kind": "same_tribe",
                        "text": f"In your tribe: {label}",
                        "tribe_id": self.tribe_id(k),
                        "label": label,
                    }
                )
        if flags & THREAD_FLAGS["answers_newcomers"]:
            rate = float(self.arrays["thread_answered_rate"][t])
            reasons.append(
                {
                    "kind": "answers_newcomers",
                    "text": "Newcomers who reply here get answers",
                    "rate": round(rate, 3),
                }
            )
        if flags & THREAD_FLAGS["open_to_all"]:
            reasons.append(
                {
                    "kind": "open_to_all",
                    "text": "One of the most welcoming live conversations, open to everyone",
                }
            )
        reasons.append(
            {
                "kind": "active_thread",
                "text": f"Active {format_ts(last)} with {len(participants)} "
                f"{'person' if len(participants) == 1 else 'people'}",
                "last_activity": format_ts(last),
                "participants": len(participants),
            }
        )
        return {
            "thread_id": str(self.thread_ids[t]),
            "score": round(score, 6),
            "tribe_id": self.tribe_id(k),
            "topics": topics,
            "participants": [str(self.user_ids[x]) for x in participants[:20]],
            "last_activity": format_ts(last),
            "reasons": reasons,
        }

    # --- tribes -----------------------------------------------------------------------------
    def user_tribes(self, user_id: str) -> list[dict]:
        """The user's tribes with affinities (primary first)."""
        u = self.index_of(user_id)
        if u is None:
            return []
        primary = int(self.labels[u])
        ks, shares = self.memberships.row(u), self.memberships.row_data(u)
        order = np.lexsort((ks, -shares, ks != primary))
        out = []
        for o in order:
            k = int(ks[o])
            info = self.tribe_info(k)
            out.append(
                {
                    "tribe_id": self.tribe_id(k),
                    "label": info.get("label", ""),
                    "affinity": round(float(shares[o]), 4),
                    "primary": k == primary,
                }
            )
        return out

    def tribe_index(self, tribe_id: int) -> int | None:
        return self._tribe_pos.get(int(tribe_id))

    def starter_pack(self, k: int, size: int = STARTER_PACK_SIZE) -> np.ndarray:
        """The tribe's members most likely to answer a newcomer (answer rate × activity),
        discoverable only — not the most followed."""
        pack = self._starter.get(k)
        if pack is None:
            members = np.flatnonzero(
                (np.asarray(self.labels) == k) & np.asarray(self.arrays["discoverable"])
            )
            welcome = (
                np.asarray(self.arrays["answer_rate"])[members]
                * np.asarray(self.arrays["activity"])[members]
            )
            pack = members[np.lexsort((members, -welcome))][: max(size, 50)]
            self._starter[k] = pack
        return pack[:size]

    def answers_newcomers(self, c: int) -> dict:
        """The ``answers_newcomers`` reason for person index ``c``: whom they answered, of how many."""
        answered, reached = int(self.arrays["answered"][c]), int(self.arrays["reached_by"][c])
        return {
            "kind": "answers_newcomers",
            "text": f"Answers people who reach out ({answered} of {reached})",
            "answered": answered,
            "reached_by": reached,
        }

    def welcome(self, hidden: Collection[str] = (), size: int = 100) -> list[tuple[int, float]]:
        """``(user index, welcome)`` for someone with nothing to go on: the most welcoming people
        (:func:`tribes.newcomers.welcoming_people`: people answered × activity), the top accounts
        only where every prefix stays within the model's ``top_exposure_cap``, as the recompute
        lists its newcomers (:func:`tribes.newcomers.welcome_list`); none of ``hidden`` (ids).
        The order is computed once per version (O(U log U)), each list in O(depth + hidden · log U)."""
        from .newcomers import welcome_list, welcoming_people
        from .params import Params

        if self._welcome is None:
            params = {**Params().as_dict(), **self.manifest.get("params", {})}
            a = self.arrays
            score = welcoming_people(
                a["activity"],
                a["reached_by"],
                a["answered"],
                a["discoverable"],
                float(params["activity_floor"]),
            )
            order = np.flatnonzero(score > 0)
            order = order[np.lexsort((order, -score[order]))]
            top = a.get("top_account")  # absent in older models: nobody is held back
            is_top = (
                np.zeros(len(score), dtype=bool) if top is None else np.asarray(top, dtype=bool)
            )
            depth = 4 * max(size, 100)  # enough for any page after the hidden are dropped
            self._welcome = (
                order[is_top[order]][:depth],
                order[~is_top[order]][:depth],
                score,
                float(params["top_exposure_cap"]),
            )
        tops, others, score, cap = self._welcome
        gone = [i for h in hidden if (i := self.index_of(h)) is not None]
        if gone:
            tops, others = tops[~np.isin(tops, gone)], others[~np.isin(others, gone)]
        chosen = welcome_list(tops, others, cap, size)
        # Non-increasing along the list, as the recompute's newcomer lists (a top account moved down keeps its place's).
        return list(
            zip(chosen.tolist(), np.minimum.accumulate(score[chosen]).tolist(), strict=True)
        )

    def live_threads(self, k: int, size: int = 10) -> np.ndarray:
        live = np.flatnonzero(
            (np.asarray(self.arrays["thread_tribe"]) == k) & np.asarray(self.arrays["thread_live"])
        )
        last = np.asarray(self.arrays["thread_last_activity"])[live]
        return live[np.argsort(-last, kind="stable")][:size]

    def tribe_page(self, k: int, *, exclude: Collection[str] = ()) -> dict[str, Any]:
        info = dict(self.tribe_info(k))
        pack = [
            str(self.user_ids[x])
            for x in self.starter_pack(k, STARTER_PACK_SIZE + len(exclude))
            if str(self.user_ids[x]) not in exclude
        ][:STARTER_PACK_SIZE]
        info["starter_pack"] = pack
        info["conversations"] = [
            self._thread(None, int(t), self.newcomer_answered(int(t)), 0, exclude)
            for t in self.live_threads(k)
        ]
        return info

    def newcomer_answered(self, t: int) -> float:
        """p(a newcomer's reply in thread index ``t`` is answered), the score of a thread shown
        without a user to rank it for (tribe pages, cold start)."""
        return float(self.arrays["thread_answered_rate"][t])
