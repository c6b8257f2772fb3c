"""Privacy: every exclusion kind x every surface, live (before a recompute) and baked (after).

Exclusions: a person who turned non-discoverable, a block and a mute in either direction, a
dismissal, a deletion. Surfaces: people and their reasons (mutual contacts), conversations (items,
participants, reasons), the user's tribes, tribe pages (starter pack and live threads), the
tribes list, and cold start (a newcomer and an old user the model holds no list for).

"Appears" means the id occurs anywhere in the response body, reasons' texts included. Per-viewer
exclusions (block, mute, dismissal) hide the person from that viewer; global ones
(non-discoverable, deleted) hide them from everyone.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from tests.api_fixtures import LATER, World, make_world

PER_VIEWER = ("block_out", "block_in", "mute_out", "mute_in", "dismissed")
GLOBAL = ("non_discoverable", "deleted")


def body(client, path: str, **params) -> str:
    response = client.get(path, query_string=params)
    assert response.status_code == 200, (path, response.data[:300])
    return response.get_data(as_text=True)


def viewer_bodies(client, user: str) -> dict[str, str]:
    """Everything shown to ``user``: both lists in full, their tribes."""
    out = {}
    for kind in ("people", "conversations"):
        response = client.get(f"/v1/users/{user}/suggestions/{kind}", query_string={"limit": 100})
        assert response.status_code == 200, response.data[:300]
        assert response.json["next_cursor"] is None
        out[kind] = response.get_data(as_text=True)
    out["tribes"] = body(client, f"/v1/users/{user}/tribes")
    return out


def public_bodies(client) -> dict[str, str]:
    """Pages without a viewer: the tribes list and every tribe's page."""
    listing = client.get("/v1/tribes", query_string={"limit": 100}).json
    out = {"tribes": body(client, "/v1/tribes", limit=100)}
    for tribe in listing["items"]:
        out[f"tribe {tribe['tribe_id']}"] = body(client, f"/v1/tribes/{tribe['tribe_id']}")
    return out


def mentioned(people_json: dict, conv_json: dict) -> dict[str, set[str]]:
    """Ids shown to a viewer, by where: items, reasons, participants."""
    where: dict[str, set[str]] = {"items": set(), "reasons": set(), "participants": set()}
    for item in people_json["items"]:
        where["items"].add(item["user_id"])
        for reason in item["reasons"]:
            where["reasons"].update(reason.get("user_ids", []))
    for item in conv_json["items"]:
        where["participants"].update(item["participants"])
        for reason in item["reasons"]:
            where["reasons"].update(reason.get("user_ids", []))
    return where


def quoted(user: str) -> list[str]:
    # Ids are fixed-width (u000123), so a bare substring match is exact; the quoted and the
    # in-text forms are both checked.
    return [f'"{user}"', f"{user},", f"{user})", f" {user}"]


def assert_absent(user: str, bodies: dict[str, str], context: str) -> None:
    for where, text in bodies.items():
        for form in quoted(user):
            assert form not in text, (
                f"{context}: {user} appears in {where}: …{_around(text, user)}…"
            )


def _around(text: str, needle: str) -> str:
    i = text.find(needle)
    return text[max(0, i - 160) : i + 80]


