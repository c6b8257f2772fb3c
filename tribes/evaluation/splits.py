"""Train/test splits of an event log, with the future expressed on the train snapshot.

- :func:`time_split`: events up to a cut (a timestamp, or the quantile ``fraction`` of the
  interaction times) train the model; what happens after the cut is the truth.
- :func:`edge_holdout_split`: for data without time (SNAP ego networks): a seeded random
  share of follow edges is held out; mutual pairs are held out whole.

Truth matrices use the train snapshot's user and thread numbering; users or threads that
did not exist at the cut are left out (no model could suggest them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..events import EdgeEvent, Event, EventError, PostEvent, to_json, validate
from ..jsonl import open_input
from ..model import snapshot_from
from ..snapshot import Snapshot

__all__ = ["Split", "edge_holdout_split", "read_events", "time_split"]


@dataclass(frozen=True, eq=False)
class Split:
    """A train snapshot and what came after (all (U, U) or (U, T) binary CSR).

    Attributes
    ----------
    future_partners : new two-way exchanges: u and v each replied to the other after the cut
        and had not exchanged replies before (symmetric). Edge hold-out: held-out mutual follows.
    future_replies : u replied to v after the cut, for the first time
    future_follows : u followed v after the cut (new), or held-out follows
    future_threads : u posted after the cut in thread t that existed before, for the first time
    """

    kind: str
    train: Snapshot
    cut: float | None
    future_partners: sp.csr_matrix
    future_replies: sp.csr_matrix
    future_follows: sp.csr_matrix
    future_threads: sp.csr_matrix

    def counts(self) -> dict[str, int]:
        return {
            "train_users": self.train.n_users,
            "train_threads": self.train.n_threads,
            "future_partner_pairs": int(self.future_partners.nnz // 2),
            "future_reply_pairs": int(self.future_replies.nnz),
            "future_follows": int(self.future_follows.nnz),
            "future_thread_joins": int(self.future_threads.nnz),
        }


def read_events(source: str | Path | Iterable[dict]) -> list[Event]:
    """Validated events from a JSON Lines file or an iterable of dicts (invalid ones raise)."""
    if isinstance(source, str | Path):
        from ..events import parse_line

        out = []
        with open_input(source) as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        out.append(parse_line(line))
                    except EventError as exc:
                        from ..errors import InputError

                        raise InputError(
                            exc.problem, path=str(source), line=number, field=exc.field
                        ) from None
        return out
    return [validate(e) for e in source]


def _binary(rows, cols, shape) -> sp.csr_matrix:
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1
    return m


def _thread_roots(posts: list[PostEvent]) -> dict[str, str]:
    """Post id → root of its reply chain (the earliest known ancestor)."""
    parent = {p.id: p.reply_to for p in posts}
    root: dict[str, str] = {}
    for pid in parent:
        chain, cur = [], pid
        while cur in parent and parent[cur] is not None and cur not in root and len(chain) < 10_000:
            chain.append(cur)
            cur = parent[cur]
        top = root.get(cur, cur)
        for c in chain:
            root[c] = top
        root.setdefault(pid, top)
    return root


def time_split(
    events: Iterable[Event], *, cut: float | None = None, fraction: float = 0.8
) -> Split:
    """Split at ``cut`` (Unix seconds) or at the ``fraction`` quantile of interaction times."""
    events = list(events)
    times = np.array(
        [e.ts for e in events if isinstance(e, PostEvent | EdgeEvent)], dtype=np.float64
    )
    if cut is None:
        if len(times) == 0:
            raise ValueError("no timestamped interactions to split")
        cut = float(np.quantile(times, fraction))
    train_events = [e for e in events if e.ts <= cut]
    snap = snapshot_from([to_json(e) for e in train_events])
    index = snap.user_index()
    n = snap.n_users
    posts = [e for e in events if isinstance(e, PostEvent)]
    author = {p.id: p.author for p in posts}
    roots = _thread_roots(posts)
    thread_pos = {t: i for i, t in enumerate(snap.thread_ids)}

    def pairs(before: bool) -> set[tuple[int, int]]:
        out = set()
        for p in posts:
            if (p.ts <= cut) != before or p.reply_to is None:
                continue
            u, v = index.get(p.author), index.get(author.get(p.reply_to, ""))
            if u is not None and v is not None and u != v:
                out.add((u, v))
        return out

    past, future = pairs(True), pairs(False)
    past_any = past | {(v, u) for u, v in past}
    new_replies = {(u, v) for u, v in future if (u, v) not in past_any}
    two_way = {(u, v) for u, v in future if (v, u) in future and (u, v) not in past_any}
    followed = {
        (index[e.src], index[e.dst])
        for e in train_events
        if isinstance(e, EdgeEvent) and e.relation == "follow" and e.src in index and e.dst in index
    }
    new_follows = {
        (index[e.src], index[e.dst])
        for e in events
        if isinstance(e, EdgeEvent)
        and e.type == "follow"
        and e.ts > cut
        and e.src in index
        and e.dst in index
        and (index[e.src], index[e.dst]) not in followed
    }
    posted_before = set(zip(snap.post_author.tolist(), snap.post_thread.tolist(), strict=True))
    joins = set()
    for p in posts:
        if p.ts <= cut:
            continue
        u, t = index.get(p.author), thread_pos.get(roots.get(p.id, p.id))
        if u is not None and t is not None and (u, t) not in posted_before:
            joins.add((u, t))

    def m(pairs_, shape):
        rows = [a for a, _ in pairs_]
        cols = [b for _, b in pairs_]
        return _binary(rows, cols, shape)

    return Split(
        kind="time",
        train=snap,
        cut=cut,
        future_partners=m(two_way, (n, n)),
        future_replies=m(new_replies, (n, n)),
        future_follows=m(new_follows, (n, n)),
        future_threads=m(joins, (n, snap.n_threads)),
    )


def edge_holdout_split(
    events: Iterable[Event], *, fraction: float = 0.1, seed: int = 0, min_follows: int = 2
) -> Split:
    """Hold out a seeded ``fraction`` of the follows of users with at least ``min_follows``.

    A mutual pair is held out whole (both directions) and counts as a future partner pair.
    """
    events = list(events)
    follows = sorted(
        {(e.src, e.dst) for e in events if isinstance(e, EdgeEvent) and e.type == "follow"}
    )
    out_degree: dict[str, int] = {}
    for s, _ in follows:
        out_degree[s] = out_degree.get(s, 0) + 1
    follow_set = set(follows)
    rng = np.random.default_rng(seed)
    draw = rng.random(len(follows)) < fraction
    held: set[tuple[str, str]] = set()
    for (s, d), pick in zip(follows, draw, strict=True):
        if pick and out_degree[s] >= min_follows and (d, s) not in held:
            held.add((s, d))
            if (d, s) in follow_set:
                held.add((d, s))
    train = [
        e
        for e in events
        if not (isinstance(e, EdgeEvent) and e.type == "follow" and (e.src, e.dst) in held)
    ]
    snap = snapshot_from([to_json(e) for e in train])
    index = snap.user_index()
    n = snap.n_users
    pairs = [(index[s], index[d]) for s, d in held if s in index and d in index]
    pair_set = set(pairs)
    mutual = [(a, b) for a, b in pairs if (b, a) in pair_set]
    empty_threads = sp.csr_matrix((n, snap.n_threads), dtype=np.float32)
    return Split(
        kind="edges",
        train=snap,
        cut=None,
        future_partners=_binary([a for a, _ in mutual], [b for _, b in mutual], (n, n)),
        future_replies=sp.csr_matrix((n, n), dtype=np.float32),
        future_follows=_binary([a for a, _ in pairs], [b for _, b in pairs], (n, n)),
        future_threads=empty_threads,
    )
