"""Normalising what people type as an email address, a phone number or a web domain, so the
same person typed twice is one contact.

* Email: trimmed and lower-cased whole. Strictly the part before the ``@`` may be case-sensitive,
  but no mail provider a small business's customers use treats it so, and ``Ann@x.com`` and
  ``ann@x.com`` as two contacts would be the worse mistake. The syntax check is the practical
  one (one ``@``, a dotted domain of letters, digits and dashes, no spaces, at most 254
  characters): deliverability is proven by a reply, not by a regular expression.
* Phone: spaces, dots, dashes, slashes and brackets are dropped; a leading ``+`` (or ``00``) is
  kept as ``+``; what is left must be 6 to 15 digits (E.164 allows 15). No country is assumed:
  ``+1 555 0100 123`` and ``555 0100 123`` stay two numbers, because guessing the country from
  the business's address would merge strangers abroad.
"""

from __future__ import annotations

import re

from helpdesk.errors import InvalidInput

_EMAIL = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)
_PHONE_SEPARATORS = re.compile(r"[\s.\-/()]+")
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")


def email_problem(raw: str) -> str | None:
    """Why ``raw`` is not an email address we accept, or None."""
    text = raw.strip().lower()
    if not text:
        return "is empty"
    if len(text) > 254:
        return f"is {len(text)} characters long; an email address has at most 254"
    if text.count("@") != 1:
        return f"must contain exactly one @, got {raw.strip()!r}"
    local, _, domain = text.partition("@")
    if not local or len(local) > 64:
        return "needs 1 to 64 characters before the @"
    if ".." in local or local.startswith(".") or local.endswith("."):
        return "has a misplaced dot before the @"
    if not _EMAIL.match(text):
        return f"is not an email address like name@example.com: {raw.strip()!r}"
    if len(domain) > 253:
        return "has a domain longer than 253 characters"
    return None


def normalize_email(raw: str) -> str:
    """The stored form of an email address; raises :class:`InvalidInput` naming the problem."""
    problem = email_problem(raw)
    if problem is not None:
        raise InvalidInput(f"email {problem}")
    return raw.strip().lower()


def phone_problem(raw: str) -> str | None:
    """Why ``raw`` is not a phone number we accept, or None."""
    try:
        normalize_phone(raw)
    except InvalidInput as exc:
        return exc.message.removeprefix("phone ")
    return None


def normalize_phone(raw: str) -> str:
    """The stored form of a phone number: digits, with ``+`` when a country code was given.

    Raises :class:`InvalidInput` for letters or other characters, and for fewer than 6 or
    more than 15 digits.
    """
    text = _PHONE_SEPARATORS.sub("", raw.strip())
    plus = text.startswith("+")
    if plus:
        text = text[1:]
    elif text.startswith("00"):
        plus, text = True, text[2:]
    if not text.isascii() or (text and not text.isdigit()):
        raise InvalidInput(
            f"phone may hold digits, spaces, dots, dashes, brackets and a leading +;"
            f" got {raw.strip()!r}"
        )
    if not 6 <= len(text) <= 15:
        raise InvalidInput(f"phone needs 6 to 15 digits, got {len(text)}")
    return ("+" if plus else "") + text


def domain_problem(raw: str) -> str | None:
    """Why ``raw`` is not a web domain we accept, or None."""
    try:
        normalize_domain(raw)
    except InvalidInput as exc:
        return exc.message.removeprefix("domain ")
    return None


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching any text that contains ``text`` literally (search boxes)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def normalize_domain(raw: str) -> str:
    """A web domain as stored on an organisation: lower-case host name, without a scheme, a
    ``www.`` or a path (``https://www.Example.com/about`` -> ``example.com``)."""
    text = raw.strip().lower()
    text = re.sub(r"^[a-z]+://", "", text).split("/", 1)[0].removeprefix("www.")
    if not _DOMAIN.match(text) or len(text) > 253:
        raise InvalidInput(f"domain must be a host name like example.com, got {raw.strip()!r}")
    return text
