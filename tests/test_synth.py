"""The synthetic network: deterministic, valid, streaming, and shaped like its planted truth."""

from __future__ import annotations

import collections
import itertools
import math
import random
from collections.abc import Iterator

import numpy as np
import pytest

from tribes import _synth_text
from tribes.errors import InputError
from tribes.events import EDGE_TYPES, parse_ts, validate
from tribes.synth import ROLES, SynthConfig, generate, planted_truth

CONFIG = SynthConfig(n_users=2000, seed=7)
END = parse_ts(CONFIG.end)
START = END - CONFIG.days * 86_400


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return list(generate(CONFIG))


@pytest.fixture(scope="module")
def truth() -> dict[str, dict]:
    return {t["user_id"]: t for t in planted_truth(CONFIG)}


@pytest.fixture(scope="module")
def typed(events):
    return [validate(e) for e in events]


@pytest.fixture(scope="module")
def follows(typed) -> set[tuple[str, str]]:
    """Follow edges still on at the end."""
    on: set[tuple[str, str]] = set()
    for e in typed:
        if e.type == "follow":
            on.add((e.src, e.dst))
        elif e.type == "unfollow":
            on.discard((e.src, e.dst))
    return on


@pytest.fixture(scope="module")
def posts(typed) -> dict:
    return {e.id: e for e in typed if e.type == "post"}


def test_generate_streams_an_iterator():
    stream = generate(SynthConfig(n_users=50))
    assert isinstance(stream, Iterator) and not isinstance(stream, list)
    first = list(itertools.islice(stream, 3))
    assert [e["type"] for e in first] == ["user"] * 3


def test_same_seed_same_events_and_other_seed_differs():
    a = list(generate(SynthConfig(n_users=300, seed=3)))
    assert a == list(generate(SynthConfig(n_users=300, seed=3)))
    assert a != list(generate(SynthConfig(n_users=300, seed=4)))
    truth = list(planted_truth(SynthConfig(n_users=300, seed=3)))
    assert truth == list(planted_truth(SynthConfig(n_users=300, seed=3)))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_users", 0),
        ("seed", -1),
        ("overlap", 1.5),
        ("n_tribes", 101),
        ("end", "yesterday"),
        ("end", "1971-01-01"),
    ],
)
def test_bad_config_names_the_field(field, value):
    config = SynthConfig(**{"n_users": 100, field: value})
    with pytest.raises(InputError) as info:
        next(generate(config))
    assert info.value.field == field


def test_every_event_is_valid_and_users_come_first(events, typed):
    assert len(typed) == len(events) > 20 * CONFIG.n_users * 0.7
    kinds = [e.type for e in typed]
    n_users = kinds.count("user")
    assert n_users == CONFIG.n_users and set(kinds[:n_users]) == {"user"}
    assert {"user", "follow", "unfollow", "post", "block", "mute", "delete_post"} <= set(kinds)
    for e in typed[n_users:]:
        assert START <= e.ts <= END


def test_users_and_truth_agree(typed, truth):
    users = [e for e in typed if e.type == "user"]
    assert [u.id for u in users] == list(truth)
    for u in users:
        t = truth[u.id]
        assert u.discoverable == t["discoverable"] and u.ts == t["joined"]
    roles = collections.Counter(t["role"] for t in truth.values())
    assert set(roles) == set(ROLES)
    assert roles["broadcaster"] == 20 and roles["lurker"] == 400 and roles["newcomer"] == 100
    hidden = sum(not t["discoverable"] for t in truth.values()) / len(truth)
    assert 0.01 < hidden < 0.06
    overlap = sum(len(t["tribes"]) == 2 for t in truth.values()) / len(truth)
    assert 0.1 < overlap < 0.2
    sizes = collections.Counter(t["tribes"][0] for t in truth.values())
    assert len(sizes) == round(CONFIG.n_users / 60)
    assert min(sizes.values()) >= 15 and max(sizes.values()) <= 200


