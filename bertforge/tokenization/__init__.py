"""Tokenizers for the BERT family: load, call like transformers, train, save.

Wraps the HF `tokenizers` library (WordPiece and byte-level BPE); nothing is reimplemented.
"""

from bertforge.tokenization.encoding import BatchEncoding
from bertforge.tokenization.tokenizer import Tokenizer
from bertforge.tokenization.train import train_tokenizer

__all__ = ["BatchEncoding", "Tokenizer", "train_tokenizer"]
