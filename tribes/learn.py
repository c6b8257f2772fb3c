"""Learn the engagement weights and the popularity damping from the data itself, per recompute.

Fixed weights cannot suit every network: on a pure friendship graph mutual contacts predict
new ties best, on a Q&A site shared topics do, in messaging the people one's contacts talk
with. So before ranking, the pipeline is run on the *earlier* part of the snapshot (before
the ``learn_holdout`` quantile of interaction times; without timestamps, a random share of
ties is held out, both follows of a pair together), every candidate pair gets its features,
and a conditional logit with non-negative weights (a softmax over each user's candidates)
learns which features ordered each user's list so that the pairs that interacted afterwards
(a reply either way, or a follow) came first; it is fitted without and with the
``OPTIONAL_FEATURES`` and, with timestamps, once more on only the later ties with people the
user had not exchanged a reply with (where talking again with one's partners is most of what
follows, a blend fitted on all ties ranks them first and new partners last). Each contender
after the first stays only when it ranks the held-out pairs better by more than two standard
errors (more features or a narrower target, more ways to fit noise). Every such bar in this
module is the same one (:meth:`HeldOut.beats`): both rankings are scored on the same held-out
pairs, so it is two standard errors of the *paired* difference of their recalls, with users as
the independent units — not of one recall, which would be 2–5× wider and hide real gains —
widened when the best of several alternatives is taken (2.28 standard errors for two, 2.43 for
three), so that trying more values does not let more noise through. The held-out pairs that
judge them are, with timestamps, the *new* two-way partners — a reply each way after the cut
and none either way before, as the evaluation counts them. The learned weights replace ``w_*`` for the
final ranking, scaled to whichever of ``ENGAGE_TOTALS`` ranks the held-out pairs best (how
soon strong evidence saturates differs by network). The contender that won is then refitted, at
its scale, with mutual contacts counted the other way (``mutual_contacts_index``: Adamic-Adar or resource
allocation, only that source recomputed), and that way is kept only when that blend ranks
the held-out pairs better by more than two standard errors (ego-Twitter and ego-Facebook:
resource allocation; CollegeMsg, SE, LFR: Adamic-Adar). ``answer_exponent`` (how much p(answer)
weighs) changes from the configured one to another of ``ANSWER_EXPONENTS`` only when that ranks
the held-out pairs better by more than two standard errors: a followed-back rate can tell a
little about who ties up and still, as a factor of several between candidates, scramble the
stronger mutual-contact order (ego-Twitter). Then
``popularity_floor`` is chosen the same way among ``POPULARITY_FLOORS``, but only among floors whose lists keep the top 1% of
accounts within ``top_exposure_cap`` of list slots: popularity is damped as much as the
network needs to stay unconcentrated, not more. (``rank_people`` itself enforces that cap by
moving the top accounts' weakest appearances down, so every floor keeps within it unless users
have nothing but top accounts left; the damping decides *how* the lists get there.)
With timestamps, ``thread_momentum`` (how much a thread's posts in the live window weigh in
conversation suggestions) changes to another of ``THREAD_MOMENTA`` by the same two-standard-error
rule, judged by the held-out thread joins (a user's first post after the cut in a thread that
existed before it); then, given that momentum, ``w_thread_open`` (whether the most welcoming
live threads are offered to everyone, beyond their tribes, topics and contacts) among
``THREAD_OPEN_WEIGHTS``. Above ``learn_graph_users`` users all of this runs on a connected sample of
about that many (:func:`learning_network`: seeded users with all their contacts), so learning
costs about the same on a network of a million as on one of a hundred thousand. Nothing here
looks at evaluation data: the held-out slice is inside the training snapshot. Where the best
blend's lists hold fewer than ``MIN_POSITIVES`` of the held-out pairs, every choice would be
judged on a handful of hits, and all the parameters stay as configured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.stats import norm

from .candidates import follow_2hop
from .conversations import rank_conversations, thread_stats
from .evaluation.metrics import exposure, top_share
from .params import MUTUAL_CONTACTS_INDEXES, Params
from .ranking import ENGAGE_WEIGHTS, candidate_pairs, pair_features, rank_people, top_accounts
from .snapshot import Snapshot
from .sparse import aligned_values, binary, drop_diagonal, entry_rows

__all__ = [
    "format_learning",
    "learn_engage_weights",
    "learning_network",
    "learning_sample",
    "learning_summary",
    "snapshot_before",
]

#: Held-out pairs learning needs among the candidates to fit anything, and in the best blend's
#: lists (top ``RECALL_AT``) to change any parameter: a choice judged on fewer hits is chance
#: (13 hits on a sparse LFR graph picked ALS alone: 0.031, where the configuration gives 0.047).
MIN_POSITIVES = 30
MAX_PAIRS = 400_000
#: Candidate sums of the learned weights: the scale sets how soon ``p(engage) = 1 - e^{-z}``
#: saturates (small: strong evidence keeps ranking; large: answer rate and activity decide
#: among the strong). Chosen per recompute by the recall of the held-out pairs.
ENGAGE_TOTALS = (1.0, 2.0, 4.0, 7.0, 12.0)
#: Candidate ``popularity_floor`` values (damping of the most followed), 1.0 meaning none.
POPULARITY_FLOORS = (0.1, 0.25, 0.5, 1.0)
#: Alternatives to the configured ``answer_exponent`` (how much p(answer) weighs): learning
#: switches to one only when its held-out recall is higher by more than two standard errors
#: (of the paired difference, :meth:`HeldOut.beats`).
ANSWER_EXPONENTS = (0.0, 0.5, 1.0)
#: Alternatives to the configured ``tribe_diversity`` (score multiplier per earlier item from
#: the same tribe in a list), chosen the same way: where the held-out ties clearly lie inside
#: one's own tribe (planted communities), or clearly beyond it, the lists follow them.
TRIBE_DIVERSITIES = (0.9, 0.95, 0.98, 1.0)
#: Alternatives to the configured ``thread_momentum`` (how much a thread's recent activity
#: weighs in conversation suggestions), chosen the same way by held-out thread joins.
THREAD_MOMENTA = (0.0, 0.5, 1.0)
#: Alternatives to the configured ``w_thread_open`` (the match everyone has with the most
#: welcoming live threads, which also makes them candidates for all), chosen after the
#: momentum the same way: small, so that a user's own tribes, topics and contacts still lead.
THREAD_OPEN_WEIGHTS = (0.0, 0.05, 0.1, 0.2)
RECALL_AT = 20
#: Features the blend uses only when a fit with them ranks the held-out pairs better than the
#: fit without them (``mutual_share``: the Adamic-Adar sum relative to the user's best candidate).
OPTIONAL_FEATURES = ("mutual_share",)


@dataclass(frozen=True, eq=False)
class HeldOut:
    """One ranking's score on learning's held-out pairs, per (queried) user: shapes ``(Q,)``."""

    hits: np.ndarray  # float64 held-out pairs in the user's top RECALL_AT
    pairs: np.ndarray  # float64 held-out pairs of the user

    @property
    def recall(self) -> float:
        """Share of all the users' held-out pairs that their lists hold (pooled over pairs)."""
        return float(self.hits.sum() / max(self.pairs.sum(), 1.0))

    def lead_in_errors(self, other: HeldOut) -> float:
        """How many standard errors this recall is above ``other``'s (the same users and pairs,
        another ranking), paired: the users are the independent units, so the error is that of
        a ratio of sums over users, ``sqrt(Q/(Q-1) Σ_u (d_u - D n_u)²) / N`` with ``d_u`` the
        user's hits gained, ``n_u`` their pairs, ``N = Σ n_u`` and ``D`` the recall gained.
        0 for the same hits (or fewer than two users with pairs), ±inf for a lead with no
        spread. O(Q)."""
        total = self.pairs.sum()
        gained = self.hits - other.hits
        lead = gained.sum() / max(total, 1.0)
        users = int(np.count_nonzero(self.pairs))
        if lead == 0 or users < 2:
            return 0.0
        error = np.sqrt(np.sum((gained - lead * self.pairs) ** 2) * users / (users - 1)) / total
        return float(lead / error) if error > 0 else float(np.sign(lead) * np.inf)

    def beats(self, other: HeldOut, among: int = 1) -> bool:
        """Whether this recall is higher than ``other``'s by more than two standard errors of the
        paired difference (:meth:`lead_in_errors`). When this is the best of ``among``
        alternatives tried, the two grows so that chance alone passes it no more often than it
        passes two for one (Bonferroni: 2.28 for two, 2.43 for three)."""
        return self.lead_in_errors(other) > _standard_errors_to_beat(among)


