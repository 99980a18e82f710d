"""Claims about what a service costs ("a drain cleaning is $95", "from $120", "the inspection is free")
that fall outside the price the brain gives it."""

from __future__ import annotations

import re
from decimal import Decimal

from agent.brain.grounding.text import NEGATION, SPOKEN_NUMBERS
from agent.brain.grounding.violation import Violation
from agent.brain.render import price_text
from agent.brain.schema.brain import Brain
from agent.brain.schema.business import Service

_WORD = r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand)"
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_WORDS = rf"(?:(?:a|and|{_WORD})[\s-]+)*{_WORD}"
_DOLLARS = r"\s*(?:dollars?|bucks|usd)\b"
_MONEY = re.compile(
    rf"(?P<between>\bbetween\s+)?(?<![\d.,:$])"
    rf"(?:\$\s?(?P<d1>{_NUM})(?:\.(?P<c1>\d{{1,2}}))?"
    rf"|(?P<n1>{_NUM})(?:\.(?P<k1>\d{{1,2}}))?(?={_DOLLARS}|\s*(?:to|-|and)\s*\$?{_NUM}(?:\.\d+)?{_DOLLARS})"
    rf"|\b(?P<w1>{_WORDS})(?={_DOLLARS}|\s*(?:to|-|and)\s*{_WORDS}{_DOLLARS}))"
    rf"(?:{_DOLLARS})?"
    rf"(?:\s*(?P<join>to|-|and)\s*(?:\$\s?(?P<d2>{_NUM})(?:\.(?P<c2>\d{{1,2}}))?|(?P<n2>{_NUM})(?:\.(?P<k2>\d{{1,2}}))?(?![\d:])|\b(?P<w2>{_WORDS})(?={_DOLLARS})))?"
)
_LOWER = re.compile(r"\b(?:starting at|starts at|starting from|start at|from)\s*$")
_AT_LEAST = re.compile(r"\b(?:at least|more than|over|upwards of|minimum of|a minimum of)\s*$")
_AT_MOST = re.compile(
    r"\b(?:under|below|less than|no more than|at most|up to|maximum of|a maximum of|max)\s*$"
)
_NOT_A_PRICE = re.compile(
    r"\b(?:deposits?|fees?|charges?|surcharge|discount|off|credit|copays?|co-pays?|deductible|coupon|save|"
    r"savings?|extra|additional|plus|per|hourly|a year|a month|annual|yearly|monthly|tax|tip|"
    r"parts|insurance|covers?|covered|refund|total|balance|owe|owed|paid|bill|invoice|membership|trip|"
    r"estimate|estimates|budget)\b"
)


def _money_value(m: re.Match[str], n: int) -> Decimal | None:
    digits = m.group(f"d{n}") or m.group(f"n{n}")
    if digits:
        cents = m.group(f"c{n}") if m.group(f"d{n}") else m.group(f"k{n}")
        return Decimal(digits.replace(",", "") + (f".{cents}" if cents else ""))
    words = m.group(f"w{n}")
    if not words:
        return None
    total, current = 0, 0
    for w in re.split(r"[\s-]+", words):
        if w == "and":
            continue
        if w == "hundred":
            current = max(current, 1) * 100
        elif w == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            current += SPOKEN_NUMBERS[w]
    return Decimal(total + current)


