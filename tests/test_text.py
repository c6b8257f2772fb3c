"""tribes.text: tokenization, mentions, the TF-IDF topic matrix and reading rows back."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

import tribes.text as text_module
from tribes.text import (
    _TOKEN,  # the full scan, to check the fast path against
    STOP_WORDS,
    aggregate,
    all_mentions,
    build_topic_matrix,
    mentions,
    shared_topics,
    term_specificity,
    tokenize,
    top_terms,
)

# ---------------------------------------------------------------- tokenize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Rust borrow CHECKER", ["rust", "borrow", "checker"]),
        ("see https://example.com/a?b=c and http://x.io/y.", []),
        ("docs at www.python.org/dev rock", ["docs", "rock"]),
        ("ping @u000123 and @ann.lee: compilers", ["ping", "compilers"]),
        ("mail bob.smith+x@example.co.uk today", ["mail"]),
        ("#rust is #great for compilers", ["compilers"]),
        ("fish &amp; chips &#39;tasty&#39; &quot;", ["fish", "chips", "tasty"]),
        ("<p>sourdough <a href='x'>bread</a></p><br/>", ["sourdough", "bread"]),
        ("in 2024 we had 3.14 km on 2024-05-01, 1_000 x", []),
        ("1080p 3d-printing v2 covid-19", ["1080p", "3d-printing", "covid-19"]),
        ("--dash-- _under_score_ ok__", ["dash", "under_score"]),
        ("Café naïve ÜBER 日本語 Ελληνικά", ["café", "naïve", "über", "日本語", "ελληνικά"]),
        ("don't won't it's people's", ["people"]),
        ("thanks for the question, would like an answer", []),
        ("ab abc " + "x" * 51, ["abc"]),
        # TeX math markup is not a topic: commands and environment names go, words stay.
        (r"state $\frac{1}{\sqrt{2}}(|0\rangle+|1\rangle)$ of a qubit", ["state", "qubit"]),
        (r"$$\begin{bmatrix} \alpha \\ \beta \end{bmatrix}$$ amplitudes", ["amplitudes"]),
        (r"\Psi-function and \ket{psi} kets", ["function", "psi", "kets"]),
        ("", []),
    ],
)
def test_tokenize(text, expected):
    assert tokenize(text) == expected


def test_fast_path_agrees_with_full_scan():
    rng = np.random.default_rng(9)
    alphabet = list("abcdefgh  -_'.,!?0123456789éΩ日\\{}")
    for _ in range(300):
        text = "".join(rng.choice(alphabet, 60))
        full = [
            t for t in _TOKEN.findall(text.lower()) if 3 <= len(t) <= 50 and t not in STOP_WORDS
        ]
        assert tokenize(text) == full
        assert tokenize(text + " @x") == full


def _terms_per_doc(docs: list[str]) -> list[list[str]]:
    """What ``build_topic_matrix`` reads as each doc's terms (``_text_terms``), as strings."""
    ids = text_module.DenseIds()
    flat, lengths = text_module._text_terms(docs, ids.__getitem__)
    keys = list(ids)
    assert lengths.shape == (len(docs),) and lengths.sum() == flat.size
    return [[keys[i] for i in part] for part in np.split(flat, np.cumsum(lengths)[:-1])]


def test_batched_terms_equal_tokenize_on_adversarial_text(monkeypatch):
    # Chunks with every special form, tags spanning whitespace, the batch's end marker in
    # both cases, empty docs; a small batch so that docs span several batches.
    monkeypatch.setattr(text_module, "_BATCH", 37)
    rng = np.random.default_rng(11)
    pieces = [
        *"abcdefgh  -_'.,!?0123456789éΩ日@#&<>:/;\n\t",
        "END",
        "end",
        "End",
        "http://",
        "www.",
        "<b>",
        "</p>",
        "<a href='x y'>",
        "&amp;",
        "bob@x.io",
        "ÜBER",
        "ǅ",
        "İ",
        "\\frac",
        "\\begin{bmatrix}",
        "\\end{",
        "\\",
    ]
    docs = ["".join(rng.choice(pieces, rng.integers(0, 30))) for _ in range(400)]
    docs += ["", " ", "END", "<i>kayak river", "kayak river</i> END kayak"]
    assert _terms_per_doc(docs) == [tokenize(d) for d in docs]


def test_batched_terms_equal_tokenize_on_synthetic_posts():
    from tribes.model import snapshot_from
    from tribes.synth import SynthConfig, generate

    posts = list(snapshot_from(generate(SynthConfig(n_users=300, seed=4))).post_text)
    assert len(posts) > 1000
    assert _terms_per_doc(posts) == [tokenize(p) for p in posts]


def test_tokenize_keeps_repeats_and_order():
    assert tokenize("kayak river kayak") == ["kayak", "river", "kayak"]


