"""Shared pieces: the run context, measured subprocesses, machine facts, small statistics."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = [
    "REPO",
    "THREAD_CAPS",
    "Context",
    "Measured",
    "Section",
    "Target",
    "bench_env",
    "fmt_ms",
    "free_port",
    "machine_info",
    "percentiles",
    "run_measured",
    "versions",
]

REPO = Path(__file__).resolve().parent.parent
# Every subprocess (recompute above all) gets one BLAS/OpenMP thread: the figures are then
# per core and the load generator keeps its share of a small machine.
THREAD_CAPS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TRIBES_RECOMPUTE_THREADS": "1",
}


@dataclass
class Target:
    """One row of the targets table."""

    what: str
    target: str
    measured: str
    ok: bool | None  # None: not measured
    at: str

    @property
    def verdict(self) -> str:
        return "n/a" if self.ok is None else ("PASS" if self.ok else "**MISS**")


@dataclass
class Section:
    """A section of RESULTS.md: Markdown lines and the targets it measured."""

    title: str
    lines: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    error: str | None = None

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: list[str], rows: list[list]) -> None:
        self.lines.append("| " + " | ".join(header) + " |")
        self.lines.append("|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|")
        for row in rows:
            self.lines.append("| " + " | ".join(str(x) for x in row) + " |")
        self.lines.append("")


@dataclass
class Context:
    """What one run of the harness knows: options, folders, the datasets built, commands run."""

    sizes: list[int]
    quick: bool
    root: Path  # var/bench
    seed: int = 1
    commands: list[str] = field(default_factory=list)
    datasets: dict = field(default_factory=dict)  # n -> datasets.Dataset
    builds: dict = field(default_factory=dict)  # n -> build measurements (recompute section)
    probes: dict = field(default_factory=dict)  # n -> graph probe result
    notes: list[str] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        path = self.root / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_command(self, cmd: list[str], env: dict[str, str] | None = None) -> str:
        shown = " ".join(shlex.quote(display_path(c)) for c in cmd)
        if env:
            shown = (
                " ".join(f"{k}={shlex.quote(display_path(v))}" for k, v in env.items())
                + " "
                + shown
            )
        if shown not in self.commands:
            self.commands.append(shown)
        return shown


def display_path(text: str) -> str:
    """Paths under the repository shown relative to it (``.venv/bin/python``, ``var/bench/…``)."""
    text = str(text)
    prefix = str(REPO) + os.sep
    return text.replace(prefix, "").replace(str(REPO), ".")


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(THREAD_CAPS)
    env.pop("TRIBES_API_KEYS", None)
    env.pop("TRIBES_API_KEYS_FILE", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Measured:
    returncode: int
    wall_s: float
    peak_rss_mib: float
    stdout: str
    stderr_tail: str


def run_measured(
    ctx: Context,
    cmd: list[str],
    *,
    timeout: float,
    log_name: str,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> Measured:
    """Run ``cmd`` from the repository root; wall time and the child's own peak RSS (wait4).

    Output goes to ``var/bench/logs/<log_name>.{out,err}``. The child runs in its own session
    and its process group is killed when ``timeout`` passes or the harness is interrupted.
    """
    ctx.log_command(cmd)
    out_path, err_path = ctx.logs / f"{log_name}.out", ctx.logs / f"{log_name}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=bench_env(env),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        reaped = False
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    reaped = True
                    break
                if time.perf_counter() - start > timeout:
                    raise TimeoutError(
                        f"{log_name}: still running after {timeout:.0f} s: killed "
                        f"(see {display_path(err_path)})"
                    )
                time.sleep(0.02)
        finally:
            if not reaped:
                _kill_group(proc.pid)
                proc.wait()
    wall = time.perf_counter() - start
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(errors="replace")
    tail = "\n".join(err_path.read_text(errors="replace").splitlines()[-15:])
    if check and code != 0:
        raise RuntimeError(f"{log_name}: exit code {code}: {tail}")
    return Measured(code, wall, usage.ru_maxrss / 1024.0, stdout, tail)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(values_ms: list[float]) -> dict[str, float]:
    """Median, p90, p99 and max (nearest-rank on the sorted sample, no interpolation)."""
    if not values_ms:
        return {
            "n": 0,
            "median": math.nan,
            "p90": math.nan,
            "p99": math.nan,
            "max": math.nan,
            "mean": math.nan,
        }
    a = np.sort(np.asarray(values_ms, dtype=float))

    def rank(q: float) -> float:
        return float(a[min(len(a) - 1, max(0, math.ceil(q * len(a)) - 1))])

    return {
        "n": len(a),
        "median": float(np.median(a)),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": float(a[-1]),
        "mean": float(a.mean()),
    }


def fmt_ms(x: float) -> str:
    if x != x:  # nan
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def machine_info() -> dict[str, str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpus": f"{os.cpu_count()} (usable by this process: {usable})",
        "effective cores": effective_cores(),
        "cpu model": model,
        "RAM": ram,
        "OS": platform.platform(),
        "filesystem of var/bench": _fs_type(REPO / "var"),
    }


_SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(8_000_000):\n    x += i\nprint(time.perf_counter() - t)"


def effective_cores() -> str:
    """How many CPU-bound processes really run at once: one alone vs ``cpu_count`` together.

    A VM or a cgroup quota may show 2 CPUs that deliver the work of one; the API figures
    (workers and load generator on the same machine) depend on this more than on the count.
    """
    n = os.cpu_count() or 1
    cmd = [sys.executable, "-c", _SPIN]
    try:
        alone = float(
            subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
        )
        start = time.perf_counter()
        procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(n)]
        for proc in procs:
            proc.wait(timeout=120)
        together = time.perf_counter() - start
    except (OSError, ValueError, subprocess.SubprocessError):
        return "?"
    return (
        f"{n * alone / together:.2f} (a CPU-bound Python loop: {alone:.2f} s alone, {n} at once "
        f"{together:.2f} s)"
    )


def _fs_type(path: Path) -> str:
    try:
        best, kind = "", "?"
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1]
            if str(path.resolve()).startswith(mount) and len(mount) > len(best):
                best, kind = mount, parts[2]
        return f"{kind} (mounted at {best})"
    except OSError:
        return "?"


def versions() -> dict[str, str]:
    out = {
        "python": platform.python_version() + f" ({sys.executable.replace(str(REPO) + '/', '')})"
    }
    for dist in ("numpy", "scipy", "igraph", "flask", "gunicorn", "tribes", "orjson", "sqlalchemy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    import sqlite3

    out["sqlite"] = sqlite3.sqlite_version
    return out
