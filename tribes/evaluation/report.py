"""Run models on a split, compute every metric, print a table, draw the two pictures.

``evaluate`` is what ``tribes evaluate`` and the tuning notebook call: every model (tribes
and the baselines) is fitted on the same train snapshot and scored on the same users, with the
same filters, against what happened after the cut.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..learn import format_learning
from ..ranking import top_accounts
from . import metrics as M
from .baselines import BASELINES
from .capping import capped_lists
from .splits import Split
from .truth import load_groups  # re-exported

__all__ = [
    "combine_runs",
    "evaluate",
    "format_table",
    "load_groups",
    "plot_metrics",
    "plot_tribe_graph",
    "recall_intervals",
]

#: Metrics shown in the table, in order: (key, label).
TABLE_ROWS = [
    ("partners.recall", "conversation partners recall@k"),
    ("partners.ndcg", "conversation partners nDCG@k"),
    ("replies.recall", "people replied to recall@k"),
    ("follows.recall", "people followed recall@k"),
    ("threads.recall", "thread joins recall@k"),
    ("threads.ndcg", "thread joins nDCG@k"),
    ("people.coverage", "people catalogue coverage"),
    ("people.exposure_gini", "people exposure Gini"),
    ("people.top1_followed_share", "exposure share of top 1% followed"),
    ("people.top1_replied_share", "exposure share of top 1% replied-to"),
    ("people.novelty", "people novelty (bits)"),
    ("people.tribes_per_list", "tribes per list"),
    ("fit_seconds", "fit + recommend seconds"),
]


def _sample(users: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(users) <= limit:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, size=limit, replace=False))


def evaluate(
    split: Split,
    models: Sequence[str] | None = None,
    *,
    k: int = 20,
    max_users: int = 5000,
    exposure_users: int = 20000,
    seed: int = 0,
    params: dict[str, dict] | None = None,
    truth_labels: np.ndarray | None = None,
    truth_groups: list[np.ndarray] | None = None,
    per_user: bool = False,
    capped: float | None = None,
    variants: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Fit and score each model. Returns ``{"k", "split", "users", "models": {name: {metric: value}}}``.

    Users evaluated: those with any future partner, reply, follow or thread join (a seeded
    sample of at most ``max_users``); exposure is measured on the lists of up to
    ``exposure_users`` users (all of them when fewer). With ``per_user``, ``"per_user"`` holds
    ``{truth: {model: (users,) recall@k, NaN without relevant items}}`` for
    :func:`recall_intervals`. With ``capped`` (a share, e.g. tribes' ``top_exposure_cap``),
    every baseline is scored a second time as ``"<name>, capped"``: its people lists re-ranked
    so the top 1% most followed or most replied-to fill at most that share of the slots
    (:func:`tribes.evaluation.capping.capped_lists`, over the evaluated and exposure users'
    lists together), the comparison among lists that meet the cap. ``variants`` maps a column
    label to another tribes configuration (:class:`tribes.params.Params` fields), fitted and
    scored after ``models`` on the same split and users: with ``per_user``,
    :func:`recall_intervals` then gives tribes' paired lead over each (the tuning comparison);
    ``"learned_variants"`` holds what learning chose for each.
    """
    snap = split.train
    names = list(models or BASELINES)
    variants = dict(variants or {})
    clash = [label for label in variants if label in BASELINES or label in names]
    if clash:
        raise ValueError(f"variant label(s) {', '.join(map(repr, clash))} clash with a model name")
    truths = {
        "partners": split.future_partners,
        "replies": split.future_replies,
        "follows": split.future_follows,
        "threads": split.future_threads,
    }
    active = np.zeros(snap.n_users, dtype=bool)
    for m in truths.values():
        active |= np.diff(m.tocsr().indptr) > 0
    users = _sample(np.flatnonzero(active), max_users, seed)
    everyone = _sample(np.arange(snap.n_users), exposure_users, seed + 1)
    followers = np.bincount(snap.follow_dst, minlength=snap.n_users)
    replied = snap.replies_received().astype(np.float64)
    top_followed = M.top_percent(followers, 1.0)
    top_replied = M.top_percent(replied, 1.0)
    popularity = followers + replied
    results: dict[str, dict[str, float]] = {}
    lists: dict[str, np.ndarray] = {}
    tribe_labels, tribe_method, learned, learning, learned_variants = None, None, None, None, {}
    newcomers = None
    recalls: dict[str, dict[str, np.ndarray]] = {}

    def score(
        name: str, people: np.ndarray, threads: np.ndarray, people_all: np.ndarray, seconds: float
    ) -> None:
        row: dict[str, float] = {"fit_seconds": round(seconds, 2)}
        for key, truth in truths.items():
            recs = threads if key == "threads" else people
            for metric, value in M.ranking_metrics(recs, users, truth, k).items():
                row[f"{key}.{metric}"] = value
            if per_user:
                recalls.setdefault(key, {})[name] = M.per_user_recall(recs, users, truth, k)
        shown = M.exposure(people_all, snap.n_users)
        row["people.coverage"] = M.catalogue_coverage(people_all, snap.n_users)
        row["people.exposure_gini"] = M.gini(shown)
        row["people.top1_followed_share"] = M.top_share(shown, top_followed)
        row["people.top1_replied_share"] = M.top_share(shown, top_replied)
        row["people.novelty"] = M.novelty(people_all, popularity)
        results[name] = row
        lists[name] = people_all

    # the accounts a cap holds back (the top sets above, among those with any)
    if capped is not None:
        is_top = top_accounts(snap, followers)
        # the lists a cap is held over: evaluated and exposure users'
        pool = np.union1d(users, everyone)
    for name in [*names, *variants]:
        started = time.perf_counter()
        configured = variants[name] if name in variants else (params or {}).get(name, {})
        model = BASELINES["tribes" if name in variants else name](**configured, seed=seed).fit(snap)
        threads = model.recommend_threads(users, k)
        score(
            name,
            model.recommend_people(users, k),
            threads,
            model.recommend_people(everyone, k),
            seconds := time.perf_counter() - started,
        )
        if name in variants:  # another tribes: ranked under its own cap, so never re-capped
            learned_variants[name] = model.model_.learned_weights_
        elif name == "tribes":
            tribe_labels = np.asarray(model.model_.labels_)
            tribe_method = model.model_.tribe_method_
            learned = model.model_.learned_weights_
            learning = model.model_.learning_report_
            newcomers = {
                "users": int(model.model_.arrays_["people_newcomer"].sum()),
                "slot_weight": model.model_.newcomer_slot_weight_,
            }
        elif capped is not None:
            started = time.perf_counter()
            held = capped_lists(model.recommend_people, pool, k, is_top, capped, seed)
            score(
                f"{name}, capped",
                held[np.searchsorted(pool, users)],
                threads,
                held[np.searchsorted(pool, everyone)],
                seconds + time.perf_counter() - started,
            )
    if tribe_labels is not None:  # diversity of every model's lists, in the tribes found
        for name, recs in lists.items():
            results[name]["people.tribes_per_list"] = M.tribes_per_list(recs, tribe_labels)
    # What a perfect list would reach: a recall's ceiling at k (users with more relevant items
    # than k cannot reach 1), per truth with any users.
    ceiling = {}
    for key, truth in truths.items():
        recall, with_items = M.recall_ceiling(users, truth, k)
        if with_items:
            ceiling[key] = {"recall": recall, "users": with_items}
    out: dict[str, Any] = {
        "k": k,
        "split": split.kind,
        "cut": split.cut,
        "counts": split.counts(),
        "users": len(users),
        "exposure_users": len(everyone),
        "models": results,
        "ceiling": ceiling,
    }
    if per_user:
        out["per_user"] = recalls
    if tribe_labels is not None:
        # what tribes' learning chose on the training snapshot's own held-out slice (None: kept the configuration)
        out["learned"] = learned
        out["learning"] = (
            learning  # why: learning's decisions (tribes.learn), None when it did not run
        )
        out["newcomers"] = (
            newcomers  # lists for users with nothing yet (tribes.newcomers) and their slots' weight
        )
        out["tribes"] = {
            "method": tribe_method,
            **_tribe_quality(split, tribe_labels, truth_labels, truth_groups),
        }
    if variants:
        out["learned_variants"] = learned_variants
    return out


