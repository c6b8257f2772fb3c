"""Versioned model folders under the models root (``TRIBES_MODELS``) with an atomic ``current``.

``root/current`` is a small text file naming the served version; each finished version is a
folder ``root/20261125T184512Z-3f9a/`` holding ``manifest.json`` and ``.npy`` arrays
(memory-mappable, never pickled). A writer builds a version in a hidden
``root/.tmp-<version>-<pid>`` folder, fsyncs it and renames it into place, then replaces
``current`` (temp file, fsync, ``os.replace``, fsync of the root). A run that fails or is killed
at any point leaves ``current`` and the visible versions untouched; the next writer removes its
leftovers. Readers poll the one-``stat`` :meth:`ModelStore.pointer_stamp` and reload on change.
Names are a UTC second plus a hex counter, so they sort by the time their build started.

**Pruning rule.** :meth:`ModelStore.prune` never deletes the current version, the ``keep``
newest, nor a version whose folder was touched less than ``grace_seconds`` ago. A folder is
touched when it is published *and when it stops being current*, so a worker that read the old
pointer just before a swap still finds the folder while opening it. Arrays already mapped
survive deletion anyway (POSIX keeps unlinked files alive while mapped).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

__all__ = [
    "FolderWriter",
    "ModelStore",
    "UnknownVersionError",
    "VersionInfo",
    "VersionWriter",
    "load_arrays",
    "load_json",
]

_VERSION = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4,8}")
_TEMP = re.compile(r"\.tmp-(.+)-(\d+)")  # .tmp-<what>-<pid>: versions, pointers, deletions
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY


class UnknownVersionError(KeyError):
    """A well-formed version name with no finished folder under the models root."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class VersionInfo:
    """A finished version: its name, folder, parsed manifest (``{}`` if unreadable), served?"""

    name: str
    path: Path
    manifest: dict
    is_current: bool


