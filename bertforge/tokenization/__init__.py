"""Tokenizers for the BERT family: load, call like transformers, train, save.

Wraps the HF `tokenizers` library (WordPiece, byte-level BPE, and SentencePiece Unigram as in
ALBERT, read from and written to spiece.model with the `sentencepiece` package); nothing is
reimplemented.
"""

from bertforge.tokenization.encoding import BatchEncoding
from bertforge.tokenization.tokenizer import Tokenizer
from bertforge.tokenization.train import train_tokenizer

__all__ = ["BatchEncoding", "Tokenizer", "train_tokenizer"]
