"""`pretrain(init=...)` for every family: a tiny checkpoint with weights away from any fresh
initialisation, shards built with its tokenizer; 0 steps export the input's weights
unchanged (carried heads included), a few dozen steps lower the loss, and the export opens in
`transformers` as the input's class with no missing or unexpected keys (NEZHA: in bertforge,
which transformers 5 no longer ships)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from bertforge import FAMILIES, Encoder, PreTrainingModel, pretrain
from bertforge.architectures.electra import generator_config
from bertforge.data.builder import BuildConfig, build_data
from bertforge.interop.hf import tokenizer_class
from bertforge.tokenization import Tokenizer, train_tokenizer

SMALL = [
    "train.batch_size=8",
    "train.micro_batch_size=4",
    "train.precision=fp32",
    "train.eval_batches=1",
    "train.log_every=1",
    "train.warmup_steps=2",
    "train.lr=2e-3",
]
# family -> (tokenizer kind, shard objective, heads of the input checkpoint, its HF class)
CASES = {
    "bert": ("wordpiece", "full-sentences", ("mlm", "nsp"), "BertForPreTraining"),
    "bert-encoder": ("wordpiece", "full-sentences", (), "BertForMaskedLM"),
    "roberta": ("bpe", "full-sentences", ("mlm",), "RobertaForMaskedLM"),
    "albert": ("unigram", "sop", ("mlm", "nsp"), "AlbertForPreTraining"),
    "distilbert": ("wordpiece", "full-sentences", ("mlm",), "DistilBertForMaskedLM"),
    "electra": ("wordpiece", "full-sentences", ("rtd",), "ElectraForPreTraining"),
    "nezha": ("wordpiece", "nsp", ("mlm", "nsp"), None),
    "modernbert": ("bpe", "full-sentences", ("mlm",), "ModernBertForMaskedLM"),
    "deberta-v2": ("unigram", "full-sentences", ("mlm",), "DebertaV2ForMaskedLM"),
}


def perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Move every weight off its initialisation, so a load that silently fell back to a
    fresh model's weights could not pass for the checkpoint's."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def checkpoint(root: Path, family: str, heads: tuple[str, ...], tok: Tokenizer) -> Path:
    """The input: `family`'s tiny model with `heads` (ELECTRA: discriminator/ + generator/)."""
    extra = {"embedding_size": 32} if family in ("albert", "electra") else {}
    config = FAMILIES[family].config(
        "tiny", vocab_size=tok.vocab_size, pad_token_id=tok.pad_token_id,
        max_position_embeddings=66, **extra,
    )  # fmt: skip
    parts = {"": (config, heads)}
    if family == "electra":
        parts = {"discriminator": (config, heads), "generator": (generator_config(config, 0.5),
                                                                ("mlm",))}  # fmt: skip
    models = {}
    for i, (name, (cfg, part_heads)) in enumerate(parts.items()):
        torch.manual_seed(0)
        model = PreTrainingModel(cfg, heads=part_heads) if part_heads else Encoder(cfg)
        models[name] = perturbed(model, seed=i + 1)
    if family == "electra":  # trained together, the two share their embedding tables
        disc, gen = models["discriminator"].encoder, models["generator"].encoder
        for name in ("tokens", "segments", "positions", "norm"):
            getattr(gen.embeddings, name).load_state_dict(
                getattr(disc.embeddings, name).state_dict()
            )
    for name, model in models.items():
        model.save_pretrained(root / "ckpt" / name)
        tok.save_pretrained(root / "ckpt" / name, tokenizer_class(model.config, tok))
    return root / "ckpt"


def data(root: Path, corpus: Path, tok: Tokenizer, objective: str) -> Path:
    build = BuildConfig(objective=objective, max_seq_len=48, eval_fraction=0.1)
    build_data(tok, [corpus], root / "data", build, workers=0)
    return root / "data"