def test_every_reference_exists_and_no_self_edges(typed):
    users, seen_posts = set(), set()
    follows_on: set[tuple[str, str]] = set()
    for e in typed:
        if e.type == "user":
            users.add(e.id)
        elif e.type in EDGE_TYPES:
            assert e.src in users and e.dst in users and e.src != e.dst
            if e.type == "follow":
                assert (e.src, e.dst) not in follows_on, "follow emitted twice"
                follows_on.add((e.src, e.dst))
            elif e.type == "unfollow":
                follows_on.remove((e.src, e.dst))
        elif e.type == "post":
            assert e.author in users and e.id not in seen_posts
            seen_posts.add(e.id)
        elif e.type == "delete_post":
            assert e.id in seen_posts
        else:
            assert e.id in users


def test_replies_come_after_their_parents(typed, posts):
    replies = [p for p in posts.values() if p.reply_to]
    assert len(replies) > len(posts) / 2
    order = {e.id: i for i, e in enumerate(typed) if e.type == "post"}
    for reply in replies:
        parent = posts[reply.reply_to]
        assert order[parent.id] < order[reply.id] and parent.ts < reply.ts
    mentions = sum(r.text.startswith(f"@{posts[r.reply_to].author} ") for r in replies)
    assert 0.2 < mentions / len(replies) < 0.5


def test_thread_sizes_are_heavy_tailed(posts):
    def root(p):
        while p.reply_to:
            p = posts[p.reply_to]
        return p.id

    sizes = collections.Counter(root(p) for p in posts.values())
    counts = np.array([sizes[p.id] - 1 for p in posts.values() if not p.reply_to])
    assert np.median(counts) <= 2 and (counts <= 5).mean() > 0.7 and counts.max() >= 50


def test_deleted_posts_have_no_later_replies(typed, posts):
    deleted = {e.id: e.ts for e in typed if e.type == "delete_post"}
    assert deleted
    for p in posts.values():
        assert p.reply_to not in deleted
    for post_id, ts in deleted.items():
        assert ts > posts[post_id].ts


def test_follows_land_inside_tribes(follows, truth):
    inside = collections.Counter()
    total = collections.Counter()
    for src, dst in follows:
        role = truth[src]["role"]
        total[role] += 1
        inside[role] += bool(set(truth[src]["tribes"]) & set(truth[dst]["tribes"]))
    assert inside["conversationalist"] / total["conversationalist"] > 0.75
    assert inside["lurker"] / total["lurker"] > 0.6
    mutual = sum((d, s) in follows for s, d in follows) / len(follows)
    assert 0.4 < mutual < 0.8
    assert 8 < len(follows) / len(truth) < 11


def test_broadcasters_are_followed_widely_and_reply_rarely(follows, truth, posts):
    in_degree = collections.Counter(dst for _, dst in follows)
    by_role = collections.defaultdict(list)
    for user, t in truth.items():
        by_role[t["role"]].append(in_degree[user])
    median = np.median([in_degree[u] for u in truth])
    assert np.median(by_role["broadcaster"]) > 4 * median
    roots = collections.Counter()
    replies = collections.Counter()
    for p in posts.values():
        role = truth[p.author]["role"]
        (replies if p.reply_to else roots)[role] += 1
    assert replies["broadcaster"] / (roots["broadcaster"] + replies["broadcaster"]) < 0.15
    assert replies["conversationalist"] / roots["conversationalist"] > 1.5
    assert roots["broadcaster"] / 20 > 4 * roots["conversationalist"] / 1480


def test_tribe_vocabularies_are_separate(posts, truth):
    counts: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for p in posts.values():
        counts[truth[p.author]["tribes"][0]].update(p.tags)
    tops = {tribe: [t for t, _ in c.most_common(3)] for tribe, c in counts.items()}
    owners = collections.Counter(t for top in tops.values() for t in top)
    assert sum(n == 1 for n in owners.values()) / len(owners) > 0.9
    untagged = sum(not p.tags for p in posts.values()) / len(posts)
    assert 0.2 < untagged < 0.8  # many posts carry their tribe only in plain words


