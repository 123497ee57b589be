"""Each Chinese recipe (the packaged *-zh recipes) on a tiny config: Chinese text segmented by jieba
(and a lexicon of entities for ERNIE), a few dozen steps with a falling loss, and an export
that transformers opens with the MLM logits bertforge computes (NEZHA: that bertforge
reopens, transformers 5 having no NEZHA)."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from test_objectives_pretrain import TINY as OBJECTIVES_TINY
from test_objectives_pretrain import assert_falls

from bertforge import PreTrainingModel, pretrain
from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.shards import ShardedDataset
from bertforge.errors import ConfigError
from bertforge.pretraining.recipe import load_recipe
from bertforge.tokenization import Tokenizer, train_tokenizer
from bertforge.tokenization.segmenters import Lexicon, get_segmenter

REPO = Path(__file__).resolve().parents[2]
# The objectives tests' tiny settings, with AdamW (the Chinese recipes ask for LAMB).
TINY = [*OBJECTIVES_TINY, "train.optimizer=adamw"]
# recipe -> (shard objective, transformers class of the export or None for NEZHA)
RECIPES = {
    "bert-wwm-zh": ("nsp", "BertForPreTraining"),
    "roberta-wwm-ext-zh": ("full-sentences", "BertForMaskedLM"),
    "ernie-zh": ("nsp", "BertForPreTraining"),
    "nezha-zh": ("nsp", None),
}


@pytest.fixture(scope="module")
def zh_text(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wiki = shared_data / "corpus" / "zh" / "zhwiki_AA_wiki_00.txt"
    if not wiki.is_file():
        pytest.skip(f"{wiki} not found")
    lines = [x for x in wiki.read_text(encoding="utf-8").splitlines()[:300]
             if not x.startswith(("<doc", "</doc"))]  # fmt: skip
    path = tmp_path_factory.mktemp("zh") / "zh.txt"
    path.write_text("\n\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tokenizer(zh_text: Path) -> Tokenizer:
    return train_tokenizer([zh_text], "wordpiece", 4000)


@pytest.fixture(scope="module")
def lexicon(zh_text: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Entities: the 200 most frequent pairs of adjacent jieba words (e.g. 中华人民共和国)."""
    jieba = get_segmenter("jieba")
    assert jieba is not None
    words = [w for w in jieba(zh_text.read_text(encoding="utf-8")) if len(w) > 1]
    pairs = Counter(a + b for a, b in itertools.pairwise(words))
    path = tmp_path_factory.mktemp("lexicon") / "entities.txt"
    path.write_text("\n".join(p for p, _ in pairs.most_common(200)) + "\n", encoding="utf-8")
    return path


def build(root: Path, text: Path, tok: Tokenizer, objective: str, lexicon: Path | None) -> Path:
    entities = None if lexicon is None else str(lexicon)
    cfg = BuildConfig(objective=objective, max_seq_len=64, eval_fraction=0.05,
                      segmenter="jieba", lexicon=entities)  # fmt: skip
    return build_data(tok, [text], root / "data", cfg, workers=0).directory


