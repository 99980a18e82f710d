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

Three shapes say it in more than one word, each read on the caller's whole turn so far:

- A turn of openers alone ("Hi,", "So,", "Hi, yeah,", "Okay, well"; "Hola, buenos días", "Alors"):
  the caller has greeted or taken the floor and said nothing yet. A "yeah" or an "okay" alone is an
  answer, so at least one word must be one that only opens ("hi", "hello", "so", "well"). A greeting
  said as a question ("Hello?", a caller checking the line) ends the turn as any question does.
- A noun that announces what follows, then "is" ("So the thing is", "My question is"; "El problema es",
  "Le souci c'est"), or "what" and a verb of wanting or happening ("What I need is", "what happened
  was"): the sentence has told the listener its content comes next. After a pronoun ("Yes, it is.",
  "I know where it is.") or a question word ("I don't know what the problem is.") it ends one.
- "Good morning," opens as "Hi," does; "Morning." alone answers "morning or afternoon?".
- "On", "in" or "at" after a word of place ("she lives over on", "he's out at", "based in"): left out
  alone for "hold on", "come in" and "where it's at", but after "over", "up", "down" or "out" they
  still want the place.

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
# words that open a turn and say nothing yet; OPENING the ones that only open (a "yeah" alone answers)
OPENING: dict[str, frozenset[str]] = {
    "en": frozenset("hi hello hey hiya so well".split()),
    "es": frozenset("hola buenas buenos pues entonces mire oiga oye".split()),
    "fr": frozenset("bonjour allô allo alors donc ben bah".split()),
}
_OPENERS: dict[str, frozenset[str]] = {
    "en": OPENING["en"] | frozenset("there good yeah yes yep okay ok oh um uh umm uhm er erm".split()),
    "es": OPENING["es"] | frozenset("días tardes sí si bueno eh em este".split()),
    "fr": OPENING["fr"] | frozenset("oui bon eh euh heu".split()),
}
# a greeting of two words, read as one opening word: "Good morning," opens, "Morning." alone answers
# "morning or afternoon?"
_GREETINGS = {("good", "morning"), ("good", "afternoon"), ("good", "evening")}
# a noun that announces what follows "is" ("the thing is"), or a verb of wanting or happening after
# "what" ("what I need is", "what happened was"), and the "is" itself
_ANNOUNCING: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str]]] = {
    "en": (frozenset("""thing problem issue question reason point deal truth trouble situation story
        concern worry catch plan idea fact request""".split()),
           frozenset("need needed want wanted happened happens mean meant asking wondering hoping".split()),
           frozenset({"is", "was"})),
    "es": (frozenset("problema cosa tema asunto pregunta razón verdad".split()),
           frozenset("pasa pasó necesito quiero".split()), frozenset({"es", "era"})),
    "fr": (frozenset("problème truc chose souci question raison fait".split()),
           frozenset("passe veux voudrais".split()), frozenset({"c'est", "est", "était"})),
}
# a noun head after one of these says what is not known or asked ("I don't know what the problem is"):
# the sentence is whole
_ASKED = {"en": frozenset("what how where why who which whatever whether if".split()),
          "es": frozenset("qué cuál cómo dónde".split()), "fr": frozenset("quel quelle quoi comment où".split())}
_PLACE = ("en", frozenset("over up down out located based".split()), frozenset({"on", "in", "at"}))
_IMPERATIVE_PRONOUN = re.compile(r"-(le|la|les)$")  # French "Envoyez-le": the sentence is whole


def sounds_unfinished(transcript: str, language: str = "en") -> bool:
    """Whether the caller's words so far stop where a sentence in `language` cannot end: the last word
    is on its list, the turn is openers alone, or it ends on an announcing "is" or a place's "on", and
    the transcriber did not hear a question. False in a language without a list."""
    words = UNFINISHED.get(language)
    text = transcript.strip().rstrip(".,;:!…-– \u2014").lower()
    if not words or not text or text.endswith("?") or _IMPERATIVE_PRONOUN.search(text):
        return False
    found = words_of(text)
    if not found:
        return False
    if found[-1] in words:
        return True
    if _openers_alone(found, language):
        return True
    if len(found) < 2:
        return False
    nouns, verbs, copulas = _ANNOUNCING[language]
    if found[-1] in copulas and found[-2] in verbs:
        return True
    if found[-1] in copulas and found[-2] in nouns:
        return not _ASKED[language] & set(found[-6:-2])
    place_language, places, prepositions = _PLACE
    return language == place_language and found[-1] in prepositions and found[-2] in places


def _openers_alone(found: list[str], language: str) -> bool:
    """A turn of words that open one, at least one of which does nothing else ("Hi, yeah,")."""
    words: list[str] = []
    for w in found:
        if words and (words[-1], w) in _GREETINGS:
            words[-1] = "hi"
        else:
            words.append(w)
    return all(w in _OPENERS[language] for w in words) and any(w in OPENING[language] for w in words)
