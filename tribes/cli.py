"""The ``tribes`` command line. Each sub-command is a thin shell over one library call.

Exit codes: 0 ok, 2 bad input (the message names the file and line), 1 internal error or a
store that cannot be reached.
Global options (``--db``, ``--models``, ``--quiet``) work before or after the sub-command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from . import __version__
from .config import Settings, describe_settings
from .errors import InputError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tribes`` console script and ``python -m tribes``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("db", None), ("models", None), ("quiet", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_OK
    try:
        settings = Settings.load({"db": args.db, "models": args.models})
    except ValueError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    try:
        return args.handler(args, settings) or EXIT_OK
    except InputError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("tribes: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `tribes generate | head`): not an error of ours.
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # the last line of defence: one clear line, not a traceback
        if os.environ.get("TRIBES_DEBUG"):
            raise
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            # The store cannot be reached or opened: say which, without the driver's wall of text.
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            return _fail(f"store unavailable: {reason} (check --db / TRIBES_DB)", EXIT_INTERNAL)
        return _fail(
            f"internal error: {type(exc).__name__}: {exc} (set TRIBES_DEBUG=1 for a traceback)",
            EXIT_INTERNAL,
        )


def _fail(message: str, code: int) -> int:
    print(f"tribes: error: {message}", file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    store_opts = argparse.ArgumentParser(add_help=False)
    store_opts.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        help="store URL (env TRIBES_DB; default sqlite:///var/tribes.db)",
    )
    store_opts.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars or summaries",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[store_opts])
    common.add_argument(
        "--models",
        default=argparse.SUPPRESS,
        help="model folder (env TRIBES_MODELS; default var/models)",
    )

    parser = argparse.ArgumentParser(
        prog="tribes",
        parents=[common],
        description="Conversation-first tribe matching: build the interest graph, find tribes, "
        "suggest people to talk with and conversations to join.",
        epilog="Run `tribes COMMAND --help` for a command's options; `tribes settings` lists "
        "every setting and its environment variable.",
    )
    parser.add_argument("--version", action="version", version=f"tribes {__version__}")
    # Only `handler` here: the option actions are shared with every sub-command (parents=),
    # and a default set on them would overwrite a value given before the sub-command.
    parser.set_defaults(handler=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(
        name: str, handler: Callable, help: str, parents=(common,)
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=list(parents), help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = command(
        "ingest",
        _cmd_ingest,
        "Validate JSON Lines events and store them (one transaction per file).",
    )
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="JSON Lines file(s), .gz allowed; - for stdin"
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="store the valid lines and report the rest (default: any problem stores nothing)",
    )
    p.add_argument("--json", action="store_true", help="print each file's report as JSON on stdout")

    p = command("import", _cmd_import, "Convert a public dump into tribes events (JSON Lines).")
    p.add_argument(
        "format",
        choices=["stackexchange", "snap-ego", "edgelist", "graph"],
        help="dump format (graph: a GraphML, GML, GEXF, Pajek or node-link JSON file)",
    )
    p.add_argument("src", help="the dump: a folder, a .tar.gz or a file (edgelist: - reads stdin)")
    p.add_argument("--out", default="-", help="output JSON Lines file (default: stdout)")
    p.add_argument(
        "--truth",
        help="write ground-truth groups (snap-ego circles, graph: a node attribute) "
        "as JSON Lines here",
    )
    p.add_argument(
        "--truth-attr",
        metavar="NAME",
        help="graph: the node attribute holding each node's group(s) (default: the first of "
        "community, block, group, club, department, cluster, … the nodes have)",
    )
    p.add_argument(
        "--time-attr",
        metavar="NAME",
        help="graph: the edge attribute holding each edge's time, Unix seconds or RFC 3339 "
        "(default: timestamp, ts, time, datetime or date if present)",
    )
    p.add_argument("--limit-egos", type=int, help="snap-ego: read only the first N ego networks")
    p.add_argument(
        "--undirected",
        action="store_true",
        default=None,
        help="snap-ego, edgelist, graph: edges are undirected (follows both ways); "
        "snap-ego default: auto (sources named *facebook*); graph default: as the file says",
    )
    p.add_argument(
        "--active-only",
        action="store_true",
        help="stackexchange: user events only for people who posted or commented",
    )
    p.add_argument(
        "--kind",
        choices=["follow", "message"],
        default="follow",
        help="edgelist, graph: lines (edges) are follows, or messages (posts and replies)",
    )
    p.add_argument("--ts", help="timestamp for data without time (RFC 3339 or Unix seconds)")
    p.add_argument(
        "--columns",
        metavar="SPEC",
        help="edgelist: what each field is, from src, dst, ts and - (ignored), e.g. "
        "src,dst,-,ts for KONECT (default: SRC DST [TS])",
    )
    p.add_argument(
        "--sep",
        help="edgelist: field separator, one character such as , or '\\t' "
        "(default: whitespace; , for *.csv)",
    )
    p.add_argument(
        "--header",
        action="store_true",
        help="edgelist: skip the first line that is not a comment (column names)",
    )

    p = command(
        "generate", _cmd_generate, "Write a synthetic network with planted tribes (JSON Lines)."
    )
    p.add_argument("--users", type=int, default=1000, help="number of users (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="-", help="output file (default: stdout)")
    p.add_argument("--truth", help="write the planted memberships as JSON Lines here")
    p.add_argument(
        "--model",
        choices=["synth", "lfr", "partition"],
        default="synth",
        help="synth: tribes' own generator (default); lfr: networkx's LFR benchmark graph; "
        "partition: a planted partition of small groups (see --community-size)",
    )
    p.add_argument(
        "--mu",
        type=float,
        help="lfr, partition: share of each user's edges leaving their community (default 0.3)",
    )
    p.add_argument(
        "--kind",
        choices=["follow", "message"],
        help="lfr, partition: edges as follows both ways (default) or as threads of replies over time",
    )
    p.add_argument(
        "--average-degree", type=float, help="lfr, partition: mean degree (default 10; partition 8)"
    )
    p.add_argument(
        "--community-size",
        metavar="MIN-MAX",
        help="lfr: community sizes (default 20 to max(50, users/10)); partition: group sizes, "
        "drawn uniformly in this range (default 6-14)",
    )
    p.add_argument("--max-degree", type=int, help="lfr: largest degree (default min(100, users/8))")
    p.add_argument(
        "--degree-exponent",
        type=float,
        help="lfr: power-law exponent of the degrees, LFR's tau1 (default 2.5; > 1)",
    )
    p.add_argument(
        "--size-exponent",
        type=float,
        help="lfr: power-law exponent of the community sizes, LFR's tau2 (default 1.5; > 1)",
    )

    p = command(
        "demo",
        _cmd_demo,
        "Fill an empty store with the synthetic demo network and recompute if no model exists.",
    )
    p.add_argument("--users", type=int, default=3000, help="number of users (default 3000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument(
        "--force",
        action="store_true",
        help="ingest and recompute even when the store has users and a model exists",
    )

    p = command(
        "recompute",
        _cmd_recompute,
        "Rebuild graph, tribes and suggestions from the store; publish a new model version.",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a hyperparameter (repeatable); `tribes params` lists them",
    )
    p.add_argument("--keep", type=int, help="versions to keep (env TRIBES_KEEP_MODELS; default 5)")
    p.add_argument("--engine", help="local (default) or spark (env TRIBES_ENGINE)")
    p.add_argument(
        "--master",
        help="Spark master URL for --engine spark (env TRIBES_SPARK_MASTER; default local[*])",
    )
    p.add_argument(
        "--export",
        help="--engine spark: where the Parquet snapshot goes; shared storage on a "
        "cluster (env TRIBES_SPARK_EXPORT; default a temporary folder)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="after publishing, print every decision learning made (values tried, held-out "
        "recalls, leads in paired standard errors; also in the version's manifest)",
    )

    command("models", _cmd_models, "List model versions (the current one is marked *).")
    p = command(
        "rollback",
        _cmd_rollback,
        "Serve an earlier model version (default: the one before current).",
    )
    p.add_argument("version", nargs="?", help="version name from `tribes models`")

    p = command("suggest", _cmd_suggest, "Print suggestions as JSON Lines, one object per user.")
    p.add_argument("users", nargs="*", metavar="USER", help="user ids")
    p.add_argument("--users-file", help="file with one user id per line (- for stdin)")
    p.add_argument(
        "--kind", choices=["people", "conversations"], required=True, help="what to suggest"
    )
    p.add_argument("--limit", type=int, default=20, help="items per user (default 20, at most 100)")

    p = command("tribes", _cmd_tribes, "Print the tribes of the current model.")
    p.add_argument("--members", action="store_true", help="include member ids")
    p.add_argument(
        "--json", action="store_true", help="one JSON object per tribe (default: a table)"
    )

    p = command(
        "evaluate",
        _cmd_evaluate,
        "Evaluate tribes against baselines offline: one table of every metric x every model.",
        parents=(store_opts,),
    )
    p.add_argument(
        "events", help="JSON Lines events (e.g. from `tribes import` or `tribes generate`)"
    )
    p.add_argument(
        "--split",
        choices=["time", "edges"],
        default="time",
        help="time: train before the cut, test after; edges: hold out follows (data without time)",
    )
    p.add_argument(
        "--cut",
        default="0.8",
        help="time split: a fraction of the interaction times (0.8) or a timestamp, or several "
        "comma-separated (0.6,0.7,0.8: one evaluation per cut, metrics averaged over every "
        "user evaluated, with their range); edges split: the share of follows held out "
        "(default 0.1 when --cut is 0.8)",
    )
    p.add_argument("-k", type=int, default=20, help="list length (default 20)")
    p.add_argument(
        "--models",
        dest="compare",
        metavar="MODELS",
        help="comma-separated models (default: all): "
        "tribes,popularity,friends-of-friends,content,als,ppr,random",
    )
    p.add_argument(
        "--labels",
        help="ground-truth groups: JSON Lines (snap-ego --truth, generate --truth), "
        "'USER GROUP…' lines (LFR community.dat) or one group of users per line "
        "(SNAP .cmty.txt); see --labels-format",
    )
    p.add_argument(
        "--labels-format",
        choices=["auto", "jsonl", "node-groups", "groups"],
        default="auto",
        help="auto (default): jsonl if the first line is a JSON object, groups if the file "
        "name contains 'cmty', else node-groups",
    )
    p.add_argument(
        "--max-users", type=int, default=5000, help="users evaluated at most (seeded sample)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of splits, samples and models")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="tribes hyperparameter override (repeatable)",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=VALUE[,NAME=VALUE…]",
        help="another tribes configuration (the --set overrides plus these) scored beside tribes "
        "on the same split and users, in a column 'tribes, NAME=VALUE…'; with --bootstrap, "
        "tribes' paired lead over it: is a change better, or noise? (repeatable)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="95%% intervals of each recall and of tribes' lead over each model, from N paired "
        "resamples of the evaluated users who have that truth (e.g. 1000; default 0: none)",
    )
    p.add_argument(
        "--capped",
        action="store_true",
        help="also score each baseline with its people lists held to tribes' top-1%% exposure cap "
        "(top_exposure_cap, 0.2 unless --set): columns '<model>, capped', the comparison "
        "among lists that give the top 1%% at most that share of the slots",
    )
    p.add_argument(
        "--json", action="store_true", help="print the result as JSON instead of a table"
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="after the table, why tribes' learning chose what it did: every value it tried, its "
        "held-out recall and lead in paired standard errors, and the lead a switch needed "
        "(JSON: always, as 'learning')",
    )
    p.add_argument(
        "--plots",
        help="folder for metrics.png, tribes.png (people coloured by tribe) and tribe-map.png (tribes, what they keep inside, who talks with whom)",
    )

    command("params", _cmd_params, "List every model hyperparameter with its default.")
    command("stats", _cmd_stats, "Print the row count of every table in the store.")
    command("settings", _cmd_settings, "List every setting: variable, default and current value.")
    return parser


# --- commands --------------------------------------------------------------------------------


def _open_store(settings: Settings):
    from .store import Store

    return Store.open(settings.db)


def _cmd_ingest(args, settings: Settings) -> int:
    from .ingest import ingest_lines, latest_allowed
    from .jsonl import open_input

    for name in args.files:
        if name != "-" and not Path(name).is_file():
            raise InputError("no such file", path=name)
    code = EXIT_OK
    with _open_store(settings) as store:
        for name in args.files:
            size = None if name == "-" else Path(name).stat().st_size
            with open_input(name) as fh, _progress(args, name, size) as bar:
                report = ingest_lines(
                    store,
                    fh,
                    source=name,
                    skip_invalid=args.skip_invalid,
                    batch_size=settings.batch_size,
                    max_problems=settings.max_problems,
                    on_progress=bar,
                    not_after=latest_allowed(settings.max_future_seconds),
                )
            for problem in report.problems:
                print(problem, file=sys.stderr)
            if report.rejected > len(report.problems):
                print(
                    f"{name}: … and {report.rejected - len(report.problems)} more problems",
                    file=sys.stderr,
                )
            if args.json:
                import orjson

                sys.stdout.buffer.write(orjson.dumps(report.as_dict()) + b"\n")
                sys.stdout.flush()
            if not args.quiet:
                print(_summary(report), file=sys.stderr)
            if report.rejected:
                code = EXIT_BAD_INPUT
    return code


def _summary(report) -> str:
    by_type = ", ".join(f"{k} {v:,}" for k, v in sorted(report.counts.items())) or "none"
    state = "stored" if report.committed else "NOTHING STORED"
    return (
        f"{report.source}: {state}: {report.accepted:,} events ({by_type}); "
        f"{report.rejected:,} rejected; {report.ignored_erased:,} ignored (deleted); "
        f"{report.seconds:.1f} s, {report.events_per_second:,.0f} events/s"
    )


class _Progress:
    """A byte-counting progress bar on stderr (tqdm), or nothing under --quiet."""

    def __init__(self, enabled: bool, label: str, total: int | None, unit: str = "B"):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                desc=label,
                unit=unit,
                unit_scale=True,
                file=sys.stderr,
                mininterval=0.5 if sys.stderr.isatty() else 10.0,
                leave=False,
            )

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress(args, label: str, total: int | None) -> _Progress:
    return _Progress(not args.quiet, label, total)


def _cmd_import(args, settings: Settings) -> int:
    from .importers import IMPORTERS, TRUTH_READERS
    from .importers.graph import read_graph
    from .jsonl import open_output, write_jsonl

    # edgelist: - is stdin
    if not (Path(args.src).exists() or (args.src == "-" and args.format == "edgelist")):
        raise InputError("no such file or folder", path=args.src)
    stats: dict = {}
    options: dict = {"stats": stats}
    if args.format == "snap-ego":
        options |= {"limit_egos": args.limit_egos, "undirected": args.undirected}
    elif args.format == "edgelist":
        options |= {
            "kind": args.kind,
            "undirected": bool(args.undirected),
            "columns": args.columns,
            "sep": args.sep,
            "header": args.header,
        }
    elif args.format == "graph":
        options |= {"kind": args.kind, "undirected": args.undirected, "time_attr": args.time_attr}
    elif args.format == "stackexchange":
        options |= {"active_only": args.active_only}
    if args.ts is not None:
        options["ts"] = args.ts
    if args.truth and args.format not in TRUTH_READERS:
        raise InputError(f"{args.format} has no ground truth to write", field="--truth")
    for flag, value in (("--truth-attr", args.truth_attr), ("--time-attr", args.time_attr)):
        if value is not None and args.format != "graph":
            raise InputError("applies to the graph format only", field=flag)
    started = time.perf_counter()
    # both files are renamed into place only when both are written
    with contextlib.ExitStack() as outputs:
        # first: a graph without the truth attribute stops before any events are written
        if args.truth:
            truth_stats: dict = {}
            truth_options: dict = {}
            if args.format == "snap-ego":
                truth_options = {"limit_egos": args.limit_egos}
            elif args.format == "graph":  # the file is parsed once, for the truth and the events
                graph = read_graph(args.src)
                truth_options = {"attr": args.truth_attr, "stats": truth_stats, "graph": graph}
                options["graph"] = graph
            groups = write_jsonl(
                TRUTH_READERS[args.format](args.src, **truth_options),
                outputs.enter_context(open_output(args.truth)),
            )
        n = write_jsonl(
            IMPORTERS[args.format](args.src, **options),
            outputs.enter_context(open_output(args.out)),
        )
    if args.truth and not args.quiet:
        source = ""
        if "attribute" in truth_stats:
            missing = truth_stats["nodes_without"]
            source = f" (node attribute {truth_stats['attribute']!r}" + (
                f"; {missing:,} nodes have none, --truth-attr names another)" if missing else ")"
            )
        print(f"wrote {groups:,} ground-truth records{source} to {args.truth}", file=sys.stderr)
    if not args.quiet:
        details = ", ".join(
            f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in stats.items()
        )
        print(
            f"imported {n:,} events from {args.src} in {time.perf_counter() - started:.1f} s"
            + (f" ({details})" if details else ""),
            file=sys.stderr,
        )
    return EXIT_OK


def _cmd_generate(args, settings: Settings) -> int:
    from .jsonl import open_output, write_jsonl
    from .synth import SynthConfig, generate, planted_truth

    if args.users < 1:
        raise InputError(f"must be at least 1, got {args.users}", field="--users")
    planted_options = {
        "--mu": args.mu,
        "--kind": args.kind,
        "--average-degree": args.average_degree,
        "--community-size": args.community_size,
    }
    lfr_options = {
        "--max-degree": ("max_degree", args.max_degree),
        "--degree-exponent": ("tau1", args.degree_exponent),
        "--size-exponent": ("tau2", args.size_exponent),
    }
    detail = ""
    started = time.perf_counter()
    for flag, (_, value) in lfr_options.items():
        if value is not None and args.model != "lfr":
            raise InputError("applies to --model lfr only", field=flag)
    if args.model in ("lfr", "partition"):
        from . import planted

        given = {"mu": args.mu, "kind": args.kind, "average_degree": args.average_degree}
        if args.community_size is not None:
            given |= dict(
                zip(
                    ("min_community", "max_community"),
                    _size_range(args.community_size),
                    strict=True,
                )
            )
        given |= {name: value for name, value in lfr_options.values()}
        given = {k: v for k, v in given.items() if v is not None}
        if args.model == "lfr":
            config, draw = (
                planted.LFRConfig(n_users=args.users, seed=args.seed, **given),
                planted.lfr_graph,
            )
            to_events, to_truth, name = planted.lfr_events, planted.lfr_truth, "LFR"
        else:
            config, draw = (
                planted.PartitionConfig(n_users=args.users, seed=args.seed, **given),
                planted.partition_graph,
            )
            to_events, to_truth, name = (
                planted.partition_events,
                planted.partition_truth,
                "planted partition",
            )
        try:
            graph = draw(config)  # bad knobs raise InputError (exit 2) before any output
        except InputError as exc:
            flag = {
                "n_users": "--users",
                "seed": "--seed",
                "mu": "--mu",
                "average_degree": "--average-degree",
                "min_community": "--community-size",
                "max_community": "--community-size",
                **{name: flag for flag, (name, _) in lfr_options.items()},
            }.get(exc.field or "")
            if flag is None:
                raise
            raise InputError(exc.problem, field=flag) from None
        events, truth = to_events(config, graph), to_truth(config, graph)
        detail = (
            f", {name} mu {config.mu} ({config.kind}): {int(graph.labels.max()) + 1} communities, "
            f"{len(graph.edges):,} edges, realised mixing {graph.mixing:.3f}"
        )
    else:
        extra = [name for name, value in planted_options.items() if value is not None]
        if extra:
            raise InputError("applies to --model lfr or partition only", field=extra[0])
        config = SynthConfig(n_users=args.users, seed=args.seed)
        events, truth = generate(config), planted_truth(config)
    with (
        open_output(args.out) as out,
        _Progress(not args.quiet, "generate", None, unit=" events") as bar,
    ):

        def counted(events):
            for i, event in enumerate(events):
                if i % 10_000 == 0:
                    bar(10_000 if i else 0)
                yield event

        n = write_jsonl(counted(events), out)
    if args.truth:
        with open_output(args.truth) as out:
            write_jsonl(truth, out)
    if not args.quiet:
        print(
            f"generated {n:,} events for {args.users:,} users (seed {args.seed}{detail}) in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    return EXIT_OK


def _size_range(text: str) -> tuple[int, int]:
    """``"6-14"`` → ``(6, 14)``; ``"10"`` → ``(10, 10)``."""
    low, _, high = text.partition("-")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise InputError(
            f"expected MIN-MAX (e.g. 6-14), got {text!r}", field="--community-size"
        ) from None


def _cmd_demo(args, settings: Settings) -> int:
    """Synthetic data into an empty store, then a recompute if there is no model yet."""
    from .artifacts import ModelStore
    from .ingest import ingest_objects
    from .recompute import recompute
    from .synth import SynthConfig, generate

    with _open_store(settings) as store:
        users = store.table_counts()["users"]
        if users and not args.force:
            if not args.quiet:
                print(
                    f"demo: store {store.url} already has {users:,} users: kept as it is",
                    file=sys.stderr,
                )
        else:
            config = SynthConfig(n_users=args.users, seed=args.seed)
            report = ingest_objects(
                store,
                generate(config),
                batch_size=settings.batch_size,
                source=f"synthetic(users={args.users}, seed={args.seed})",
            )
            if not report.committed:  # the generator's output must always validate
                for problem in report.problems:
                    print(problem, file=sys.stderr)
                raise RuntimeError("the synthetic demo data did not validate")
            if not args.quiet:
                print("demo: " + _summary(report), file=sys.stderr)
        current = ModelStore(settings.models).current()
        if current and not args.force:
            if not args.quiet:
                print(f"demo: model {current} is current: no recompute needed", file=sys.stderr)
            return EXIT_OK
        name, _ = recompute(
            store, settings.models, keep=settings.keep_models, threads=settings.recompute_threads
        )
        if not args.quiet:
            print(f"demo: recomputed, model {name} is current", file=sys.stderr)
    return EXIT_OK


def _parse_overrides(pairs: list[str]) -> dict:
    from .params import Params

    known = {f: type(getattr(Params(), f)) for f in Params.__dataclass_fields__}
    out = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in known:
            raise InputError(
                f"expected NAME=VALUE with a known parameter, got {pair!r} "
                "(`tribes params` lists them)",
                field="--set",
            )
        try:
            out[name] = int(raw) if known[name] is int else known[name](raw)
        except ValueError:
            raise InputError(
                f"{name}: expected {known[name].__name__}, got {raw!r}", field="--set"
            ) from None
    return out


def _cmd_recompute(args, settings: Settings) -> int:
    from .recompute import recompute

    params = _parse_overrides(args.set)
    try:
        from .params import Params

        Params(**params).validate()
    except ValueError as exc:
        raise InputError(str(exc), field="--set") from None
    started = time.perf_counter()

    def progress(stage: str) -> None:
        if not args.quiet:
            print(f"recompute: {stage} … ({time.perf_counter() - started:.1f} s)", file=sys.stderr)

    engine = args.engine or settings.engine
    if engine not in ("local", "spark"):
        raise InputError(f"expected local or spark, got {engine!r}", field="--engine")
    if engine == "spark":
        from .spark import SparkUnavailable, check_spark

        try:
            check_spark()
        except SparkUnavailable as exc:
            raise InputError(str(exc), field="--engine") from None
    with _open_store(settings) as store:
        if engine == "spark":
            from .spark.recompute import recompute_spark

            name, model = recompute_spark(
                store,
                settings.models,
                params,
                master=args.master or settings.spark_master,
                keep=args.keep or settings.keep_models,
                threads=settings.recompute_threads,
                export_root=args.export or settings.spark_export or None,
                driver_memory=settings.spark_driver_memory,
                partitions=settings.spark_partitions,
                on_stage=progress,
            )
        else:
            name, model = recompute(
                store,
                settings.models,
                params,
                keep=args.keep or settings.keep_models,
                threads=settings.recompute_threads,
                on_stage=progress,
            )
    if not args.quiet:
        from .learn import format_learning, learning_summary

        counts = ", ".join(f"{k} {v:,}" for k, v in model.counts_.items())
        print(
            f"recompute: published {name} as current in {time.perf_counter() - started:.1f} s: "
            f"{len(model.tribes_)} tribes from {counts}",
            file=sys.stderr,
        )
        report = getattr(model, "learning_report_", None)
        print(f"recompute: {learning_summary(report)}", file=sys.stderr)
        newcomers = int(model.arrays_["people_newcomer"].sum())
        if newcomers:
            print(
                f"recompute: newcomers: {newcomers:,} users who have done nothing yet get the most welcoming "
                f"people (a slot in their lists counts {model.newcomer_slot_weight_:g} of one in an active "
                f"user's against the exposure budget)",
                file=sys.stderr,
            )
        if args.explain and report:
            print("\n".join(format_learning(report)), file=sys.stderr)
    print(name)
    return EXIT_OK


def _cmd_models(args, settings: Settings) -> int:
    from .artifacts import ModelStore

    versions = ModelStore(settings.models).versions()
    if not versions:
        print(
            f"no model versions under {settings.models} (run `tribes recompute`)", file=sys.stderr
        )
    for v in versions:
        counts = v.manifest.get("counts", {})
        print(
            f"{'*' if v.is_current else ' '} {v.name}  built {v.manifest.get('built_at', '?')}  "
            f"users {counts.get('users', '?')}  tribes {v.manifest.get('tribes', '?')}"
        )
    return EXIT_OK


def _cmd_rollback(args, settings: Settings) -> int:
    from .artifacts import ModelStore

    try:
        name = ModelStore(settings.models).rollback(args.version)
    except (KeyError, ValueError) as exc:
        raise InputError(str(exc).strip("'\""), field="version") from None
    if not args.quiet:
        print(f"current is now {name}", file=sys.stderr)
    print(name)
    return EXIT_OK


def _current_recommender(settings: Settings):
    from .recompute import open_current

    recommender = open_current(settings.models)
    if recommender is None:
        raise InputError(
            f"no model under {settings.models}: run `tribes recompute` first", field="models"
        )
    return recommender


def _cmd_suggest(args, settings: Settings) -> int:
    import orjson

    if not 1 <= args.limit <= 100:
        raise InputError(f"must be between 1 and 100, got {args.limit}", field="--limit")
    users = list(args.users)
    if args.users_file:
        from .jsonl import open_input

        if args.users_file != "-" and not Path(args.users_file).is_file():
            raise InputError("no such file", path=args.users_file)
        with open_input(args.users_file) as fh:
            users += [line.decode("utf-8", "replace").strip() for line in fh if line.strip()]
    if not users:
        raise InputError("name at least one user (or --users-file)", field="USER")
    recommender = _current_recommender(settings)
    code = EXIT_OK
    out = sys.stdout.buffer
    for user in users:
        if recommender.index_of(user) is None:
            body = {
                "user_id": user,
                "error": f"unknown user {user!r} (not in model {recommender.version})",
            }
            code = EXIT_BAD_INPUT
        elif args.kind == "people":
            body = {
                "user_id": user,
                "model_version": recommender.version,
                "items": recommender.people(user, args.limit),
            }
        else:
            body = {
                "user_id": user,
                "model_version": recommender.version,
                "items": recommender.conversations(user, args.limit),
            }
        out.write(orjson.dumps(body) + b"\n")
    out.flush()
    return code


def _cmd_tribes(args, settings: Settings) -> int:
    import numpy as np
    import orjson

    from .serving import tribe_summary

    recommender = _current_recommender(settings)
    labels = np.asarray(recommender.labels)
    if not args.json:
        print(f"{'tribe':>6}  {'members':>7}  {'inside':>6}  label")
    for k, tribe in enumerate(recommender.tribes):
        row = tribe_summary(tribe)
        if args.members:
            row["members"] = [str(recommender.user_ids[i]) for i in np.flatnonzero(labels == k)]
        if args.json:
            sys.stdout.buffer.write(orjson.dumps(row) + b"\n")
        else:
            inside = "—" if row["cohesion"] is None else f"{row['cohesion']:.0%}"
            print(f"{row['tribe_id']:>6}  {row['size']:>7,}  {inside:>6}  {row['label']}")
            if args.members:
                print("        " + " ".join(row["members"]))
    sys.stdout.flush()
    return EXIT_OK


def _cmd_evaluate(args, settings: Settings) -> int:
    import orjson

    from .evaluation.baselines import BASELINES
    from .evaluation.report import (
        combine_runs,
        evaluate,
        format_table,
        plot_metrics,
        plot_tribe_graph,
        recall_intervals,
    )
    from .evaluation.splits import read_events
    from .evaluation.tribe_map import plot_tribe_map
    from .evaluation.truth import load_groups

    for given in (args.events, args.labels):
        if given and not Path(given).is_file():
            raise InputError("no such file", path=given)
    models = [m.strip() for m in args.compare.split(",")] if args.compare else list(BASELINES)
    unknown = [m for m in models if m not in BASELINES]
    if unknown:
        raise InputError(
            f"unknown model(s) {', '.join(unknown)}; known: {', '.join(BASELINES)}",
            field="--models",
        )
    if not 1 <= args.k <= 100:
        raise InputError(f"must be between 1 and 100, got {args.k}", field="-k")
    if not 0 <= args.bootstrap <= 100_000:
        raise InputError(f"must be between 0 and 100000, got {args.bootstrap}", field="--bootstrap")
    overrides = _parse_overrides(args.set)
    if "seed" in overrides:
        raise InputError(
            "seed is set with --seed (it seeds the split, the samples and every model)",
            field="--set",
        )
    from .params import Params

    try:  # the cap tribes ranks under, as --set may have changed it
        cap = Params(**overrides).validate().top_exposure_cap if args.capped else None
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), field="--set") from None
    variants = _parse_variants(args.variant, overrides)
    cut_texts = [c.strip() for c in args.cut.split(",")]
    if len(cut_texts) > 1 and args.split != "time":
        raise InputError(
            "several cuts are for --split time (cut fractions or timestamps)", field="--cut"
        )
    events = read_events(args.events)
    if not args.quiet:
        print(f"evaluate: {len(events):,} events read; splitting ({args.split})", file=sys.stderr)
    split_with = [_evaluation_split(args, events, text) for text in cut_texts]
    truth_labels, truth_groups = (None, None)
    runs, split = [], None
    for text, make_split in zip(cut_texts, split_with, strict=True):
        try:
            split = make_split()
        except ValueError as exc:  # the data cannot be split this way (e.g. no timestamps)
            raise InputError(
                f"cannot split with --split {args.split} --cut {text}: {exc}", path=args.events
            ) from None
        _check_something_to_test(args, split, text)
        if args.labels:
            truth_labels, truth_groups = load_groups(
                args.labels, split.train.user_ids, args.labels_format
            )
            if not truth_groups and (truth_labels is None or not (truth_labels >= 0).any()):
                raise InputError(
                    "no user of the data is in any group of two or more (do the ids match the events?)",
                    path=args.labels,
                )
        if not args.quiet:
            where = (
                f"cut {text}"
                if args.split == "time"
                else f"{make_split.keywords['fraction']:g} of the follows held out"
            )
            print(
                f"evaluate: {where}: {split.counts()}; fitting {', '.join(models)}", file=sys.stderr
            )
        runs.append(
            evaluate(
                split,
                models,
                k=args.k,
                max_users=args.max_users,
                seed=args.seed,
                params={"tribes": overrides},
                truth_labels=truth_labels,
                truth_groups=truth_groups,
                per_user=args.bootstrap > 0,
                capped=cap,
                variants=variants,
            )
        )
    result = runs[0] if len(runs) == 1 else combine_runs(runs, [_cut_value(t) for t in cut_texts])
    if args.bootstrap > 0:
        result["intervals"] = recall_intervals(result.pop("per_user"), args.bootstrap, args.seed)
        result["bootstrap"] = args.bootstrap
    if args.plots:
        plots = Path(args.plots)
        result["plots"] = [str(plot_metrics(result, plots / "metrics.png"))]
        if "tribes" in models:
            from .model import TribeModel

            model = TribeModel(**overrides, seed=args.seed).fit(split.train)
            # the model's own interaction graph: no second build of the graph
            drawn = (model.interaction_, model.labels_, model.tribes_)
            result["plots"] += [
                str(plot_tribe_graph(*drawn, plots / "tribes.png", seed=args.seed)),
                str(plot_tribe_map(*drawn, plots / "tribe-map.png", seed=args.seed)),
            ]
    if args.json:
        sys.stdout.buffer.write(
            orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        )
    else:
        print(format_table(result, explain=args.explain))
    return EXIT_OK


def _parse_variants(texts: list[str], overrides: dict) -> dict[str, dict]:
    """``--variant`` texts → ``{"tribes, NAME=VALUE, …": the --set overrides plus these}``,
    each checked (:class:`InputError` on ``--variant``)."""
    from .params import Params

    variants = {}
    for text in texts:
        pairs = [pair.strip() for pair in text.split(",") if pair.strip()]
        if not pairs:
            raise InputError(
                "expected NAME=VALUE[,NAME=VALUE…], got an empty variant", field="--variant"
            )
        try:
            own = _parse_overrides(pairs)
        except InputError as exc:
            raise InputError(exc.problem, field="--variant") from None
        if len(own) < len(pairs):
            raise InputError(f"a parameter is given twice in {text!r}", field="--variant")
        if "seed" in own:
            raise InputError("seed is set with --seed (every model shares it)", field="--variant")
        try:
            Params(**(overrides | own)).validate()
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc), field="--variant") from None
        label = "tribes, " + ", ".join(
            f"{name}={pair.partition('=')[2].strip()}"
            for name, pair in zip(own, pairs, strict=True)
        )
        if label in variants:
            raise InputError(f"the variant {label!r} is given twice", field="--variant")
        variants[label] = overrides | own
    return variants


def _cut_value(text: str) -> float | str:
    """A ``--cut`` as given: the number when it is one, else the text (a timestamp)."""
    try:
        return float(text)
    except ValueError:
        return text


def _is_fraction(text: str) -> bool:
    """Whether a time split's ``--cut`` is a fraction of the time span (else it is a time)."""
    value = _cut_value(text)
    return isinstance(value, float) and 0 < value < 1


