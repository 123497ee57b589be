"""`Tokenizer`: a thin, transformers-compatible wrapper around a `tokenizers.Tokenizer`."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Encoding
from tokenizers import Tokenizer as BackendTokenizer

from bertforge.errors import TokenizerError
from bertforge.tokenization.encoding import TENSOR_TYPES, BatchEncoding, assemble
from bertforge.tokenization.loading import backend_kind, load_directory, resolve_specials
from bertforge.tokenization.options import Plan, batch_inputs, resolve_plan
from bertforge.tokenization.pipelines import VERY_LARGE_INTEGER, SpecialTokens
from bertforge.tokenization.saving import tokenizer_files, write_files_atomically
from bertforge.tokenization.vocab import VocabMixin

logger = logging.getLogger(__name__)


class Tokenizer(VocabMixin):
    """WordPiece, byte-level BPE or SentencePiece Unigram tokenizer whose calls behave like a
    transformers fast tokenizer.

    Truncation and padding are set on the backend for the duration of one call only, under a
    lock, so concurrent callers never see each other's settings.
    """

    def __init__(
        self,
        backend: BackendTokenizer,
        *,
        specials: SpecialTokens | None = None,
        model_max_length: int = VERY_LARGE_INTEGER,
        spiece_model: bytes | None = None,
    ) -> None:
        self._kind = backend_kind(backend)
        if backend.truncation is not None or backend.padding is not None:
            logger.debug("dropping truncation/padding stored in the tokenizer; set them per call")
        backend.no_truncation()
        backend.no_padding()
        self._backend = backend
        self._specials = specials or resolve_specials(backend, self._kind, {}, {})
        self._model_max_length = model_max_length
        # The spiece.model a Unigram tokenizer came from: saved back byte for byte.
        self._spiece_model = spiece_model if self._kind == "unigram" else None
        self._lock = threading.Lock()
        self._warned_too_long = False

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Tokenizer:
        """Load a directory: tokenizer.json, or spiece.model (ALBERT), or vocab.txt, or vocab.json
        + merges.txt (byte-level BPE); tokenizer_config.json gives casing and special tokens."""
        loaded = load_directory(path)
        logger.debug("loaded %s tokenizer from %s", loaded.kind, path)
        return cls(
            loaded.backend,
            specials=loaded.specials,
            model_max_length=loaded.model_max_length,
            spiece_model=loaded.spiece_model,
        )

    @classmethod
    def from_tokenizers(
        cls,
        backend: BackendTokenizer,
        *,
        special_tokens: Mapping[str, str] | None = None,
        model_max_length: int = VERY_LARGE_INTEGER,
    ) -> Tokenizer:
        """Wrap an in-memory `tokenizers.Tokenizer` (copied, so the caller's object is untouched).

        `special_tokens` maps roles ("pad_token", ...) to tokens; unnamed roles use the defaults.
        """
        own = BackendTokenizer.from_str(backend.to_str())
        specials = resolve_specials(own, backend_kind(own), dict(special_tokens or {}), {})
        return cls(own, specials=specials, model_max_length=model_max_length)

    def with_backend(self, backend: BackendTokenizer) -> Tokenizer:
        """The same specials and length limit over another backend (an extended vocabulary);
        a spiece.model is rebuilt from it on save."""
        return Tokenizer(
            backend,
            specials=self._specials,
            model_max_length=self._model_max_length,
            spiece_model=self._spiece_model,
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]  # locks cannot be pickled; DataLoader workers pickle datasets
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"Tokenizer(kind={self._kind!r}, vocab_size={self.vocab_size}, "
            f"model_max_length={self._model_max_length})"
        )

    def __len__(self) -> int:
        return self.vocab_size

    # ------------------------------------------------------------------ encoding
    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool = True,
        return_attention_mask: bool = True,
        return_offsets_mapping: bool = False,
        return_special_tokens_mask: bool = False,
        return_overflowing_tokens: bool = False,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Encode one text (lists of ints back) or a batch (lists of lists, or tensors).
        `verbose=False`: no warning for an untruncated text longer than the model takes (a
        caller that only inspects the tokens)."""
        if return_tensors is not None and return_tensors not in TENSOR_TYPES:
            raise TokenizerError(f"return_tensors={return_tensors!r}; use None, 'pt' or 'np'")
        batched, inputs = batch_inputs(text, text_pair)
        plan = resolve_plan(
            padding, truncation, max_length, pad_to_multiple_of, self._model_max_length
        )
        encodings = self._encode(inputs, plan, stride, add_special_tokens)
        if verbose:
            self._warn_if_too_long(encodings)
        fields = {
            "token_type_ids": return_token_type_ids,
            "attention_mask": return_attention_mask,
            "special_tokens_mask": return_special_tokens_mask,
            "offset_mapping": return_offsets_mapping,
        }
        return assemble(
            encodings,
            [key for key, on in fields.items() if on],
            overflowing=return_overflowing_tokens,
            tensor_type=return_tensors,
            batched=batched,
        )

    def _encode(
        self, inputs: list[Any], plan: Plan, stride: int, add_special_tokens: bool
    ) -> list[Encoding]:
        if plan.padding != "do_not_pad" and self.pad_token_id is None:
            raise TokenizerError("padding was requested but this tokenizer has no pad token")
        with self._lock:
            try:
                self._configure(plan, stride)
                return self._backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
            except Exception as e:  # tokenizers raises bare Exception / ValueError
                hint = "; try truncation='longest_first' or a larger max_length"
                raise TokenizerError(f"tokenization failed: {e}{hint}") from e
            finally:
                self._backend.no_truncation()
                self._backend.no_padding()

    def _warn_if_too_long(self, encodings: list[Encoding]) -> None:
        longest = max((len(e.ids) for e in encodings), default=0)
        if longest > self._model_max_length and not self._warned_too_long:
            self._warned_too_long = True  # once per tokenizer, like transformers
            logger.warning(
                "a sequence of %d tokens exceeds model_max_length %d; pass truncation=True "
                "or the model will index past its position embeddings",
                longest,
                self._model_max_length,
            )

    def _configure(self, plan: Plan, stride: int) -> None:
        if plan.truncation != "do_not_truncate":
            self._backend.enable_truncation(
                plan.max_length, stride=stride, strategy=plan.truncation, direction="right"
            )
        if plan.padding != "do_not_pad":
            self._backend.enable_padding(
                direction="right",
                pad_id=self.pad_token_id,
                pad_type_id=0,
                pad_token=self._specials.pad,
                length=plan.max_length if plan.padding == "max_length" else None,
                pad_to_multiple_of=plan.pad_to_multiple_of,
            )

    def encode(
        self, text: str, pair: str | None = None, add_special_tokens: bool = True
    ) -> list[int]:
        """Token ids of one text (or pair), without truncation or padding."""
        return self(text, pair, add_special_tokens=add_special_tokens)["input_ids"]

    def tokenize(self, text: str, pair: str | None = None) -> list[str]:
        """Token strings, no special tokens added."""
        return self(text, pair, add_special_tokens=False).tokens()

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many specials encoding adds: 2 for one BERT/ALBERT text, 3 for a pair (4 for
        RoBERTa)."""
        post = self._backend.post_processor
        return post.num_special_tokens_to_add(pair) if post is not None else 0

    # ------------------------------------------------------------------ properties
    @property
    def backend(self) -> BackendTokenizer:
        """The wrapped `tokenizers.Tokenizer`; set truncation/padding per call, not on this."""
        return self._backend

    @property
    def kind(self) -> str:
        """'wordpiece', 'bpe' or 'unigram' (SentencePiece, ALBERT)."""
        return self._kind

    @property
    def model_max_length(self) -> int:
        """Longest sequence the model takes; `truncation=True` without max_length uses it."""
        return self._model_max_length

    @property
    def marks_segments(self) -> bool:
        """Whether a text pair's second segment gets token type 1 (WordPiece, SentencePiece);
        byte-level BPE (RoBERTa) types every token 0, so a model's second type row goes unused."""
        return 1 in self._backend.encode("a", "b").type_ids

    # ------------------------------------------------------------------ persistence
    def fingerprint(self) -> str:
        """sha256 of the canonical tokenizer JSON: equal fingerprints mean equal ids."""
        spec = json.loads(self._backend.to_str())
        canonical = json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def save_pretrained(self, directory: str | Path, tokenizer_class: str | None = None) -> Path:
        """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json and vocab files
        (vocab.txt, vocab.json + merges.txt, or spiece.model). `tokenizer_class` names the
        model's own transformers class for this kind's pipeline (DistilBertTokenizer, ...)."""
        files = tokenizer_files(
            self._backend,
            self._kind,
            self._specials,
            self._model_max_length,
            spiece_model=self._spiece_model,
            tokenizer_class=tokenizer_class,
        )
        target = write_files_atomically(directory, files)
        logger.info("saved %s tokenizer (%d ids) to %s", self._kind, self.vocab_size, target)
        return target
