"""The wording every grounding check reads: sentences, normalised text, questions, negations, hedges
and numbers said in words."""

from __future__ import annotations

import re


def normalise(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'").replace("–", "-").replace("—", "-")
    text = re.sub(r"\b([ap])\.\s?m\.?(?=\s|$|[,;!?)])", r"\1m", text)
    return re.sub(r"\s+", " ", text).strip()


def sentences(text: str) -> list[str]:
    text = re.sub(
        r"\b([AaPp])\.\s?[Mm]\.(?=\s+[a-z])", r"\1M", text
    )  # "8 a.m. on" is not a full stop
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


INTERJECTION = r"(?:(?:yes|yeah|yep|no|nope|sure|ok|okay|well|so|actually|and|but|sorry|unfortunately|great|perfect|right|oh|also)\b[\s,]*)*"
_QUESTION_START = re.compile(
    INTERJECTION
    + r"(?:are|is|do|does|did|would|could|can|will|shall|should|what|when|which|how|where|who|why|may|have|has)\b"
)


def is_question(lowered: str) -> bool:
    return lowered.rstrip().endswith("?") or bool(_QUESTION_START.match(lowered))


NEGATION = re.compile(r"\b(?:not|never|no|nor|neither|cannot|none)\b|n't\b|\bno longer\b")
HEDGE = re.compile(
    r"\b(?:if|whether|check|checking|confirm|verify|find out|ask|sure|wonder|wondering|might|maybe|"
    r"possibly|let me|i'll see|you said|you mentioned|you asked|you're asking|you heard|you saw|online|"
    r"website says|google)\b"
)
# numbers said in words, up to the tens ("a hundred" counts "a" as one)
SPOKEN_NUMBERS = {
    "zero": 0,
    "a": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
