from __future__ import annotations

import pytest

from tribes.config import Settings, describe_settings


def test_defaults():
    s = Settings.load(environ={})
    assert (s.db, s.models) == ("sqlite:///var/tribes.db", "var/models")


def test_flags_beat_environment_beat_defaults():
    env = {"TRIBES_DB": "sqlite:///env.db", "TRIBES_MODELS": "env-models", "TRIBES_BATCH_SIZE": "10"}
    s = Settings.load({"db": "sqlite:///flag.db", "models": None}, environ=env)
    assert (s.db, s.models, s.batch_size) == ("sqlite:///flag.db", "env-models", 10)


def test_bad_integer_names_the_variable():
    with pytest.raises(ValueError, match="TRIBES_BATCH_SIZE"):
        Settings.load(environ={"TRIBES_BATCH_SIZE": "many"})


def test_every_setting_is_documented():
    rows = describe_settings()
    assert {r[0] for r in rows} >= {"TRIBES_DB", "TRIBES_MODELS"}
    assert all(doc for _, _, doc in rows)