def _check_something_to_test(args, split, text: str) -> None:
    """:class:`InputError` (exit 2) when the split leaves nothing to test: a table of zeros
    over no evaluated user would look like a result."""
    import numpy as np

    from .events import format_ts

    counts = split.counts()
    if any(
        counts[key]
        for key in (
            "future_partner_pairs",
            "future_reply_pairs",
            "future_follows",
            "future_thread_joins",
        )
    ):
        return
    train = split.train
    if args.split == "edges":
        raise InputError(
            f"nothing to hold out: --split edges holds out follows and the data has none "
            f"({train.n_posts:,} posts); evaluate messages and posts with --split time",
            path=args.events,
        )
    times = np.concatenate([train.post_ts, train.follow_ts])
    same = len(times) > 0 and np.ptp(times) == 0
    as_time = (
        ""
        if _is_fraction(text)
        else (
            f" (--cut {text} is read as the time {format_ts(split.cut)}, and the data has "
            + (f"{len(times):,} interactions before it" if len(times) else "none before it")
            + "; a fraction of the data's time span is between 0 and 1)"
        )
    )
    raise InputError(
        f"nothing to test after --cut {text}: no follow, reply or thread join comes after it"
        + (
            f" (every interaction is dated {format_ts(times[0])}: data without time, such as an "
            "imported graph, is evaluated with --split edges)"
            if same
            else as_time
        ),
        path=args.events,
    )


