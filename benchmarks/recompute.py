"""Section 1: generate → ingest → recompute per size; stage times, peak RSS, growth, bytes/edge."""

from __future__ import annotations

import itertools
import math

from . import datasets
from .common import Context, Section, Target

__all__ = ["run"]

BYTES_PER_EDGE_TARGET = 12.0  # tribes/graph.py: InterestGraph.nbytes "the ≤ 12 bytes/edge budget"


def _stages(ctx: Context, sizes: list[int]) -> list[str]:
    """The stages the manifests report, in their order (a new stage shows up by itself)."""
    out: list[str] = []
    for n in sizes:
        for name in ctx.builds[n]["manifest"].get("timings", {}):
            if name not in out:
                out.append(name)
    return out


def _per_10x(a: float, b: float, n1: int, n2: int) -> tuple[float, float]:
    """(growth factor per 10x users, exponent k of N^k) between two sizes."""
    if a <= 0 or b <= 0 or n2 == n1:
        return math.nan, math.nan
    k = math.log(b / a) / math.log(n2 / n1)
    return 10**k, k


def run(ctx: Context, section: Section) -> None:
    sizes = sorted(ctx.sizes)
    for n in sizes:
        datasets.build(ctx, n)
        probe = datasets.graph_probe(ctx, ctx.datasets[n])
        print(
            f"[recompute] n={n:,}: graph {probe['nbytes'] / 2**20:.1f} MiB for {probe['edges']:,} edges = "
            f"{probe['bytes_per_edge']:.1f} bytes/edge",
            flush=True,
        )

    section.add(
        "Each stage is a subprocess (`python -m tribes …`) with one BLAS/OpenMP thread; wall time "
        "from the harness, peak RSS of that process from `wait4` (`ru_maxrss`). The recompute's own "
        "stage timings come from the new version's `manifest.json` (`timings`): its `peak_rss_mib` "
        "is the process peak *so far*, so a stage's own footprint is where the figure jumps.",
        "",
    )
    rows = []
    for n in sizes:
        b = ctx.builds[n]
        s, rep, man, probe = b["steps"], b["ingest_report"], b["manifest"], ctx.probes[n]
        total = sum(s[k].wall_s for k in ("generate", "ingest", "recompute"))
        counts = man.get("counts", {})
        rows.append(
            [
                f"{n:,}",
                f"{rep['lines']:,}",
                f"{counts.get('users', 0):,}",
                f"{counts.get('follows', 0):,}",
                f"{counts.get('posts', 0):,}",
                f"{counts.get('threads', 0):,}",
                f"{probe['edges']:,}",
                f"{b['events_bytes'] / 2**20:,.0f} / {b['db_bytes'] / 2**20:,.0f}",
                f"{s['generate'].wall_s:.1f}",
                f"{s['ingest'].wall_s:.1f}",
                f"{s['recompute'].wall_s:.1f}",
                f"{total:.1f}",
                f"{s['ingest'].peak_rss_mib:,.0f}",
                f"{s['recompute'].peak_rss_mib:,.0f}",
            ]
        )
    section.add("### Per size", "")
    section.table(
        [
            "users",
            "events",
            "users stored",
            "follows",
            "posts",
            "threads",
            "graph edges",
            "file / store MiB",
            "generate s",
            "ingest s",
            "recompute s",
            "total wall s",
            "ingest peak RSS MiB",
            "recompute peak RSS MiB",
        ],
        rows,
    )
    section.add(
        "*graph edges* = nnz(replies) + nnz(mentions) + nnz(follows) of `tribes.graph.build_graph` on "
        "the same store.",
        "",
    )

    section.add("### Recompute stages (from manifest.json)", "")
    header = ["stage"] + [
        h for n in sizes for h in (f"{n:,}: s", f"{n:,}: share", f"{n:,}: peak RSS MiB")
    ]
    rows = []
    for stage in _stages(ctx, sizes):
        row = [stage]
        for n in sizes:
            timings = ctx.builds[n]["manifest"].get("timings", {})
            total = sum(t["seconds"] for t in timings.values()) or 1.0
            t = timings.get(stage, {})
            row += [
                f"{t.get('seconds', math.nan):.2f}",
                f"{100 * t.get('seconds', 0) / total:.0f} %",
                f"{t.get('peak_rss_mib', math.nan):,.0f}",
            ]
        rows.append(row)
    row = ["**sum of stages**"]
    for n in sizes:
        timings = ctx.builds[n]["manifest"].get("timings", {})
        row += [f"{sum(t['seconds'] for t in timings.values()):.2f}", "100 %", ""]
    rows.append(row)
    row = ["process start, imports, write, prune"]
    for n in sizes:
        timings = ctx.builds[n]["manifest"].get("timings", {})
        row += [
            f"{ctx.builds[n]['steps']['recompute'].wall_s - sum(t['seconds'] for t in timings.values()):.2f}",
            "",
            "",
        ]
    rows.append(row)
    section.table(header, rows)
    cands = {n: ctx.builds[n]["manifest"].get("candidates", {}) for n in sizes}
    if any(cands.values()):
        section.add(
            "Candidates per source (pairs before ranking): "
            + "; ".join(
                f"{n:,} users: " + ", ".join(f"{k} {v:,}" for k, v in c.items())
                for n, c in cands.items()
            ),
            "",
        )

    section.add("### Interaction graph memory", "")
    rows = []
    for n in sizes:
        p = ctx.probes[n]
        per = ", ".join(
            f"{k} {p['nnz'][k]:,}" for k in ("replies", "mentions", "follows", "interaction")
        )
        dtypes = p["parts"]["interaction"]["dtypes"]
        rows.append(
            [
                f"{n:,}",
                per,
                f"{p['nbytes'] / 2**20:,.1f}",
                f"{p['bytes_per_edge']:.2f}",
                f"{p['nbytes'] / max(p['nnz']['interaction'], 1):.2f}",
                dtypes,
                f"{p['snapshot_s']:.1f} / {p['graph_s']:.1f}",
                f"{p['peak_rss_mib']:,.0f}",
            ]
        )
    section.table(
        [
            "users",
            "nnz per matrix",
            "`graph.nbytes()` MiB",
            "bytes / edge",
            "bytes / interaction nnz",
            "data/indices/indptr dtypes",
            "snapshot / build_graph s",
            "probe peak RSS MiB",
        ],
        rows,
    )
    section.add(
        "`graph.nbytes()` counts everything the graph holds for users × users: one CSR pattern "
        "(indptr, int32 indices) with the float32 interaction strength, a uint8 follows/talk flag "
        "per entry and a float32 talk weight per talk entry (`tribes.graph.UserGraph`); edges are "
        "nnz(replies) + nnz(mentions) + nnz(follows), counted as separate relations.",
        "",
    )
    largest = sizes[-1]
    bpe = ctx.probes[largest]["bytes_per_edge"]
    section.targets.append(
        Target(
            "Interaction graph bytes per edge (`graph.nbytes()/edges`)",
            f"≤ {BYTES_PER_EDGE_TARGET:g} (graph.py budget)",
            f"{bpe:.2f}",
            bpe <= BYTES_PER_EDGE_TARGET,
            f"{largest:,} users",
        )
    )

    if len(sizes) > 1:
        section.add("### Growth per 10× users", "")
        section.add(
            "Factor by which a figure grows per 10× users between consecutive sizes "
            "(`(b/a)^(1/log10(n2/n1))`), and the exponent *k* of N^k (1 = linear).",
            "",
        )
        rows = []
        for n1, n2 in itertools.pairwise(sizes):
            b1, b2 = ctx.builds[n1], ctx.builds[n2]
            figures = {
                "events": (b1["ingest_report"]["lines"], b2["ingest_report"]["lines"]),
                "ingest wall": (b1["steps"]["ingest"].wall_s, b2["steps"]["ingest"].wall_s),
                "recompute wall": (
                    b1["steps"]["recompute"].wall_s,
                    b2["steps"]["recompute"].wall_s,
                ),
                "recompute peak RSS": (
                    b1["steps"]["recompute"].peak_rss_mib,
                    b2["steps"]["recompute"].peak_rss_mib,
                ),
                "graph bytes": (ctx.probes[n1]["nbytes"], ctx.probes[n2]["nbytes"]),
            }
            t1, t2 = b1["manifest"].get("timings", {}), b2["manifest"].get("timings", {})
            for stage in _stages(ctx, [n1, n2]):
                if stage in t1 and stage in t2:
                    figures[f"stage {stage}"] = (t1[stage]["seconds"], t2[stage]["seconds"])
            for what, (a, b) in figures.items():
                g, k = _per_10x(a, b, n1, n2)
                rows.append(
                    [
                        f"{n1:,} → {n2:,}",
                        what,
                        f"{a:,.2f}" if isinstance(a, float) else f"{a:,}",
                        f"{b:,.2f}" if isinstance(b, float) else f"{b:,}",
                        f"×{g:.1f}",
                        f"{k:.2f}",
                    ]
                )
        section.table(["sizes", "figure", "small", "large", "per 10× users", "exponent k"], rows)
