"""Customers in danger: recognise them without a model.

A message that reports a gas smell, a carbon monoxide alarm, flooding, an electrical hazard, a
fire or an injury must not depend on retrieval scores, the intent classifier's confidence or a
model being reachable. So detection is rules over normalised text, run by ``guard_input`` on
every turn on both tiers; what such a customer is sent is :mod:`graph.safety`'s.

Detection favours recall over precision for reports of danger, and avoids the look-alike
questions about services ("how much is a gas line repair?", "do you install CO detectors?",
"what's your flood warranty?"): a pattern names a hazard happening (a smell, an alarm going
off, water pouring), a phrase that is negated right before it ("no gas smell") does not count,
a hazard used as a noun's modifier ("gas leak repairs") does not count, and a question about
the business's services ("do you fix burst pipes?") does not count unless it also speaks of
the customer's own situation ("...mine just burst"). The labelled phrasings are in
``evals/datasets/safety_phrasings.jsonl``; ``python evals/benchmarks/safety.py`` prints precision
and recall on its dev and held-out parts.
"""

from __future__ import annotations

import re
import unicodedata

from helpdesk.policy import Hazard
from nlp.verdicts import SafetyAlert

_NEAR = r"[^.!?]{0,30}"
# Most dangerous first: the first hazard that matches names the alert.
_RULES: list[tuple[Hazard, re.Pattern[str]]] = [
    (
        "fire",
        re.compile(
            r"\b(on|caught|catch|catching)\s+fire\b|\bfire\s+in\s+(the|my|our)\b"
            r"|\b(there's|there\s+is)\s+(a\s+)?fire\b"
            r"|\bflames?\s+(are\s+|is\s+)?(coming|shooting|pouring|everywhere|out|from)\b"
            r"|\b(see|saw)\s+flames\b"
            r"|\bsmoke\s+(is\s+)?(coming|pouring|billowing|everywhere|filling|from|out)\b"
            r"|\b(smoke|fire)\s+(alarm|detector)s?\b" + _NEAR + r"\b(going\s+off|went\s+off|"
            r"gone\s+off|goes\s+off|beep\w*|sound\w*|ring\w*|blaring|screaming)"
        ),
    ),
    (
        "carbon_monoxide",
        re.compile(
            r"\b(co|carbon\s+monoxide)\s+(alarm|detector|monitor|sensor)s?\b" + _NEAR + r"\b("
            r"going\s+off|went\s+off|gone\s+off|goes\s+off|beep\w*|chirp\w*|sound\w*|ring\w*|"
            r"alarm\w*|blaring|screaming|flashing|triggered)"
            r"|\b(co|carbon\s+monoxide)\s+poison\w*"
            r"|\b(there's|there\s+is|we\s+have|i\s+have|think|smell\w*|leak\w*)\b"
            r"[^.!?]{0,25}\bcarbon\s+monoxide\b"
        ),
    ),
    (
        "gas",
        re.compile(
            r"\bsmell(s|ed|ing)?\b(?!\s+(test|check))[^.!?]{0,30}\b(natural\s+)?gas\b"
            r"|\bstinks?\b" + _NEAR + r"\bgas\b"
            r"|\bgas\s+(smell|odou?r|leak|leaks|leaking|is\s+leaking|escaping|is\s+escaping)\b"
            r"|\bleak(s|ing)?\s+gas\b"
            r"|\b(rotten|bad)[-\s]eggs?\b"
            r"|\bsul(ph|f)ur\w*\s+(smell|odou?r)|\bsmell\w*\s+(of|like)\s+sul(ph|f)ur"
            r"|\bhiss\w*" + _NEAR + r"\bgas\b|\bgas\b" + _NEAR + r"\bhiss\w*"
        ),
    ),
    (
        "injury",
        re.compile(
            r"\b(unconscious|not\s+breathing|stopped\s+breathing|can't\s+breathe|passed\s+out|"
            r"fainted|collapsed|unresponsive|electrocuted|bleeding|"
            r"(badly|seriously|really)\s+(hurt|burned|burnt|injured)|is\s+(hurt|injured)|"
            r"got\s+(hurt|burned|burnt|injured))\b"
        ),
    ),
    (
        "electrical",
        re.compile(
            r"\bspark(s|ing|ed)?\b"
            r"|\b(burning|melting)\s+(smell|plastic|wires?|rubber|odou?r)\b"
            r"|\bsmell\w*\s+(of|like)\s+(burning|smoke|melting)\b"
            r"|\b(exposed|live|bare|frayed|dangling)\s+(live\s+)?wires?\b"
            r"|\bwires?\s+(are\s+|is\s+)?(exposed|sparking|smoking|melting)\b"
            r"|\b(got|get|getting|was|been)\s+(an?\s+)?(electric(al)?\s+)?shock(ed)?\b"
            r"|\belectric(al)?\s+shock\b|\bshocked\s+(me|him|her)\b"
            r"|\b(outlet|socket|plug|panel|breaker|switch|cord)s?\b[^.!?]{0,25}"
            r"\b(smok\w*|melt\w*|sizzl\w*|hot\s+to\s+the\s+touch)"
        ),
    ),
    (
        "flooding",
        re.compile(
            r"\b(flooded|flooding|under\s*water)\b"
            r"|\b(burst|bursting|busted|broken|split)\s+(water\s+)?pipes?\b"
            r"|\bpipes?\s+(has\s+|have\s+|just\s+)?(burst|bust|exploded|split)\b"
            r"|\bwater\b[^.!?]{0,30}\b(pouring|gushing|spraying|everywhere|won't\s+stop)\b"
            r"|\b(pouring|gushing|spraying)\b[^.!?]{0,20}\bwater\b"
            r"|\bwater\b[^.!?]{0,40}\b(outlets?|sockets?|electrical\s+panel|breakers?|"
            r"electrics|wiring)\b"
        ),
    ),
]
_NEGATED = re.compile(
    r"\b(no|not|don't|dont|doesn't|didn't|never|without|isn't|wasn't)\s+(\w+\s+)?$"
)
_MODIFIER = re.compile(
    r"^\s*(repairs?|fix(es|ing)?|detectors?|sensors?|inspections?|tests?|checks?|permits?|"
    r"warrant\w*|costs?|prices?|fees?|insurance|coverage|lines?\s+repair)\b"
)
_SERVICE_QUESTION = re.compile(
    r"^(do|does|can|could|will|would)\s+(you|u|your|y'all)\b|^how\s+(much|long|often)\b"
    r"|^what('s|\s+is|\s+are|\s+does)\s+(your|the|a|it)\b|^is\s+there\s+(a|an|any)\s+"
    r"(charge|fee|cost|warranty|discount)\b|^(i'd|i\s+would)\s+like\s+a\s+quote\b"
)
_OWN_SITUATION = re.compile(
    r"\b(my|our|mine|ours|i'm|we're|i\s+(smell|think|have|can|just|got)|we\s+(smell|have|just)|"
    r"there's|right\s+now|now|help|urgent|emergency|asap)\b"
)


def normalise(text: str) -> str:
    """Lower-case, NFKC, straight apostrophes, single spaces: what the rules read."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return re.sub(r"\s+", " ", t).strip()


def detect_hazard(text: str) -> SafetyAlert | None:
    """The hazard a customer message reports, or None. Model-free, well under a millisecond."""
    t = normalise(text)
    if not t:
        return None
    if _SERVICE_QUESTION.match(t) and not _OWN_SITUATION.search(t):
        return None  # "do you fix burst pipes?" asks about a service, not for help now
    for hazard, pattern in _RULES:
        for m in pattern.finditer(t):
            if _NEGATED.search(t[: m.start()]) or _MODIFIER.match(t[m.end() :]):
                continue
            return SafetyAlert(hazard=hazard, phrase=m.group(0))
    return None