def _evaluation_split(args, events, text: str):
    """A no-argument callable making the split ``--split``/``--cut text`` asks for (checked now,
    made later). :class:`InputError` for a cut that is neither a fraction nor a timestamp."""
    from .evaluation.splits import edge_holdout_split, time_split
    from .events import parse_ts

    cut_value = _cut_value(text)
    if args.split == "edges":
        share = 0.1 if text == "0.8" else (cut_value if isinstance(cut_value, float) else -1)
        if not 0 < share < 1:
            raise InputError(
                f"edges split: expected a share between 0 and 1, got {text!r}", field="--cut"
            )
        return partial(edge_holdout_split, events, fraction=share, seed=args.seed)
    if _is_fraction(text):
        return partial(time_split, events, fraction=cut_value)
    try:
        cut_ts = parse_ts(text, "--cut")
    except Exception as exc:
        raise InputError(
            f"expected a fraction in (0, 1) or a timestamp, got {text!r}: {exc}", field="--cut"
        ) from None
    return partial(time_split, events, cut=cut_ts)


def _cmd_params(args, settings: Settings) -> int:
    from .params import describe_params

    for name, default, doc in describe_params():
        print(f"{name} = {default!r}\n    {doc}")
    return EXIT_OK


def _cmd_stats(args, settings: Settings) -> int:
    with _open_store(settings) as store:
        for table, n in store.table_counts().items():
            print(f"{table:12s} {n:>12,}")
    return EXIT_OK


def _cmd_settings(args, settings: Settings) -> int:
    for variable, default, doc in describe_settings():
        key = variable.removeprefix("TRIBES_").lower()
        print(
            f"{variable}\n    {doc}\n    default: {default!r}   current: {getattr(settings, key)!r}"
        )
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
