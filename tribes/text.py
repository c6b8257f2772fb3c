"""Topics from posts: tags plus the salient words of the text, as a TF-IDF matrix.

Real data often carries few hashtags, so a post's topics are its tags *and* its most salient
text terms. :func:`build_topic_matrix` turns ``D`` posts into a ``(D, V)`` sparse matrix over
one vocabulary (a string used as a tag and as a word is one topic); :func:`aggregate` sums
post rows into user or thread rows; :func:`top_terms` and :func:`shared_topics` read rows back
as strings for explanations. Everything is a pure function of its arguments.

Examples
--------
>>> tokenize("Loving the new #rust borrow checker! https://x.io @bob thanks")
['loving', 'borrow', 'checker']
>>> mentions("cc @u000123, @ann.")
['u000123', 'ann']
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from itertools import chain

import numpy as np
import scipy.sparse as sp

__all__ = [
    "STOP_WORDS",
    "DenseIds",
    "aggregate",
    "all_mentions",
    "build_topic_matrix",
    "mentions",
    "shared_topics",
    "term_specificity",
    "tokenize",
    "top_terms",
]

_STOP_TEXT = """
    about above across after afterwards again against ain all almost alone along already also
    although always among amongst and another any anyhow anyone anything anyway anywhere are
    aren around became because become becomes been before beforehand behind being below beside
    besides between beyond both but can cannot cant could couldn did didn does doesn doing don
    done down due during each either else elsewhere enough etc even ever every everyone
    everything everywhere except few fewer for former formerly from further furthermore had hadn
    has hasn have haven having hence her here hereafter hereby herein hers herself him himself
    his how however hundred inc indeed instead into isn its itself just last later latter least
    less many may meanwhile might mine more moreover most mostly much must mustn myself namely
    needn neither never nevertheless next nobody none noone nor not nothing now nowhere off often
    once one only onto other others otherwise our ours ourselves out over own per perhaps please
    quite rather same seem seemed seeming seems several shan she should shouldn since some
    somehow someone something sometime sometimes somewhere still such than that the their theirs
    them themselves then thence there thereafter thereby therefore therein thereupon these they
    this those though three through throughout thru thus together too toward towards two under
    until upon very via was wasn were weren what whatever when whence whenever where whereafter
    whereas whereby wherein whereupon wherever whether which while whither who whoever whole whom
    whose why will with within without won would wouldn yet you your yours yourself yourselves
    able actually agree answer answered answers anybody ask asked asking back bad best better bit
    came come comes coming day days did doesnt dont edit edited feel felt find finally first folks
    found get gets getting give given going gone good got great guess guys hello help hey hope
    honestly idea ive just kind know knew let lets like liked likes lol look looked looking looks
    lot lots love made make makes making maybe mean means need needs new nice okay point post
    posted posts question questions really right said say says see seen sure take thank thanks
    thats thing things think thought thread time today tried try trying update use used using
    want wanted wants way week well went wow yeah yep yes youre favourite favorite started
    talking working thx omg lmao
    amp apos quot nbsp http https www com org net html