@pytest.mark.parametrize("name", list(RECIPES))
def test_chinese_recipe_pretrains_and_exports(
    name: str, zh_text: Path, tokenizer: Tokenizer, lexicon: Path, tmp_path: Path
) -> None:
    objective, hf_class = RECIPES[name]
    data = build(tmp_path, zh_text, tokenizer, objective, lexicon if name == "ernie-zh" else None)
    recipe = load_recipe(name, TINY)
    exported = pretrain(data, tmp_path / "run", recipe).model
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    train = [r for r in records if r["split"] == "train"]
    assert_falls(train, "mlm_loss")
    assert (tmp_path / "run" / "recipe.toml").read_text().count("mode = ") == 1
    ours = PreTrainingModel.from_pretrained(exported).eval()
    ids = Tokenizer.from_pretrained(exported)(["数学是研究数量的学科", "北京大学"], padding=True,
                                             return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        mine = ours(ids["input_ids"], ids["attention_mask"]).mlm_logits
    if hf_class is None:
        assert ours.config.model_type == "nezha"
        return
    auto = transformers.AutoModelForPreTraining if "PreTraining" in hf_class else (
        transformers.AutoModelForMaskedLM)  # fmt: skip
    theirs = auto.from_pretrained(exported).eval()
    assert type(theirs).__name__ == hf_class
    with torch.no_grad():
        out = theirs(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"])
    logits = out.prediction_logits if hasattr(out, "prediction_logits") else out.logits
    real = ids["attention_mask"].bool()
    torch.testing.assert_close(mine[real], logits[real], atol=1e-4, rtol=1e-4)


def jsonl_with_spans(text: Path, lexicon: Path, out: Path) -> Path:
    """The text as JSONL records, one per paragraph, entities given as character spans."""
    entities = Lexicon(lexicon)
    rows = [
        {"text": p, "entities": [list(span) for span in entities.find(p)]}
        for p in text.read_text(encoding="utf-8").split("\n\n")
    ]
    out.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return out


@pytest.mark.parametrize("source", ["lexicon", "jsonl spans"])
def test_ernie_units_hold_entities_whole(
    source: str, zh_text: Path, tokenizer: Tokenizer, lexicon: Path, tmp_path: Path
) -> None:
    if source == "lexicon":
        built = build(tmp_path, zh_text, tokenizer, "single", lexicon)
    else:
        records = jsonl_with_spans(zh_text, lexicon, tmp_path / "zh.jsonl")
        cfg = BuildConfig(objective="single", max_seq_len=64, eval_fraction=0.0,
                          segmenter="jieba", jsonl_entities="entities")  # fmt: skip
        built = build_data(tokenizer, [records], tmp_path / "data", cfg, workers=0).directory
    data = ShardedDataset(built)
    assert data.manifest["unit_starts"] is True
    entities = set(lexicon.read_text(encoding="utf-8").split())
    whole = 0
    for i in range(len(data)):
        inst = data[i]
        assert inst.unit_ids is not None and inst.word_ids is not None
        pieces = tokenizer.convert_ids_to_tokens(inst.tokens.tolist())
        for u in np.unique(inst.unit_ids):
            text = "".join(p for p, at in zip(pieces, inst.unit_ids, strict=True) if at == u)
            if text in entities:
                whole += 1
                # An entity is one unit but several words (the pairs of words it was made of).
                assert len(np.unique(inst.word_ids[inst.unit_ids == u])) >= 2
    assert whole > 50


def test_knowledge_masking_without_words_is_refused(
    zh_text: Path, tokenizer: Tokenizer, tmp_path: Path
) -> None:
    cfg = BuildConfig(objective="nsp", max_seq_len=64, eval_fraction=0.0)
    data = build_data(tokenizer, [zh_text], tmp_path / "plain", cfg).directory
    with pytest.raises(ConfigError, match="knowledge masking needs words"):
        pretrain(data, tmp_path / "run", load_recipe("ernie-zh", TINY))
    with pytest.raises(ConfigError, match="pass a segmenter too"):
        BuildConfig(lexicon=str(zh_text)).validate()


def test_knowledge_masking_resumes_exactly(
    zh_text: Path, tokenizer: Tokenizer, lexicon: Path, tmp_path: Path
) -> None:
    """Masks of segmented text stay a function of (seed, epoch, example): stopped at step 5
    and resumed, an ERNIE run logs the same losses, float for float."""
    data = build(tmp_path, zh_text, tokenizer, "nsp", lexicon)
    recipe = load_recipe("ernie-zh", [*TINY, "train.max_steps=10"])
    pretrain(data, tmp_path / "straight", recipe)
    assert pretrain(data, tmp_path / "split", recipe, stop_at=5).model is None
    pretrain(data, tmp_path / "split", recipe, resume=True)

    def losses(run: Path) -> list[tuple[float, ...]]:
        records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
        return [(r["step"], r["loss"], r["mlm_loss"], r["nsp_loss"]) for r in records
                if r["split"] == "train"]  # fmt: skip

    assert losses(tmp_path / "split") == losses(tmp_path / "straight")
