"""The project's ``gunicorn.conf.py``: one listening socket per worker (SO_REUSEPORT), and a second
server on a taken port refused instead of silently sharing its traffic."""

from __future__ import annotations

import gc
import os
import runpy
import socket
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest

from benchmarks.common import Context, bench_env
from benchmarks.server import Gunicorn, socket_inodes
from tests.api_fixtures import make_world

REPO = Path(__file__).resolve().parents[1]


def _settings(monkeypatch, tmp_path, **env: str) -> dict:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    for name in ("TRIBES_BIND", "TRIBES_REUSE_PORT", "TRIBES_WORKER_CLASS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(REPO / "gunicorn.conf.py"))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, True),  # gthread by default
        ({"TRIBES_BIND": "0.0.0.0:8080"}, True),
        (
            {"TRIBES_WORKER_CLASS": "sync"},
            False,
        ),  # a connection per request: one shared queue is better
        ({"TRIBES_WORKER_CLASS": "sync", "TRIBES_REUSE_PORT": "1"}, True),
        ({"TRIBES_REUSE_PORT": "0"}, False),
        ({"TRIBES_BIND": "unix:/tmp/tribes.sock"}, False),
    ],
)
def test_reuse_port_is_on_for_keep_alive_workers_on_tcp_unless_set(
    monkeypatch, tmp_path, env, expected
):
    assert _settings(monkeypatch, tmp_path, **env)["reuse_port"] is expected


def _listeners(pid: int, port: int) -> int:
    """Listening TCP sockets on ``port`` among the file descriptors of process ``pid``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(fields[9])
    return len(inodes & socket_inodes(pid))


def _settled_listeners(pids: list[int], port: int, timeout: float = 30.0) -> list[int]:
    """``_listeners`` of each pid, read again until two reads agree (or ``timeout`` seconds pass):
    the server answers once one worker is ready, while the other may still be starting."""
    deadline = time.monotonic() + timeout
    last = [_listeners(pid, port) for pid in pids]
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = [_listeners(pid, port) for pid in pids]
        if now == last and all(now):
            break
        last = now
    return last


@pytest.mark.slow
def test_each_worker_listens_and_a_second_server_on_the_port_is_refused(tmp_path_factory):
    world = make_world(tmp_path_factory, "reuse-port")
    world.close()
    ctx = Context(sizes=[], quick=True, root=tmp_path_factory.mktemp("gunicorn"))
    env = {"TRIBES_DB": world.db, "TRIBES_MODELS": str(world.models)}
    with Gunicorn(ctx, "wsgi:app", name="first", env=env, workers=2, threads=2) as server:
        workers = server.workers()
        assert len(workers) == 2
        # Each worker holds its own listener; the master none (it would take no connections).
        assert _settled_listeners(workers, server.port) == [1, 1]
        assert _listeners(server.proc.pid, server.port) == 0
        second = subprocess.run(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=REPO,
            env=bench_env({**env, **server.env}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert f"127.0.0.1:{server.port} is already in use" in second.stderr
        status, _ = server.get("/readyz")
        assert status == 200


def test_socket_inodes_skips_descriptors_closed_while_it_looks(monkeypatch):
    with socket.socket() as sock:
        inode = str(os.fstat(sock.fileno()).st_ino)
        assert inode in socket_inodes(os.getpid())
        real = os.readlink

        def closing_meanwhile(path):
            if Path(path).name == "0":
                raise FileNotFoundError(path)  # as when a starting worker closes a file mid-walk
            return real(path)

        monkeypatch.setattr(os, "readlink", closing_meanwhile)
        assert inode in socket_inodes(os.getpid())
    assert socket_inodes(2**22 + 1) == set()  # no such process


class _Cycle:
    me: object = None


def test_each_worker_freezes_what_it_made_at_start_out_of_the_collectors_walks(
    monkeypatch, tmp_path
):
    settings = _settings(monkeypatch, tmp_path)
    before = gc.get_freeze_count()
    try:
        garbage = _Cycle()
        garbage.me = garbage  # start-up garbage only the cyclic collector frees
        gone = weakref.ref(garbage)
        del garbage
        settings["post_worker_init"](None)
        assert gc.get_freeze_count() > before  # this test process's modules and objects
        assert gone() is None  # collected first, not frozen for good
    finally:
        gc.unfreeze()
