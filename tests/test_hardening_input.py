"""Bad input, from the corpus in ``tests/corpus``, over every endpoint and the CLI.

- ``corpus/events/*.jsonl``: event files with one bad line among good ones (``EXPECTED.json``
  says which line and field). ``tribes ingest`` must exit 2 naming ``FILE:LINE: field``; the API
  must answer 4xx problem+json for the same lines as NDJSON and as a JSON array. Nothing stored.
- ``corpus/bodies/*``: malformed request bodies for ``POST /v1/events`` and feedback.
- ``corpus/http_values.json``: malformed user ids, limits, cursors, tribe ids, content types and
  methods, each sent to every endpoint that takes it.

Every answer must be a 4xx ``application/problem+json`` with a detail (never a 5xx), and the
store must be byte-for-byte what it was (``dump_tables``).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import zlib
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest

from tests.api_fixtures import LATER, make_world
from tests.conftest import dump_tables
from tribes.cli import main

CORPUS = Path(__file__).parent / "corpus"
EVENT_FILES = sorted((CORPUS / "events").glob("*.jsonl"))
EXPECTED = json.loads((CORPUS / "events" / "EXPECTED.json").read_text())
BODIES = sorted((CORPUS / "bodies").iterdir())
VALUES = json.loads((CORPUS / "http_values.json").read_text())
PROBLEM = "application/problem+json"
USER = "u000001"

USER_PATHS = [
    "/v1/users/{}/suggestions/people",
    "/v1/users/{}/suggestions/conversations",
    "/v1/users/{}/tribes",
]
LIST_PATHS = [
    f"/v1/users/{USER}/suggestions/people",
    f"/v1/users/{USER}/suggestions/conversations",
    "/v1/tribes",
]
GOOD_FEEDBACK = {"target_kind": "user", "target_id": "u000002", "action": "dismiss"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = make_world(tmp_path_factory, "hardening-input")
    yield w
    w.close()


def check_problem(response, *, statuses: tuple[int, ...] | None = None) -> dict:
    """A 4xx problem document: the status, the media type, a title and a detail."""
    where = f"{response.request.method} {response.request.path}"
    assert 400 <= response.status_code < 500, (where, response.status_code, response.data[:300])
    if statuses is not None:
        assert response.status_code in statuses, (where, response.status_code, response.data[:300])
    assert response.mimetype == PROBLEM, (where, response.mimetype)
    body = response.json
    assert body["status"] == response.status_code and body["title"] and body["detail"], body
    return body


@contextlib.contextmanager
def unchanged(store):
    before = dump_tables(store)
    yield
    assert dump_tables(store) == before, "a rejected request changed the store"


def run_cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


# --- event files: CLI and API ---------------------------------------------------------------------
def test_the_corpus_is_complete():
    assert {f.stem for f in EVENT_FILES} == set(EXPECTED)
    assert len(EVENT_FILES) >= 35 and len(BODIES) >= 15


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.stem)
def test_cli_ingest_rejects_the_file_and_stores_nothing(world, path):
    expected = EXPECTED[path.stem]
    with unchanged(world.store):
        code, err = run_cli("--db", world.db, "ingest", "-q", str(path))
    assert code == 2, err
    first = err.splitlines()[0]
    assert first.startswith(f"{path}:{expected['line']}: "), first
    if expected["field"]:
        assert first.startswith(f"{path}:{expected['line']}: {expected['field']}: "), first
    assert "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.stem)
def test_api_rejects_the_same_events_and_stores_nothing(world, path):
    expected = EXPECTED[path.stem]
    raw = path.read_bytes()
    client = world.client
    with unchanged(world.store):
        response = client.post("/v1/events", data=raw, content_type="application/x-ndjson")
        body = check_problem(response, statuses=(422,))
        assert body["errors"][0]["line"] == expected["line"], body
        if expected["field"]:
            assert body["errors"][0]["field"] == expected["field"], body
        # The same lines as one JSON array: malformed JSON is a 400, an invalid event a 422.
        lines = [line for line in raw.splitlines() if line.strip()]
        array = b"[" + b",".join(lines) + b"]"
        body = check_problem(
            client.post("/v1/events", data=array, content_type="application/json"),
            statuses=(400, 422),
        )
        if body["status"] == 422:
            assert body["errors"][0]["index"] == expected["line"] - 1, body


def test_skip_invalid_stores_exactly_the_good_lines(tmp_path):
    db = f"sqlite:///{tmp_path / 'skip.db'}"
    code, err = run_cli(
        "--db", db, "ingest", "-q", "--skip-invalid", str(CORPUS / "events" / "ts_words.jsonl")
    )
    assert code == 2 and ":3: ts:" in err
    code, out = 0, io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--db", db, "stats"]) == 0
    counts = {
        line.split()[0]: int(line.split()[1].replace(",", ""))
        for line in out.getvalue().splitlines()
    }
    assert (counts["users"], counts["posts"], counts["edges"]) == (2, 1, 1)


def test_a_line_over_one_mebibyte(world, tmp_path):
    huge = b'{"type":"user","id":"corpus-huge","ts":1,"bio":"' + b"x" * (1 << 20) + b'"}'
    good = b'{"type":"user","id":"corpus-ok","ts":1}'
    path = tmp_path / "huge.jsonl"
    path.write_bytes(good + b"\n" + huge + b"\n" + good + b"\n")
    with unchanged(world.store):
        code, err = run_cli("--db", world.db, "ingest", "-q", str(path))
        assert code == 2 and err.startswith(f"{path}:2: "), err
        body = check_problem(
            world.client.post(
                "/v1/events", data=path.read_bytes(), content_type="application/x-ndjson"
            ),
            statuses=(422,),
        )
        assert body["errors"][0]["line"] == 2


@pytest.mark.parametrize("kind", ["not gzip", "truncated", "bad checksum"])
def test_a_corrupt_gzip_file_is_bad_input_not_a_crash(world, tmp_path, kind):
    data = gzip.compress(b'{"type":"user","id":"corpus-gz","ts":1}\n' * 2000)
    raw = {
        "not gzip": b"this is not gzip",
        "truncated": data[: len(data) // 2],
        "bad checksum": data[:-8] + bytes(8),
    }[kind]
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(raw)
    with unchanged(world.store):
        code, err = run_cli("--db", world.db, "ingest", "-q", str(path))
    assert code == 2, err
    assert err.startswith(f"tribes: error: {path}: not a readable gzip file"), err


def test_cli_files_that_are_not_there(world, tmp_path):
    with unchanged(world.store):
        for target in (tmp_path / "missing.jsonl", tmp_path):
            code, err = run_cli("--db", world.db, "ingest", "-q", str(target))
            assert code == 2 and str(target) in err and "no such file" in err, err
    code, err = run_cli("--db", "postgres-ish://nowhere", "ingest", "-q", str(EVENT_FILES[0]))
    assert code == 2 and "db" in err, err


# --- importers -------------------------------------------------------------------------------------
def _dumps(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "edges.txt").write_text("1 2 1700000000\nfoo\n3 4\n")
    (tmp / "edges-ts.txt").write_text("1 2 yesterday\n")
    (tmp / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (tmp / "ratings.csv").write_text("SOURCE,TARGET,RATING,TIME\n6,2,4,1289241911\n6,5,1\n")
    (tmp / "se").mkdir()
    (tmp / "se" / "Posts.xml").write_text('<posts><row Id="1" ')
    (tmp / "se-entity").mkdir()
    # "Billion laughs": 10^10 expansions of a 3-byte entity (about 30 GB if expanded).
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 11)
    )
    (tmp / "se-entity" / "Posts.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE posts [{entities}]>'
        '<posts><row Id="1" PostTypeId="1" OwnerUserId="1" CreationDate="2020-01-01T00:00:00" Body="&l10;"/></posts>'
    )
    (tmp / "ego.tar.gz").write_bytes(b"not a tar archive")
    (tmp / "ego-empty").mkdir()
    return [
        (["edgelist", str(tmp / "edges.txt")], f"{tmp / 'edges.txt'}:2:"),
        (["edgelist", str(tmp / "edges-ts.txt")], f"{tmp / 'edges-ts.txt'}:1:"),
        (["edgelist", str(tmp / "binary.txt")], f"{tmp / 'binary.txt'}:1:"),
        (
            ["edgelist", str(tmp / "ratings.csv"), "--columns", "src,dst,-,ts"],
            f"{tmp / 'ratings.csv'}:1:",
        ),
        (
            ["edgelist", str(tmp / "ratings.csv"), "--columns", "src,dst,-,ts", "--header"],
            f"{tmp / 'ratings.csv'}:3:",
        ),
        (["edgelist", str(tmp / "ratings.csv"), "--columns", "src,dst,rating"], "columns"),
        (["stackexchange", str(tmp / "se")], "Posts.xml:1:"),
        (["stackexchange", str(tmp / "se-entity")], "Posts.xml"),
        (["snap-ego", str(tmp / "ego.tar.gz")], str(tmp / "ego.tar.gz")),
        (["snap-ego", str(tmp / "ego-empty")], str(tmp / "ego-empty")),
        (["edgelist", str(tmp / "nowhere.txt")], str(tmp / "nowhere.txt")),
    ]


def test_cli_import_of_malformed_dumps_exits_2_naming_the_file(tmp_path):
    out = tmp_path / "out.jsonl"
    for argv, mentions in _dumps(tmp_path):
        code, err = run_cli("import", *argv, "--out", str(out))
        assert code == 2, (argv, err)
        assert mentions in err and "Traceback" not in err, (argv, err)
        assert not out.exists(), "a failed import left a partial output file"


# --- request bodies --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", BODIES, ids=lambda p: p.name)
def test_malformed_bodies_on_every_post_endpoint(world, path):
    raw = path.read_bytes()
    client = world.client
    with unchanged(world.store):
        check_problem(
            client.post("/v1/events", data=raw, content_type="application/json"),
            statuses=(400, 422),
        )
        check_problem(
            client.post(f"/v1/users/{USER}/feedback", data=raw, content_type="application/json"),
            statuses=(400,),
        )


def test_huge_bodies_are_a_413_at_the_default_limit(world):
    limit = world.app.config["MAX_CONTENT_LENGTH"]
    assert limit == 10 * 1024 * 1024
    blob = b"[" + b" " * limit + b"]"
    with unchanged(world.store):
        check_problem(
            world.client.post("/v1/events", data=blob, content_type="application/json"),
            statuses=(413,),
        )
        check_problem(
            world.client.post(
                f"/v1/users/{USER}/feedback", data=blob, content_type="application/json"
            ),
            statuses=(413,),
        )


def test_wrong_types_and_odd_unicode_in_feedback(world):
    bad = [
        {**GOOD_FEEDBACK, "target_id": "u\u0000x"},
        {**GOOD_FEEDBACK, "target_id": " u000002"},
        {**GOOD_FEEDBACK, "target_id": "u000002\n"},
        {**GOOD_FEEDBACK, "target_id": 5},
        {**GOOD_FEEDBACK, "target_id": ["u000002"]},
        {**GOOD_FEEDBACK, "target_id": None},
        {**GOOD_FEEDBACK, "target_id": "x" * 257},
        {**GOOD_FEEDBACK, "action": ["dismiss"]},
        {**GOOD_FEEDBACK, "action": "DISMISS"},
        {**GOOD_FEEDBACK, "target_kind": "user'; DROP TABLE feedback;--"},
        {**GOOD_FEEDBACK, "tracking_id": {"a": 1}},
        {"target_kind": "user"},
        {},
    ]
    with unchanged(world.store):
        for body in bad:
            check_problem(
                world.client.post(f"/v1/users/{USER}/feedback", json=body), statuses=(400,)
            )


# --- malformed parameters on every endpoint ---------------------------------------------------------
def _cursor(payload) -> str:
    raw = orjson.dumps(payload)
    return base64.urlsafe_b64encode(zlib.crc32(raw).to_bytes(4, "big") + raw).decode().rstrip("=")


def _expand(value: str, version: str, kind: str, user: str) -> str:
    """The corpus's named placeholders, built for the endpoint at hand."""
    special = {
        "LONG_ID_257": "x" * 257,
        "LONG_CURSOR_513": "A" * 513,
        "FORGED_CURSOR_NEGATIVE_OFFSET": _cursor([version, kind, user, -20]),
        "FORGED_CURSOR_OTHER_USER": _cursor([version, kind, user + "x", 20]),
        "FORGED_CURSOR_OTHER_KIND": _cursor([version, "other", user, 20]),
        "FORGED_CURSOR_BAD_CHECKSUM": _cursor([version, kind, user, 20])[:-2] + "AA",
        "FORGED_CURSOR_OFFSET_STRING": _cursor([version, kind, user, "20"]),
        "FORGED_CURSOR_NOT_A_LIST": _cursor({"v": version, "k": kind, "u": user, "o": 20}),
        "FORGED_CURSOR_HUGE_INT": base64.urlsafe_b64encode(
            zlib.crc32(b'["v","people","u",' + b"9" * 40 + b"]").to_bytes(4, "big")
            + b'["v","people","u",'
            + b"9" * 40
            + b"]"
        ).decode(),
        "STALE_CURSOR": _cursor(["20200101T000000Z-0001", kind, user, 20]),
    }
    return special.get(value, value)