def _standard_errors_to_beat(among: int) -> float:
    """The z a lead must pass as the best of ``among`` tries: 2 for one, and for more the z
    whose one-sided tail is two's divided among them."""
    return 2.0 if among <= 1 else float(norm.isf(norm.sf(2.0) / among))


def snapshot_before(snap: Snapshot, cut: float) -> Snapshot:
    """The snapshot as it was at ``cut``: follows and posts after it removed (users kept)."""
    return replace(
        _restrict(
            snap, np.ones(snap.n_users, dtype=bool), snap.follow_ts <= cut, snap.post_ts <= cut
        ),
        now=float(cut),
    )


def _restrict(
    snap: Snapshot, users: np.ndarray, follows: np.ndarray, posts: np.ndarray
) -> Snapshot:
    """The snapshot with only the ``users``, ``follows`` and ``posts`` masks' entries (follows,
    blocks, mutes and posts of dropped users go too), every index renumbered; a reply whose
    parent is gone becomes a root, threads left empty disappear. O(U + F + P)."""
    user_map = np.full(snap.n_users, -1, dtype=np.int64)
    kept_users = np.flatnonzero(users)
    user_map[kept_users] = np.arange(len(kept_users))

    def pairs(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = users[src] & users[dst]
        return user_map[src[ok]].astype(np.int32), user_map[dst[ok]].astype(np.int32)

    follows = follows & users[snap.follow_src] & users[snap.follow_dst]
    keep_p = (
        np.flatnonzero(posts & users[snap.post_author]) if snap.n_posts else np.zeros(0, np.int64)
    )
    post_map = np.full(snap.n_posts, -1, dtype=np.int64)
    post_map[keep_p] = np.arange(len(keep_p))
    parent = snap.post_parent[keep_p]
    parent = np.where(parent >= 0, post_map[np.maximum(parent, 0)], -1).astype(np.int32)
    threads_used = np.unique(snap.post_thread[keep_p])
    thread_map = np.full(snap.n_threads, -1, dtype=np.int64)
    thread_map[threads_used] = np.arange(len(threads_used))
    block_src, block_dst = pairs(snap.block_src, snap.block_dst)
    mute_src, mute_dst = pairs(snap.mute_src, snap.mute_dst)
    return replace(
        snap,
        user_ids=snap.user_ids[kept_users],
        discoverable=snap.discoverable[kept_users],
        first_seen=snap.first_seen[kept_users],
        interests=[snap.interests[i] for i in kept_users],
        follow_src=user_map[snap.follow_src[follows]].astype(np.int32),
        follow_dst=user_map[snap.follow_dst[follows]].astype(np.int32),
        follow_ts=snap.follow_ts[follows],
        block_src=block_src,
        block_dst=block_dst,
        mute_src=mute_src,
        mute_dst=mute_dst,
        post_ids=snap.post_ids[keep_p],
        post_author=user_map[snap.post_author[keep_p]].astype(np.int32),
        post_ts=snap.post_ts[keep_p],
        post_parent=parent,
        post_thread=thread_map[snap.post_thread[keep_p]].astype(np.int32),
        post_text=[snap.post_text[i] for i in keep_p],
        post_tags=[snap.post_tags[i] for i in keep_p],
        thread_ids=snap.thread_ids[threads_used],
        dismissed=[
            (int(user_map[u]), kind, target) for u, kind, target in snap.dismissed if users[u]
        ],
    )


def learning_network(snap: Snapshot, params: Params) -> tuple[Snapshot, np.ndarray | None]:
    """``(snapshot, seeds)``: the whole snapshot and None up to ``learn_graph_users`` users;
    above, a connected sample of about that many users and a (U',) bool mask of its seeds.

    Seeds are drawn in a seeded random order and each brings all its contacts (follows and
    replies, either way), until the sample reaches the size: every seed's neighbourhood is
    complete, so learning asks only the seeds' lists. O(F + P + U log U).
    """
    n, target = snap.n_users, params.learn_graph_users
    if target <= 0 or n <= target:
        return snap, None
    replied = np.flatnonzero(snap.post_parent >= 0)
    src = np.concatenate([snap.follow_src, snap.post_author[replied]]).astype(np.int64)
    dst = np.concatenate([snap.follow_dst, snap.post_author[snap.post_parent[replied]]]).astype(
        np.int64
    )
    contacts = sp.csr_matrix(
        (np.ones(2 * len(src), np.float32), (np.r_[src, dst], np.r_[dst, src])), shape=(n, n)
    )
    order = np.random.default_rng(params.seed).permutation(n)

    def sample(m: int) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[order[:m]] = True
        mask[contacts[order[:m]].indices] = True
        return mask

    lo, hi = 1, n  # the fewest seeds whose sample reaches the target (sizes grow with seeds)
    while lo < hi:
        mid = (lo + hi) // 2
        if sample(mid).sum() >= target:
            hi = mid
        else:
            lo = mid + 1
    users = sample(lo)
    seeds = np.zeros(n, dtype=bool)
    seeds[order[:lo]] = True
    sub = _restrict(
        snap, users, np.ones(len(snap.follow_src), dtype=bool), np.ones(snap.n_posts, dtype=bool)
    )
    return sub, seeds[users]


def _future_pairs(snap: Snapshot, cut: float) -> sp.csr_matrix:
    """(U, U) 1 where u and v interacted after ``cut``: a reply either way or u followed v."""
    n = snap.n_users
    late = np.flatnonzero((snap.post_ts > cut) & (snap.post_parent >= 0))
    a = snap.post_author[late]
    b = snap.post_author[snap.post_parent[late]]
    fl = snap.follow_ts > cut
    rows = np.concatenate([a, b, snap.follow_src[fl]]).astype(np.int64)
    cols = np.concatenate([b, a, snap.follow_dst[fl]]).astype(np.int64)
    keep = rows != cols
    m = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], cols[keep])), shape=(n, n)
    )
    m.sum_duplicates()
    m.data[:] = 1
    return m


