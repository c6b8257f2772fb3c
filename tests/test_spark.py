"""The Spark engine against the local engine on one planted network (marker ``spark``).

Both engines fit the same store with the same parameters (``learn_weights=0`` here, so that
the comparisons below are of the engines' own stages; with learning on, both learn the same
values: ``test_the_spark_engine_learns_what_the_local_engine_learns``). Stated tolerances:

* tribes agree up to relabelling: NMI >= 0.9 (the Spark engine optimises the same CPM
  objective by local moving instead of Leiden);
* top-10 people suggestions overlap: mean Jaccard >= 0.5 and mean recall of the local top 10
  >= 0.6 over users with suggestions (MLlib's ALS differs from ``implicit``'s, and exposure
  ties are broken by a hash instead of a random draw);
* the interaction graph and the affinity built with DataFrames equal the local matrices
  (within 1e-5);
* every source but ALS shares >= 95% of its pairs with the local one, values within 1e-3;
* the privacy filters hold exactly, in every source and in the final lists.

One SparkSession for the module; the tests share one xdist group, so ``pytest -n 2 --dist
loadgroup`` runs them in one worker.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tests.test_engine import _forbidden_pairs, nmi
from tribes.artifacts import ModelStore
from tribes.cli import main
from tribes.ingest import ingest_objects
from tribes.model import TribeModel
from tribes.params import Params
from tribes.store import Store, add_feedback
from tribes.synth import SynthConfig, generate, planted_truth

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

N_USERS = 400
PARAMS = {"seed": 1, "learn_weights": 0}


def _spark_ready() -> str | None:
    from tribes.spark import SparkUnavailable, check_spark

    try:
        check_spark()
    except SparkUnavailable as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def spark():
    reason = _spark_ready()
    if reason:
        pytest.skip(reason)
    from tribes.spark.session import spark_session

    with spark_session("local[2]", partitions=2, driver_memory="1g") as session:
        yield session


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    """A store with dismissals, a local model and a Spark model of it."""
    from tribes.spark.engine import fit_spark

    config = SynthConfig(n_users=N_USERS, seed=5)
    root = tmp_path_factory.mktemp("spark")
    url = f"sqlite:///{root / 'tribes.db'}"
    store = Store.open(url)
    events = list(generate(config))
    joined = max(e["ts"] for e in events if e["type"] == "user")
    # nothing done yet
    newcomers = [{"type": "user", "id": f"zz-new-{i}", "ts": joined} for i in range(3)]
    assert ingest_objects(store, events + newcomers).committed
    first = TribeModel(**PARAMS).fit(store)
    with store.transaction() as w:
        for u in range(0, N_USERS, 25):
            user = str(first.user_ids_[u])
            for item in first.recommend_people(user, 2):
                add_feedback(w, user, "user", item["user_id"], "dismiss", 1.0)
    local = TribeModel(**PARAMS).fit(store, previous=first)
    fitted = fit_spark(spark, store, PARAMS, previous=first, collect_candidates=True)
    yield {
        "store": store,
        "url": url,
        "root": root,
        "local": local,
        "spark": fitted,
        "config": config,
    }
    store.close()


def test_graph_and_affinity_frames_equal_the_local_matrices(world):
    from tribes.affinity import topic_neighbours, user_affinity
    from tribes.graph import build_graph

    fitted, p = world["spark"], Params(**PARAMS)
    graph = build_graph(fitted.snapshot_, p)
    assert fitted.interaction_.nnz == graph.interaction.nnz > 0
    assert abs(fitted.interaction_ - graph.interaction).max() < 1e-5
    k = max(p.topic_neighbours, p.candidates_per_source)
    knn = topic_neighbours(
        graph.user_topic, k=k, min_similarity=p.min_topic_similarity, max_df=p.knn_max_df
    )
    want = user_affinity(graph, p, knn=knn)
    assert fitted.affinity_.nnz == want.nnz > 0
    assert abs(fitted.affinity_ - want).max() < 1e-5


def test_tribes_agree_up_to_relabelling(world):
    local, fitted = world["local"], world["spark"]
    assert len(fitted.tribes_) > 1
    assert nmi(list(local.labels_), list(fitted.labels_)) >= 0.9
    truth = {t["user_id"]: t["tribes"][0] for t in planted_truth(world["config"])}
    users = [i for i, u in enumerate(fitted.user_ids_) if u in truth]
    assert (
        nmi([truth[fitted.user_ids_[i]] for i in users], [fitted.labels_[i] for i in users]) >= 0.9
    )


def test_top_people_largely_overlap(world):
    def top10(model):
        return [set(row[row >= 0][:10].tolist()) for row in model.arrays_["people_items"]]

    pairs = [(a, b) for a, b in zip(top10(world["local"]), top10(world["spark"]), strict=True) if a]
    assert len(pairs) > 0.8 * N_USERS
    jaccard = np.mean([len(a & b) / len(a | b) for a, b in pairs])
    recall = np.mean([len(a & b) / len(a) for a, b in pairs])
    assert jaccard >= 0.5 and recall >= 0.6, (jaccard, recall)


@pytest.mark.parametrize(
    "source", ["conversation_2hop", "follow_2hop", "same_tribe", "shared_interests", "ppr"]
)
def test_deterministic_sources_match_the_local_engine(world, source):
    """Every source but ALS computes the same thing on both engines (tribes agreeing): at
    least 95% of the pairs are shared and the values agree on them."""
    local, fitted = world["local"].candidates_[source], world["spark"].candidates_[source]
    shared = local.multiply(fitted > 0)
    assert shared.nnz >= 0.95 * max(local.nnz, fitted.nnz), (shared.nnz, local.nnz, fitted.nnz)
    both = (local > 0).multiply(fitted > 0).tocoo()
    a = np.asarray(local[both.row, both.col]).ravel()
    b = np.asarray(fitted[both.row, both.col]).ravel()
    assert np.allclose(a, b, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize(
    "source",
    [
        "conversation_2hop",
        "follow_2hop",
        "same_tribe",
        "shared_interests",
        "als",
        "ppr",
        "final ranking",
    ],
)
def test_every_source_and_the_lists_respect_the_filters(world, source):
    fitted = world["spark"]
    forbidden = _forbidden_pairs(fitted)
    if source == "final ranking":
        items = fitted.arrays_["people_items"]
        rows, slots = np.nonzero(items >= 0)
        proposed = sp.csr_matrix(
            (np.ones(len(rows)), (rows, items[rows, slots])), shape=forbidden.shape
        )
    else:
        proposed = fitted.candidates_[source]
    assert proposed.nnz > 0, f"{source} proposed nobody"
    assert proposed.multiply(forbidden).nnz == 0


def test_the_data_exercises_every_filter(world):
    snap = world["spark"].snapshot_
    assert len(snap.block_src) and len(snap.mute_src) and (~snap.discoverable).any()
    assert any(kind == "user" for _, kind, _ in snap.dismissed)


def test_same_model_format_and_it_serves(world, tmp_path):
    local, fitted = world["local"], world["spark"]
    assert set(fitted.arrays_) == set(local.arrays_)
    for name, array in local.arrays_.items():
        assert fitted.arrays_[name].dtype == array.dtype, name
        assert fitted.arrays_[name].shape[1:] == array.shape[1:], name
    fitted.save(tmp_path / "model")
    served = TribeModel.load(tmp_path / "model")
    assert served.manifest["engine"]["name"] == "spark"
    assert served.manifest["tribe_method"] == "cpm"  # local moving on CPM, whatever the objective
    user = str(fitted.user_ids_[3])
    people = served.people(user, 5)
    assert people and all(item["reasons"] for item in people)
    assert [p["user_id"] for p in people] == [
        p["user_id"] for p in fitted.recommend_people(user, 5)
    ]


def test_both_engines_welcome_the_same_newcomers(world):
    """Users who had done nothing get the most welcoming people in either engine (the fill runs
    after ranking, on each engine's lists), marked and with the newcomers' reason."""
    from tribes.ranking import REASON_FLAGS

    rows = {}
    for name in ("local", "spark"):
        model = world[name]
        marked = np.flatnonzero(model.arrays_["people_newcomer"])
        assert sorted(model.user_ids_[marked].tolist()) == ["zz-new-0", "zz-new-1", "zz-new-2"]
        items, flags = model.arrays_["people_items"][marked], model.arrays_["people_flags"][marked]
        assert (items[:, 0] >= 0).all() and (
            flags[items >= 0] == REASON_FLAGS["answers_newcomers"]
        ).all()
        rows[name] = set(items[items >= 0].tolist())
    assert len(rows["local"] & rows["spark"]) >= 0.5 * len(rows["local"])


def test_cli_recompute_with_the_spark_engine_publishes_a_version(world, capsys):
    models = str(world["root"] / "models")
    argv = ["--db", world["url"], "--models", models, "-q"]
    assert (
        main(
            [
                *argv,
                "recompute",
                "--engine",
                "spark",
                "--master",
                "local[2]",
                "--set",
                "learn_weights=0",
            ]
        )
        == 0
    )
    version = capsys.readouterr().out.strip()
    assert ModelStore(models).current() == version
    assert ModelStore(models).versions()[0].manifest["engine"]["name"] == "spark"
    assert main([*argv, "suggest", "u000010", "--kind", "people", "--limit", "3"]) == 0
    assert '"items"' in capsys.readouterr().out


@pytest.mark.parametrize("broken", ["engine", "pyspark", "java"])
def test_recompute_with_spark_unavailable_or_a_bad_engine_exits_2(
    broken, tmp_path, monkeypatch, capsys
):
    import importlib.util
    import shutil

    if broken == "pyspark":
        real = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a: None if name == "pyspark" else real(name, *a),
        )
    if broken == "java":
        monkeypatch.delenv("JAVA_HOME", raising=False)
        monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    engine = "gpu" if broken == "engine" else "spark"
    code = main(
        [
            "--db",
            f"sqlite:///{tmp_path / 'x.db'}",
            "--models",
            str(tmp_path / "m"),
            "recompute",
            "--engine",
            engine,
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert {"engine": "expected local or spark", "pyspark": "pip install", "java": "Java"}[
        broken
    ] in err


def test_the_top_exposure_cap_gives_the_local_engines_lists(world, spark):
    """Both engines rank the same candidates into the same capped lists: the top accounts
    made ideal (they answer everyone, always active; no damping) so the cap binds; the
    relative mutual contacts (``mutual_share``) weigh in too."""
    from dataclasses import replace

    import pandas as pd

    from tribes import ranking
    from tribes.model import _candidates, snapshot_from
    from tribes.spark.engine import _people_arrays
    from tribes.spark.rank import rank_frames
    from tribes.sparse import row_normalize

    snap = snapshot_from(world["store"])
    p = Params(**PARAMS, popularity_floor=1.0, top_exposure_cap=0.1, w_mutual_share=0.5).validate()
    ctx, candidates, _ = _candidates(snap, p, False)
    top = ranking.top_accounts(snap, ctx.behaviour.followers)
    b = ctx.behaviour
    ideal = replace(
        b,
        answer_rate=np.where(top, 1.0, b.answer_rate).astype(np.float32),
        activity=np.where(top, 1.0, b.activity).astype(np.float32),
        answer_rate_by_tribe=sp.csr_matrix(b.answer_rate_by_tribe.shape, dtype=np.float32),
    )
    ctx = replace(ctx, behaviour=ideal)
    local = ranking.rank_people(ctx, candidates)
    free = ranking.rank_people(replace(ctx, params=replace(p, top_exposure_cap=1.0)), candidates)

    def frame(m, names):
        m = m.tocoo()
        return spark.createDataFrame(
            pd.DataFrame({names[0]: m.row, names[1]: m.col, names[2]: m.data.astype(np.float64)}),
            f"{names[0]} long, {names[1]} long, {names[2]} double",
        )

    shared = {
        "labels": ctx.labels,
        "behaviour": ideal,
        "memberships": ctx.memberships.tocsr(),
        "topic": row_normalize(ctx.graph.user_topic, "l2").tocsr(),
        "top": top,
    }
    lists = rank_frames(
        spark,
        {name: frame(m, ("u", "c", "w")) for name, m in candidates.items()},
        frame(ctx.graph.interaction, ("src", "dst", "w")),
        shared,
        p,
        pivot=ranking.popularity_pivot(p, ideal.followers),
        partitions=2,
    )
    remote = _people_arrays(lists, snap.n_users, p.max_people, {}, top)

    def head_share(items):
        return (top[items[:, 0][items[:, 0] >= 0]]).mean()

    assert head_share(free.items) > 0.3 and head_share(local.items) <= 0.1
    assert np.array_equal(remote.items, local.items)
    assert np.allclose(remote.scores, local.scores, rtol=1e-6)
    assert np.array_equal(remote.flags, local.flags)


@pytest.mark.parametrize("index", ["adamic_adar", "resource_allocation"])
def test_mutual_contacts_give_the_local_sums_either_way(world, spark, index):
    """Both ways of counting a shared contact give the local engine's sums (before filters)."""
    import scipy.sparse as sp

    from tribes.candidates import contact_graph, shared_contact_weight
    from tribes.model import _candidates, snapshot_from
    from tribes.spark.candidates import _mutual_contacts
    from tribes.sparse import binary, top_k_per_row

    p = Params(**PARAMS, mutual_contacts_index=index, mutual_contacts_max=10_000).validate()
    ctx, _, _ = _candidates(snapshot_from(world["store"]), p, False)
    contacts = contact_graph(ctx.graph)
    weight = shared_contact_weight(np.diff(contacts.indptr), p)
    left = binary(top_k_per_row(contacts @ sp.diags(weight), p.mutual_contacts_max))
    expected = (left @ sp.diags(weight) @ contacts).tocsr()
    c = contacts.tocoo()
    frame = spark.createDataFrame(
        [(int(u), int(v)) for u, v in zip(c.row, c.col, strict=True)], ["u", "c"]
    )
    rows = _mutual_contacts(frame, p).collect()
    got = sp.csr_matrix(
        ([r["w"] for r in rows], ([r["u"] for r in rows], [r["c"] for r in rows])),
        shape=expected.shape,
    )
    assert got.nnz > 0 and abs(got - expected).max() < 1e-4


def test_the_spark_engine_learns_what_the_local_engine_learns(world, spark):
    """Learning runs on the driver with the local engine's code: the same choices on the same
    store, recorded the same way, and the Spark lists ranked with them."""
    from tribes.spark.engine import fit_spark

    params = {"seed": 1, "learn_weights": 1}
    local = TribeModel(**params).fit(world["store"])
    fitted = fit_spark(spark, world["store"], params)
    assert local.learned_weights_ and fitted.learned_weights_ == local.learned_weights_
    assert fitted.learning_report_ == local.learning_report_
    manifest = fitted.manifest()
    assert (
        manifest["learned_weights"] == local.learned_weights_
        and "learn_weights" not in manifest["engine"]
    )
    assert "learn_weights" in fitted.timings_
    # Ranked with the learned weights: the lists agree with the local engine's as with fixed ones.
    pairs = [
        (set(a[a >= 0][:10].tolist()), set(b[b >= 0][:10].tolist()))
        for a, b in zip(local.arrays_["people_items"], fitted.arrays_["people_items"], strict=True)
    ]
    pairs = [(a, b) for a, b in pairs if a]
    assert np.mean([len(a & b) / len(a) for a, b in pairs]) >= 0.6
