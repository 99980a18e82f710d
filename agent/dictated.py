"""What a caller is dictating, and whether what they have said so far is all of it.

After the agent asks for a phone number, a confirmation code or an email address, the call knows what a
whole one looks like: a number valid in the business's country, a code of CODE_LENGTH characters, an
address ending in a known domain, the letters of a name the call has heard (the agent's question names it,
"How do you spell Kowalski?", or the caller said it in the turns before). The transcripts of the caller's turn, part by part as each pause is
committed, tell whether they are done (answer now), still part way (wait through the next pause), or
saying something else (pace the turn as any dictation).
Street addresses, and spellings of a name the call has not heard, have no such end: they are dictated,
but never judged whole.
"""

from __future__ import annotations

import re
from enum import Enum

import phonenumbers

from agent.store.appointments import CODE_LENGTH
from agent.tools.spoken import (
    DIGIT_WORDS,
    ONE_OR_ARTICLE,
    REPEAT_WORDS,
    one_or_article,
    spoken_digits,
)

# the agent just asked for something callers say in groups, with pauses between them (in English,
# Spanish or French: the agent asks in the caller's language)
_DICTATION = re.compile(
    r"\b(phone|number|digits?|address|zip|postcode|postal code|spell|spelling|e-?mail|"
    r"confirmation code|code|date of birth|card|"
    r"teléfono|telefono|número|numero|dígitos|dirección|direccion|código|codigo|correo|deletre\w*|"
    r"escribe|tarjeta|"
    r"téléphone|numéro|chiffres|adresse|courriel|épel\w*|s'écrit|carte)\b[^.!]*\?|\b(spell|deletre\w*|épel\w*)\b",
    re.IGNORECASE,
)
_CODE = re.compile(r"\b(confirmation )?code\b|\bc[óo]digo\b", re.IGNORECASE)
# a phone named outright: "the phone number on the account", "el teléfono de casa" ask for one
_PHONES = r"phone|cell|mobile|teléfono|telefono|celular|móvil|movil|téléphone|portable"
_PHONE_NAMED = re.compile(rf"\b({_PHONES})\b", re.IGNORECASE)
_PHONE = re.compile(
    rf"\b({_PHONES}|callback|call back|reach you|joindre)\b|\b(number|número|numero|numéro)\b", re.IGNORECASE
)
_EMAIL = re.compile(r"\be-?mail\b|\bcorreo\b|\bcourriel\b|\badresse (e-?)?mail\b", re.IGNORECASE)
_SPELL = re.compile(r"\bspell(ed|ing)?\b|\bdeletre\w*|\bescribe\b|\bépel\w*|\bs'écrit\b", re.IGNORECASE)
_NOT_PHONE = re.compile(
    r"\b(house|street|address|card|zip|postcode|postal|policy|account|"
    r"casa|calle|dirección|direccion|tarjeta|cuenta|póliza|poliza|"
    r"maison|rue|adresse|carte|compte|contrat)\b",
    re.IGNORECASE,
)


class Asked(Enum):
    """What the agent's question asked the caller to dictate."""

    PHONE = "phone"  # a phone number: whole once valid in the business's country
    CODE = "code"  # a confirmation code: whole at CODE_LENGTH characters
    EMAIL = "email"  # an email address: whole once it ends in a known top-level domain
    SPELLING = "spelling"  # a name spelled: whole once its letters spell a name the call has heard
    OPEN = "open"  # an address: no length that says it is complete


class Heard(Enum):
    """What the caller's words so far amount to, against what was asked."""

    WHOLE = "whole"  # all of it: their turn can end at the usual delay
    PART = "part"  # not all of it yet: a pause is between groups
    OTHER = "other"  # not the value, or not one we can count: the dictation delay decides


def asked_for(agent_text: str) -> Asked | None:
    """What this agent turn asked the caller to dictate, if anything."""
    for question in _questions(agent_text):
        if not _DICTATION.search(question):
            continue
        if _EMAIL.search(question):
            return Asked.EMAIL
        if _CODE.search(question) and not _NOT_PHONE.search(question):
            return Asked.CODE
        if _PHONE.search(question) and (_PHONE_NAMED.search(question) or not _NOT_PHONE.search(question)):
            return Asked.PHONE
        if _SPELL.search(question):
            return Asked.SPELLING
        return Asked.OPEN
    return None


def _questions(text: str) -> list[str]:
    """The last question first: 'Thanks. And your phone number?' asks for the number."""
    spell = re.search(r"\b(spell|deletre\w*|épel\w*)\b", text, re.IGNORECASE)
    parts = re.findall(r"[^.!?]*\?", text) or ([text] if spell else [])
    return [p.strip() for p in reversed(parts)]


