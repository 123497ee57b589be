"""Hugging Face checkpoints in and out: the only code that applies HF key names (the names
themselves are each family's `HFLayout`, in `bertforge/families/`).

Importing this package installs `HFFormat` as the format behind every module's
`from_pretrained` / `save_pretrained` (`bertforge/pretrained.py`).
"""

from bertforge.interop.hf.format import Checkpoint, HFFormat, load_checkpoint, load_state
from bertforge.pretrained import use_format

use_format(HFFormat())

__all__ = ["Checkpoint", "HFFormat", "load_checkpoint", "load_state"]