class ModelStore:
    """Versioned model folders under ``root`` with an atomic ``current`` pointer file.

    Parameters
    ----------
    root : str or Path
        The models root. Nothing is read or created until a method needs it.
    grace_seconds : float, default 300
        :meth:`prune` keeps versions published or retired (replaced as current) this recently.
    stale_seconds : float, default 3600
        A temp folder is removed by the next writer when its pid is dead (at once) or, if the
        pid is alive (a concurrent writer, or a reused pid), once untouched this long.
    """

    def __init__(
        self, root: str | Path, *, grace_seconds: float = 300.0, stale_seconds: float = 3600.0
    ) -> None:
        self.root = Path(root)
        self.grace_seconds = grace_seconds
        self.stale_seconds = stale_seconds

    def new_version(self, *, activate: bool = True) -> VersionWriter:
        """Start writing a new version; use the result as a context manager.

        Creates ``root/.tmp-<version>-<pid>`` now (after removing stale temp folders). Leaving
        the ``with`` block normally publishes the version and, if ``activate``, makes it current;
        leaving it with an exception removes the temp folder.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._clean_stale()
        name = self._next_name()
        path = self.root / f".tmp-{name}-{os.getpid()}"
        path.mkdir()
        return VersionWriter(self, name, path, activate=activate)

    def versions(self) -> list[VersionInfo]:
        """Finished versions, oldest first (temp folders are never listed)."""
        if not self.root.is_dir():
            return []
        current = self.current()
        out = []
        for name in sorted(os.listdir(self.root)):
            path = self.root / name
            if _VERSION.fullmatch(name) and path.is_dir():
                try:
                    manifest = load_json(path, "manifest")
                except (OSError, orjson.JSONDecodeError):
                    manifest = None
                manifest = manifest if isinstance(manifest, dict) else {}
                out.append(VersionInfo(name, path, manifest, name == current))
        return out

    def current(self) -> str | None:
        """The served version's name; ``None`` if the pointer is missing, garbage or dangling."""
        try:
            with open(self.root / "current", "rb") as fh:
                raw = fh.read(1024)
        except OSError:
            return None
        name = raw.decode("ascii", "replace").strip()
        return name if _VERSION.fullmatch(name) and (self.root / name).is_dir() else None

    def current_path(self) -> Path | None:
        """The served version's folder, or ``None``."""
        name = self.current()
        return None if name is None else self.root / name

    def manifest(self, version: str) -> dict:
        """The parsed ``manifest.json`` of ``version`` (errors as in :meth:`set_current`)."""
        return load_json(self._version_path(version), "manifest")

    def set_current(self, version: str) -> None:
        """Atomically point ``current`` at ``version``.

        Raises
        ------
        ValueError
            ``version`` is not a version name.
        UnknownVersionError
            (a ``KeyError``) no finished folder has that name.
        """
        self._version_path(version)
        old = self.current()
        tmp = self.root / f".tmp-current.{secrets.token_hex(4)}-{os.getpid()}"
        try:
            _write_synced(tmp, lambda fh: fh.write(version.encode("ascii") + b"\n"))
            os.replace(tmp, self.root / "current")
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.root)
        if old is not None and old != version:  # start the retired version's grace period
            with contextlib.suppress(OSError):
                os.utime(self.root / old)

    def rollback(self, version: str | None = None) -> str:
        """Make ``version`` (default: the version just before current) current; return it."""
        if version is None:
            current = self.current()
            if current is None:
                raise ValueError(f"nothing to roll back: no current version under {self.root}")
            names = [v.name for v in self.versions()]
            index = names.index(current)
            if index == 0:
                raise ValueError(
                    f"nothing to roll back to: {current} is the oldest version under {self.root}"
                )
            version = names[index - 1]
        self.set_current(version)
        return version

    def prune(self, keep: int) -> list[str]:
        """Delete versions beyond the ``keep`` newest; return the deleted names, oldest first.

        Never deletes the current version nor one inside its grace period (see module notes).
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep: must be an integer >= 1, got {keep!r}")
        deleted = []
        for info in self.versions()[:-keep]:
            try:
                age = time.time() - info.path.stat().st_mtime
            except FileNotFoundError:
                continue
            if info.name == self.current() or age < self.grace_seconds:
                continue
            trash = self.root / f".tmp-{info.name}.deleted-{os.getpid()}"
            os.rename(info.path, trash)  # vanishes from versions() at once; rmtree is not atomic
            shutil.rmtree(trash, ignore_errors=True)
            deleted.append(info.name)
        if deleted:
            _fsync_dir(self.root)
        return deleted

    def pointer_stamp(self) -> tuple:
        """``(mtime_ns, inode, size)`` of ``current``, ``()`` if missing; one ``os.stat``.

        Every swap installs a new file, so the inode changes even within one mtime tick.
        """
        try:
            st = os.stat(self.root / "current")
        except OSError:
            return ()
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def _version_path(self, version: str) -> Path:
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            raise ValueError(f"not a version name: {version!r} (like 20261125T184512Z-3f9a)")
        path = self.root / version
        if not path.is_dir():
            known = ", ".join(v.name for v in self.versions()[-5:]) or "none"
            raise UnknownVersionError(f"unknown version {version!r} (newest: {known})")
        return path

    def _next_name(self) -> str:
        """``<UTC second>-<hex>``: after every name (finished or in progress) of the same second."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        taken = []
        for entry in os.listdir(self.root):
            match = _TEMP.fullmatch(entry)
            name = match.group(1) if match else entry
            if name.startswith(stamp) and _VERSION.fullmatch(name):
                taken.append(int(name.rsplit("-", 1)[1], 16))
        counter = max(taken) + 1 if taken else secrets.randbelow(0x1000)
        return f"{stamp}-{counter:04x}"

    def _clean_stale(self) -> list[str]:
        removed = []
        for entry in os.listdir(self.root):
            match = _TEMP.fullmatch(entry)
            if match is None:
                continue
            path = self.root / entry
            try:  # a folder's mtime moves each time its writer adds a file
                idle = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if _pid_alive(int(match.group(2))) and idle < self.stale_seconds:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(entry)
        return removed


