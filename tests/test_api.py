"""The JSON API through Flask's test client: every endpoint and every error path.

Read-only tests share one world (a synthetic store with one published model); tests that write
events, feedback or recompute get a private copy (``fresh``), so their order never matters.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import logging
import os
import re
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import orjson
import pytest

from api import create_app, flush_access_log
from api.access_log import AccessLogBuffer
from api.schemas import (
    ConversationsPage,
    EventsResult,
    FeedbackResult,
    Health,
    ModelInfo,
    PeoplePage,
    ProblemDetail,
    TribePage,
    TribesPage,
    UserTribes,
)
from tests.api_fixtures import LATER, World, empty_root, make_app, make_world, settings_for
from tests.conftest import dump_tables
from tribes.artifacts import ModelStore
from tribes.rendered import RenderedLists
from tribes.service import SuggestionService, tracking_id
from tribes.serving import STARTER_PACK_SIZE
from tribes.store import LiveFilters

PROBLEM = "application/problem+json"
KINDS = ("people", "conversations")
ITEM_KEY = {"people": "user_id", "conversations": "thread_id"}
PAGE = {"people": PeoplePage, "conversations": ConversationsPage}


# --- fixtures and helpers -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = make_world(tmp_path_factory, "api-shared")
    yield w
    w.close()


@pytest.fixture
def fresh(tmp_path_factory) -> World:
    """A private world for tests that change the store or the models."""
    w = make_world(tmp_path_factory, "api-fresh")
    yield w
    w.close()


@pytest.fixture
def client(world):
    return world.client


def model_of(w: World):
    return w.service.holder.get()


def rich_users(w: World, n_people: int = 25, n_conv: int = 15) -> list[str]:
    """Users the model holds many people and conversations for, in id order."""
    model = model_of(w)
    people = (np.asarray(model.arrays["people_items"]) >= 0).sum(axis=1)
    conv = (np.asarray(model.arrays["conv_items"]) >= 0).sum(axis=1)
    keep = np.flatnonzero((people >= n_people) & (conv >= n_conv))
    assert len(keep) >= 10, "the synthetic world is too thin for these tests"
    return [str(model.user_ids[i]) for i in keep]


def root_author(model, thread_id: str) -> str | None:
    """Who started the thread (its root post's author), from the model's arrays."""
    author = int(model.arrays["thread_root_author"][model.thread_index_of(thread_id)])
    return str(model.user_ids[author]) if author >= 0 else None


def suggestions(client, user: str, kind: str = "people", **params):
    return client.get(f"/v1/users/{user}/suggestions/{kind}", query_string=params)


def ids(client, user: str, kind: str = "people") -> list[str]:
    response = suggestions(client, user, kind, limit=100)
    assert response.status_code == 200, response.json
    assert response.json["next_cursor"] is None
    return [item[ITEM_KEY[kind]] for item in response.json["items"]]


def post_events(client, events: list[dict], status: int = 200):
    response = client.post("/v1/events", json=events)
    assert response.status_code == status, response.json
    return response


def assert_problem(
    response, status: int, *, field: str | None = None, mentions: str | None = None
) -> dict:
    """An RFC 9457 document with the status, never HTML; ``field`` named in it."""
    assert response.status_code == status, response.data[:500]
    assert response.mimetype == PROBLEM, response.data[:200]
    body = response.json
    ProblemDetail.model_validate(body)
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    assert b"<html" not in response.data.lower()
    assert response.headers.get("X-Request-ID")
    assert body.get("request_id") == response.headers["X-Request-ID"]
    if field is not None:
        named = [body.get("field")] + [e.get("field") for e in body.get("errors", [])]
        assert field in named or field in body["detail"], body
    if mentions is not None:
        assert mentions in body["detail"], body
    return body


def flip_char(text: str, at: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    replacement = alphabet[(alphabet.index(text[at]) + 1) % len(alphabet)]
    return text[:at] + replacement + text[at + 1 :]


def make_cursor(payload: list, *, good_check: bool = True) -> str:
    raw = orjson.dumps(payload)
    check = zlib.crc32(raw).to_bytes(4, "big") if good_check else b"\0\0\0\0"
    return base64.urlsafe_b64encode(check + raw).decode().rstrip("=")


# --- suggestions: shapes, limits, cursors --------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_suggestions_shape_and_default_limit(world, client, kind):
    user = rich_users(world)[0]
    response = suggestions(client, user, kind)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    page = PAGE[kind].model_validate(response.json)
    assert page.user_id == user and page.cold_start is False
    assert page.model_version == ModelStore(world.models).current()
    assert len(page.items) == 20 and page.next_cursor  # default limit; more to come
    keys = [getattr(item, ITEM_KEY[kind]) for item in page.items]
    assert len(set(keys)) == len(keys)
    assert len({item.tracking_id for item in page.items}) == len(page.items)
    for item in page.items:
        assert item.reasons and all(r.kind and r.text for r in item.reasons)
        assert item.tracking_id and item.cold_start is None
    scores = [item.score for item in page.items]
    assert scores == sorted(scores, reverse=True)
    if kind == "people":
        assert user not in keys
    else:
        for item in page.items:
            assert item.participants and item.last_activity.endswith("Z")


def test_limit_bounds(world, client):
    user = rich_users(world)[0]
    assert len(suggestions(client, user, limit=1).json["items"]) == 1
    full = suggestions(client, user, limit=100)
    assert full.status_code == 200 and len(full.json["items"]) <= 100
    assert (
        suggestions(client, user, limit="").json["items"] == suggestions(client, user).json["items"]
    )


@pytest.mark.parametrize("value", ["101", "0", "-1", "abc", str(10**30), "1.5", "1e2"])
@pytest.mark.parametrize(
    "path",
    ["/v1/users/{u}/suggestions/people", "/v1/users/{u}/suggestions/conversations", "/v1/tribes"],
)
def test_invalid_limit_is_a_400_naming_limit(world, client, path, value):
    response = client.get(path.format(u=rich_users(world)[0]), query_string={"limit": value})
    body = assert_problem(response, 400, field="limit", mentions="limit")
    assert body["field"] == "limit"


@pytest.mark.parametrize("kind", KINDS)
def test_cursor_pages_are_disjoint_and_add_up_to_one_big_page(world, client, kind):
    user = rich_users(world)[1]
    big = suggestions(client, user, kind, limit=100).json
    assert big["next_cursor"] is None and len(big["items"]) > 14
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = PAGE[kind].model_validate(suggestions(client, user, kind, **params).json)
        pages += 1
        assert page.items and len(page.items) <= 7
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page.items) == 7
    assert pages == -(-len(big["items"]) // 7)
    keys = [getattr(item, ITEM_KEY[kind]) for item in seen]
    assert len(set(keys)) == len(keys)  # disjoint
    assert keys == [item[ITEM_KEY[kind]] for item in big["items"]]
    # Tracking ids depend on the position, not the page: the same as on the big page.
    assert [item.tracking_id for item in seen] == [item["tracking_id"] for item in big["items"]]


@pytest.mark.parametrize("kind", KINDS)
def test_altered_or_forged_cursor_is_a_400(world, client, kind):
    user = rich_users(world)[0]
    version = model_of(world).version
    cursor = suggestions(client, user, kind, limit=5).json["next_cursor"]
    forged = [
        "abc",
        "!!!!",
        "é",
        cursor[:-3],
        cursor + "AAAA",
        flip_char(cursor, 10),
        flip_char(cursor, len(cursor) - 2),
        make_cursor([version, kind, user, 5], good_check=False),
        make_cursor([version, kind, user, -5]),
        make_cursor([version, kind, user, "5"]),
        make_cursor({"v": version}),
        make_cursor([version, kind, user]),
        "A" * 600,
    ]
    for bad in forged:
        response = suggestions(client, user, kind, limit=5, cursor=bad)
        assert_problem(response, 400, field="cursor")
    assert suggestions(client, user, kind, limit=5, cursor=cursor).status_code == 200


def test_cursor_of_another_endpoint_or_user_is_a_400(world, client):
    first, second = rich_users(world)[:2]
    people = suggestions(client, first, "people", limit=5).json["next_cursor"]
    conversations = suggestions(client, first, "conversations", limit=5).json["next_cursor"]
    tribes = client.get("/v1/tribes", query_string={"limit": 1}).json["next_cursor"]
    assert people and conversations and tribes
    assert_problem(suggestions(client, first, "conversations", cursor=people), 400, field="cursor")
    assert_problem(suggestions(client, first, "people", cursor=conversations), 400, field="cursor")
    assert_problem(suggestions(client, second, "people", cursor=people), 400, field="cursor")
    assert_problem(suggestions(client, first, "people", cursor=tribes), 400, field="cursor")
    assert_problem(client.get("/v1/tribes", query_string={"cursor": people}), 400, field="cursor")


def test_cursor_from_an_older_model_is_a_410(fresh):
    client = fresh.client
    user = rich_users(fresh)[0]
    old = model_of(fresh).version
    people = suggestions(client, user, "people", limit=5).json["next_cursor"]
    conversations = suggestions(client, user, "conversations", limit=5).json["next_cursor"]
    tribes = client.get("/v1/tribes", query_string={"limit": 1}).json["next_cursor"]
    new = fresh.recompute()
    assert new != old
    for response in (
        suggestions(client, user, "people", cursor=people),
        suggestions(client, user, "conversations", cursor=conversations),
        client.get("/v1/tribes", query_string={"cursor": tribes}),
    ):
        body = assert_problem(response, 410)
        assert old in body["detail"] and new in body["detail"] and "model" in body["detail"]
        assert body["cursor_model"] == old and body["current_model"] == new
    # Starting again without a cursor works on the new model.
    assert suggestions(client, user, "people", limit=5).json["model_version"] == new


def test_unknown_user_is_a_404(client):
    for path in (
        "/v1/users/nobody-at-all/suggestions/people",
        "/v1/users/nobody-at-all/suggestions/conversations",
        "/v1/users/nobody-at-all/tribes",
    ):
        assert_problem(client.get(path), 404, mentions="nobody-at-all")
    response = client.post(
        "/v1/users/nobody-at-all/feedback",
        json={"target_kind": "user", "target_id": "u000001", "action": "dismiss"},
    )
    assert_problem(response, 404)


@pytest.mark.parametrize("user", ["%20u000001", "u000001%20", "a%00b", "x" * 257])
def test_malformed_user_id_is_a_400(client, user):
    assert_problem(client.get(f"/v1/users/{user}/suggestions/people"), 400, field="user_id")


def test_user_tribes(world, client):
    user = rich_users(world)[0]
    body = UserTribes.model_validate(client.get(f"/v1/users/{user}/tribes").json)
    assert body.cold_start is False and body.tribes
    assert body.tribes[0].primary and sum(t.primary for t in body.tribes) == 1
    model = model_of(world)
    assert body.tribes[0].tribe_id == model.tribe_id(int(model.labels[model.index_of(user)]))


# --- live filters -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("relation", "reverse"),
    [("follow", False), ("block", False), ("block", True), ("mute", False), ("mute", True)],
)
def test_follow_block_mute_hide_a_suggested_person_at_once(fresh, relation, reverse):
    client = fresh.client
    user = rich_users(fresh)[2]
    before = ids(client, user)
    version = model_of(fresh).version
    target = before[1]
    src, dst = (target, user) if reverse else (user, target)
    post_events(client, [{"type": relation, "src": src, "dst": dst, "ts": LATER}])
    assert ids(client, user) == [x for x in before if x != target]
    assert suggestions(client, user).json["model_version"] == version  # no recompute happened
    if relation != "follow":  # blocks and mutes hide both ways
        assert user not in ids(client, target)
    # Undoing it brings nothing back before the next recompute, but breaks nothing either.
    post_events(client, [{"type": "un" + relation, "src": src, "dst": dst, "ts": LATER + 1}])
    assert suggestions(client, user).status_code == 200


@pytest.mark.parametrize("reverse", [False, True])
def test_a_block_hides_conversations_started_by_that_person(fresh, reverse):
    """The thread's root author decides, not whoever happens to be listed first."""
    client = fresh.client
    model = model_of(fresh)
    for user in rich_users(fresh):
        threads = suggestions(client, user, "conversations", limit=100).json["items"]
        picked = next(
            (
                root
                for item in threads
                if (root := root_author(model, item["thread_id"])) not in (None, user)
                and item["participants"][0] != root
            ),
            None,
        )
        if picked:
            break
    else:
        pytest.fail("no suggested thread whose root author is not its first participant")
    started = {
        item["thread_id"] for item in threads if root_author(model, item["thread_id"]) == picked
    }
    src, dst = (picked, user) if reverse else (user, picked)
    post_events(client, [{"type": "block", "src": src, "dst": dst, "ts": LATER}])
    after = suggestions(client, user, "conversations", limit=100).json
    assert after["next_cursor"] is None
    assert [i["thread_id"] for i in after["items"]] == [
        i["thread_id"] for i in threads if i["thread_id"] not in started
    ]
    # Paging still adds up with the filter in place.
    first = suggestions(client, user, "conversations", limit=5).json
    second = suggestions(client, user, "conversations", limit=5, cursor=first["next_cursor"]).json
    assert [i["thread_id"] for i in first["items"] + second["items"]] == [
        i["thread_id"] for i in after["items"][:10]
    ]


def test_delete_user_removes_them_from_every_list(fresh):
    client = fresh.client
    model = model_of(fresh)
    user = rich_users(fresh)[3]
    before = ids(client, user)
    gone = before[0]
    holders = np.flatnonzero(
        (np.asarray(model.arrays["people_items"]) == model.index_of(gone)).any(axis=1)
    )
    post_events(client, [{"type": "delete_user", "id": gone, "ts": LATER}])
    assert ids(client, user) == before[1:]
    for i in holders[:20]:
        assert gone not in ids(client, str(model.user_ids[i]))
    for tribe in client.get("/v1/tribes", query_string={"limit": 100}).json["items"]:
        page = client.get(f"/v1/tribes/{tribe['tribe_id']}").json
        assert gone not in page["starter_pack"]
        assert all(root_author(model, c["thread_id"]) != gone for c in page["conversations"])
    # Their threads went with them.
    for i in holders[:20]:
        for thread in ids(client, str(model.user_ids[i]), "conversations"):
            assert root_author(model, thread) != gone
    # They are nowhere in anyone's items either: not in reasons, not among participants.
    for i in range(0, len(model.user_ids), 7):
        other = str(model.user_ids[i])
        if other == gone:
            continue
        for kind in ("people", "conversations"):
            body = client.get(
                f"/v1/users/{other}/suggestions/{kind}", query_string={"limit": 100}
            ).get_data(as_text=True)
            assert f'"{gone}"' not in body
    # And their own lists and tribes are gone at once: the store no longer knows them.
    for path in (
        f"/v1/users/{gone}/suggestions/people",
        f"/v1/users/{gone}/suggestions/conversations",
        f"/v1/users/{gone}/tribes",
    ):
        assert_problem(client.get(path), 404)


def test_dismissed_person_and_thread_never_come_back(fresh):
    client = fresh.client
    user = rich_users(fresh)[4]
    people, threads = ids(client, user), ids(client, user, "conversations")
    for kind, target in (("user", people[0]), ("thread", threads[0])):
        response = client.post(
            f"/v1/users/{user}/feedback",
            json={
                "target_kind": kind,
                "target_id": target,
                "action": "dismiss",
                "tracking_id": "abc",
            },
        )
        assert response.status_code == 201
        body = FeedbackResult.model_validate(response.json)
        assert (body.stored, body.user_id, body.target_kind, body.target_id, body.action) == (
            True,
            user,
            kind,
            target,
            "dismiss",
        )
    assert ids(client, user) == people[1:]
    # A dismissed person's own threads go with them (as for blocks: live filters hide people).
    model = model_of(fresh)
    assert ids(client, user, "conversations") == [
        t for t in threads[1:] if root_author(model, t) != people[0]
    ]
    assert fresh.store.table_counts()["feedback"] == 2
    # Accepting is stored but hides nothing.
    response = client.post(
        f"/v1/users/{user}/feedback",
        json={"target_kind": "user", "target_id": people[1], "action": "accept"},
    )
    assert response.status_code == 201 and ids(client, user) == people[1:]


def test_a_non_discoverable_profile_leaves_suggestions_and_starter_packs(fresh):
    client = fresh.client
    model = model_of(fresh)
    tribe = client.get("/v1/tribes").json["items"][0]["tribe_id"]
    pack = client.get(f"/v1/tribes/{tribe}").json["starter_pack"]
    hidden = pack[0]
    holders = np.flatnonzero(
        (np.asarray(model.arrays["people_items"]) == model.index_of(hidden)).any(axis=1)
    )
    assert len(holders), "pick a person someone is suggested"
    post_events(client, [{"type": "user", "id": hidden, "ts": LATER, "discoverable": False}])
    for i in holders[:20]:
        assert hidden not in ids(client, str(model.user_ids[i]))
    page = client.get(f"/v1/tribes/{tribe}").json
    after = page["starter_pack"]
    assert hidden not in after
    assert all(root_author(model, c["thread_id"]) != hidden for c in page["conversations"])
    assert after[: len(pack) - 1] == pack[1:] and len(after) == STARTER_PACK_SIZE
    # They still get their own suggestions.
    assert suggestions(client, hidden).status_code == 200


# --- cold start ---------------------------------------------------------------------------------
def test_cold_start_for_a_user_created_after_the_recompute(fresh):
    client = fresh.client
    model = model_of(fresh)
    tribe = client.get("/v1/tribes").json["items"][0]
    k = model.tribe_index(tribe["tribe_id"])
    # Follow three members of the tribe, starters of its live threads first.
    starters = [root_author(model, str(model.thread_ids[t])) for t in model.live_threads(k, 30)]
    in_tribe = [str(model.user_ids[i]) for i in np.flatnonzero(np.asarray(model.labels) == k)]
    members = list(dict.fromkeys(x for x in [*starters, *in_tribe] if x in set(in_tribe)))[:3]
    assert set(members) & set(starters)
    new = "newcomer-1"
    post_events(
        client,
        [
            {"type": "user", "id": new, "ts": LATER, "name": "New Person"},
            *({"type": "follow", "src": new, "dst": m, "ts": LATER + 1} for m in members),
            {
                "type": "post",
                "id": "newcomer-post-1",
                "author": new,
                "ts": LATER + 2,
                "text": "hello, I like " + " and ".join(tribe["topics"][:3]),
            },
        ],
    )
    for kind in KINDS:
        response = suggestions(client, new, kind)
        assert response.status_code == 200, response.json
        page = PAGE[kind].model_validate(response.json)
        assert page.cold_start is True and page.items
        assert all(
            item.cold_start is True and item.reasons and item.tracking_id for item in page.items
        )
        if kind == "people":
            listed = [item.user_id for item in page.items]
            assert new not in listed and not set(members) & set(listed)
            # "1 of the people you follow is in touch with them": the wording follows the count
            counts = set()
            everyone = suggestions(client, new, kind, limit=100).json["items"]
            for reason in (r for item in everyone for r in item["reasons"]):
                if reason["kind"] == "mutual_contacts":
                    n = reason["count"]
                    verb = "is" if n == 1 else "are"
                    assert (
                        reason["text"] == f"{n} of the people you follow {verb} in touch with them"
                    )
                    counts.add(n == 1)
            assert counts == {True, False}, counts
        else:
            assert "newcomer-post-1" not in [item.thread_id for item in page.items]
    tribes = UserTribes.model_validate(client.get(f"/v1/users/{new}/tribes").json)
    assert tribes.cold_start is True and tribes.tribes[0].primary
    assert tribes.tribes[0].tribe_id == tribe["tribe_id"]

    # Cold-start pages add up too, and live filters apply to them.
    big = ids(client, new)
    first = suggestions(client, new, limit=4).json
    second = suggestions(client, new, limit=4, cursor=first["next_cursor"]).json
    assert [i["user_id"] for i in first["items"] + second["items"]] == big[:8]
    post_events(client, [{"type": "block", "src": new, "dst": big[0], "ts": LATER + 3}])
    assert big[0] not in ids(client, new)
    threads = ids(client, new, "conversations")
    author = next(a for t in threads if (a := root_author(model, t)) not in (None, *members))
    post_events(client, [{"type": "mute", "src": author, "dst": new, "ts": LATER + 4}])
    assert ids(client, new, "conversations") == [
        t for t in threads if root_author(model, t) != author
    ]
    # Threads started by the people the newcomer follows stay: good first conversations.
    assert any(root_author(model, t) in members for t in ids(client, new, "conversations"))


def test_a_newcomer_the_model_welcomed_gets_cold_start_once_they_act(fresh):
    """A user registered before the recompute who had done nothing gets the model's newcomer
    list (the most welcoming people); once they follow someone, cold start answers from that."""
    client = fresh.client
    now = int(model_of(fresh).manifest["data_now"])
    post_events(client, [{"type": "user", "id": "quiet-1", "ts": now}])
    fresh.recompute()
    model = model_of(fresh)
    assert model.is_newcomer(model.index_of("quiet-1"))
    page = PeoplePage.model_validate(suggestions(client, "quiet-1").json)
    assert page.cold_start is False and len(page.items) == 20
    assert all([r.kind for r in item.reasons] == ["answers_newcomers"] for item in page.items)
    threads = suggestions(client, "quiet-1", "conversations").json
    assert threads["cold_start"] is False and threads["items"]
    assert all("open_to_all" in [r["kind"] for r in t["reasons"]] for t in threads["items"])
    followed = page.items[0].user_id
    post_events(client, [{"type": "follow", "src": "quiet-1", "dst": followed, "ts": LATER}])
    page = PeoplePage.model_validate(suggestions(client, "quiet-1").json)
    assert (
        page.cold_start is True and page.items and followed not in [i.user_id for i in page.items]
    )
    assert suggestions(client, "quiet-1", "conversations").json["cold_start"] is True
    # Nobody else is answered differently: a user with their own list is no newcomer.
    rich = next(u for u in rich_users(fresh) if u != "quiet-1")
    assert not model.is_newcomer(model.index_of(rich))
    assert suggestions(client, rich).json["cold_start"] is False


def test_cold_start_with_nothing_to_go_on(fresh):
    """A user who arrived after the recompute and has done nothing gets what the recompute gives
    its newcomers: the most welcoming people (people answered × activity), the top accounts
    only where every prefix stays within the cap, nobody they blocked."""
    client = fresh.client
    model = model_of(fresh)
    post_events(client, [{"type": "user", "id": "blank-slate", "ts": LATER}])
    page = PeoplePage.model_validate(suggestions(client, "blank-slate", limit=100).json)
    assert page.cold_start and len(page.items) >= 20
    listed = [item.user_id for item in page.items]
    assert listed == [str(model.user_ids[c]) for c, _ in model.welcome()][: len(listed)]
    assert all([r.kind for r in item.reasons] == ["answers_newcomers"] for item in page.items)
    scores = [item.score for item in page.items]
    assert all(0 < s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    top = np.asarray(model.arrays["top_account"])[[model.index_of(u) for u in listed]]
    cap = model.manifest["params"]["top_exposure_cap"]
    assert (np.cumsum(top) <= np.floor(cap * np.arange(1, len(top) + 1) + 1e-9)).all()
    post_events(
        client, [{"type": "block", "src": "blank-slate", "dst": listed[0], "ts": LATER + 1}]
    )
    again = [i["user_id"] for i in suggestions(client, "blank-slate", limit=100).json["items"]]
    assert listed[0] not in again and again[:3] == listed[1:4]
    tribes = UserTribes.model_validate(client.get("/v1/users/blank-slate/tribes").json)
    assert tribes.cold_start and tribes.tribes


# --- tribes -------------------------------------------------------------------------------------
def test_tribes_list_and_paging(world, client):
    model = model_of(world)
    everything = TribesPage.model_validate(
        client.get("/v1/tribes", query_string={"limit": 100}).json
    )
    assert everything.next_cursor is None and len(everything.items) == len(model.tribes) >= 3
    sizes = [t.size for t in everything.items]
    assert sizes == sorted(sizes, reverse=True)
    # Each tribe says how much of its members' conversation stays inside it.
    assert [t.cohesion for t in everything.items] == [t["cohesion"] for t in model.tribes]
    assert all(0.0 <= t.cohesion <= 1.0 for t in everything.items)
    assert len({t.cohesion for t in everything.items}) > 1
    assert everything.model_version == model.version
    paged, cursor = [], None
    while True:
        page = client.get(
            "/v1/tribes", query_string={"limit": 2} | ({"cursor": cursor} if cursor else {})
        ).json
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == [t.model_dump() for t in everything.items]


def test_tribe_page_starter_pack_is_welcoming_members_not_the_most_followed(world, client):
    model = model_of(world)
    arrays = model.arrays
    labels = np.asarray(arrays["labels"])
    discoverable = np.asarray(arrays["discoverable"])
    welcome = np.asarray(arrays["answer_rate"]) * np.asarray(arrays["activity"])
    followers = np.asarray(arrays["followers"])
    differs, scores = 0, set()
    for tribe in client.get("/v1/tribes", query_string={"limit": 100}).json["items"]:
        response = client.get(f"/v1/tribes/{tribe['tribe_id']}")
        assert response.status_code == 200
        page = TribePage.model_validate(response.json)
        k = model.tribe_index(page.tribe_id)
        assert (page.label, page.size, page.topics) == (
            tribe["label"],
            tribe["size"],
            tribe["topics"],
        )
        members = np.flatnonzero((labels == k) & discoverable)
        expected = [
            str(model.user_ids[i]) for i in members[np.lexsort((members, -welcome[members]))]
        ]
        by_followers = [
            str(model.user_ids[i]) for i in members[np.lexsort((members, -followers[members]))]
        ]
        assert page.starter_pack == expected[:STARTER_PACK_SIZE]
        differs += page.starter_pack != by_followers[:STARTER_PACK_SIZE]
        for user in page.starter_pack:
            i = model.index_of(user)
            assert labels[i] == k and discoverable[i]
        # Live threads, most recently active first, each scored by how likely a newcomer's
        # reply there is answered (not a placeholder 0).
        last = [c.last_activity for c in page.conversations]
        assert last == sorted(last, reverse=True)
        for conversation in page.conversations:
            assert conversation.tribe_id == page.tribe_id and conversation.reasons
            t = model.thread_index_of(conversation.thread_id)
            assert arrays["thread_live"][t]
            assert conversation.score == round(float(arrays["thread_answered_rate"][t]), 6)
            scores.add(conversation.score)
    assert differs, "the followers ordering should differ somewhere, or this test proves nothing"
    assert len(scores) > 1 and max(scores) > 0, scores


def test_unknown_and_malformed_tribe_ids(client):
    assert_problem(client.get("/v1/tribes/987654"), 404, mentions="987654")
    for bad in ("abc", "-1", "1.5", "%EF%BC%91", str(10**19), "0x1"):
        assert_problem(client.get(f"/v1/tribes/{bad}"), 400, field="tribe_id")


# --- events -------------------------------------------------------------------------------------
EVENTS = [
    {
        "type": "user",
        "id": "ev-user-1",
        "ts": "2026-11-20T10:00:00Z",
        "name": "Ev One",
        "interests": ["#rust"],
    },
    {"type": "user", "id": "ev-user-2", "ts": "2026-11-20T10:00:01Z"},
    {"type": "follow", "src": "ev-user-1", "dst": "ev-user-2", "ts": "2026-11-20T10:01:00Z"},
    {
        "type": "post",
        "id": "ev-post-1",
        "author": "ev-user-1",
        "ts": "2026-11-20T10:02:00Z",
        "text": "hi #rust",
    },
    {
        "type": "post",
        "id": "ev-post-2",
        "author": "ev-user-2",
        "ts": "2026-11-20T10:03:00Z",
        "text": "hello",
        "reply_to": "ev-post-1",
    },
]
EVENT_COUNTS = {"follow": 1, "post": 2, "user": 2}


def test_events_as_a_json_array_are_stored_once(fresh):
    client, store = fresh.client, fresh.store
    before = store.table_counts()
    response = client.post("/v1/events", json=EVENTS)
    assert response.status_code == 200 and response.mimetype == "application/json"
    result = EventsResult.model_validate(response.json)
    assert (result.accepted, result.by_type, result.ignored_erased) == (5, EVENT_COUNTS, 0)
    after = store.table_counts()
    assert (
        after["users"] - before["users"],
        after["posts"] - before["posts"],
        after["edges"] - before["edges"],
    ) == (2, 2, 1)
    snapshot = dump_tables(store)
    again = client.post("/v1/events", json=EVENTS)  # idempotent: the same body changes nothing
    assert again.status_code == 200 and again.json["accepted"] == 5
    assert dump_tables(store) == snapshot


def test_events_as_ndjson(fresh):
    client, store = fresh.client, fresh.store
    body = b"\n".join(orjson.dumps(e) for e in EVENTS) + b"\n\n"
    response = client.post("/v1/events", data=body, content_type="application/x-ndjson")
    assert response.status_code == 200
    assert EventsResult.model_validate(response.json).by_type == EVENT_COUNTS
    snapshot = dump_tables(store)
    assert (
        client.post("/v1/events", data=body, content_type="application/x-ndjson").status_code == 200
    )
    assert dump_tables(store) == snapshot
    # The same events as a JSON array are the same facts.
    assert client.post("/v1/events", json=EVENTS).status_code == 200
    assert dump_tables(store) == snapshot


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"type": "follow", "src": "ev-user-1", "ts": 1}, "dst"),
        ({"type": "post", "id": "x", "author": "ev-user-1", "ts": "yesterday", "text": "t"}, "ts"),
        ({"type": "teleport", "id": "x", "ts": 1}, "type"),
        ({"id": "x", "ts": 1}, "type"),
        ({"type": "user", "id": " padded ", "ts": 1}, "id"),
        # a client clock eighty years ahead (would age everything else: TRIBES_MAX_FUTURE_SECONDS)
        (
            {
                "type": "post",
                "id": "x",
                "author": "ev-user-1",
                "ts": "2106-10-31T12:00:00Z",
                "text": "t",
            },
            "ts",
        ),
    ],
)
@pytest.mark.parametrize("as_ndjson", [False, True])
def test_one_bad_event_stores_nothing(fresh, bad, field, as_ndjson):
    client, store = fresh.client, fresh.store
    snapshot = dump_tables(store)
    events = [*EVENTS[:3], bad, *EVENTS[3:]]
    if as_ndjson:
        response = client.post(
            "/v1/events",
            data=b"\n".join(orjson.dumps(e) for e in events),
            content_type="application/x-ndjson",
        )
    else:
        response = client.post("/v1/events", json=events)
    body = assert_problem(response, 422, mentions="event 3")
    assert body["rejected"] == 1
    assert body["errors"] == [
        {"index": 3, "line": 4, "field": field, "problem": body["errors"][0]["problem"]}
    ]
    assert dump_tables(store) == snapshot