def learning_sample(
    n_users: int, params: Params, among: np.ndarray | None = None
) -> np.ndarray | None:
    """(U,) bool mask of at most ``learn_max_users`` users (seeded), or None for all; drawn
    from the ``among`` mask when given (e.g. the seeds of :func:`learning_network`)."""
    pool = np.arange(n_users) if among is None else np.flatnonzero(among)
    if among is None and (params.learn_max_users <= 0 or n_users <= params.learn_max_users):
        return None
    mask = np.zeros(n_users, dtype=bool)
    if params.learn_max_users <= 0 or len(pool) <= params.learn_max_users:
        mask[pool] = True
    else:
        mask[
            np.random.default_rng(params.seed).choice(pool, params.learn_max_users, replace=False)
        ] = True
    return mask


def _replies(snap: Snapshot, posts: np.ndarray) -> sp.csr_matrix:
    """(U, U) binary: [u, v] = 1 when u replied to v in one of the ``posts`` (a mask over posts)."""
    n = snap.n_users
    which = np.flatnonzero(posts & (snap.post_parent >= 0))
    a = snap.post_author[which]
    b = snap.post_author[snap.post_parent[which]]
    return drop_diagonal(
        binary(sp.csr_matrix((np.ones(len(which), np.float32), (a, b)), shape=(n, n)))
    ).tocsr()