class VersionWriter:
    """Writes one version into its temp folder; returned by :meth:`ModelStore.new_version`.

    ``name`` is the version name; ``path`` the temp folder while writing, then the published
    folder once the ``with`` block has succeeded.
    """

    def __init__(self, store: ModelStore, name: str, path: Path, *, activate: bool = True) -> None:
        self.store = store
        self.name = name
        self.path = path
        self.activate = activate
        self._open = True
        self._has_manifest = False

    def save_array(self, name: str, array: np.ndarray) -> None:
        """Write ``name.npy`` (no pickles, fsynced). Object arrays raise ``TypeError``."""
        target = self._target(name, ".npy")
        if not isinstance(array, np.ndarray):
            raise TypeError(f"array {name!r}: expected a numpy array, got {type(array).__name__}")
        if array.dtype.hasobject:
            raise TypeError(
                f"array {name!r}: dtype {array.dtype} holds Python objects, which cannot be "
                "memory-mapped or loaded without pickle; convert strings to a fixed-width "
                "unicode array (np.asarray(values, dtype=str)) or to offsets + bytes"
            )
        _write_synced(target, lambda fh: np.save(fh, array, allow_pickle=False))

    def save_json(self, name: str, obj: Any) -> None:
        """Write ``name.json`` (orjson, indented, numpy scalars allowed, fsynced)."""
        if name == "manifest":
            raise ValueError("save_json: 'manifest' is reserved, use write_manifest")
        self._write_json(name, obj)

    def write_manifest(self, manifest: dict) -> None:
        """Write ``manifest.json``, adding ``version`` and ``built_at`` (RFC 3339 UTC) if absent.

        A version left without a manifest gets one with only these two fields.
        """
        data = dict(manifest)
        if data.setdefault("version", self.name) != self.name:
            raise ValueError(f"manifest: version {data['version']!r} is not {self.name!r}")
        data.setdefault("built_at", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self._write_json("manifest", data)
        self._has_manifest = True

    def __enter__(self) -> VersionWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if not self._open:
            return
        final = self.store.root / self.name
        try:
            if exc_type is not None:
                return
            if not self._has_manifest:
                self.write_manifest({})
            _fsync_dir(self.path)
            os.rename(self.path, final)  # fails if the name is taken (its manifest is there)
            self.path = final
            _fsync_dir(self.store.root)
            os.utime(final)  # the grace period starts at publication
        finally:
            self._open = False
            if self.path != final:
                shutil.rmtree(self.path, ignore_errors=True)
        if self.activate:
            self.store.set_current(self.name)

    def _target(self, name: str, suffix: str) -> Path:
        if not self._open:
            raise RuntimeError(f"version {self.name} is already closed")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"file name {name!r}: use letters, digits, '_', '.', '-'")
        return self.path / f"{name}{suffix}"

    def _write_json(self, name: str, obj: Any) -> None:
        target = self._target(name, ".json")
        data = orjson.dumps(obj, option=_JSON_OPTIONS)
        _write_synced(target, lambda fh: fh.write(data))


class FolderWriter(VersionWriter):
    """Writes a model into a plain folder (``TribeModel.save``): same files, no versions.

    Files are written in place; the folder is created if needed.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        super().__init__(ModelStore(path.parent), path.name, path, activate=False)

    def write_manifest(self, manifest: dict) -> None:
        data = dict(manifest)
        data.setdefault("version", "unversioned")
        data.setdefault("built_at", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self._write_json("manifest", data)

    def __exit__(self, *_: object) -> None:  # nothing to publish
        self._open = False


def load_arrays(
    path: str | Path, names: Iterable[str] | None = None, mmap: bool = True
) -> dict[str, np.ndarray]:
    """Load ``name.npy`` arrays of a version folder (all of them when ``names`` is None).

    With ``mmap`` the arrays are read-only ``np.memmap`` views: pages are shared between worker
    processes and read lazily. Pickled (object) arrays are refused.
    """
    path = Path(path)
    if names is None:
        names = sorted(p.stem for p in path.glob("*.npy"))
    out, mode = {}, "r" if mmap else None
    for name in names:
        try:
            out[name] = np.load(path / f"{name}.npy", mmap_mode=mode, allow_pickle=False)
        except FileNotFoundError:
            have = sorted(p.stem for p in path.glob("*.npy"))
            raise FileNotFoundError(f"no array {name!r} in {path} (has: {have})") from None
    return out


def load_json(path: str | Path, name: str) -> Any:
    """Parse ``name.json`` in a version folder."""
    return orjson.loads((Path(path) / f"{name}.json").read_bytes())


def _write_synced(path: Path, write: Callable[[BinaryIO], object]) -> None:
    with open(path, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