def test_events_conflicting_with_the_store_are_a_422(fresh):
    client, store = fresh.client, fresh.store
    post_id = str(model_of(fresh).thread_ids[0])  # a stored root post
    snapshot = dump_tables(store)
    response = client.post(
        "/v1/events",
        json=[
            EVENTS[0],
            {
                "type": "post",
                "id": post_id,
                "author": "ev-user-1",
                "ts": 1,
                "text": "not what was stored",
            },
        ],
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["field"] == "id"
    assert dump_tables(store) == snapshot


def test_malformed_event_bodies(fresh):
    client, store = fresh.client, fresh.store
    snapshot = dump_tables(store)
    assert_problem(
        client.post("/v1/events", data=b"[{", content_type="application/json"),
        400,
        mentions="not JSON",
    )
    assert_problem(client.post("/v1/events", data=b"", content_type="application/json"), 400)
    assert_problem(client.post("/v1/events", json=EVENTS[0]), 400, mentions="array")
    assert_problem(client.post("/v1/events", json="text"), 400, mentions="array")
    body = assert_problem(
        client.post(
            "/v1/events",
            data=b'{"type":"user","id":"a","ts":1}\n{oops\n',
            content_type="application/x-ndjson",
        ),
        422,
    )
    assert body["errors"][0]["index"] == 1
    assert_problem(client.post("/v1/events", json=[1, None]), 422)
    for content_type in ("text/plain", "application/xml", "multipart/form-data; boundary=x"):
        assert_problem(
            client.post("/v1/events", data=orjson.dumps(EVENTS), content_type=content_type), 415
        )
    assert_problem(client.post("/v1/events", data=orjson.dumps(EVENTS)), 415)
    assert dump_tables(store) == snapshot


def test_body_over_the_limit_is_a_413(fresh):
    app = make_app(fresh.root, max_body_bytes=2000)
    try:
        client = app.test_client()
        big = [{"type": "user", "id": f"big-{i}", "ts": 1} for i in range(100)]
        for kwargs in (
            {"json": big},
            {
                "data": b"\n".join(orjson.dumps(e) for e in big),
                "content_type": "application/x-ndjson",
            },
            {"data": b"x" * 3000, "content_type": "text/plain"},
        ):
            assert_problem(client.post("/v1/events", **kwargs), 413, mentions="2000")
        assert_problem(
            client.post(
                "/v1/users/u000001/feedback",
                data=b"{" + b" " * 3000 + b"}",
                content_type="application/json",
            ),
            413,
        )
        assert client.post("/v1/events", json=big[:3]).status_code == 200
    finally:
        app.extensions["tribes"].store.close()


# --- feedback -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target_kind": "post", "target_id": "x", "action": "dismiss"}, "target_kind"),
        ({"target_kind": "user", "target_id": "x", "action": "like"}, "action"),
        ({"target_kind": "user", "target_id": "x", "action": "dismiss", "extra": 1}, "extra"),
        ({"target_kind": "user", "action": "dismiss"}, "target_id"),
        ({"target_kind": "user", "target_id": "", "action": "dismiss"}, "target_id"),
        (
            {"target_kind": "user", "target_id": "x", "action": "dismiss", "tracking_id": "t" * 65},
            "tracking_id",
        ),
    ],
)
def test_invalid_feedback_is_a_400_naming_the_field(world, client, body, field):
    before = world.store.table_counts()["feedback"]
    response = client.post("/v1/users/u000001/feedback", json=body)
    problem = assert_problem(response, 400, field=field)
    assert field in [e["field"] for e in problem["errors"]]
    assert world.store.table_counts()["feedback"] == before