def _talked_before(snap: Snapshot, cut: float) -> sp.csr_matrix:
    """(U, U) binary, symmetric: u and v exchanged a reply (either way) up to ``cut``."""
    m = _replies(snap, snap.post_ts <= cut)
    return binary((m + m.T).tocsr())


def _new_two_way_pairs(
    snap: Snapshot, cut: float, talked: sp.csr_matrix | None = None
) -> sp.csr_matrix:
    """(U, U) 1 where u and v replied to each other after ``cut`` and neither had replied to the
    other before: new conversation partners, as the evaluation's time split counts them
    (:func:`tribes.evaluation.splits.time_split`). ``talked``: :func:`_talked_before` at
    ``cut``, when the caller has it."""
    after = _replies(snap, snap.post_ts > cut)
    after = after.multiply(after.T).tocsr()
    talked = _talked_before(snap, cut) if talked is None else talked
    return binary((after - after.multiply(talked)).tocsr())


def _held_out_ties(src: np.ndarray, dst: np.ndarray, n: int, share: float, seed: int) -> np.ndarray:
    """(F,) bool: a seeded ``share`` of the ties, each held out with its reverse follow.

    Without timestamps the order of a mutual pair's two follows is unknown: keeping one while
    holding out the other would leak the new tie into the features (``inbound``).
    """
    lo, hi = np.minimum(src, dst).astype(np.int64), np.maximum(src, dst).astype(np.int64)
    tie = lo * n + hi
    unique, which = np.unique(tie, return_inverse=True)
    return (np.random.default_rng(seed).random(len(unique)) < share)[which]


def _fit_listwise(
    x: np.ndarray, y: np.ndarray, rows: np.ndarray, seed: int = 0, l2: float = 1e-3
) -> np.ndarray:
    """Non-negative weights of a conditional logit: a softmax over each user's candidates.

    ``x`` (pairs, F) features, ``y`` (pairs,) 1 for a held-out tie, ``rows`` (pairs,) the user
    of each pair, sorted. Only users with a positive take part, each weighing the same; above
    ``MAX_PAIRS`` pairs a seeded sample of whole users is kept. This learns what orders one
    user's list — what ranking does — not what separates pairs across users.
    O(iterations × pairs × F).
    """
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    sizes = np.diff(np.r_[starts, len(rows)])
    group = np.repeat(np.arange(len(starts)), sizes)
    keep_group = np.add.reduceat(y, starts) > 0
    if sizes[keep_group].sum() > MAX_PAIRS:
        share = MAX_PAIRS / sizes[keep_group].sum()
        keep_group &= np.random.default_rng(seed).random(len(starts)) < share
    keep = keep_group[group]
    x, y = x[keep], y[keep]
    sizes = sizes[keep_group]
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    group = np.repeat(np.arange(len(sizes)), sizes)
    n_pos = np.add.reduceat(y, starts)
    user_w = 1.0 / (n_pos * len(n_pos))

    def loss(w):
        z = x @ w
        peak = np.maximum.reduceat(z, starts)
        e = np.exp(z - peak[group])
        total = np.add.reduceat(e, starts)
        log_total = np.log(total) + peak
        value = np.sum(user_w * (n_pos * log_total - np.add.reduceat(y * z, starts))) + l2 * w @ w
        coef = user_w[group] * (n_pos[group] * e / total[group] - y)
        return value, x.T @ coef + 2 * l2 * w

    result = minimize(
        loss,
        np.full(x.shape[1], 0.1),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * x.shape[1],
    )
    return result.x