"""
#: English stop words and generic chat words never used as topics (tokens of 3+ letters only).
STOP_WORDS = frozenset(_STOP_TEXT.split())

_MIN_LEN, _MAX_LEN = 3, 50  # longer "words" are hashes, base64 or run-on scripts: noise
# One scan finds everything; only the last alternative (a word) is captured, the others are
# matched so that their letters are skipped. Order matters: URLs and e-mails before words.
_NUMBER = r"\d[\d_-]*(?![\w-])"  # pure numbers (also 2024-05-01, 1_000)
_WORD = r"([^\W_](?:[\w-]*[^\W_])?)"  # a word: letters/digits, inner '-' and '_'
_TOKEN = re.compile(
    r"(?:https?://|www\.)\S+"  # URLs
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses
    r"|@[\w:.-]+"  # @mentions
    r"|#\w[\w-]*"  # #hashtags: tags come separately
    r"|&#?\w+;"  # HTML entities
    r"|</?[a-z][a-z0-9]*(?:\s[^<>]*)?/?>"  # HTML tags
    r"|\\(?:begin|end)\{[^{}\s]*\}"  # TeX environments: \begin{bmatrix}
    r"|\\[a-z]+"  # TeX commands: \frac, \rangle, \alpha (math markup, not topics)
    rf"|{_NUMBER}|{_WORD}"
)
_PLAIN = re.compile(f"{_NUMBER}|{_WORD}")  # for text without any of "@#&<\\", "://", "www."
_MENTION = re.compile(r"(?<![\w@.+-])@([A-Za-z0-9_:.-]+)")


def tokenize(text: str) -> list[str]:
    """Lower-case topic words of ``text``, in order, repeats kept.

    Words are runs of unicode letters and digits (with inner ``-`` and ``_``) of 3 to 50
    characters that contain a letter; URLs, e-mail addresses, @mentions, #hashtags, HTML
    entities and tags, TeX commands (``\\frac``, ``\\begin{bmatrix}``) and :data:`STOP_WORDS`
    are dropped. Apostrophes split words (``"don't"`` → ``"don"``, a stop word). O(len(text)).
    """
    low = text.lower()
    # Most posts have none of the characters the skipped forms need: scan them 30% faster.
    special = (
        "@" in low
        or "#" in low
        or "&" in low
        or "<" in low
        or "\\" in low
        or "://" in low
        or "www." in low
    )
    found = (_TOKEN if special else _PLAIN).findall(low)
    return [t for t in found if _MIN_LEN <= len(t) <= _MAX_LEN and t not in STOP_WORDS]


def mentions(text: str) -> list[str]:
    """The distinct @handles of ``text`` in order of appearance, case kept.

    Handle characters are ``[A-Za-z0-9_:.-]``; trailing ``.``, ``:`` and ``-`` are punctuation.
    E-mail addresses (``bob@example.com``) are not mentions.
    """
    seen: dict[str, None] = {}
    for match in _MENTION.finditer(text):
        handle = match.group(1).rstrip(".:-")
        if handle:
            seen.setdefault(handle, None)
    return list(seen)


_MENTION_OR_BREAK = re.compile("\x00|" + _MENTION.pattern)  # findall gives "" at a NUL


def all_mentions(texts: Sequence[str], batch: int = 65_536) -> tuple[np.ndarray, list[str]]:
    """Every :func:`mentions` of every text: ``(text index int64, handle)`` in text order.

    The texts holding an ``@`` are joined by NUL (neither a handle character nor one that
    may precede an ``@``, so each text's mentions are unchanged; a NUL inside a text is read
    as a space, which matches the same) and scanned by one regular expression per batch.
    O(total characters of those texts).
    """
    docs = [i for i, t in enumerate(texts) if "@" in t]
    doc_of, handles = array("q"), []
    for start in range(0, len(docs), batch):
        part = docs[start : start + batch]
        joined = "\x00".join(
            texts[i] if "\x00" not in texts[i] else texts[i].replace("\x00", " ") for i in part
        )
        k, seen = 0, set()
        for found in _MENTION_OR_BREAK.findall(joined):
            if not found:  # the break before the next text
                k += 1
                seen.clear()
                continue
            handle = found.rstrip(".:-")
            if handle and handle not in seen:
                seen.add(handle)
                doc_of.append(part[k])
                handles.append(handle)
    return np.frombuffer(doc_of, dtype=np.int64).copy(), handles


class DenseIds(dict):
    """String → dense id in order of first appearance; ``ids[s]`` gives an unseen string the
    next id (``len`` so far)."""

    def __missing__(self, key: str) -> int:
        self[key] = n = len(self)
        return n


class _Chunks(DenseIds):
    """Whitespace-separated chunk → dense id, remembering the chunks in id order (a list, so
    the chunks added since a position are a slice, not a copy of every key)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys_in_order: list[str] = []

    def __missing__(self, key: str) -> int:
        self.keys_in_order.append(key)
        return super().__missing__(key)


