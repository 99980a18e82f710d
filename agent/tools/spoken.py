"""What callers say, made exact before it touches a database: days, times and phone numbers.

Every parser raises ToolError with a sentence the model can act on; none returns a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from livekit.agents import ToolError

from agent.brain.schema.fields import WEEKDAYS

DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    # Spanish and French, as a transcriber writes a caller's digits said one by one ("un", "une" and
    # "una" are left out: they are articles far more often than a digit)
    "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5", "seis": "6",
    "siete": "7", "ocho": "8", "nueve": "9",
    "zéro": "0", "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "sept": "7", "huit": "8",
    "neuf": "9",
}
REPEAT_WORDS = {"double": 2, "triple": 3}  # "double five" is 55


def parse_day(value: str, today: date) -> date:
    """'2026-11-25', 'today', 'tomorrow', 'saturday', 'next monday' -> a date (never in the past)."""
    text = (value or "").strip().lower()
    if not text:
        raise ToolError("I need a day: ask the caller which day they mean.")
    if text == "today":
        return today
    if text == "tomorrow":
        return today + timedelta(days=1)
    words = text.replace(",", " ").split()
    for i, w in enumerate(words):
        if w in WEEKDAYS:
            ahead = (WEEKDAYS.index(w) - today.weekday()) % 7
            if i > 0 and words[i - 1] == "next" and ahead == 0:
                ahead = 7
            return today + timedelta(days=ahead)
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        raise ToolError(
            f"I could not read the day {value!r}. Use YYYY-MM-DD (today is {today.isoformat()}, "
            f"a {WEEKDAYS[today.weekday()].title()}), or a weekday name."
        ) from None
    return day


def parse_start(value: str, tz: ZoneInfo) -> datetime:
    """'2026-11-25T09:00' (business local time) or with an offset -> aware datetime in the business tz."""
    text = (value or "").strip().replace(" ", "T", 1)
    if not text:
        raise ToolError("I need the appointment's start time as YYYY-MM-DDTHH:MM in the business's local time.")
    try:
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        return dt.astimezone(tz)
    except (ValueError, OverflowError):  # OverflowError: year 1 / 9999 shifted by an offset
        raise ToolError(
            f"I could not read the start time {value!r}. Use YYYY-MM-DDTHH:MM in the business's local "
            "time, exactly as check_availability listed it."
        ) from None


_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10))


def clean_text(value: str, limit: int) -> str:
    """Free text from the model made safe to store: no control characters (Postgres refuses NUL),
    runs of white space folded, at most `limit` characters."""
    return " ".join((value or "").translate(_CONTROL).split())[:limit]


# "un", "une" and "una" are a digit or an article: a digit after a digit ("zéro un huit", "un un neuf")
# or before one ("un neuf huit" opening the number), an article before a noun ("j'ai un numéro") and
# after "est", "ai" or "es" even before digits ("c'est un 06...", "es una 5...": "it's a 06 number")
ONE_OR_ARTICLE = frozenset({"un", "une", "una"})
_ARTICLE_AFTER = frozenset(
    {"est", "c'est", "ai", "j'ai", "as", "a", "avez", "avons", "ont", "sont", "es", "tengo", "tiene", "son"}
)


def one_or_article(tokens: list[str], i: int, after_a_digit: bool, is_digit: Callable[[str], bool]) -> bool:
    """Whether tokens[i], an "un", "une" or "una", is the digit 1: after a digit (`after_a_digit`), or
    before one (`is_digit` of the next token) unless a verb before it makes it an article."""
    if after_a_digit:
        return True
    after = tokens[i + 1] if i + 1 < len(tokens) else ""
    before = tokens[i - 1] if i else ""
    return (is_digit(after) or after in ONE_OR_ARTICLE) and before not in _ARTICLE_AFTER


def _a_digit(token: str) -> bool:
    return token.isdigit() or token in DIGIT_WORDS


# a number said in pairs or as tens ("five five five, twenty-one fifty"; "zéro six, douze, trente-quatre";
# "cincuenta y cinco"): each is its two digits. Not the Spanish "once" (11): in English it is a word
# callers say in any sentence ("once I get home")
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "diez": 10, "doce": 12, "trece": 13, "catorce": 14, "quince": 15, "dieciséis": 16,
    "dieciseis": 16, "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veintiuno": 21, "veintiún": 21,
    "veintidós": 22, "veintidos": 22, "veintitrés": 23, "veintitres": 23, "veinticuatro": 24,
    "veinticinco": 25, "veintiséis": 26, "veintiseis": 26, "veintisiete": 27, "veintiocho": 28,
    "veintinueve": 29,
    "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "veinte": 20, "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60, "setenta": 70, "ochenta": 80,
    "noventa": 90,
    "vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60, "septante": 70,
    "huitante": 80, "octante": 80, "nonante": 90,
}  # fmt: skip
_TENS_AND = frozenset({"y", "et"})  # "cincuenta y cinco", "vingt et un"


def _unit(token: str) -> int | None:
    digit = DIGIT_WORDS.get(token) or ("1" if token in ONE_OR_ARTICLE else None)
    return int(digit) if digit is not None and digit != "0" else None


def _teen(tokens: list[str], i: int) -> tuple[int, int] | None:
    """A 10-19 (or Spanish 21-29) at tokens[i], French "dix-sept" to "dix-neuf" included: (value, tokens)."""
    value = _TEENS.get(tokens[i])
    if value is None:
        return None
    if value == 10 and tokens[i] == "dix" and i + 1 < len(tokens) and tokens[i + 1] in ("sept", "huit", "neuf"):
        return 10 + int(DIGIT_WORDS[tokens[i + 1]]), 2
    return value, 1


def _tens(tokens: list[str], i: int) -> tuple[int, int] | None:
    """A number of 20-99 said as tens at tokens[i] ("twenty one", "trente-quatre", "soixante et onze",
    "quatre-vingt-dix-sept", "cincuenta y cinco"): (value, tokens it took), or None."""
    n = len(tokens)
    if tokens[i] == "quatre" and i + 1 < n and tokens[i + 1] in ("vingt", "vingts"):
        value, j = 80, i + 2  # quatre-vingts
    elif tokens[i] in _TENS:
        value, j = _TENS[tokens[i]], i + 1
    else:
        return None
    if j < n and tokens[j] in _TENS_AND:
        j += 1
        if j >= n or (_unit(tokens[j]) is None and _teen(tokens, j) is None):
            return value, j - i - 1  # "cincuenta y": the "y" is not the number's
    if j < n and value in (60, 80) and (teen := _teen(tokens, j)) is not None and teen[0] < 20:
        return value + teen[0], j - i + teen[1]  # soixante-dix, quatre-vingt-douze
    if j < n and (unit := _unit(tokens[j])) is not None:
        return value + unit, j - i + 1
    return value, j - i


def spoken_digits(text: str) -> str:
    """'five five five, double two' -> '55522' ('cinco cinco', 'cinq cinq' too); tens and teens are their
    two digits ('twenty-one fifty' -> '2150', 'zéro six, douze' -> '0612'); digits pass through; other
    words are dropped."""
    tokens = re.findall(r"[^\W\d_]+|\d|\+", text.lower())
    out: list[str] = []
    repeat = 1
    counted = False  # the token before was read as a digit
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in REPEAT_WORDS:
            repeat = REPEAT_WORDS[token]
            i += 1
            continue
        pair = _tens(tokens, i) or _teen(tokens, i)
        if pair is not None:
            out.append(str(pair[0]) * repeat)
            repeat, counted = 1, True
            i += pair[1]
            continue
        if token.isdigit() or token == "+":
            digit: str | None = token
        elif token in ONE_OR_ARTICLE:
            digit = "1" if one_or_article(tokens, i, counted, _a_digit) else None
        else:
            digit = DIGIT_WORDS.get(token)
        counted = digit is not None
        i += 1
        if digit is None:
            repeat = 1
            continue
        out.append(digit * repeat)
        repeat = 1
    return "".join(out)


def normalise_phone(value: str, region: str) -> str:
    """A caller's phone number as E.164, or a ToolError saying what was wrong with it."""
    raw = (value or "").strip()
    if not raw:
        raise ToolError("I need the caller's phone number: ask for it, digit by digit.")
    digits = spoken_digits(raw)
    candidates = [raw, digits] if digits else [raw]
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    shown = " ".join(digits) if digits else raw
    count = len(digits.lstrip("+"))
    raise ToolError(
        f"That phone number is not valid: I got {count} digits ({shown}). Ask the caller to say "
        "the whole number again, digit by digit, and read it back to confirm."
    )


_DIGIT_NAMES = "zero one two three four five six seven eight nine".split()


def say_digits(e164: str) -> str:
    """'+15035550187' -> 'one five zero three ...': a number as it is read back, digit by digit."""
    return " ".join(_DIGIT_NAMES[int(d)] for d in e164.lstrip("+"))


def say_number(e164: str, home_region: str) -> str:
    """A number read back as a caller says it: without the country code when it is the business's own
    country ('five zero three ...'), with it otherwise."""
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return say_digits(e164)
    if phonenumbers.region_code_for_number(parsed) == home_region:
        return say_digits(str(parsed.national_number))
    return say_digits(e164)


def region_of(e164: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164)) or "US"
    except phonenumbers.NumberParseException:
        return "US"


def say_time(t: time | datetime) -> str:
    """09:30 -> '9:30 AM', 13:00 -> '1 PM' (how a receptionist reads a time aloud)."""
    hour = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


def say_day(d: date, today: date) -> str:
    if d == today:
        return "today"
    if d == today + timedelta(days=1):
        return "tomorrow"
    return f"{WEEKDAYS[d.weekday()].title()} {d.strftime('%B')} {d.day}"
