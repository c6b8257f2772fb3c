"""Words for the synthetic network: made-up tribe vocabularies, names, bios and post text.

Private helper of :mod:`tribes.synth`. Tribe words are syllable combinations
(``"kromazel"``, ``"tibou"``) drawn without replacement, so every tribe owns words that no
other tribe uses; a fixed list of plain English filler words is shared by everyone.
Everything here is vectorised per block of posts or users and draws only from the
``numpy.random.Generator`` it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ONSETS = (
    *("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"),
    *("br", "dr", "kr", "st", "tr", "sh", "ch"),
)
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "n", "r", "l", "s", "x", "m")
_SYLLABLES = tuple(o + v for o in _ONSETS for v in _VOWELS)  # 147; parsing is unambiguous
_S = len(_SYLLABLES)
_C = len(_CODAS)

#: Filler words every tribe uses; they carry no tribe signal.
GENERIC = tuple(
    """the a and to of in is it that this for with on my so just about really think new today
    anyone know love good great best how what why when here there more some time idea question
    thanks again still never always maybe first last week made found trying working looking
    reading building learning talking people folks everyone someone thread update finally nice
    cool wow honestly not sure agree take point seen favourite started going back""".split()
)
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

    def tribe_words(self, tribe: int) -> list[str]:
        """The words of one tribe."""
        return self.words[self.offsets[tribe] : self.offsets[tribe + 1]]


def make_vocabulary(rng: np.random.Generator, n_tribes: int) -> Vocabulary:
    """Give each tribe 8-15 distinct made-up words (about 30 % of two syllables)."""
    sizes = rng.integers(8, 16, n_tribes)
    need = int(sizes.sum())
    short = min(int(0.3 * need), (_C * _S**2) // 2)
    pool = _words(rng, 2, short) + _words(rng, 3, need - short + 64)
    generic = set(GENERIC)
    pool = [w for w in (pool[i] for i in rng.permutation(len(pool))) if w not in generic]
    words = pool[:need]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    tokens = np.array([*GENERIC, *words, *("#" + w for w in words), *GENERIC_TAGS], dtype=object)
    return Vocabulary(words=words, offsets=offsets, tokens=tokens)


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
    """``counts[i]`` distinct tags (plain words, no '#') from the vocabulary of ``topic[i]``."""
    word = _topic_word(rng, vocab, np.repeat(topic, counts)).tolist()
    out, at = [], 0
    for k in counts.tolist():
        out.append(list(dict.fromkeys(vocab.words[i] for i in word[at : at + k])))
        at += k
    return out


def profiles(
    rng: np.random.Generator, vocab: Vocabulary, primary: np.ndarray, secondary: np.ndarray
) -> tuple[list[str], list[str], list[list[str]]]:
    """Names, bios and interest hashtags for a block of users.

    Bios use three words of the primary tribe (about 8 % of users have an empty bio).
    Interests are 0-4 primary-tribe hashtags (15 % have none) plus one of the secondary
    tribe when the user has one.
    """
    n = len(primary)
    first = [_spell(int(c), 2).capitalize() for c in rng.integers(0, _C * _S**2, n)]
    last = [_spell(int(c), 3).capitalize() for c in rng.integers(0, _C * _S**3, n)]
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
        [["#" + w for w in dict.fromkeys(a + b)] for a, b in zip(interests, extra_tags, strict=True)],
    )
