"""Ground-truth groups for ``tribes evaluate --labels``, in the formats planted and real data use.

Three layouts, one per file (``.gz`` read transparently; blank lines and lines starting with
``#`` or ``%`` skipped):

``jsonl``
    tribes' own: planted truth ``{"user_id": …, "tribes": [t, …]}`` (``tribes generate
    --truth``, ``--model lfr``) or circles ``{"circle_id": …, "members": [id, …]}``
    (``tribes import snap-ego --truth``).
``node-groups``
    a user id, then the group(s) it belongs to: LFR's ``community.dat`` (``node comm …``),
    SNAP's ``email-Eu-core-department-labels.txt`` (``node dept``).
``groups``
    one group per line, its members' ids: SNAP's ``com-*.cmty.txt``.

``auto`` (the default) reads ``jsonl`` when the first line starts with ``{``, ``groups`` when
the file name contains ``cmty``, and ``node-groups`` otherwise. Ids are matched as strings to
the users of the data; ids the data does not have are skipped. The first group listed for a
user is their *primary* group (for NMI and ARI); every membership counts for best-match F1.
A ``groups`` file gives primary groups only when no user is in two groups (a partition).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from ..errors import InputError
from ..jsonl import open_input

__all__ = ["LABEL_FORMATS", "load_groups"]

LABEL_FORMATS = ("auto", "jsonl", "node-groups", "groups")


def load_groups(
    path: str | Path, user_ids: np.ndarray, fmt: str = "auto"
) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """(primary group per user, -1 for none; or None when the file gives none) and the groups
    of at least two users as sorted index arrays, on ``user_ids``. O(lines + members).

    :class:`~tribes.errors.InputError` naming the file and line for a malformed line or an
    unknown ``fmt``.
    """
    if fmt not in LABEL_FORMATS:
        raise InputError(
            f"unknown format {fmt!r}; use one of {', '.join(LABEL_FORMATS)}", field="labels format"
        )
    index = {str(u): i for i, u in enumerate(user_ids)}
    primary = np.full(len(user_ids), -1, dtype=np.int64)
    groups: dict[str, list[int]] = {}  # group key -> member indices, in order of first appearance
    number: dict[str, int] = {}  # group key -> its number (the primary labels' values)
    with open_input(path) as fh:
        for line_number, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line[:1] in (b"#", b"%"):
                continue
            if fmt == "auto":
                fmt = (
                    "jsonl"
                    if line[:1] == b"{"
                    else "groups"
                    if "cmty" in Path(str(path)).name
                    else "node-groups"
                )
            try:
                user, memberships, members = _parse(line, fmt)
            except (ValueError, UnicodeDecodeError) as exc:  # orjson's decode error is a ValueError
                hint = (
                    "; a graph file's node attribute becomes labels with `tribes import graph FILE --truth OUT`"
                    if _is_graph_file(path)
                    else ""
                )
                raise InputError(f"{fmt}: {exc}{hint}", path=str(path), line=line_number) from None
            if members is not None:  # a whole group on this line
                key = members[0] or f"line {line_number}"
                groups.setdefault(key, []).extend(index[m] for m in members[1:] if m in index)
                continue
            i = index.get(user)
            if i is None or not memberships:
                continue
            for g in memberships:
                groups.setdefault(g, []).append(i)
                number.setdefault(g, len(number))
            if primary[i] < 0:
                primary[i] = number[memberships[0]]
    if fmt == "groups":
        labels = _partition(list(groups.values()), len(user_ids))
    else:
        labels = primary if number else None
    return labels, [
        np.asarray(sorted(set(g)), dtype=np.int64) for g in groups.values() if len(set(g)) >= 2
    ]


def _parse(line: bytes, fmt: str) -> tuple[str | None, list[str] | None, list[str] | None]:
    """One data line as (user, their groups, None) or (None, None, [group key or "", members…])."""
    if fmt == "jsonl":
        return _json_row(line)
    tokens = line.decode("utf-8").split()
    if fmt == "groups":
        return None, None, ["", *tokens]
    if len(tokens) < 2:
        raise ValueError("expected a user id and at least one group")
    return tokens[0], tokens[1:], None


def _json_row(line: bytes) -> tuple[str | None, list[str] | None, list[str] | None]:
    """(user, their groups, None) for planted truth, (None, None, [circle id, members…]) for a
    circle; ValueError for anything else."""
    row = orjson.loads(line)
    if not isinstance(row, dict):
        raise ValueError("expected a JSON object")
    if "members" in row:
        if not isinstance(row["members"], list):
            raise ValueError("'members' must be a list of user ids")
        key = f"circle {row['circle_id']}" if "circle_id" in row else ""
        return None, None, [key, *(str(m) for m in row["members"])]
    if "user_id" in row:
        tribes = row.get("tribes") or []
        if not isinstance(tribes, list):
            raise ValueError("'tribes' must be a list of group ids")
        return str(row["user_id"]), [str(t) for t in tribes], None
    raise ValueError("expected 'user_id' and 'tribes', or 'members'")


def _partition(groups: list[list[int]], n: int) -> np.ndarray | None:
    """(n,) group number per user from whole groups, -1 for none; None when some user is in
    two groups (then only best-match F1 applies)."""
    primary = np.full(n, -1, dtype=np.int64)
    for k, members in enumerate(groups):
        members = np.unique(np.asarray(members, dtype=np.int64))
        if (primary[members] >= 0).any():
            return None
        primary[members] = k
    return primary


def _is_graph_file(path: str | Path) -> bool:
    """Whether ``path`` is named as a file ``tribes import graph`` reads (:data:`FORMATS`)."""
    from tribes.importers.graph import FORMATS  # (networkx: only on this error's path)

    name = Path(str(path)).name.lower().removesuffix(".gz").removesuffix(".bz2")
    return name.endswith(tuple(FORMATS))
