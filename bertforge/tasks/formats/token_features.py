"""Token classification features from word-level tags, and predictions back to word tags.

Words are joined with single spaces and tokenized as one text; each token is assigned to a word
through its character offsets. (The tokenizer's own `word_ids` are its pre-tokenizer's words,
which split e.g. "1996-08-30" into five, so they cannot be used for dataset words.)
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bertforge.constants import IGNORE_INDEX
from bertforge.errors import ConfigError, DataError
from bertforge.tasks.formats.conll import Sentence
from bertforge.tokenization import Tokenizer

logger = logging.getLogger(__name__)

NO_WORD = -1  # word_index of tokens that carry no word-level prediction
MODEL_KEYS = ("input_ids", "token_type_ids", "attention_mask", "labels")


def _label_ids(sentence: Sentence, index: dict[str, int], label_list: list[str]) -> list[int]:
    ids = []
    for k, (word, tag) in enumerate(zip(sentence.words, sentence.tags, strict=True)):
        if tag not in index:
            raise DataError(
                f"{sentence.guid}: word {k} ({word!r}) has tag {tag!r}, which is not in the label "
                f"list {label_list}; build the label list from all splits or fix the tag"
            )
        ids.append(index[tag])
    return ids


def _word_starts(words: list[str], offset: int) -> list[int]:
    """Character offset of each word in `" ".join(words)` preceded by `offset` characters."""
    starts = []
    for word in words:
        starts.append(offset)
        offset += len(word) + 1
    return starts


def _word_slots(
    offsets: list[tuple[int, int]], sequence_ids: list[int | None], starts: list[int]
) -> list[tuple[int, int]]:
    """Per token: (word it belongs to, word it predicts), NO_WORD where none.

    A token predicts its word when it is the word's first sub-token, i.e. it begins at or before
    the word's first character; a window starting mid-word thus predicts nothing for that word.
    """
    slots = []
    for (begin, end), seq in zip(offsets, sequence_ids, strict=True):
        if seq is None or end <= begin:
            slots.append((NO_WORD, NO_WORD))
            continue
        # end - 1 is inside the word even when BPE offsets include the leading space.
        word = bisect.bisect_right(starts, end - 1) - 1
        first = begin <= starts[word] and (not slots or slots[-1][0] != word)
        slots.append((word, word if first else NO_WORD))
    return slots


def encode_examples(
    tokenizer: Tokenizer,
    sentences: Sequence[Sentence],
    max_length: int,
    label_list: list[str],
    *,
    label_all_subtokens: bool = False,
    stride: int | None = None,
) -> dict[str, list[Any]]:
    """Tokenize tagged sentences without padding.

    The tag goes on each word's first sub-token; other sub-tokens and specials get -100, or with
    `label_all_subtokens` the word's tag (B-X becomes I-X after the first sub-token). Sentences
    longer than `max_length` are cut (and counted in a warning) or, with `stride`, split into
    windows overlapping by `stride` tokens.

    Returns input_ids, token_type_ids, attention_mask, labels (model inputs) and the bookkeeping
    keys `example_index` (sentence of each row) and `word_index` (per token: the word whose
    prediction it carries, or -1) that `predictions_to_tags` needs.
    """
    room = max_length - tokenizer.num_special_tokens_to_add()
    if stride is not None and not 0 <= stride < room:
        raise ConfigError(
            f"stride {stride} must be at least 0 and less than the {room} tokens a window of "
            f"max_length {max_length} holds besides its special tokens"
        )
    index = {tag: i for i, tag in enumerate(label_list)}
    # Continuation sub-tokens of a B-X word are inside the entity: I-X.
    inside = [index.get(f"I-{tag[2:]}", i) if tag[:2] == "B-" else i for tag, i in index.items()]
    # Byte-level BPE marks word starts with a leading space, so give the first word one too.
    prefix = " " if tokenizer.kind == "bpe" else ""
    texts = [prefix + " ".join(s.words) for s in sentences]
    word_starts = [_word_starts(s.words, len(prefix)) for s in sentences]
    enc = tokenizer(
        texts,
        truncation=True,
        max_length=max_length,
        stride=stride or 0,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    features: dict[str, list[Any]] = {k: [] for k in (*MODEL_KEYS, "example_index", "word_index")}
    tag_ids = [_label_ids(s, index, label_list) for s in sentences]
    seen: set[int] = set()
    for row, sample in enumerate(enc["overflow_to_sample_mapping"]):
        if stride is None and sample in seen:
            continue  # plain truncation: keep the first window only
        seen.add(sample)
        words = _word_slots(enc["offset_mapping"][row], enc.sequence_ids(row), word_starts[sample])
        tags = tag_ids[sample]
        labels = []
        for word, slot in words:
            if slot != NO_WORD:
                labels.append(tags[slot])
            elif word != NO_WORD and label_all_subtokens:
                labels.append(inside[tags[word]])
            else:
                labels.append(IGNORE_INDEX)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            features[key].append(enc[key][row])
        features["labels"].append(labels)
        features["example_index"].append(sample)
        features["word_index"].append([slot for _, slot in words])
    rows_per_sentence = Counter(enc["overflow_to_sample_mapping"])
    long = sum(n > 1 for n in rows_per_sentence.values())
    if long and stride is None:
        logger.warning(
            "%d of %d sentences were longer than max_length=%d tokens and were truncated; their "
            "last words get no prediction (a stride, `finetune ner --stride N`, windows them)",
            long,
            len(sentences),
            max_length,
        )
    elif long:
        logger.info("%d long sentences were split into %d windows", long, len(features["labels"]))
    return features


def predictions_to_tags(
    features: dict[str, list[Any]],
    predictions: Sequence[Sequence[int]],
    sentences: Sequence[Sentence],
    label_list: list[str],
) -> list[list[str]]:
    """Word-level tags from per-token predicted label ids (one row per feature row; padding
    beyond a row's length is ignored).

    A word seen in several windows takes the prediction from the window where it has the most
    context on both sides. Words no window covers (truncated) are tagged O, with a warning.
    """
    if len(predictions) != len(features["word_index"]):
        raise ValueError(
            f"{len(predictions)} prediction rows but {len(features['word_index'])} feature rows"
        )
    best: list[list[tuple[int, int] | None]] = [[None] * len(s.words) for s in sentences]
    for row, (sample, words) in enumerate(
        zip(features["example_index"], features["word_index"], strict=True)
    ):
        for j, word in enumerate(words):
            if word == NO_WORD:
                continue
            context = min(j, len(words) - 1 - j)
            current = best[sample][word]
            if current is None or context > current[0]:
                best[sample][word] = (context, int(predictions[row][j]))
    missing = sum(slot is None for words in best for slot in words)
    if missing:
        logger.warning("%d words had no token in any window and were tagged O", missing)
    return [[label_list[slot[1]] if slot else "O" for slot in words] for words in best]
