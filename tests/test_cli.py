"""The `tribes` command line: exit codes, messages naming file and line, settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tribes.cli import main
from tribes.store import Store

from .conftest import dump_tables

GOOD = [
    {"type": "user", "id": "a", "ts": "2026-11-01T00:00:00Z", "interests": ["#go"]},
    {"type": "follow", "src": "a", "dst": "b", "ts": 1_790_000_000},
    {"type": "post", "id": "p1", "author": "a", "ts": 1_790_000_100, "text": "hello #go"},
]


def write(path: Path, *rows) -> Path:
    path.write_bytes(
        b"".join((orjson.dumps(r) if isinstance(r, dict) else r) + b"\n" for r in rows)
    )
    return path


def test_ingest_reports_and_exits_zero(tmp_path, db_url, capsys):
    f = write(tmp_path / "good.jsonl", *GOOD)
    assert main(["--db", db_url, "ingest", str(f), "--json"]) == 0
    out, err = capsys.readouterr()
    report = orjson.loads(out)
    assert report["committed"] and report["by_type"] == {"follow": 1, "post": 1, "user": 1}
    assert "stored: 3 events" in err and "events/s" in err


def test_global_options_work_after_the_command(tmp_path, db_url):
    f = write(tmp_path / "good.jsonl", *GOOD)
    assert main(["ingest", str(f), "--db", db_url, "--quiet"]) == 0
    with Store.open(db_url) as s:
        assert s.table_counts()["posts"] == 1


def test_bad_file_names_file_and_line_exits_2_and_stores_nothing(tmp_path, db_url, capsys):
    good = write(tmp_path / "good.jsonl", *GOOD)
    main(["--db", db_url, "-q", "ingest", str(good)])
    with Store.open(db_url) as s:
        before = dump_tables(s)
    bad = write(
        tmp_path / "bad.jsonl",
        GOOD[0],
        b'{"type":"follow","src":"a","dst":"a","ts":1}',
        b"not json",
    )
    assert main(["--db", db_url, "ingest", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: dst: a user cannot follow themself ('a')" in err
    assert f"{bad}:3: malformed JSON" in err
    assert "NOTHING STORED" in err
    with Store.open(db_url) as s:
        assert dump_tables(s) == before


def test_events_from_the_future_are_bad_input_unless_the_leeway_allows(
    tmp_path, db_url, capsys, monkeypatch
):
    late = {
        "type": "post",
        "id": "p9",
        "author": "a",
        "ts": "2106-10-31T12:00:00Z",
        "text": "from a wrong clock",
    }
    f = write(tmp_path / "late.jsonl", GOOD[0], late)
    assert main(["--db", db_url, "-q", "ingest", str(f)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{f}:2: ts: 2106-10-31T12:00:00Z is in the future" in err
        and "TRIBES_MAX_FUTURE_SECONDS" in err
    )
    with Store.open(db_url) as s:
        assert s.table_counts()["users"] == 0
    # a backfill that means it
    monkeypatch.setenv("TRIBES_MAX_FUTURE_SECONDS", str(100 * 365 * 86_400))
    assert main(["--db", db_url, "-q", "ingest", str(f)]) == 0
    with Store.open(db_url) as s:
        assert s.table_counts()["posts"] == 1


def test_skip_invalid_flag(tmp_path, db_url):
    bad = write(tmp_path / "bad.jsonl", GOOD[0], b"not json")
    assert main(["--db", db_url, "-q", "ingest", "--skip-invalid", str(bad)]) == 2
    with Store.open(db_url) as s:
        assert s.table_counts()["users"] == 1


def test_missing_file_is_bad_input(tmp_path, db_url, capsys):
    assert main(["--db", db_url, "ingest", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err


def test_gzip_input(tmp_path, db_url):
    import gzip

    f = tmp_path / "good.jsonl.gz"
    f.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in GOOD)))
    assert main(["--db", db_url, "-q", "ingest", str(f)]) == 0


def test_bad_db_url_exits_2(capsys):
    assert main(["--db", "postgres-ish", "stats"]) == 2
    assert "db: not a database URL" in capsys.readouterr().err


def test_settings_lists_variables(capsys):
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "TRIBES_DB" in out and "TRIBES_MODELS" in out


def test_stats_counts_rows(tmp_path, db_url, capsys):
    main(["--db", db_url, "-q", "ingest", str(write(tmp_path / "g.jsonl", *GOOD))])
    capsys.readouterr()
    assert main(["--db", db_url, "stats"]) == 0
    assert "posts" in capsys.readouterr().out


def test_help_everywhere(capsys):
    for argv in (["--help"], ["ingest", "--help"], ["import", "--help"], ["generate", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    assert "--skip-invalid" in capsys.readouterr().out


def test_stdin_through_python_dash_m(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    data = b"".join(orjson.dumps(r) + b"\n" for r in GOOD)
    env = {**os.environ, "TRIBES_DB": url}
    done = subprocess.run(
        [sys.executable, "-m", "tribes", "ingest", "-"],
        input=data,
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert b"-: stored: 3 events" in done.stderr


def test_an_unreachable_store_is_one_clear_line(capsys):
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    assert main(["--db", "postgresql+psycopg://tribes@127.0.0.1:1/none", "stats"]) == 1
    err = capsys.readouterr().err
    assert "store unavailable" in err and "TRIBES_DB" in err and "internal error" not in err
    assert len(err.strip().splitlines()) == 1


def test_output_to_a_fifo_stays_a_fifo(tmp_path):
    """`--out` a pipe (or /dev/null) is written in place: the temp-file-and-rename that keeps a
    failed export from leaving half a file would replace the pipe with a regular file."""
    import stat
    import threading

    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert main(["-q", "generate", "--users", "20", "--seed", "1", "--out", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    lines = received[0].splitlines()
    assert len(lines) > 20 and all(orjson.loads(line)["type"] for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.fifo"]  # no events.fifo.tmp left
