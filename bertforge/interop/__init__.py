"""Checkpoint formats of other ecosystems; `hf` is the Hugging Face one."""
