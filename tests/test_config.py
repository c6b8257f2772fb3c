from __future__ import annotations

import pytest

from tribes.config import Settings, describe_settings


def test_defaults():
    s = Settings.load(environ={})
    assert (s.db, s.models) == ("sqlite:///var/tribes.db", "var/models")


def test_flags_beat_environment_beat_defaults():
    env = {
        "TRIBES_DB": "sqlite:///env.db",
        "TRIBES_MODELS": "env-models",
        "TRIBES_BATCH_SIZE": "10",
    }
    s = Settings.load({"db": "sqlite:///flag.db", "models": None}, environ=env)
    assert (s.db, s.models, s.batch_size) == ("sqlite:///flag.db", "env-models", 10)


def test_bad_integer_names_the_variable():
    with pytest.raises(ValueError, match="TRIBES_BATCH_SIZE"):
        Settings.load(environ={"TRIBES_BATCH_SIZE": "many"})


def test_every_setting_is_documented():
    rows = describe_settings()
    assert {r[0] for r in rows} >= {"TRIBES_DB", "TRIBES_MODELS"}
    assert all(doc for _, _, doc in rows)
    docs = {variable: doc for variable, _, doc in rows}
    assert (
        docs["TRIBES_KEEP_MODELS"].endswith("(at least 1)") and "at least" not in docs["TRIBES_DB"]
    )


@pytest.mark.parametrize(
    ("variable", "value", "minimum"),
    [
        (
            "TRIBES_KEEP_MODELS",
            "0",
            1,
        ),  # used to fail only after the recompute, as an internal error
        ("TRIBES_BATCH_SIZE", "-3", 1),
        ("TRIBES_MAX_FUTURE_SECONDS", "-1", 0),
    ],
)
def test_an_integer_below_its_minimum_names_the_variable(variable, value, minimum):
    with pytest.raises(ValueError, match=f"{variable}: must be at least {minimum}, got {value}"):
        Settings.load(environ={variable: value})


def test_a_setting_out_of_range_is_bad_input_before_any_work(tmp_path, monkeypatch, capsys):
    from tribes.cli import main

    monkeypatch.setenv("TRIBES_KEEP_MODELS", "0")
    assert (
        main(
            ["--db", f"sqlite:///{tmp_path / 't.db'}", "--models", str(tmp_path / "m"), "recompute"]
        )
        == 2
    )
    assert "TRIBES_KEEP_MODELS: must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
