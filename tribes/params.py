"""Model hyperparameters: one object, every weight named, documented and defaulted.

``TribeModel(**params)`` stores these unchanged (scikit-learn style); ``Params`` validates them
in ``fit``. Times are in days, weights are unitless multipliers.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

__all__ = ["MUTUAL_CONTACTS_INDEXES", "Params", "describe_params"]

#: How a shared contact counts in mutual contacts (``Params.mutual_contacts_index``).
MUTUAL_CONTACTS_INDEXES = ("adamic_adar", "resource_allocation")


def _p(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Params:
    """Every hyperparameter of the recompute, with its default."""

    # --- interest graph ---------------------------------------------------------------------
    reply_half_life_days: float = _p(
        30.0, "Half-life of a reply's weight in the interaction graph."
    )
    follow_half_life_days: float = _p(180.0, "Half-life of a follow's weight (follows age slowly).")
    topic_half_life_days: float = _p(60.0, "Half-life of a post's weight in its author's topics.")
    reply_weight: float = _p(1.0, "Weight of one reply u→v in the directed interaction strength.")
    mention_weight: float = _p(0.5, "Weight of one @mention u→v.")
    follow_weight: float = _p(0.3, "Weight of a follow u→v.")
    reciprocity_bonus: float = _p(2.0, "Extra weight on the reciprocated part min(w[u,v], w[v,u]).")
    interest_weight: float = _p(1.0, "Weight of profile interests relative to one post's topics.")
    min_topic_df: int = _p(2, "A topic must be used in at least this many posts or profiles.")
    max_topic_df_share: float = _p(
        0.3, "Text terms used by more than this share of documents are ignored."
    )
    topic_length_exponent: float = _p(
        0.5,
        "A post weighs (its words / the median post's) ** this in its "
        "author's topics: a long answer says more than a one-line comment.",
    )
    # --- tribes -----------------------------------------------------------------------------
    conversation_affinity: float = _p(3.0, "Affinity weight of reciprocal conversation (highest).")
    oneway_reply_affinity: float = _p(0.5, "Affinity weight of one-way replies.")
    mutual_follow_affinity: float = _p(1.0, "Affinity weight of a mutual follow.")
    oneway_follow_affinity: float = _p(
        0.15, "Affinity weight of a one-way follow, before popularity damping."
    )
    topic_affinity: float = _p(
        0.5, "Affinity weight of shared interests (topic cosine of k nearest neighbours)."
    )
    topic_neighbours: int = _p(
        10, "Nearest neighbours by topic similarity kept per user for the affinity graph."
    )
    min_topic_similarity: float = _p(0.1, "Topic cosine below which neighbours are dropped.")
    knn_max_df: int = _p(
        5000, "Topics used by more users than this are ignored for nearest neighbours (cost cap)."
    )
    broadcaster_followers: float = _p(
        50.0, "Follower count at which a one-way follow's affinity is halved."
    )
    tribe_objective: str = _p(
        "auto",
        "How tribes are found: 'cpm' (Leiden, no resolution limit: human-scale "
        "tribes at any graph size), 'modularity' (Leiden), 'infomap', or 'auto' "
        "(CPM unless fewer than half of the users then sit in weak communities "
        "while Infomap's modules hold most: then Infomap; either way a modularity "
        "group replaces the pieces it holds when one block describes their ties "
        "in fewer nats).",
    )
    resolution: float = _p(
        0.05,
        "CPM's resolution (tribe_objective 'cpm' and 'auto'): the weighted density a "
        "tribe must exceed, in median edge weights per member pair.",
    )
    tribe_merge_max_users: int = _p(
        200_000,
        "tribe_objective 'auto' merges the pieces of sparse groups "
        "(modularity's proposals, judged per group) up to this many users; "
        "above, the tribes stay as CPM or Infomap found them (the step costs "
        "one more Leiden run: ~30 s at a million users); 0 = never.",
    )
    modularity_resolution: float = _p(
        1.0,
        "Modularity's γ (tribe_objective 'modularity'): 1 is classic "
        "modularity; higher gives more, smaller tribes.",
    )
    min_tribe_size: int = _p(
        5, "Smaller groups are merged into a neighbouring tribe or left tribeless."
    )
    tribe_top_k: int = _p(3, "Tribes kept per user in the overlapping memberships.")
    min_tribe_share: float = _p(0.1, "Share of a user's affinity a secondary tribe needs to count.")
    tribe_topics: int = _p(5, "Distinctive topics listed per tribe (the label joins the top 3).")
    stable_id_min_jaccard: float = _p(
        0.2, "Member overlap needed to keep a tribe's id across recomputes."
    )
    # --- people candidates ------------------------------------------------------------------
    candidates_per_source: int = _p(50, "Candidates each named source contributes per user.")
    als_factors: int = _p(32, "ALS latent factors (implicit).")
    als_iterations: int = _p(10, "ALS iterations.")
    als_regularization: float = _p(0.05, "ALS L2 regularisation.")
    als_exact_max_users: int = _p(
        50000,
        "Up to this many users ALS scores everybody; above, an approximate "
        "inner-product index (faiss IVF) finds each user's best.",
    )
    als_ann_probe: int = _p(
        32,
        "Cells of the approximate ALS index searched per user, of sqrt(users) "
        "(more: closer to exact, slower).",
    )
    mutual_contacts_index: str = _p(
        "adamic_adar",
        "How a shared contact z counts in mutual contacts: "
        "'adamic_adar' 1/log deg(z), or 'resource_allocation' 1/deg(z) (well-connected "
        "contacts count for less). Learning switches to the other only where its held-out "
        "recall is higher by more than two standard errors.",
    )
    mutual_contacts_max: int = _p(
        200, "Contacts per user used for mutual contacts (the least connected first)."
    )
    mutual_contacts_hub_degree: int = _p(
        5000, "Contacts with more contacts than this are not counted as mutual (hubs)."
    )
    ppr_alpha: float = _p(0.15, "Personalized PageRank restart probability.")
    ppr_epsilon: float = _p(
        1e-4, "Forward-push residual threshold (smaller: more precise, slower)."
    )
    ppr_max_users: int = _p(
        5000, "PPR runs for at most this many of the most active users per recompute."
    )
    # --- people ranking ---------------------------------------------------------------------
    learn_weights: int = _p(
        1,
        "1: learn the w_* engagement weights per recompute from the latest "
        "learn_holdout of the data (tribes.learn); 0: use the w_* below as given.",
    )
    learn_max_users: int = _p(
        20000,
        "Learning generates candidates for a seeded sample of at most this many "
        "users (its cost then stays bounded as the network grows); 0 = all.",
    )
    learn_graph_users: int = _p(
        100_000,
        "Above this many users, learning runs on a connected sample of about "
        "this many (seeded users with all their contacts) instead of the whole "
        "network, so its cost stays bounded; 0 = always the whole network.",
    )
    relearn_every: int = _p(
        1,
        "Learn the weights on every n-th recompute; in between, reuse the current model's "
        "(a large network's learning reruns graph, affinity and tribes on the past).",
    )
    learn_holdout: float = _p(
        0.15, "Share of interactions (by time; else random follows) held out to learn weights."
    )
    w_conversation_2hop: float = _p(1.0, "p(engage): weight of talking with the same people.")
    w_follow_2hop: float = _p(0.3, "p(engage): weight of mutual contacts (social proof).")
    w_topic: float = _p(1.5, "p(engage): weight of shared interests (topic cosine).")
    w_tribe: float = _p(1.0, "p(engage): weight of shared tribe membership.")
    w_als: float = _p(0.5, "p(engage): weight of the ALS score.")
    w_ppr: float = _p(0.5, "p(engage): weight of personalized PageRank.")
    w_inbound: float = _p(
        2.0, "p(engage): weight of the candidate having already reached out to the user."
    )
    w_mutual_share: float = _p(
        0.0,
        "p(engage): weight of mutual contacts relative to the user's best candidate "
        "(Adamic-Adar / the user's largest; learned per network when learning is on).",
    )
    answer_prior: float = _p(0.3, "Prior answer rate for people with little history.")
    answer_prior_strength: float = _p(5.0, "Pseudo-count of the answer-rate prior.")
    answer_exponent: float = _p(
        1.0,
        "Exponent on p(candidate answers); higher favours answerers more. Learning "
        "may set it to 0 or 0.5 where that ranks held-out ties clearly better.",
    )
    activity_half_life_days: float = _p(
        14.0, "Half-life of recent activity in the activity factor."
    )
    activity_floor: float = _p(0.2, "Activity factor of someone with no recent activity.")
    popularity_pivot: float = _p(
        0.99,
        "Followers at which popularity damping is halfway to its floor: a count, or "
        "below 1 a quantile of the network's follower counts (0.99: the top 1%).",
    )
    popularity_floor: float = _p(
        0.25, "Damping of the most followed accounts: it saturates here, never 0."
    )
    exposure_budget_share: float = _p(
        0.2,
        "A person appears in at most this share of the lists a recompute makes "
        "(every user's, the newcomers' too)...",
    )
    exposure_budget_max: int = _p(
        400,
        "...and in at most this many lists (so the top 1% of people hold at most "
        "~0.01·max/k of all slots: 20% at k=20, whatever the number of users)...",
    )
    exposure_budget_min: int = _p(30, "...but the budget is never below this many lists.")
    welcome_newcomers: int = _p(
        1,
        "1: users ranking has nothing for (registered, no activity yet) get the most "
        "welcoming recently active people (people answered x activity), within the exposure "
        "budget and the top-1% cap (tribes.newcomers); 0: their lists stay empty.",
    )
    newcomer_slot_weight: float = _p(
        0.0,
        "What one slot in a newcomer's list counts against a person's exposure "
        "budget, against a slot in an active user's list (it asks of them only "
        "as often as newcomers act): 0 measures it per recompute (tribes.newcomers."
        "newcomer_slot_weight; 1 where there is too little to tell); else 0 < w <= 1.",
    )
    top_exposure_cap: float = _p(
        0.2,
        "The top 1% of accounts (most followed, most replied to) fill at most this share "
        "of the list slots of every list prefix: ranking moves their weakest appearances "
        "down (1: no cap); learning picks the weakest damping that stays within it.",
    )
    tribe_diversity: float = _p(
        0.95,
        "Score multiplier per earlier item from the same tribe in a list. Learning "
        "may set it to 0.9, 0.98 or 1 where that ranks held-out ties clearly better.",
    )
    max_people: int = _p(50, "People suggestions stored per user.")
    # --- conversations ----------------------------------------------------------------------
    live_window_days: float = _p(14.0, "A thread is live when its last activity is this recent.")
    crowd_size: int = _p(
        12, "Participants at which a thread counts as a crowd (room-to-join halves)."
    )
    recency_half_life_days: float = _p(3.0, "Half-life of a thread's recency factor.")
    thread_momentum: float = _p(
        0.0,
        "Exponent on 1 + a thread's posts in the live window (0: how busy a thread "
        "is does not count). Learning raises it only where held-out thread joins "
        "follow activity clearly.",
    )
    w_thread_topic: float = _p(1.5, "Thread score: weight of topic match.")
    w_thread_tribe: float = _p(1.0, "Thread score: weight of tribe match.")
    w_thread_contacts: float = _p(
        1.0, "Thread score: weight of people the user already talks with."
    )
    w_thread_open: float = _p(
        0.0,
        "Thread score: match every user has with the most welcoming live threads "
        "(0: only threads of one's tribes, topics and contacts are suggested). Learning "
        "raises it only where held-out thread joins clearly go beyond those.",
    )
    max_conversations: int = _p(30, "Conversation suggestions stored per user.")
    # --- run --------------------------------------------------------------------------------
    seed: int = _p(0, "Seed of every random step (Leiden, ALS, exposure tie-breaks).")

    def validate(self) -> Params:
        """Raise ValueError naming the first out-of-range parameter; return self."""
        if self.tribe_objective not in ("cpm", "modularity", "auto", "infomap"):
            raise ValueError(
                f"tribe_objective: expected 'cpm', 'modularity', 'infomap' or 'auto', got {self.tribe_objective!r}"
            )
        if self.mutual_contacts_index not in MUTUAL_CONTACTS_INDEXES:
            raise ValueError(
                f"mutual_contacts_index: expected 'adamic_adar' or 'resource_allocation', "
                f"got {self.mutual_contacts_index!r}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("seed", "tribe_objective", "mutual_contacts_index"):
                continue
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{f.name}: expected a number, got {value!r}")
            if value < 0:
                raise ValueError(f"{f.name}: must be >= 0, got {value!r}")
        for name in (
            "tribe_diversity",
            "popularity_floor",
            "top_exposure_cap",
            "learn_holdout",
            "exposure_budget_share",
            "newcomer_slot_weight",
            "min_tribe_share",
            "ppr_alpha",
            "max_topic_df_share",
            "stable_id_min_jaccard",
        ):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: must be between 0 and 1, got {getattr(self, name)!r}")
        for name in ("resolution", "modularity_resolution"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)!r}")
        for name in (
            "max_people",
            "max_conversations",
            "candidates_per_source",
            "als_factors",
            "relearn_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_params() -> list[tuple[str, Any, str]]:
    """``(name, default, description)`` for every hyperparameter."""
    return [
        (f.name, f.default if f.default is not MISSING else None, f.metadata["doc"])
        for f in fields(Params)
    ]