# words that lead into a value not yet said ("my number is", "the code's", "um", "let me find it"): a
# pause after them is the caller looking for it. "Yes" and "sure" are not among them: they answer
# "is this the best number for you?" whole (nor "sí", "bueno", "oui", "d'accord"). Spanish: "mi número
# es", "eh", "a ver", "un momento", "déjeme ver"; French: "c'est", "euh", "attendez", "un instant".
_LEAD_IN = re.compile(
    r"(\b(is|it's|its|code's|number's|are|um+|uh+|er+m?|hmm+|so|well|wait)|\blet me (see|check|think|find|"
    r"look|grab|get)( (it|that|them|up|for it))?|\b(hold|hang) on|\b(one|a|just a) (sec|second|moment|minute)|"
    r"\b(es|eh+|este|pues|a ver|espere|un (momento|segundo)|d[ée]j[ea]me (ver|buscar\w*))|"
    r"(\bc'|\b)(est|euh+|alors|attendez|voyons|un (instant|moment)|une seconde|laissez-moi (voir|chercher)))"
    r"[\s,.…-]*$",
    re.IGNORECASE,
)


def judge(asked: Asked, transcript: str, region: str, names: frozenset[str] = frozenset()) -> Heard:
    """Whether the caller's words so far (`transcript`: the turn's parts, joined) are all of what was
    asked for. Words that lead into it, with none of it said yet, are part of it. `names`: what a
    spelling may be of (`names_heard`)."""
    heard = _judge(asked, transcript, region, names)
    if heard is not Heard.OTHER or asked is Asked.OPEN:
        return heard
    before = transcript
    while (shorter := _LEAD_IN.sub("", before)) != before:  # "one sec, um": neither is a digit
        before = shorter
    if before == transcript:  # no lead-in at its end
        return heard
    return Heard.OTHER if _any_of_it(asked, before) else Heard.PART


def _any_of_it(asked: Asked, transcript: str) -> bool:
    if asked is Asked.PHONE:
        return bool(spoken_digits(transcript).lstrip("+"))
    if asked is Asked.CODE:
        return bool(code_characters(transcript))
    if asked is Asked.SPELLING:
        return bool(spelled_letters(transcript))
    return _email(transcript) is not Heard.OTHER


def _judge(asked: Asked, transcript: str, region: str, names: frozenset[str]) -> Heard:
    if asked is Asked.PHONE:
        return _phone(transcript, region)
    if asked is Asked.CODE:
        n = len(code_characters(transcript))
        if n == 0 or n > CODE_LENGTH:
            return Heard.OTHER
        return Heard.WHOLE if n == CODE_LENGTH else Heard.PART
    if asked is Asked.EMAIL:
        return _email(transcript)
    if asked is Asked.SPELLING:
        return _spelling(transcript, names)
    return Heard.OTHER


def _spelling(transcript: str, names: frozenset[str]) -> Heard:
    """'k o w' of 'kowalski' is part of it, 'k o w a l s k i' all of it; letters that are no name heard
    are not ours to judge. One letter may differ from the name as heard before the last: the name was
    heard through a transcriber, which is why the agent asks for its spelling. So 'c o w' goes on
    towards 'kowalski', but only the exact letters end the turn early."""
    letters = spelled_letters(transcript)
    if not letters:
        return Heard.OTHER
    if any(len(letters) < len(n) and _differ(letters, n[: len(letters)]) <= 1 for n in names):
        return Heard.PART  # a longer name it may still become
    return Heard.WHOLE if letters in names else Heard.OTHER


def _differ(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


# words a caller or the agent says around a name, never the name a spelling is of
_NOT_NAMES = frozenset("""
a an and are as at be but by can could did do does for from had has have he her hi his how i i'm i'd
if in is it it's its just last let like me my name name's no not of oh ok okay on or our please sure
surname that the thanks thank that's their them then there they this to uh um was we well what
what's when which who will with would yeah yes you your first spell spelling
""".split())  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]")


def names_heard(agent_text: str, caller_said: list[str]) -> frozenset[str]:
    """What a spelling asked for now may be of, lower-cased letters only: the words with a capital in
    the agent's question that do not start a sentence ("How do you spell Kowalski?"), and the caller's
    words in the turns before it ("it's Anna Kowalski"), less the words around any name."""
    names = set()
    for sentence in re.split(r"(?<=[.!?])\s+", agent_text):
        names.update(w for w in _WORD.findall(sentence)[1:] if w[0].isupper())
    for said in caller_said:
        names.update(_WORD.findall(said))
    return frozenset(
        letters for w in names
        if (letters := re.sub(r"[^a-z]", "", w.lower())) and len(letters) >= 2 and w.lower() not in _NOT_NAMES
    )  # fmt: skip


# the endings an address is finished at: 'dot co' may go on ('dot co dot uk'), so it is not one
_LAST_DOMAIN = re.compile(r"@[a-z0-9-]+(\.[a-z0-9-]+)*\.(com|org|net|edu|gov|io|us|uk|ca|au|de|fr|ie|nz|info|es|mx)$")
_EMAIL_WORDS = {
    "at": "@", "dot": ".", "underscore": "_", "dash": "-", "hyphen": "-",
    "arroba": "@", "punto": ".", "guion": "-",  # Spanish
    "arobase": "@", "point": ".", "tiret": "-",  # French
}  # fmt: skip


