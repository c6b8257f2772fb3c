"""``python -m benchmarks`` (``make bench``): measure tribes and write ``benchmarks/RESULTS.md``.

Examples
--------
    .venv/bin/python -m benchmarks                        # 10k and 100k users (~15 min here)
    .venv/bin/python -m benchmarks --quick                # tiny sizes, short runs: checks the harness
    .venv/bin/python -m benchmarks --only api,latency     # reuses var/bench/n10000 if it is there
    .venv/bin/python -m benchmarks --sizes 1000000        # 1M users: ~50 min, ~8 GB RAM (see --help)
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from . import api, ingest, latency, recompute
from .common import REPO, THREAD_CAPS, Context, Section, display_path, machine_info, versions

SECTIONS = {
    "recompute": ("1. Recompute", recompute.run),
    "api": ("2. API", api.run),
    "ingest": ("3. Ingest", ingest.run),
    "latency": ("4. Latency", latency.run),
}
QUICK_SIZES = [1000, 3000]


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(s.replace("_", "")) for s in text.split(",") if s.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not sizes or sizes[0] < 100:
        raise argparse.ArgumentTypeError("sizes must be at least 100 users")
    return sizes


def _only(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}"
        )
    return [s for s in SECTIONS if s in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n")[0],
        epilog="--sizes 1000000 works but takes long: ~21M events; measured once on this 2-vCPU machine "
        "(busy): generate 2 min, ingest 37 min (before the ingest rework), recompute 8 min 05 s with a "
        "6.2 GiB peak RSS (session 6; 41 min and 18.4 GB at first), and ~7 GB of disk under var/bench/n1000000/.",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=None,
        help="comma-separated user counts (default 10000,100000; --quick: 1000,3000)",
    )
    parser.add_argument(
        "--only",
        type=_only,
        default=list(SECTIONS),
        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "RESULTS.md",
        help="Markdown file to write (default benchmarks/RESULTS.md)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and short runs, to check the harness end to end in a few minutes",
    )
    return parser


def _terminate(signum, frame):  # SIGTERM → SystemExit, so every `finally` stops its servers
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else [10_000, 100_000])
    signal.signal(signal.SIGTERM, _terminate)
    root = REPO / "var" / "bench"
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root / "tmp", ignore_errors=True)
    (root / "tmp").mkdir()
    shutil.rmtree(root / "logs", ignore_errors=True)
    ctx = Context(sizes=sizes, quick=args.quick, root=root)
    invocation = ".venv/bin/python -m benchmarks " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    started, started_at = time.perf_counter(), datetime.now(UTC)
    print(
        f"benchmarks: sizes {', '.join(f'{n:,}' for n in sizes)}; sections {', '.join(args.only)}"
        + (" (quick)" if args.quick else ""),
        flush=True,
    )

    sections: list[Section] = []
    try:
        for name in args.only:
            title, run = SECTIONS[name]
            section = Section(title)
            sections.append(section)
            t0 = time.perf_counter()
            try:
                run(ctx, section)
            except Exception as exc:  # report it and go on with the next section
                section.error = f"{type(exc).__name__}: {exc}"
                print(f"[{name}] FAILED: {section.error}", file=sys.stderr, flush=True)
                traceback.print_exc()
            section.add(f"*Section time: {time.perf_counter() - t0:,.0f} s.*", "")
    finally:
        shutil.rmtree(root / "tmp", ignore_errors=True)
        text = render(ctx, sections, invocation, started_at, time.perf_counter() - started)
        out = args.out if args.out.is_absolute() else Path.cwd() / args.out
        text += hand_written(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"\nwrote {display_path(out)}\n")
        print(_targets_table(sections))
    return 1 if any(s.error for s in sections) else 0


def _targets_table(sections: list[Section]) -> str:
    lines = ["| what | target | measured | result | measured at |", "|---|---|---|---|---|"]
    for s in sections:
        for t in s.targets:
            lines.append(f"| {t.what} | {t.target} | {t.measured} | {t.verdict} | {t.at} |")
        if s.error:
            lines.append(
                f"| {s.title} | – | section failed: {s.error.splitlines()[0][:120]} | **ERROR** | – |"
            )
    return "\n".join(lines)


HAND_WRITTEN = "(hand-written"


def hand_written(path: Path) -> str:
    """The hand-written tail of an earlier results file, kept across runs: everything from its
    first ``## `` heading containing ``(hand-written``; empty when there is none."""
    if not path.is_file():
        return ""
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("## ") and HAND_WRITTEN in line:
            return "\n" + "".join(lines[i:])
    return ""


def render(
    ctx: Context, sections: list[Section], invocation: str, started_at: datetime, seconds: float
) -> str:
    out = ["# tribes benchmarks", ""]
    out.extend(
        [
            f"Written by `{invocation.strip()}` on {started_at:%Y-%m-%d %H:%M} UTC in {seconds / 60:.1f} min"
            + (
                " — **quick mode: tiny sizes and short runs; these figures only prove the harness works**"
                if ctx.quick
                else ""
            )
            + ". Sizes: "
            + ", ".join(f"{n:,}" for n in ctx.sizes)
            + " users "
            "(synthetic, `tribes generate --seed 1`).",
            "",
        ]
    )
    out += ["## Targets", "", _targets_table(sections), ""]
    out.append(
        "A MISS is a MISS: targets are checked against the figures below as measured, at the size "
        "named in the last column."
    )
    out.append("")
    out += ["## Machine and versions", "", "| | |", "|---|---|"]
    for k, v in {**machine_info(), **versions()}.items():
        out.append(f"| {k} | {v} |")
    out.append("")
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.error:
            out += [f"**This section failed:** `{s.error}` (logs under `var/bench/logs/`).", ""]
        out += s.lines
    if ctx.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in ctx.notes] + [""]
    out += [
        "## How to reproduce",
        "",
        "```bash",
        invocation.strip() + "   # wrote this file",
        "make bench                                        # default sizes 10k,100k",
        ".venv/bin/python -m benchmarks --quick            # the harness end to end in a few minutes",
        ".venv/bin/python -m benchmarks --sizes 1000000    # 1M users: ~50 min (ingest most of it), ~8 GB peak RSS",
        ".venv/bin/python -m benchmarks --only api,latency # reuse var/bench/n<N> when built before",
        "```",
        "",
        "Data, stores and models live under `var/bench/n<N>/`, logs under `var/bench/logs/`, temporary "
        "stores under `var/bench/tmp/` (removed at the end). Every subprocess runs with "
        + ", ".join(f"`{k}={v}`" for k, v in THREAD_CAPS.items())
        + "; servers bind 127.0.0.1 on a free port (`PORT` below) and are stopped at the end of their "
        "measurement, also on errors.",
        "",
        "Commands run (each distinct one once, in order of first use, from the repository root; `.venv/bin/python -m tribes` is the "
        "`tribes` command):",
        "",
        "```",
    ]
    out += [display_path(c) for c in ctx.commands]
    out += ["```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