class Scene:
    """A viewer, one target per exclusion kind (each shown to the viewer before), applied live."""

    def __init__(self, world: World):
        self.world = world
        client = world.client
        model = world.service.holder.get()
        people_n = (np.asarray(model.arrays["people_items"]) >= 0).sum(axis=1)
        order = np.argsort(-people_n, kind="stable")
        # A viewer with a long list and many named contacts in reasons.
        best = None
        for u in order[:40]:
            user = str(model.user_ids[u])
            people = client.get(f"/v1/users/{user}/suggestions/people?limit=100").json
            conv = client.get(f"/v1/users/{user}/suggestions/conversations?limit=100").json
            where = mentioned(people, conv)
            only_reasons = (where["reasons"] | where["participants"]) - where["items"] - {user}
            score = min(len(only_reasons), 6) * 100 + len(where["items"])
            if best is None or score > best[0]:
                best = (score, user, where, only_reasons)
        _, self.viewer, where, only_reasons = best
        assert len(only_reasons) >= 4, "the synthetic world names too few contacts in reasons"
        pack_members = set()
        for tribe in client.get("/v1/tribes?limit=100").json["items"]:
            pack_members |= set(client.get(f"/v1/tribes/{tribe['tribe_id']}").json["starter_pack"])
        # Reason-only people for blocks and mutes: the known gap was reasons, not items.
        pool = sorted(only_reasons)
        items = sorted(where["items"] - {self.viewer})
        self.targets: dict[str, str] = {}
        self.targets["block_out"] = pool[0]
        self.targets["block_in"] = pool[1]
        self.targets["mute_out"] = pool[2]
        self.targets["mute_in"] = pool[3]
        taken = set(self.targets.values())
        self.targets["dismissed"] = next(x for x in items if x not in taken)
        taken.add(self.targets["dismissed"])
        shown = sorted((where["items"] | where["reasons"]) & pack_members - taken - {self.viewer})
        assert len(shown) >= 2, "need two starter-pack members the viewer is shown"
        self.targets["non_discoverable"], self.targets["deleted"] = shown[0], shown[1]
        self.before = viewer_bodies(client, self.viewer)
        for kind, target in self.targets.items():
            assert any(target in text for text in self.before.values()), (kind, target)

    def apply(self) -> None:
        v, t = self.viewer, self.targets
        events = [
            {"type": "block", "src": v, "dst": t["block_out"], "ts": LATER},
            {"type": "block", "src": t["block_in"], "dst": v, "ts": LATER},
            {"type": "mute", "src": v, "dst": t["mute_out"], "ts": LATER},
            {"type": "mute", "src": t["mute_in"], "dst": v, "ts": LATER},
            {"type": "user", "id": t["non_discoverable"], "ts": LATER, "discoverable": False},
            {"type": "delete_user", "id": t["deleted"], "ts": LATER},
        ]
        client = self.world.client
        assert client.post("/v1/events", json=events).status_code == 200
        response = client.post(
            f"/v1/users/{v}/feedback",
            json={"target_kind": "user", "target_id": t["dismissed"], "action": "dismiss"},
        )
        assert response.status_code == 201

    def check(self, context: str) -> None:
        client = self.world.client
        model = self.world.service.holder.get()
        mine = viewer_bodies(client, self.viewer)
        for kind in PER_VIEWER + GLOBAL:
            assert_absent(self.targets[kind], mine, f"{context}, {kind}")
        # The global ones: nobody sees them, nor does any tribe page.
        others = [str(model.user_ids[i]) for i in range(0, len(model.user_ids), 11)]
        gone = {self.targets[k] for k in GLOBAL}
        for other in others:
            if other in gone:
                continue
            shown = viewer_bodies(client, other)
            for kind in GLOBAL:
                assert_absent(self.targets[kind], shown, f"{context}, {kind}, viewer {other}")
        pages = public_bodies(client)
        for kind in GLOBAL:
            assert_absent(self.targets[kind], pages, f"{context}, {kind}")
        # Blocks and mutes hide the viewer from the other side too.
        for kind in ("block_out", "block_in", "mute_out", "mute_in"):
            shown = viewer_bodies(client, self.targets[kind])
            assert_absent(self.viewer, shown, f"{context}, {kind} (other side)")


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Scene:
    world = make_world(tmp_path_factory, "privacy")
    s = Scene(world)
    s.apply()
    yield s
    world.close()


def test_every_exclusion_hides_the_person_at_once(scene):
    scene.check("live, before any recompute")


def test_every_exclusion_still_hides_the_person_after_a_recompute(scene):
    before = scene.world.service.holder.get().version
    scene.world.recompute()
    assert scene.world.service.holder.get().version != before
    scene.check("after a recompute")
    # The deleted person is not in the model at all any more.
    model = scene.world.service.holder.get()
    assert model.index_of(scene.targets["deleted"]) is None


def test_delete_user_removes_every_row_at_once(tmp_path_factory):
    world = make_world(tmp_path_factory, "privacy-delete")
    try:
        client, store = world.client, world.store
        model = world.service.holder.get()
        # Someone with posts, relations both ways and feedback both ways.
        with store.engine.connect() as conn:
            gone = conn.execute(
                sa.text(
                    "SELECT u.id FROM users u WHERE EXISTS (SELECT 1 FROM posts p WHERE p.author = u.uid) "
                    "AND EXISTS (SELECT 1 FROM edges e WHERE e.src = u.uid) "
                    "AND EXISTS (SELECT 1 FROM edges e WHERE e.dst = u.uid) ORDER BY u.id LIMIT 1"
                )
            ).scalar_one()
        other = next(str(x) for x in model.user_ids if str(x) != gone)
        for src, dst in ((gone, other), (other, gone)):
            response = client.post(
                f"/v1/users/{src}/feedback",
                json={"target_kind": "user", "target_id": dst, "action": "dismiss"},
            )
            assert response.status_code == 201
        assert client.get(f"/v1/users/{gone}/suggestions/people").status_code == 200
        assert (
            client.post(
                "/v1/events", json=[{"type": "delete_user", "id": gone, "ts": LATER}]
            ).status_code
            == 200
        )
        with store.engine.connect() as conn:

            def count(sql: str) -> int:
                return conn.execute(sa.text(sql), {"id": gone}).scalar_one()

            assert count("SELECT COUNT(*) FROM users WHERE id = :id") == 0
            assert (
                count("SELECT COUNT(*) FROM posts WHERE author NOT IN (SELECT uid FROM users)") == 0
            )
            assert (
                count(
                    "SELECT COUNT(*) FROM edges WHERE src NOT IN (SELECT uid FROM users) "
                    "OR dst NOT IN (SELECT uid FROM users)"
                )
                == 0
            )
            assert (
                count(
                    "SELECT COUNT(*) FROM feedback WHERE target_kind = 'user' AND target_id = :id"
                )
                == 0
            )
            assert (
                count("SELECT COUNT(*) FROM feedback WHERE uid NOT IN (SELECT uid FROM users)") == 0
            )
            # What remains: the tombstone (id and time only) and the live hide for the model.
            assert count("SELECT COUNT(*) FROM tombstones WHERE kind = 'user' AND id = :id") == 1
            names = {
                r[0]
                for r in conn.execute(
                    sa.text("SELECT name FROM sqlite_master WHERE type = 'table'")
                )
            }
            for table in names - {"tombstones", "live_changes", "alembic_version"}:
                columns = [r[1] for r in conn.execute(sa.text(f"PRAGMA table_info({table})"))]
                text_columns = [
                    c for c in columns if c in ("id", "name", "bio", "target_id", "other")
                ]
                for column in text_columns:
                    n = conn.execute(
                        sa.text(f"SELECT COUNT(*) FROM {table} WHERE {column} = :id"), {"id": gone}
                    ).scalar_one()
                    assert n == 0, (table, column)
        # Served results drop them at once (no recompute), and their own pages are 404s.
        for path in (f"/v1/users/{gone}/suggestions/people", f"/v1/users/{gone}/tribes"):
            assert client.get(path).status_code == 404
        for i in range(0, len(model.user_ids), 13):
            viewer = str(model.user_ids[i])
            if viewer != gone:
                assert_absent(gone, viewer_bodies(client, viewer), f"viewer {viewer}")
        assert_absent(gone, public_bodies(client), "tribe pages")
        # Replaying their old events cannot bring them back.
        replay = [{"type": "follow", "src": gone, "dst": other, "ts": 1}]
        assert client.post("/v1/events", json=replay).json["ignored_erased"] == 1
        assert client.get(f"/v1/users/{gone}/tribes").status_code == 404
    finally:
        world.close()


