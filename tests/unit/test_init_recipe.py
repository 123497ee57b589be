"""A continued run's recipe holds its checkpoint's architecture (`preset = "init"`, the whole
config as [model]) and rebuilds it exactly after a TOML round trip, for every family and for
the fields that may be unset (no factorized embeddings, no layer sharing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bertforge import FAMILIES
from bertforge.errors import ConfigError
from bertforge.pretraining.init import Start, init_recipe
from bertforge.pretraining.recipe import load_recipe

CONFIGS = {
    name: FAMILIES[name].config("tiny", vocab_size=300, hidden_dropout_prob=0.0)
    for name in FAMILIES
}
CONFIGS["electra-unfactorized"] = FAMILIES["electra"].config("tiny", embedding_size=None)
CONFIGS["albert-groups"] = FAMILIES["albert"].config(
    "tiny", num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2
)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_checkpoint_config_survives_the_recorded_recipe(tmp_path: Path, name: str) -> None:
    config = CONFIGS[name]
    recipe = load_recipe("continue-mlm", [f"family={config.model_type}", "init.model=/ckpt",
                                          "model.attention_probs_dropout_prob=0.3"])  # fmt: skip
    resolved = init_recipe(recipe, Start(config, frozenset({"mlm"})))
    (tmp_path / "recipe.toml").write_text(resolved.to_toml())
    again = load_recipe(tmp_path / "recipe.toml")
    assert again.encoder_config(0, 0) == config.replace(attention_probs_dropout_prob=0.3)
    assert init_recipe(again, Start(config, frozenset({"mlm"}))) == again  # resume: the same


def test_init_preset_without_a_checkpoint() -> None:
    with pytest.raises(ConfigError, match="--init DIR"):
        load_recipe(None, ["preset=init"])


def test_family_masking_is_the_family_recipes_under_the_keys_given() -> None:
    albert = load_recipe("continue-mlm", ["family=albert", "masking.rate=0.3"]).masking
    assert (albert.mode, albert.max_ngram, albert.rate) == ("ngram", 3, 0.3)
    electra = load_recipe("continue-mlm", ["family=electra"]).masking
    assert (electra.mode, electra.mask_prob, electra.random_prob) == ("token", 0.85, 0.0)
    nezha = load_recipe("continue-mlm", ["family=nezha"]).masking
    assert nezha.mode == "whole_word"


def test_a_setting_given_by_keyword_and_in_overrides_is_refused(tmp_path: Path) -> None:
    from bertforge import pretrain

    with pytest.raises(ConfigError, match=r"train\.max_steps is given twice: .*keep one"):
        pretrain(tmp_path, tmp_path / "run", max_steps=0, overrides=["train.max_steps=30"])
