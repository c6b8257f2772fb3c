"""``TribeModel``: the recompute pipeline behind a scikit-learn-style estimator.

>>> from tribes.synth import SynthConfig, generate
>>> model = TribeModel(seed=1).fit(generate(SynthConfig(n_users=300, seed=1)))
>>> len(model.tribes_) > 1
True
>>> items = model.recommend_people(model.user_ids_[0], k=5)

``fit`` runs the stages (snapshot → graph → affinity → tribes → behaviour → candidates →
people ranking → conversations) with per-stage wall time and peak memory in ``timings_``.
The learned state is a dict of arrays (``arrays_``) plus tribe descriptions: exactly what
``save`` writes and ``load`` memory-maps, so a loaded model answers like a fitted one.
"""

from __future__ import annotations

import ctypes
import resource
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .affinity import topic_neighbours, user_affinity
from .behaviour import measure_behaviour
from .candidates import CandidateContext, exclusion_matrix, generate_candidates, hidden_matrix
from .communities import (
    detect_communities,
    kept_inside,
    label_tribes,
    match_tribe_ids,
    tribe_affinities,
)
from .conversations import rank_conversations, thread_stats
from .graph import InterestGraph, build_graph
from .newcomers import with_newcomers
from .params import Params
from .ranking import rank_people
from .snapshot import Snapshot
from .sparse import binary
from .text import term_specificity

__all__ = ["TribeModel", "snapshot_from"]

_PARAM_NAMES = tuple(f.name for f in fields(Params))


def snapshot_from(data: Any) -> Snapshot:
    """A snapshot from a ``Store``, a ``Snapshot``, a JSON Lines path, or an iterable of event
    dicts (ingested through an in-memory store, so the ingest rules hold)."""
    from .store import Store
    from .store.reads import read_snapshot

    if isinstance(data, Snapshot):
        return data
    if isinstance(data, Store):
        return read_snapshot(data)
    from .ingest import ingest_lines, ingest_objects

    with Store.open("sqlite://") as store:
        if isinstance(data, str | Path):
            from .jsonl import open_input

            with open_input(data) as fh:
                report = ingest_lines(store, fh, source=str(data))
        else:
            report = ingest_objects(store, data, source="events")
        if not report.committed:
            from .errors import InputError

            raise InputError("; ".join(str(p) for p in report.problems[:5]))
        return read_snapshot(store)


_warmed_up = False


def _warm_up() -> None:
    """Import the heavy modules and load the compiled kernels, once per process, by fitting a
    tiny synthetic network (~1 s) — before :meth:`TribeModel.fit` reads a big snapshot. Done
    later, their long-lived objects (~150k at first use: module imports, numba typing, faiss
    wrappers) fill the gaps the read leaves among the snapshot's strings, and the allocator
    cannot return those strings' memory when the texts are dropped (1M users: ~1.8 GiB)."""
    global _warmed_up
    if _warmed_up:
        return
    _warmed_up = True
    import faiss  # noqa: F401 - only imported here: the approximate ALS index needs it above 50k users

    from .synth import SynthConfig, generate

    TribeModel(seed=0).fit(generate(SynthConfig(n_users=200, seed=0)))


def _return_freed_memory() -> None:
    """Hand memory the process has freed back to the OS where the C library can (glibc's
    ``malloc_trim``; freed small blocks otherwise stay mapped between big stages). No-op elsewhere."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def stage_timer(
    timings: dict[str, dict[str, float]], on_stage: Callable[[str], None] | None = None
):
    """A ``stage(name)`` context manager: calls ``on_stage(name)`` as a stage starts and records
    its wall seconds and the process's peak RSS so far (MiB) in ``timings[name]``."""

    @contextmanager
    def stage(name: str):
        if on_stage:
            on_stage(name)
        start = time.perf_counter()
        yield
        timings[name] = {
            "seconds": round(time.perf_counter() - start, 3),
            "peak_rss_mib": round(_peak_rss_mib(), 1),
        }

    return stage


def _no_stage(name: str):
    return nullcontext()