def test_stop_words_are_lower_case_and_long_enough():
    assert 250 <= len(STOP_WORDS) <= 450
    assert all(w == w.lower() and len(w) >= 3 for w in STOP_WORDS)
    assert {"thanks", "question", "answer", "would", "like", "the", "amp"} <= STOP_WORDS


# ---------------------------------------------------------------- mentions


def test_all_mentions_equal_mentions_per_text():
    rng = np.random.default_rng(5)
    pieces = [*"ab9_:.-+@ \x00\n", "@u1", "@Ann", "x@y.io", "@@", "@.", "@a.b-", "\x00@c"]
    texts = ["".join(rng.choice(pieces, rng.integers(0, 12))) for _ in range(500)]
    texts += ["", "@", "@u1 @u1 @U1", "no mention"]
    want = [(i, h) for i, t in enumerate(texts) for h in mentions(t)]
    assert len(want) > 300
    for batch in (7, 65_536):
        docs, handles = all_mentions(texts, batch=batch)
        assert docs.dtype == np.int64
        assert list(zip(docs.tolist(), handles, strict=True)) == want


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi @u000123, and @ann. then @u000123 again", ["u000123", "ann"]),
        ("@bob: yes @Carol! @x_y @a.b-c- @@", ["bob", "Carol", "x_y", "a.b-c"]),
        ("mail bob@example.com or @dave", ["dave"]),
        ("@host:port.example (@zed)", ["host:port.example", "zed"]),
        ("no mentions @ here", []),
    ],
)
def test_mentions(text, expected):
    assert mentions(text) == expected


# ---------------------------------------------------------------- build_topic_matrix


def _dense(m: sp.csr_matrix, vocab: np.ndarray) -> list[dict[str, float]]:
    return [{str(vocab[j]): float(v) for j, v in zip(r.indices, r.data, strict=True)} for r in m]


def test_tfidf_hand_computed():
    tags = [["rust"], ["rust"], []]
    text = ["borrow checker borrow", "borrow lifetimes rust", "checker lifetimes rust"]
    m, vocab = build_topic_matrix(tags, text, min_df=2, max_df_share=1.0, tag_weight=2.0)
    assert vocab.tolist() == ["borrow", "checker", "lifetimes", "rust"]
    assert m.dtype == np.float32 and m.shape == (3, 4) and m.has_sorted_indices
    # df: rust 3 (tag, tag + term, term), the others 2; idf = ln((1 + 3) / (1 + df)) + 1.
    i2, i3 = math.log(4 / 3) + 1, 1.0
    raw = [
        {"borrow": 2 * i2, "checker": i2, "rust": 2 * i3},  # the tag counts 2
        {"borrow": i2, "lifetimes": i2, "rust": (1 + 2) * i3},  # term + tag: one topic
        {"checker": i2, "lifetimes": i2, "rust": i3},
    ]
    for got, want in zip(_dense(m, vocab), raw, strict=True):
        norm = math.sqrt(sum(v * v for v in want.values()))
        assert got == pytest.approx({t: v / norm for t, v in want.items()}, rel=1e-6)


def test_min_df_and_max_df_share():
    tags = [["common"], ["common"], ["common"], ["common"], []]
    text = ["filler alpha", "filler alpha", "filler beta", "filler unique", "filler"]
    m, vocab = build_topic_matrix(tags, text, min_df=2, max_df_share=0.6)
    # "filler" is in 5/5 docs and never a tag: dropped; "common" (tag in 4/5) is exempt;
    # "unique" is below min_df; "alpha" (2) kept; "beta" (1) dropped.
    assert vocab.tolist() == ["alpha", "common"]
    assert m[4].nnz == 0
    m, vocab = build_topic_matrix(tags, text, min_df=3, max_df_share=1.0)
    assert vocab.tolist() == ["common", "filler"]


def test_tags_need_min_df_too():
    m, vocab = build_topic_matrix([["once"], [], []], ["", "", ""], min_df=2)
    assert vocab.size == 0 and m.shape == (3, 0)


def test_repeated_tags_count_once():
    m1, v1 = build_topic_matrix([["go", "go"], ["go"]], ["", ""], min_df=1, max_df_share=1.0)
    m2, v2 = build_topic_matrix([["go"], ["go"]], ["", ""], min_df=1, max_df_share=1.0)
    assert v1.tolist() == v2.tolist() == ["go"]
    assert (m1 != m2).nnz == 0


