"""Finding the linears PEFT methods wrap, and where the encoder ends and the head begins."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from bertforge.errors import ConfigError
from bertforge.models.encoder import Encoder


def encoder_prefix(model: nn.Module) -> str:
    """The state-dict prefix of the model's encoder ("encoder." in a task head,
    "mlm_model.encoder." in a prompt classifier)."""
    for name, module in model.named_modules():
        if isinstance(module, Encoder):
            return f"{name}." if name else ""
    raise ConfigError(f"{type(model).__name__} contains no bertforge Encoder")


def is_head(name: str, prefix: str) -> bool:
    """Task-specific parameters: everything outside the encoder, plus its pooler, which only
    classification heads read (and which is freshly initialised when a checkpoint lacks it)."""
    return not name.startswith(prefix) or name.startswith(prefix + "pooler.")


def replace_linears(
    model: nn.Module, targets: tuple[str, ...], wrap: Callable[[nn.Linear], nn.Module]
) -> int:
    """Replace every encoder `nn.Linear` whose name ends with one of `targets` (e.g.
    "attn.qkv") by `wrap(linear)`. Returns how many were replaced; none is an error."""
    prefix = encoder_prefix(model)
    found = [
        (name, module)
        for name, module in model.named_modules()
        if name.startswith(prefix) and any(name.endswith("." + t) for t in targets)
    ]
    if not found:
        raise ConfigError(
            f"no module named like {', '.join(targets)} in the encoder; "
            "targets are block-relative names such as attn.qkv, attn.out, ffn.up, ffn.down"
        )
    for name, module in found:
        if type(module) is not nn.Linear:
            raise ConfigError(
                f"'{name}' is a {type(module).__name__}, not a plain nn.Linear; it is already "
                "wrapped (merge or remove the other method first)"
            )
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, wrap(module))
    return len(found)
