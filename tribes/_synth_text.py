"""Words for the synthetic network: made-up tribe vocabularies, names, bios and post text.

Private helper of :mod:`tribes.synth`. Tribe words are syllable combinations
(``"kromazel"``, ``"tibou"``) drawn without replacement, so every tribe owns words that no
other tribe uses; a fixed list of plain English filler words is shared by everyone.
Everything here is vectorised per block of posts or users and draws only from the
``numpy.random.Generator`` it is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

_ONSETS = (
    *("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"),
    *("br", "dr", "kr", "st", "tr", "sh", "ch"),
)
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "n", "r", "l", "s", "x", "m")
_SYLLABLES = tuple(o + v for o in _ONSETS for v in _VOWELS)  # 105; parsing is unambiguous
_S = len(_SYLLABLES)
_C = len(_CODAS)

_FILLER = """the a and to of in is it that this for with on my so just about really think new today
    anyone know love good great best how what why when here there more some time idea question
    thanks again still never always maybe first last week made found trying working looking
    reading building learning talking people folks everyone someone thread update finally nice
    cool wow honestly not sure agree take point seen favourite started going back"""
#: Filler words every tribe uses; they carry no tribe signal.
GENERIC = tuple(_FILLER.split())
#: Hashtags every tribe uses now and then.
GENERIC_TAGS = ("#news", "#question", "#today", "#help", "#thread")

_BIOS = (
    "Into {a}, {b} and #{c}.",
    "{A} · {B} · {C}",
    "Talking about {a} and {b} most days.",
    "Learning {a}. Ask me about #{b}.",
    "{A} nerd, {b} on weekends.",
    "Here for {a}, {b} and good threads.",
)


def _spell(code: int, n_syllables: int) -> str:
    coda, code = _CODAS[code % _C], code // _C
    parts = []
    for _ in range(n_syllables):
        parts.append(_SYLLABLES[code % _S])
        code //= _S
    return "".join(parts) + coda


def _words(rng: np.random.Generator, n_syllables: int, size: int) -> list[str]:
    space = _C * _S**n_syllables
    codes = rng.choice(space, size=min(size, space), replace=False)
    return [_spell(int(code), n_syllables) for code in codes]


@dataclass(frozen=True)
class Vocabulary:
    """Tribe ``t`` owns ``words[offsets[t]:offsets[t + 1]]``, most frequent first.

    ``tokens`` is the object array that post token ids index: the generic words, then the
    tribe words, then the tribe words as ``#hashtags``, then :data:`GENERIC_TAGS`.
    """

    words: list[str]
    offsets: np.ndarray
    tokens: np.ndarray
    word_array: np.ndarray  # words as an object array
    log_skew: np.ndarray  # (16, 15): log P(word i) in a tribe of s words, -inf for i >= s
    first_names: np.ndarray
    last_names: np.ndarray

    def tribe_words(self, tribe: int) -> list[str]:
        """The words of one tribe."""
        return self.words[self.offsets[tribe] : self.offsets[tribe + 1]]


def make_vocabulary(rng: np.random.Generator, n_tribes: int, n_users: int) -> Vocabulary:
    """Give each tribe 8-15 distinct made-up words (about 30 % of two syllables).

    Also draws pools of first and last names (fewer than users, so names repeat).
    """
    sizes = rng.integers(8, 16, n_tribes)
    need = int(sizes.sum())
    short = min(int(0.3 * need), (_C * _S**2) // 2)
    pool = _words(rng, 2, short) + _words(rng, 3, need - short + 64)
    generic = set(GENERIC)
    pool = [w for w in (pool[i] for i in rng.permutation(len(pool))) if w not in generic]
    words = pool[:need]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    tokens = np.array([*GENERIC, *words, *("#" + w for w in words), *GENERIC_TAGS], dtype=object)
    log_skew = np.full((16, 15), -np.inf)
    for size in range(8, 16):
        log_skew[size, :size] = np.log(_skew(size))
    n_first, n_last = min(n_users, 3000), min(n_users, 20000)
    return Vocabulary(
        words=words,
        offsets=offsets,
        tokens=tokens,
        word_array=np.array(words, dtype=object),
        log_skew=log_skew,
        first_names=np.array([w.capitalize() for w in _words(rng, 2, n_first)], dtype=object),
        last_names=np.array([w.capitalize() for w in _words(rng, 3, n_last)], dtype=object),
    )


def _skew(size: int) -> np.ndarray:
    """P(i) for word i of a tribe of ``size`` words when drawn as ``floor(U**1.7 * size)``."""
    edges = (np.arange(size + 1) / size) ** (1 / 1.7)
    return np.diff(edges)


def _topic_word(rng: np.random.Generator, vocab: Vocabulary, tribe: np.ndarray) -> np.ndarray:
    """One word index per entry of ``tribe``, skewed towards the tribe's first words."""
    lo = vocab.offsets[tribe]
    size = vocab.offsets[tribe + 1] - lo
    return lo + (rng.random(len(tribe)) ** 1.7 * size).astype(np.int64)


