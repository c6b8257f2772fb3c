"""Reading SNAP ego-network files from a folder or a streamed tar, and parsing each format."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tribes.errors import InputError

__all__ = [
    "EXTS",
    "iter_files",
    "list_egos",
    "node_key",
    "parse_circles",
    "parse_edges",
    "parse_feat",
    "parse_featnames",
]

EXTS = ("edges", "feat", "egofeat", "featnames", "circles")


def node_key(node_id: str) -> tuple[int, int, str]:
    """Sort key: numeric ids by value, then other ids by text."""
    return (0, int(node_id), node_id) if node_id.isdigit() else (1, 0, node_id)


def _split_name(filename: str) -> tuple[str, str] | None:
    base = filename.rsplit("/", 1)[-1]
    ego, dot, ext = base.rpartition(".")
    return (ego, ext) if dot and ego and ext in EXTS else None


def _is_tar(src: Path) -> bool:
    if src.is_dir():
        return False
    if not src.is_file():
        raise InputError("no such file or folder", path=str(src))
    if not tarfile.is_tarfile(src):
        raise InputError("expected a folder of ego files or a tar archive of them", path=str(src))
    return True


def list_egos(src: str | Path) -> set[str]:
    """The egos with at least one file in ``src`` (a tar is streamed once, headers only)."""
    path = Path(src)
    if not _is_tar(path):
        return {parts[0] for f in path.rglob("*.*") if (parts := _split_name(f.name))}
    with tarfile.open(path, mode="r|*") as tar:
        return {parts[0] for m in tar if m.isfile() and (parts := _split_name(m.name))}


def iter_files(
    src: str | Path, egos: set[str] | None, exts: set[str]
) -> Iterator[tuple[str, str, str, bytes]]:
    """Yield ``(display name, ego, ext, content)`` for the wanted files of the wanted egos.

    A folder is read in (ego, ext) order, a tar in archive order, which it streams without
    extracting; the stream stops once every wanted file of a limited ego set has been read.
    """
    path = Path(src)
    if not _is_tar(path):
        found = sorted(
            (node_key(parts[0]), parts[1], f)
            for f in path.rglob("*.*")
            if (parts := _split_name(f.name))
            and parts[1] in exts
            and (egos is None or parts[0] in egos)
            and f.is_file()
        )
        for (_, _, ego), ext, f in found:
            yield str(f), ego, ext, f.read_bytes()
        return
    remaining = None if egos is None else {(e, x) for e in egos for x in exts}
    with tarfile.open(path, mode="r|*") as tar:
        for member in tar:
            parts = _split_name(member.name)
            if not member.isfile() or parts is None or parts[1] not in exts:
                continue
            if egos is not None and parts[0] not in egos:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            with handle:
                data = handle.read()
            yield f"{path}[{member.name}]", parts[0], parts[1], data
            if remaining is not None:
                remaining.discard(parts)
                if not remaining:
                    break


def parse_edges(data: bytes, name: str) -> list[bytes]:
    """``"a b"`` lines → the flat token list ``[a0, b0, a1, b1, …]`` (blank lines skipped)."""
    tokens = data.split()
    lines = data.splitlines()
    # Common case: as many lines as pairs, each with exactly two columns.
    if len(tokens) == 2 * len(lines) and all(len(line.split(None, 2)) == 2 for line in lines):
        return tokens
    out: list[bytes] = []
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise InputError(
                f"expected 'SRC DST', got {len(parts)} columns", path=name, line=lineno
            )
        out.extend(parts)
    return out


def parse_feat(
    data: bytes, name: str, *, with_ids: bool
) -> tuple[list[bytes], np.ndarray, np.ndarray, int]:
    """Binary feature rows → ``(node ids, row indices, column indices, width)`` of the 1s.

    With ``with_ids`` each row starts with the node id (``.feat``), else it has none
    (``.egofeat``). Rows of single-space-separated 0/1 digits take a fast path.
    """
    ids: list[bytes] = []
    bits: list[bytes] = []
    width = -1
    for lineno, line in enumerate(data.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if with_ids:
            node, *rest = line.split(None, 1)
            values = rest[0] if rest else b""
        else:
            node, values = b"", line
        row = values[::2]
        if len(values) != 2 * len(row) - 1 or values[1::2].strip(b" ") or row.strip(b"01"):
            tokens = values.split()
            row = b"".join(tokens)
            if len(row) != len(tokens) or row.strip(b"01"):
                raise InputError("feature values must be 0 or 1", path=name, line=lineno)
        if width < 0:
            width = len(row)
        elif len(row) != width:
            raise InputError(
                f"{len(row)} features, earlier rows have {width}", path=name, line=lineno
            )
        ids.append(node)
        bits.append(row)
    if not bits:
        return ids, np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    matrix = np.frombuffer(b"".join(bits), np.uint8).reshape(len(bits), width)
    rows, cols = np.nonzero(matrix == ord("1"))
    return ids, rows.astype(np.int64), cols.astype(np.int64), width


def parse_featnames(data: bytes, name: str) -> list[str]:
    """``"index name"`` lines → names by column index (a missing index reads as ``""``)."""
    text = _decode(data, name)
    names: dict[int, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        index, _, feature = line.strip().partition(" ")
        if not index.isdigit():
            raise InputError(f"expected 'INDEX NAME', got {line[:60]!r}", path=name, line=lineno)
        names[int(index)] = feature.strip()
    size = max(names) + 1 if names else 0
    return [names.get(i, "") for i in range(size)]


def parse_circles(data: bytes, name: str) -> list[tuple[str, list[str]]]:
    """``"label<TAB>node<TAB>…"`` lines → ``[(label, members)]``, members deduplicated."""
    out: list[tuple[str, list[str]]] = []
    for line in _decode(data, name).splitlines():
        if not line.strip():
            continue
        parts = line.strip("\r\n").split("\t")
        if len(parts) == 1:
            parts = line.split()
        members = [m.strip() for m in parts[1:] if m.strip()]
        out.append((parts[0].strip(), list(dict.fromkeys(members))))
    return out


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid UTF-8 at byte {exc.start}", path=name) from None