def _kind_and_user(path: str) -> tuple[str, str]:
    if path == "/v1/tribes":
        return "tribes", ""
    return path.rsplit("/", 1)[1], USER


def test_malformed_user_ids_on_every_user_endpoint(world):
    client, tried = world.client, 0
    with unchanged(world.store):
        for raw in VALUES["user_ids"]:
            value = _expand(raw, "", "", "")
            for template in USER_PATHS:
                check_problem(client.get(template.format(value)), statuses=(400, 404))
                tried += 1
            check_problem(
                client.post(f"/v1/users/{value}/feedback", json=GOOD_FEEDBACK), statuses=(400, 404)
            )
            tried += 1
    assert tried == 4 * len(VALUES["user_ids"])


def test_malformed_limits_on_every_list_endpoint(world):
    client = world.client
    with unchanged(world.store):
        for raw in VALUES["limits"]:
            for path in LIST_PATHS:
                body = check_problem(client.get(f"{path}?limit={raw}"), statuses=(400,))
                assert body["field"] == "limit"


def test_forged_and_stale_cursors_on_every_list_endpoint(world):
    client = world.client
    version = client.get("/v1/model").json["version"]
    with unchanged(world.store):
        for raw in VALUES["cursors"]:
            for path in LIST_PATHS:
                kind, user = _kind_and_user(path)
                cursor = _expand(raw, version, kind, user)
                if cursor == raw:
                    response = client.get(f"{path}?cursor={raw}")  # already percent-encoded
                else:
                    response = client.get(path, query_string={"cursor": cursor})
                expected = (410,) if raw == "STALE_CURSOR" else (400,)
                check_problem(response, statuses=expected)