def _tribe_quality(
    split: Split, labels: np.ndarray, truth_labels, truth_groups
) -> dict[str, float]:
    from ..affinity import user_affinity
    from ..graph import build_graph
    from ..params import Params

    params = Params()
    affinity = user_affinity(build_graph(split.train, params), params)
    found = labels[labels >= 0]
    quality = {
        "tribes": int(found.max()) + 1 if len(found) else 0,
        "modularity": round(float(M.modularity(affinity, labels)), 4),
        "mean_conductance": round(float(np.mean(M.conductance(affinity, labels))), 4)
        if len(found)
        else 0.0,
        # users whose tribe keeps more of its affinity inside than out (`tribe_objective=auto`'s test)
        "weak_community_share": round(M.weak_community_share(affinity, labels), 4),
    }
    if truth_labels is not None:
        known = (truth_labels >= 0) & (labels >= 0)
        if known.any():  # else no user has both a found and a true group: nothing to compare
            quality["nmi"] = round(float(M.nmi(truth_labels[known], labels[known])), 4)
            quality["ari"] = round(float(M.ari(truth_labels[known], labels[known])), 4)
    if truth_groups:
        quality["best_match_f1"] = round(float(M.best_match_f1(labels, truth_groups)), 4)
    return quality


def recall_intervals(
    per_user: dict[str, dict[str, np.ndarray]], n: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """``{truth: {"recall": {model: [lo, hi]}, "tribes_minus": {model: [lo, hi]}}}``: paired
    bootstrap intervals (users resampled, ``n`` times) of each model's mean recall@k and, when
    tribes is among the models, of tribes' recall minus each other model's. Truths without an
    evaluated user are left out."""
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for key, by_model in per_user.items():
        if not by_model or all(np.isnan(v).all() for v in by_model.values()):
            continue
        arrays = {f"recall {m}": v for m, v in by_model.items()}
        if "tribes" in by_model:
            arrays |= {
                f"minus {m}": by_model["tribes"] - v for m, v in by_model.items() if m != "tribes"
            }
        got = M.bootstrap_interval(arrays, n, seed, level)
        out[key] = {"recall": {m: got[f"recall {m}"] for m in by_model}}
        if "tribes" in by_model:
            out[key]["tribes_minus"] = {m: got[f"minus {m}"] for m in by_model if m != "tribes"}
    return out


def combine_runs(runs: Sequence[dict[str, Any]], cuts: Sequence[Any]) -> dict[str, Any]:
    """One result from :func:`evaluate` runs at several time cuts: each user-averaged metric
    (``"<truth>.<metric>"``) averaged over every user evaluated at any cut (each run weighted
    by its ``"<truth>.users"``), every other value averaged over the runs; ``"spread"`` holds
    each value's [min, max] over the runs, ``"runs"`` the runs themselves (with their cut).
    Small data (a few dozen future pairs per cut) then rests on several test periods, not one."""
    if not runs:
        raise ValueError("no runs to combine")
    models: dict[str, dict[str, float]] = {}
    spread: dict[str, dict[str, list[float]]] = {}
    for name in runs[0]["models"]:
        rows = [run["models"][name] for run in runs]
        models[name], spread[name] = {}, {}
        for key in rows[0]:
            values = np.array([row[key] for row in rows], dtype=np.float64)
            prefix = key.split(".")[0]
            weights = np.array([row.get(f"{prefix}.users", 1) for row in rows], dtype=np.float64)
            if key.endswith(".users"):
                models[name][key] = int(values.sum())
                continue
            if weights.sum() == 0:
                weights = np.ones(len(rows))
            models[name][key] = float(np.average(values, weights=weights))
            spread[name][key] = [float(values.min()), float(values.max())]
    counts = {key: int(sum(run["counts"][key] for run in runs)) for key in runs[0]["counts"]}
    ceiling = {}
    for key in dict.fromkeys(key for run in runs for key in run.get("ceiling", {})):
        parts = [run["ceiling"][key] for run in runs if key in run.get("ceiling", {})]
        users = sum(part["users"] for part in parts)
        ceiling[key] = {
            "recall": float(sum(part["recall"] * part["users"] for part in parts) / users),
            "users": int(users),
        }
    out: dict[str, Any] = {
        "k": runs[0]["k"],
        "split": runs[0]["split"],
        "cut": list(cuts),
        "counts": counts,
        "users": int(sum(run["users"] for run in runs)),
        "ceiling": ceiling,
        "exposure_users": runs[0]["exposure_users"],
        "models": models,
        "spread": spread,
        "runs": [
            {**run, "cut": cut, "cut_ts": run["cut"]} for cut, run in zip(cuts, runs, strict=True)
        ],
    }
    if all("per_user" in run for run in runs):  # the users of every cut, pooled
        out["per_user"] = {
            key: {
                m: np.concatenate([run["per_user"][key][m] for run in runs])
                for m in runs[0]["per_user"][key]
            }
            for key in runs[0]["per_user"]
        }
        for run in out["runs"]:
            del run["per_user"]
    if all("tribes" in run for run in runs):
        quality = [run["tribes"] for run in runs]
        out["tribes"] = {"method": "/".join(dict.fromkeys(str(q["method"]) for q in quality))}
        for key in quality[0]:
            values = [q.get(key) for q in quality]
            if key != "method" and all(isinstance(v, int | float) for v in values):
                out["tribes"][key] = round(float(np.mean(values)), 4)
        out["learned"] = {str(cut): run.get("learned") for cut, run in zip(cuts, runs, strict=True)}
        out["learning"] = {
            str(cut): run.get("learning") for cut, run in zip(cuts, runs, strict=True)
        }
        out["newcomers"] = {
            str(cut): run.get("newcomers") for cut, run in zip(cuts, runs, strict=True)
        }
    if all("learned_variants" in run for run in runs):
        out["learned_variants"] = {
            label: {
                str(cut): run["learned_variants"][label]
                for cut, run in zip(cuts, runs, strict=True)
            }
            for label in runs[0]["learned_variants"]
        }
    return out


def format_table(result: dict[str, Any], explain: bool = False) -> str:
    """One table: a row per metric, a column per model (k in the labels). ``explain``: then
    why learning chose what it did, per cut (:func:`format_learning`)."""
    models = list(result["models"])
    k = result["k"]
    width = max(len(label) for _, label in TABLE_ROWS) + 2
    cols = {m: max(14, len(m) + 2) for m in models}  # each column as wide as its name
    lines = [" " * width + "".join(f"{m:>{cols[m]}}" for m in models)]
    for key, label in TABLE_ROWS:
        values = [result["models"][m].get(key) for m in models]
        if all(v is None for v in values):
            continue
        cells = "".join(
            f"{'—' if v is None else f'{v:.4f}' if isinstance(v, float) else v:>{cols[m]}}"
            for m, v in zip(models, values, strict=True)
        )
        lines.append(f"{label.replace('@k', f'@{k}'):<{width}}{cells}")
        truth = key.split(".")[0]
        if key.endswith(".recall") and truth in result.get("intervals", {}):
            found = result["intervals"][truth]
            for part, title in (
                ("recall", "  95% interval"),
                ("tribes_minus", "  tribes minus it, 95%"),
            ):
                if part in found:
                    sign = "+" if part == "tribes_minus" else ""
                    cells = "".join(
                        f"{_range(found[part].get(m), sign):>{cols[m]}}" for m in models
                    )
                    lines.append(f"{title:<{width}}{cells}")
    runs = result.get("runs")
    if runs:  # several cuts: each recall's range, then what each cut held
        lines.append(f"min–max over the {len(runs)} cuts:")
        for key, label in TABLE_ROWS:
            if key.endswith(".recall") and any(key in result["spread"][m] for m in models):
                cells = "".join(
                    f"{_range(result['spread'][m].get(key), between='–'):>{cols[m]}}"
                    for m in models
                )
                lines.append(f"{label.replace('@k', f'@{k}'):<{width}}{cells}")
        for run in runs:
            lines.append(f"cut {run['cut']}: users evaluated {run['users']}; {run['counts']}")
        lines.append(
            f"split: {result['split']}; users evaluated over all cuts: {result['users']}; "
            f"exposure over {result['exposure_users']} users' lists per cut"
        )
    else:
        lines.append(
            f"users evaluated: {result['users']}; exposure over {result['exposure_users']} users' lists; "
            f"split: {result['split']}; {result['counts']}"
        )
    if result.get("ceiling"):  # named as the recall rows are
        names = {
            key.removesuffix(".recall"): label.removesuffix(" recall@k")
            for key, label in TABLE_ROWS
        }
        lines.append(
            f"a perfect list's recall@{k} (the ceiling): "
            + ", ".join(
                f"{names.get(key, key)} {c['recall']:.4f}" for key, c in result["ceiling"].items()
            )
        )
    if "tribes" in result:
        lines.append("tribes: " + ", ".join(f"{k2} {v}" for k2, v in result["tribes"].items()))
    welcomed = (result.get("newcomers") or {}) if runs else {None: result.get("newcomers")}
    if any(w and w["users"] for w in welcomed.values()):  # lists for users with nothing yet
        lines.append(
            "newcomer lists (tribes): "
            + "; ".join(
                ("" if cut is None else f"cut {cut} ")
                + f"{w['users']:,} users (a slot weighs {w['slot_weight']:.3g} "
                "of an active user's against the exposure budget)"
                for cut, w in welcomed.items()
                if w and w["users"]
            )
        )
    chosen = {"learned": result["learned"]} if "learned" in result else {}
    chosen |= {
        f"learned [{label}]": by_cut for label, by_cut in result.get("learned_variants", {}).items()
    }
    for title, learned_by_cut in chosen.items():
        per_cut = learned_by_cut if runs else {None: learned_by_cut}
        for cut, learned in per_cut.items():
            head = title if cut is None else f"{title} (cut {cut})"
            lines.append(
                f"{head}: "
                + (
                    ", ".join(
                        f"{k2} {v:g}" if isinstance(v, int | float) else f"{k2} {v}"
                        for k2, v in learned.items()
                    )
                    if learned
                    else "nothing (too little held-out data): the configured parameters"
                )
            )
    if explain and "learning" in result:
        per_cut = result["learning"] if runs else {None: result["learning"]}
        for cut, report in per_cut.items():
            lines.append("why learning chose this" + ("" if cut is None else f" (cut {cut})") + ":")
            lines.extend(
                format_learning(report)
                if report
                else ["  learning did not run (off, reused, or too little held-out data)"]
            )
    return "\n".join(lines)


def _range(interval: list[float] | None, sign: str = "", between: str = "…") -> str:
    """``lo…hi`` with 3 decimals (``sign`` "+" to sign them; ``between`` the separator), "—" for none."""
    if interval is None:
        return "—"
    return f"{interval[0]:{sign}.3f}{between}{interval[1]:{sign}.3f}"


def plot_metrics(result: dict[str, Any], path: str | Path) -> Path:
    """Bar charts per model: partner and thread-join recall, and the exposure share of the top 1%
    most followed and most replied-to (a network may have only one of the two). Recalls carry
    their 95% interval as an error bar when the result has ``intervals`` (``--bootstrap``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(result["models"])
    variants = result.get("learned_variants", {})  # other tribes configurations: a lighter red
    panels = [
        ("partners.recall", f"conversation partners\nrecall@{result['k']}"),
        ("threads.recall", f"thread joins\nrecall@{result['k']}"),
        (
            "people.top1_followed_share",
            "exposure share of the top 1%\nmost followed (lower: fairer)",
        ),
        (
            "people.top1_replied_share",
            "exposure share of the top 1%\nmost replied-to (lower: fairer)",
        ),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.6))
    for ax, (key, title) in zip(axes, panels, strict=True):
        values = [result["models"][m].get(key) or 0.0 for m in models]
        colors = [
            "#d1495b"
            if m == "tribes"
            else "#e8a3ad"
            if m in variants
            else "#c5ccd6"
            if m.endswith(", capped")
            else "#8d99ae"
            for m in models
        ]
        found = (
            result.get("intervals", {}).get(key.split(".")[0], {}).get("recall", {})
            if key.endswith(".recall")
            else {}
        )
        bounds = [found.get(m) for m in models]
        xerr = None
        if found and all(b is not None and np.isfinite(b).all() for b in bounds):
            xerr = np.array(
                [
                    [max(v - b[0], 0.0) for v, b in zip(values, bounds, strict=True)],
                    [max(b[1] - v, 0.0) for v, b in zip(values, bounds, strict=True)],
                ]
            )
        ax.barh(models, values, color=colors, xerr=xerr, error_kw={"elinewidth": 1, "capsize": 2})
        ax.set_title(title + (" (95%)" if xerr is not None else ""), fontsize=10)
        ax.invert_yaxis()
        right = [v + (0.0 if xerr is None else xerr[1][i]) for i, v in enumerate(values)]
        for y, v in enumerate(values):
            ax.text(right[y], y, f" {v:.3f}", va="center", fontsize=8)
        ax.set_xlim(0, max([*right, 1e-9]) * 1.3)
    return _save(fig, path)


def plot_tribe_graph(
    source,
    labels: np.ndarray,
    tribes: list[dict],
    path: str | Path,
    *,
    max_tribes: int = 12,
    max_nodes: int = 1200,
    seed: int = 0,
) -> Path:
    """The tribe graph: users of the largest tribes, coloured by tribe, linked by interaction.

    ``source``: a fitted model's ``interaction_`` ((U, U) sparse), or a snapshot with its texts
    (its interaction graph is built)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    from ..graph import build_graph
    from ..params import Params

    interaction = source if sp.issparse(source) else build_graph(source, Params()).interaction
    rng = np.random.default_rng(seed)
    keep_tribes = [k for k in range(min(max_tribes, int(labels.max()) + 1 if len(labels) else 0))]
    members = np.flatnonzero(np.isin(labels, keep_tribes))
    if len(members) > max_nodes:
        members = np.sort(rng.choice(members, size=max_nodes, replace=False))
    talk = (interaction + interaction.T).tocsr()[members][:, members].tocoo()
    g = nx.Graph()
    g.add_nodes_from(range(len(members)))
    g.add_edges_from((int(a), int(b)) for a, b in zip(talk.row, talk.col, strict=True) if a < b)
    pos = nx.spring_layout(g, seed=seed, k=1.5 / np.sqrt(max(len(members), 1)), iterations=60)
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(8, 8))
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.08, width=0.5)
    colors = [cmap(int(labels[m]) % 20) for m in members]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=12, node_color=colors, linewidths=0)
    for k in keep_tribes:
        idx = [i for i, m in enumerate(members) if labels[m] == k]
        if idx:
            xy = np.mean([pos[i] for i in idx], axis=0)
            label = tribes[k]["label"] if k < len(tribes) else f"tribe {k}"
            ax.text(
                xy[0],
                xy[1],
                label,
                fontsize=7,
                ha="center",
                bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
            )
    ax.set_title(
        f"{len(keep_tribes)} largest tribes ({len(members)} people), linked by conversation"
    )
    ax.axis("off")
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