def test_feedback_needs_json(client):
    good = orjson.dumps({"target_kind": "user", "target_id": "u000002", "action": "report"})
    assert_problem(
        client.post("/v1/users/u000001/feedback", data=good, content_type="text/plain"), 415
    )
    assert_problem(client.post("/v1/users/u000001/feedback", data=good), 415)
    assert_problem(
        client.post("/v1/users/u000001/feedback", data=b"{nope", content_type="application/json"),
        400,
    )
    assert_problem(
        client.post("/v1/users/u000001/feedback", data=b"[]", content_type="application/json"), 400
    )


# --- system endpoints ---------------------------------------------------------------------------
def test_model_info(world, client):
    response = client.get("/v1/model")
    assert response.status_code == 200
    info = ModelInfo.model_validate(response.json)
    assert info.version == ModelStore(world.models).current() == model_of(world).version
    assert info.counts["users"] >= 300 and info.built_at


def test_health(client):
    live = client.get("/livez")
    assert live.status_code == 200 and Health.model_validate(live.json).status == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert Health.model_validate(ready.json).checks == {
        "store": "ok",
        "model": client.get("/v1/model").json["version"],
    }


def test_without_a_model_readyz_and_v1_are_503_but_livez_is_up(tmp_path_factory):
    app = make_app(empty_root(tmp_path_factory))
    client = app.test_client()
    try:
        assert client.get("/livez").status_code == 200
        body = assert_problem(client.get("/readyz"), 503)
        assert body["checks"]["store"] == "ok" and body["checks"]["model"]
        for path in (
            "/v1/model",
            "/v1/tribes",
            "/v1/tribes/1",
            "/v1/users/u1/suggestions/people",
            "/v1/users/u1/suggestions/conversations",
            "/v1/users/u1/tribes",
        ):
            assert_problem(client.get(path), 503, mentions="recompute")
    finally:
        app.extensions["tribes"].store.close()


