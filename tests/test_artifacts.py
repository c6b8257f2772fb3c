"""Versioned model folders: publication, atomic pointer, crash safety, rollback and pruning."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from tribes.artifacts import ModelStore, UnknownVersionError, load_arrays, load_json

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")


def publish(store: ModelStore, n: int = 1, **kwargs) -> list[str]:
    names = []
    for i in range(n):
        with store.new_version(**kwargs) as w:
            w.save_array("x", np.full(3, i, dtype=np.int64))
        names.append(w.name)
    return names


def age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def hidden(root: Path) -> list[str]:
    return sorted(p for p in os.listdir(root) if p.startswith("."))


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models", grace_seconds=0)


def test_write_publishes_and_sets_current(store: ModelStore) -> None:
    assert store.versions() == [] and store.current() is None and store.current_path() is None
    with store.new_version() as w:
        assert w.path.name.startswith(f".tmp-{w.name}-") and w.path.is_dir()
        assert store.current() is None and store.versions() == []  # invisible while writing
        w.save_array("ids", np.arange(5, dtype=np.int32))
        w.save_array("names", np.array(["ada", "grace"]))
        w.save_array("empty", np.zeros(0, dtype=np.float32))
        w.save_json("params", {"k": 3, "seed": np.int64(7)})
        w.write_manifest({"n_users": 5})
    assert NAME.fullmatch(w.name)
    assert store.current() == w.name and store.current_path() == store.root / w.name
    assert w.path == store.root / w.name
    assert (store.root / "current").read_text().strip() == w.name
    assert sorted(os.listdir(store.root)) == sorted(["current", w.name])  # no temp files left
    [info] = store.versions()
    assert (info.name, info.path, info.is_current) == (w.name, w.path, True)
    assert info.manifest["n_users"] == 5 and info.manifest["version"] == w.name
    assert store.manifest(w.name) == info.manifest
    datetime.strptime(info.manifest["built_at"], "%Y-%m-%dT%H:%M:%SZ")

    arrays = load_arrays(store.current_path())
    assert sorted(arrays) == ["empty", "ids", "names"]
    assert all(isinstance(a, np.memmap) for a in arrays.values())
    assert not arrays["ids"].flags.writeable
    np.testing.assert_array_equal(arrays["ids"], np.arange(5))
    assert arrays["ids"].dtype == np.int32 and arrays["names"].dtype.kind == "U"
    assert arrays["names"].tolist() == ["ada", "grace"] and arrays["empty"].shape == (0,)
    assert load_json(w.path, "params") == {"k": 3, "seed": 7}


def test_load_arrays_subset_copy_and_missing(store: ModelStore) -> None:
    [name] = publish(store)
    [only] = load_arrays(store.root / name, ["x"], mmap=False).values()
    assert type(only) is np.ndarray and only.tolist() == [0, 0, 0]
    with pytest.raises(FileNotFoundError, match=r"no array 'nope'.*has: \['x'\]"):
        load_arrays(store.root / name, ["nope"])


def test_default_manifest_and_manifest_checks(store: ModelStore) -> None:
    [name] = publish(store)
    assert set(store.manifest(name)) == {"version", "built_at"}
    with store.new_version() as w:
        with pytest.raises(ValueError, match="manifest: version 'other'"):
            w.write_manifest({"version": "other"})
        with pytest.raises(ValueError, match="reserved"):
            w.save_json("manifest", {})
        with pytest.raises(ValueError, match=re.escape("file name '../x'")):
            w.save_array("../x", np.zeros(1))
    with pytest.raises(RuntimeError, match="closed"):
        w.save_array("late", np.zeros(1))


def test_object_arrays_are_rejected(store: ModelStore) -> None:
    with store.new_version() as w:
        with pytest.raises(TypeError, match="fixed-width unicode"):
            w.save_array("names", np.array(["a", None], dtype=object))
        with pytest.raises(TypeError, match="Python objects"):
            w.save_array("rec", np.zeros(2, dtype=[("a", "i4"), ("b", "O")]))
        with pytest.raises(TypeError, match="expected a numpy array, got list"):
            w.save_array("lst", [1, 2])  # type: ignore[arg-type]
    assert load_arrays(w.path) == {} and store.current() == w.name


def test_names_are_unique_and_sorted_by_creation(store: ModelStore) -> None:
    names = publish(store, 4)
    assert len(set(names)) == 4 and names == sorted(names)
    assert [v.name for v in store.versions()] == names
    assert [v.is_current for v in store.versions()] == [False, False, False, True]


def test_activate_false_publishes_without_swapping(store: ModelStore) -> None:
    [first] = publish(store)
    [second] = publish(store, activate=False)
    assert store.current() == first and [v.name for v in store.versions()] == [first, second]


def test_exception_in_writer_leaves_current_and_no_version(store: ModelStore) -> None:
    [first] = publish(store)
    stamp = store.pointer_stamp()
    with pytest.raises(RuntimeError, match="boom"), store.new_version() as w:
        w.save_array("x", np.arange(3))
        raise RuntimeError("boom")
    assert store.current() == first and store.pointer_stamp() == stamp
    assert [v.name for v in store.versions()] == [first]
    assert not (store.root / w.name).exists() and hidden(store.root) == []


KILLED_WRITER = """
import os, sys, time
import numpy as np
from tribes.artifacts import ModelStore