def price_violations(
    brain: Brain,
    sentence: str,
    lowered: str,
    mentioned: list[tuple[Service, int, int]],
    previous: list[Service],
) -> list[Violation]:
    found: list[Violation] = []
    boundaries = [
        m.start() for m in re.finditer(r"[;,]|\bbut\b|\band\b|\bwhile\b|\bwhereas\b", lowered)
    ]
    for m in _MONEY.finditer(lowered):
        low = _money_value(m, 1)
        if low is None:
            continue
        high = _money_value(m, 2) if m.group("d2") or m.group("n2") or m.group("w2") else None
        if high is not None and m.group("join") == "and" and not m.group("between"):
            high = None  # "$120 and 2 hours" is not a range; "between $120 and $150" is
        if high is None and m.group("between"):
            continue
        before = lowered[max(0, m.start() - 40) : m.start()]
        after = lowered[m.end() : m.end() + 25]
        hourly = _PER_HOUR.match(after) is not None and high is None
        if hourly:
            after = after[_PER_HOUR.match(after).end() :]  # type: ignore[union-attr]
        if _NOT_A_PRICE.search(" ".join(before.split()[-4:])) or _NOT_A_PRICE.search(
            " ".join(after.split()[:3])
        ):
            continue
        service = _nearest(mentioned, m.start(), boundaries)
        if service is None:
            if (
                mentioned
                or len(previous) != 1
                or not re.search(r"\b(?:it|it's|that|that's|this|they|they're)\b", lowered)
            ):
                continue
            service = previous[0]
        if service is None:
            continue
        price = service.price
        if price is None:
            found.append(
                Violation(
                    "price",
                    sentence,
                    f"Correction: {service.name} has no set price. {service.price_note or ''}".strip(),
                )
            )
            continue
        lo, hi, slack = price.low, price.high, Decimal(1)
        if hourly:
            # "$120 an hour": the rate itself, or the rate over the service's usual length
            total = low * service.duration_minutes / 60
            wrong = not (lo - slack <= low <= hi + slack or lo - slack <= total <= hi + slack)
        elif high is not None:
            wrong = low < lo - slack or high > hi + slack or high < low
        elif _AT_MOST.search(before):
            wrong = low < lo
        elif _AT_LEAST.search(before):
            wrong = low > hi
        elif _LOWER.search(before):
            wrong = abs(low - lo) > slack
        else:
            wrong = low < lo - slack or low > hi + slack
        if wrong:
            text = price_text(price, brain.currency)
            found.append(
                Violation("price", sentence, f"Correction: {service.name.lower()} costs {text}.")
            )
    return found


_PER_HOUR = re.compile(r"\s*(?:an|a|per|/)\s*hour\b|\s*hourly\b")
_FREE = re.compile(r"\b(?:free|free of charge|at no charge|at no cost)\b")
# "free with any repair", "may be free with your plan": a condition the brain cannot confirm or deny
_CONDITIONAL = re.compile(r"\b(?:with|if|when|may|might|could|depending|depends|for you|covered)\b")


def free_violations(
    brain: Brain,
    sentence: str,
    lowered: str,
    mentioned: list[tuple[Service, int, int]],
    previous: list[Service],
) -> list[Violation]:
    """'The inspection is free' about a service with a price."""
    found: list[Violation] = []
    for part in re.split(r"[;,]|\bbut\b|\bso\b|\band\b", lowered):
        m = _FREE.search(part)
        if not m or NEGATION.search(part) or _NOT_A_PRICE.search(part) or _CONDITIONAL.search(part):
            continue
        offset = lowered.find(part)
        inside = [
            (s, a - offset, b - offset) for s, a, b in mentioned if offset <= a < offset + len(part)
        ]
        services = {id(s): s for s, _, _ in inside}
        if (
            not services
            and len(previous) == 1
            and re.search(r"\b(?:it|it's|that|that's|this)\b", part)
        ):
            services = {id(previous[0]): previous[0]}
        if len(services) != 1:
            continue
        service = next(iter(services.values()))
        if service.price is not None and service.price.low > 0:
            text = price_text(service.price, brain.currency)
            found.append(
                Violation("price", sentence, f"Correction: {service.name.lower()} costs {text}.")
            )
    return found


def _nearest(
    mentioned: list[tuple[Service, int, int]], at: int, boundaries: list[int]
) -> Service | None:
    """The service named closest to a price, preferring one in the same clause."""
    if not mentioned:
        return None
    scored = []
    for s, start, end in mentioned:
        gap = at - end if end <= at else start - at
        lo, hi = sorted((at, end if end <= at else start))
        crossings = sum(1 for b in boundaries if lo <= b < hi)
        scored.append((gap + 60 * crossings, s))
    scored.sort(key=lambda x: x[0])
    best = scored[0]
    if best[0] > 120:
        return None
    if len(scored) > 1 and scored[1][0] == best[0] and scored[1][1] is not best[1]:
        return None
    return best[1]