def _candidates(
    snap: Snapshot,
    params: Params,
    previous: Any,
    stage: Callable = _no_stage,
    query: np.ndarray | None = None,
    graph: InterestGraph | None = None,
) -> tuple:
    """Graph → affinity → tribes → behaviour → candidates: everything ranking needs.

    ``previous=False`` skips what only the published model needs (labels, stable ids);
    ``query`` limits candidate generation to those users (see ``CandidateContext.query``);
    ``graph``: ``build_graph(snap, params)`` when already built (``snap`` may then be
    ``without_text()``).
    """
    if graph is None:
        with stage("graph"):
            graph = build_graph(snap, params)
    with stage("affinity"):
        knn = topic_neighbours(
            graph.user_topic,
            k=max(params.topic_neighbours, params.candidates_per_source),
            min_similarity=params.min_topic_similarity,
            max_df=params.knn_max_df,
        )
        affinity = user_affinity(graph, params, knn=knn)
    extras: dict[str, Any] = {"graph": graph}
    with stage("tribes"):
        resolution = (
            params.modularity_resolution
            if params.tribe_objective == "modularity"
            else params.resolution
        )
        labels, extras["tribe_method"] = detect_communities(
            affinity,
            resolution=resolution,
            seed=params.seed,
            min_size=params.min_tribe_size,
            objective=params.tribe_objective,
            return_method=True,
            merge_max_users=int(params.tribe_merge_max_users),
        )
        memberships = tribe_affinities(
            affinity, labels, top_k=params.tribe_top_k, min_share=params.min_tribe_share
        )
        if previous is not False:
            extras["topics"], extras["names"] = label_tribes(
                labels, graph.user_topic, graph.vocabulary, n_topics=params.tribe_topics
            )
            extras["tribe_ids"] = match_tribe_ids(
                labels,
                *_previous_membership(previous, snap.user_ids),
                min_jaccard=params.stable_id_min_jaccard,
            )
    with stage("behaviour"):
        behaviour = measure_behaviour(snap, graph, labels, params)
    ctx = CandidateContext(
        snap=snap,
        graph=graph,
        labels=labels,
        memberships=memberships,
        topic_knn=knn,
        behaviour=behaviour,
        params=params,
        exclusion=exclusion_matrix(snap),
        query=query,
    )
    with stage("candidates"):
        candidates = generate_candidates(ctx)
    return ctx, candidates, extras