def _email(transcript: str) -> Heard:
    """'o k a at n g u dot c o m' and 'oka@ngu.com' are whole; 'o k a at n g u' is part of one."""
    tokens = re.findall(r"[a-z0-9@._+-]+", transcript.lower().replace("'", ""))
    if not any(_EMAIL_WORDS.get(t) == "@" or "@" in t or (len(t) == 1 and t != "i") for t in tokens):
        return Heard.OTHER  # no letter spelled, no 'at': not an address being given
    address = "".join(_EMAIL_WORDS.get(t, t) for t in tokens).rstrip(".")
    return Heard.WHOLE if _LAST_DOMAIN.search(address) else Heard.PART


def _phone(transcript: str, region: str) -> Heard:
    digits = spoken_digits(transcript)
    if not digits.lstrip("+"):
        return Heard.OTHER
    try:
        number = phonenumbers.parse(digits, None if digits.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return Heard.PART if digits.startswith("+") and len(digits) <= 4 else Heard.OTHER
    reason = phonenumbers.is_possible_number_with_reason(number)
    Reason = phonenumbers.ValidationResult
    if reason in (Reason.TOO_SHORT, Reason.IS_POSSIBLE_LOCAL_ONLY):
        return Heard.PART
    if reason != Reason.IS_POSSIBLE:
        return Heard.OTHER
    if number.country_code == 1 and not digits.startswith("+") and digits.startswith("1") and len(digits) == 10:
        return Heard.PART  # '1' and nine digits: the trunk prefix, the number not yet all said
    if phonenumbers.is_valid_number(number):
        return Heard.WHOLE
    # not a number yet, though long enough for some: more digits may make it one
    region_of_number = phonenumbers.region_code_for_country_code(number.country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region_of_number)
    longest = max(metadata.general_desc.possible_length, default=0) if metadata is not None else 0
    national = len(phonenumbers.national_significant_number(number))
    return Heard.PART if national < longest else Heard.OTHER


_LETTER_WORDS = {
    "alpha", "alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
}  # fmt: skip
_AS_IN = re.compile(r"\b(as|like) in [a-z]+")


def _a_code_character(token: str) -> bool:
    return token.isdigit() or token in DIGIT_WORDS or (len(token) == 1 and token != "i") or token in _LETTER_WORDS


def code_characters(transcript: str) -> str:
    """The letters and digits a caller said, one per spoken character: 'k seven p, 4 m 2' -> 'k7p4m2'.
    Digits, digit words, single letters and the phonetic alphabet count; other words ('it's', 'my',
    'code', 'I') do not, and words that outnumber the characters ('yes, I have one') are no code."""
    out: list[str] = []
    words = 0
    repeat = 1
    text = _AS_IN.sub(" ", transcript.lower().replace("-", " "))  # 'b as in boy' is one b
    tokens = re.findall(r"(?:[^\W_]|')+", text)
    counted = False  # the token before was read as a character
    for i, token in enumerate(tokens):
        if token in REPEAT_WORDS:
            repeat = REPEAT_WORDS[token]
            continue
        counted, was_counted = True, counted
        if token.isdigit():
            chars = token
        elif token in DIGIT_WORDS:
            chars = DIGIT_WORDS[token]
        elif token in ONE_OR_ARTICLE and one_or_article(tokens, i, was_counted, _a_code_character):
            chars = "1"  # French "un" among a code's characters ("neuf r a n, un w")
        elif (len(token) == 1 and token != "i") or token in _LETTER_WORDS:  # 'i' is the caller
            chars = token[0]
        elif any(c.isdigit() for c in token) and len(token) <= CODE_LENGTH and "'" not in token:
            chars = token  # a transcriber writing the code as it looks: 'k7p'
        else:
            words += 1
            repeat = 1
            counted = False
            continue
        out.append(chars[0] * repeat + chars[1:])
        repeat = 1
    said = "".join(out)
    return "" if words > len(said) else said


def spelled_letters(transcript: str) -> str:
    """The letters a caller spelled, whatever words are around them: 'my last name is K-O-W, double
    L' -> 'kowll'. 'A' and 'I' are letters beside another letter ('k i', 'a n n a'), else words."""
    tokens = re.findall(r"[a-z']+", _AS_IN.sub(" ", re.sub(r"[-.,]", " ", transcript.lower())))

    def letter(i: int) -> bool:
        return 0 <= i < len(tokens) and (len(tokens[i]) == 1 or tokens[i] in _LETTER_WORDS)

    out: list[str] = []
    repeat = 1
    for i, token in enumerate(tokens):
        if token in REPEAT_WORDS:
            repeat = REPEAT_WORDS[token]
            continue
        if letter(i) and (token not in ("a", "i") or letter(i - 1) or letter(i + 1) or repeat > 1):
            out.append(token[0] * repeat)
        repeat = 1
    return "".join(out)
