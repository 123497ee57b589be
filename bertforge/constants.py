"""Sentinel values shared by data, objectives and tasks (one definition each)."""

IGNORE_INDEX = -100  # label at positions a loss skips (PyTorch's cross-entropy default)
NO_LABEL = -1  # an example without a sentence-pair (NSP/SOP) label