class TribeModel:
    """Find tribes and rank conversation-first suggestions.

    Parameters
    ----------
    **params
        Any of :class:`tribes.params.Params` (``tribes.params.describe_params()`` lists them
        with defaults). Stored unchanged; validated in :meth:`fit`.

    Attributes (after fit)
    ----------------------
    user_ids_ : (U,) str array
    labels_ : (U,) primary tribe index, -1 none
    tribe_ids_ : (K,) public tribe ids (stable across recomputes via ``previous``)
    tribes_ : list of dict ``{"tribe_id", "label", "size", "topics", "cohesion"}`` (cohesion:
        the share of the members' interaction weight that stays in the tribe,
        :func:`tribes.communities.kept_inside`)
    arrays_ : dict of arrays served by :class:`tribes.serving.Recommender`
    timings_ : dict stage → {"seconds", "peak_rss_mib"}
    snapshot_ : the fitted :class:`Snapshot`, ``without_text()`` (post texts, tags, post ids and
        interests are released after the graph stage; at 1M users they are ~2.8 GB)
    interaction_ : (U, U) CSR, the interaction graph (replies and mentions, decayed)
    learned_weights_ : dict or None, what learning chose (``w_*`` and the parameters it switched)
    learning_report_ : list of dict or None, why: one entry per decision learning made this fit
        (what it tried, held-out recalls, leads in paired standard errors, what was needed;
        :func:`tribes.learn.learn_engage_weights`); None when it did not run (off, or reused)
    """

    def __init__(self, **params: Any):
        unknown = set(params) - set(_PARAM_NAMES)
        if unknown:
            raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        defaults = Params()
        for name in _PARAM_NAMES:
            setattr(self, name, params.get(name, getattr(defaults, name)))

    # --- scikit-learn conventions -----------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PARAM_NAMES}

    def set_params(self, **params: Any) -> TribeModel:
        unknown = set(params) - set(_PARAM_NAMES)
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = Params()
        changed = {k: v for k, v in self.get_params().items() if v != getattr(defaults, k)}
        return f"TribeModel({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # --- fitting ----------------------------------------------------------------------------
    def fit(
        self, data: Any, *, previous: Any = None, on_stage: Callable[[str], None] | None = None
    ) -> TribeModel:
        """Run the whole recompute on ``data`` (see :func:`snapshot_from`).

        Parameters
        ----------
        previous : TribeModel or Recommender, optional
            The model this one replaces: tribe ids are carried over by member overlap.
        on_stage : callable, optional
            Called with each stage's name as it starts (progress reporting).
        """
        params = Params(**self.get_params()).validate()
        self.timings_: dict[str, dict[str, float]] = {}
        stage = stage_timer(self.timings_, on_stage)

        if not isinstance(data, Snapshot):
            _warm_up()  # before the read; see there
        with stage("snapshot"):
            snap = snapshot_from(data)
        params = self._learn(snap, params, previous, stage)
        with stage("graph"):
            graph = build_graph(snap, params)
        # Only the graph reads the strings; when fit read the snapshot itself, this releases them.
        snap = snap.without_text()
        _return_freed_memory()
        ctx, candidates, extras = _candidates(snap, params, previous, stage, graph=graph)
        _return_freed_memory()  # the sources' temporaries, before ranking's peak
        labels, memberships, tribe_ids = ctx.labels, ctx.memberships, extras["tribe_ids"]
        # what found the tribes: cpm, cpm-merged, modularity or infomap
        self.tribe_method_ = extras["tribe_method"]
        topics, names, behaviour = extras["topics"], extras["names"], ctx.behaviour
        with stage("rank_people"):
            people = with_newcomers(
                rank_people(ctx, candidates), snap, ctx.behaviour, params, ctx.exclusion
            )
        with stage("conversations"):
            stats = thread_stats(ctx)
            threads = rank_conversations(ctx, stats)

        self.candidates_ = candidates  # per source (U, U) CSR, for notebooks and tests (not saved)
        # (U, U) CSR, as the Spark engine's (plots, notebooks)
        self.interaction_ = graph.interaction
        self._set_fitted(
            snap,
            graph,
            labels,
            tribe_ids,
            topics,
            names,
            memberships,
            behaviour,
            people,
            stats,
            threads,
        )
        return self

    def _learn(self, snap: Snapshot, params: Params, previous: Any, stage: Callable) -> Params:
        """``params`` with what learning chose on ``snap`` (:func:`tribes.learn.learn_engage_weights`,
        on this engine's candidates), or the previous model's learned weights while younger than
        ``relearn_every``; sets ``learned_weights_``, ``learned_weights_age_`` and
        ``learning_report_``. Shared by both engines: the Spark engine learns on the driver this
        way (learning runs on a sample of ``learn_graph_users`` above that size)."""
        self.learned_weights_, self.learned_weights_age_, self.learning_report_ = None, 0, None
        if not params.learn_weights:
            return params
        reused = _reusable_weights(previous, params.relearn_every)
        if reused is not None:
            self.learned_weights_, self.learned_weights_age_ = reused
        else:
            with stage("learn_weights"):
                from .learn import learn_engage_weights

                self.learning_report_ = []
                self.learned_weights_ = learn_engage_weights(
                    snap,
                    params,
                    lambda s, p, q: _candidates(s, p, False, query=q)[:2],
                    self.learning_report_,
                )
        return replace(params, **self.learned_weights_) if self.learned_weights_ else params

    def _set_fitted(
        self,
        snap: Snapshot,
        graph,
        labels: np.ndarray,
        tribe_ids: np.ndarray,
        topics: list,
        names: list,
        memberships: sp.csr_matrix,
        behaviour,
        people,
        stats,
        threads,
    ) -> None:
        """The fitted attributes and the served arrays (the model format) from the stages'
        results; shared by :meth:`fit` and the Spark engine (``tribes.spark.engine``)."""
        sizes = np.bincount(labels[labels >= 0], minlength=len(tribe_ids))
        cohesion = kept_inside(graph.interaction, labels)
        self.user_ids_ = snap.user_ids.astype(str)
        self.labels_ = labels
        self.tribe_ids_ = tribe_ids
        self.tribes_ = [
            {
                "tribe_id": int(tribe_ids[k]),
                "label": names[k],
                "size": int(sizes[k]),
                "topics": topics[k],
                "cohesion": round(float(cohesion[k]), 4),
            }
            for k in range(len(tribe_ids))
        ]
        self.candidate_counts_ = people.sources
        # None: nobody needed a newcomer list
        self.newcomer_slot_weight_ = people.newcomer_slot_weight
        self.snapshot_ = snap
        self.counts_ = snap.counts()
        self.built_from_ = {"now": snap.now, "live_seq": snap.live_seq}
        # Who may be *named* to whom (in reasons, among participants): never a person hidden
        # from the viewer (blocks, mutes, dismissals) nor anyone non-discoverable.
        hidden = hidden_matrix(snap)
        shown = sp.diags(snap.discoverable.astype(np.float32))
        contacts = binary(graph.follows + graph.interaction)
        contacts = binary((contacts - contacts.multiply(hidden)) @ shown)
        participants = binary(binary(graph.user_thread).T.tocsr() @ shown)
        self.arrays_ = {
            "user_ids": self.user_ids_,
            "discoverable": snap.discoverable,
            "first_seen": snap.first_seen,
            "labels": labels.astype(np.int32),
            "tribe_ids": tribe_ids.astype(np.int64),
            **_csr("memberships", memberships),
            "people_items": people.items,
            "people_scores": people.scores,
            "people_flags": people.flags,
            # (U,) bool: the list is the newcomers' one (tribes.newcomers); the service answers
            # such a user from what they have done since, when they have done anything.
            "people_newcomer": (
                np.zeros(len(people.items), dtype=bool)
                if people.newcomers is None
                else people.newcomers
            ),
            "conv_items": threads.items,
            "conv_scores": threads.scores,
            "conv_flags": threads.flags,
            "thread_ids": snap.thread_ids.astype(str)
            if snap.n_threads
            else np.zeros(0, dtype="U1"),
            "thread_last_activity": graph.thread_last_activity,
            "thread_root_author": graph.thread_root_author,
            "thread_tribe": stats.tribe,
            "thread_answered_rate": stats.answered_rate,
            "thread_live": stats.live,
            **_csr("thread_users", participants, data=False),
            **_csr("user_topic", graph.user_topic),
            **_csr("thread_topic", graph.thread_topic),
            "vocabulary": graph.vocabulary.astype(str)
            if len(graph.vocabulary)
            else np.zeros(0, dtype="U1"),
            # (V,) how little of everyone uses each topic: reasons name the telling shared topics
            "topic_specificity": term_specificity(graph.user_topic),
            **_csr("contacts_out", contacts, data=False),
            **_csr("contacts_in", contacts.T.tocsr(), data=False),
            **_csr("hidden", hidden, data=False),
            "followers": behaviour.followers,
            "reached_by": behaviour.reached_by,
            "answered": behaviour.answered,
            "answer_rate": behaviour.answer_rate,
            "activity": behaviour.activity,
            # (U,) bool: the accounts the top-exposure cap limits (the service's newcomer lists too)
            "top_account": people.top,
        }
        self._recommender = None

    # --- serving ----------------------------------------------------------------------------
    def recommender(self):
        """The :class:`tribes.serving.Recommender` over this model's arrays."""
        from .serving import Recommender

        if getattr(self, "_recommender", None) is None:
            self._check_fitted()
            self._recommender = Recommender(self.arrays_, self.manifest(), self.tribes_)
        return self._recommender

    def recommend_people(self, user: str, k: int = 20) -> list[dict]:
        """Up to ``k`` people for ``user`` to talk with, best first, each with reasons."""
        return self.recommender().people(user, k)

    def recommend_conversations(self, user: str, k: int = 20) -> list[dict]:
        """Up to ``k`` live conversations for ``user`` to join, best first, each with reasons."""
        return self.recommender().conversations(user, k)

    def manifest(self) -> dict:
        self._check_fitted()
        people = self.arrays_["people_items"] >= 0
        conversations = self.arrays_["conv_items"] >= 0
        n = max(len(self.user_ids_), 1)
        return {
            "summary": {
                "tribes": len(self.tribes_),
                "users_in_a_tribe": int((self.labels_ >= 0).sum()),
                "users_with_people": int(people.any(axis=1).sum()),
                "people_per_user": round(float(people.sum()) / n, 2),
                "users_with_conversations": int(conversations.any(axis=1).sum()),
                "conversations_per_user": round(float(conversations.sum()) / n, 2),
                "live_threads": int(self.arrays_["thread_live"].sum()),
                "newcomers": int(self.arrays_["people_newcomer"].sum()),
                **(
                    {"newcomer_slot_weight": round(weight, 4)}
                    if (weight := getattr(self, "newcomer_slot_weight_", None)) is not None
                    else {}
                ),
            },
            "counts": self.counts_,
            "tribes": len(self.tribes_),
            "tribe_method": getattr(self, "tribe_method_", None),
            "params": self.get_params(),
            "timings": self.timings_,
            "candidates": self.candidate_counts_,
            "learned_weights": self.learned_weights_,
            "learned_weights_age": getattr(self, "learned_weights_age_", 0),
            "learning_report": getattr(self, "learning_report_", None),
            "data_now": self.built_from_["now"],
            "live_seq": self.built_from_["live_seq"],
        }

    def write_to(self, writer: Any) -> None:
        """Write the model through anything with ``save_array``, ``save_json`` and
        ``write_manifest`` (an artifacts ``VersionWriter`` or a plain folder)."""
        self._check_fitted()
        for name, array in self.arrays_.items():
            writer.save_array(name, np.ascontiguousarray(array))
        writer.save_json("tribes", self.tribes_)
        writer.write_manifest(self.manifest())

    def save(self, path: str | Path) -> Path:
        """Write the arrays (``.npy``), ``tribes.json`` and ``manifest.json`` into ``path``."""
        from .artifacts import FolderWriter

        path = Path(path)
        self.write_to(FolderWriter(path))
        return path

    @classmethod
    def load(cls, path: str | Path):
        """A :class:`tribes.serving.Recommender` over a saved model (arrays memory-mapped)."""
        from .serving import Recommender

        return Recommender.open(Path(path))

    def _check_fitted(self) -> None:
        if not hasattr(self, "arrays_"):
            raise RuntimeError("this TribeModel is not fitted yet: call fit(data) first")


