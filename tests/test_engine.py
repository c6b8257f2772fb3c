"""The recompute engine on planted synthetic networks: tribes, filters, reasons, fairness."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp

from tribes.candidates import SOURCES
from tribes.ingest import ingest_objects
from tribes.model import TribeModel
from tribes.store import Store, add_feedback
from tribes.synth import SynthConfig, generate, planted_truth

N_USERS = 1200


def nmi(a, b) -> float:
    """Normalised mutual information (arithmetic-free sqrt normalisation), slow and obvious."""
    n = len(a)
    ca, cb, cab = Counter(a), Counter(b), Counter(zip(a, b, strict=True))
    mi = sum(c / n * np.log(c * n / (ca[x] * cb[y])) for (x, y), c in cab.items())
    ha = -sum(c / n * np.log(c / n) for c in ca.values())
    hb = -sum(c / n * np.log(c / n) for c in cb.values())
    return float(mi / np.sqrt(ha * hb)) if ha > 0 and hb > 0 else 1.0


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """A synthetic store, a first model, and dismissals of some of its top suggestions."""
    config = SynthConfig(n_users=N_USERS, seed=11)
    url = f"sqlite:///{tmp_path_factory.mktemp('engine') / 'tribes.db'}"
    store = Store.open(url)
    assert ingest_objects(store, generate(config)).committed
    first = TribeModel(seed=1).fit(store)
    dismissed_people, dismissed_threads = [], []
    with store.transaction() as w:
        for u in range(0, N_USERS, 40):
            user = str(first.user_ids_[u])
            people = first.recommend_people(user, 1)
            threads = first.recommend_conversations(user, 1)
            if people:
                add_feedback(w, user, "user", people[0]["user_id"], "dismiss", 1.0)
                dismissed_people.append((user, people[0]["user_id"]))
            if threads:
                add_feedback(w, user, "thread", threads[0]["thread_id"], "dismiss", 1.0)
                dismissed_threads.append((user, threads[0]["thread_id"]))
    model = TribeModel(seed=1).fit(store, previous=first)
    truth = {t["user_id"]: t for t in planted_truth(config)}
    yield {
        "store": store,
        "first": first,
        "model": model,
        "truth": truth,
        "dismissed_people": dismissed_people,
        "dismissed_threads": dismissed_threads,
    }
    store.close()


def test_planted_tribes_are_recovered(network):
    model, truth = network["model"], network["truth"]
    users = [u for u in model.user_ids_ if u in truth]
    labels = dict(zip(model.user_ids_, model.labels_, strict=True))
    score = nmi([truth[u]["tribes"][0] for u in users], [labels[u] for u in users])
    assert score >= 0.9, score


def _forbidden_pairs(model) -> sp.csr_matrix:
    """Every (user, candidate) pair the filters forbid, built independently of the engine."""
    snap = model.snapshot_
    n = snap.n_users
    index = snap.user_index()
    rows = [
        np.arange(n),
        snap.follow_src,
        snap.block_src,
        snap.block_dst,
        snap.mute_src,
        snap.mute_dst,
    ]
    cols = [
        np.arange(n),
        snap.follow_dst,
        snap.block_dst,
        snap.block_src,
        snap.mute_dst,
        snap.mute_src,
    ]
    d = [(u, index[t]) for u, kind, t in snap.dismissed if kind == "user" and t in index]
    rows.append(np.array([x for x, _ in d], dtype=np.int64))
    cols.append(np.array([y for _, y in d], dtype=np.int64))
    hidden = np.flatnonzero(~snap.discoverable)
    rows.append(np.repeat(np.arange(n), len(hidden)))
    cols.append(np.tile(hidden, n))
    r = np.concatenate([np.asarray(x, np.int64) for x in rows])
    c = np.concatenate([np.asarray(x, np.int64) for x in cols])
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))


@pytest.mark.parametrize("source", [*SOURCES, "final ranking"])
def test_every_source_and_the_ranking_respect_the_filters(network, source):
    model = network["model"]
    forbidden = _forbidden_pairs(model)
    if source == "final ranking":
        items = model.arrays_["people_items"]
        rows, slots = np.nonzero(items >= 0)
        proposed = sp.csr_matrix(
            (np.ones(len(rows)), (rows, items[rows, slots])), shape=forbidden.shape
        )
    else:
        proposed = model.candidates_[source]
        assert proposed.nnz > 0, f"{source} proposed nobody"
    leaked = proposed.multiply(forbidden)
    assert leaked.nnz == 0, f"{source} proposed {leaked.nnz} forbidden pairs"


def test_filters_cover_blocks_mutes_and_hidden_users_in_the_data(network):
    snap = network["model"].snapshot_
    assert not snap.has_text and snap.n_posts > 0  # fit releases the strings after the graph stage
    # The synthetic network must exercise every filter, or the test above proves little.
    assert len(snap.block_src) and len(snap.mute_src) and (~snap.discoverable).any()
    assert network["dismissed_people"] and network["dismissed_threads"]


def test_dismissed_items_do_not_come_back(network):
    model = network["model"]
    for user, person in network["dismissed_people"]:
        assert person not in {p["user_id"] for p in model.recommend_people(user, 100)}
    for user, thread in network["dismissed_threads"]:
        assert thread not in {t["thread_id"] for t in model.recommend_conversations(user, 100)}


def test_conversations_exclude_threads_the_user_posted_in(network):
    model = network["model"]
    snap = model.snapshot_
    posted = {(int(a), int(t)) for a, t in zip(snap.post_author, snap.post_thread, strict=True)}
    items = model.arrays_["conv_items"]
    rows, slots = np.nonzero(items >= 0)
    assert len(rows) > 0
    assert not any((int(u), int(items[u, s])) in posted for u, s in zip(rows, slots, strict=True))
    # ...and only live threads are suggested.
    assert model.arrays_["thread_live"][items[rows, slots]].all()


def test_every_item_has_a_reason(network):
    model = network["model"]
    for u in model.user_ids_[::25]:
        for item in model.recommend_people(str(u), 50) + model.recommend_conversations(str(u), 30):
            assert item["reasons"], item
            for reason in item["reasons"]:
                assert reason["kind"] and reason["text"]


def test_reason_texts_agree_with_their_counts(network):
    """ "1 of your contacts knows them", "with 1 person": the wording follows the number."""
    model = network["model"]
    contacts, participants = Counter(), Counter()
    for u in model.user_ids_[::5]:
        for item in model.recommend_people(str(u), 50):
            for reason in item["reasons"]:
                if reason["kind"] == "mutual_contacts":
                    n = reason["count"]
                    verb = "knows" if n == 1 else "know"
                    assert reason["text"].startswith(f"{n} of your contacts {verb} them ("), reason
                    contacts[n == 1] += 1
        for item in model.recommend_conversations(str(u), 30):
            for reason in item["reasons"]:
                if reason["kind"] == "active_thread":
                    n = reason["participants"]
                    noun = "person" if n == 1 else "people"
                    assert reason["text"].endswith(f" with {n} {noun}"), reason
                    participants[n == 1] += 1
    assert contacts[True] and contacts[False], contacts
    assert participants[False], participants
    # A thread whose other participants are hidden from the viewer shows one person.
    rec = model.recommender()
    t = next(t for t in range(len(rec.thread_ids)) if len(rec.thread_users.row(t)) >= 2)
    others = [str(model.user_ids_[x]) for x in rec.thread_users.row(t).tolist()[1:]]
    reason = next(
        r for r in rec._thread(None, t, 1.0, 0, others)["reasons"] if r["kind"] == "active_thread"
    )
    assert reason["participants"] == 1 and reason["text"].endswith(" with 1 person"), reason


def test_tribes_say_how_much_conversation_they_keep_inside_and_older_models_say_null(network):
    from tribes.communities import kept_inside
    from tribes.serving import Recommender, tribe_summary

    model = network["model"]
    expected = kept_inside(model.interaction_, model.labels_)
    assert [t["cohesion"] for t in model.tribes_] == [round(float(x), 4) for x in expected]
    # Planted tribes talk mostly among themselves.
    assert np.median(expected) > 0.5
    # A model saved before cohesion was measured still serves its tribes, with cohesion null.
    older = Recommender(
        model.arrays_,
        model.manifest(),
        [{k: v for k, v in t.items() if k != "cohesion"} for t in model.tribes_],
    )
    assert tribe_summary(older.tribe_page(0))["cohesion"] is None
    assert tribe_summary(model.recommender().tribe_page(0))["cohesion"] == expected[0].round(4)


def test_shared_topic_reasons_name_the_telling_topics_and_older_models_agree(network):
    from tribes.serving import Recommender
    from tribes.text import shared_topics, term_specificity

    model = network["model"]
    rec = model.recommender()
    user_topic = sp.csr_matrix(
        (
            model.arrays_["user_topic_data"],
            model.arrays_["user_topic_indices"],
            model.arrays_["user_topic_indptr"],
        ),
        shape=(len(model.user_ids_), len(model.arrays_["vocabulary"])),
    )
    specificity = term_specificity(user_topic)
    np.testing.assert_array_equal(rec.topic_specificity, specificity)
    # A model saved before the array existed computes the same weights when it is opened.
    older = Recommender(
        {k: v for k, v in model.arrays_.items() if k != "topic_specificity"},
        model.manifest(),
        model.tribes_,
    )
    vocab = model.arrays_["vocabulary"]
    seen = reordered = 0
    for u in range(0, len(model.user_ids_), 15):
        mine = model.recommend_people(str(model.user_ids_[u]), 10)
        assert older.people(str(model.user_ids_[u]), 10) == mine
        for item in mine:
            c = rec.index_of(item["user_id"])
            topics = [r["topics"] for r in item["reasons"] if r["kind"] == "shared_topics"]
            expected = shared_topics(user_topic[u], user_topic[c], vocab, specificity=specificity)
            assert topics == ([expected] if expected else [])
            seen += bool(expected)
            reordered += bool(expected) and expected != shared_topics(
                user_topic[u], user_topic[c], vocab
            )
    assert seen > 100 and reordered > 10  # the weighting changes what many reasons say


def test_open_threads_say_so_in_their_reasons(network):
    """With ``w_thread_open`` on, the threads offered to everyone carry the ``open_to_all``
    reason, and only they: the flag is what the reason is read from."""
    from tribes.conversations import THREAD_FLAGS

    model = TribeModel(seed=1, learn_weights=0, w_thread_open=0.2).fit(network["store"])
    items, flags = model.arrays_["conv_items"], model.arrays_["conv_flags"]
    open_to_all = (flags & THREAD_FLAGS["open_to_all"]) > 0
    assert open_to_all[items >= 0].any() and not open_to_all[items >= 0].all()
    seen = 0
    for u in range(0, len(model.user_ids_), 50):
        listed = model.recommend_conversations(str(model.user_ids_[u]), 30)
        flagged = {str(model.snapshot_.thread_ids[t]) for t in items[u][open_to_all[u]]}
        for item in listed:
            kinds = [reason["kind"] for reason in item["reasons"]]
            assert ("open_to_all" in kinds) == (item["thread_id"] in flagged), item
            seen += "open_to_all" in kinds
    assert seen > 0


def test_broadcasters_do_not_dominate_people_suggestions(network):
    model, truth = network["model"], network["truth"]
    items = model.arrays_["people_items"][:, :20]
    shown = np.bincount(items[items >= 0], minlength=len(model.user_ids_))
    broadcasters = [
        i for i, u in enumerate(model.user_ids_) if truth.get(u, {}).get("role") == "broadcaster"
    ]
    assert broadcasters
    share = shown[broadcasters].sum() / shown.sum()
    population_share = len(broadcasters) / len(model.user_ids_)
    assert share <= 3 * population_share, share
    top = np.argsort(-model.arrays_["followers"], kind="stable")[: max(1, len(shown) // 100)]
    assert shown[top].sum() / shown.sum() <= 0.2


def test_exposure_budget_caps_each_person(network):
    model = network["model"]
    items = model.arrays_["people_items"]
    shown = np.bincount(items[items >= 0])
    listed = int((items >= 0).any(axis=1).sum())
    params = model.get_params()
    budget = max(
        params["exposure_budget_min"],
        min(params["exposure_budget_max"], int(np.ceil(params["exposure_budget_share"] * listed))),
    )
    assert shown.max() <= budget


def test_most_users_get_suggestions(network):
    manifest = network["model"].manifest()
    summary = manifest["summary"]
    # CPM-based
    assert manifest["tribe_method"] == network["model"].tribe_method_ in ("cpm", "cpm-merged")
    assert summary["users_with_people"] >= 0.8 * N_USERS
    assert summary["users_with_conversations"] >= 0.5 * N_USERS


def test_tribe_ids_are_stable_across_recomputes_of_slightly_changed_data(network):
    store, model = network["store"], network["model"]
    # A few more follows and a new user, then recompute against the previous model.
    events = [
        {
            "type": "follow",
            "src": str(model.user_ids_[i]),
            "dst": str(model.user_ids_[i + 7]),
            "ts": 1.8e9,
        }
        for i in range(0, 300, 10)
    ] + [{"type": "user", "id": "late-arrival", "ts": 1.8e9}]
    assert ingest_objects(store, events).committed
    again = TribeModel(seed=2).fit(store, previous=model)
    old = dict(zip(model.user_ids_, model.tribe_ids_[model.labels_], strict=True))
    new = dict(zip(again.user_ids_, again.tribe_ids_[again.labels_], strict=True))
    same = [u for u in old if u in new and model.labels_[list(model.user_ids_).index(u)] >= 0]
    agree = np.mean([old[u] == new[u] for u in same])
    assert agree >= 0.9, agree


def test_fitted_and_saved_models_answer_alike(network, tmp_path):
    model = network["model"]
    path = model.save(tmp_path / "m")
    loaded = TribeModel.load(path)
    for u in model.user_ids_[::97]:
        assert loaded.people(str(u), 10) == model.recommend_people(str(u), 10)
        assert loaded.conversations(str(u), 5) == model.recommend_conversations(str(u), 5)
        assert loaded.user_tribes(str(u)) == model.recommender().user_tribes(str(u))
    assert isinstance(loaded.mapped["people_items"], np.memmap)
    assert np.shares_memory(loaded.arrays["people_items"], loaded.mapped["people_items"])


def test_params_follow_scikit_learn_conventions():
    model = TribeModel(resolution=2.0)
    assert model.get_params()["resolution"] == 2.0
    assert model.set_params(w_topic=0.1) is model and model.w_topic == 0.1
    with pytest.raises(TypeError):
        TribeModel(not_a_param=1)
    with pytest.raises(ValueError, match="tribe_diversity"):
        TribeModel(tribe_diversity=3.0).fit([{"type": "user", "id": "a", "ts": 1}])


def test_tiny_and_empty_inputs_fit():
    model = TribeModel().fit([{"type": "follow", "src": "a", "dst": "b", "ts": 1}])
    assert model.recommend_people("a") == []
    assert TribeModel().fit([]).tribes_ == []


def test_conversations_hide_threads_of_hidden_blocked_or_muted_authors(network):
    model = network["model"]
    snap = model.snapshot_
    root = model.arrays_["thread_root_author"]
    items = model.arrays_["conv_items"]
    rows, slots = np.nonzero(items >= 0)
    authors = root[items[rows, slots]]
    has = authors >= 0
    assert snap.discoverable[authors[has]].all()
    blocked = set(zip(snap.block_src.tolist(), snap.block_dst.tolist(), strict=True))
    blocked |= set(zip(snap.mute_src.tolist(), snap.mute_dst.tolist(), strict=True))
    blocked |= {(b, a) for a, b in blocked}
    assert not any(
        (int(u), int(a)) in blocked for u, a in zip(rows[has], authors[has], strict=True)
    )
    assert (~snap.discoverable).any() and any(
        root[t] >= 0 and not snap.discoverable[root[t]]
        for t in np.flatnonzero(model.arrays_["thread_live"])
    )


def test_ranking_in_user_blocks_gives_the_same_lists_as_one_block(network, monkeypatch):
    """rank_people scores pairs in blocks of users and keeps only compact arrays across them;
    the exposure budget and ties (a seeded pair hash) must not depend on the block size."""
    from tribes import ranking
    from tribes.model import _candidates, snapshot_from
    from tribes.params import Params

    snap = snapshot_from(network["store"])
    ctx, candidates, _ = _candidates(snap, Params(seed=1).validate(), False)
    whole = ranking.rank_people(ctx, candidates)
    monkeypatch.setattr(ranking, "_SCORE_CHUNK", 500)  # dozens of blocks
    assert len(ranking._row_blocks(candidates, snap.n_users, 500)) > 10
    blocks = ranking.rank_people(ctx, candidates)
    assert np.array_equal(whole.items, blocks.items)
    assert np.array_equal(whole.scores, blocks.scores)
    assert np.array_equal(whole.flags, blocks.flags)
    # A tiny budget makes many candidates crowded: still at most `budget` lists each.
    tight = replace_params(ctx, exposure_budget_max=3, exposure_budget_min=3)
    items = ranking.rank_people(tight, candidates).items
    assert np.bincount(items[items >= 0]).max() == 3


def replace_params(ctx, **changes):
    from dataclasses import replace

    return replace(ctx, params=replace(ctx.params, **changes))


def test_someone_with_only_declared_interests_is_shown_the_tribe_that_shares_them():
    # Sign-up with interests and nothing else yet: the profile is the only evidence, and it
    # should lead to the people and conversations of the tribe that talks about those topics.
    config = SynthConfig(n_users=400, seed=3)
    events = list(generate(config))
    truth = {t["user_id"]: set(t["tribes"]) for t in planted_truth(config)}
    tribe = Counter(t for tribes in truth.values() for t in tribes).most_common(1)[0][0]
    members = {u for u, tribes in truth.items() if tribes == {tribe}}
    shared = Counter(
        tag
        for e in events
        if e["type"] == "user" and e["id"] in members
        for tag in e.get("interests", [])
    )
    interests = [tag for tag, _ in shared.most_common(3)]
    joined = "2026-10-31T12:00:00Z"  # inside the data's last days: its threads are still live
    events += [
        {"type": "user", "id": "newbie", "ts": joined, "interests": interests},
        {"type": "user", "id": "blank", "ts": joined},
    ]
    model = TribeModel(seed=0).fit(events)

    people = model.recommend_people("newbie", k=10)
    assert len(people) == 10
    assert sum(tribe in truth[p["user_id"]] for p in people) >= 8
    assert "shared_topics" in {r["kind"] for r in people[0]["reasons"]}
    threads = model.recommend_conversations("newbie", k=5)
    assert threads and all(
        {r["kind"] for r in t["reasons"]} & {"shared_topics", "same_tribe"} for t in threads
    )
    # Someone with no interests at all gets the most welcoming people instead: not that tribe.
    blank = model.recommend_people("blank", k=10)
    assert sum(tribe in truth[p["user_id"]] for p in blank) <= 4
