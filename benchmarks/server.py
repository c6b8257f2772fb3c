"""Start gunicorn with the project's ``gunicorn.conf.py`` on a free 127.0.0.1 port; always stop it.

>>> with Gunicorn(ctx, "wsgi:app", name="tribes", env={...}) as server:   # doctest: +SKIP
...     server.get("/livez")
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .common import REPO, Context, bench_env, display_path, free_port

__all__ = ["Gunicorn", "request", "socket_inodes"]


def socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets process ``pid`` holds (Linux /proc; empty if it is gone).

    A process still starting opens and closes files while we look: those are skipped."""
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    return inodes


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Gunicorn:
    """gunicorn ``-c gunicorn.conf.py APP`` in its own session, bound to 127.0.0.1:<free port>.

    ``worker_class``/``workers``/``threads`` go through the ``TRIBES_*`` variables the config
    reads, so every server of a comparison runs under the same settings. On exit (also on an
    error) the master gets SIGTERM, and after ``stop_timeout`` its process group gets SIGKILL.
    """

    def __init__(
        self,
        ctx: Context,
        app: str,
        *,
        name: str,
        env: dict[str, str] | None = None,
        worker_class: str = "gthread",
        workers: int = 2,
        threads: int = 4,
        ready_path: str = "/livez",
        start_timeout: float = 60.0,
        stop_timeout: float = 15.0,
    ):
        self.ctx, self.app, self.name = ctx, app, name
        self.port = free_port()
        self.metrics_dir = ctx.root / "tmp" / f"metrics-{name}-{self.port}"
        self.env = {
            "TRIBES_BIND": f"127.0.0.1:{self.port}",
            "TRIBES_WORKER_CLASS": worker_class,
            "TRIBES_WORKERS": str(workers),
            "TRIBES_THREADS": str(threads),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            **(env or {}),
        }
        self.ready_path, self.start_timeout, self.stop_timeout = (
            ready_path,
            start_timeout,
            stop_timeout,
        )
        self.proc: subprocess.Popen | None = None
        self.log_path = ctx.logs / f"gunicorn-{name}-{worker_class}-{self.port}.log"
        self.command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app]

    def __enter__(self) -> Gunicorn:
        shown = {k: v for k, v in self.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        self.ctx.log_command(self.command, {**shown, "TRIBES_BIND": "127.0.0.1:PORT"})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=bench_env(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn {self.name} exited with {self.proc.returncode}: {self.log_tail()}"
                )
            try:
                status, _ = request(self.port, "GET", self.ready_path, timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(
            f"gunicorn {self.name}: {self.ready_path} not 200 within {self.start_timeout:.0f} s: "
            f"{self.log_tail()}"
        )

    def workers(self) -> list[int]:
        """Pids of the master's worker processes (from /proc; empty if unavailable)."""
        if self.proc is None:
            return []
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in children.split()]

    def cpu_seconds(self) -> float | None:
        """User + system CPU seconds used so far by the worker processes (Linux /proc), or None.

        On a machine shared with other work, CPU per request is steadier than requests per
        second: it does not count the time a worker waits for a core."""
        total, tick = 0.0, os.sysconf("SC_CLK_TCK")
        workers = self.workers()
        if not workers:
            return None
        for pid in workers:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return total

    def connection_split(self) -> list[int] | None:
        """Established client connections held by each worker, most first (Linux /proc).

        gunicorn workers share one listening socket and accept whatever they can: with
        keep-alive a connection stays with the worker that accepted it for the whole run.
        """
        owner: dict[str, int] = {}
        workers = self.workers()
        for pid in workers:
            owner.update(dict.fromkeys(socket_inodes(pid), pid))
        if not workers:
            return None
        counts = dict.fromkeys(workers, 0)
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                parts = line.split()
                local_port = int(parts[1].rsplit(":", 1)[1], 16)
                if parts[3] == "01" and local_port == self.port and parts[9] in owner:
                    counts[owner[parts[9]]] += 1
        return sorted(counts.values(), reverse=True)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(self.stop_timeout)
        finally:
            # The master and any worker left in the session we started.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def log_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {display_path(self.log_path)})"

    def get(self, path: str) -> tuple[int, bytes]:
        return request(self.port, "GET", path)
