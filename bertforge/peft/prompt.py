"""Prompt-based classification through the MLM head (PET, Schick & Schütze 2021; LM-BFF, Gao et
al. 2021): wrap the input in a template with one mask, and read each class's score as the MLM
logit of its verbalizer word at the mask. No new parameters, so it works from few examples."""

from __future__ import annotations

import torch
from torch import nn

from bertforge.architectures.pretraining import PreTrainingModel
from bertforge.errors import ConfigError, DataError
from bertforge.tokenization import Tokenizer

MASK = "[MASK]"  # the mask placeholder in templates, whatever the tokenizer's mask token


class PromptClassifier(nn.Module):
    """texts -> (B, C) logits, C = len(verbalizer), columns in the verbalizer's order."""

    def __init__(
        self,
        mlm_model: PreTrainingModel,
        tokenizer: Tokenizer,
        template: str,
        verbalizer: dict[str, str],
    ) -> None:
        super().__init__()
        if template.count("{text}") != 1 or template.count(MASK) != 1:
            raise ConfigError(
                f"template {template!r} must contain '{{text}}' once and '{MASK}' once, "
                "e.g. '{text} It was [MASK].'"
            )
        if not verbalizer:
            raise ConfigError("the verbalizer is empty; map each label to a word")
        if tokenizer.mask_token is None or tokenizer.mask_token_id is None:
            raise ConfigError("the tokenizer has no mask token; prompts need an MLM tokenizer")
        self.mlm_model = mlm_model
        self.tokenizer = tokenizer
        self.template = template.replace(MASK, tokenizer.mask_token)
        self.labels = list(verbalizer)
        self.mask_id = tokenizer.mask_token_id
        ids = [self._word_id(label, word) for label, word in verbalizer.items()]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"two labels share a verbalizer token: {verbalizer}")
        self.register_buffer("word_ids", torch.tensor(ids), persistent=False)

    def _word_id(self, label: str, word: str) -> int:
        # With a leading space, as the word follows one in the template: byte-level BPE
        # vocabularies store "Ġgreat" for that, WordPiece ignores the space.
        pieces = self.tokenizer.tokenize(" " + word.strip())
        if len(pieces) != 1:
            raise ConfigError(
                f"verbalizer word {word!r} (label {label!r}) is {len(pieces)} tokens {pieces}; "
                "each word must be one token of the vocabulary: pick a more common word"
            )
        token_id = self.tokenizer.convert_tokens_to_ids(pieces[0])
        if token_id == self.tokenizer.unk_token_id:
            raise ConfigError(f"verbalizer word {word!r} (label {label!r}) is not in the vocab")
        return token_id

    def encode(self, texts: list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Fill the template and tokenize into a padded batch of (B, T) tensors."""
        filled = [self.template.format(text=t) for t in texts]
        batch = self.tokenizer(
            filled,
            padding=True,
            truncation=max_length is not None,
            max_length=max_length,
            return_tensors="pt",
        )
        return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T), each row with exactly one mask token
        attention_mask: torch.Tensor | None = None,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T)
    ) -> torch.Tensor:  # (B, C)
        at_mask = input_ids == self.mask_id  # (B, T)
        counts = at_mask.sum(dim=1)
        if bool((counts != 1).any()):
            row = int((counts != 1).nonzero()[0])
            raise DataError(
                f"row {row} has {int(counts[row])} mask tokens, a prompt needs exactly one; "
                "if it was truncated away, shorten the text or raise max_length"
            )
        # One masked position per row, so the (M, V) rows come out in batch order.
        out = self.mlm_model(input_ids, attention_mask, token_type_ids, masked_positions=at_mask)
        return out.mlm_logits[:, self.word_ids]

    def predict(self, texts: list[str], max_length: int | None = None) -> list[str]:
        """The verbalizer label with the highest score for each text."""
        batch = {k: v.to(self.word_ids.device) for k, v in self.encode(texts, max_length).items()}
        with torch.no_grad():
            return [self.labels[i] for i in self(**batch).argmax(-1).tolist()]
