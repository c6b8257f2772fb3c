"""Splits, the evaluation runner and `tribes evaluate` on small synthetic data."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from tests.cli_helpers import run_cli_json, synthetic_events_file
from tribes.cli import main
from tribes.evaluation.report import evaluate, format_table, load_groups
from tribes.evaluation.splits import edge_holdout_split, read_events, time_split
from tribes.jsonl import open_output, write_jsonl
from tribes.synth import SynthConfig, generate, planted_truth

CONFIG = SynthConfig(n_users=300, seed=9)


@pytest.fixture(scope="module")
def events():
    return read_events(generate(CONFIG))


def test_time_split_truth_is_after_the_cut_and_new(events):
    split = time_split(events, fraction=0.8)
    snap = split.train
    assert snap.now <= split.cut
    assert split.future_partners.nnz > 0 and split.future_threads.nnz > 0
    # Partners are symmetric and had not exchanged replies before the cut.
    p = split.future_partners.tocsr()
    assert (p != p.T).nnz == 0
    child = snap.post_parent >= 0
    past = set(
        zip(
            snap.post_author[child].tolist(),
            snap.post_author[snap.post_parent[child]].tolist(),
            strict=True,
        )
    )
    rows, cols = p.nonzero()
    assert not any(
        (a, b) in past or (b, a) in past for a, b in zip(rows.tolist(), cols.tolist(), strict=True)
    )
    # Thread joins are threads that existed and the user had not posted in.
    posted = set(zip(snap.post_author.tolist(), snap.post_thread.tolist(), strict=True))
    r, t = split.future_threads.nonzero()
    assert not any((a, b) in posted for a, b in zip(r.tolist(), t.tolist(), strict=True))


def test_edge_holdout_removes_held_follows_from_train(events):
    split = edge_holdout_split(events, fraction=0.2, seed=3)
    snap = split.train
    train = set(zip(snap.follow_src.tolist(), snap.follow_dst.tolist(), strict=True))
    r, c = split.future_follows.nonzero()
    held = set(zip(r.tolist(), c.tolist(), strict=True))
    assert held and not held & train
    pr, pc = split.future_partners.nonzero()
    # Partners are exactly the held-out pairs held out in both directions.
    assert set(zip(pr.tolist(), pc.tolist(), strict=True)) == {
        (a, b) for a, b in held if (b, a) in held
    }


def test_evaluate_runs_every_model_with_the_same_users(events):
    split = time_split(events, fraction=0.8)
    result = evaluate(split, k=10, max_users=200, seed=1)
    assert set(result["models"]) == {
        "tribes",
        "popularity",
        "friends-of-friends",
        "content",
        "als",
        "ppr",
        "random",
    }
    for row in result["models"].values():
        for key in (
            "partners.recall",
            "threads.recall",
            "people.exposure_gini",
            "people.top1_followed_share",
        ):
            assert 0.0 <= row[key] <= 1.0
    # On planted tribes the conversation-first ranking finds future partners better than chance.
    assert (
        result["models"]["tribes"]["partners.recall"]
        > result["models"]["random"]["partners.recall"]
    )
    assert "tribes per list" in format_table(result)
    assert result["tribes"]["tribes"] >= 2
    # What a perfect list would reach, per truth, at least every model's recall.
    for key, ceiling in result["ceiling"].items():
        assert ceiling["users"] == result["models"]["tribes"][f"{key}.users"]
        assert all(
            row[f"{key}.recall"] <= ceiling["recall"] + 1e-12 for row in result["models"].values()
        )


def test_tribe_quality_against_planted_truth(events, tmp_path):
    split = time_split(events, fraction=0.8)
    with open_output(tmp_path / "truth.jsonl") as out:
        write_jsonl(planted_truth(CONFIG), out)
    labels, groups = load_groups(tmp_path / "truth.jsonl", split.train.user_ids)
    assert labels is not None and groups
    result = evaluate(split, ["tribes"], k=10, truth_labels=labels, truth_groups=groups)
    assert result["tribes"]["nmi"] >= 0.8
    assert 0 < result["tribes"]["best_match_f1"] <= 1
    assert 0.5 < result["tribes"]["weak_community_share"] <= 1  # planted tribes keep their ties
    assert result["tribes"]["method"] in (
        "cpm",
        "cpm-merged",
    )  # auto keeps CPM's tribes (a piece may merge)
    # What learning chose is reported: parameters of the model, printed on their own line.
    from dataclasses import fields

    from tribes.params import Params

    learned = result["learned"]
    assert learned and set(learned) <= {f.name for f in fields(Params)}
    line = next(x for x in format_table(result).splitlines() if x.startswith("learned: "))
    assert all(f"{name} {value:g}" in line for name, value in learned.items())


def test_cli_evaluate_json_and_plots(tmp_path):
    events = synthetic_events_file(tmp_path / "events.jsonl")
    plots = tmp_path / "plots"
    code, result = run_cli_json(
        [
            "-q",
            "evaluate",
            str(events),
            "--models",
            "tribes,popularity",
            "-k",
            "5",
            "--json",
            "--plots",
            str(plots),
        ]
    )
    assert code == 0
    assert set(result["models"]) == {"tribes", "popularity"}
    assert (plots / "metrics.png").stat().st_size > 1000
    assert (plots / "tribes.png").stat().st_size > 1000
    assert (plots / "tribe-map.png").stat().st_size > 1000


def test_cli_evaluate_bad_input(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.jsonl")]) == 2
    f = tmp_path / "e.jsonl"
    f.write_text('{"type":"user","id":"a","ts":1}\n')
    assert main(["evaluate", str(f), "--models", "nonsense"]) == 2
    assert "unknown model" in capsys.readouterr().err
    # --set seed=… used to crash with "got multiple values for keyword argument 'seed'".
    assert main(["evaluate", str(f), "--models", "tribes", "--set", "seed=3"]) == 2
    assert "--seed" in capsys.readouterr().err
    # Data that cannot be split (one user, no interactions) is an input error, not a crash.
    assert main(["evaluate", str(f), "--models", "tribes"]) == 2
    assert "cannot split" in capsys.readouterr().err


def test_cli_evaluate_refuses_a_split_that_leaves_nothing_to_test(tmp_path, capsys):
    # A table of zeros over no evaluated user looked like a result (exit 0).
    users = [{"type": "user", "id": u, "ts": 1_790_000_000} for u in "abcdef"]
    ring = [
        {"type": "follow", "src": a, "dst": b, "ts": 1_790_000_000}
        for a, b in zip("abcdef", "bcdefa", strict=True)
    ]
    graph = tmp_path / "graph.jsonl"  # follows all at one time, as an imported graph file has them
    graph.write_bytes(b"\n".join(orjson.dumps(e) for e in users + ring))
    assert main(["-q", "evaluate", str(graph), "--models", "popularity", "--split", "time"]) == 2
    err = capsys.readouterr().err
    assert (
        "nothing to test after --cut 0.8" in err
        and "every interaction is dated 2026-09-21T14:13:20Z" in err
    )
    assert "--split edges" in err
    messages = tmp_path / "messages.jsonl"  # replies only: no follow to hold out
    posts = [
        {
            "type": "post",
            "id": f"p{i}",
            "author": "abcdef"[i % 6],
            "ts": 1_790_000_000 + i,
            "text": "hi",
            **({"reply_to": f"p{i - 1}"} if i else {}),
        }
        for i in range(12)
    ]
    messages.write_bytes(b"\n".join(orjson.dumps(e) for e in users + posts))
    assert (
        main(["-q", "evaluate", str(messages), "--models", "popularity", "--split", "edges"]) == 2
    )
    assert (
        "nothing to hold out: --split edges holds out follows and the data has none (12 posts)"
        in capsys.readouterr().err
    )
    assert (
        main(
            [
                "-q",
                "evaluate",
                str(messages),
                "--models",
                "popularity",
                "--split",
                "time",
                "--cut",
                "0.5",
            ]
        )
        == 0
    )
    # A number of 1 or more is a time: say which, and where fractions are.
    assert main(["-q", "evaluate", str(messages), "--models", "popularity", "--cut", "1.5"]) == 2
    assert (
        "is read as the time 1970-01-01T00:00:01Z, and the data has none before it; a fraction of the data's "
        "time span is between 0 and 1"
    ) in capsys.readouterr().err
    # A graph file given as labels: point to the importer that reads its node attribute.
    graphml = tmp_path / "planted.graphml"
    graphml.write_text('<?xml version="1.0"?>\n<graphml>\n  <graph edgedefault="undirected">\n')
    assert (
        main(
            [
                "-q",
                "evaluate",
                str(messages),
                "--models",
                "popularity",
                "--cut",
                "0.5",
                "--labels",
                str(graphml),
            ]
        )
        == 2
    )
    assert "tribes import graph FILE --truth OUT" in capsys.readouterr().err


def test_combine_runs_averages_over_every_user_and_keeps_each_cut():
    """Two cuts: user-averaged metrics weigh each cut by its users, others plainly; ranges,
    summed counts, averaged tribe quality and what learning chose at each cut are kept."""
    from tribes.evaluation.report import combine_runs

    def run(partners, users, gini, nmi, learned, newcomers=None):
        return {
            "k": 5,
            "split": "time",
            "cut": 1000.0 + users,
            "users": users,
            "exposure_users": 50,
            "counts": {"future_partner_pairs": users * 2},
            "models": {
                "tribes": {
                    "partners.recall": partners,
                    "partners.users": users,
                    "people.exposure_gini": gini,
                    "fit_seconds": 1.0,
                }
            },
            "tribes": {"method": "cpm", "tribes": 4, "nmi": nmi},
            "learned": learned,
            "newcomers": newcomers,
            "ceiling": {"partners": {"recall": 1.0 - 0.01 * users, "users": users}},
        }

    out = combine_runs(
        [
            run(0.5, 30, 0.2, 0.8, {"w_tribe": 1.0}, {"users": 1200, "slot_weight": 0.025}),
            run(0.1, 10, 0.6, 0.6, None, {"users": 0, "slot_weight": None}),
        ],
        [0.7, 0.8],
    )
    assert out["ceiling"] == {
        "partners": {"recall": pytest.approx((0.7 * 30 + 0.9 * 10) / 40), "users": 40}
    }
    row = out["models"]["tribes"]
    assert row["partners.recall"] == pytest.approx((0.5 * 30 + 0.1 * 10) / 40)
    assert row["partners.users"] == 40
    assert row["people.exposure_gini"] == pytest.approx(0.4)
    assert out["spread"]["tribes"]["partners.recall"] == [0.1, 0.5]
    assert out["counts"] == {"future_partner_pairs": 80} and out["users"] == 40
    assert out["tribes"] == {"method": "cpm", "tribes": 4.0, "nmi": 0.7}
    assert out["learned"] == {"0.7": {"w_tribe": 1.0}, "0.8": None}
    assert [r["cut"] for r in out["runs"]] == [0.7, 0.8] and [r["cut_ts"] for r in out["runs"]] == [
        1030.0,
        1010.0,
    ]
    table = format_table(out)
    assert "min–max over the 2 cuts:" in table and "0.100–0.500" in table
    assert "a perfect list's recall@5 (the ceiling): conversation partners 0.7500" in table
    assert "learned (cut 0.7): w_tribe 1" in table and "learned (cut 0.8): nothing" in table
    assert out["newcomers"] == {
        "0.7": {"users": 1200, "slot_weight": 0.025},
        "0.8": {"users": 0, "slot_weight": None},
    }
    assert (
        "newcomer lists (tribes): cut 0.7 1,200 users (a slot weighs 0.025 of an active user's against the "
        "exposure budget)\n"
    ) in table
    with pytest.raises(ValueError):
        combine_runs([], [])


def test_cli_evaluate_explain_prints_why_learning_chose_what_it_did_per_cut(tmp_path, capsys):
    events = synthetic_events_file(tmp_path / "events.jsonl", n_users=400, seed=6)
    assert (
        main(["-q", "evaluate", str(events), "--models", "tribes", "--cut", "0.7,0.8", "--explain"])
        == 0
    )
    out = capsys.readouterr().out
    for cut in ("0.7", "0.8"):
        section = out.split(f"why learning chose this (cut {cut}):\n")[1]
        decisions = [
            line.split(":")[0].strip() for line in section.splitlines() if line.startswith("  ")
        ]
        assert decisions[:5] == [
            "blend",
            "mutual_contacts_index",
            "answer_exponent",
            "tribe_diversity",
            "popularity_floor",
        ]
    assert "a switch needs +2.43 SE" in out  # tribe_diversity: the best of three alternatives
    # Without --explain the table stays as it was; the JSON always carries the report, per cut.
    assert main(["-q", "evaluate", str(events), "--models", "tribes", "--cut", "0.7,0.8"]) == 0
    assert "why learning" not in capsys.readouterr().out
    code, result = run_cli_json(
        ["-q", "evaluate", str(events), "--models", "tribes", "--cut", "0.7,0.8", "--json"]
    )
    assert code == 0 and set(result["learning"]) == {"0.7", "0.8"}
    assert result["learning"]["0.8"][0]["parameter"] == "blend"


def test_cli_evaluate_several_cuts(tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    with open_output(events) as out:
        write_jsonl(generate(SynthConfig(n_users=200, seed=2)), out)
    capsys.readouterr()
    assert (
        main(
            [
                "-q",
                "evaluate",
                str(events),
                "--models",
                "popularity,random",
                "-k",
                "5",
                "--cut",
                "0.7, 0.8",
                "--json",
            ]
        )
        == 0
    )
    result = orjson.loads(capsys.readouterr().out)
    assert [r["cut"] for r in result["runs"]] == [0.7, 0.8]
    runs = [r["models"]["popularity"] for r in result["runs"]]
    users = [r["threads.users"] for r in runs]
    assert result["models"]["popularity"]["threads.recall"] == pytest.approx(
        sum(r["threads.recall"] * u for r, u in zip(runs, users, strict=True)) / sum(users)
    )
    # One run per cut, each exactly what that cut alone gives.
    assert (
        main(
            [
                "-q",
                "evaluate",
                str(events),
                "--models",
                "popularity,random",
                "-k",
                "5",
                "--cut",
                "0.8",
                "--json",
            ]
        )
        == 0
    )
    alone = orjson.loads(capsys.readouterr().out)["models"]

    def timeless(models):
        return {
            name: {k: v for k, v in row.items() if k != "fit_seconds"}
            for name, row in models.items()
        }

    assert timeless(alone) == timeless(result["runs"][1]["models"])
    assert (
        main(
            [
                "-q",
                "evaluate",
                str(events),
                "--models",
                "random",
                "--split",
                "edges",
                "--cut",
                "0.1,0.2",
            ]
        )
        == 2
    )
    assert "several cuts" in capsys.readouterr().err
    assert main(["-q", "evaluate", str(events), "--models", "random", "--cut", "0.7,soon"]) == 2
    assert "'soon'" in capsys.readouterr().err


def test_recall_intervals_and_cli_bootstrap(tmp_path, capsys):
    """Paired intervals of each recall and of tribes' lead: the lead over itself would be 0,
    the interval holds the point estimate, truths without users are left out."""
    from tribes.evaluation.report import recall_intervals

    nan = np.nan
    per_user = {
        "partners": {
            "tribes": np.array([1.0, 0.5, nan, 0.0]),
            "random": np.array([0.0, 0.5, nan, 0.0]),
        },
        "follows": {"tribes": np.full(4, nan), "random": np.full(4, nan)},
    }
    got = recall_intervals(per_user, 300, seed=2)
    assert set(got) == {"partners"}
    low, high = got["partners"]["recall"]["tribes"]
    assert low <= 0.5 <= high and low >= 0 and high <= 1
    lead = got["partners"]["tribes_minus"]["random"]
    assert lead[0] >= 0 and lead[1] <= 1 and set(got["partners"]["tribes_minus"]) == {"random"}
    assert (
        "tribes_minus"
        not in recall_intervals({"partners": {"random": per_user["partners"]["random"]}}, 50)[
            "partners"
        ]
    )

    events = tmp_path / "events.jsonl"
    with open_output(events) as out:
        write_jsonl(generate(SynthConfig(n_users=200, seed=2)), out)
    capsys.readouterr()
    assert (
        main(
            [
                "-q",
                "evaluate",
                str(events),
                "--models",
                "popularity,random",
                "-k",
                "5",
                "--bootstrap",
                "200",
                "--json",
            ]
        )
        == 0
    )
    result = orjson.loads(capsys.readouterr().out)
    assert result["bootstrap"] == 200 and "per_user" not in result
    for key, found in result["intervals"].items():
        for model, (low, high) in found["recall"].items():
            assert low - 1e-12 <= result["models"][model][f"{key}.recall"] <= high + 1e-12
    assert (
        main(
            [
                "-q",
                "evaluate",
                str(events),
                "--models",
                "tribes,random",
                "-k",
                "5",
                "--bootstrap",
                "100",
                "--cut",
                "0.7,0.8",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "95% interval" in table and "tribes minus it, 95%" in table
    assert main(["-q", "evaluate", str(events), "--models", "random", "--bootstrap", "-1"]) == 2


def test_metrics_plot_draws_intervals_when_there_are_any(tmp_path, monkeypatch):
    """Recall panels get error bars from ``intervals`` (none when an interval is unknown)."""
    import matplotlib.axes

    from tribes.evaluation.report import plot_metrics

    drawn = []
    real_barh = matplotlib.axes.Axes.barh

    def barh(self, y, width, *args, **kwargs):
        drawn.append(kwargs.get("xerr"))
        return real_barh(self, y, width, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "barh", barh)
    row = {
        "partners.recall": 0.3,
        "threads.recall": 0.1,
        "people.top1_followed_share": 0.1,
        "people.top1_replied_share": 0.2,
    }
    result = {
        "k": 5,
        "models": {"tribes": row, "random": {**row, "partners.recall": 0.1}},
        "intervals": {
            "partners": {"recall": {"tribes": [0.2, 0.4], "random": [0.05, 0.2]}},
            "threads": {"recall": {"tribes": [float("nan")] * 2, "random": [0.0, 0.2]}},
        },
    }
    assert plot_metrics(result, tmp_path / "m.png").stat().st_size > 1000
    assert np.allclose(drawn[0], [[0.1, 0.05], [0.1, 0.1]]) and drawn[1] is None
    assert drawn[2] is None and drawn[3] is None  # exposure panels: no intervals