_END = "END"  # ends each doc in a batch: upper case, so never a chunk of lower-cased text
_BATCH = 16_384  # docs per batch: bounds the chunk list held at once


def _chunk_terms(chunk: str) -> list[str]:
    """:func:`tokenize` of one whitespace-free piece of lower-case text."""
    found = [chunk] if chunk.isalpha() else _TOKEN.findall(chunk)  # a plain word is one token
    return [t for t in found if _MIN_LEN <= len(t) <= _MAX_LEN and t not in STOP_WORDS]


def _text_terms(docs_text: Sequence[str], lookup) -> tuple[np.ndarray, np.ndarray]:
    """Every doc's :func:`tokenize` terms as ids from ``lookup``: ``(ids int32, lengths int64)``.

    No token pattern but an HTML tag spans whitespace, so the tokens of a text are the tokens
    of its whitespace-separated chunks, in order; the regular expression runs once per
    *distinct* chunk and each doc is a run of chunk ids expanded with numpy. A text with a
    ``<`` (a possible tag) goes through :func:`tokenize` and stands for its tokens, which
    tokenize to themselves. O(total characters) with the per-token work in C.
    """
    chunks = _Chunks()
    chunk_id = chunks.__getitem__
    end = chunk_id(_END)
    ptr, out = array("q", [0, 0]), array("i")  # chunk c's term ids: out[ptr[c]:ptr[c + 1]]
    ids, lengths = [], []
    for start in range(0, len(docs_text), _BATCH):
        low = [t.lower() for t in docs_text[start : start + _BATCH]]
        for i, t in enumerate(low):
            if "<" in t:
                low[i] = " ".join(tokenize(t))
        pieces = f" {_END} ".join(low).split()
        pieces.append(_END)
        c = np.fromiter(map(chunk_id, pieces), dtype=np.int32, count=len(pieces))
        del pieces
        for chunk in chunks.keys_in_order[len(ptr) - 1 :]:
            out.extend(map(lookup, _chunk_terms(chunk)))
            ptr.append(len(out))
        first = np.array(ptr, dtype=np.int64)  # copies: ptr and out grow in the next batch
        count = np.diff(first)[c]
        ends = np.cumsum(count)
        offset = np.repeat(first[c] - (ends - count), count)  # term k is out[offset[k] + k]
        ids.append(np.array(out, dtype=np.int32)[offset + np.arange(int(ends[-1]))])
        lengths.append(np.diff(np.r_[0, ends[c == end]]))
    if not ids:
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    return np.concatenate(ids), np.concatenate(lengths).astype(np.int64)


def _csr_counts(lengths: np.ndarray, idx: np.ndarray, n_docs: int, n_ids: int) -> sp.csr_matrix:
    """Per-doc id lists (flattened, with ``lengths``) → ``(n_docs, n_ids)`` int32 counts."""
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    m = sp.csr_matrix((np.ones(idx.size, np.int32), idx, indptr), shape=(n_docs, n_ids))
    m.sum_duplicates()
    return m


def _choose_vocabulary(df, tag_df, keys, n_docs, min_df, max_df_share, max_vocabulary):
    """Raw ids of the kept topics, ordered by their string (the vocabulary order)."""
    keep = (df >= min_df) & ((df <= max_df_share * n_docs) | (tag_df >= min_df))
    cand = np.flatnonzero(keep)
    if cand.size > max_vocabulary:  # the most frequent; ties by string
        cdf = df[cand]
        cut = np.partition(cdf, cand.size - max_vocabulary)[cand.size - max_vocabulary]
        above = cand[cdf > cut]
        tied = sorted(cand[cdf == cut].tolist(), key=keys.__getitem__)
        cand = np.concatenate([above, tied[: max_vocabulary - above.size]]).astype(np.int64)
    return np.array(sorted(cand.tolist(), key=keys.__getitem__), dtype=np.int64)


