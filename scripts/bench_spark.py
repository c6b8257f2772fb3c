"""Wall time and peak memory of `tribes recompute` with each engine on a synthetic network.

    .venv/bin/python scripts/bench_spark.py --users 10000 [--users 100000] [--master local[2]]

For each size: generate (seed 1) → ingest into a fresh SQLite store → recompute with the local
engine (default parameters, then ``learn_weights=0``) and the Spark engine. Each recompute is
a subprocess; peak RSS is the largest *sum* over its process tree (Python driver, the JVM,
Python workers), sampled every 0.2 s from /proc. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRIBES = [sys.executable, "-m", "tribes"]


def _tree_rss_kib(pid: int) -> int:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def run(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak tree RSS MiB) of one command; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr.read()[-3000:]}")
    return wall, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, action="append", required=True)
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    rows = []
    for n in args.users:
        with tempfile.TemporaryDirectory(prefix=f"bench-spark-{n}-") as tmp:
            env = {**os.environ, "TRIBES_DB": f"sqlite:///{tmp}/tribes.db", "TRIBES_MODELS": f"{tmp}/models",
                   "TRIBES_SPARK_DRIVER_MEMORY": args.driver_memory}
            events = f"{tmp}/events.jsonl"
            subprocess.run([*TRIBES, "generate", "--users", str(n), "--seed", "1", "--out", events], env=env, check=True)
            subprocess.run([*TRIBES, "-q", "ingest", events], env=env, check=True, stdout=subprocess.DEVNULL)
            runs = [] if args.skip_local else [("local (default: learns weights)", []),
                                               ("local, learn_weights=0", ["--set", "learn_weights=0"])]
            runs.append((f"spark {args.master}", ["--engine", "spark", "--master", args.master]))
            for label, extra in runs:
                wall, peak = run([*TRIBES, "-q", "recompute", *extra], env)
                rows.append((n, label, wall, peak))
                models = Path(tmp) / "models"
                manifest = json.loads((models / (models / "current").read_text().strip() / "manifest.json").read_text())
                stages = ", ".join(f"{k} {v['seconds']:.1f}" for k, v in manifest["timings"].items())
                print(f"{n:,} users, {label}: {wall:.1f} s, peak RSS {peak:,.0f} MiB; stages (s): {stages}",
                      file=sys.stderr, flush=True)
    print("| users | engine | wall s | peak RSS MiB (process tree) |")
    print("|---:|---|---:|---:|")
    for n, label, wall, peak in rows:
        print(f"| {n:,} | {label} | {wall:.1f} | {peak:,.0f} |")


if __name__ == "__main__":
    main()
