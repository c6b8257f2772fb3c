"""Run as a subprocess: read a store, build its interest graph, measure bytes per edge and PPR.

Edges are nnz(replies) + nnz(mentions) + nnz(follows) (``tribes.graph.relation_matrices``);
bytes are ``InterestGraph.nbytes()``: everything the graph holds for users×users.

``python -m benchmarks.graph_probe --db URL [--sources 100] [--seed 0]`` prints one JSON line.
A separate process keeps the graph's memory out of the harness and gives its own peak RSS.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.graph_probe")
    parser.add_argument("--db", required=True, help="store URL")
    parser.add_argument("--sources", type=int, default=100, help="PPR sources (seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from tribes.graph import build_graph, relation_matrices
    from tribes.params import Params
    from tribes.ppr import ppr_forward_push
    from tribes.store import Store
    from tribes.store.reads import read_snapshot

    params = Params()
    t0 = time.perf_counter()
    with Store.open(args.db) as store:
        snap = read_snapshot(store)
    t1 = time.perf_counter()
    graph = build_graph(snap, params)
    t2 = time.perf_counter()

    # Edges: one per (row, column) of each relation, as the graph stood when it was four matrices.
    relations = dict(
        zip(("replies", "mentions", "follows"), relation_matrices(snap, params), strict=True)
    )
    nnz = {name: int(m.nnz) for name, m in relations.items()}
    edges = sum(nnz.values())
    users = graph.users
    nnz.update(
        interaction=int(graph.interaction.nnz), pattern=users.nnz, talk=int(users.talk_weight.size)
    )
    del relations
    # What the graph holds: one CSR pattern, with per-entry strength and relation flags, and the
    # talk weights of the entries that have one. "interaction" is the pattern with its strengths.
    parts = {
        "interaction": {
            "data": int(users.strength.nbytes),
            "indices": int(users.indices.nbytes),
            "indptr": int(users.indptr.nbytes),
            "dtypes": f"{users.strength.dtype}/{users.indices.dtype}/{users.indptr.dtype}",
        },
        "relations": {"data": int(users.relations.nbytes), "dtypes": str(users.relations.dtype)},
        "talk": {"data": int(users.talk_weight.nbytes), "dtypes": str(users.talk_weight.dtype)},
    }
    nbytes = int(graph.nbytes())
    assert nbytes == sum(v for part in parts.values() for k, v in part.items() if k != "dtypes")

    g = graph.interaction.tocsr()
    degree = np.diff(g.indptr)
    eligible = np.flatnonzero(degree > 0)
    rng = np.random.default_rng(args.seed)
    sources = rng.choice(eligible, size=min(args.sources, len(eligible)), replace=False)
    times, touched = [], []
    if len(sources):
        ppr_forward_push(
            g.indptr,
            g.indices,
            g.data,
            int(sources[0]),
            alpha=params.ppr_alpha,
            epsilon=params.ppr_epsilon,
        )  # warm-up
    for s in sources:
        start = time.perf_counter()
        nodes, _ = ppr_forward_push(
            g.indptr, g.indices, g.data, int(s), alpha=params.ppr_alpha, epsilon=params.ppr_epsilon
        )
        times.append((time.perf_counter() - start) * 1000.0)
        touched.append(int(nodes.size))
    print(
        json.dumps(
            {
                "users": int(snap.n_users),
                "posts": int(snap.n_posts),
                "snapshot_s": round(t1 - t0, 3),
                "graph_s": round(t2 - t1, 3),
                "nnz": nnz,
                "edges": edges,
                "nbytes": nbytes,
                "parts": parts,
                "bytes_per_edge": nbytes / edges if edges else None,
                "users_with_out_edges": len(eligible),
                "ppr": {
                    "alpha": params.ppr_alpha,
                    "epsilon": params.ppr_epsilon,
                    "sources": len(sources),
                    "ms": times,
                    "touched": touched,
                    "mean_degree": float(degree[sources].mean()) if len(sources) else 0.0,
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
