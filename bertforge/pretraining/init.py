"""Continued pretraining: a run that starts from an HF checkpoint (`pretrain --init DIR`).

The checkpoint decides the family, the encoder config and the tokenizer; the recipe decides
the optimisation, the masking and the objectives. The plan rewrites the recipe so the run
directory describes itself without the checkpoint: `preset = "init"` with the checkpoint's
whole config as the [model] table (only dropout may differ), the RTD generator's shape as
its [generator] size and depth, and `init.carry`, the checkpoint's heads that no objective
trains: they are kept unchanged (frozen), so export writes the checkpoint's own class back.

At step 0 the job copies the checkpoint's weights in (`load_init`); heads it lacks keep the
initialisation of a fresh run (the MLM decoder is tied to the embeddings either way), and the
log says which parts were loaded and which are new. A resumed run reads its own checkpoints.
DeBERTa-v3's discriminator comes as a `DebertaV2Model` with its RTD head beside it and its
token table folded (E_G + delta): the head is read from beside, and under GDES the delta is
unfolded against the generator's table.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from bertforge.architectures import ElectraPreTraining, PreTrainingModel
from bertforge.architectures.electra import generator_config
from bertforge.config import EncoderConfig
from bertforge.errors import ConfigError, DataError
from bertforge.families import family
from bertforge.interop.hf import Checkpoint, load_checkpoint, load_config, load_state
from bertforge.pretraining.models import RTD_FILE
from bertforge.pretraining.recipe import INIT_PRESET, Recipe
from bertforge.tokenization import Tokenizer

log = logging.getLogger(__name__)

# What a continued run may change in the checkpoint's config.
DROPOUTS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "embedding_dropout_prob")
# The checkpoint's head parts a pretraining model can carry.
HEAD_PARTS = ("mlm", "nsp", "rtd")


def init_overrides(model: str | Path, generator: str | Path | None = None) -> list[str]:
    """`--set` items of a run that starts from `model` (and ELECTRA's `generator`): the
    checkpoint's family and the absolute paths."""
    fam = load_config(model).model_type
    sets = [f"family={fam}", f"init.model={Path(model).resolve()}"]
    if generator is not None:
        sets.append(f"init.generator={Path(generator).resolve()}")
    return sets


@dataclass(frozen=True)
class Start:
    """What the checkpoint brings: its config, the head parts its weights hold, and ELECTRA's
    generator config when one is given."""

    config: EncoderConfig
    parts: frozenset[str]
    generator: EncoderConfig | None = None


def read_start(recipe: Recipe) -> Start:
    """Read `recipe.init`'s checkpoint(s) (config and which heads the weights hold)."""
    ckpt = init_checkpoint(recipe.init.model)
    generator = load_config(recipe.init.generator) if recipe.init.generator else None
    return Start(ckpt.config, frozenset(ckpt.parts & set(HEAD_PARTS)), generator)


def init_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint, with the RTD head a family without an RTD class keeps beside its
    model (DeBERTa-v3's discriminator: `rtd_head.safetensors`, `pretraining.models`)."""
    ckpt = load_checkpoint(path)
    beside = Path(path) / RTD_FILE
    if beside.is_file() and "rtd" not in ckpt.parts:
        head = {f"rtd.{k}": v for k, v in load_file(beside).items()}
        ckpt.state.update(head)
        ckpt.origin.update({k: f"{RTD_FILE}: {k.removeprefix('rtd.')}" for k in head})
    return ckpt


def init_recipe(recipe: Recipe, start: Start) -> Recipe:
    """The recipe with the checkpoint's architecture written in: `preset = "init"`, the
    config as [model] (the recipe's dropout kept), the generator's width as [generator] size.
    Any other [model] value that differs from the checkpoint's is an error."""
    where = f"--init {recipe.init.model}"
    theirs = start.config.to_dict()
    if recipe.family != start.config.model_type:
        raise ConfigError(
            f"{where} is a {start.config.model_type} checkpoint but the recipe sets family = "
            f"{recipe.family!r}; drop family from the recipe (the checkpoint decides it)"
        )
    for key, value in recipe.model.items():
        if key not in DROPOUTS and theirs.get(key) != value:
            raise ConfigError(
                f"[model] {key} = {value!r}, but {where} has {key} = {theirs.get(key)!r}: the "
                f"checkpoint fixes the architecture; drop {key} (only {', '.join(DROPOUTS)} "
                "may change)"
            )
    model = {k: v for k, v in theirs.items() if k != "model_type" and v is not None}
    model |= {k: v for k, v in recipe.model.items() if k in DROPOUTS}
    generator = recipe.generator
    if start.generator is not None:
        size = start.generator.hidden_size / start.config.hidden_size
        depth = start.generator.num_hidden_layers / start.config.num_hidden_layers
        generator = dataclasses.replace(generator, size=size, depth=depth)
        _check_generator(recipe, start, size, depth)
    resolved = dataclasses.replace(recipe, preset=INIT_PRESET, model=model, generator=generator)
    want = start.config.replace(**{k: v for k, v in model.items() if k in DROPOUTS})
    assert resolved.encoder_config(0, 0) == want, "the [model] table must rebuild the config"
    return resolved


def _check_generator(recipe: Recipe, start: Start, size: float, depth: float) -> None:
    """A replaced-token-detection generator is the discriminator at a fraction of its width
    and depth (ELECTRA, DeBERTa-v3); one of another shape cannot share its embeddings."""
    if start.config.model_type != "electra" and "rtd" not in start.parts:
        raise ConfigError(
            f"--init-generator pairs with a discriminator, but {recipe.init.model} is a "
            f"{start.config.model_type} checkpoint with no RTD head (none in its weights, no "
            f"{RTD_FILE} beside them)"
        )
    fits = 0 < size <= 1 and 0 < depth <= 1
    derived = generator_config(start.config, size, depth) if fits else None
    given = start.generator
    fields = ("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers",
              "embedding_dim", "vocab_size")  # fmt: skip
    if derived is None or any(getattr(derived, f) != getattr(given, f) for f in fields):
        shown = ", ".join(f"{f}={getattr(given, f)}" for f in fields)
        raise ConfigError(
            f"--init-generator {recipe.init.generator} ({shown}) is not the discriminator "
            f"{recipe.init.model} at a fraction of its width with its depth and embeddings; "
            "the two share them, so pass the generator trained with this discriminator"
        )


def check_init_tokenizer(recipe: Recipe, data_dir: Path, manifest: Mapping[str, Any]) -> None:
    """The shards must be tokenized with the checkpoint's own tokenizer: the embeddings are
    indexed by its ids."""
    where = recipe.init.model
    try:
        theirs = Tokenizer.from_pretrained(where)
    except Exception as e:
        raise DataError(
            f"--init {where}: cannot read the checkpoint's tokenizer ({e}); a continued run "
            "trains on the checkpoint's ids, so the directory needs its tokenizer files"
        ) from None
    built = manifest["tokenizer_fingerprint"]
    if theirs.fingerprint() != built:
        raise DataError(
            f"'{data_dir}' was built with tokenizer {built[:12]} ({data_dir}/tokenizer) but "
            f"--init {where} has tokenizer {theirs.fingerprint()[:12]}; rebuild the data with "
            f"`bertforge build-data --tokenizer {where}`"
        )


def default_objectives(start: Start, pairs: bool) -> dict[str, float]:
    """What the checkpoint was trained for: MLM (a bare encoder gets a fresh MLM head), RTD
    with its generator's MLM (ELECTRA's discriminator, at the packaged recipe's weight),
    NSP/SOP when it has that head and the data holds pairs."""
    if "rtd" in start.parts:
        return {"mlm": 1.0, "rtd": 50.0}
    weights = {"mlm": 1.0}
    if "nsp" in start.parts and pairs:
        weights["nsp"] = 1.0
    return weights


def carried_heads(recipe: Recipe, start: Start, trained: frozenset[str]) -> tuple[str, ...]:
    """The checkpoint's heads no objective trains that the exported class can still hold
    (BertForPreTraining continued on MLM alone keeps its NSP head); others are dropped."""
    fam = family(recipe.family)
    if "rtd" in trained:  # ELECTRA: the discriminator is exported with its own head only
        return ()
    extra = start.parts - trained
    if extra and frozenset(trained | extra) in fam.hf.pretraining:
        return tuple(sorted(extra))
    if extra:
        log.info(
            "--init %s: not keeping head(s) %s: no %s class has them beside %s",
            recipe.init.model, sorted(extra), fam.name, sorted(trained),
        )  # fmt: skip
    return ()


def load_init(model: nn.Module, recipe: Recipe) -> dict[str, dict[str, Any]]:
    """Copy the checkpoint(s) of `recipe.init` into a freshly built `model`. Returns, by part
    ("model"; ELECTRA's "discriminator" and "generator"), where it came from and which of its
    parts were loaded and which start fresh; the run writes it to RUN_DIR/init.json."""
    if isinstance(model, ElectraPreTraining):
        report = {}
        disc = init_checkpoint(recipe.init.model)
        if recipe.init.generator:
            # The generator first: its embeddings are the discriminator's, which load last.
            gen = load_checkpoint(recipe.init.generator)
            report["generator"] = _load(model.generator, gen)
            key = "encoder.embeddings.tokens.weight"
            if model.sharing == "shared" and not torch.equal(gen.state[key], disc.state[key]):
                log.warning(
                    "the generator's token embeddings (%s) differ from the discriminator's; "
                    "ELECTRA shares them, so the discriminator's are used", gen.path,
                )  # fmt: skip
        else:
            report["generator"] = {"from": None, "loaded": [], "new": ["encoder", "mlm"]}
        if model.sharing == "gdes":
            report["discriminator"] = _load_unfolded(model, disc)
        else:
            report["discriminator"] = _load(model.discriminator, disc)
    else:
        assert isinstance(model, PreTrainingModel)
        report = {"model": _load(model, load_checkpoint(recipe.init.model))}
    for role, part in report.items():
        log.info(
            "%s from %s: loaded %s; new %s", role, part["from"] or "nowhere",
            ", ".join(part["loaded"]) or "nothing", ", ".join(part["new"]) or "none",
        )  # fmt: skip
    return report


def _load(model: PreTrainingModel, ckpt: Checkpoint) -> dict[str, Any]:
    present = {k.split(".", 1)[0] for k in ckpt.state}
    new = tuple(f"{h}." for h in sorted(model.heads - present))
    if "nsp." in new and not any(k.startswith("encoder.pooler.") for k in ckpt.state):
        new += ("encoder.pooler.",)  # a new NSP head reads a new pooler
    load_state(model, ckpt, "", fresh_ok=new)
    loaded = sorted({"encoder", *(model.heads & present)})
    return {"from": str(ckpt.path), "loaded": loaded, "new": [h.strip(".") for h in new]}


def _load_unfolded(model: ElectraPreTraining, ckpt: Checkpoint) -> dict[str, Any]:
    """GDES: the exported discriminator holds its table folded, E_D = E_G + delta; after the
    generator's E_G is in, delta = E_D - E_G, so the discriminator starts seeing exactly E_D."""
    plain = model.folded_discriminator()  # a plain copy: the checkpoint loads into it as is
    report = _load(plain, ckpt)
    state = plain.state_dict()
    tokens = model.discriminator.encoder.embeddings.tokens
    folded = state.pop("encoder.embeddings.tokens.weight")
    missing, unexpected = model.discriminator.load_state_dict(state, strict=False)
    shared = {"encoder.embeddings.tokens.delta", "encoder.embeddings.tokens.source.weight"}
    assert not unexpected and set(missing) == shared, (missing, unexpected)
    with torch.no_grad():
        tokens.delta.copy_(folded - tokens.source.weight)
    return report


def describe(started: dict[str, Any]) -> str:
    """RUN_DIR/init.json in one line: what was loaded, what is new, what is kept as it was."""
    parts = [
        f"{role}: loaded {', '.join(p['loaded']) or 'nothing'}"
        + (f", new {', '.join(p['new'])}" if p["new"] else "")
        for role, p in started["parts"].items()
    ]
    carried = started["carried"]
    return "; ".join(parts) + (f"; kept unchanged: {', '.join(carried)}" if carried else "")


def freeze_carried(model: nn.Module, carry: tuple[str, ...]) -> None:
    """Carried heads (and the pooler that feeds NSP) take no gradient and no update."""
    if not carry:
        return
    assert isinstance(model, PreTrainingModel)
    for name in carry:
        getattr(model, name).requires_grad_(False)
    if "nsp" in carry and model.encoder.pooler is not None:
        model.encoder.pooler.requires_grad_(False)
    log.info("kept unchanged: %s (no objective trains them)", ", ".join(carry))
