"""Id <-> token conversion, decoding and special-token accessors shared by `Tokenizer`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, overload

from tokenizers import Tokenizer as BackendTokenizer

from bertforge.errors import TokenizerError
from bertforge.tokenization.pipelines import SpecialTokens


def _id_list(ids: Any) -> list[int]:
    """Accept lists, tuples, numpy arrays and torch tensors of ids."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    return [ids] if isinstance(ids, int) else list(ids)


class VocabMixin:
    """Needs `_backend` (a tokenizers.Tokenizer) and `_specials` on the concrete class."""

    _backend: BackendTokenizer
    _specials: SpecialTokens

    def decode(self, ids: Any, skip_special_tokens: bool = True) -> str:
        """Text of one id sequence (list, numpy array or tensor)."""
        return self._backend.decode(_id_list(ids), skip_special_tokens=skip_special_tokens)

    def batch_decode(self, sequences: Iterable[Any], skip_special_tokens: bool = True) -> list[str]:
        """Texts of many id sequences (list of lists, or a 2-D array/tensor)."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return self._backend.decode_batch(
            [_id_list(s) for s in sequences], skip_special_tokens=skip_special_tokens
        )

    @overload
    def convert_tokens_to_ids(self, tokens: str) -> int: ...
    @overload
    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]: ...
    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Ids of tokens; unknown tokens map to the unk id, as in transformers."""
        if isinstance(tokens, str):
            return self._token_id(tokens)
        return [self._token_id(t) for t in tokens]

    def _token_id(self, token: str) -> int:
        tid = self._backend.token_to_id(token)
        if tid is None:
            tid = self.unk_token_id
        if tid is None:
            raise TokenizerError(f"token {token!r} is not in the vocabulary and there is no unk")
        return tid

    @overload
    def convert_ids_to_tokens(self, ids: int) -> str: ...
    @overload
    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]: ...
    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        """Token strings of ids; an id outside the vocabulary is an error."""
        if isinstance(ids, int):
            return self._id_token(ids)
        return [self._id_token(i) for i in _id_list(ids)]

    def _id_token(self, tid: int) -> str:
        token = self._backend.id_to_token(tid)
        if token is None:
            raise TokenizerError(f"id {tid} is outside the vocabulary (size {self.vocab_size})")
        return token

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included: the embedding table needs this many rows."""
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    @property
    def special_tokens(self) -> SpecialTokens:
        return self._specials

    def _role_id(self, token: str | None) -> int | None:
        return self._backend.token_to_id(token) if token is not None else None

    @property
    def pad_token(self) -> str | None:
        return self._specials.pad

    @property
    def pad_token_id(self) -> int | None:
        return self._role_id(self._specials.pad)

    @property
    def unk_token(self) -> str | None:
        return self._specials.unk

    @property
    def unk_token_id(self) -> int | None:
        return self._role_id(self._specials.unk)

    @property
    def cls_token(self) -> str | None:
        return self._specials.cls

    @property
    def cls_token_id(self) -> int | None:
        return self._role_id(self._specials.cls)

    @property
    def sep_token(self) -> str | None:
        return self._specials.sep

    @property
    def sep_token_id(self) -> int | None:
        return self._role_id(self._specials.sep)

    @property
    def mask_token(self) -> str | None:
        return self._specials.mask

    @property
    def mask_token_id(self) -> int | None:
        return self._role_id(self._specials.mask)

    @property
    def special_ids(self) -> set[int]:
        """Ids of every special token: the named roles plus any other special added token."""
        ids = {i for i, tok in self._backend.get_added_tokens_decoder().items() if tok.special}
        named = (self._role_id(getattr(self._specials, r)) for r in SpecialTokens.roles())
        return ids | {i for i in named if i is not None}
