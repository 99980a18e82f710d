"""Words a sentence does not end on: what a caller who stops after them has not finished.

People pause mid-sentence after a filler ("I'm calling about, um"), an article or a possessive ("the",
"my"), a conjunction ("and", "because") or a preposition that still wants its object ("a quote for"):
the hesitation comes before the content word they are looking for. A caller who stops there for a
second has not finished, however long the silence. Each list is kept to words that end a sentence only
in a question (which a transcriber writes with its question mark) or not at all:

- English: auxiliaries ("Yes, I do.", "It is."), particles ("Hold on.", "Come in.") and "so" ("I
  think so.") end plenty of answers and are left out, as are "mhm" and "hmm", which are answers in
  themselves.
- Spanish: "una" and "nuestro" end answers ("¿Cuántas? Una.", "Es nuestro."), and "si" is "sí" with its
  accent lost; "este" is a filler but also "this one".
- French: "un" and "une" end answers ("J'en veux une."), "si" is a yes, "son" is also a sound, and
  "avec", "sans" end colloquial sentences ("Je fais avec."). "le", "la" and "les" after a hyphen are
  an imperative's pronoun ("Envoyez-le."), which ends one.

One list is read at a time, the caller's language's: the lists together would hold a caller who ends
on "car" or "pour" in English. In any language without a list here only the silence decides.
"""

from __future__ import annotations

import re

from agent.brain.languages import words_of

UNFINISHED: dict[str, frozenset[str]] = {
    "en": frozenset(
        # fillers, conjunctions, determiners and possessives, prepositions
        "um umm uh uhh uhm erm er like "
        "and but or because cause if "
        "a an the my your our their his its "
        "to of for about with from into".split()
    ),
    "es": frozenset(
        "eh em "
        "y e o u pero porque aunque que "
        "el la los las un mi mis tu tus su sus "
        "a al de del para por con sin en".split()
    ),
    "fr": frozenset(
        "euh heu "
        "et mais ou car parce que "
        "le la les des du au aux mon ma mes ton ta tes sa ses notre votre nos vos "
        "à de pour dans chez".split()
    ),
}
_IMPERATIVE_PRONOUN = re.compile(r"-(le|la|les)$")  # French "Envoyez-le": the sentence is whole


def sounds_unfinished(transcript: str, language: str = "en") -> bool:
    """Whether the caller's words so far stop where a sentence in `language` cannot end: the last word
    is on its list and the transcriber did not hear a question. False in a language without a list."""
    words = UNFINISHED.get(language)
    text = transcript.strip().rstrip(".,;:!…-– \u2014").lower()
    if not words or not text or text.endswith("?") or _IMPERATIVE_PRONOUN.search(text):
        return False
    found = words_of(text)
    return bool(found) and found[-1] in words
