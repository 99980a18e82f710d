"""Words an English sentence does not end on: what a caller who stops after them has not finished.

People pause mid-sentence after a filler ("I'm calling about, um"), an article or a possessive ("the",
"my"), a conjunction ("and", "because") or a preposition that still wants its object ("a quote for"):
the hesitation comes before the content word they are looking for. A caller who stops there for a
second has not finished, however long the silence. The list is kept to words that end a sentence only
in a question ("What is it for?", which a transcriber writes with its question mark) or not at all:
auxiliaries ("Yes, I do.", "It is."), particles ("Hold on.", "Come in.") and "so" ("I think so.") end
plenty of answers and are left out, as are "mhm" and "hmm", which are answers in themselves.
"""

from __future__ import annotations

import re

FILLERS = frozenset({"um", "umm", "uh", "uhh", "uhm", "erm", "er", "like"})
CONJUNCTIONS = frozenset({"and", "but", "or", "because", "cause", "if"})
DETERMINERS = frozenset({"a", "an", "the", "my", "your", "our", "their", "his", "its"})
PREPOSITIONS = frozenset({"to", "of", "for", "about", "with", "from", "into"})
UNFINISHED = FILLERS | CONJUNCTIONS | DETERMINERS | PREPOSITIONS

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def sounds_unfinished(transcript: str) -> bool:
    """Whether the caller's words so far stop where a sentence cannot end: the last word is one of
    UNFINISHED and the transcriber did not hear a question."""
    text = transcript.strip().rstrip(".,;:!…-– \u2014")
    if not text or text.endswith("?"):
        return False
    words = _WORD.findall(text.lower())
    return bool(words) and words[-1] in UNFINISHED