def test_metrics(client):
    client.get("/livez")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "# TYPE tribes_requests_total counter" in text
    assert re.search(
        r'tribes_requests_total\{endpoint="/livez",method="GET",status="200"\} [1-9]', text
    )
    assert "tribes_request_seconds_bucket" in text


def _spec_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_openapi_documents_every_route(world, client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.json
    assert spec["openapi"] == "3.1.0" and spec["info"]["title"]
    routes = set()
    for rule in world.app.url_map.iter_rules():
        if rule.rule.startswith("/v1") or rule.endpoint.startswith("system."):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((_spec_path(rule.rule), method.lower()))
    assert ("/v1/events", "post") in routes and ("/livez", "get") in routes
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert routes == documented
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert op["responses"] and op["operationId"] and op["summary"]
            for parameter in op.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path
    for name in ("PeoplePage", "ConversationsPage", "TribePage", "ProblemDetail", "Feedback"):
        assert name in spec["components"]["schemas"]
    assert "securitySchemes" not in spec["components"]  # no keys configured


def test_docs_page(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert page.startswith("<!doctype html>") and "/openapi.json" in page
    for path in client.get("/openapi.json").json["paths"]:
        assert path in page


# --- errors and request ids ---------------------------------------------------------------------
def test_unknown_path_and_wrong_method_are_problems(client):
    assert_problem(client.get("/nowhere"), 404, mentions="/nowhere")
    assert_problem(client.get("/v1/users/u000001/suggestions"), 404)
    assert_problem(client.get("/v1/users/u000001/suggestions/people/extra"), 404)
    response = client.delete("/v1/tribes")
    assert_problem(response, 405, mentions="DELETE")
    assert "GET" in response.headers["Allow"]
    assert_problem(client.get("/v1/events"), 405)
    assert_problem(client.put("/v1/users/u000001/feedback", json={}), 405)
    assert_problem(client.post("/livez"), 405)


def test_an_unexpected_error_is_a_500_problem_without_details(world, caplog):
    class Broken(SuggestionService):
        def suggestions_json(self, *args, **kwargs):  # what the view calls
            raise RuntimeError("secret internals")

    service = Broken(world.store, world.service.holder)
    app = create_app(
        {"SETTINGS": settings_for(world.root), "ACCESS_LOG": False, "SERVICE": service}
    )
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/v1/users/u000001/suggestions/people")
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert body["request_id"] in body["detail"] or "request id" in body["detail"]
    assert any("secret internals" in (r.exc_text or "") for r in caplog.records)


def test_generated_request_ids_differ_between_forked_workers():
    """gunicorn forks its workers from one master: each must draw its own ids."""
    from api.observe import request_id

    request_id({})  # the parent's generator is in use before the fork, as in the master
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id, then leave without running pytest's teardown
        os.write(write, request_id({}).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = request_id({})
    assert re.fullmatch(r"[0-9a-f]{32}", child) and re.fullmatch(r"[0-9a-f]{32}", parent)
    assert child != parent
    assert len({request_id({}) for _ in range(1000)}) == 1000


def test_request_ids(client):
    for response in (
        client.get("/livez"),
        client.get("/nowhere"),
        client.delete("/v1/tribes"),
        client.get("/v1/tribes/abc"),
        client.get("/v1/users/u000001/tribes"),
    ):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    seen = client.get("/livez", headers={"X-Request-ID": "client-req.42_A"})
    assert seen.headers["X-Request-ID"] == "client-req.42_A"
    problem = client.get("/nowhere", headers={"X-Request-ID": "trace-1"})
    assert problem.headers["X-Request-ID"] == "trace-1" and problem.json["request_id"] == "trace-1"
    for bad in ("has spaces", "x" * 200, "", "semi;colon", "é"):
        response = client.get("/livez", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), bad
    a, b = client.get("/livez"), client.get("/livez")
    assert a.headers["X-Request-ID"] != b.headers["X-Request-ID"]


# --- auth and rate limits -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def keyed(world):
    app = make_app(world.root, api_keys="k1-secret,k2-secret")
    yield app
    app.extensions["tribes"].store.close()


def test_api_keys_guard_v1(keyed):
    client = keyed.test_client()
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "k1-secret"},
        {"Authorization": "Basic k1-secret"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer k1-secret,k2-secret"},
    ):
        for path in ("/v1/model", "/v1/tribes", "/v1/users/u000001/suggestions/people"):
            response = client.get(path, headers=headers)
            assert_problem(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert_problem(client.post("/v1/events", json=[], headers=headers), 401)
    for key in ("k1-secret", "k2-secret"):
        assert (
            client.get("/v1/model", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        )
    # The scheme name is case-insensitive (RFC 7235).
    assert client.get("/v1/model", headers={"Authorization": "bearer k1-secret"}).status_code == 200
    for path in ("/livez", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200
    spec = client.get("/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/model"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/livez"]["get"]
    assert "401" in spec["paths"]["/v1/tribes"]["get"]["responses"]


def test_api_keys_file_with_digests(world, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(
        "# deploy keys\n\nsha256:" + hashlib.sha256(b"from-file").hexdigest() + "\nplain-key\n"
    )
    app = make_app(world.root, api_keys_file=str(keys))
    try:
        client = app.test_client()
        assert (
            client.get("/v1/model", headers={"Authorization": "Bearer from-file"}).status_code
            == 200
        )
        assert (
            client.get("/v1/model", headers={"Authorization": "Bearer plain-key"}).status_code
            == 200
        )
        assert_problem(client.get("/v1/model", headers={"Authorization": "Bearer sha256:x"}), 401)
        assert_problem(client.get("/v1/model"), 401)
    finally:
        app.extensions["tribes"].store.close()
    keys.write_text("sha256:abc\n")
    with pytest.raises(ValueError, match="64 hex digits"):
        make_app(world.root, api_keys_file=str(keys))


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def test_keys_never_appear_in_logs(world, caplog, capsys):
    app = make_app(world.root, access_log=True, api_keys="k1-very-secret")
    collect = _Collect()
    access = logging.getLogger("tribes.access")
    access.addHandler(collect)
    try:
        client = app.test_client()
        with caplog.at_level(logging.DEBUG):
            client.get("/v1/model", headers={"Authorization": "Bearer k1-very-secret"})
            client.get("/v1/tribes?limit=abc", headers={"Authorization": "Bearer k1-very-secret"})
            client.get("/v1/model", headers={"Authorization": "Bearer k9-wrong-secret"})
            client.post(
                "/v1/events",
                data=b"[",
                headers={"Authorization": "Bearer k1-very-secret"},
                content_type="application/json",
            )
    finally:
        access.removeHandler(collect)
        app.extensions["tribes"].store.close()
    assert len(collect.lines) == 4
    lines = [orjson.loads(line) for line in collect.lines]
    assert [x["status"] for x in lines] == [200, 400, 401, 400]
    assert all(x["request_id"] and x["path"].startswith("/v1/") for x in lines)
    captured = capsys.readouterr()
    everything = "\n".join([*collect.lines, caplog.text, captured.out, captured.err])
    for secret in (
        "k1-very-secret",
        "k9-wrong-secret",
        hashlib.sha256(b"k1-very-secret").hexdigest(),
        "very-secret",
        "wrong-secret",
    ):
        assert secret not in everything


def test_rate_limit_per_key(world):
    app = make_app(world.root, api_keys="rk1,rk2", rate_limit_per_minute=3)
    try:
        client = app.test_client()
        one, two = {"Authorization": "Bearer rk1"}, {"Authorization": "Bearer rk2"}
        for _ in range(3):
            assert client.get("/v1/model", headers=one).status_code == 200
        response = client.get("/v1/tribes", headers=one)
        assert_problem(response, 429)
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        # The same key spelled with extra spaces is the same key, for the limit as for auth.
        assert_problem(client.get("/v1/model", headers={"Authorization": "Bearer rk1  "}), 429)
        # Each key has its own budget.
        assert client.get("/v1/model", headers=two).status_code == 200
        assert client.get("/livez").status_code == 200
        assert_problem(client.get("/v1/model"), 401)  # no key: 401 before any limit
    finally:
        app.extensions["tribes"].store.close()


# --- hot model swap -----------------------------------------------------------------------------
def test_hot_model_swap_while_serving(fresh):
    client = fresh.client
    user = rich_users(fresh)[0]
    old = client.get("/v1/model").json["version"]
    done = threading.Event()
    result: dict = {}

    def job():
        try:
            result["version"] = fresh.recompute({"seed": 7, "tribe_diversity": 0.8})
        except BaseException as exc:  # pragma: no cover - reported below
            result["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=job)
    worker.start()
    seen = []
    try:
        while not done.is_set():
            for kind in KINDS:
                response = suggestions(client, user, kind, limit=5)
                assert response.status_code == 200, response.json
                seen.append(response.json["model_version"])
            assert client.get("/v1/tribes").status_code == 200
            assert client.get("/readyz").status_code == 200
    finally:
        worker.join()
    assert "error" not in result, result.get("error")
    new = result["version"]
    assert new != old and set(seen) <= {old, new}
    assert seen == sorted(seen, key=lambda v: v == new)  # once swapped, never back
    assert suggestions(client, user).json["model_version"] == new
    assert client.get("/v1/model").json["version"] == new
    assert client.get("/readyz").json["checks"]["model"] == new
    assert client.get("/v1/tribes").json["model_version"] == new


# --- pre-rendered items and the live-filter shortcut ----------------------------------------------
def _reference_page(
    model, user: str, kind: str, limit: int, offset: int = 0, **filters
) -> list[dict]:
    """The page as the Recommender renders it from scratch (no cache), without tracking ids."""
    render = model.people if kind == "people" else model.conversations
    return render(user, limit, offset=offset, **filters)


def _without_tracking(items: list[dict]) -> list[dict]:
    return [{k: v for k, v in item.items() if k != "tracking_id"} for item in items]


@pytest.mark.parametrize("kind", KINDS)
def test_pre_rendered_items_equal_a_fresh_rendering(world, client, kind):
    model = model_of(world)
    for user in rich_users(world)[:6]:
        for _ in range(2):  # the first request fills the cache, the second is served from it
            first = suggestions(client, user, kind, limit=7).json
            second = suggestions(client, user, kind, limit=7, cursor=first["next_cursor"]).json
            assert _without_tracking(first["items"]) == _reference_page(model, user, kind, 7)
            assert _without_tracking(second["items"]) == _reference_page(model, user, kind, 7, 7)
            positions = [
                tracking_id(model.version, user, item[ITEM_KEY[kind]], p)
                for p, item in enumerate(first["items"] + second["items"])
            ]
            assert [i["tracking_id"] for i in first["items"] + second["items"]] == positions
    assert len(model.rendered) > 0


def test_a_block_after_the_cache_was_filled_hides_the_person_everywhere_at_once(fresh):
    client = fresh.client
    model = model_of(fresh)
    for user in rich_users(fresh):
        before = suggestions(client, user, limit=100).json["items"]  # fills the cache
        named = [
            (item, reason)
            for item in before
            for reason in item["reasons"]
            if reason["kind"] == "mutual_contacts"
        ]
        if named:
            break
    else:
        pytest.fail("no suggestion with mutual contacts in the synthetic world")
    item, reason = named[0]
    hidden = reason["user_ids"][0]
    post_events(client, [{"type": "block", "src": user, "dst": hidden, "ts": LATER}])
    after = suggestions(client, user, limit=100)
    assert after.json["model_version"] == model.version  # the same model, the same cache
    assert f'"{hidden}"' not in after.get_data(as_text=True)
    kept = {i["user_id"]: i for i in after.json["items"]}
    assert item["user_id"] in kept  # the item stays, its reason no longer names them
    assert kept[item["user_id"]]["reasons"] != item["reasons"]
    expected = _reference_page(model, user, "people", 100, exclude={hidden}, unseen={hidden})
    assert _without_tracking(after.json["items"]) == expected
    # Conversations too: nobody hidden among participants or reasons.
    body = suggestions(client, user, "conversations", limit=100).get_data(as_text=True)
    assert f'"{hidden}"' not in body


def test_a_new_model_version_serves_freshly_rendered_items(fresh):
    client = fresh.client
    user = rich_users(fresh)[0]
    old = model_of(fresh)
    for kind in KINDS:
        suggestions(client, user, kind)
    assert len(old.rendered) == 2
    fresh.recompute({"seed": 7, "tribe_diversity": 0.8})
    for kind in KINDS:
        page = suggestions(client, user, kind, limit=30).json
        new = model_of(fresh)
        assert new is not old and page["model_version"] == new.version != old.version
        assert _without_tracking(page["items"]) == _reference_page(new, user, kind, 30)
    assert len(new.rendered) == 2


def test_rendered_lists_stay_within_their_byte_budget(world):
    model = model_of(world)
    lists = RenderedLists(model, max_bytes=60_000)
    users = rich_users(world)[:12]
    for user in users * 2:
        u = model.index_of(user)
        items, _more = lists.page("people", u, 20, tracking=lambda item, p: f"{item}@{p}")
        assert _without_tracking([orjson.loads(p + t) for p, t in items]) == _reference_page(
            model, user, "people", 20
        )
        assert lists.nbytes <= 60_000 or len(lists) == 1
    assert len(lists) < len(users)  # the oldest lists were dropped


def test_the_api_imports_none_of_the_recompute_pipeline():
    """Workers start in half a second with ~100 MiB less: igraph, numba and the ranking
    pipeline are the recompute's (a cold start included: ``tribes.newcomers`` imports them
    only where the recompute uses them)."""
    code = (
        "import sys, api, tribes.service, tribes.newcomers; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('igraph', 'numba', 'implicit', 'networkx') "
        "or m in ('tribes.ranking', 'tribes.conversations', 'tribes.communities', 'tribes.kernels')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_rendered_cache_is_as_large_as_the_setting_says(world):
    small = make_app(world.root, render_cache_mb=1).test_client()
    users = rich_users(world)
    for user in users:
        for kind in KINDS:
            assert suggestions(small, user, kind, limit=100).status_code == 200
    model = small.application.extensions["tribes"].holder.get()
    assert model.rendered.max_bytes == 2**20
    assert model.rendered.nbytes <= 2**20
    assert 1 < len(model.rendered) < 2 * len(users)  # the oldest lists were dropped
    assert model_of(world).rendered.max_bytes == 128 * 2**20  # the default


@pytest.mark.parametrize("kind", KINDS)
def test_a_cached_list_costs_the_garbage_collector_one_object_whatever_its_length(world, kind):
    """A full collection stops a worker's threads while it walks every tracked container: a
    cached list's ids, scores, flags and the names of each item must not stay tracked."""
    model = model_of(world)
    lists = RenderedLists(model)
    for user in rich_users(world)[:4]:
        lists.page(kind, model.index_of(user), 50, tracking=lambda item, p: f"{item}@{p}")
    gc.collect()  # tuples of strings, bytes and numbers leave the collector's view on their first
    gc.collect()  # pass, a tuple of such tuples (the names of each item) on the next
    cached = list(lists._lists.values())
    assert sum(p is not None for lst in cached for p in lst.parts) >= 20  # rendered items
    for lst in cached:
        held = (lst.ids, lst.scores, lst.flags, lst.parts, lst.tids, lst.refs, *lst.refs)
        assert not any(gc.is_tracked(x) for x in held)
        assert [x for x in gc.get_referents(lst) if gc.is_tracked(x)] == [type(lst)]
    if kind == "conversations":  # threads name their participants: the refs are filled
        assert any(refs for lst in cached for refs in lst.refs)


def test_the_live_reader_agrees_with_the_store(fresh):
    client = fresh.client
    model = model_of(fresh)
    since = int(model.manifest["live_seq"])
    reader = fresh.service.live_reader
    assert reader is not None  # a file-backed SQLite store
    users = rich_users(fresh)[:6]
    # Nothing recorded since the model: the shortcut answers without the per-user query.
    assert reader.exclusions(users[0], since, listed=True) == LiveFilters(set(), set(), set(), True)
    a, b, c, d = users[:4]
    thread = ids(client, d, "conversations")[0]
    post_events(
        client,
        [
            {"type": "block", "src": a, "dst": b, "ts": LATER},
            {"type": "mute", "src": c, "dst": a, "ts": LATER},
            {"type": "delete_user", "id": users[5], "ts": LATER},
            {"type": "user", "id": users[4], "ts": LATER, "discoverable": False},
            {"type": "delete_post", "id": thread, "ts": LATER},
        ],
    )
    client.post(
        f"/v1/users/{d}/feedback",
        json={"target_kind": "user", "target_id": a, "action": "dismiss"},
    )
    for user in [*users, "nobody-at-all"]:
        for seq in (0, since):
            expected = fresh.store.live_exclusions(user, seq)
            assert reader.exclusions(user, seq, listed=False) == expected
            if user != "nobody-at-all":
                assert reader.exclusions(user, seq, listed=True) == expected
    assert not reader.exclusions(users[5], since, listed=True).user_exists


def test_access_log_lines_are_written_whole_to_the_handler_stream(world, tmp_path):
    """The default handler's stream (stderr in production) gets one JSON line per request."""
    app = make_app(world.root, access_log=True)
    access = logging.getLogger("tribes.access")
    saved = access.handlers[:]
    # The handler create_app installs, alone (pytest adds capture handlers of its own).
    handler = next(h for h in saved if type(h) is logging.StreamHandler)
    with open(tmp_path / "access.log", "w") as stream:
        previous = handler.setStream(stream)
        access.handlers = [handler]
        try:
            client = app.test_client()
            rids = [client.get("/livez").headers["X-Request-ID"] for _ in range(3)]
            user = rich_users(world)[0]
            rids.append(suggestions(client, user).headers["X-Request-ID"])
            flush_access_log()
        finally:
            access.handlers = saved
            handler.setStream(previous)
            app.extensions["tribes"].store.close()
    lines = [orjson.loads(x) for x in (tmp_path / "access.log").read_text().splitlines()]
    assert [x["request_id"] for x in lines] == rids
    last = lines[-1]
    assert last["endpoint"].endswith("/suggestions/people") and last["status"] == 200
    assert last["bytes"] > 0 and last["ms"] >= 0
    assert last["path"] == f"/v1/users/{user}/suggestions/people"


def test_access_log_batches_are_whole_lines_flushed_in_time(tmp_path):
    path = tmp_path / "batched.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        buffer = AccessLogBuffer(max_delay=0.05)
        lines = [orjson.dumps({"n": i, "pad": "x" * (i % 300)}) + b"\n" for i in range(200)]
        for line in lines[:-1]:
            buffer.write(fd, line)
        written = path.read_bytes()
        assert written and written.endswith(b"\n")  # batches of whole lines went out already
        assert len(written) < sum(map(len, lines[:-1]))  # and some are still queued
        buffer.write(fd, lines[-1])
        deadline = time.monotonic() + 5
        while path.stat().st_size < sum(map(len, lines)) and time.monotonic() < deadline:
            time.sleep(0.01)  # the flusher writes what is queued within max_delay
        assert path.read_bytes() == b"".join(lines)
    finally:
        os.close(fd)
