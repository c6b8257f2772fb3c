"""Baselines held to tribes' top-1% exposure cap (tribes.evaluation.capping, evaluate(capped=…))."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli_helpers import run_cli_json, synthetic_events_file
from tribes.cli import main
from tribes.evaluation.capping import capped_lists
from tribes.evaluation.report import evaluate, format_table
from tribes.evaluation.splits import read_events, time_split
from tribes.synth import SynthConfig, generate


def _ranker(order: np.ndarray, calls: list | None = None):
    """recommend(users, width) from a full ranking per user, (n, m) -1 padded."""

    def recommend(users, width):
        if calls is not None:
            calls.append((len(users), width))
        out = np.full((len(users), width), -1, dtype=np.int32)
        got = order[users, :width]
        out[:, : got.shape[1]] = got
        return out

    return recommend


def _random_rankings(n: int, m: int, seed: int, short: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    order = np.stack([rng.permutation(m) for _ in range(n)]).astype(np.int32)
    order[:short, :3] = [
        m - 3,
        m - 2,
        m - 1,
    ]  # a few users with only 3 people to suggest, none a top account
    order[:short, 3:] = -1
    return order


def _prefix_ok(lists: np.ndarray, is_top: np.ndarray, cap: float) -> bool:
    """The cap as defined: for every j, top slots among the first j positions of all lists are
    at most floor(cap × filled slots among them)."""
    top = (lists >= 0) & is_top[np.maximum(lists, 0)]
    filled = np.cumsum(np.count_nonzero(lists >= 0, axis=0))
    placed = np.cumsum(np.count_nonzero(top, axis=0))
    return bool(np.all(placed <= np.floor(cap * filled + 1e-9)))


@pytest.mark.parametrize("cap", [0.0, 0.1, 0.2, 0.5])
def test_capped_lists_hold_the_cap_and_keep_each_models_order(cap):
    n, m, k = 60, 80, 10
    order = _random_rankings(n, m, seed=4, short=5)
    is_top = np.zeros(m, dtype=bool)
    is_top[:16] = True  # 20% of the people: about 2 of every user's first 10
    users = np.arange(n)
    lists = capped_lists(_ranker(order), users, k, is_top, cap)
    assert lists.shape == (n, k) and lists.dtype == np.int32
    assert _prefix_ok(lists, is_top, cap)
    for u in users:
        mine = lists[u][lists[u] >= 0]
        ranked = order[u][order[u] >= 0]
        # Lists keep their length; top accounts and the others each keep the model's order,
        # and each is a prefix of that kind in the model's list (nothing skipped).
        assert len(mine) == min(k, len(ranked))
        for kind in (is_top, ~is_top):
            got = [x for x in mine if kind[x]]
            assert got == [x for x in ranked if kind[x]][: len(got)]


def test_lists_the_cap_does_not_bind_come_back_unchanged():
    order = _random_rankings(40, 50, seed=1)
    is_top = np.zeros(50, dtype=bool)
    is_top[:10] = True
    lists = capped_lists(_ranker(order), np.arange(40), 10, is_top, 1.0)
    assert np.array_equal(lists, order[:, :10])
    nobody = capped_lists(_ranker(order), np.arange(40), 10, np.zeros(50, dtype=bool), 0.2)
    assert np.array_equal(nobody, order[:, :10])


def test_the_weakest_top_appearances_move_down_first():
    # Two users; one top account (0). User 0 ranks it first, user 1 fourth. A cap of 1/8 leaves
    # no room before 8 slots are filled, i.e. before the fourth position; there, one of the
    # two lists may show it: user 0's, where it ranked higher.
    order = np.array([[0, 1, 2, 3, 4, 5], [1, 2, 3, 0, 4, 5]], dtype=np.int32)
    is_top = np.zeros(6, dtype=bool)
    is_top[0] = True
    lists = capped_lists(_ranker(order), np.arange(2), 4, is_top, 0.125)
    assert lists[0].tolist() == [1, 2, 3, 0]
    assert lists[1].tolist() == [1, 2, 3, 4]  # 0 waits for a later position, beyond k


def test_lists_led_by_every_top_account_are_fetched_deeper():
    # A popularity-like ranking: the same 30 top accounts head every list. The first fetch
    # (2k = 10 deep) holds no one else, so those users are fetched again, deeper.
    n, m, k = 20, 60, 5
    order = np.tile(np.arange(m, dtype=np.int32), (n, 1))
    is_top = np.zeros(m, dtype=bool)
    is_top[:30] = True
    calls = []
    lists = capped_lists(_ranker(order, calls), np.arange(n), k, is_top, 0.2)
    assert calls[0] == (n, 10) and len(calls) > 1 and calls[-1][1] <= k + 30
    assert _prefix_ok(lists, is_top, 0.2)
    for (
        row
    ) in lists:  # one top account each (20% of 5), the best; then the model's next other people
        assert [x for x in row if is_top[x]] == [0]
        assert [x for x in row if not is_top[x]] == [30, 31, 32, 33]


def test_capped_lists_refuse_a_share_outside_0_1():
    with pytest.raises(ValueError, match="cap"):
        capped_lists(_ranker(_random_rankings(2, 5, 0)), np.arange(2), 2, np.zeros(5, bool), 1.5)


@pytest.fixture(scope="module")
def split():
    return time_split(read_events(generate(SynthConfig(n_users=300, seed=9))), fraction=0.8)


def test_evaluate_scores_each_baseline_again_under_the_cap(split):
    result = evaluate(
        split, ["tribes", "popularity", "random"], k=10, seed=1, capped=0.2, per_user=True
    )
    models = result["models"]
    assert list(models) == [
        "tribes",
        "popularity",
        "popularity, capped",
        "random",
        "random, capped",
    ]
    popular, held = models["popularity"], models["popularity, capped"]
    assert popular["people.top1_followed_share"] > 0.2  # popularity alone breaks the cap
    for row in (held, models["random, capped"]):
        assert row["people.top1_followed_share"] <= 0.2 + 1e-9
        assert row["people.top1_replied_share"] <= 0.2 + 1e-9
    # Random lists already spread exposure: the cap changes little or nothing there.
    assert models["random, capped"]["partners.users"] == models["random"]["partners.users"]
    # Thread suggestions are not people lists: the same under the cap.
    assert held["threads.recall"] == popular["threads.recall"]
    assert set(result["per_user"]["partners"]) == set(models)
    assert "popularity, capped" in format_table(result).splitlines()[0]


def test_cli_evaluate_capped_uses_tribes_cap(tmp_path, capsys):
    events = synthetic_events_file(tmp_path / "events.jsonl")
    code, result = run_cli_json(
        [
            "-q",
            "evaluate",
            str(events),
            "--models",
            "popularity",
            "-k",
            "5",
            "--json",
            "--capped",
            "--set",
            "top_exposure_cap=0.1",
        ]
    )
    assert code == 0
    assert set(result["models"]) == {"popularity", "popularity, capped"}
    assert result["models"]["popularity, capped"]["people.top1_followed_share"] <= 0.1 + 1e-9
    assert (
        main(
            [
                "-q",
                "evaluate",
                str(events),
                "--models",
                "popularity",
                "--capped",
                "--set",
                "top_exposure_cap=2",
            ]
        )
        == 2
    )
    assert "top_exposure_cap" in capsys.readouterr().err
