"""HTML pages (``.html`` / ``.htm``): one article each, the page's content without the site.

Navigation, site header/footer, sidebars, scripts, styles and forms are dropped; when the page
has a ``<main>`` (or ``<article>``) only that is kept. Headings become Markdown ``#`` lines so
the chunker keeps sections. Title: first ``<h1>``, else ``<title>``, else the file name.
``<meta name="visibility|tags|updated_at|url">`` work like front matter."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

from kb_pipeline.loaders.base import Article, LoadError
from kb_pipeline.loaders.fields import (
    default_visibility,
    parse_date,
    parse_tags,
    parse_url,
    parse_visibility,
    stem_id,
    title_from_name,
)

_VOID = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()  # noqa: SIM905
)
_ALWAYS_SKIP = frozenset(
    "script style noscript template nav aside svg iframe form button select textarea "  # noqa: SIM905
    "canvas object head".split()
)
# A site header/footer is boilerplate; an <article>'s own header holds its title.
_SKIP_OUTSIDE_CONTENT = frozenset({"header", "footer"})
_SKIP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
_SKIP_CLASSES = frozenset(
    {"sidebar", "breadcrumb", "breadcrumbs", "cookie-banner", "skip-link", "toc", "site-nav"}
)
_IMPLICIT_CLOSE = {
    "p": {"p"},
    "li": {"li"},
    "dt": {"dt", "dd"},
    "dd": {"dt", "dd"},
    "tr": {"tr", "td", "th"},
    "td": {"td", "th"},
    "th": {"td", "th"},
    "option": {"option"},
}
_CONTAINERS = frozenset({"ul", "ol", "table", "dl", "select", "div", "body"})
_MAX_DEPTH = 256
_GROUPS = frozenset({"ul", "ol", "dl", "table"})
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_BLOCKS = frozenset(
    "p div section article main ul ol dl dt dd table thead tbody tfoot blockquote figure "  # noqa: SIM905
    "figcaption address details summary body html center hr br".split()
)


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    children: list[_Node | str] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    """A forgiving DOM: unknown end tags are ignored, common implicit closes are applied."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#root", {})
        self.stack: list[_Node] = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        closes = _IMPLICIT_CLOSE.get(tag)
        if closes:
            for i in range(len(self.stack) - 1, 0, -1):
                t = self.stack[i].tag
                if t in closes:
                    del self.stack[i:]
                    break
                if t in _CONTAINERS:
                    break
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        # A cap on nesting keeps rendering (recursive) safe on pathological pages.
        if tag not in _VOID and len(self.stack) < _MAX_DEPTH:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(_Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def _find_all(node: _Node, tag: str) -> Iterable[_Node]:
    for child in node.children:
        if isinstance(child, _Node):
            if child.tag == tag:
                yield child
            else:
                yield from _find_all(child, tag)


def _text_of(node: _Node) -> str:
    parts: list[str] = []

    def walk(n: _Node) -> None:
        for c in n.children:
            if isinstance(c, str):
                parts.append(c)
            elif c.tag not in _ALWAYS_SKIP:
                walk(c)

    walk(node)
    return " ".join("".join(parts).split())


def _is_boilerplate(node: _Node, in_content: bool) -> bool:
    if node.tag in _ALWAYS_SKIP:
        return True
    if node.tag in _SKIP_OUTSIDE_CONTENT and not in_content:
        return True
    attrs = node.attrs
    if "hidden" in attrs or attrs.get("aria-hidden", "").lower() == "true":
        return True
    if attrs.get("role", "").lower() in _SKIP_ROLES:
        return True
    return bool(_SKIP_CLASSES.intersection(attrs.get("class", "").lower().split()))


class _Renderer:
    """Renders the content tree as Markdown-ish paragraphs with ``#`` headings."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.buf: list[str] = []

    def flush(self) -> None:
        text = " ".join("".join(self.buf).split())
        self.buf = []
        if text and text not in ("-", "- "):
            # A paragraph that starts like a heading would open a bogus section in the chunker.
            if re.match(r"#{1,6}\s", text):
                text = "\\" + text
            self.blocks.append(text)

    def render(self, node: _Node, in_content: bool) -> None:
        for child in node.children:
            if isinstance(child, str):
                self.buf.append(child)
                continue
            if _is_boilerplate(child, in_content):
                continue
            tag = child.tag
            inside = in_content or tag in ("article", "main")
            if tag in _HEADINGS:
                self.flush()
                text = _text_of(child)
                if text:
                    self.blocks.append("#" * _HEADINGS[tag] + " " + text)
            elif tag == "pre":
                self.flush()
                raw = "".join(_raw_text(child)).strip("\n")
                if raw.strip():
                    # Indented as a Markdown code block so "# comment" lines are not headings.
                    self.blocks.append("\n".join("    " + line for line in raw.split("\n")))
            elif tag == "tr":
                self.flush()
                cells = [_text_of(c) for c in child.children if isinstance(c, _Node)]
                row = " | ".join(c for c in cells if c)
                if row:
                    self.blocks.append(row)
            elif tag in _GROUPS:
                # A list or table stays one paragraph, so the chunker keeps it together.
                self.flush()
                inner = _Renderer()
                inner.render(child, inside)
                inner.flush()
                if inner.blocks:
                    self.blocks.append("\n".join(inner.blocks))
            elif tag == "li":
                self.flush()
                self.buf.append("- ")
                self.render(child, inside)
                self.flush()
            elif tag in _BLOCKS:
                self.flush()
                self.render(child, inside)
                self.flush()
            else:
                self.render(child, inside)


def _raw_text(node: _Node) -> list[str]:
    out: list[str] = []
    for c in node.children:
        if isinstance(c, str):
            out.append(c)
        elif c.tag == "br":
            out.append("\n")
        else:
            out += _raw_text(c)
    return out


def _meta(root: _Node) -> dict[str, str]:
    return {
        m.attrs["name"].strip().lower(): m.attrs.get("content", "")
        for m in _find_all(root, "meta")
        if m.attrs.get("name")
    }


def html_article(text: str, path: Path, mtime: datetime) -> Article:
    """The article of an HTML page's decoded ``text``: its content, headings as ``#`` lines."""
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    root = builder.root
    # The page's own content area, when it marks one, is all that matters.
    content = list(_find_all(root, "main")) or list(_find_all(root, "article"))
    renderer = _Renderer()
    if content:
        for node in content:
            renderer.render(node, in_content=True)
            renderer.flush()
    else:
        bodies = list(_find_all(root, "body"))
        renderer.render(bodies[0] if bodies else root, in_content=False)
        renderer.flush()
    body = "\n\n".join(renderer.blocks).strip()
    if not body:
        raise LoadError("empty_file", "no text left after removing navigation and boilerplate")
    h1 = next((b[2:] for b in renderer.blocks if b.startswith("# ")), "")
    title_tag = next((_text_of(t) for t in _find_all(root, "title")), "")
    title = h1 or title_tag or title_from_name(path)
    meta = _meta(root)
    vis = parse_visibility(meta.get("visibility"), "<meta name=visibility>", "bad_metadata")
    updated = parse_date(meta.get("updated_at"), "<meta name=updated_at>", "bad_metadata")
    return Article(
        source_id=stem_id(path),
        title=title,
        body=body,
        visibility=vis or default_visibility(title),
        tags=parse_tags(meta.get("tags", "")),
        updated_at=updated or mtime,
        url=parse_url(meta.get("url"), "<meta name=url>", "bad_metadata"),
    )
