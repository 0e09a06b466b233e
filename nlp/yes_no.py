"""Yes/no questions on the offline tier: lead with "Yes." or "No." only when the KB settles it.

"Do you serve Oakdale?" wants the yes or the no first; the extractive drafter alone answers
with the nearest sentences ("We serve homes in Millbrook and six neighboring towns.") and
leaves the customer to work out the no. Without a model the desk cannot read an answer into
arbitrary prose, so it only commits when the knowledge base settles the question by a list:

* the question is a yes/no question (it opens with an auxiliary: do, are, can ...) naming
  exactly one thing with a capitalised name ("Oakdale", "Pine Ridge");
* a retrieved chunk holds a list (table rows or bullets) whose introducing line shares a
  content word with the rest of the question ("serve" in "We serve homes in Millbrook and six
  neighboring towns...") and says nothing negative ("closed", "not", "except" ...), so the list
  is what the question asks about, stated positively;
* then the name in one of the list's items is a yes, and a name that no retrieved text mentions
  at all is a no.

Anything else (no such list, a negated list such as the holidays the office is closed, the name
mentioned elsewhere but not in the list) gets no lead: the answer is the extract, as before. A
wrong "No" is worse than none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from nlp.text import content_words

_YES_NO = re.compile(
    r"^\s*(?:(?:hi|hello|hey)\b[\s,!.]*)?"
    r"(?:do|does|did|is|are|can|could|will|would|have|has|should)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*\b")
_ITEM = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+|\|)")
_TABLE_RULE = re.compile(r"^\s*\|[\s\-:|]+\|\s*$")
_NEGATIVE = frozenset(
    ["not", "no", "never", "closed", "except", "excluding", "don't", "doesn't", "can't", "won't"]
)
Lead = Literal["Yes", "No"]


def named_thing(question: str) -> str | None:
    """The one capitalised name a yes/no question asks about, or None.

    The question's first word is capitalised because it is first, not because it is a name,
    and "I" is not a name; two or more names ("Oakdale or Fenwick?") are not settled here.
    """
    if not _YES_NO.match(question):
        return None
    first = re.match(r"\s*\S+", question)
    start = first.end() if first else 0
    names = [m.group(0) for m in _NAME.finditer(question, start) if m.group(0) != "I"]
    return names[0] if len(names) == 1 else None


def _lists(text: str) -> list[tuple[str, list[str]]]:
    """(introducing line, items) of each list in a chunk; a list with no line before it in
    the chunk has "" as its introduction."""
    out: list[tuple[str, list[str]]] = []
    intro = ""
    items: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            if items:
                out.append((intro, items))
                items = []
            intro = "" if line.startswith("#") else intro
            continue
        if _TABLE_RULE.match(line):
            continue
        if _ITEM.match(line):
            items.append(line)
            continue
        if items:
            out.append((intro, items))
            items = []
        intro = line
    if items:
        out.append((intro, items))
    return out


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text, re.IGNORECASE) is not None


def lead(question: str, chunk_texts: Sequence[str]) -> Lead | None:
    """ "Yes" or "No" when a retrieved list settles the yes/no question, else None."""
    name = named_thing(question)
    if name is None:
        return None
    asked = content_words(question) - content_words(name)
    if not asked:
        return None
    listed = False
    for text in chunk_texts:
        for intro, items in _lists(text):
            words = content_words(intro)
            if not (asked & words) or words & _NEGATIVE:
                continue
            if any(_mentions(item, name) for item in items):
                return "Yes"
            listed = True
    if listed and not any(_mentions(text, name) for text in chunk_texts):
        return "No"
    return None
