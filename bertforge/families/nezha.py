"""NEZHA (Wei et al., 2019): BERT with functional relative positions (a fixed sinusoid over
the clipped distance, added to attention keys and values) instead of absolute ones.
transformers 5 dropped it; this is the layout of transformers 4.x's `NezhaModel`."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from bertforge.families.bert import BERT, BERT_FIELDS

NEZHA = replace(
    BERT,
    name="nezha",
    doc="NEZHA: BERT with functional relative positions (clipped at max_relative_position)",
    recipe="nezha-base",
    defaults=MappingProxyType({"position": "relative", "max_relative_position": 64}),
    hf=replace(
        BERT.hf,
        model_type="nezha",
        class_prefix="Nezha",
        base_prefix="nezha.",
        config=replace(
            BERT.hf.config,
            fields=(*BERT_FIELDS, "max_relative_position"),
            fixed=MappingProxyType({"position": "relative"}),
            expect=MappingProxyType({}),
            write=MappingProxyType({}),
        ),
        # transformers < 4.31 saved the relative table of every layer; it is not a weight.
        ignored=(*BERT.hf.ignored, "relative_positions_encoding.positions_encoding"),
        tokenizer_class="BertTokenizer",
    ),
)