def _csr(name: str, m: sp.spmatrix, *, data: bool = True) -> dict[str, np.ndarray]:
    m = m.tocsr()
    m.sort_indices()
    out = {
        f"{name}_indptr": m.indptr.astype(np.int64),
        f"{name}_indices": m.indices.astype(np.int32),
        f"{name}_shape": np.asarray(m.shape, dtype=np.int64),
    }
    if data:
        out[f"{name}_data"] = m.data.astype(np.float32)
    return out


def _reusable_weights(previous: Any, relearn_every: int) -> tuple[dict, int] | None:
    """The previous model's learned weights and their new age (recomputes since they were
    learned), when they are younger than ``relearn_every`` recomputes; else None (learn)."""
    if previous is None or relearn_every <= 1:
        return None
    manifest = (
        previous.manifest() if callable(getattr(previous, "manifest", None)) else previous.manifest
    )
    weights, age = manifest.get("learned_weights"), int(manifest.get("learned_weights_age", 0))
    if not weights or age + 1 >= relearn_every:
        return None
    return dict(weights), age + 1


def _previous_membership(
    previous: Any, user_ids: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The previous model's labels on the new user index, and its tribe ids."""
    if previous is None:
        return None, None
    arrays = previous.arrays_ if hasattr(previous, "arrays_") else previous.arrays
    old_users = np.asarray(arrays["user_ids"])
    old_labels = np.asarray(arrays["labels"])
    new_users = np.asarray(user_ids).astype(str)
    pos = np.searchsorted(old_users, new_users)
    pos = np.minimum(pos, max(len(old_users) - 1, 0))
    found = (old_users[pos] == new_users) if len(old_users) else np.zeros(len(new_users), bool)
    aligned = np.full(len(new_users), -1, dtype=np.int64)
    aligned[found] = old_labels[pos[found]]
    return aligned, np.asarray(arrays["tribe_ids"])
