"""Lists for users the ranking has nothing for (tribes.newcomers)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tribes.model import TribeModel
from tribes.newcomers import welcome_newcomers, welcoming_people
from tribes.planted import PartitionConfig, partition_events
from tribes.ranking import REASON_FLAGS, RankedPeople, top_accounts
from tribes.synth import SynthConfig, generate


def ranked(items: np.ndarray) -> RankedPeople:
    return RankedPeople(
        items=items.astype(np.int32),
        scores=np.where(items >= 0, 0.5, 0).astype(np.float32),
        flags=np.zeros(items.shape, dtype=np.uint8),
        sources={"x": 1},
        top=np.zeros(len(items), dtype=bool),
    )


def test_empty_lists_get_the_most_welcoming_people_within_budget_cap_and_filters():
    n, width = 200, 10
    rng = np.random.default_rng(0)
    items = np.full((n, width), -1)
    items[:40] = rng.choice(np.arange(40, 200), size=(40, width))  # 40 users with lists already
    welcome = np.zeros(n, dtype=np.float32)
    welcome[100:160] = np.linspace(0.9, 0.3, 60)  # 60 welcoming people, 100 the most
    is_top = np.zeros(n, dtype=bool)
    is_top[[100, 101, 102, 103]] = True  # the four most welcoming are top accounts
    # 45 blocked 104, 50 105
    exclusion = sp.csr_matrix((np.ones(2), ([45, 50], [104, 105])), shape=(n, n))
    budget, cap = 40, 0.2
    out = welcome_newcomers(ranked(items), welcome, is_top, exclusion, budget, cap)
    # Lists that had items are untouched; the 160 empty ones are (nearly) full: a filtered
    # person, themselves (the welcoming have no lists either here) or the end of the supply
    # leaves a gap.
    assert (out.items[:40] == items[:40]).all() and (out.scores[:40] == 0.5).all()
    new = out.items[40:]
    length = (new >= 0).sum(axis=1)
    assert (length >= width - 2).all() and (length == width).mean() > 0.85
    assert out.newcomers.tolist() == [False] * 40 + [True] * 160
    # Nobody beyond the budget over all lists; nobody twice in a list; no filtered pair.
    assert np.bincount(out.items[out.items >= 0], minlength=n).max() <= budget
    assert all(len(set(row[row >= 0])) == (row >= 0).sum() for row in new)
    assert 104 not in out.items[45] and 105 not in out.items[50]
    assert all(u not in out.items[u] for u in range(40, 200))
    # Every prefix of a newcomer's list holds at most floor(cap × length) top accounts.
    top = is_top[np.maximum(new, 0)] & (new >= 0)
    assert (np.cumsum(top, axis=1) <= np.floor(cap * np.arange(1, width + 1) + 1e-9)).all()
    assert top.any()  # ...and they do get some (positions 5 and 10)
    # The first slots go to the most welcoming people who are not top accounts; the reason says why.
    assert new[0, 0] == 104 and welcome[new[:, 0]].min() >= welcome[new[:, -1]].max()
    assert (out.flags[40:][new >= 0] == REASON_FLAGS["answers_newcomers"]).all()
    assert (np.diff(out.scores[40:], axis=1) <= 0).all()
    assert out.sources == {"x": 1, "welcome_newcomers": int(length.sum())}


def test_when_the_other_people_run_out_top_accounts_do_not_take_the_list_over():
    n, width = 50, 10
    items = np.full((n, width), -1)
    welcome = np.zeros(n, dtype=np.float32)
    welcome[[0, 1, 2]] = [0.9, 0.8, 0.7]  # three welcoming people, two of them top accounts
    is_top = np.zeros(n, dtype=bool)
    is_top[[0, 1]] = True
    out = welcome_newcomers(
        ranked(items), welcome, is_top, sp.csr_matrix((n, n)), budget=100, cap=0.2
    )
    lists = out.items[3:]
    assert (lists[:, 0] == 2).all() and (
        lists[:, 1:] == -1
    ).all()  # one slot: no top account may come first
    # Nobody welcoming at all: nothing changes.
    none = welcome_newcomers(
        ranked(items), np.zeros(n, np.float32), is_top, sp.csr_matrix((n, n)), 100, 0.2
    )
    assert (none.items == -1).all() and none.newcomers is None


def test_welcoming_people_are_active_discoverable_and_have_answered_people_who_reached_out():
    activity = np.array([1.0, 0.2, 1.0, 1.0, 1.0, 0.5, 1.0], dtype=np.float32)
    reached = np.array([5, 5, 1, 5, 5, 400, 2])
    answered = np.array([4, 4, 1, 0, 4, 100, 2])
    discoverable = np.array([True, True, True, True, False, True, True])
    got = welcoming_people(activity, reached, answered, discoverable, activity_floor=0.2)
    # Inactive, reached by one, answered nobody, not discoverable: 0. Among the others, how many
    # they answer counts, not the share: 100 of 400 (half as active) before 4 of 5 before 2 of 2.
    assert got.tolist() == [
        np.float32(0.08),
        0,
        0,
        0,
        0,
        1.0,
        np.float32(0.04),
    ]  # scaled: the most welcoming 1


def test_a_fitted_model_welcomes_registered_users_who_have_done_nothing_yet():
    events = list(generate(SynthConfig(n_users=300, seed=4)))
    t = max(e["ts"] for e in events if e["type"] == "user")
    # no posts, follows or interests
    newcomers = [{"type": "user", "id": f"new{i}", "ts": t} for i in range(5)]
    # A budget that never binds: the newcomers' lists also widen the base of its share (see the
    # next test), and everyone else's lists must otherwise be the same either way.
    roomy = dict(seed=1, learn_weights=0, exposure_budget_min=1000)
    model = TribeModel(**roomy).fit(events + newcomers)
    rows = [model.user_ids_.tolist().index(f"new{i}") for i in range(5)]
    assert (
        model.arrays_["people_newcomer"][rows].all() and model.arrays_["people_newcomer"].sum() == 5
    )
    # The accounts the cap held back, as ranking found them, are what the model stores for the service.
    assert (
        model.arrays_["top_account"] == top_accounts(model.snapshot_, model.arrays_["followers"])
    ).all()
    others = np.ones(len(model.user_ids_), dtype=bool)
    others[rows] = False
    first = model.recommend_people("new0", k=5)
    assert len(first) == 5 and all(
        r["kind"] == "answers_newcomers" for p in first for r in p["reasons"]
    )
    # ...and the most welcoming live threads to join, open to them as to no one else here.
    threads = model.recommend_conversations("new0", k=5)
    assert len(threads) == 5 and all(
        "open_to_all" in [r["kind"] for r in t["reasons"]] for t in threads
    )
    scores = [t["score"] for t in threads]
    assert scores == sorted(scores, reverse=True)
    off = TribeModel(**roomy, welcome_newcomers=0).fit(events + newcomers)
    assert off.recommend_people("new0", k=5) == [] and not off.arrays_["people_newcomer"].any()
    assert off.recommend_conversations("new0", k=5) == []
    assert (model.arrays_["conv_items"][others] == off.arrays_["conv_items"][others]).all()
    assert (model.arrays_["people_items"][others] == off.arrays_["people_items"][others]).all()


def test_where_nobody_posts_the_people_answered_decide_alone():
    # A friendship graph has no posts, so everyone's activity is the floor: it cannot tell
    # anyone apart, and requiring it left every newcomer there without a list.
    floor = np.full(5, 0.2, dtype=np.float32)
    reached, answered = np.array([5, 5, 1, 5, 9]), np.array([4, 2, 1, 0, 3])
    got = welcoming_people(floor, reached, answered, np.ones(5, dtype=bool), activity_floor=0.2)
    assert got.tolist() == [1.0, 0.5, 0, 0, 0.75]  # reached by 2+, answered 1+; by people answered
    # One active person is enough for activity to count again: the others drop out.
    one_active = floor.copy()
    one_active[1] = 1.0
    assert welcoming_people(
        one_active, reached, answered, np.ones(5, dtype=bool), 0.2
    ).tolist() == [0, 1.0, 0, 0, 0]


def test_a_newcomer_to_a_network_of_follows_alone_is_welcomed():
    config = PartitionConfig(n_users=300, seed=2)
    events = [*partition_events(config), {"type": "user", "id": "newbie", "ts": config.end}]
    model = TribeModel(seed=0).fit(events)
    first = model.recommend_people("newbie", k=10)
    assert len(first) == 10 and all(
        r["kind"] == "answers_newcomers" for p in first for r in p["reasons"]
    )
    answered = model.arrays_["answered"][
        [model.user_ids_.tolist().index(p["user_id"]) for p in first]
    ]
    assert answered.min() >= np.median(model.arrays_["answered"])  # those who follow back the most
    # The service's cold start for someone who registers after the recompute: the same people.
    served = [str(model.user_ids_[u]) for u, _ in model.recommender().welcome(size=10)][:10]
    assert served == [p["user_id"] for p in first]


def test_filling_in_blocks_gives_the_same_lists(monkeypatch):
    import tribes.newcomers as newcomers

    n, width = 120, 10
    items = np.full((n, width), -1)
    items[:20] = np.arange(20, 30)
    welcome = np.zeros(n, dtype=np.float32)
    welcome[30:70] = np.linspace(0.9, 0.2, 40)
    is_top = np.zeros(n, dtype=bool)
    is_top[[30, 31, 40]] = True
    exclusion = sp.csr_matrix((np.ones(3), ([25, 60, 90], [32, 33, 34])), shape=(n, n))
    whole = welcome_newcomers(ranked(items), welcome, is_top, exclusion, 12, 0.2)
    monkeypatch.setattr(newcomers, "_BLOCK", 7)
    blocks = welcome_newcomers(ranked(items), welcome, is_top, exclusion, 12, 0.2)
    assert (whole.items == blocks.items).all() and (whole.scores == blocks.scores).all()
    assert (whole.newcomers == blocks.newcomers).all() and whole.sources == blocks.sources


def test_one_budget_share_of_all_the_lists_made_for_ranked_and_newcomer_lists():
    """A person's exposure budget is a share of every list the recompute makes — the newcomers'
    too, which are filled from the same budgets — spent first where they rank; without
    newcomer lists, of the lists ranking makes."""
    events = list(generate(SynthConfig(n_users=300, seed=4)))
    t = max(e["ts"] for e in events if e["type"] == "user")
    # 4 in 5 have done nothing
    events += [{"type": "user", "id": f"new{i}", "ts": t} for i in range(1200)]
    budget = dict(
        exposure_budget_share=0.05,
        exposure_budget_min=1,
        exposure_budget_max=10_000,
        newcomer_slot_weight=1.0,
    )  # every slot counts in full here (the next tests weigh them)
    model = TribeModel(seed=1, learn_weights=0, **budget).fit(events)
    items, newcomer = model.arrays_["people_items"], model.arrays_["people_newcomer"]
    n, listed = len(model.user_ids_), int((~newcomer & (items >= 0).any(axis=1)).sum())
    assert (
        newcomer[[model.user_ids_.tolist().index(f"new{i}") for i in range(1200)]].all()
        and listed <= 300
    )
    ranked_shown = np.bincount(items[~newcomer][items[~newcomer] >= 0], minlength=n)
    all_shown = np.bincount(items[items >= 0], minlength=n)
    assert all_shown.max() <= np.ceil(0.05 * n)  # one budget over all the lists...
    assert ranked_shown.max() > np.ceil(0.05 * listed)  # ...not a smaller one for the ranked lists
    off = TribeModel(seed=1, learn_weights=0, welcome_newcomers=0, **budget).fit(events)
    off_items = off.arrays_["people_items"]
    off_listed = int((off_items >= 0).any(axis=1).sum())
    assert off_listed <= listed and np.bincount(off_items[off_items >= 0]).max() <= np.ceil(
        0.05 * off_listed
    )


def _dormant_world(n_active: int, n_dormant: int, woke: int) -> list[dict]:
    """``n_active`` users posting all along (one post a day for 100 days each, in turn) and
    ``n_dormant`` registered on day 0 who do nothing, but ``woke`` of them post on day 99."""
    day = 86_400.0
    events = [{"type": "user", "id": f"a{i}", "ts": 0.0} for i in range(n_active)]
    events += [{"type": "user", "id": f"d{i}", "ts": 0.0} for i in range(n_dormant)]
    events += [
        {
            "type": "post",
            "id": f"p{i}-{t}",
            "author": f"a{i}",
            "ts": (t + i / n_active) * day,
            "text": "hi",
        }
        for i in range(n_active)
        for t in range(100)
    ]
    events += [
        {"type": "post", "id": f"w{i}", "author": f"d{i}", "ts": 99.5 * day, "text": "hello"}
        for i in range(woke)
    ]
    return events


def test_a_newcomer_slot_weighs_as_often_as_newcomers_act_against_active_users():
    from tribes.model import snapshot_from
    from tribes.newcomers import newcomer_slot_weight

    # Every active user posts again after learning's cut (the last 15% of posts); 2 of 400
    # dormant users do: (2 + 1) / 402 against (50 + 1) / 52.
    snap = snapshot_from(_dormant_world(50, 400, woke=2))
    assert abs(newcomer_slot_weight(snap, 0.15) - (3 / 402) / (51 / 52)) < 1e-9
    # Nearly as many wake as act again: a slot counts nearly in full.
    assert (
        abs(
            newcomer_slot_weight(snapshot_from(_dormant_world(50, 40, woke=40)), 0.15)
            - (41 / 42) / (51 / 52)
        )
        < 1e-9
    )
    # Too few on one side, or no time to tell: in full.
    assert newcomer_slot_weight(snapshot_from(_dormant_world(50, 20, woke=0)), 0.15) == 1.0
    assert newcomer_slot_weight(snapshot_from(_dormant_world(20, 400, woke=0)), 0.15) == 1.0
    assert newcomer_slot_weight(snap, 0.0) == 1.0


def test_weighed_newcomer_slots_let_the_most_welcoming_reach_more_newcomers_within_the_budget():
    n, width = 300, 5
    items = np.full((n, width), -1)
    items[:30] = [20, 31, 32, 33, 34]  # 30 active users' lists; person 20 is in all of them already
    welcome = np.zeros(n, dtype=np.float32)
    welcome[20:30] = np.linspace(0.9, 0.5, 10)  # 20..29 welcoming, 20 the most
    none_top = np.zeros(n, dtype=bool)
    full = welcome_newcomers(
        ranked(items.copy()), welcome, none_top, sp.csr_matrix((n, n)), budget=40, cap=0.2
    )
    light = welcome_newcomers(
        ranked(items.copy()),
        welcome,
        none_top,
        sp.csr_matrix((n, n)),
        budget=40,
        cap=0.2,
        slot_weight=0.1,
    )
    shown_full = np.bincount(full.items[30:][full.items[30:] >= 0], minlength=n)
    shown_light = np.bincount(light.items[30:][light.items[30:] >= 0], minlength=n)
    # In full, person 20 has 40 - 30 = 10 newcomer lists left; at a tenth each, 100 (of 270).
    assert shown_full[20] == 10 and shown_light[20] == 100
    # The next ones fill the rest: every newcomer list full either way, nobody in one twice.
    assert shown_full[21:30].tolist() == [40] * 9 and (full.items[30:] >= 0).sum() == 10 + 9 * 40
    assert (light.items[30:] >= 0).all() and shown_light.max() == 270
    assert all(len(set(row)) == width for row in light.items[30:])
    assert light.newcomer_slot_weight == 0.1 and full.newcomer_slot_weight == 1.0
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="slot_weight"):
            welcome_newcomers(
                ranked(items.copy()), welcome, none_top, sp.csr_matrix((n, n)), 40, 0.2, bad
            )


def test_only_the_copies_that_can_be_dealt_are_made():
    from tribes.newcomers import _copies

    people, copies = np.array([5, 6, 7]), np.array([2, 3, 4])
    for limit in range(0, 12):
        assert _copies(people, copies, limit).tolist() == np.repeat(people, copies)[:limit].tolist()
    # A light newcomer slot: every person may join every list, yet O(limit) copies are made.
    assert len(_copies(np.arange(50_000), np.full(50_000, 10**9), 1000)) == 1000


def test_one_welcome_list_keeps_top_accounts_to_the_cap_positions():
    from tribes.newcomers import welcome_list

    tops, others = np.array([100, 101, 102]), np.arange(10)
    assert welcome_list(tops, others, 0.2, 12).tolist() == [0, 1, 2, 3, 100, 4, 5, 6, 7, 101, 8, 9]
    # No top account left: others take the top positions; no other left: the list ends there.
    assert welcome_list(tops[:1], np.arange(20), 0.2, 12).tolist() == [
        0,
        1,
        2,
        3,
        100,
        *range(4, 11),
    ]
    assert welcome_list(tops, np.arange(3), 0.2, 12).tolist() == [0, 1, 2]
    assert welcome_list(np.zeros(0, np.int64), np.zeros(0, np.int64), 0.2, 5).tolist() == []