def learn_engage_weights(
    snap: Snapshot,
    params: Params,
    candidates_for: Callable[[Snapshot, Params], tuple],
    report: list[dict[str, Any]] | None = None,
) -> dict[str, float | str] | None:
    """Learned ``w_*`` values (and the parameters learning switched), or None when the held-out
    slice has too few interactions. ``report``, when given, receives one :func:`_choice` per
    decision, in order: what was tried, each one's held-out recall and lead in paired standard
    errors, what it needed and what was kept (``TribeModel.learning_report_``).

    ``candidates_for(snapshot, params, query)`` runs the pipeline up to the candidates and
    returns ``(ctx, candidates)`` — the caller's own stages, so learning sees exactly what ranking
    sees. ``query`` (a (U,) bool mask or None) limits candidate generation to a seeded sample
    of ``params.learn_max_users`` users: graph, affinity and tribes use the whole (sampled, above
    ``learn_graph_users``) network, so the features are the network's, while the per-user work
    stays bounded.
    """
    snap, seeds = learning_network(snap, params)
    times = np.concatenate([snap.post_ts, snap.follow_ts])
    if len(times) < 100:
        return None
    goal = (
        None  # the pairs whose recall picks the scale: new two-way partners where there are enough
    )
    talked = None  # pairs that had exchanged a reply before the cut (with time only)
    joins = None  # with time: held-out thread joins, which pick thread_momentum
    if np.ptp(times) > 0:
        cut = float(np.quantile(times, 1.0 - params.learn_holdout))
        future = _future_pairs(snap, cut)
        talked = _talked_before(snap, cut)
        past = snapshot_before(snap, cut)
        goal = _new_two_way_pairs(snap, cut, talked)
        goal = goal if goal.nnz >= 2 * MIN_POSITIVES else None
        joins = _thread_joins(snap, cut)
    else:  # no time to split on (e.g. SNAP ego networks): hold out a random share of follows
        held = _held_out_ties(
            snap.follow_src, snap.follow_dst, snap.n_users, params.learn_holdout, params.seed
        )
        future = sp.csr_matrix(
            (np.ones(int(held.sum()), np.float32), (snap.follow_src[held], snap.follow_dst[held])),
            shape=(snap.n_users,) * 2,
        )
        past = replace(
            snap,
            follow_src=snap.follow_src[~held],
            follow_dst=snap.follow_dst[~held],
            follow_ts=snap.follow_ts[~held],
        )
    if future.nnz < MIN_POSITIVES:
        return None
    ctx, candidates = candidates_for(past, params, learning_sample(past.n_users, params, seeds))
    truth = future if goal is None else goal
    found = _best_blend(ctx, candidates, future, talked, truth, report=report)
    if found is None:
        return None
    held, weights, feats, contender, total = found
    hits = int(held.hits.sum())
    if hits < MIN_POSITIVES:  # every choice below would be judged on a handful of hits: chance
        if report is not None:
            report.append(
                {
                    "parameter": "evidence",
                    "configured": "configured",
                    "chosen": "configured",
                    "skipped": f"the best blend's lists hold {hits} of the held-out pairs and a choice needs "
                    f"{MIN_POSITIVES}: every parameter stays as configured",
                    "hits": hits,
                    "needed_hits": MIN_POSITIVES,
                    "pairs": int(held.pairs.sum()),
                    "users": int(np.count_nonzero(held.pairs)),
                }
            )
        return None
    chosen = dict(weights)
    # The other way of counting shared contacts: the contender that won refitted, at its scale,
    # kept past two standard errors (only the mutual-contact source is recomputed: nothing else
    # uses it).
    other = next(i for i in MUTUAL_CONTACTS_INDEXES if i != params.mutual_contacts_index)
    other_ctx = replace(ctx, params=replace(params, mutual_contacts_index=other))
    other_candidates = {**candidates, "follow_2hop": follow_2hop(other_ctx)}
    found = _best_blend(
        other_ctx, other_candidates, future, talked, truth, only=contender, totals=(total,)
    )
    configured = params.mutual_contacts_index
    switch = found is not None and found[0].beats(held)
    _record(
        report,
        "mutual_contacts_index",
        configured,
        other if switch else configured,
        {configured: held} | ({} if found is None else {other: found[0]}),
    )
    if switch:
        held, weights, feats, _, _ = found
        ctx, candidates = other_ctx, other_candidates
        chosen = {**weights, "mutual_contacts_index": other}
    chosen |= _choose_answer_exponent(ctx, candidates, feats, weights, truth, report)
    chosen |= _choose_tribe_diversity(ctx, candidates, feats, chosen, truth, report)
    chosen |= _choose_damping(ctx, candidates, feats, chosen, truth, report)
    return chosen | _choose_thread_scoring(ctx, joins, report)


#: How the report names ``_best_blend``'s contenders, in the order they are tried.
CONTENDERS = ("base blend", "with " + " and ".join(OPTIONAL_FEATURES), "new ties only")


