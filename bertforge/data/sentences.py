"""Fast regex sentence splitter for English prose, plus the CJK enders 。！？.

One regex finds candidate boundaries (a terminator, closing quotes/brackets, whitespace, then
something that can start a sentence); a short Python check per candidate rejects abbreviations
and initials. Work per sentence, never per character or token.
"""

from __future__ import annotations

import re

# Candidate English boundary: terminators, closers, whitespace, then an opener (optional)
# followed by a character that is not an ASCII lowercase letter (a sentence never starts with
# one; "e.g. the" and "3 p.m. and" therefore never split). CJK enders need no whitespace.
# The leading lookahead lets the regex engine skip to terminator characters (2x faster).
_BOUNDARY = re.compile(
    r"""
    (?=[.?!…。！？])
    (?P<end>
        (?P<term>[.?!…]+)["'”’»)\]]*(?=\s+["'“‘«(\[]*(?![a-z])\w)
      | [。！？]+[」』”’）]*
    )
    \s*
    """,
    re.VERBOSE,
)

# Words that end in "." without ending a sentence (compared lowercased, without the dot).
# Words that also end sentences often ("no", "sun") are left out on purpose.
_ABBREVIATIONS = """
    mr mrs ms dr prof rev hon st sr jr mt ft messrs mme mlle sen gov gen col lt capt sgt cmdr
    adm maj cpl pres supt vs etc cf al approx dept fig figs eds vol vols chap pp p inc ltd corp
    bros jan feb mar apr jun jul aug sep sept oct nov dec ave blvd
"""
ABBREVIATIONS = frozenset(_ABBREVIATIONS.split())

_WORD_BEFORE = re.compile(r"(\S+)$")


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the "." at `dot` ends an abbreviation, an initial or dotted letters (U.S, e.g)."""
    m = _WORD_BEFORE.search(text, max(0, dot - 24), dot)
    if m is None:
        return False
    word = m.group(1).lstrip("\"'“‘([")
    if word.lower() in ABBREVIATIONS:
        return True
    if len(word) == 1:  # an initial ("J. R. R. Tolkien"), but "I." ends sentences
        return word.isupper() and word != "I"
    # Letters separated by dots: "U.S", "e.g", "i.e", "Ph.D".
    return "." in word and len(word) <= 8 and word.replace(".", "").isalpha()


def split_sentences(text: str) -> list[str]:
    """Sentences of one paragraph, whitespace-trimmed; text without an ender is one sentence."""
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if m.group("term") == "." and _is_abbreviation(text, m.start("term")):
            continue
        sentence = text[start : m.end("end")].strip()
        if sentence:
            out.append(sentence)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out
