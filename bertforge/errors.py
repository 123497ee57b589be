"""One exception family for everything a user can get wrong.

Messages name the file/key/value at fault and say how to fix it. The CLI prints them as one
line on stderr with exit code 2 (`--debug` shows the traceback).
"""


class BertforgeError(Exception):
    """Base class: a problem with the user's input, not a bug in bertforge."""


class ConfigError(BertforgeError):
    """A configuration value is missing, unknown or inconsistent."""


class DataError(BertforgeError):
    """Input data is missing, empty, undecodable or out of range."""


class CheckpointError(BertforgeError):
    """A checkpoint directory is missing files, corrupt, or does not match its config."""


class TokenizerError(BertforgeError):
    """A tokenizer is missing, corrupt, or does not fit the model it is used with."""