root, ready = sys.argv[1], sys.argv[2]
with ModelStore(root).new_version() as w:
    w.save_array("x", np.arange(1000))
    with open(ready + ".part", "w") as fh:
        fh.write(w.name)
    os.replace(ready + ".part", ready)
    time.sleep(120)
"""


def test_writer_killed_midway_leaves_current_and_is_cleaned(
    store: ModelStore, tmp_path: Path
) -> None:
    [first] = publish(store)
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(store.root), str(ready)], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, "writer exited before it was ready"
            assert time.monotonic() < deadline, "writer never became ready"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()  # reap it: a zombie's pid still looks alive
    killed = ready.read_text()
    assert hidden(store.root) == [f".tmp-{killed}-{proc.pid}"]
    assert store.current() == first and [v.name for v in store.versions()] == [first]

    [second] = publish(store)
    assert hidden(store.root) == []
    assert store.current() == second and [v.name for v in store.versions()] == [first, second]


def test_stale_temp_of_live_pid_is_cleaned_only_when_old(store: ModelStore) -> None:
    store.root.mkdir(parents=True)
    old = store.root / f".tmp-20200101T000000Z-0001-{os.getpid()}"
    fresh = store.root / f".tmp-current.abcd-{os.getpid()}"
    old.mkdir()
    (old / "x.npy").write_bytes(b"")
    age(old / "x.npy", 7200)
    age(old, 7200)
    fresh.write_bytes(b"")
    publish(store)
    assert hidden(store.root) == [fresh.name]


def test_rollback_previous_and_named(store: ModelStore) -> None:
    v1, v2, v3 = publish(store, 3)
    assert store.rollback() == v2 and store.current() == v2
    assert store.rollback() == v1 and store.current() == v1
    with pytest.raises(ValueError, match=f"nothing to roll back to: {v1} is the oldest"):
        store.rollback()
    assert store.rollback(v3) == v3 and store.current() == v3
    with pytest.raises(UnknownVersionError, match="unknown version '20200101T000000Z-0000'") as e:
        store.rollback("20200101T000000Z-0000")
    assert isinstance(e.value, KeyError) and str(e.value).startswith("unknown version")
    with pytest.raises(ValueError, match=re.escape("not a version name: '../etc'")):
        store.set_current("../etc")
    assert store.current() == v3


def test_rollback_with_one_or_no_version_is_a_clear_error(store: ModelStore) -> None:
    with pytest.raises(ValueError, match="no current version"):
        store.rollback()
    publish(store)
    with pytest.raises(ValueError, match="nothing to roll back to"):
        store.rollback()


def test_prune_keeps_newest_and_never_current(store: ModelStore) -> None:
    v1, v2, v3, v4, v5, v6 = publish(store, 6)
    assert store.prune(4) == [v1, v2]
    assert store.rollback(v3) == v3
    assert store.prune(2) == [v4]  # the current v3 is old but kept
    assert [v.name for v in store.versions()] == [v3, v5, v6]
    assert store.prune(1) == [v5] and store.current() == v3
    assert hidden(store.root) == []
    with pytest.raises(ValueError, match="keep: must be an integer >= 1, got 0"):
        store.prune(0)


def test_prune_grace_protects_new_and_recently_retired_versions(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, grace_seconds=60)
    v1, v2, v3, v4 = publish(store, 4)
    assert store.prune(1) == []  # all published just now
    for v in (v1, v2, v3, v4):
        age(store.root / v, 3600)
    store.set_current(v2)  # v4 retired now
    store.set_current(v1)  # v2 retired now
    assert store.prune(1) == [v3]


def test_pointer_stamp_changes_on_every_swap(store: ModelStore) -> None:
    assert store.pointer_stamp() == ()
    v1, v2 = publish(store, 2)
    stamps = [store.pointer_stamp()]
    for v in (v1, v2, v1):
        store.set_current(v)
        stamps.append(store.pointer_stamp())
    assert len(set(stamps)) == len(stamps)
    assert store.pointer_stamp() == stamps[-1]


@pytest.mark.parametrize(
    "content", [b"", b"\x00\xffgarbage", b"../etc/passwd\n", b"20200101T000000Z-0000\n"]
)
def test_garbage_or_dangling_pointer_means_no_current(store: ModelStore, content: bytes) -> None:
    [name] = publish(store)
    (store.root / "current").write_bytes(content)
    assert store.current() is None and store.current_path() is None
    assert [(v.name, v.is_current) for v in store.versions()] == [(name, False)]
    with pytest.raises(ValueError, match="no current version"):
        store.rollback()


def test_mapped_arrays_survive_pruning_of_their_version(store: ModelStore) -> None:
    v1, v2, _ = publish(store, 3)
    mapped = load_arrays(store.root / v1)["x"]
    assert store.prune(1) == [v1, v2] and not (store.root / v1).exists()
    assert mapped.tolist() == [0, 0, 0]  # an API worker keeps serving what it mapped