def _choice(
    parameter: str,
    configured: Any,
    chosen: Any,
    tried: dict[Any, HeldOut],
    among: int = 1,
    against: dict[Any, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One decision of learning, JSON-ready: the held-out ``recall`` of each value tried, each
    alternative's lead in paired standard errors (``errors``, over ``configured`` unless
    ``against`` names another per value; None for a lead with no spread), the ``needed`` lead
    (:func:`_standard_errors_to_beat` of ``among``), and the held-out ``pairs`` and ``users``."""
    base = tried[configured]
    against = against or {}

    def lead(value: Any) -> float | None:
        z = tried[value].lead_in_errors(tried[against.get(value, configured)])
        return round(z, 2) if np.isfinite(z) else None

    return {
        "parameter": parameter,
        "configured": configured,
        "chosen": chosen,
        "recall": {str(v): round(h.recall, 4) for v, h in tried.items()},
        "errors": {str(v): lead(v) for v in tried if v != configured},
        **({"against": {str(v): str(a) for v, a in against.items()}} if against else {}),
        "needed": round(_standard_errors_to_beat(among), 2),
        "pairs": int(base.pairs.sum()),
        "users": int(np.count_nonzero(base.pairs)),
        **extra,
    }


def _record(report: list[dict[str, Any]] | None, *args: Any, **kwargs: Any) -> None:
    """Append :func:`_choice` (args and kwargs as there) to ``report`` when there is one."""
    if report is not None:
        report.append(_choice(*args, **kwargs))


def _best_blend(
    ctx,
    candidates: dict[str, sp.csr_matrix],
    future: sp.csr_matrix,
    talked: sp.csr_matrix | None,
    truth: sp.csr_matrix,
    only: int | None = None,
    totals: tuple[float, ...] = ENGAGE_TOTALS,
    report: list[dict[str, Any]] | None = None,
) -> tuple[HeldOut, dict[str, float], dict[str, np.ndarray], int, float] | None:
    """``(held-out score, weights, features, contender, total)``: the engagement blend whose lists rank
    ``truth`` best on these candidates, which contender it is and its scale; None when too few
    held-out pairs are among them.

    Contenders, the base blend first, each fitted on the held-out ``future`` pairs: without the
    ``OPTIONAL_FEATURES``, with them and, with ``talked``, the base blend on only the later
    ties with people not talked with before; each later one must beat the best so far by more
    than two standard errors (more features or a narrower target, more ways to fit noise). Each
    is scaled to the one of ``totals`` that ranks best. ``only``: fit just that contender.
    ``report``: the decision among the contenders (:func:`_choice`; named as in ``CONTENDERS``).
    """
    union = candidate_pairs(ctx.snap.n_users, candidates)
    if union.nnz == 0:
        return None
    feats = pair_features(ctx, candidates, union)
    y = (aligned_values(union, future) > 0).astype(np.float64)
    if y.sum() < MIN_POSITIVES:
        return None
    x = np.column_stack([feats[name] for name in ENGAGE_WEIGHTS]).astype(np.float64)
    rows = entry_rows(union)
    base = np.array([name not in OPTIONAL_FEATURES for name in ENGAGE_WEIGHTS])
    targets = [(base, y), (np.ones(len(base), dtype=bool), y)]
    # the base blend fitted on the later ties with people not talked with before
    if talked is not None:
        fresh = y * (aligned_values(union, talked) == 0)
        if fresh.sum() < y.sum():  # (else it is the base blend again)
            targets.append((base, fresh))
    fits = []
    for i, (used, target) in enumerate(targets):
        if target.sum() < MIN_POSITIVES or only not in (None, i):
            continue
        w = np.zeros(len(base))
        w[used] = _fit_listwise(x[:, used], target, rows, ctx.params.seed)
        if np.isfinite(w).all() and w.sum() > 0:
            fits.append((i, w))
    best = None  # (held-out score, weights, contender, total)
    tried, against = (
        {},
        {},
    )  # for the report: each contender's held-out score, and what it had to beat
    for i, w in fits:
        scaled = None
        for total in totals:  # how saturating p(engage) is: chosen by held-out recall
            weights = {
                weight: round(float(v), 4)
                for (_, weight), v in zip(
                    ENGAGE_WEIGHTS.items(), w * (total / w.sum()), strict=True
                )
            }
            ranked = rank_people(
                replace(ctx, params=replace(ctx.params, **weights)), candidates, feats
            )
            held = _list_hits(ranked.items, truth, ctx.query)
            if scaled is None or held.recall > scaled[0].recall + 1e-9:
                scaled = (held, weights, i, total)
        tried[CONTENDERS[i]] = scaled[0]
        if best is not None:
            against[CONTENDERS[i]] = CONTENDERS[best[2]]
        # later ones must beat it clearly
        if best is None or scaled[0].beats(best[0], among=len(fits) - 1):
            best = scaled
    if best is None:
        return None
    _record(
        report,
        "blend",
        CONTENDERS[fits[0][0]],
        CONTENDERS[best[2]],
        tried,
        among=max(len(fits) - 1, 1),
        against=against,
        engage_total=best[3],
    )
    return best[0], best[1], feats, best[2], best[3]


def _thread_joins(snap: Snapshot, cut: float) -> sp.csr_matrix:
    """``(U, T_before)`` 1 where a user posts after ``cut`` in a thread that had posts by then
    and that they had not posted in: thread joins, as the evaluation counts them, with threads
    numbered as in ``snapshot_before(snap, cut)``. O(P)."""
    before = snap.post_ts <= cut
    kept = np.unique(snap.post_thread[before])  # snapshot_before keeps these, in this order
    position = np.full(snap.n_threads, -1, dtype=np.int64)
    position[kept] = np.arange(len(kept))
    thread = position[snap.post_thread]
    shape = (snap.n_users, len(kept))
    after = ~before & (thread >= 0)
    joined = binary(
        sp.csr_matrix(
            (np.ones(int(after.sum()), np.float32), (snap.post_author[after], thread[after])),
            shape=shape,
        )
    )
    posted = binary(
        sp.csr_matrix(
            (np.ones(int(before.sum()), np.float32), (snap.post_author[before], thread[before])),
            shape=shape,
        )
    )
    out = (joined - joined.multiply(posted)).tocsr()
    out.eliminate_zeros()
    return out


def _choose_thread_scoring(
    ctx, joins: sp.csr_matrix | None, report: list[dict[str, Any]] | None = None
) -> dict[str, float]:
    """``thread_momentum`` among ``THREAD_MOMENTA``, then ``w_thread_open`` among
    ``THREAD_OPEN_WEIGHTS`` given it: each the alternative whose conversation lists hold the
    most held-out thread joins, when that beats the configured value by more than two standard
    errors (:func:`_past_the_bar`); ``{}`` (keep both) with fewer than ``MIN_POSITIVES`` joins.
    Where people mostly join the threads that are busiest now (in tribes' own synthetic
    networks, long reply threads open to anyone), activity and openness predict joins; on a
    Q&A site the quiet question in one's own topics does, and there the configured values stay."""
    users = np.ones(ctx.snap.n_users, dtype=bool) if ctx.query is None else ctx.query
    found = 0 if joins is None else int(binary(joins)[users].sum())
    if found < MIN_POSITIVES:
        if report is not None:
            report.append(
                {
                    "parameter": "thread_momentum",
                    "configured": ctx.params.thread_momentum,
                    "chosen": ctx.params.thread_momentum,
                    "pairs": found,
                    "skipped": "no timestamps"
                    if joins is None
                    else f"{found} held-out thread joins, fewer than {MIN_POSITIVES}",
                }
            )
        return {}
    stats = thread_stats(ctx)  # these parameters only weigh the statistics, they do not change them
    chosen: dict[str, float] = {}
    measured: dict[tuple[float, float], HeldOut] = {}  # (momentum, open weight) -> held-out joins

    def measure(params: Params) -> HeldOut:
        key = (params.thread_momentum, params.w_thread_open)
        if key not in measured:
            measured[key] = _list_hits(
                rank_conversations(replace(ctx, params=params), stats).items, joins, ctx.query
            )
        return measured[key]

    for name, alternatives in (
        ("thread_momentum", THREAD_MOMENTA),
        ("w_thread_open", THREAD_OPEN_WEIGHTS),
    ):
        params = replace(ctx.params, **chosen)

        def score(value: float, name=name, params=params) -> HeldOut:
            return measure(replace(params, **{name: value}))

        value = _past_the_bar(score, getattr(params, name), alternatives, name, report)
        if value is not None:
            chosen[name] = value
    return chosen


def _past_the_bar(
    score: Callable[[float], HeldOut],
    configured: float,
    alternatives: tuple[float, ...],
    name: str = "",
    report: list[dict[str, Any]] | None = None,
) -> float | None:
    """Of the alternatives to ``configured`` whose held-out ``score`` beats the configured
    value's by more than two standard errors of the paired difference (:meth:`HeldOut.beats`,
    widened for the number of alternatives tried), the one with the highest recall; None when
    none does. ``report``: the decision, as parameter ``name`` (:func:`_choice`)."""
    incumbent = score(configured)
    others = [value for value in alternatives if value != configured]
    chosen, best, tried = None, None, {configured: incumbent}
    for value in others:
        held = tried[value] = score(value)
        if held.beats(incumbent, among=len(others)) and (best is None or held.recall > best.recall):
            chosen, best = value, held
    _record(
        report, name, configured, configured if chosen is None else chosen, tried, among=len(others)
    )
    return chosen


def _choose_answer_exponent(
    ctx,
    candidates: dict[str, sp.csr_matrix],
    feats: dict[str, np.ndarray],
    weights: dict[str, float],
    truth: sp.csr_matrix,
    report: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """``{"answer_exponent": e}`` for the one of ``ANSWER_EXPONENTS`` whose lists rank the held-out
    pairs best, when that beats the configured exponent by more than two standard errors
    (:func:`_past_the_bar`); ``{}`` (keep the configured one) otherwise. Where answering back is not what
    the held-out ties follow (on a follow graph the followed-back rate mostly marks the less
    followed), p(answer) would otherwise outweigh the mutual contacts."""
    return _choose_ranking_param(
        ctx, candidates, feats, weights, truth, "answer_exponent", ANSWER_EXPONENTS, report
    )


def _choose_tribe_diversity(
    ctx,
    candidates: dict[str, sp.csr_matrix],
    feats: dict[str, np.ndarray],
    chosen: dict[str, Any],
    truth: sp.csr_matrix,
    report: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """``{"tribe_diversity": d}`` for the one of ``TRIBE_DIVERSITIES`` whose lists rank the
    held-out pairs best, when that beats the configured value by more than two standard errors
    (:func:`_past_the_bar`); ``{}`` otherwise. ``chosen``: what learning has chosen so far (applied)."""
    return _choose_ranking_param(
        ctx, candidates, feats, chosen, truth, "tribe_diversity", TRIBE_DIVERSITIES, report
    )


def _choose_ranking_param(
    ctx,
    candidates: dict[str, sp.csr_matrix],
    feats: dict[str, np.ndarray],
    applied: dict[str, Any],
    truth: sp.csr_matrix,
    name: str,
    alternatives: tuple[float, ...],
    report: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """``{name: value}`` for the one of ``alternatives`` whose people lists (ranked with
    ``applied`` on the configuration) rank ``truth`` best, when that beats the configured value
    by more than two standard errors (:func:`_past_the_bar`); ``{}`` otherwise."""
    params = replace(ctx.params, **applied)

    def score(value: float) -> HeldOut:
        ranked = rank_people(
            replace(ctx, params=replace(params, **{name: value})), candidates, feats
        )
        return _list_hits(ranked.items, truth, ctx.query)

    value = _past_the_bar(score, getattr(params, name), alternatives, name, report)
    return {} if value is None else {name: value}


def _choose_damping(
    ctx,
    candidates: dict[str, sp.csr_matrix],
    feats: dict[str, np.ndarray],
    weights: dict[str, float],
    truth: sp.csr_matrix,
    report: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """``{"popularity_floor": f}``: of ``POPULARITY_FLOORS``, the weakest damping of the most
    followed whose lists keep the top 1% of accounts (most followed, most replied to:
    :func:`tribes.ranking.top_accounts`) within
    ``params.top_exposure_cap`` of all list slots, if it also ranks the held-out pairs best;
    when no floor keeps within the cap, the strongest damping."""
    params = replace(ctx.params, **weights)
    n = ctx.snap.n_users
    top = np.flatnonzero(top_accounts(ctx.snap, ctx.behaviour.followers))
    scored, held = [], None
    for floor in POPULARITY_FLOORS:
        items = rank_people(
            replace(ctx, params=replace(params, popularity_floor=floor)), candidates, feats
        ).items
        share = top_share(exposure(items if ctx.query is None else items[ctx.query], n), top)
        held = _list_hits(items, truth, ctx.query)
        scored.append((share <= params.top_exposure_cap, held.recall, -share, floor))
    within = [x for x in scored if x[0]]
    # Within the cap: the best recall. Nothing within it: the floor that concentrates least.
    chosen = max(within)[3] if within else max(scored, key=lambda x: (x[2], x[1], x[3]))[3]
    if report is not None:  # picked by recall among the floors within the cap: no bar
        report.append(
            {
                "parameter": "popularity_floor",
                "configured": params.popularity_floor,
                "chosen": chosen,
                "recall": {str(f): round(r, 4) for _, r, _, f in scored},
                "top_share": {str(f): round(-s, 4) for _, _, s, f in scored},
                "cap": params.top_exposure_cap,
                "pairs": int(held.pairs.sum()),
                "users": int(np.count_nonzero(held.pairs)),
            }
        )
    return {"popularity_floor": chosen}


def _list_hits(items: np.ndarray, future: sp.csr_matrix, query: np.ndarray | None) -> HeldOut:
    """How many of each (queried) user's future pairs their top ``RECALL_AT`` items hold."""
    n = items.shape[0]
    top = items[:, :RECALL_AT]
    rows = np.repeat(np.arange(n), top.shape[1])
    ok = top.ravel() >= 0
    listed = sp.csr_matrix(
        (np.ones(int(ok.sum()), np.float32), (rows[ok], top.ravel()[ok])), shape=future.shape
    )
    users = np.flatnonzero(np.ones(n, dtype=bool) if query is None else query)
    truth = binary(future).tocsr()[users]
    hits = np.asarray(
        binary(listed).tocsr()[users].multiply(truth).sum(axis=1), dtype=np.float64
    ).ravel()
    return HeldOut(hits=hits, pairs=np.diff(truth.indptr).astype(np.float64))


def format_learning(report: Sequence[dict[str, Any]]) -> list[str]:
    """One line per decision in ``TribeModel.learning_report_``: what was kept or switched to,
    each value's held-out recall, each alternative's lead in paired standard errors and the
    lead it needed."""

    def value(v: Any) -> str:  # a number as short as it goes (keys are strings: "1.0" → "1")
        try:
            return f"{float(v):g}"
        except (TypeError, ValueError):
            return str(v)

    def lead(z: float | None) -> str:
        return "every user one way" if z is None else f"{z:+.1f} SE"

    lines = []
    for d in report:
        name, configured, chosen = d["parameter"], d["configured"], d["chosen"]
        verdict = (
            f"{value(configured)} kept"
            if chosen == configured
            else f"{value(configured)} → {value(chosen)}"
        )
        if "skipped" in d:
            lines.append(f"  {name}: {verdict} — {d['skipped']}")
            continue
        where = f" ({d['pairs']:,} held-out pairs of {d['users']:,} users)"
        recall = d["recall"]
        if "errors" not in d:  # picked by recall alone (the damping floor, within the exposure cap)
            shares = d.get("top_share", {})
            tried = ", ".join(
                f"{value(v)} {r:.3f}" + (f" (top 1% {shares[v]:.1%})" if v in shares else "")
                for v, r in recall.items()
            )
            cap = f" within the top-1% cap {d['cap']:.0%}" if "cap" in d else ""
            lines.append(
                f"  {name}: {value(chosen)}, the best held-out recall{cap} — {tried}{where}"
            )
            continue
        against = d.get("against", {})
        tried = ", ".join(
            f"{value(v)} {recall[v]:.3f} ({lead(z)}"
            + (f" over {against[v]})" if v in against else ")")
            for v, z in d["errors"].items()
        )
        lines.append(
            f"  {name}: {verdict} — {value(configured)} {recall[str(configured)]:.3f}; {tried}; "
            f"a switch needs +{d['needed']:g} SE{where}"
        )
    return lines


def learning_summary(report: Sequence[dict[str, Any]] | None) -> str:
    """One line: the values learning switched away from the configuration (``report`` as in
    ``TribeModel.learning_report_``), that it kept them all, or that it did not run."""
    if report is None:
        return "learning did not run (off, or reused from the previous model)"
    switched = [
        f"{d['parameter']} {d['chosen']} (configured {d['configured']})"
        for d in report
        if d["chosen"] != d["configured"] and d["parameter"] not in ("blend", "popularity_floor")
    ]
    blend = next((d for d in report if d["parameter"] == "blend"), None)
    evidence = next((d for d in report if d["parameter"] == "evidence"), None)
    if evidence is not None:
        return (
            f"learning: too little held-out data ({evidence['hits']} held-out hits, {evidence['needed_hits']} "
            "needed): the configured parameters"
        )
    parts = (
        [f"blend: {blend['chosen']}"]
        if blend
        else ["too little held-out data: the configured parameters"]
    )
    return "learning: " + "; ".join(parts + (switched or ["every other configured value kept"]))
