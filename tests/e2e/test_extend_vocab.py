"""`extend_vocab` for WordPiece (BERT), byte-level BPE (RoBERTa) and SentencePiece Unigram
(ALBERT): the domain's fragmented words become one token each, in bertforge and in
`transformers`; old tokens keep their ids; each new row is the mean of its old pieces'; the
model loads in `transformers` with no missing or unexpected keys; and before any training its
outputs on text without the new words are those of the original."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from cli_errors import one_line_error
from tiny import save_mlm_checkpoint
from torch.testing import assert_close
from typer.testing import CliRunner

from bertforge import PreTrainingModel, Tokenizer, extend_vocab
from bertforge.cli.main import app
from bertforge.tokenization import train_tokenizer

CASES = {"bert": "wordpiece", "roberta": "bpe", "albert": "unigram"}
DOMAIN_WORDS = ["thrombocytopenia", "hepatosplenomegaly", "cholangiocarcinoma", "angiogenesis"]
PLAIN = ["the function returns a value", "an exception is raised when the loop ends"]


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("domain") / "domain.txt"
    # Every other word is whole in the base vocabulary, each domain word 20 times.
    lines = [f"the {w} is in the {w} and {w} is a {w}" for w in DOMAIN_WORDS]
    path.write_text("\n".join(lines * 5) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("family", list(CASES))
def test_domain_words_become_tokens(
    tmp_path: Path, corpus: Path, domain: Path, family: str
) -> None:
    tok = train_tokenizer([corpus], CASES[family], 600)
    ckpt = save_mlm_checkpoint(family, tok, tmp_path / "ckpt")
    result = extend_vocab(ckpt, [domain], 4, tmp_path / "out")
    added = [w.token.lstrip("Ġ▁") for w in result.added]
    assert sorted(added) == sorted(DOMAIN_WORDS)  # the only words cut
    assert result.tokens_per_word_after < result.tokens_per_word_before
    assert result.changed_words == 0

    new_tok = Tokenizer.from_pretrained(tmp_path / "out")
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    old_vocab, new_vocab = tok.get_vocab(), new_tok.get_vocab()
    assert all(new_vocab[t] == i for t, i in old_vocab.items())  # old ids kept
    assert new_tok.vocab_size == tok.vocab_size + 4
    for word in DOMAIN_WORDS:
        text = f"in the {word} is a"
        ours = new_tok.encode(text, add_special_tokens=False)
        assert len(ours) == len(text.split()), (word, new_tok.tokenize(text))
        assert hf_tok(text, add_special_tokens=False)["input_ids"] == ours
    for text in PLAIN:  # text without new words: the same ids as before
        assert new_tok.encode(text) == tok.encode(text)
        assert hf_tok(text)["input_ids"] == tok.encode(text)

    before = PreTrainingModel.from_pretrained(ckpt)
    after = PreTrainingModel.from_pretrained(tmp_path / "out")
    hf, info = transformers.AutoModelForMaskedLM.from_pretrained(
        tmp_path / "out", output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    table = after.encoder.embeddings.tokens.weight
    old_table = before.encoder.embeddings.tokens.weight
    for w in result.added:
        row = new_vocab[w.token]
        assert_close(table[row], old_table[list(w.pieces)].mean(0))
        assert_close(after.mlm.bias[row], before.mlm.bias[list(w.pieces)].mean(0))
    batch = tok(PLAIN, padding=True, return_tensors="pt")
    mask = batch["attention_mask"].bool()
    v = tok.vocab_size
    with torch.no_grad():
        want = before(batch["input_ids"], batch["attention_mask"]).mlm_logits[mask]
        got = after(batch["input_ids"], batch["attention_mask"]).mlm_logits[mask][:, :v]
        theirs = hf.eval()(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits
    assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert_close(theirs[mask][:, :v], want, atol=1e-5, rtol=1e-5)
    report = json.loads((tmp_path / "out" / "extend_vocab.json").read_text())
    assert report["added"] == 4 and report["tokens_per_word"]["after"] < 1.5


def test_cli_extends_and_reports(tmp_path: Path, corpus: Path, domain: Path) -> None:
    ckpt = save_mlm_checkpoint("bert", train_tokenizer([corpus], "wordpiece", 600),
                               tmp_path / "ckpt")  # fmt: skip
    result = CliRunner().invoke(
        app,
        [
            "extend-vocab",
            "--model",
            str(ckpt),
            "--input",
            str(domain),
            "--add",
            "2",
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "added 2 tokens" in result.output and "tokens per word" in result.output
    assert "--add 0" in one_line_error("extend-vocab", "--model", ckpt, "-i", domain,
                                       "--add", "0", "-o", tmp_path / "zero")  # fmt: skip
    bare = tmp_path / "no-tokenizer"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((ckpt / name).read_bytes())
    line = one_line_error("extend-vocab", "--model", bare, "-i", domain, "--add", "2",
                          "-o", tmp_path / "x")  # fmt: skip
    assert "holds no tokenizer" in line and "vocab.txt" in line