def test_vocabularies_are_distinct_made_up_words():
    vocab = _synth_text.make_vocabulary(np.random.default_rng(0), 3000, 1000)
    assert len(set(vocab.words)) == len(vocab.words) == vocab.offsets[-1]
    assert not set(vocab.words) & set(_synth_text.GENERIC)
    sizes = np.diff(vocab.offsets)
    assert sizes.min() >= 8 and sizes.max() <= 15
    assert all(w.isalpha() and w.islower() for w in vocab.words)


def test_newcomers_joined_recently_and_did_little(typed, truth):
    recent = END - CONFIG.newcomer_days * 86_400
    newcomers = {u for u, t in truth.items() if t["role"] == "newcomer"}
    assert all(recent <= truth[u]["joined"] < END for u in newcomers)
    acts = collections.Counter()
    for e in typed:
        actor = getattr(e, "src", None) or getattr(e, "author", None)
        if actor in newcomers:
            acts[actor] += 1
            assert e.ts >= truth[actor]["joined"]
    per_user = [acts[u] for u in newcomers]
    assert np.median(per_user) <= 8 and max(per_user) <= 40


@pytest.mark.parametrize("n_users", [1, 2, 3, 5, 8, 13])
def test_tiny_networks_are_valid(n_users):
    events = list(generate(SynthConfig(n_users=n_users, posts_per_user=5.0)))
    assert sum(e["type"] == "user" for e in events) == n_users
    for event in events:
        validate(event)
    assert len(list(planted_truth(SynthConfig(n_users=n_users)))) == n_users


def test_deleted_users_scale_with_size():
    small = collections.Counter(e["type"] for e in generate(SynthConfig(n_users=300)))
    assert "delete_user" not in small
    config = SynthConfig(n_users=12_000, posts_per_user=0.0, follows_per_user=2.0)
    gone = [e["id"] for e in generate(config) if e["type"] == "delete_user"]
    truth = [t["user_id"] for t in planted_truth(config) if t["deleted"]]
    assert gone == truth and len(gone) == 2


def test_planted_tribes_are_recoverable_from_replies_and_mutual_follows(follows, posts, truth):
    ig = pytest.importorskip("igraph")
    index = {u: i for i, u in enumerate(truth)}
    weight: collections.Counter = collections.Counter()
    for p in posts.values():
        other = posts[p.reply_to].author if p.reply_to else p.author
        if other != p.author:
            weight[tuple(sorted((index[p.author], index[other])))] += 1
    for src, dst in follows:
        if src < dst and (dst, src) in follows:
            weight[(index[src], index[dst])] += 2
    graph = ig.Graph(n=len(index), edges=list(weight))
    ig.set_random_number_generator(random.Random(0))
    try:
        found = graph.community_leiden("modularity", weights=list(weight.values()), n_iterations=-1)
    finally:
        ig.set_random_number_generator(random)
    planted = [t["tribes"][0] for t in truth.values()]
    assert _nmi(found.membership, planted) > 0.9


def _nmi(a: list, b: list) -> float:
    """Normalised mutual information, arithmetic mean of the entropies."""
    n = len(a)
    ca, cb, cab = (
        collections.Counter(a),
        collections.Counter(b),
        collections.Counter(zip(a, b, strict=True)),
    )
    mi = sum(c / n * math.log(c * n / (ca[x] * cb[y])) for (x, y), c in cab.items())
    ha = -sum(c / n * math.log(c / n) for c in ca.values())
    hb = -sum(c / n * math.log(c / n) for c in cb.values())
    return 2 * mi / (ha + hb)


def test_scales_to_twenty_thousand_users():
    counts = collections.Counter(e["type"] for e in generate(SynthConfig(n_users=20_000)))
    assert counts["user"] == 20_000
    assert 15 * 20_000 < sum(counts.values()) < 30 * 20_000
    assert 8 * 20_000 < counts["follow"] < 11 * 20_000
    assert counts["delete_user"] == 4 and counts["block"] > 0 and counts["mute"] > 0