def test_cold_start_never_shows_blocked_or_muted_people(tmp_path_factory):
    """Cold start and newcomer lists: a newcomer after the recompute, and an old user who had
    done nothing (the model lists the most welcoming people for them) whose blocks are then
    older than the model (no longer in the live changes)."""
    world = make_world(tmp_path_factory, "privacy-cold")
    try:
        client = world.client

        def cold(user: str, kind: str = "people") -> list[str]:
            response = client.get(f"/v1/users/{user}/suggestions/{kind}?limit=100")
            assert response.status_code == 200 and response.json["cold_start"], response.json
            return response.get_data(as_text=True)

        def served(user: str, kind: str = "people") -> str:
            response = client.get(f"/v1/users/{user}/suggestions/{kind}?limit=100")
            assert response.status_code == 200 and response.json["items"], response.json
            return response.get_data(as_text=True)

        # An old user with no activity at all: the model lists the most welcoming people (and
        # live threads open to newcomers).
        assert (
            client.post(
                "/v1/events", json=[{"type": "user", "id": "zz-loner", "ts": 1_700_000_000}]
            ).status_code
            == 200
        )
        world.recompute()
        listed = client.get("/v1/users/zz-loner/suggestions/people?limit=100").json
        assert not listed["cold_start"] and listed["items"]
        first = [i["user_id"] for i in listed["items"][:4]]
        events = [
            {"type": "block", "src": "zz-loner", "dst": first[0], "ts": LATER},
            {"type": "block", "src": first[1], "dst": "zz-loner", "ts": LATER},
            {"type": "mute", "src": "zz-loner", "dst": first[2], "ts": LATER},
            {"type": "mute", "src": first[3], "dst": "zz-loner", "ts": LATER},
        ]
        assert client.post("/v1/events", json=events).status_code == 200
        for x in first:
            assert_absent(x, {"people": served("zz-loner")}, "old user, live")
        world.recompute()  # the blocks are now older than the model
        world.recompute()  # and pruned from the live changes
        with world.store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM live_changes")).scalar_one() == 0
        for x in first:
            assert_absent(
                x,
                {"people": served("zz-loner"), "conv": served("zz-loner", "conversations")},
                "old user, baked",
            )
        # A newcomer who follows someone and blocks the first person suggested.
        model = world.service.holder.get()
        seed = next(
            str(model.user_ids[i])
            for i in range(len(model.user_ids))
            if model.labels[i] >= 0 and model.contacts_out.row(i).size >= 3
        )
        assert (
            client.post(
                "/v1/events",
                json=[
                    {"type": "user", "id": "zz-new", "ts": LATER},
                    {"type": "follow", "src": "zz-new", "dst": seed, "ts": LATER},
                ],
            ).status_code
            == 200
        )
        shown = client.get("/v1/users/zz-new/suggestions/people?limit=100").json["items"]
        blocked, blocker = shown[0]["user_id"], shown[1]["user_id"]
        assert (
            client.post(
                "/v1/events",
                json=[
                    {"type": "block", "src": "zz-new", "dst": blocked, "ts": LATER + 1},
                    {"type": "block", "src": blocker, "dst": "zz-new", "ts": LATER + 1},
                ],
            ).status_code
            == 200
        )
        for x in (blocked, blocker):
            assert_absent(
                x, {"people": cold("zz-new"), "conv": cold("zz-new", "conversations")}, "newcomer"
            )
    finally:
        world.close()
