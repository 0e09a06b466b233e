"""Amounts of money in text, in any of the currencies a small business quotes in.

The judge checks every amount an answer quotes against the knowledge base and the tenant's
limits, the respond node adds the estimate disclaimer and holds a quote back for contact
details, and the review reasons name the prices: all of them read amounts here, so a business
that prices in euros or pounds is checked as one in dollars is (a ``$``-only pattern let an
ungrounded "€500" through).

Recognised: a symbol or ISO code before the number (``$89``, ``€ 89``, ``USD 89``, ``CA$89``)
or after it (``89 €``, ``89 EUR``, ``89 dollars``). A comma followed by three digits groups
thousands (``1,400``); one followed by one or two digits is a decimal comma (``89,50 €``).
"""

from __future__ import annotations

import re

_CODES = r"USD|EUR|GBP|CAD|AUD|NZD|CHF|INR|JPY|SEK|NOK|DKK|ZAR|MXN|BRL"
_BEFORE = rf"(?:[A-Z]{{1,2}})?\$|[€£¥₹]|\b(?:{_CODES})\b"
_AFTER = (
    rf"[€£¥₹]|\b(?:{_CODES})\b"
    r"|\b(?:dollars?|euros?|pounds?|bucks|rupees?|yen|francs?|kronor|krone[r]?)\b"
)
_NUMBER = (
    r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?(?!\d)"
    r"|\d+(?:[.,]\d{1,2})?(?!\d|[.,]\d)"
    # anything else digit-like after a currency is still an amount to check, read as written
    r"|\d[\d,]*(?:\.\d{1,2})?"
)

MONEY = re.compile(
    rf"(?:{_BEFORE})\s?(?P<a>{_NUMBER})|(?<![\w.,])(?P<b>{_NUMBER})\s?(?:{_AFTER})",
    re.IGNORECASE,
)
"""One amount with its currency; groups ``a`` (symbol first) or ``b`` (symbol after)."""

MONEY_TEXT = rf"(?:(?:{_BEFORE})\s?(?:{_NUMBER})|(?<![\w.,])(?:{_NUMBER})\s?(?:{_AFTER}))"
"""The same without groups, to build other patterns from (limits such as "up to €500")."""


def value(number: str) -> float:
    """``1,400`` -> 1400.0, ``89,50`` -> 89.5, ``89.50`` -> 89.5."""
    if re.fullmatch(r"\d+,\d{1,2}", number):
        return float(number.replace(",", "."))
    return float(number.replace(",", ""))


def amounts(text: str) -> list[float]:
    """Every amount of money in ``text``, in order."""
    return [value(m.group("a") or m.group("b")) for m in MONEY.finditer(text)]


def quoted(text: str) -> list[tuple[float, str]]:
    """Every amount with the text it was written as (``(1400.0, "€1,400")``)."""
    return [(value(m.group("a") or m.group("b")), m.group(0)) for m in MONEY.finditer(text)]


def has_price(text: str) -> bool:
    """Whether ``text`` names an amount of money."""
    return MONEY.search(text) is not None


def symbol_of(written: str) -> str:
    """The currency as written in an amount (``€1,400`` -> ``€``; ``89 EUR`` -> ``EUR``)."""
    return re.sub(r"[\d,.\s]", "", written) or "$"
