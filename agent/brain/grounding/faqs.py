"""Sentences that contradict an FAQ answer: an insurer the answer puts on the other side, the same
thing said with the opposite sign, or a different number for what the answer numbers (fees, notice,
ages). Precision first: a claim is flagged only when the answer says otherwise.

`fact_violations` also runs the unlisted-service check, on the same clauses: a clause that offers a
service the brain lacks is corrected as that, not checked against the FAQ again."""

from __future__ import annotations

import re

from agent.brain.grounding.knowledge import (
    INSURERS,
    NEGATIVE,
    Facts,
    brain_facts,
    content_words,
    proper_names,
    quantities_in,
)
from agent.brain.grounding.services import unlisted_service
from agent.brain.schema.brain import Brain
from agent.brain.schema.business import Faq

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


def fact_violations(
    brain: Brain, sentence: str, lowered: str, services_named: list[tuple[int, int]]
) -> list[tuple[str, str]]:
    """(kind, correction) for each unlisted service offered and each FAQ answer contradicted;
    `services_named` are where the sentence names a service (a price there is the price check's)."""
    facts = brain_facts(brain)
    out: list[tuple[str, str]] = []
    for clause, original, (a, b) in _clauses(sentence, lowered):
        if _HEDGE.search(clause):
            continue
        correction = unlisted_service(brain, facts, clause)
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


def _match(name: frozenset[str], known: list[tuple[frozenset[str], Faq]]) -> Faq | None:
    for other, faq in known:
        if name <= other or other <= name:
            return faq
    return None


def _insurer(facts: Facts, clause: str, original: str) -> str | None:
    """'We take Aetna' when the insurance answer lists others; 'we don't take MetLife' when it lists it."""
    if not (facts.accepted or facts.refused) or not _ACCEPT.search(clause):
        return None
    if not re.search(r"\b(?:we|we're|we are|our office|the office)\b", clause):
        return None
    negative = bool(NEGATIVE.search(clause))
    direct = bool(_DIRECT.search(clause))
    for name in proper_names(original):
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
        elif " ".join(sorted(name)) in {" ".join(sorted(i.split())) for i in INSURERS}:
            faq = next(f for _, f in facts.accepted) if facts.accepted else None
        else:
            faq = None
        if faq is not None:
            return f"Correction: {faq.answer}"
    return None


def _flipped(facts: Facts, clause: str) -> str | None:
    """The FAQ says it with the other sign: 'we don't take checks' against 'we take cash, checks...'."""
    tokens = content_words(clause)
    if len(tokens) < 2 and not (tokens and len(next(iter(tokens))) >= 6):
        return None
    negative = bool(NEGATIVE.search(clause))
    best_against, best_for, against = 0, 0, None
    for s in facts.sentences:
        if not tokens <= s.tokens:
            continue
        shared = len(tokens & content_words(s.text.lower()))
        if s.negative == negative:
            best_for = max(best_for, shared)
        elif not (s.exceptions & tokens) and shared > best_against:
            best_against, against = shared, s
    if against is None or best_against <= best_for:
        return None
    return f"Correction: {against.text}"


def _number(facts: Facts, clause: str) -> str | None:
    """A different number for what an FAQ answer numbers: '$75 trip fee' against '$40 trip fee'."""
    for unit, value, context in quantities_in(clause):
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
