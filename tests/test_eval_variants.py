"""Other tribes configurations scored beside tribes (evaluate(variants=…), tribes evaluate --variant)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli_helpers import run_cli_json, synthetic_events_file
from tribes.cli import _parse_variants, main
from tribes.errors import InputError
from tribes.evaluation.report import combine_runs, evaluate, format_table, recall_intervals
from tribes.evaluation.splits import read_events, time_split
from tribes.synth import SynthConfig, generate


@pytest.fixture(scope="module")
def events():
    return read_events(generate(SynthConfig(n_users=300, seed=9)))


@pytest.fixture(scope="module")
def split(events):
    return time_split(events, fraction=0.8)


def test_a_variant_with_the_same_configuration_scores_the_same(split):
    result = evaluate(split, ["tribes"], k=10, seed=1, per_user=True, variants={"same": {}})
    assert list(result["models"]) == ["tribes", "same"]
    mine, same = result["models"]["tribes"], result["models"]["same"]
    assert {k: v for k, v in mine.items() if k != "fit_seconds"} == {
        k: v for k, v in same.items() if k != "fit_seconds"
    }
    assert result["learned_variants"] == {"same": result["learned"]}
    lead = recall_intervals(result["per_user"], n=200)["partners"]["tribes_minus"]["same"]
    assert lead == [0.0, 0.0]  # paired: identical lists, no lead either way


def test_a_variant_is_another_tribes_fitted_on_the_same_users(split):
    # Without learning and with only shared topics weighted, the lists must differ from tribes'.
    topics_only = {
        "learn_weights": 0,
        **{
            w: 0.0
            for w in (
                "w_conversation_2hop",
                "w_follow_2hop",
                "w_tribe",
                "w_als",
                "w_ppr",
                "w_inbound",
            )
        },
        "w_topic": 1.0,
    }
    result = evaluate(
        split,
        ["tribes", "random"],
        k=10,
        seed=1,
        per_user=True,
        variants={"topics only": topics_only},
        capped=0.2,
    )
    models = result["models"]
    assert result["tribes"]["tribes"] >= 1  # tribes' own quality line is still there
    assert list(models) == [
        "tribes",
        "random",
        "random, capped",
        "topics only",
    ]  # a variant is never re-capped
    # the same users
    assert models["topics only"]["partners.users"] == models["tribes"]["partners.users"]
    assert models["topics only"]["partners.recall"] != models["tribes"]["partners.recall"]
    # learning off: the configured weights
    assert result["learned_variants"] == {"topics only": None}
    per_user = result["per_user"]["partners"]
    assert set(per_user) == set(models) and len(per_user["topics only"]) == len(per_user["tribes"])
    table = format_table(result)
    assert table.splitlines()[0].split()[-2:] == ["topics", "only"]
    assert "learned [topics only]: nothing" in table


def test_variants_survive_several_cuts(events):
    runs = [
        evaluate(
            time_split(events, fraction=cut),
            ["tribes"],
            k=5,
            seed=1,
            variants={"v": {"tribe_diversity": 0.5}},
        )
        for cut in (0.7, 0.8)
    ]
    combined = combine_runs(runs, [0.7, 0.8])
    assert set(combined["models"]) == {"tribes", "v"}
    assert set(combined["learned_variants"]["v"]) == {"0.7", "0.8"}
    assert "learned [v] (cut 0.8)" in format_table(combined)


def test_a_variant_label_may_not_hide_a_model(split):
    with pytest.raises(ValueError, match="clash"):
        evaluate(split, ["tribes"], variants={"popularity": {}})


def test_parse_variants_adds_the_set_overrides_and_names_the_column():
    got = _parse_variants(
        ["tribe_diversity=1, top_exposure_cap=0.1", "mutual-contacts-index=resource_allocation"],
        {"top_exposure_cap": 0.3, "max_people": 40},
    )
    assert got == {
        "tribes, tribe_diversity=1, top_exposure_cap=0.1": {
            "top_exposure_cap": 0.1,
            "max_people": 40,
            "tribe_diversity": 1.0,
        },
        "tribes, mutual_contacts_index=resource_allocation": {
            "top_exposure_cap": 0.3,
            "max_people": 40,
            "mutual_contacts_index": "resource_allocation",
        },
    }
    for bad, why in (
        (["nope=1"], "known parameter"),
        (["tribe_diversity=2"], "between 0 and 1"),
        ([" , "], "empty variant"),
        (["seed=3"], "--seed"),
        (["tribe_diversity=1", "tribe_diversity=1"], "twice"),
        (["max_people=x"], "expected int"),
        (["tribe_diversity=1,tribe-diversity=0.9"], "given twice in"),
    ):
        with pytest.raises(InputError, match=why) as caught:
            _parse_variants(bad, {})
        assert caught.value.field == "--variant"


def test_cli_evaluate_variant(tmp_path, capsys):
    path = synthetic_events_file(tmp_path / "events.jsonl")
    code, result = run_cli_json(
        [
            "-q",
            "evaluate",
            str(path),
            "--models",
            "tribes",
            "-k",
            "5",
            "--json",
            "--bootstrap",
            "50",
            "--variant",
            "tribe_diversity=0.5",
        ]
    )
    assert code == 0
    assert list(result["models"]) == ["tribes", "tribes, tribe_diversity=0.5"]
    lead = result["intervals"]["partners"]["tribes_minus"]["tribes, tribe_diversity=0.5"]
    assert len(lead) == 2 and lead[0] <= lead[1]
    assert np.isfinite(lead).all()
    assert main(["-q", "evaluate", str(path), "--variant", "tribe_diversity=1.5"]) == 2
    assert "--variant: tribe_diversity" in capsys.readouterr().err