def _top_per_row(rows: np.ndarray, score: np.ndarray, cols: np.ndarray, k: int) -> np.ndarray:
    """Mask of the entries that are among their row's ``k`` best (score desc, column asc)."""
    keep = np.ones(rows.size, dtype=bool)
    counts = np.bincount(rows)
    long = np.flatnonzero(counts[rows] > k)
    if long.size:
        order = long[np.lexsort((cols[long], -score[long], rows[long]))]
        r = rows[order]
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        rank = np.arange(r.size) - np.repeat(starts, np.diff(np.r_[starts, r.size]))
        keep[order[rank >= k]] = False
    return keep


def build_topic_matrix(
    docs_tags: Sequence[Sequence[str]],
    docs_text: Sequence[str],
    doc_weight: np.ndarray | None = None,
    *,
    tag_weight: float = 2.0,
    max_terms_per_doc: int = 10,
    min_df: int = 2,
    max_df_share: float = 0.3,
    max_vocabulary: int = 50_000,
    length_exponent: float = 0.0,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """TF-IDF topic matrix of ``D`` docs: their tags plus their most salient text terms.

    Parameters
    ----------
    docs_tags : D sequences of normalised tags (lower-case, no ``#``); repeats count once.
    docs_text : D strings, tokenized with :func:`tokenize`.
    doc_weight : (D,) non-negative float, optional
        Row multiplier applied *after* L2 normalisation (e.g. time decay).
    tag_weight : term frequency credited to each tag of a doc.
    max_terms_per_doc : a doc keeps its text terms with the highest ``tf * idf`` (ties:
        alphabetical); tags are always kept and do not count towards this limit.
    min_df : a topic must occur (as tag or term) in at least this many docs.
    max_df_share : a topic in more than ``max_df_share * D`` docs is dropped, unless it is
        used as a *tag* in at least ``min_df`` docs (people chose it as a label: keep it; its
        idf is low anyway). Frequent words that are never tags are noise and go.
    max_vocabulary : keep at most this many topics, the highest document frequency first
        (ties alphabetical).
    length_exponent : a doc with text is also weighed ``(n / median n) ** length_exponent``,
        ``n`` its text terms (after stop words) and the median over docs with text: a long
        answer says more about its author than a one-line comment. 0 (the default): every
        doc alike. Docs without text (tags or interests only) keep 1.

    Returns
    -------
    matrix : (D, V) float32 CSR, sorted indices
        ``w[d, t] = (tf[d, t] + tag_weight * is_tag[d, t]) * idf[t]``, rows L2-normalised,
        then times ``doc_weight`` and the length weight; ``tf`` counts the term in the text if it is one of the
        doc's salient terms (else 0), ``idf = ln((1 + D) / (1 + df)) + 1`` with ``df`` the
        number of docs with the topic as tag or term. Docs without topics are empty rows.
    vocabulary : (V,) ``str`` array, sorted; column ``j`` is topic ``vocabulary[j]``.

    Notes
    -----
    One pass tokenizes and interns every string with a dict into flat ``array`` buffers; the
    rest is vectorised (CSR sums, one sort of the entries of docs with more than
    ``max_terms_per_doc`` terms). Time O(total characters + N log N) for N (doc, term)
    entries; memory about 12 bytes per token plus the dict of distinct strings.

    Examples
    --------
    >>> m, vocab = build_topic_matrix([["rust"], ["rust"], []],
    ...     ["borrow checker", "borrow rules", "checker game"], min_df=2, max_df_share=1.0)
    >>> vocab.tolist()
    ['borrow', 'checker', 'rust']
    >>> m.shape, m.dtype
    ((3, 3), dtype('float32'))
    """
    n_docs = len(docs_text)
    if len(docs_tags) != n_docs:
        raise ValueError(f"docs_tags has {len(docs_tags)} docs but docs_text has {n_docs}")
    for name, value, low in (
        ("tag_weight", tag_weight, 0),
        ("max_terms_per_doc", max_terms_per_doc, 0),
        ("min_df", min_df, 1),
        ("max_vocabulary", max_vocabulary, 1),
    ):
        if not value >= low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if not length_exponent >= 0:
        raise ValueError(f"length_exponent must be >= 0, got {length_exponent}")
    if not 0.0 < max_df_share <= 1.0:
        raise ValueError(f"max_df_share must be in (0, 1], got {max_df_share}")
    if doc_weight is not None:
        doc_weight = np.asarray(doc_weight, dtype=np.float64)
        if doc_weight.shape != (n_docs,) or not np.all(np.isfinite(doc_weight) & (doc_weight >= 0)):
            raise ValueError(f"doc_weight must be ({n_docs},) finite and >= 0")

    ids = DenseIds()
    lookup = ids.__getitem__
    term_ids, term_len = _text_terms(docs_text, lookup)
    tag_len = np.fromiter(map(len, docs_tags), dtype=np.int64, count=n_docs)
    tag_ids = np.fromiter(
        map(lookup, chain.from_iterable(docs_tags)), dtype=np.int32, count=int(tag_len.sum())
    )
    keys = list(ids)
    del ids, lookup

    tf = _csr_counts(term_len, term_ids, n_docs, len(keys))
    is_tag = _csr_counts(tag_len, tag_ids, n_docs, len(keys))
    del term_ids, tag_ids
    is_tag.data[:] = 1
    df = np.bincount((tf + is_tag).indices, minlength=len(keys))
    tag_df = np.bincount(is_tag.indices, minlength=len(keys))
    raw = _choose_vocabulary(df, tag_df, keys, n_docs, min_df, max_df_share, max_vocabulary)
    vocabulary = np.array([keys[i] for i in raw.tolist()], dtype=str)
    idf = np.log((1.0 + n_docs) / (1.0 + df[raw])) + 1.0
    tf, is_tag = tf[:, raw], is_tag[:, raw]  # O(nnz); columns now in vocabulary order
    rows = np.repeat(np.arange(n_docs, dtype=np.int32), np.diff(tf.indptr))
    best = _top_per_row(rows, tf.data * idf[tf.indices], tf.indices, max_terms_per_doc)
    tf.data[~best] = 0
    tf.eliminate_zeros()
    out = tf.astype(np.float64) + tag_weight * is_tag  # a tag and a term: one topic
    out.sort_indices()
    out.data *= idf[out.indices]
    rows = np.repeat(np.arange(n_docs, dtype=np.int32), np.diff(out.indptr))
    norms = np.sqrt(np.bincount(rows, weights=out.data**2, minlength=n_docs))
    scale = np.divide(1.0, norms, out=np.zeros(n_docs), where=norms > 0)
    if doc_weight is not None:
        scale *= doc_weight
    if length_exponent and (term_len > 0).any():
        has_text = term_len > 0
        median = float(np.median(term_len[has_text]))
        scale[has_text] *= (term_len[has_text] / median) ** length_exponent
    out.data *= scale[rows]
    out.eliminate_zeros()  # rows whose doc_weight is 0
    return out.astype(np.float32), vocabulary


def aggregate(
    rows: np.ndarray,
    matrix: sp.csr_matrix,
    n_rows: int,
    weights: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Sum doc rows into owner rows: ``S @ matrix`` with ``S[rows[d], d] = weights[d]`` (or 1).

    Parameters
    ----------
    rows : (D,) int, the owner of each doc (e.g. ``post_author``); ``-1`` means no owner and
        the doc is skipped.
    matrix : (D, V) sparse.
    n_rows : number of owners.
    weights : (D,) float, optional per-doc multiplier.

    Returns
    -------
    (n_rows, V) CSR of ``matrix.dtype``, sorted indices. O(nnz(matrix)).
    """
    matrix = sp.csr_matrix(matrix)
    n_docs = matrix.shape[0]
    rows = np.asarray(rows)
    if rows.shape != (n_docs,) or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"rows must be ({n_docs},) integers, got {rows.shape} {rows.dtype}")
    if rows.size and (rows.max() >= n_rows or rows.min() < -1):
        raise ValueError(f"rows must be in [-1, {n_rows}); got [{rows.min()}, {rows.max()}]")
    data = np.ones(n_docs, dtype=matrix.dtype)
    if weights is not None:
        weights = np.asarray(weights)
        if weights.shape != (n_docs,):
            raise ValueError(f"weights must be ({n_docs},), got {weights.shape}")
        data = weights.astype(matrix.dtype)
    docs = np.flatnonzero(rows >= 0)
    assign = sp.csr_matrix((data[docs], (rows[docs], docs)), shape=(n_rows, n_docs))
    out = sp.csr_matrix(assign @ matrix)
    out.sort_indices()
    out.eliminate_zeros()
    return out


def _row_items(row: sp.spmatrix | sp.sparray | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column indices, values) of the positive entries of one row, indices ascending."""
    if sp.issparse(row):
        m = sp.csr_matrix(row)
        if m.shape[0] != 1:
            raise ValueError(f"expected a single row, got shape {m.shape}")
        m.sum_duplicates()
        idx, val = m.indices.astype(np.int64), m.data
    else:
        val = np.asarray(row).ravel()
        idx = np.arange(val.size)
    pos = val > 0
    return idx[pos], val[pos]


def top_terms(
    matrix_row: sp.spmatrix | sp.sparray | np.ndarray, vocabulary: np.ndarray, k: int
) -> list[str]:
    """The ``k`` topics of a ``(1, V)`` or ``(V,)`` row with the largest positive weight.

    Ties are broken by vocabulary order. O(nnz log nnz).
    """
    idx, val = _row_items(matrix_row)
    order = np.lexsort((idx, -val))[: max(k, 0)]
    return [str(s) for s in vocabulary[idx[order]]]


def term_specificity(user_topic: sp.spmatrix | sp.sparray) -> np.ndarray:
    """(V,) float32 ``ln((1 + U) / (1 + df))``: ``U`` the users with any topic, ``df`` those
    who weigh the term.

    A word nearly everyone uses (``quantum`` on a quantum-computing forum) says little about
    why two people match; a reason weighs shared topics by this. O(nnz + V)."""
    m = sp.csr_matrix(user_topic, copy=True)
    m.eliminate_zeros()
    m.data[m.data < 0] = 0
    m.eliminate_zeros()
    n_users = int(np.count_nonzero(np.diff(m.indptr)))
    df = np.bincount(m.indices, minlength=m.shape[1])
    return np.log((1.0 + n_users) / (1.0 + df)).astype(np.float32)


def shared_topics(
    a_row: sp.spmatrix | sp.sparray | np.ndarray,
    b_row: sp.spmatrix | sp.sparray | np.ndarray,
    vocabulary: np.ndarray,
    k: int = 3,
    specificity: np.ndarray | None = None,
) -> list[str]:
    """Up to ``k`` topics both rows weigh (> 0), by ``min(a, b)`` (times ``specificity``, a
    ``(V,)`` weight such as :func:`term_specificity`, when given) descending.

    Ties are broken by vocabulary order; use it to explain a match ("you both talk about
    ..."). O(nnz log nnz).
    """
    ia, va = _row_items(a_row)
    ib, vb = _row_items(b_row)
    common, pa, pb = np.intersect1d(ia, ib, assume_unique=True, return_indices=True)
    both = np.minimum(va[pa], vb[pb])
    if specificity is not None:
        both = both * np.asarray(specificity)[common]
    keep = both > 0
    common, both = common[keep], both[keep]
    order = np.lexsort((common, -both))[: max(k, 0)]
    return [str(s) for s in vocabulary[common[order]]]