def test_malformed_tribe_ids(world):
    with unchanged(world.store):
        for raw in VALUES["tribe_ids"]:
            check_problem(world.client.get(f"/v1/tribes/{raw}"), statuses=(400, 404))


def test_wrong_content_types_and_methods_on_every_endpoint(world):
    client = world.client
    good_events = orjson.dumps([{"type": "user", "id": "corpus-never", "ts": 1}])
    with unchanged(world.store):
        for content_type in VALUES["content_types"]:
            for path, body in (
                ("/v1/events", good_events),
                (f"/v1/users/{USER}/feedback", orjson.dumps(GOOD_FEEDBACK)),
            ):
                headers = {"Content-Type": content_type} if content_type else {}
                check_problem(client.post(path, data=body, headers=headers), statuses=(415,))
        spec = client.get("/openapi.json").json
        for template, operations in spec["paths"].items():
            path = template.replace("{user_id}", USER).replace("{tribe_id}", "0")
            for method in VALUES["methods"]:
                response = client.open(path, method=method)
                check_problem(response, statuses=(405,))
                assert set(response.headers["Allow"].split(", ")) >= {m.upper() for m in operations}


# --- odd but valid ids are stored verbatim and served ------------------------------------------------
ODD_IDS = [
    "x'); DROP TABLE users;--",
    "%2e%2e",
    "..",
    "名前",
    "a\u202eb",
    "\U0001f600",
    "u\u0308",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "0",
]


def test_odd_but_valid_ids_are_stored_verbatim_and_served(world):
    client = world.client
    events = [{"type": "user", "id": i, "ts": LATER, "interests": ["#odd"]} for i in ODD_IDS]
    events.append({"type": "follow", "src": ODD_IDS[0], "dst": ODD_IDS[3], "ts": LATER + 1})
    response = client.post("/v1/events", json=events)
    assert response.status_code == 200, response.json
    assert client.post("/v1/events", json=events).status_code == 200  # replay: idempotent
    facts = {i: world.store.user_facts(i) for i in ODD_IDS}
    assert all(f is not None for f in facts.values())
    assert facts[ODD_IDS[0]]["follows"] == [ODD_IDS[3]]
    for user in ODD_IDS:
        if user in ("..",):  # dot segments are resolved by HTTP clients and servers alike
            continue
        path = f"/v1/users/{quote(user, safe='')}/tribes"
        response = client.get(path)
        assert response.status_code == 200, (user, response.data[:200])
        assert response.json["user_id"] == user and response.json["cold_start"] is True
