"""Normalisation: undo the cheap tricks that hide an attack from rules and embeddings.

Attackers write ``ɪɢɴᴏʀᴇ``, ``ign\u200bore``, ``1gn0r3``, ``i g n o r e`` or a base64 blob so that
a keyword rule misses and an embedding sees noise. :func:`normalize` returns the views the guard
looks at: ``text`` (NFKC, invisible characters removed, homoglyphs folded, single-letter
spacing joined) for the embedding detector, and ``rule_text`` (``text`` lower-cased with
leetspeak undone and decoded base64 appended) for the rules. Ordinary customer text (order
numbers, prices, postcodes) comes through unchanged apart from case in ``rule_text``.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass, field

# Format characters (Unicode category Cf: zero-width space/joiners, word joiner, BOM, soft
# hyphen, bidi controls) render as nothing and exist in attacks only to split keywords.
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f]")

# Letters from other scripts that look Latin; NFKC keeps them, so fold them explicitly.
# Applied only to words that also contain Latin letters, so Greek or Russian text is untouched.
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
        "ɡ": "g", "ӏ": "l", "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H",
        "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
        "α": "a", "ο": "o", "ρ": "p", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "τ": "t",
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
        "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
        # Small capitals and modifier letters that NFKC leaves alone.
        "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ғ": "f", "ɢ": "g", "ʜ": "h",
        "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p",
        "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    }
)  # fmt: skip
_WORDISH = re.compile(r"\S+")

# Leetspeak inside a word that also has letters ("1gn0r3", "h@ck"); numbers alone are data.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i"})  # fmt: skip
_LEET_WORD = re.compile(r"(?=\S*[a-z])(?=\S*[013457@$!][a-z0-9@$!]*[a-z])[a-z0-9@$!]{3,}")

# "i g n o r e  a l l" / "i.g.n.o.r.e": five or more single letters joined by one separator.
_SPACED = re.compile(r"\b(?:[A-Za-z][ .\-_*/]){4,}[A-Za-z]\b")

# A run that looks like base64 and is long enough to carry a sentence.
_B64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_WHITESPACE = re.compile(r"[ \t\u00a0]+")


@dataclass(frozen=True)
class Normalized:
    """The views of one message the guard checks."""

    text: str
    """NFKC, invisible characters removed, homoglyphs folded, spaced letters joined."""
    rule_text: str
    """``text`` lower-cased, leetspeak undone, with any decoded base64 appended."""
    decoded: list[str] = field(default_factory=list)
    """Plain text recovered from base64 blobs (already part of ``rule_text``)."""
    obfuscated: bool = False
    """Whether hiding tricks were found (invisible characters, homoglyphs, spacing, base64)."""


def _strip_invisible(text: str) -> tuple[str, bool]:
    out = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    out = _VARIATION_SELECTORS.sub("", out)
    return out, len(out) != len(text)


def _fold_homoglyphs(text: str) -> tuple[str, bool]:
    changed = False

    def fold(m: re.Match[str]) -> str:
        nonlocal changed
        word = m.group(0)
        if not any(ch.isascii() and ch.isalpha() for ch in word) and not _all_small_caps(word):
            return word  # a word wholly in another script is that script, not a disguise
        folded = word.translate(_HOMOGLYPHS)
        changed |= folded != word
        return folded

    return _WORDISH.sub(fold, text), changed


_SMALL_CAPS = frozenset("ᴀʙᴄᴅᴇғɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ")


def _all_small_caps(word: str) -> bool:
    letters = [ch for ch in word if ch.isalpha()]
    return bool(letters) and all(ch in _SMALL_CAPS for ch in letters)


def _join_spaced(text: str) -> tuple[str, bool]:
    out = _SPACED.sub(lambda m: re.sub(r"[ .\-_*/]", "", m.group(0)), text)
    return out, out != text


def _decode_base64(text: str) -> list[str]:
    found = []
    for m in _B64.finditer(text):
        blob = m.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        printable = sum(ch.isprintable() or ch.isspace() for ch in decoded)
        letters = sum(ch.isalpha() or ch == " " for ch in decoded)
        # Real text, not the bytes of an id or a hash that happen to decode.
        if decoded and printable == len(decoded) and letters >= 0.8 * len(decoded):
            found.append(decoded)
    return found


def normalize(text: str) -> Normalized:
    """Return the normalised views of ``text`` (see :class:`Normalized`)."""
    out = unicodedata.normalize("NFKC", text)
    out, invisible = _strip_invisible(out)
    out, homoglyphs = _fold_homoglyphs(out)
    out, spaced = _join_spaced(out)
    out = _WHITESPACE.sub(" ", out).strip()
    decoded = _decode_base64(out)
    lowered = out.lower()
    rule_text = _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), lowered)
    if decoded:
        rule_text += "\n" + "\n".join(d.lower() for d in decoded)
    return Normalized(
        text=out,
        rule_text=rule_text,
        decoded=decoded,
        obfuscated=invisible or homoglyphs or spaced or bool(decoded),
    )
