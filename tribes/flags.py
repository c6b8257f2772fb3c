"""The reason bits a model stores per suggestion (``people_flags``, ``conv_flags``): what ranking
writes and serving reads. A module of its own so that the API can read them without importing
the ranking pipeline (igraph, numba and the rest)."""

__all__ = ["REASON_FLAGS", "THREAD_FLAGS"]

#: Why a person is suggested: bits of ``people_flags`` (``RankedPeople.flags``), the evidence
#: strong enough to be told as a reason.
REASON_FLAGS = {
    "talks_with_your_contacts": 1,
    "mutual_contacts": 2,
    "shared_topics": 4,
    "same_tribe": 8,
    "answers_newcomers": 16,
    "reached_out": 32,
    "similar_people": 64,
}

#: Why a conversation is suggested: bits of ``conv_flags``.
THREAD_FLAGS = {
    "shared_topics": 1,
    "same_tribe": 2,
    "contacts_there": 4,
    "answers_newcomers": 8,
    "active_thread": 16,
    "open_to_all": 32,
}
