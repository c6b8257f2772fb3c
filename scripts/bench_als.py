"""ALS candidates on a store: the approximate index (faiss IVF) against exact scoring.

    .venv/bin/python scripts/bench_als.py sqlite:///var/bench/n100000/tribes.db

Prints both sources' wall time (ALS fit included) and the share of the exact candidate pairs
the approximate source also finds. Builds graph, affinity and tribes first (not timed).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from tribes import model as model_module
from tribes.candidates import als
from tribes.params import Params
from tribes.sparse import binary
from tribes.store import Store
from tribes.store.reads import read_snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", help="store URL")
    parser.add_argument("--probe", type=int, default=Params().als_ann_probe, help="cells searched per user")
    args = parser.parse_args()
    with Store.open(args.db) as store:
        snap = read_snapshot(store)
    params = Params(learn_weights=0, als_ann_probe=args.probe)
    sources = model_module.generate_candidates
    model_module.generate_candidates = lambda ctx: {}  # the context only: no candidate sources
    try:
        ctx, _, _ = model_module._candidates(snap, params, False)
    finally:
        model_module.generate_candidates = sources
    timed = {}
    for name, p in (("approximate", replace(params, als_exact_max_users=0)),
                    ("exact", replace(params, als_exact_max_users=10**9))):
        start = time.perf_counter()
        timed[name] = als(replace(ctx, params=p))
        print(f"{name}: {time.perf_counter() - start:.1f} s, {timed[name].nnz:,} pairs", flush=True)
    both = binary(timed["exact"]).multiply(binary(timed["approximate"])).sum()
    print(f"users {snap.n_users:,}; approximate finds {both / max(timed['exact'].nnz, 1):.1%} of the exact pairs")


if __name__ == "__main__":
    main()
