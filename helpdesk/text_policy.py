"""What text the desk accepts: one rule for every channel (HTTP, CLI, email).

Refused: NUL and the other C0 control characters except tab, line feed and carriage return
(U+0000-U+0008, U+000B, U+000C, U+000E-U+001F), DEL (U+007F), and lone surrogates
(U+D800-U+DFFF, which are not characters: JSON's ``"\\ud800"`` escape decodes to one). Postgres
cannot store NUL in text or JSONB, and a lone surrogate cannot be encoded as UTF-8, so letting
either in loses the message and breaks the conversation's later turns; the other controls have
no meaning in a support message and only hide text from the person reading it.

Kept as they are: every other character, right-to-left text and bidi marks (U+200E, U+200F,
U+202A-U+202E, U+2066-U+2069), zero-width joiners, emoji. A customer writing Arabic or Hebrew
needs them, and the console and widget render text as text, never as markup.

Refusing (rather than silently stripping) means nothing the customer wrote changes without
them knowing: the HTTP API answers 422 ``invalid_input`` naming the field, the CLI exits 2, and
the email channel is to call :func:`check_text` on what it reads (and bounce or quarantine).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from helpdesk.errors import InvalidInput

_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _describe(ch: str) -> str:
    code = ord(ch)
    if code == 0:
        return "a NUL character (U+0000)"
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X}), which is not a character"
    return f"a control character (U+{code:04X})"


def text_problem(text: str) -> str | None:
    """Why ``text`` is not accepted (a sentence naming the first bad character), or None."""
    found = _REFUSED.search(text)
    if found is None:
        return None
    return f"contains {_describe(found.group())} at offset {found.start()}"


class InvalidText(InvalidInput):
    """Text the desk does not accept (:func:`text_problem`), with where it was found."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where
        self.problem = problem


def check_text(text: str, where: str = "") -> str:
    """Return ``text`` when the desk accepts it; else raise :class:`InvalidText`.

    ``where`` names the field (``text``, ``customer.name``...) for the error message.
    """
    problem = text_problem(text)
    if problem is not None:
        raise InvalidText(where, problem)
    return text


def shown(text: str) -> str:
    """``text`` with every refused character written as an escape (``\\u0000``), safe to put
    in an error message, a log line or a JSON response."""
    return _REFUSED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def find_bad_text(value: Any, where: str = "") -> tuple[str, str] | None:
    """The first string in a JSON-like value (keys included) that is refused, as
    ``(where, problem)``, or None when every string is accepted."""
    for path, text in _strings(value, where):
        problem = text_problem(text)
        if problem is not None:
            return path, problem
    return None


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{shown(str(key))}" if where else shown(str(key))
            if isinstance(key, str):
                yield f"{where}.<key>" if where else "<key>", key
            yield from _strings(item, path)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")
