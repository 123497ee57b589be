"""Each family's tokenizer, as bertforge saves it with a checkpoint, against the transformers
fast tokenizer class that family names: ids, token types, offsets and pairs on 1,000+ lines
(pydoc text plus the crafted and random unicode lines of test_tokenizer_parity.py). ALBERT's
Unigram tokenizer has its own, fuller comparison in test_tokenizer_unigram_parity.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import transformers
from test_tokenizer_parity import CRAFTED, chunks, random_lines

from bertforge import FAMILIES
from bertforge.tokenization import Tokenizer, train_tokenizer

NAMES = sorted(FAMILIES)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, doc_lines: list[str]) -> dict[str, Path]:
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    corpus.write_text("\n".join(doc_lines[:4000]) + "\n", encoding="utf-8")
    out = {}
    for name in NAMES:
        fam = FAMILIES[name]
        d = tmp_path_factory.mktemp(name)
        tok = train_tokenizer([corpus], fam.tokenizer, 1500, **fam.tokenizer_options)
        tok.save_pretrained(d, fam.hf.tokenizer_class)
        out[name] = d
    return out


@pytest.fixture(scope="module")
def lines(doc_lines: list[str]) -> list[str]:
    return doc_lines[::6] + CRAFTED + random_lines(300)


@pytest.mark.parametrize("name", NAMES)
def test_matches_the_family_fast_tokenizer(
    trained: dict[str, Path], lines: list[str], name: str
) -> None:
    theirs: Any = transformers.AutoTokenizer.from_pretrained(trained[name])
    # (transformers 5 aliases some, e.g. ElectraTokenizer is BertTokenizer)
    assert type(theirs) is getattr(transformers, FAMILIES[name].hf.tokenizer_class)
    ours = Tokenizer.from_pretrained(trained[name])
    assert len(lines) >= 1000
    options = {"return_offsets_mapping": True, "truncation": True, "max_length": 64}
    keys = ["input_ids", "attention_mask", "offset_mapping"]
    if "token_type_ids" in theirs.model_input_names:  # the others return none
        keys.append("token_type_ids")
    for texts in chunks(lines):
        a, b = ours(texts, **options), theirs(texts, **options)
        for key in keys:
            assert a[key] == b[key], (name, key)
    pairs_a, pairs_b = lines[::2], lines[1::2]
    for first, second in zip(chunks(pairs_a), chunks(pairs_b), strict=False):
        second = second[: len(first)]
        first = first[: len(second)]
        a, b = ours(first, second, **options), theirs(first, second, **options)
        for key in keys:
            assert a[key] == b[key], (name, key, "pairs")


def test_a_modernbert_tokenizer_json(tmp_path: Path, trained: dict[str, Path], lines) -> None:
    """ModernBERT ships one tokenizer.json: byte-level BPE with BERT's specials ([CLS] A [SEP]
    B [SEP], B typed 1) and no token types among its model inputs. Loaded as it is, it
    tokenizes as `transformers` does."""
    from tokenizers import processors

    backend = Tokenizer.from_pretrained(trained["modernbert"]).backend
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    backend.add_special_tokens(specials)
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(t, backend.token_to_id(t)) for t in ("[CLS]", "[SEP]")],
    )
    backend.save(str(tmp_path / "tokenizer.json"))
    roles = ("unk", "cls", "sep", "pad", "mask")
    config = {f"{r}_token": t for r, t in zip(roles, specials, strict=True)}
    config |= {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 8192,
               "model_input_names": ["input_ids", "attention_mask"]}  # fmt: skip
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    theirs: Any = transformers.AutoTokenizer.from_pretrained(tmp_path)
    ours = Tokenizer.from_pretrained(tmp_path)
    assert (ours.cls_token, ours.pad_token_id) == ("[CLS]", backend.token_to_id("[PAD]"))
    options = {"return_offsets_mapping": True, "truncation": True, "max_length": 64}
    for texts in chunks(lines):
        a, b = ours(texts, **options), theirs(texts, **options)
        for key in ("input_ids", "attention_mask", "offset_mapping"):
            assert a[key] == b[key], key
    first, second = lines[:200:2], lines[1:200:2]
    a, b = ours(first, second, **options), theirs(first, second, **options)
    for key in ("input_ids", "attention_mask", "offset_mapping"):
        assert a[key] == b[key], (key, "pairs")
    with_types = theirs(first, second, return_token_type_ids=True, **options)
    assert a["token_type_ids"] == with_types["token_type_ids"]
