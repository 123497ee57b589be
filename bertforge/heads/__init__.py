"""Heads map encoder output to logits: MLM, NSP/SOP, replaced-token detection, span boundary,
and the sequence/token/span heads of task models. Whole models (encoder + heads) live in
`bertforge.architectures`; losses in `bertforge.objectives`."""

from bertforge.heads.classification import SequenceHead, SpanHead, TokenHead
from bertforge.heads.mlm import MLMHead
from bertforge.heads.nsp import NSPHead
from bertforge.heads.rtd import RTDHead
from bertforge.heads.sbo import SBOHead

__all__ = ["MLMHead", "NSPHead", "RTDHead", "SBOHead", "SequenceHead", "SpanHead", "TokenHead"]
