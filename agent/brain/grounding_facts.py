"""The grounding guard's checks beyond hours and prices: a service the brain does not list, and a sentence
that contradicts an FAQ answer (insurance taken, parking, numbers such as fees, notice and ages).

Precision first, like the hours and price checks: a service is unlisted only when one of its words
appears nowhere in the brain, and an FAQ is contradicted only when the sentence says the same thing
with the opposite sign, names an insurer the answer puts on the other side, or gives a different
number for what the answer numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from agent.brain.schema import WEEKDAYS, Brain, Faq, service_tokens

# ---------------------------------------------------------------------------------------------
# what the brain knows, worked out once per brain

_STOP = frozenset(
    "a an the we we're were weve we've we'll us our ours you your yours i i'm im me my it its it's "
    "is are was be been being am do does did done to of for and or in on at by with from as that this "
    "these those there there's theres here yes yeah no sorry unfortunately also too just really "
    "please can could will would should may might so but if then than which what who whom whose when "
    "where how all any some each every both either very only sure ok okay well oh great".split()
)
_NEGATIVE = re.compile(r"\b(?:not|never|no|nor|cannot)\b|n't\b")
_EXCEPT = re.compile(r"\b(?:except|unless|other than|apart from)\b(?P<rest>.*)")
_NUMBER_WORDS = {
    w: n
    for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER = r"(?:\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + ")"
# (unit, pattern with a `v` group); money is in dollars, "free" is zero
_QUANTITIES = [
    (
        "money",
        re.compile(
            rf"\$\s?(?P<v>\d+(?:,\d{{3}})*(?:\.\d{{1,2}})?)|(?P<w>{_NUMBER})\s*(?:dollars|bucks)\b"
        ),
    ),
    ("money", re.compile(r"\b(?P<free>free)\b")),
    ("hours", re.compile(rf"\b(?P<v>{_NUMBER})[\s-]*hours?\b")),
    ("days", re.compile(rf"\b(?P<v>{_NUMBER})[\s-]*days?\b")),
    ("minutes", re.compile(rf"\b(?P<v>{_NUMBER})[\s-]*minutes?\b")),
    ("age", re.compile(rf"\bage (?:of )?(?P<v>{_NUMBER})\b|\b(?P<w>{_NUMBER}) years? old\b")),
    ("percent", re.compile(rf"\b(?P<v>{_NUMBER})\s*(?:%|percent)")),
]
# words any price or duration sentence shares; a shared one says nothing about the topic
_GENERIC = frozenset(
    "fee price cost costs charge charged pay paid hour day minute year month dollar buck visit "
    "appointment have has get give need".split()
)
_ACCEPT = re.compile(
    r"\b(?:take|takes|accept|accepts|in[- ]network|bill|bills|work(?:s)? (?:directly )?with|"
    r"participate in|file (?:claims )?with)\b"
)
_DIRECT = re.compile(r"\b(?:directly|direct billing|bill|bills)\b")
_INDIRECT = re.compile(r"\b(?:other|such as|pay at|claim back|reimburs\w*)\b")
# insurers a receptionist may name that a brain's insurance answer may leave out: naming one the
# answer does not list is a claim the brain does not support
_INSURERS = (
    "aetna",
    "humana",
    "unitedhealthcare",
    "united healthcare",
    "united concordia",
    "blue cross",
    "blue shield",
    "anthem",
    "kaiser",
    "medicaid",
    "medicare",
    "tricare",
    "delta dental",
    "cigna",
    "metlife",
    "guardian",
    "ameritas",
    "principal",
    "nationwide",
    "healthy paws",
    "embrace",
    "trupanion",
    "pets best",
    "lemonade",
    "figo",
    "aspca",
    "carecredit",
)
_NAME_STOP = frozenset("we i for our the yes no please if you they it this that and or".split())
_GENERIC_NAME = frozenset("plan plans insurance the".split())


@dataclass
class _FaqSentence:
    faq: Faq
    text: str
    tokens: set[str]
    negative: bool
    exceptions: set[str]
    quantities: list[tuple[str, float, set[str]]]  # (unit, value, context words)


@dataclass
class _Facts:
    vocabulary: set[str] = field(default_factory=set)
    sentences: list[_FaqSentence] = field(default_factory=list)
    # insurers by what the answer says of them: taken, taken but not billed directly, refused
    accepted: list[tuple[frozenset[str], Faq]] = field(default_factory=list)
    indirect: list[tuple[frozenset[str], Faq]] = field(default_factory=list)
    refused: list[tuple[frozenset[str], Faq]] = field(default_factory=list)
    amounts: set[float] = field(default_factory=set)  # every price the brain states


_cache: dict[tuple[int, str], tuple[Brain, Any]] = {}
T = TypeVar("T")


def per_brain(brain: Brain, name: str, build: Callable[[Brain], T]) -> T:
    """What `build` works out of a brain, once per brain: the guard runs on every sentence of a call."""
    hit = _cache.get((id(brain), name))
    if hit is not None and hit[0] is brain:  # the same object, not a new brain at a reused id
        return cast(T, hit[1])
    if len(_cache) > 256:
        _cache.clear()
    value = build(brain)
    _cache[(id(brain), name)] = (brain, value)
    return value


def _facts(brain: Brain) -> _Facts:
    return per_brain(brain, "facts", _work_out_facts)


def _work_out_facts(brain: Brain) -> _Facts:
    facts = _Facts()
    texts = [brain.business.name, brain.business.about or ""]
    for s in brain.services:
        texts += [s.name, *s.aliases, s.description, s.price_note or ""]
        if s.price is not None:
            facts.amounts |= {float(s.price.low), float(s.price.high)}
    for f in brain.faq:
        texts += [f.answer, *f.keywords]
        for raw in re.split(r"(?<=[.!?;])\s+", f.answer):
            facts.sentences.append(_faq_sentence(f, raw))
    for text in texts:
        facts.vocabulary |= set(service_tokens(text))
    for sentence in facts.sentences:
        facts.amounts |= {v for unit, v, _ in sentence.quantities if unit == "money"}
        if not _is_insurance(sentence.faq):
            continue
        for name in _names(sentence.text):
            if sentence.negative:
                facts.refused.append((name, sentence.faq))
            elif _INDIRECT.search(sentence.text.lower()):
                facts.indirect.append((name, sentence.faq))
            else:
                facts.accepted.append((name, sentence.faq))
    return facts


def _faq_sentence(faq: Faq, raw: str) -> _FaqSentence:
    lowered = raw.lower()
    exceptions: set[str] = set()
    m = _EXCEPT.search(lowered)
    if m:
        exceptions = _content(m.group("rest"))
    return _FaqSentence(
        faq=faq,
        text=raw,
        tokens=_content(lowered) | {t for k in faq.keywords for t in _content(k.lower())},
        negative=bool(_NEGATIVE.search(lowered)),
        exceptions=exceptions,
        quantities=_quantities(lowered),
    )


def _is_insurance(faq: Faq) -> bool:
    return "insurance" in f"{faq.question} {' '.join(faq.keywords)}".lower()


def _content(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+(?:['’-][a-z0-9]+)*", text)
    out = set()
    for w in words:
        if w in _STOP or _NEGATIVE.fullmatch(w) or w.endswith("n't"):
            continue
        out |= set(service_tokens(w))
    return out - _STOP


def _names(text: str) -> list[frozenset[str]]:
    """Proper names in a sentence ("Delta Dental PPO", "HMO"), and any known insurer however written."""
    found: list[frozenset[str]] = []
    for m in re.finditer(r"\b[A-Z][A-Za-z]*(?:\s+[A-Z][A-Za-z]*)*", text):
        words = [w for w in m.group(0).split() if w.lower() not in _NAME_STOP]
        name = frozenset(w.lower() for w in words) - _GENERIC_NAME
        if name:
            found.append(name)
    lowered = text.lower()
    for insurer in _INSURERS:
        if re.search(rf"\b{insurer}\b", lowered):
            name = frozenset(insurer.split())
            if not any(name <= f for f in found):
                found.append(name)
    return found


def _value(m: re.Match[str]) -> float:
    if m.groupdict().get("free"):
        return 0.0
    raw = m.group("v") or m.group("w")
    raw = raw.replace(",", "")
    return float(_NUMBER_WORDS[raw]) if raw in _NUMBER_WORDS else float(raw)


def _quantities(lowered: str) -> list[tuple[str, float, set[str]]]:
    out = []
    context = _content(lowered)
    for unit, pattern in _QUANTITIES:
        for m in pattern.finditer(lowered):
            if m.group(0).strip():
                out.append((unit, _value(m), context))
    return out


# ---------------------------------------------------------------------------------------------
# the checks


def fact_violations(
    brain: Brain, sentence: str, lowered: str, services_named: list[tuple[int, int]]
) -> list[tuple[str, str]]:
    """(kind, correction) for each unlisted service offered and each FAQ answer contradicted;
    `services_named` are where the sentence names a service (a price there is the price check's)."""
    facts = _facts(brain)
    out: list[tuple[str, str]] = []
    for clause, original, (a, b) in _clauses(sentence, lowered):
        if _HEDGE.search(clause):
            continue
        correction = _unlisted_service(brain, facts, clause)
        if correction:
            out.append(("service", correction))
            continue
        correction = _insurer(facts, clause, original) or _flipped(facts, clause)
        if not any(a <= start < b for start, _ in services_named):
            correction = correction or _number(facts, clause)
        if correction:
            out.append(("faq", correction))
    return list(dict.fromkeys(out))


def _clauses(sentence: str, lowered: str) -> list[tuple[str, str, tuple[int, int]]]:
    """Clauses split where a claim may change sign ("we don't take HMO plans, but we do take PPO");
    lists joined by commas stay whole. With the original casing, for names."""
    cuts = [0]
    for m in re.finditer(r";|,?\s+\bbut\b|,?\s+\bhowever\b|,?\s+\bso\b|,(?=\s*not\b)", lowered):
        cuts += [m.start(), m.end()]
    cuts.append(len(lowered))
    out = []
    # lowered and sentence differ only in case and a few characters normalised one for one
    same = len(lowered) == len(sentence)
    for a, b in zip(cuts[::2], cuts[1::2], strict=False):
        clause = lowered[a:b].strip()
        if clause:
            out.append((clause, sentence[a:b] if same else sentence, (a, b)))
    return out


_HEDGE = re.compile(
    r"\b(?:if|whether|check|checking|confirm with|find out|ask|wonder|might|maybe|possibly|let me|"
    r"you said|you mentioned|you asked|online|website)\b"
)

# "we also do sewer line replacement", "I can book you in for a furnace repair"
_OFFERING = re.compile(
    r"\bwe\s+(?:(?:also|now|can|do|definitely|certainly|even)\s+)*"
    r"(?P<verb>offer|provide|perform|handle|install|repair|fix|treat|specialize in|do|carry|sell)\s+"
    r"(?P<what>[^,;.!?]+)"
    r"|\bi can\s+(?:book|schedule|set up)\s+(?:you\s+)?(?:in\s+)?(?:for\s+)?(?P<what2>[^,;.!?]+)"
)
_OFFER_VERBS = frozenset("offer provide perform handle install repair fix treat carry sell".split())
_WHAT_END = re.compile(
    r"\s\b(?:for|on|at|this|next|today|tomorrow|tonight|if|when|so|because|since|but|with|from|in|by|"
    r"under|to|as|during|starting|which|that|who|where|too|as well|every|any ?time)\b"
)
_NOT_A_SERVICE = frozenset(
    "too also well both either most various service some any all kind type sort new one someone somebody it that this those them "
    "you time slot spot visit morning afternoon evening week weekend today tomorrow am pm "
    "technician plumber vet veterinarian doctor dentist hygienist".split()
    + list(WEEKDAYS)
    + "january february march april may june july august september october november december".split()
)


def _unlisted_service(brain: Brain, facts: _Facts, clause: str) -> str | None:
    m = _OFFERING.search(clause)
    if m is None:
        return None
    what = m.group("what") if m.group("what") is not None else m.group("what2")
    if m.group("verb") == "do":
        # "we do fix leaky faucets" offers a repair; "we do see children" is no service at all
        first, _, rest = what.partition(" ")
        if first in _OFFER_VERBS:
            what = rest
        elif first in _VERB_LIKE:
            return None
    return _judge_service(brain, facts, what)


_VERB_LIKE = frozenset(
    "see take accept validate have file bill open close need require charge work book schedule "
    "serve help recommend know want send come go stay make".split()
)


def _judge_service(brain: Brain, facts: _Facts, what: str) -> str | None:
    end = _WHAT_END.search(f" {what}")
    if end:
        what = f" {what}"[: end.start()].strip()
    tokens = [
        t
        for t in service_tokens(what)
        if t not in _NOT_A_SERVICE and not t.isdigit() and len(t) > 2
    ]
    if not tokens or brain.service(what) is not None:
        return None
    unknown = [t for t in tokens if t not in facts.vocabulary]
    if not unknown:
        return None
    listed = ", ".join(s.name.lower() for s in brain.services)
    return f"Correction: we don't offer {what}. Our services are {listed}."


def _match(name: frozenset[str], known: list[tuple[frozenset[str], Faq]]) -> Faq | None:
    for other, faq in known:
        if name <= other or other <= name:
            return faq
    return None


def _insurer(facts: _Facts, clause: str, original: str) -> str | None:
    """'We take Aetna' when the insurance answer lists others; 'we don't take MetLife' when it lists it."""
    if not (facts.accepted or facts.refused) or not _ACCEPT.search(clause):
        return None
    if not re.search(r"\b(?:we|we're|we are|our office|the office)\b", clause):
        return None
    negative = bool(_NEGATIVE.search(clause))
    direct = bool(_DIRECT.search(clause))
    for name in _names(original):
        refused = _match(name, facts.refused)
        accepted = _match(name, facts.accepted)
        indirect = _match(name, facts.indirect)
        if negative:
            faq = accepted if accepted and not refused else None
        elif refused:
            faq = refused
        elif indirect and not accepted:
            faq = indirect if direct else None
        elif accepted:
            faq = None
        elif " ".join(sorted(name)) in {" ".join(sorted(i.split())) for i in _INSURERS}:
            faq = next(f for _, f in facts.accepted) if facts.accepted else None
        else:
            faq = None
        if faq is not None:
            return f"Correction: {faq.answer}"
    return None


def _flipped(facts: _Facts, clause: str) -> str | None:
    """The FAQ says it with the other sign: 'we don't take checks' against 'we take cash, checks...'."""
    tokens = _content(clause)
    if len(tokens) < 2 and not (tokens and len(next(iter(tokens))) >= 6):
        return None
    negative = bool(_NEGATIVE.search(clause))
    best_against, best_for, against = 0, 0, None
    for s in facts.sentences:
        if not tokens <= s.tokens:
            continue
        shared = len(tokens & _content(s.text.lower()))
        if s.negative == negative:
            best_for = max(best_for, shared)
        elif not (s.exceptions & tokens) and shared > best_against:
            best_against, against = shared, s
    if against is None or best_against <= best_for:
        return None
    return f"Correction: {against.text}"


def _number(facts: _Facts, clause: str) -> str | None:
    """A different number for what an FAQ answer numbers: '$75 trip fee' against '$40 trip fee'."""
    for unit, value, context in _quantities(clause):
        if unit == "money" and value in facts.amounts:
            continue
        same_unit = [(s, v, c) for s in facts.sentences for u, v, c in s.quantities if u == unit]
        if any(v == value for _, v, _ in same_unit):
            continue
        topical = [(s, len((c & context) - _GENERIC)) for s, _, c in same_unit]
        topical = [(s, n) for s, n in topical if n > 0]
        if topical:
            s = max(topical, key=lambda x: x[1])[0]
            return f"Correction: {s.text}"
    return None
