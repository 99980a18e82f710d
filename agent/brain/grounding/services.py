"""The brain's services in what the agent says: where a sentence names one (the price checks read
this), and a service offered that the brain does not list ("we also do sewer line replacement")."""

from __future__ import annotations

import re

from agent.brain.grounding.knowledge import Facts, per_brain
from agent.brain.schema.brain import Brain
from agent.brain.schema.business import FILLER, Service, service_tokens, singular
from agent.brain.schema.fields import WEEKDAYS

# words too common to name one service on their own
_GENERIC = frozenset(
    "visit service appointment repair install new the and with of for check call emergency water "
    "heater patient dental teeth tooth hygiene plumbing home pipe unit tank office".split()
)


def _words_with_spans(lowered: str) -> list[tuple[str, int, int]]:
    """Words normalised like service names (filler dropped), with their places in `lowered`."""
    out = []
    for m in re.finditer(r"[a-z0-9]+(?:[-'’][a-z0-9]+)*", lowered):
        word = re.sub(r"[-'’]", "", m.group(0))
        if word not in FILLER:
            out.append((singular(word), m.start(), m.end()))
    return out


def services_in(brain: Brain, lowered: str) -> list[tuple[Service, int, int]]:
    """Where services are named in a sentence: (service, start char, end char)."""
    words = _words_with_spans(lowered)
    plain = [w for w, _, _ in words]
    taken: set[int] = set()
    found: list[tuple[Service, int, int]] = []
    for toks, s in per_brain(brain, "service phrases", _service_phrases):
        k = len(toks)
        for i in range(len(plain) - k + 1):
            if plain[i : i + k] == toks and not taken & set(range(i, i + k)):
                taken |= set(range(i, i + k))
                found.append((s, words[i][1], words[i + k - 1][2]))
    return sorted(found, key=lambda f: f[1])


def _service_phrases(brain: Brain) -> list[tuple[list[str], Service]]:
    """Each way a service can be named, longest first: its names, and words only it uses."""
    phrases: list[tuple[list[str], Service]] = []
    counts: dict[str, set[str]] = {}
    for s in brain.services:
        for n in (s.name, *s.aliases):
            toks = service_tokens(n)
            if toks:
                phrases.append((toks, s))
            for t in toks:
                counts.setdefault(t, set()).add(s.name)
    for s in brain.services:
        for t in {t for n in (s.name, *s.aliases) for t in service_tokens(n)}:
            if t not in _GENERIC and len(counts[t]) == 1 and len(t) > 2:
                phrases.append(([t], s))
    phrases.sort(key=lambda p: -len(p[0]))
    return phrases


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


def unlisted_service(brain: Brain, facts: Facts, clause: str) -> str | None:
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


def _judge_service(brain: Brain, facts: Facts, what: str) -> str | None:
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