def test_max_terms_per_doc_keeps_the_most_salient():
    # Doc 0 has five terms; "rare" and "zeta" have the highest idf, "apple" the highest tf.
    text = ["apple apple apple pear plum rare zeta", "pear plum apple", "pear plum apple"]
    text += ["rare", "zeta", "pear plum"]
    tags = [["kept"], [], [], [], [], ["kept"]]
    m, vocab = build_topic_matrix(tags, text, max_terms_per_doc=2, min_df=1, max_df_share=1.0)
    # idf: apple (df 3) 1.56, pear/plum (df 4) 1.34, rare/zeta (df 2) 1.85.
    # tf * idf in doc 0: apple 4.68, rare 1.85, zeta 1.85, pear 1.34, plum 1.34.
    assert top_terms(m[0], vocab, 10) == ["apple", "kept", "rare"]  # tags never count
    assert top_terms(m[1], vocab, 10) == ["apple", "pear"]  # pear ties plum: alphabetical


def test_max_vocabulary_keeps_the_most_frequent_ties_alphabetical():
    text = ["aaa bbb ccc", "aaa bbb ccc", "aaa ddd", "eee"]
    m, vocab = build_topic_matrix([[]] * 4, text, min_df=1, max_df_share=1.0, max_vocabulary=2)
    assert vocab.tolist() == ["aaa", "bbb"]  # aaa (3), then bbb over ccc (both 2)
    assert m.shape == (4, 2) and m[3].nnz == 0


def test_length_exponent_weighs_docs_by_their_text_length():
    # Text terms per doc: 1, 4, 9 (median 4); the last doc has tags only.
    text = [
        "kiwi",
        "kiwi mango plum lime",
        " ".join(["kiwi"] * 5 + ["mango", "plum", "lime", "fig"]),
        "",
    ]
    tags = [[], [], [], ["kiwi"]]
    kw = {"min_df": 1, "max_df_share": 1.0}
    plain, vocab = build_topic_matrix(tags, text, **kw)
    weighted, same_vocab = build_topic_matrix(
        tags, text, np.array([1.0, 1.0, 2.0, 1.0]), length_exponent=0.5, **kw
    )
    assert same_vocab.tolist() == vocab.tolist()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    # (n / 4) ** 0.5, times doc_weight
    assert norms == pytest.approx([0.5, 1.0, 2.0 * 1.5, 1.0], rel=1e-6)
    # Each row keeps its direction: only its weight in the sums (a user's topics) changes.
    unit = weighted.multiply(1 / norms[:, None]).toarray()
    np.testing.assert_allclose(unit, plain.toarray(), rtol=1e-6)
    zero, _ = build_topic_matrix(tags, text, length_exponent=0.0, **kw)
    assert (zero != plain).nnz == 0
    with pytest.raises(ValueError, match="length_exponent"):
        build_topic_matrix(tags, text, length_exponent=-1, **kw)


def test_doc_weight_scales_normalised_rows():
    tags, text = [["x1"], ["x1"], ["x1"]], ["kiwi mango", "kiwi", "mango kiwi kiwi"]
    kw = {"min_df": 1, "max_df_share": 1.0}
    plain, _ = build_topic_matrix(tags, text, **kw)
    w = np.array([0.5, 0.0, 2.0])
    weighted, _ = build_topic_matrix(tags, text, w, **kw)
    norms = np.sqrt(np.asarray(plain.multiply(plain).sum(axis=1)).ravel())
    assert norms == pytest.approx([1, 1, 1], rel=1e-6)
    np.testing.assert_allclose(weighted.toarray(), plain.toarray() * w[:, None], rtol=1e-6)
    assert weighted[1].nnz == 0
    with pytest.raises(ValueError, match="doc_weight"):
        build_topic_matrix(tags, text, np.array([1.0, -1.0, 1.0]))


def test_deterministic_and_order_independent():
    rng = np.random.default_rng(3)
    words = [f"w{i:02d}x" for i in range(40)]
    text = [" ".join(rng.choice(words, 6)) for _ in range(200)]
    tags = [[f"t{int(i)}"] for i in rng.integers(0, 5, 200)]
    m1, v1 = build_topic_matrix(tags, text)
    m2, v2 = build_topic_matrix(tags, text)
    assert v1.tolist() == v2.tolist() == sorted(v1.tolist())
    assert np.array_equal(m1.indptr, m2.indptr) and np.array_equal(m1.indices, m2.indices)
    assert np.array_equal(m1.data, m2.data)
    perm = rng.permutation(200)
    m3, v3 = build_topic_matrix([tags[i] for i in perm], [text[i] for i in perm])
    assert v3.tolist() == v1.tolist()
    np.testing.assert_array_equal(m3.toarray(), m1.toarray()[perm])
    assert np.diff(m1.indptr).max() <= 10 + 1  # max_terms_per_doc + one tag


def test_empty_and_bad_inputs():
    m, vocab = build_topic_matrix([], [])
    assert m.shape == (0, 0) and vocab.size == 0
    with pytest.raises(ValueError, match="docs_tags"):
        build_topic_matrix([[]], ["a", "b"])
    with pytest.raises(ValueError, match="max_df_share"):
        build_topic_matrix([[]], ["a"], max_df_share=0.0)
    with pytest.raises(ValueError, match="min_df"):
        build_topic_matrix([[]], ["a"], min_df=0)
    with pytest.raises(ValueError, match="max_vocabulary"):
        build_topic_matrix([[]], ["a"], max_vocabulary=0)
    with pytest.raises(ValueError, match="tag_weight"):
        build_topic_matrix([[]], ["a"], tag_weight=-1.0)


