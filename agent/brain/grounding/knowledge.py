"""What the grounding guard knows of a brain, worked out once per brain: the words it uses, its FAQ
answers sentence by sentence (sign, exceptions, numbers), the insurers it takes or refuses and every
amount it states. The service and FAQ checks read it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from agent.brain.schema.brain import Brain
from agent.brain.schema.business import Faq, service_tokens

_STOP = frozenset(
    "a an the we we're were weve we've we'll us our ours you your yours i i'm im me my it its it's "
    "is are was be been being am do does did done to of for and or in on at by with from as that this "
    "these those there there's theres here yes yeah no sorry unfortunately also too just really "
    "please can could will would should may might so but if then than which what who whom whose when "
    "where how all any some each every both either very only sure ok okay well oh great".split()
)
NEGATIVE = re.compile(r"\b(?:not|never|no|nor|cannot)\b|n't\b")
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
_INDIRECT = re.compile(r"\b(?:other|such as|pay at|claim back|reimburs\w*)\b")
# insurers a receptionist may name that a brain's insurance answer may leave out: naming one the
# answer does not list is a claim the brain does not support
INSURERS = (
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
class Facts:
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


def brain_facts(brain: Brain) -> Facts:
    return per_brain(brain, "facts", _work_out_facts)


def _work_out_facts(brain: Brain) -> Facts:
    facts = Facts()
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
        for name in proper_names(sentence.text):
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
        exceptions = content_words(m.group("rest"))
    return _FaqSentence(
        faq=faq,
        text=raw,
        tokens=content_words(lowered) | {t for k in faq.keywords for t in content_words(k.lower())},
        negative=bool(NEGATIVE.search(lowered)),
        exceptions=exceptions,
        quantities=quantities_in(lowered),
    )


def _is_insurance(faq: Faq) -> bool:
    return "insurance" in f"{faq.question} {' '.join(faq.keywords)}".lower()


def content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+(?:['’-][a-z0-9]+)*", text)
    out = set()
    for w in words:
        if w in _STOP or NEGATIVE.fullmatch(w) or w.endswith("n't"):
            continue
        out |= set(service_tokens(w))
    return out - _STOP


def proper_names(text: str) -> list[frozenset[str]]:
    """Proper names in a sentence ("Delta Dental PPO", "HMO"), and any known insurer however written."""
    found: list[frozenset[str]] = []
    for m in re.finditer(r"\b[A-Z][A-Za-z]*(?:\s+[A-Z][A-Za-z]*)*", text):
        words = [w for w in m.group(0).split() if w.lower() not in _NAME_STOP]
        name = frozenset(w.lower() for w in words) - _GENERIC_NAME
        if name:
            found.append(name)
    lowered = text.lower()
    for insurer in INSURERS:
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


def quantities_in(lowered: str) -> list[tuple[str, float, set[str]]]:
    out = []
    context = content_words(lowered)
    for unit, pattern in _QUANTITIES:
        for m in pattern.finditer(lowered):
            if m.group(0).strip():
                out.append((unit, _value(m), context))
    return out
