"""recompute / models / rollback / suggest / tribes / demo from the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tribes.artifacts import ModelStore
from tribes.cli import main
from tribes.jsonl import open_output, write_jsonl
from tribes.synth import SynthConfig, generate


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store with a synthetic network and one recompute."""
    root = tmp_path_factory.mktemp("cli")
    events = root / "events.jsonl"
    with open_output(events) as out:
        write_jsonl(generate(SynthConfig(n_users=400, seed=4)), out)
    env = {"db": f"sqlite:///{root / 'tribes.db'}", "models": str(root / "models")}
    assert main(["--db", env["db"], "-q", "ingest", str(events)]) == 0
    assert main(["--db", env["db"], "--models", env["models"], "-q", "recompute"]) == 0
    return root, env


def run(env, *argv):
    return main(["--db", env["db"], "--models", env["models"], *argv])


def test_recompute_publishes_a_version_with_a_full_manifest(world):
    _, env = world
    versions = ModelStore(env["models"]).versions()
    assert len(versions) == 1 and versions[0].is_current
    manifest = versions[0].manifest
    for key in ("version", "built_at", "counts", "params", "timings", "summary"):
        assert key in manifest
    assert manifest["counts"]["users"] > 300
    assert set(manifest["timings"]) >= {"snapshot", "graph", "tribes", "candidates", "rank_people"}
    assert all("peak_rss_mib" in t for t in manifest["timings"].values())


def test_recompute_says_what_learning_chose_and_explain_says_why(world, capsys):
    _, env = world
    capsys.readouterr()
    assert run(env, "recompute", "--explain") == 0
    err = capsys.readouterr().err
    assert "recompute: learning: blend: " in err
    assert "  tribe_diversity: " in err and "a switch needs +2.43 SE" in err
    assert run(env, "recompute") == 0
    err = capsys.readouterr().err
    assert "recompute: learning: " in err and "a switch needs" not in err
    assert run(env, "recompute", "--set", "learn_weights=0") == 0
    assert "recompute: learning did not run" in capsys.readouterr().err


def test_suggest_prints_one_json_object_per_user(world, capsys):
    _, env = world
    capsys.readouterr()
    assert run(env, "suggest", "u000010", "u000011", "--kind", "people", "--limit", "3") == 0
    lines = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["user_id"] for x in lines] == ["u000010", "u000011"]
    for line in lines:
        assert line["model_version"] == ModelStore(env["models"]).current()
        assert 0 < len(line["items"]) <= 3
        for item in line["items"]:
            assert set(item) == {"user_id", "score", "tribe_id", "reasons"}


def test_suggest_conversations_shape(world, capsys):
    _, env = world
    capsys.readouterr()
    assert run(env, "suggest", "u000010", "--kind", "conversations") == 0
    line = orjson.loads(capsys.readouterr().out)
    for item in line["items"]:
        assert set(item) == {
            "thread_id",
            "score",
            "tribe_id",
            "topics",
            "participants",
            "last_activity",
            "reasons",
        }


def test_unknown_user_gets_an_error_line_and_exit_2(world, capsys):
    _, env = world
    capsys.readouterr()
    assert run(env, "suggest", "nobody", "u000010", "--kind", "people") == 2
    first, second = (orjson.loads(x) for x in capsys.readouterr().out.splitlines())
    assert set(first) == {"user_id", "error"} and first["user_id"] == "nobody"
    assert second["items"]


def test_suggest_many_users_from_a_file(world, tmp_path, capsys):
    _, env = world
    users = tmp_path / "users.txt"
    users.write_text("\n".join(f"u{i:06d}" for i in range(300)))
    capsys.readouterr()
    run(env, "suggest", "--users-file", str(users), "--kind", "people", "--limit", "5")
    assert len(capsys.readouterr().out.splitlines()) == 300