# ---------------------------------------------------------------- aggregate and reading rows


def test_aggregate_equals_dense():
    rng = np.random.default_rng(0)
    dense = rng.random((30, 8)) * (rng.random((30, 8)) < 0.3)
    matrix = sp.csr_matrix(dense.astype(np.float32))
    rows = rng.integers(-1, 5, 30)
    weights = rng.random(30)
    assign = np.zeros((5, 30))
    assign[rows[rows >= 0], np.flatnonzero(rows >= 0)] = 1.0
    got = aggregate(rows, matrix, 5)
    assert got.shape == (5, 8) and got.dtype == np.float32 and got.has_sorted_indices
    np.testing.assert_allclose(got.toarray(), assign @ dense, rtol=1e-5)
    got = aggregate(rows, matrix, 5, weights)
    np.testing.assert_allclose(got.toarray(), (assign * weights) @ dense, rtol=1e-5)


def test_aggregate_validates():
    m = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="rows must be in"):
        aggregate(np.array([0, 1, 3]), m, 3)
    with pytest.raises(ValueError, match="rows must be"):
        aggregate(np.array([0, 1]), m, 3)
    with pytest.raises(ValueError, match="weights"):
        aggregate(np.array([0, 1, 2]), m, 3, np.ones(2))


def test_top_terms_sparse_and_dense():
    vocab = np.array(["ant", "bee", "cat", "dog"])
    row = np.array([0.2, 0.0, 0.5, 0.2])
    assert top_terms(row, vocab, 3) == ["cat", "ant", "dog"]  # tie: vocabulary order
    assert top_terms(sp.csr_matrix(row), vocab, 2) == ["cat", "ant"]
    assert top_terms(row, vocab, 10) == ["cat", "ant", "dog"]  # zeros never appear
    assert top_terms(row, vocab, 0) == []
    with pytest.raises(ValueError, match="single row"):
        top_terms(sp.csr_matrix(np.ones((2, 4))), vocab, 1)


def test_shared_topics_order():
    vocab = np.array(["ant", "bee", "cat", "dog", "eel"])
    a = np.array([0.9, 0.1, 0.4, 0.0, 0.3])
    b = np.array([0.2, 0.8, 0.4, 0.7, 0.3])
    # min(a, b): ant 0.2, bee 0.1, cat 0.4, eel 0.3; dog is only in b.
    assert shared_topics(a, b, vocab) == ["cat", "eel", "ant"]
    assert shared_topics(sp.csr_matrix(a), sp.csr_matrix(b), vocab, k=10) == [
        "cat",
        "eel",
        "ant",
        "bee",
    ]
    assert shared_topics(a, np.zeros(5), vocab) == []


def test_term_specificity_counts_users_with_topics():
    # 4 users, the last without any topic: U = 3. "ant" used by all three, "bee" by one.
    users = sp.csr_matrix(np.array([[0.5, 0.2, 0.0], [0.1, 0.0, 0.0], [0.9, 0.0, 0.0], [0, 0, 0]]))
    got = term_specificity(users)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.log([4 / 4, 4 / 2, 4 / 1]), rtol=1e-6)


def test_shared_topics_weighted_by_specificity():
    vocab = np.array(["quantum", "grover", "sorry"])
    a = np.array([0.9, 0.2, 0.0])
    b = np.array([0.8, 0.3, 0.1])
    assert shared_topics(a, b, vocab) == ["quantum", "grover"]
    # A word the whole forum uses (specificity 0) is no reason; a rarer shared one comes first.
    assert shared_topics(a, b, vocab, specificity=np.array([0.0, 2.0, 3.0])) == ["grover"]
    assert shared_topics(a, b, vocab, specificity=np.array([0.2, 2.0, 3.0])) == [
        "grover",
        "quantum",
    ]


def test_pipeline_posts_to_users_explains_a_match():
    tags = [["sourdough"], ["sourdough"], [], ["climbing"], ["climbing"]]
    text = [
        "levain hydration crumb",
        "levain starter crumb",
        "bouldering crimps",
        "bouldering crimps levain",
        "crimps",
    ]
    m, vocab = build_topic_matrix(tags, text, min_df=2, max_df_share=1.0)
    users = aggregate(np.array([0, 1, 2, 2, 2]), m, 3)
    assert shared_topics(users[0], users[1], vocab, k=2) == ["sourdough", "crumb"]
    assert top_terms(users[2], vocab, 1) == ["climbing"]
