"""Instance making (NSP, SOP, single, full-sentences) and the worker-side tokenization.

Synthetic documents encode where each token came from (id = doc * 10,000 + position), so a
test can check which document and which positions every segment holds.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from bertforge.data import workers
from bertforge.data.instances import Draft, Reservoir, SegmentMaker, SplitMaker, TokenDoc
from bertforge.tokenization import Tokenizer

MAX = 125  # seq 128 minus [CLS] [SEP] [SEP]
STRIDE = 10_000


def make_doc(doc_id: int, lengths: list[int]) -> TokenDoc:
    bounds = np.concatenate(([0], np.cumsum(lengths))).tolist()
    tokens = np.arange(bounds[-1], dtype=np.int32) + doc_id * STRIDE
    return TokenDoc(doc_id, tokens, bounds, len(lengths))


def corpus(n_docs: int, seed: int = 0) -> list[TokenDoc]:
    rng = random.Random(seed)
    return [
        make_doc(d, [rng.randint(3, 40) for _ in range(rng.randint(2, 60))]) for d in range(n_docs)
    ]


def run_pairs(
    objective: str, docs: list[TokenDoc], short: float = 0.1
) -> tuple[list, SegmentMaker]:
    maker, res, rng = SegmentMaker(objective, MAX, short), Reservoir(), random.Random(0)
    drafts = []
    for doc in docs:
        drafts += maker.document(doc, rng, res)
        res.add(doc)
    return drafts, maker


def joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


@pytest.fixture(scope="module")
def nsp() -> tuple[list[Draft], SegmentMaker, list[TokenDoc]]:
    docs = corpus(1200)
    drafts, maker = run_pairs("nsp", docs)
    return drafts, maker, docs


def test_nsp_lengths_labels_and_sources(nsp: tuple[list[Draft], SegmentMaker, list[TokenDoc]]):
    drafts, maker, _ = nsp
    assert len(drafts) > 10_000
    assert all(len(joined(d.a)) > 0 and len(joined(d.b)) > 0 for d in drafts)
    assert max(d.length for d in drafts) <= MAX
    labels = np.array([d.label for d in drafts])
    assert abs(labels.mean() - 0.5) < 0.02  # label 1 = random next (HF convention)
    for d in drafts:
        a, b = joined(d.a), joined(d.b)
        assert set(a // STRIDE) == {d.a_doc} and set(b // STRIDE) == {d.b_doc}
        if d.label == 1:
            assert d.b_doc != d.a_doc  # never a random next from the same document
        else:
            assert d.b_doc == d.a_doc and np.all(np.diff(np.concatenate([a, b])) == 1)
    # Only the first document finds the reservoir empty.
    assert 0 < maker.counts.random_next_fallbacks <= sum(d.a_doc == 0 for d in drafts)


def test_nsp_uses_every_token_once_plus_counted_extras(nsp) -> None:
    drafts, maker, docs = nsp
    c = maker.counts
    source = sum(len(d.tokens) for d in docs)
    assert sum(d.length for d in drafts) == source + c.borrowed_tokens + c.reused_tokens
    own = np.concatenate(
        [joined(d.a) for d in drafts] + [joined(d.b) for d in drafts if d.label == 0]
    )
    # Every source token appears in its own document's instances (reused ones twice).
    assert np.array_equal(np.unique(own), np.concatenate([d.tokens for d in docs]))
    assert c.reused_tokens < 0.05 * source


def test_short_seq_prob_shapes_the_length_distribution() -> None:
    docs = [make_doc(d, [10] * 2000) for d in range(30)]
    long_only, _ = run_pairs("nsp", docs, short=0.0)
    mixed, _ = run_pairs("nsp", docs, short=0.1)
    short_share = lambda ds: np.mean([d.length < 60 for d in ds])  # noqa: E731
    assert short_share(long_only) < 0.005  # document ends only
    # 10% of targets are uniform in [2, 125]: about 0.1 * 58 / 124 = 4.7% fall below 60.
    assert 0.035 < short_share(mixed) - short_share(long_only) < 0.06


def test_sop_swaps_consecutive_segments_of_one_document() -> None:
    drafts, maker = run_pairs("sop", corpus(700))
    labels = np.array([d.label for d in drafts])
    assert len(drafts) > 4000 and abs(labels.mean() - 0.5) < 0.03
    for d in drafts:
        a, b = joined(d.a), joined(d.b)
        assert d.a_doc == d.b_doc and d.length <= MAX
        first, second = (b, a) if d.label == 1 else (a, b)
        assert np.all(np.diff(np.concatenate([first, second])) == 1)
    assert maker.counts.borrowed_tokens == 0


def test_random_next_falls_back_to_is_next_without_other_documents() -> None:
    maker, rng = SegmentMaker("nsp", MAX, 0.0), random.Random(1)
    drafts = [d for _ in range(50) for d in maker.document(make_doc(0, [30] * 8), rng, Reservoir())]
    assert {d.label for d in drafts} == {0} and maker.counts.random_next_fallbacks > 10


def test_reservoir_is_bounded() -> None:
    res = Reservoir(max_docs=10, max_tokens=1000)
    for d in range(50):
        res.add(make_doc(d, [30, 30]))
    assert len(res) == 10
    for d in range(50, 60):
        res.add(make_doc(d, [300, 300]))
    assert len(res) == 1  # one big document is kept even over the token bound
    picked = {res.pick(random.Random(i)).doc_id for i in range(20)}  # type: ignore[union-attr]
    assert picked == {59}


def test_single_segments_stay_within_a_document() -> None:
    docs = corpus(100)
    drafts, _ = run_pairs("single", docs)
    assert all(d.b == [] and d.label == -1 and d.length <= MAX for d in drafts)
    stream = np.concatenate([joined(d.a) for d in drafts])
    assert np.array_equal(stream, np.concatenate([d.tokens for d in docs]))  # all, in order
    assert all(len(set(joined(d.a) // STRIDE)) == 1 for d in drafts)


def test_full_sentences_packs_across_documents_with_separators() -> None:
    sep, docs = -1, corpus(200)
    out: list[Draft] = []
    split = SplitMaker("full-sentences", 126, 0.1, 1, sep, out.append)
    for doc in docs:
        split.add(doc, random.Random(0))
    split.finish()
    assert all(d.length <= 126 and d.label == -1 and not d.b for d in out)
    packs = [joined(d.a) for d in out]
    crossing = sum(len(set(p[p != sep] // STRIDE)) > 1 for p in packs)
    assert crossing > 0.7 * len(docs)  # most document boundaries fall inside a pack
    for p in packs:  # a separator exactly where the document changes inside a pack
        ids = p[p != sep] // STRIDE
        changes = np.flatnonzero(np.diff(ids)) + 1
        assert np.sum(p == sep) == len(changes) and p[0] != sep and p[-1] != sep
    stream = np.concatenate(packs)
    assert np.array_equal(stream[stream != sep], np.concatenate([d.tokens for d in docs]))
    assert split.maker.counts.separator_tokens == np.sum(stream == sep)


def test_split_maker_skips_short_documents_and_repeats_dupes() -> None:
    out: list[Draft] = []
    split = SplitMaker("nsp", MAX, 0.0, 3, None, out.append)
    split.add(make_doc(0, [20]), random.Random(0))
    split.add(make_doc(1, [20, 20, 20]), random.Random(0))
    assert split.skipped_short_docs == 1 and split.skipped_tokens == 20
    assert split.source_tokens == 60 and {d.a_doc for d in out} == {1} and len(out) >= 3


def test_same_seed_same_instances() -> None:
    first, _ = run_pairs("nsp", corpus(50))
    again, _ = run_pairs("nsp", corpus(50))
    assert [(joined(d.a).tolist(), joined(d.b).tolist(), d.label) for d in first] == [
        (joined(d.a).tolist(), joined(d.b).tolist(), d.label) for d in again
    ]


def test_worker_cuts_long_sentences_and_matches_the_tokenizer(minilm_path: Path) -> None:
    tok = Tokenizer.from_pretrained(minilm_path)
    long = " ".join(["word"] * 150) + "."
    texts = [
        ["Tab\there, a literal [SEP] and [sep].", "Café crème. Ünïcödé 北京 x\x07y\x7f."],
        [long],
        [],
        ["Short one. Another one!"],
    ]
    workers._init_worker(workers.SentenceEncoder(tok.backend), 62, True)
    ids, pieces, doc_pieces, doc_sentences = workers.tokenize_chunk(texts)
    sentences = [s for doc in texts for p in doc for s in workers.split_sentences(p)]
    expected = [e.ids for e in tok.backend.encode_batch(sentences, add_special_tokens=False)]
    assert ids.tolist() == [i for e in expected for i in e]  # the fast path changes nothing
    assert doc_sentences.tolist() == [3, 1, 0, 2]
    assert doc_pieces.tolist() == [3, 3, 0, 2]  # 151 tokens -> 3 near-equal pieces
    assert pieces[3:6].tolist() == [51, 50, 50] and pieces.sum() == len(ids)