def same_weights(family: str, given: Path, exported: Path, all_keys: bool) -> None:
    """Every tensor of `given` is in `exported`, bit for bit (a bare encoder's sit under the
    head class's base prefix there; its pooler, which ...ForMaskedLM has not, is left out)."""
    prefix = FAMILIES[family].hf.base_prefix
    want, got = load_file(given / "model.safetensors"), load_file(exported / "model.safetensors")
    if not all_keys:
        want = {prefix + k: v for k, v in want.items() if not k.startswith("pooler.")}
    assert set(want) <= set(got)
    if all_keys:
        assert set(want) == set(got)
    for key, tensor in want.items():
        assert torch.equal(got[key], tensor), key


def train_losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    return [r["loss"] for r in records if r["split"] == "train"]


@pytest.mark.parametrize("case", list(CASES))
def test_continues_from_a_checkpoint(tmp_path: Path, corpus: Path, case: str) -> None:
    family = case.removesuffix("-encoder")
    kind, objective, heads, hf_class = CASES[case]
    tok = train_tokenizer([corpus], kind, 600)
    ckpt = checkpoint(tmp_path, family, heads, tok)
    shards = data(tmp_path, corpus, tok, objective)
    init = ckpt / "discriminator" if family == "electra" else ckpt
    generator = ckpt / "generator" if family == "electra" else None
    sets = [*SMALL, "generator.size=0.5"] if family == "electra" else SMALL

    start = pretrain(shards, tmp_path / "run0", init=init, init_generator=generator,
                     max_steps=0, overrides=sets)  # fmt: skip
    parts = start.started["parts"]
    assert all("encoder" in p["loaded"] for p in parts.values()), parts
    if family == "electra":
        assert parts["generator"]["loaded"] == ["encoder", "mlm"] and not parts["generator"]["new"]
        assert parts["discriminator"]["loaded"] == ["encoder", "rtd"]
    else:
        assert parts["model"]["loaded"] == sorted({"encoder", *heads})
        assert parts["model"]["new"] == ([] if heads else ["mlm"])  # a bare encoder: a new head
        # MLM-only shards keep NSP as it was; ALBERT's SOP shards train it; NEZHA's NSP ones too
        carried = ["nsp"] if "nsp" in heads and objective == "full-sentences" else []
        assert start.started["carried"] == carried
    if family == "electra":
        for part in ("discriminator", "generator"):
            same_weights(family, ckpt / part, start.model / part, all_keys=True)
    else:
        same_weights(family, ckpt, start.model, all_keys=bool(heads))

    run = pretrain(shards, tmp_path / "run", init=init, init_generator=generator,
                   max_steps=30, overrides=sets)  # fmt: skip
    losses = train_losses(run.run_dir)
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, losses
    exported = run.model / "discriminator" if family == "electra" else run.model
    if hf_class is None:
        assert PreTrainingModel.from_pretrained(exported).heads == frozenset(heads)
        return
    auto = (transformers.AutoModelForPreTraining if hf_class.endswith("PreTraining")
            else transformers.AutoModelForMaskedLM)  # fmt: skip
    hf, info = auto.from_pretrained(exported, output_loading_info=True)
    assert type(hf).__name__ == hf_class
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_a_continued_run_resumes_exactly(tmp_path: Path, corpus: Path) -> None:
    """Stopped at step 3 and resumed, a run from a BertForPreTraining (its NSP head carried)
    ends with the weights of one that never stopped."""
    tok = train_tokenizer([corpus], "wordpiece", 600)
    ckpt = checkpoint(tmp_path, "bert", ("mlm", "nsp"), tok)
    shards = data(tmp_path, corpus, tok, "full-sentences")
    sets = [*SMALL, "model.hidden_dropout_prob=0", "model.attention_probs_dropout_prob=0"]
    whole = pretrain(shards, tmp_path / "whole", init=ckpt, max_steps=6, overrides=sets)
    pretrain(shards, tmp_path / "split", init=ckpt, max_steps=6, overrides=sets, stop_at=3)
    resumed = pretrain(shards, tmp_path / "split", resume=True)
    assert resumed.step == 6
    a = load_file(whole.model / "model.safetensors")
    b = load_file(resumed.model / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    given = load_file(ckpt / "model.safetensors")
    assert torch.equal(a["cls.seq_relationship.weight"], given["cls.seq_relationship.weight"])
