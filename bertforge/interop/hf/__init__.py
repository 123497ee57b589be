"""The only package that knows Hugging Face key names: one adapter module per family."""