def compose(
    rng: np.random.Generator,
    vocab: Vocabulary,
    topic: np.ndarray,
    lengths: np.ndarray,
    p_word: float = 0.3,
    p_hashtag: float = 0.06,
    p_generic_tag: float = 0.01,
) -> list[str]:
    """Post texts: ``lengths[i]`` tokens each, mixing filler words and words of ``topic[i]``.

    Each token is a plain topic word with probability ``p_word``, a topic ``#hashtag`` with
    ``p_hashtag``, a generic hashtag with ``p_generic_tag``, otherwise a filler word; every
    post holds at least one plain topic word. O(total tokens), vectorised.
    """
    g, w = len(GENERIC), len(vocab.words)
    post = np.repeat(np.arange(len(topic)), lengths)
    n = len(post)
    word = _topic_word(rng, vocab, topic[post])
    u = rng.random(n)
    ids = rng.integers(0, g, n)
    ids = np.where(u < p_word, g + word, ids)
    ids = np.where((u >= p_word) & (u < p_word + p_hashtag), g + w + word, ids)
    ids = np.where(u >= 1.0 - p_generic_tag, g + 2 * w + rng.integers(0, len(GENERIC_TAGS), n), ids)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    forced = starts + (rng.random(len(topic)) * lengths).astype(np.int64)
    ids[forced] = g + word[forced]
    tokens = vocab.tokens[ids].tolist()
    return [" ".join(tokens[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def tag_lists(
    rng: np.random.Generator, vocab: Vocabulary, topic: np.ndarray, counts: np.ndarray
) -> list[list[str]]:
    """``counts[i]`` (at most 8) distinct words of tribe ``topic[i]``, skewed to its first words.

    Vectorised Gumbel top-k: each word gets key ``log P(word) + Gumbel noise``; the
    ``counts[i]`` largest keys win.
    """
    if len(topic) == 0:
        return []
    lo = vocab.offsets[topic]
    size = vocab.offsets[topic + 1] - lo
    logp = vocab.log_skew[size]  # (m, 15), -inf past the tribe's last word
    keys = logp - np.log(-np.log(rng.random(logp.shape)))
    best = np.argsort(-keys, axis=1, kind="stable")[:, :8] + lo[:, None]
    rows = vocab.word_array[best].tolist()
    return [row[:c] for row, c in zip(rows, counts.tolist(), strict=True)]


def profiles(
    rng: np.random.Generator, vocab: Vocabulary, primary: np.ndarray, secondary: np.ndarray
) -> tuple[list[str], list[str], list[list[str]]]:
    """Names, bios and interest hashtags for a block of users.

    Bios use three words of the primary tribe (about 8 % of users have an empty bio).
    Interests are 0-4 primary-tribe hashtags (15 % have none) plus one of the secondary
    tribe when the user has one.
    """
    n = len(primary)
    first = vocab.first_names[rng.integers(0, len(vocab.first_names), n)].tolist()
    last = vocab.last_names[rng.integers(0, len(vocab.last_names), n)].tolist()
    names = [f"{a} {b}" for a, b in zip(first, last, strict=True)]
    bio_words = _topic_word(rng, vocab, np.repeat(primary, 3)).reshape(n, 3).tolist()
    template = rng.integers(0, len(_BIOS), n).tolist()
    empty = (rng.random(n) < 0.08).tolist()
    bios = []
    for ws, t, e in zip(bio_words, template, empty, strict=True):
        a, b, c = (vocab.words[i] for i in ws)
        text = _BIOS[t].format(a=a, b=b, c=c, A=a.capitalize(), B=b.capitalize(), C=c)
        bios.append("" if e else text)
    counts = rng.choice(5, size=n, p=[0.15, 0.25, 0.3, 0.2, 0.1])
    interests = tag_lists(rng, vocab, primary, counts)
    extra = (secondary >= 0) & (counts > 0)
    extra_tags = tag_lists(rng, vocab, np.maximum(secondary, 0), extra.astype(np.int64))
    return (
        names,
        bios,
        [["#" + w for w in a + b] for a, b in zip(interests, extra_tags, strict=True)],
    )


def iso(ts: np.ndarray) -> list[str]:
    """RFC 3339 UTC strings (``2026-11-01T00:00:00Z``) of integer Unix seconds."""
    return np.datetime_as_string(ts.astype("datetime64[s]"), unit="s", timezone="UTC").tolist()


def post_id(number: int) -> str:
    """``p00000042``: post ids are numbered from 1 in emission order."""
    return f"p{number:08d}"


def user_events(
    rng: np.random.Generator,
    vocab: Vocabulary,
    ids: np.ndarray,
    join: np.ndarray,
    primary: np.ndarray,
    secondary: np.ndarray,
    discoverable: np.ndarray,
) -> Iterator[dict]:
    """``user`` events of a block of users (``ts`` = join time)."""
    names, bios, interests = profiles(rng, vocab, primary, secondary)
    flags = discoverable.tolist()
    for i, (user, when) in enumerate(zip(ids.tolist(), iso(join), strict=True)):
        event = {"type": "user", "id": user, "ts": when, "name": names[i]}
        if bios[i]:
            event["bio"] = bios[i]
        if interests[i]:
            event["interests"] = interests[i]
        event["discoverable"] = flags[i]
        yield event


def post_events(
    rng: np.random.Generator,
    vocab: Vocabulary,
    first_number: int,
    authors: np.ndarray,
    ts: np.ndarray,
    parent: np.ndarray,
    topic: np.ndarray,
) -> Iterator[dict]:
    """``post`` events numbered from ``first_number``; ``parent`` is a local index or -1.

    Roots have 6-20 tokens and 30 % carry 1-3 ``tags``; replies have 3-14 tokens, 5 % carry
    tags, and 40 % of those answering someone else start with ``@parent_author``.
    """
    total = len(ts)
    is_reply = parent >= 0
    lengths = np.where(is_reply, rng.integers(3, 15, total), rng.integers(6, 21, total))
    texts = compose(rng, vocab, topic, lengths)
    n_tags = rng.integers(1, 4, total) * (rng.random(total) < np.where(is_reply, 0.05, 0.3))
    tagged = np.flatnonzero(n_tags).tolist()
    tags = dict(zip(tagged, tag_lists(rng, vocab, topic[tagged], n_tags[tagged]), strict=True))
    pids = [post_id(x) for x in range(first_number, first_number + total)]
    aid = authors.tolist()
    par = parent.tolist()
    mention = is_reply & (authors[np.maximum(parent, 0)] != authors) & (rng.random(total) < 0.4)
    for i in np.flatnonzero(mention).tolist():
        texts[i] = f"@{aid[par[i]]} {texts[i]}"
    for i, when in enumerate(iso(ts)):
        event = {"type": "post", "id": pids[i], "author": aid[i], "ts": when, "text": texts[i]}
        if par[i] >= 0:
            event["reply_to"] = pids[par[i]]
        if i in tags:
            event["tags"] = tags[i]
        yield event
