"""Import SNAP ego networks (ego-Twitter, ego-Facebook, ego-G+) from a folder or a tar archive.

Each ego ``E`` has up to five files: ``E.edges`` ("a b": a follows b, among E's alters),
``E.feat`` ("node f0 f1 …" binary features), ``E.egofeat`` (E's own features), ``E.featnames``
("index name") and ``E.circles`` ("name<TAB>node<TAB>node…", ground truth). The ego follows
every alter (node of its ``.feat`` or ``.edges``). A ``.tar.gz`` is read as a stream: nothing is
extracted to disk. Output does not depend on the order of files, so a folder and the same files
packed as a tar give identical events.

Memory: the union graph is deduplicated as packed ``int64`` pairs of dense node indices
(1.77M follows of ego-Twitter: ~30 MB transient), plus one ``bytes → int`` dict of node ids.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tribes.errors import InputError
from tribes.events import MAX_TAGS, normalise_tag
from tribes.importers._common import DEFAULT_TS, check_id, check_ts, finish_stats
from tribes.importers._snap_io import (
    EXTS,
    iter_files,
    list_egos,
    node_key,
    parse_circles,
    parse_edges,
    parse_feat,
    parse_featnames,
)

__all__ = ["FACEBOOK_FIELDS", "interest_name", "iter_events", "iter_truth"]

#: ego-Facebook feature fields kept as interests (study, work, places, languages). Personal
#: attributes (birthday, names, gender, locale, political, religion) and people/date fields
#: (``;with;``, ``;from;``, start/end dates) are not interests and are dropped.
FACEBOOK_FIELDS = frozenset(
    {
        "education;school",
        "education;concentration",
        "education;degree",
        "education;classes",
        "education;type",
        "education;year",
        "work;employer",
        "work;position",
        "work;location",
        "work;projects",
        "location",
        "hometown",
        "languages",
    }
)
_HASHTAG = re.compile(r"#(\w[\w-]{0,99})")
_ANON = re.compile(r"^(.*?);anonymized feature (\d+)$")


def interest_name(feature: str) -> str | None:
    """The interest named by a ``.featnames`` entry, or ``None`` when it is not an interest.

    Hashtags keep their leading word (``"#Obama."`` → ``"obama"``; digit-only tags and
    ``@mentions`` are dropped). ego-Facebook's anonymised fields in :data:`FACEBOOK_FIELDS`
    become ``field-subfield-N`` (``"education;school;id;anonymized feature 84"`` →
    ``"education-school-84"``).

    >>> interest_name("#GameOfThrones's"), interest_name("@bob"), interest_name("#2012")
    ('gameofthrones', None, None)
    >>> interest_name("education;school;id;anonymized feature 84")
    'education-school-84'
    """
    if feature.startswith("#"):
        match = _HASHTAG.match(feature)
        if match is None or match.group(1).isdigit():
            return None
        return normalise_tag(match.group(1)) or None
    match = _ANON.match(feature)
    if match is None:
        return None
    field = match.group(1).removesuffix(";id")
    if field not in FACEBOOK_FIELDS:
        return None
    return f"{field.replace(';', '-')}-{match.group(2)}"


def iter_events(
    src: str | Path,
    *,
    undirected: bool | None = None,
    limit_egos: int | None = None,
    max_interests: int = 50,
    ts: str | float = DEFAULT_TS,
    stats: dict | None = None,
) -> Iterator[dict]:
    """Yield ``user`` events for every node, then the deduplicated ``follow`` events.

    Users (sorted by id, numerically when ids are numbers) carry ``interests`` from their
    features (see :func:`interest_name`), the union over every ego that lists them, ordered by
    the number of feature rows naming them, then by how many users share them, then by name,
    and capped at ``max_interests``. Follows are sorted by (src, dst). Self-loops are skipped.

    Parameters
    ----------
    src
        A folder holding the ego files (searched recursively) or a ``.tar``/``.tar.gz``/
        ``.tgz`` of them (read as a stream).
    undirected
        Emit every edge in both directions (ego ↔ alter too). ``None`` (default): true when
        the name of ``src`` (last path component) contains "facebook" (ego-Facebook is
        undirected; ego-Twitter and ego-G+ are directed).
    limit_egos
        Read only the first N egos in id order (fast tests); ``None`` reads all.
    max_interests
        Cap on the interests per user (1..100).
    ts
        Timestamp of every event (the data have none), RFC 3339 or Unix seconds.
    stats
        Optional dict that receives counters when the generator is exhausted. Not a CLI option.

    Raises
    ------
    InputError
        When ``src`` holds no ego files, a line is malformed (naming archive member and line),
        or a ``.feat`` row's width disagrees with its ``.featnames``.

    Notes
    -----
    Everything is read before the first event is yielded (interests are a union over egos).
    Full ego-Twitter (973 egos, 81,306 users, 1,768,135 follows) takes ~6 s, ~200 MB.
    """
    check_ts(ts)
    if not 1 <= max_interests <= MAX_TAGS:
        raise InputError(f"must be between 1 and {MAX_TAGS}", field="max_interests")
    if undirected is None:
        undirected = "facebook" in Path(src).name.lower()
    egos = _select(src, limit_egos)
    builder = _GraphBuilder(undirected)
    for name, ego, ext, data in iter_files(src, egos, {"edges", "feat", "egofeat", "featnames"}):
        builder.add(name, ego, ext, data)
    if not builder.pending:
        raise _no_egos(src)
    yield from builder.events(ts, max_interests, stats)


def iter_truth(src: str | Path, *, limit_egos: int | None = None) -> Iterator[dict]:
    """Yield the ground-truth circles: ``{"circle_id": "EGO:NAME", "ego": EGO, "members": [...]}``.

    Circles come in ego id order, then file order; members are deduplicated in file order.
    Empty circles are skipped. ``src`` and ``limit_egos`` are as in :func:`iter_events`.
    """
    egos = _select(src, limit_egos)
    by_ego: dict[str, list[dict]] = {}
    for name, ego, _ext, data in iter_files(src, egos, {"circles"}):
        by_ego[ego] = [
            {"circle_id": f"{ego}:{label}", "ego": ego, "members": members}
            for label, members in parse_circles(data, name)
            if members
        ]
    if not by_ego:
        raise _no_egos(src, "*.circles")
    for ego in sorted(by_ego, key=node_key):
        yield from by_ego[ego]


def _select(src: str | Path, limit_egos: int | None) -> set[str] | None:
    """The egos to read: ``None`` for all, else the first ``limit_egos`` in id order."""
    if limit_egos is None:
        return None
    if limit_egos < 1:
        raise InputError("must be a positive number of egos", field="limit_egos")
    egos = sorted(list_egos(src), key=node_key)
    if not egos:
        raise _no_egos(src)
    return set(egos[:limit_egos])


def _no_egos(src: str | Path, pattern: str = "") -> InputError:
    wanted = pattern or ", ".join("*." + e for e in EXTS)
    return InputError(f"no ego network files ({wanted}) found", path=str(src))


class _GraphBuilder:
    """Accumulates one source's nodes, follows and per-ego features in any file order."""

    def __init__(self, undirected: bool):
        self.undirected = undirected
        self.nodes: dict[bytes, int] = {}  # node id → dense index (first-seen order)
        self.tags: dict[str, int] = {}  # interest → dense index
        self.pairs: list[np.ndarray] = []  # packed (src << 32 | dst) follow pairs
        self.pending_pairs = 0  # pairs appended since the last compaction
        self.node_tags: list[np.ndarray] = []  # packed (node << 32 | tag) feature hits
        self.pending: dict[str, dict] = {}  # ego → parsed files waiting for their .featnames
        self.counts: Counter = Counter(self_loops=0, interests_over_cap=0)

    def index(self, tokens: list[bytes]) -> np.ndarray:
        nodes = self.nodes
        return np.fromiter((nodes.setdefault(t, len(nodes)) for t in tokens), np.int64, len(tokens))

    def follow(self, src: np.ndarray, dst: np.ndarray) -> None:
        keep = src != dst
        self.counts["self_loops"] += int(np.count_nonzero(~keep))
        src, dst = src[keep], dst[keep]
        self.pairs.append((src << 32) | dst)
        if self.undirected:
            self.pairs.append((dst << 32) | src)
        self.pending_pairs += len(src)
        if self.pending_pairs > 1 << 21:  # compact duplicates now and then to bound memory
            self.pairs = [_distinct(np.concatenate(self.pairs))]
            self.pending_pairs = 0

    def add(self, name: str, ego: str, ext: str, data: bytes) -> None:
        ego_idx = self.index([ego.encode()])
        state = self.pending.setdefault(ego, {})
        if ext == "edges":
            ends = self.index(parse_edges(data, name)).reshape(-1, 2)
            self.follow(ends[:, 0], ends[:, 1])
            alters = _distinct(ends.ravel())
            self.follow(np.repeat(ego_idx, len(alters)), alters)
        elif ext == "feat":
            tokens, rows, cols, width = parse_feat(data, name, with_ids=True)
            rows_idx = self.index(tokens)
            self.follow(np.repeat(ego_idx, len(rows_idx)), rows_idx)
            state["feat"] = (name, rows_idx[rows], cols, width)
        elif ext == "egofeat":
            _, _, cols, width = parse_feat(data, name, with_ids=False)
            state["egofeat"] = (name, np.repeat(ego_idx, len(cols)), cols, width)
        elif ext == "featnames":
            names = parse_featnames(data, name)
            tags = self.tags
            state["featnames"] = np.array(
                [
                    -1 if (t := interest_name(n)) is None else tags.setdefault(t, len(tags))
                    for n in names
                ],
                np.int64,
            )
        self._resolve(state)

    def _resolve(self, state: dict) -> None:
        """Turn parsed feature rows into (node, interest) hits once ``.featnames`` is known."""
        colmap = state.get("featnames")
        if colmap is None:
            return
        for key in ("feat", "egofeat"):
            if key not in state:
                continue
            name, nodes, cols, width = state.pop(key)
            if width != len(colmap):
                raise InputError(
                    f"{width} feature columns but .featnames lists {len(colmap)}", path=name
                )
            tag = colmap[cols]
            hit = tag >= 0
            self.node_tags.append((nodes[hit] << 32) | tag[hit])

    def events(self, ts: str | float, max_interests: int, stats: dict | None) -> Iterator[dict]:
        counts = self.counts
        counts["egos"] = len(self.pending)
        counts["egos_without_featnames"] = sum(
            1
            for s in self.pending.values()
            if "featnames" not in s and ("feat" in s or "egofeat" in s)
        )
        self.pending.clear()
        ids = [t.decode("utf-8", "replace") for t in self.nodes]
        for node_id in ids:
            check_id(node_id, field="id")
        order = sorted(range(len(ids)), key=lambda i: node_key(ids[i]))
        rank = np.empty(len(ids), np.int64)
        rank[order] = np.arange(len(ids))
        interests = self._interests(rank, max_interests)
        for r, i in enumerate(order):
            event = {"type": "user", "id": ids[i], "ts": ts}
            if r in interests:
                event["interests"] = interests[r]
                counts["users_with_interests"] += 1
            yield event
        counts["users"] = len(ids)
        del interests
        packed = np.concatenate(self.pairs) if self.pairs else np.zeros(0, np.int64)
        self.pairs.clear()
        mask = np.int64((1 << 32) - 1)
        packed = _distinct((rank[packed >> 32] << 32) | rank[packed & mask])
        counts["follows"] = len(packed)
        sorted_ids = [ids[i] for i in order]
        for start in range(0, len(packed), 1 << 16):  # chunks keep the Python ints few
            chunk = packed[start : start + (1 << 16)]
            for s, d in zip((chunk >> 32).tolist(), (chunk & mask).tolist(), strict=True):
                yield {"type": "follow", "src": sorted_ids[s], "dst": sorted_ids[d], "ts": ts}
        finish_stats("snap-ego", counts, stats)

    def _interests(self, rank: np.ndarray, cap: int) -> dict[int, list[str]]:
        """Node rank → interests, most frequent first (see :func:`iter_events`)."""
        if not self.node_tags:
            return {}
        hits = np.concatenate(self.node_tags)
        self.node_tags.clear()
        mask = np.int64((1 << 32) - 1)
        keys, per_user = np.unique((rank[hits >> 32] << 32) | (hits & mask), return_counts=True)
        users, tags = keys >> 32, keys & mask
        names = list(self.tags)  # by index
        name_rank = np.empty(len(names), np.int64)
        name_rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
        popularity = np.bincount(tags, minlength=len(names))
        order = np.lexsort((name_rank[tags], -popularity[tags], -per_user, users))
        users, tags = users[order].tolist(), tags[order].tolist()
        out: dict[int, list[str]] = {}
        for user, tag in zip(users, tags, strict=True):
            chosen = out.setdefault(user, [])
            if len(chosen) < cap:
                chosen.append(names[tag])
            else:
                self.counts["interests_over_cap"] += 1
        return out


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (``np.unique`` of numpy 2.4 hashes and is ~100 times slower here)."""
    values = np.sort(values)
    if len(values) > 1:
        values = values[np.concatenate(([True], values[1:] != values[:-1]))]
    return values