def test_tribes_json(world, capsys):
    _, env = world
    capsys.readouterr()
    assert run(env, "tribes", "--json", "--members") == 0
    tribes = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(tribes) >= 3
    assert all(
        set(t) == {"tribe_id", "label", "size", "topics", "cohesion", "members"} for t in tribes
    )
    assert all(0.0 <= t["cohesion"] <= 1.0 for t in tribes)
    assert all(t["size"] == len(t["members"]) for t in tribes)


def test_tribes_table_has_a_header_and_a_row_per_tribe(world, capsys):
    _, env = world
    capsys.readouterr()
    assert run(env, "tribes") == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["tribe", "members", "inside", "label"]
    capsys.readouterr()
    assert run(env, "tribes", "--json") == 0
    tribes = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [row.split()[:3] for row in rows] == [
        [str(t["tribe_id"]), f"{t['size']:,}", f"{t['cohesion']:.0%}"] for t in tribes
    ]


def test_recompute_rejects_unknown_parameters(world, capsys):
    _, env = world
    assert run(env, "recompute", "--set", "nonsense=1") == 2
    assert run(env, "recompute", "--set", "tribe_diversity=7") == 2
    assert "tribe_diversity" in capsys.readouterr().err


def test_rollback_and_models(world, capsys):
    _, env = world
    models = ModelStore(env["models"])
    first = models.current()
    assert run(env, "-q", "recompute", "--set", "resolution=0.08") == 0
    second = models.current()
    assert second != first
    assert run(env, "rollback") == 0
    assert models.current() == first
    assert run(env, "rollback", second) == 0 and models.current() == second
    assert run(env, "rollback", "20000101T000000Z-0000") == 2
    capsys.readouterr()
    assert run(env, "models") == 0
    out = capsys.readouterr().out
    assert f"* {second}" in out and first in out


def test_suggest_without_a_model_is_bad_input(tmp_path, capsys):
    assert main(["--models", str(tmp_path / "none"), "suggest", "a", "--kind", "people"]) == 2
    assert "run `tribes recompute` first" in capsys.readouterr().err


def test_recompute_killed_midway_leaves_current_untouched(world):
    _root, env = world
    models = ModelStore(env["models"])
    before = models.current()
    names_before = [v.name for v in models.versions()]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tribes", "--db", env["db"], "--models", env["models"], "recompute"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env={**os.environ},
    )
    try:
        for line in proc.stderr:  # kill it as soon as it is computing candidates
            if b"candidates" in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=120)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert models.current() == before
    assert [v.name for v in models.versions()] == names_before
    # The next recompute succeeds (and clears the leftovers of the killed one).
    assert run(env, "-q", "recompute") == 0
    assert models.current() != before
    assert not [p for p in Path(env["models"]).iterdir() if p.name.startswith(".tmp-")]


def test_demo_builds_data_and_model_once(tmp_path, capsys):
    env = {"db": f"sqlite:///{tmp_path / 'demo.db'}", "models": str(tmp_path / "models")}
    assert run(env, "demo", "--users", "150") == 0
    current = ModelStore(env["models"]).current()
    assert current
    assert run(env, "demo", "--users", "150") == 0  # nothing to do the second time
    assert ModelStore(env["models"]).current() == current
    assert "kept as it is" in capsys.readouterr().err


def test_recompute_says_how_many_newcomers_it_welcomed(tmp_path, capsys):
    events = list(generate(SynthConfig(n_users=300, seed=4)))
    t = max(e["ts"] for e in events if e["type"] == "user")
    # registered, nothing done
    events += [{"type": "user", "id": f"new{i}", "ts": t} for i in range(40)]
    path = tmp_path / "events.jsonl"
    with open_output(path) as out:
        write_jsonl(events, out)
    env = {"db": f"sqlite:///{tmp_path / 'tribes.db'}", "models": str(tmp_path / "models")}
    assert main(["--db", env["db"], "-q", "ingest", str(path)]) == 0
    capsys.readouterr()
    assert run(env, "recompute", "--set", "learn_weights=0") == 0
    err = capsys.readouterr().err
    assert "recompute: newcomers: 40 users who have done nothing yet" in err
    assert "counts 1 of one" in err  # too few users on either side to measure: in full
