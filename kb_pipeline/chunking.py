"""Heading- and paragraph-aware chunking, bounded in tokens.

A chunk never crosses a heading; paragraphs are packed up to ``max_tokens`` and a paragraph that
is too long on its own is split at sentence boundaries, with ``overlap`` tokens carried over.
Each chunk keeps its section path (``Title > Heading > Subheading``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def count_tokens(text: str) -> int:
    """Approximate token count (words and punctuation marks)."""
    return len(_TOKEN.findall(text))


@dataclass(frozen=True)
class Chunk:
    """A piece of an article, embedded and indexed on its own."""

    index: int
    text: str
    section: str


def _sections(title: str, body: str) -> list[tuple[str, list[str]]]:
    """Split Markdown into (section path, paragraphs)."""
    path: list[tuple[int, str]] = []
    sections: list[tuple[str, list[str]]] = []
    current: list[str] = []
    paragraph: list[str] = []

    def section_name() -> str:
        return " > ".join([title, *[h for _, h in path]])

    def flush_paragraph() -> None:
        if paragraph:
            current.append("\n".join(paragraph).strip())
            paragraph.clear()

    def flush_section() -> None:
        flush_paragraph()
        if current:
            sections.append((section_name(), list(current)))
            current.clear()

    for line in body.splitlines():
        m = _HEADING.match(line)
        if m:
            flush_section()
            level, text = len(m.group(1)), m.group(2)
            if level == 1 and text.strip().lower() == title.strip().lower():
                continue  # the article's own title heading adds nothing to the path
            path = [(lv, h) for lv, h in path if lv < level] + [(level, text)]
        elif not line.strip():
            flush_paragraph()
        else:
            paragraph.append(line)
    flush_section()
    return sections


def _split_long(paragraph: str, max_tokens: int, overlap: int) -> list[str]:
    sentences = _SENTENCE_END.split(paragraph)
    pieces: list[str] = []
    window: list[str] = []
    for sentence in sentences:
        if window and count_tokens(" ".join([*window, sentence])) > max_tokens:
            pieces.append(" ".join(window))
            carried: list[str] = []
            for s in reversed(window):
                if count_tokens(" ".join([s, *carried])) > overlap:
                    break
                carried.insert(0, s)
            window = carried
        window.append(sentence)
    if window:
        pieces.append(" ".join(window))
    # a single sentence longer than the budget is cut by tokens as a last resort
    out: list[str] = []
    for piece in pieces:
        tokens = piece.split()
        while count_tokens(" ".join(tokens)) > max_tokens and len(tokens) > 1:
            cut = max(1, max_tokens * 3 // 4)
            out.append(" ".join(tokens[:cut]))
            tokens = tokens[max(1, cut - overlap // 2) :]
        out.append(" ".join(tokens))
    return out


def chunk_article(
    title: str, body: str, *, max_tokens: int = 512, overlap: int = 64
) -> list[Chunk]:
    """Chunk one article's Markdown body."""
    if max_tokens < 16 or not 0 <= overlap < max_tokens:
        raise ValueError(
            f"need max_tokens >= 16 and 0 <= overlap < max_tokens, got {max_tokens}, {overlap}"
        )
    chunks: list[Chunk] = []
    for section, paragraphs in _sections(title, body):
        pack: list[str] = []
        for para in paragraphs:
            parts = (
                [para]
                if count_tokens(para) <= max_tokens
                else _split_long(para, max_tokens, overlap)
            )
            for part in parts:
                if pack and count_tokens("\n\n".join([*pack, part])) > max_tokens:
                    chunks.append(Chunk(len(chunks), "\n\n".join(pack), section))
                    pack = []
                pack.append(part)
        if pack:
            chunks.append(Chunk(len(chunks), "\n\n".join(pack), section))
    return chunks
