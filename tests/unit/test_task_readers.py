"""GLUE, user CSV/TSV/JSONL and CoNLL readers, and their model features."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bertforge.errors import ConfigError, DataError
from bertforge.tasks.formats import (
    GLUE_SPECS,
    Example,
    encode_examples,
    encode_token_examples,
    glue_spec,
    ner_labels,
    predictions_to_tags,
    read_conll,
    read_examples,
    read_glue,
)
from bertforge.tasks.formats.conll import Sentence, iob1_to_iob2
from bertforge.tokenization import Tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def tok(minilm_path: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_path)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


# ---------------------------------------------------------------- GLUE
@pytest.mark.parametrize(
    ("task", "split", "count"),
    [
        ("SST-2", "train", 67_349),
        ("SST-2", "dev", 872),
        ("MRPC", "train", 3_668),
        ("MRPC", "dev", 408),
        ("RTE", "train", 2_490),
        ("RTE", "dev", 277),
        ("STS-B", "train", 5_749),
        ("STS-B", "dev", 1_500),
    ],
)
def test_glue_real_counts(shared_data: Path, task: str, split: str, count: int) -> None:
    spec = glue_spec(task)
    examples = read_glue(spec, shared_data / "glue" / task, split)
    assert len(examples) == count
    assert all(e.text_a.strip() for e in examples)
    assert all((e.text_b is not None) == (spec.text_b is not None) for e in examples)
    if spec.is_regression:
        assert all(0.0 <= e.label <= 5.0 for e in examples)  # type: ignore[operator]
    else:
        assert {e.label for e in examples} == set(range(spec.num_labels))


def test_glue_first_rows(shared_data: Path) -> None:
    mrpc = read_glue("mrpc", shared_data / "glue" / "MRPC", "dev")[0]  # BOM-prefixed header
    assert mrpc.label == 1 and mrpc.text_b is not None and mrpc.text_b.startswith('" The food')
    rte = read_glue("rte", shared_data / "glue" / "RTE", "dev")[0]
    assert rte.text_b == "Christopher Reeve had an accident." and rte.label == 1  # not_entailment
    stsb = read_glue("sts_b", shared_data / "glue" / "STS-B", "dev")[1]
    assert stsb.label == pytest.approx(4.75) and stsb.text_a == "A young child is riding a horse."


def test_glue_registry() -> None:
    assert set(GLUE_SPECS) == {
        "CoLA",
        "SST-2",
        "MRPC",
        "QQP",
        "STS-B",
        "MNLI",
        "QNLI",
        "RTE",
        "WNLI",
    }
    assert glue_spec("cola").metrics == ("mcc",)
    assert glue_spec("qqp").metrics == ("accuracy", "f1")
    assert (
        glue_spec("stsb").metrics == ("pearson", "spearman") and glue_spec("stsb").num_labels == 1
    )
    assert glue_spec("MNLI").dev_splits == ("dev_matched", "dev_mismatched")
    assert glue_spec("mnli").files["dev_mismatched"] == "dev_mismatched.tsv"
    with pytest.raises(ConfigError, match=r"unknown GLUE task 'squad'.*CoLA"):
        glue_spec("squad")


def test_cola_without_header_and_test_with_header(tmp_path: Path) -> None:
    write(tmp_path / "train.tsv", "gj04\t1\t\tThe sailors rode.\ngj04\t0\t*\tThe rode sailors.\n")
    write(tmp_path / "test.tsv", "index\tsentence\n0\tBill whistled past the house.\n")
    train = read_glue("CoLA", tmp_path, "train")
    assert [(e.text_a, e.label) for e in train] == [
        ("The sailors rode.", 1),
        ("The rode sailors.", 0),
    ]
    assert read_glue("CoLA", tmp_path, "test") == [
        Example("Bill whistled past the house.", None, None, "test-2")
    ]


def test_mnli_matched_and_mismatched(tmp_path: Path) -> None:
    header = (
        "index\tpromptID\tpairID\tgenre\tb1\tb2\tp1\tp2\tsentence1\tsentence2\tlabel1\tgold_label\n"
    )
    row = "0\t1\t1n\tgov\tx\ty\tx\ty\tA man eats.\tSomeone eats.\tentailment\tentailment\n"
    for name in ("dev_matched.tsv", "dev_mismatched.tsv"):
        write(tmp_path / name, header + row)
    for split in ("dev_matched", "dev_mismatched"):
        (ex,) = read_glue("MNLI", tmp_path, split)
        assert (ex.text_a, ex.text_b, ex.label) == ("A man eats.", "Someone eats.", 1)
    with pytest.raises(
        ConfigError, match=r"MNLI has no split 'dev'; choose from train, dev_matched"
    ):
        read_glue("MNLI", tmp_path, "dev")


def test_glue_quotes_are_not_csv_quoting(tmp_path: Path) -> None:
    write(tmp_path / "dev.tsv", 'sentence\tlabel\n" a quoted start\t1\nplain\t0\n')
    assert [e.text_a for e in read_glue("SST-2", tmp_path, "dev")] == ['" a quoted start', "plain"]


def test_glue_missing_file_names_path_and_task(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"RTE dev file not found: expected '.*dev\.tsv'"):
        read_glue("RTE", tmp_path, "dev")


def test_glue_missing_columns_name_them_and_the_header(tmp_path: Path) -> None:
    write(tmp_path / "dev.tsv", "index\tsentence1\tlabel\n0\tHi.\tentailment\n")
    with pytest.raises(DataError, match=r"no column 'sentence2'.*header is \['index', 'sentence1'"):
        read_glue("RTE", tmp_path, "dev")


def test_glue_unknown_label_names_line_value_and_labels(tmp_path: Path) -> None:
    write(
        tmp_path / "dev.tsv",
        "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n1\tA.\tB.\tneutral\n",
    )
    with pytest.raises(
        DataError,
        match=r"dev\.tsv:3: label 'neutral' is not a RTE label; valid.*entailment, not_ent",
    ):
        read_glue("RTE", tmp_path, "dev")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"is empty"),
        ("sentence\tlabel\n", r"has a header but no rows"),
        ("sentence\tlabel\nfine\t1\nshort\n", r"dev\.tsv:3: expected at least 2 tab-separated"),
    ],
)
def test_glue_empty_and_short_files(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "dev.tsv", text)
    with pytest.raises(DataError, match=message):
        read_glue("SST-2", tmp_path, "dev")


def test_glue_pair_row_with_empty_second_text(tmp_path: Path) -> None:
    write(
        tmp_path / "train.tsv",
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA.\t \n",
    )
    with pytest.raises(DataError, match=r"train\.tsv:2: column '#2 String' is empty"):
        read_glue("MRPC", tmp_path, "train")


def test_stsb_score_must_be_a_number(tmp_path: Path) -> None:
    header = "\t".join(["i", "g", "f", "y", "o", "s1", "s2", "sentence1", "sentence2", "score"])
    write(tmp_path / "dev.tsv", header + "\n" + "\t".join(["x"] * 7 + ["A.", "B.", "high"]) + "\n")
    with pytest.raises(DataError, match=r"dev\.tsv:2: STS-B score 'high' is not a number"):
        read_glue("STS-B", tmp_path, "dev")


# ---------------------------------------------------------------- user files
def test_csv_infers_sorted_numeric_labels(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", 'text,label\n"Hello, world",10\nbye,2\nhi,2\n')
    examples, labels = read_examples(path, "text")
    assert labels == ["2", "10"]
    assert [(e.text_a, e.label) for e in examples] == [("Hello, world", 1), ("bye", 0), ("hi", 0)]


def test_dev_labels_must_be_in_train_label_set(tmp_path: Path) -> None:
    path = write(tmp_path / "dev.tsv", "text\tlabel\ngood\tpos\nmeh\tmixed\n")
    assert read_examples(path, "text", labels=["neg", "pos", "mixed"]).examples[1].label == 2
    with pytest.raises(DataError, match=r"dev\.tsv:3: label 'mixed' is not in the label set"):
        read_examples(path, "text", labels=["neg", "pos"])


def test_jsonl_pairs_and_int_labels(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.jsonl",
        '{"q": "a?", "p": "b", "y": 1}\n\n{"q": "c?", "p": "d", "y": 0}\n',
    )
    examples, labels = read_examples(path, "q", pair_column="p", label_column="y")
    assert labels == ["0", "1"]
    assert examples[1] == Example("c?", "d", 0, "d.jsonl:3")


def test_regression_labels_are_floats(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "text,score\na,0.5\nb,3\n")
    examples, labels = read_examples(path, "text", label_column="score", task="regression")
    assert labels is None and [e.label for e in examples] == [0.5, 3.0]
    write(tmp_path / "r.csv", "text,score\na,0.5\nb,n/a\n")
    with pytest.raises(DataError, match=r"r\.csv:3: label 'n/a' is not a number"):
        read_examples(path, "text", label_column="score", task="regression")


def test_user_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unsupported extension"):
        read_examples(write(tmp_path / "a.txt", "x"), "text")
    with pytest.raises(DataError, match=r"no value for column 'text'; columns found: 'sentence'"):
        read_examples(write(tmp_path / "a.csv", "sentence,label\nhi,1\n"), "text")
    with pytest.raises(DataError, match=r"b\.jsonl:1: invalid JSON"):
        read_examples(write(tmp_path / "b.jsonl", "{nope\n"), "text")
    with pytest.raises(DataError, match=r"c\.csv:2: column 'pair' is empty"):
        read_examples(write(tmp_path / "c.csv", "text,pair,label\nhi,,1\n"), "text", "pair")
    with pytest.raises(DataError, match=r"e\.csv:3: label column 'label' is empty"):
        read_examples(write(tmp_path / "e.csv", "text,label\nhi,1\nyo,\n"), "text")
    with pytest.raises(DataError, match="has no examples"):
        read_examples(write(tmp_path / "d.csv", "text,label\n"), "text")


def test_encode_examples_truncates_and_reports(
    tok: Tokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    examples = [
        Example("a short one", "and its pair", 1, "g1"),
        Example("word " * 40, "other " * 40, 0, "g2"),
    ]
    with caplog.at_level(logging.WARNING):
        features = encode_examples(tok, examples, max_length=16)
    assert set(features) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert [len(ids) for ids in features["input_ids"]] == [9, 16]  # no padding
    assert features["labels"] == [1, 0]
    assert features["token_type_ids"][1].count(1) == 8  # longest_first splits evenly
    assert "1 of 2 examples were longer than max_length=16" in caplog.text
    unlabelled = encode_examples(tok, [Example("hi", None, None, "t")], max_length=16)
    assert "labels" not in unlabelled


# ---------------------------------------------------------------- CoNLL
def test_conll_real_counts_and_iob2(shared_data: Path) -> None:
    for name, sentences, tokens in (("eng.train", 14_041, 203_621), ("eng.testa", 3_250, 51_362)):
        data = read_conll(shared_data / "conll2003" / name)
        assert len(data) == sentences and sum(len(s.words) for s in data) == tokens
        for s in data:  # IOB2: no I- tag opens an entity
            for prev, tag in zip(["O", *s.tags], s.tags, strict=False):
                assert not tag.startswith("I-") or prev[2:] == tag[2:]
    assert ner_labels(data) == [
        "O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER"
    ]  # fmt: skip
    assert data[0].words[2] == "LEICESTERSHIRE" and data[0].tags[2] == "B-ORG"


def test_iob1_to_iob2() -> None:
    tags = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG"]
    assert iob1_to_iob2(tags) == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG"]
    iob2 = ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert iob1_to_iob2(iob2) == iob2


CONLL = "-DOCSTART- -X- -X- O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\n\n"


def test_conll_schemes(tmp_path: Path) -> None:
    iob1 = write(tmp_path / "a.conll", CONLL)
    (sentence,) = read_conll(iob1)
    assert sentence == Sentence(["EU", "rejects", "German"], ["B-ORG", "O", "B-MISC"], "a.conll:3")
    assert read_conll(iob1, scheme="iob1") == [sentence]
    with pytest.raises(DataError, match=r"a\.conll:3: 'I-ORG' starts an entity.*scheme='iob1'"):
        read_conll(iob1, scheme="iob2")
    iob2 = write(tmp_path / "b.conll", "Jan B-PER\nSmit I-PER\nB I-NP B-LOC\n")
    assert read_conll(iob2)[0].tags == ["B-PER", "I-PER", "B-LOC"]


def test_conll_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"c\.conll:2: tag 'E-PER' is not O, B-TYPE or I-TYPE"):
        read_conll(write(tmp_path / "c.conll", "a O\nb E-PER\n"))
    with pytest.raises(DataError, match=r"d\.conll:1: expected 'word \.\.\. TAG'"):
        read_conll(write(tmp_path / "d.conll", "lonely\n"))
    with pytest.raises(DataError, match="holds no sentences"):
        read_conll(write(tmp_path / "e.conll", "-DOCSTART- -X- -X- O\n\n"))
    with pytest.raises(ConfigError, match="scheme 'bio'"):
        read_conll(tmp_path / "e.conll", scheme="bio")


SENTENCES = [
    Sentence(
        ["Ölschläger", "visited", "Brussels", "1996-08-30"], ["B-PER", "O", "B-LOC", "O"], "s:1"
    ),
    Sentence(["Peter", "Blackburn"], ["B-PER", "I-PER"], "s:6"),
]
LABELS = ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]


def test_token_labels_on_first_subtoken(tok: Tokenizer) -> None:
    features = encode_token_examples(tok, SENTENCES, 64, LABELS)
    # [CLS] ol ##sch ##lage ##r visited brussels 1996 - 08 - 30 [SEP]
    assert features["labels"][0] == [
        -100,
        2,
        -100,
        -100,
        -100,
        0,
        1,
        0,
        -100,
        -100,
        -100,
        -100,
        -100,
    ]
    assert features["word_index"][0] == [-1, 0, -1, -1, -1, 1, 2, 3, -1, -1, -1, -1, -1]
    all_sub = encode_token_examples(tok, SENTENCES, 64, LABELS, label_all_subtokens=True)
    assert all_sub["labels"][0] == [-100, 2, 4, 4, 4, 0, 1, 0, 0, 0, 0, 0, -100]  # B-PER -> I-PER
    assert features["example_index"] == [0, 1]


def test_truncation_warns_and_missing_words_become_o(
    tok: Tokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        features = encode_token_examples(tok, SENTENCES, 7, LABELS)
        gold = [[LABELS.index(t) for t in s.tags] for s in SENTENCES]
        rows = zip(features["example_index"], features["word_index"], strict=True)
        predictions = [[gold[s][w] if w >= 0 else 0 for w in words] for s, words in rows]
        tags = predictions_to_tags(features, predictions, SENTENCES, LABELS)
    assert "1 of 2 sentences were longer than max_length=7" in caplog.text
    assert tags == [["B-PER", "O", "O", "O"], ["B-PER", "I-PER"]]  # "Brussels" was cut off
    assert "2 words had no token in any window" in caplog.text


def test_stride_windows_round_trip_real_conll(shared_data: Path, tok: Tokenizer) -> None:
    sentences = read_conll(shared_data / "conll2003" / "eng.testa")[:400]
    labels = ner_labels(sentences)
    features = encode_token_examples(tok, sentences, 24, labels, stride=8)
    assert len(features["input_ids"]) > len(sentences)  # long sentences became windows
    assert max(len(ids) for ids in features["input_ids"]) <= 24
    oracle = [[label if label != -100 else 0 for label in row] for row in features["labels"]]
    assert predictions_to_tags(features, oracle, sentences, labels) == [s.tags for s in sentences]


def test_stride_must_leave_room_in_a_window(tok: Tokenizer) -> None:
    sentence = [Sentence(["Hi", "there"], ["O", "O"], "s:1")]
    with pytest.raises(ConfigError, match=r"stride 14 .* less than the 14 tokens .* max_length 16"):
        encode_token_examples(tok, sentence, 16, LABELS, stride=14)
    with pytest.raises(ConfigError, match="stride -1"):
        encode_token_examples(tok, sentence, 16, LABELS, stride=-1)
    assert len(encode_token_examples(tok, sentence, 16, LABELS, stride=13)["labels"]) == 1


def test_unknown_tag_names_sentence_and_word(tok: Tokenizer) -> None:
    with pytest.raises(DataError, match=r"s:1: word 1 \('visited'\) has tag 'B-ORG'"):
        encode_token_examples(tok, [Sentence(["Hi", "visited"], ["O", "B-ORG"], "s:1")], 16, LABELS)


def test_byte_level_bpe_words_align(tmp_path: Path) -> None:
    corpus = write(tmp_path / "c.txt", "Peter Blackburn went to Brussels on 1996-08-22 .\n" * 20)
    bpe = train_tokenizer([corpus], "bpe", 300, min_frequency=1)
    sentence = Sentence(
        ["Peter", "Blackburn", "went", "to", "Brussels", "on", "1996-08-22", "."],
        ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "O", "O"],
        "s:1",
    )
    features = encode_token_examples(bpe, [sentence], 64, LABELS)
    assert sorted(w for w in features["word_index"][0] if w >= 0) == list(range(8))
    oracle = [[label if label != -100 else 0 for label in features["labels"][0]]]
    assert predictions_to_tags(features, oracle, [sentence], LABELS) == [sentence.tags]
