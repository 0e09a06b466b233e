"""Loaders: every format, every error code, on real files written to a temp folder."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kb_pipeline.chunking import chunk_article
from kb_pipeline.loaders import (
    ERROR_CODES,
    Article,
    demo_kb_path,
    discover,
    load_directory,
    load_file,
    load_markdown,
    load_path,
)
from tests.support.kb_files import make_pdf, write


def only(result_path: Path, **kwargs: object) -> Article:
    result = load_file(result_path, **kwargs)  # type: ignore[arg-type]
    assert result.errors == [], result.errors
    assert len(result.articles) == 1
    return result.articles[0]


def codes(path: Path, **kwargs: object) -> list[str]:
    return [e.code for e in load_path(path, **kwargs).errors]  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ Markdown


def test_markdown_front_matter(tmp_path: Path) -> None:
    p = write(
        tmp_path / "x.md",
        '---\nid: refunds\ntitle: "Refunds: how"\nvisibility: internal\n'
        "tags: [billing, refunds]\nupdated_at: 2026-01-05\n---\n\n## When\n\nWithin 30 days.\n",
    )
    a = only(p)
    assert a.source_id == "refunds"
    assert a.title == "Refunds: how"
    assert a.visibility == "internal"
    assert a.tags == ("billing", "refunds")
    assert a.updated_at == datetime(2026, 1, 5, tzinfo=UTC)
    assert a.body == "## When\n\nWithin 30 days."


def test_markdown_without_front_matter_uses_heading_stem_and_mtime(tmp_path: Path) -> None:
    p = write(tmp_path / "opening-hours.md", "# Opening hours\n\nMon-Fri 8-18.\n")
    os.utime(p, (1_700_000_000, 1_700_000_000))
    a = only(p)
    assert (a.source_id, a.title, a.visibility) == ("opening-hours", "Opening hours", "external")
    assert a.updated_at == datetime.fromtimestamp(1_700_000_000, tz=UTC)


def test_markdown_bad_front_matter_is_bad_metadata(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "---\nvisibility: secret\n---\nText\n")
    write(tmp_path / "b.md", "---\nupdated_at: last tuesday\n---\nText\n")
    result = load_path(tmp_path)
    assert [(e.file, e.code) for e in result.errors] == [
        ("a.md", "bad_metadata"),
        ("b.md", "bad_metadata"),
    ]
    assert "secret" in result.errors[0].message and "last tuesday" in result.errors[1].message


def test_demo_kb_still_loads_with_the_same_ids_and_visibility() -> None:
    articles = load_directory(demo_kb_path())
    assert len(articles) == 40
    assert sum(a.visibility == "internal" for a in articles) == 5
    refunds = next(a for a in articles if a.source_id == "refunds")
    assert refunds.tags == ("billing", "refunds")
    assert load_markdown(demo_kb_path() / "refunds.md") == refunds


def test_load_directory_refuses_a_bad_file(tmp_path: Path) -> None:
    write(tmp_path / "good.md", "# Good\n\nText.\n")
    write(tmp_path / "bad.md", b"caf\xe9\n")
    with pytest.raises(ValueError, match="bad_encoding"):
        load_directory(tmp_path)


# ------------------------------------------------------------------------------ HTML

PAGE = """<!doctype html>
<html><head><title>Refunds | Acme Support</title>
<style>body { color: red }</style><script>var tracking = "SCRIPTTEXT";</script>
<meta name="tags" content="billing, refunds"></head>
<body>
<header><a href="/">Acme HEADERTEXT</a><nav><ul><li>Home NAVTEXT</li><li>Pricing</li></ul></nav>
</header>
<div class="sidebar">SIDEBARTEXT</div>
<main><article><header><h1>Refund policy</h1></header>
<p>We refund <b>within</b> 30&nbsp;days &amp; no questions.</p>
<h2>How to ask</h2><ul><li>Call us<li>Email us</ul>
<h3>Fees</h3>
<table><tr><th>Plan</th><th>Fee</th></tr><tr><td>Basic</td><td>$10</td></tr></table>
<pre># not a heading
echo ok</pre>
<aside>ASIDETEXT</aside>
</article></main>
<footer>FOOTERTEXT 2024</footer>
</body></html>"""


def test_html_strips_boilerplate_and_keeps_headings(tmp_path: Path) -> None:
    a = only(write(tmp_path / "refunds.html", PAGE))
    assert a.title == "Refund policy"
    assert a.source_id == "refunds"
    assert a.tags == ("billing", "refunds")
    for junk in ("SCRIPTTEXT", "HEADERTEXT", "NAVTEXT", "SIDEBARTEXT", "ASIDETEXT", "FOOTERTEXT"):
        assert junk not in a.body
    assert "We refund within 30 days & no questions." in a.body
    assert "## How to ask\n\n- Call us\n- Email us" in a.body
    assert "Plan | Fee\nBasic | $10" in a.body
    assert "    # not a heading" in a.body  # code stays code, not a section
    sections = {c.section for c in chunk_article(a.title, a.body, max_tokens=64, overlap=8)}
    assert "Refund policy > How to ask > Fees" in sections
    assert not any("not a heading" in s for s in sections)


def test_html_without_main_or_h1_uses_body_and_title_tag(tmp_path: Path) -> None:
    page = (
        "<html><head><title>Opening hours</title></head><body><nav>Menu</nav>"
        "<p>Open 8-18</p><footer>Copyright</footer></body></html>"
    )
    a = only(write(tmp_path / "hours.htm", page))
    assert (a.title, a.body) == ("Opening hours", "Open 8-18")


def test_html_declared_charset_is_honoured(tmp_path: Path) -> None:
    page = '<html><head><meta charset="windows-1252"></head><body><h1>Café</h1><p>Crème brûlée</p>'
    a = only(write(tmp_path / "menu.html", page.encode("cp1252")))
    assert a.title == "Café" and "Crème brûlée" in a.body


def test_html_with_only_boilerplate_is_empty(tmp_path: Path) -> None:
    write(tmp_path / "nav.html", "<html><body><nav>Home | About</nav><script>x()</script></body>")
    assert codes(tmp_path) == ["empty_file"]


def test_index_html_is_named_after_its_folder(tmp_path: Path) -> None:
    write(tmp_path / "billing" / "index.html", "<h1>Billing</h1><p>We bill monthly.</p>")
    write(tmp_path / "shipping" / "index.html", "<h1>Shipping</h1><p>2 days.</p>")
    result = load_path(tmp_path)
    assert result.errors == []
    assert [a.source_id for a in result.articles] == ["billing", "shipping"]


# ------------------------------------------------------------------------------ PDF


def test_pdf_text_layer_and_title(tmp_path: Path) -> None:
    pdf = make_pdf(
        [["Warranty terms", "Parts are covered for 2 years."], ["Labour (1 year) is covered."]],
        title="Warranty",
    )
    a = only(write(tmp_path / "warranty.pdf", pdf))
    assert a.title == "Warranty"
    assert a.source_id == "warranty"
    assert "Parts are covered for 2 years." in a.body
    assert "Labour (1 year) is covered." in a.body
    assert a.body.index("Parts") < a.body.index("Labour")


def test_pdf_without_title_uses_file_name(tmp_path: Path) -> None:
    a = only(write(tmp_path / "gas-safety.pdf", make_pdf([["Leave the house."]])))
    assert a.title == "Gas Safety"


def test_corrupt_and_fake_pdfs(tmp_path: Path) -> None:
    good = make_pdf([["Some text on a page that is long enough."]] * 3, title="T")
    write(tmp_path / "truncated.pdf", good[: len(good) // 2])
    write(tmp_path / "renamed.pdf", "This is a Word document, really.")
    write(tmp_path / "garbage.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8)
    result = load_path(tmp_path)
    assert [(e.file, e.code) for e in result.errors] == [
        ("garbage.pdf", "corrupt_pdf"),
        ("renamed.pdf", "corrupt_pdf"),
        ("truncated.pdf", "corrupt_pdf"),
    ]
    assert result.articles == []


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    write(tmp_path / "scan.pdf", make_pdf([[], []]))
    result = load_path(tmp_path)
    assert [e.code for e in result.errors] == ["no_text_layer"]
    assert "2 page(s)" in result.errors[0].message


# ------------------------------------------------------------------------------ plain text


def test_txt_title_from_first_line(tmp_path: Path) -> None:
    a = only(write(tmp_path / "hours.txt", "Opening hours\n\nWe open at 8 and close at 18.\n"))
    assert (a.title, a.body) == ("Opening hours", "We open at 8 and close at 18.")


def test_txt_single_paragraph_titled_from_file_name(tmp_path: Path) -> None:
    a = only(write(tmp_path / "call_out_fee.txt", "The call-out fee is $89 on weekdays."))
    assert a.title == "Call Out Fee"
    assert a.body == "The call-out fee is $89 on weekdays."


# ------------------------------------------------------------------------------ CSV


def test_csv_faq_one_article_per_row_with_stable_ids(tmp_path: Path) -> None:
    p = write(
        tmp_path / "faq.csv",
        "Question,Answer,Tags\n"
        'How do I reset my password?,"Use the link on the login page.\nIt expires in 1 h.",'
        '"account, login"\n'
        "Do you ship abroad?,Yes to the EU.,\n",
    )
    first = load_file(p)
    assert first.errors == []
    a, b = first.articles
    assert a.title == "How do I reset my password?"
    assert a.body == "Use the link on the login page.\nIt expires in 1 h."
    assert a.tags == ("account", "login")
    assert a.source_id.startswith("faq/how-do-i-reset-my-password-")
    assert a.source_id != b.source_id
    assert [x.source_id for x in load_file(p).articles] == [a.source_id, b.source_id]


def test_csv_id_column_semicolons_and_title_text(tmp_path: Path) -> None:
    p = write(
        tmp_path / "kb.csv",
        "id;title;text;visibility\nk1;Hours;8-18;\nk2;Refund limits;$500;internal\n",
    )
    result = load_file(p)
    assert result.errors == []
    assert [(x.source_id, x.title, x.visibility) for x in result.articles] == [
        ("k1", "Hours", "external"),
        ("k2", "Refund limits", "internal"),
    ]


def test_csv_bad_rows_are_reported_by_line_and_good_rows_kept(tmp_path: Path) -> None:
    p = write(
        tmp_path / "faq.csv",
        "question,answer\nGood one?,Yes.\nNo answer?,\nToo,many,cells\nAnother good?,Also yes.\n",
    )
    result = load_file(p)
    assert [a.title for a in result.articles] == ["Good one?", "Another good?"]
    assert [(e.code, e.line) for e in result.errors] == [("bad_record", 3), ("bad_record", 4)]
    assert all("2 good record(s) of this file loaded" in e.message for e in result.errors)


def test_csv_without_the_expected_columns(tmp_path: Path) -> None:
    result = load_file(write(tmp_path / "people.csv", "name,email\nAda,ada@example.com\n"))
    assert [(e.code, e.line) for e in result.errors] == [("bad_record", 1)]
    assert (
        "question,answer" in result.errors[0].message and "name, email" in result.errors[0].message
    )


# ------------------------------------------------------------------------------ JSONL


def test_jsonl_records_become_articles_with_their_ids(tmp_path: Path) -> None:
    rows = [
        {
            "id": "section_0",
            "title": "Features",
            "text": "Wireless PowerShare.",
            "url": "https://x/0",
        },
        {"id": 7, "title": "Internal: Refund limits", "content": "## Limits\n\nUp to $500."},
        {
            "id": "c",
            "title": "Card",
            "content": "Lost card steps.",
            "visibility": "internal",
            "tags": ["cards"],
            "updated_at": "2025-03-01T10:00:00Z",
        },
    ]
    p = write(tmp_path / "docs.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    result = load_file(p)
    assert result.errors == []
    a, b, c = result.articles
    assert (a.source_id, a.title, a.body, a.url) == (
        "section_0",
        "Features",
        "Wireless PowerShare.",
        "https://x/0",
    )
    assert (b.source_id, b.visibility) == ("7", "internal")  # "Internal:" title, no field
    assert (c.visibility, c.tags) == ("internal", ("cards",))
    assert c.updated_at == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert a.updated_at is None  # records without a date: the index stamps ingestion time


def test_jsonl_bad_lines_do_not_drop_good_ones(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "title": "A", "text": "first"}),
        '{"id": "b", "title": "B", "text": ',  # truncated JSON
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "c", "title": "C"}),  # no text
        json.dumps({"id": "d", "title": "D", "text": "x", "visibility": "public"}),
        json.dumps({"id": "a", "title": "A again", "text": "dup"}),
        json.dumps({"id": "e", "title": "E", "text": "last"}),
    ]
    result = load_file(write(tmp_path / "kb.jsonl", "\n".join(lines)))
    assert [a.source_id for a in result.articles] == ["a", "e"]
    assert [(e.code, e.line) for e in result.errors] == [
        ("bad_record", 2),
        ("bad_record", 3),
        ("bad_record", 4),
        ("bad_record", 5),
        ("duplicate_id", None),
    ]
    assert "public" in result.errors[3].message
    assert "'a'" in result.errors[4].message


def test_jsonl_without_id_is_a_bad_record(tmp_path: Path) -> None:
    result = load_file(write(tmp_path / "kb.jsonl", json.dumps({"title": "T", "text": "x"})))
    assert [(e.code, e.line) for e in result.errors] == [("bad_record", 1)]


# ------------------------------------------------------------------------------ bad files


def test_empty_and_whitespace_files(tmp_path: Path) -> None:
    write(tmp_path / "a.md", b"")
    write(tmp_path / "b.txt", "  \n\n\t\n")
    write(tmp_path / "c.md", "---\ntitle: Only metadata\n---\n")
    write(tmp_path / "d.jsonl", "\n\n")
    write(tmp_path / "e.csv", "question,answer\n")
    assert codes(tmp_path) == ["empty_file"] * 5


def test_latin1_file_is_bad_encoding_not_mojibake(tmp_path: Path) -> None:
    write(tmp_path / "menu.md", "# Menu\n\nCrème brûlée.\n".encode("latin-1"))
    result = load_path(tmp_path)
    assert result.articles == []
    [error] = result.errors
    assert error.code == "bad_encoding"
    assert "0xe8 on line 3 (byte offset 10)" in error.message and "UTF-8" in error.message


def test_utf8_bom_and_utf16_are_decoded(tmp_path: Path) -> None:
    a = only(write(tmp_path / "a.md", "\ufeff# Café\n\nOpen.\n".encode()))
    b = only(write(tmp_path / "b.txt", "Café\n\nCrème.\n".encode("utf-16")))
    assert (a.title, b.title, b.body) == ("Café", "Café", "Crème.")


def test_binary_with_nul_bytes_is_bad_encoding(tmp_path: Path) -> None:
    write(tmp_path / "blob.txt", b"abc\x00\x01\x02def")
    assert codes(tmp_path) == ["bad_encoding"]


def test_too_large_with_a_small_limit(tmp_path: Path) -> None:
    write(tmp_path / "big.md", "# Big\n\n" + "word " * 1000)
    write(tmp_path / "small.md", "# Small\n\nok\n")
    result = load_path(tmp_path, max_file_bytes=1000)
    assert [(e.file, e.code) for e in result.errors] == [("big.md", "too_large")]
    assert "1,000" in result.errors[0].message
    assert [a.source_id for a in result.articles] == ["small"]


def test_unsupported_file_given_directly_vs_in_a_folder(tmp_path: Path) -> None:
    img = write(tmp_path / "logo.png", b"\x89PNG\r\n")
    write(tmp_path / "a.md", "# A\n\ntext\n")
    assert [e.code for e in load_path(img).errors] == ["unsupported_type"]
    result = load_path(tmp_path)
    assert result.errors == [] and result.skipped == ["logo.png"]


def test_every_code_is_documented() -> None:
    for code in (
        "empty_file",
        "bad_encoding",
        "corrupt_pdf",
        "no_text_layer",
        "too_large",
        "unsupported_type",
        "bad_record",
        "duplicate_id",
    ):
        assert code in ERROR_CODES


# ------------------------------------------------------------------------------ folders


def test_folder_is_walked_sorted_skipping_hidden(tmp_path: Path) -> None:
    write(tmp_path / "b.md", "# B\n\nb\n")
    write(tmp_path / "a" / "z.txt", "Z\n\nz\n")
    write(tmp_path / ".git" / "HEAD.md", "# hidden\n\nx\n")
    write(tmp_path / ".draft.md", "# hidden\n\nx\n")
    files, skipped = discover(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a/z.txt", "b.md"]
    assert skipped == []
    result = load_path(tmp_path)
    assert result.files == ["a/z.txt", "b.md"]
    assert [a.source_id for a in result.articles] == ["z", "b"]


def test_duplicate_id_across_files_keeps_the_first(tmp_path: Path) -> None:
    write(tmp_path / "a" / "refunds.md", "# Refunds A\n\nfirst\n")
    write(tmp_path / "b" / "refunds.txt", "Refunds B\n\nsecond\n")
    result = load_path(tmp_path)
    assert [a.title for a in result.articles] == ["Refunds A"]
    [error] = result.errors
    assert (error.file, error.code) == ("b/refunds.txt", "duplicate_id")
    assert "a/refunds.md" in error.message


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_path(tmp_path / "nope")


# ------------------------------------------------------------------------------ options


def test_visibility_option_restricts_but_never_widens(tmp_path: Path) -> None:
    write(tmp_path / "open.md", "# Open\n\nfor all\n")
    write(tmp_path / "staff.md", "---\nvisibility: internal\n---\n# Staff\n\nonly staff\n")
    as_internal = {
        a.source_id: a.visibility for a in load_path(tmp_path, visibility="internal").articles
    }
    as_external = {
        a.source_id: a.visibility for a in load_path(tmp_path, visibility="external").articles
    }
    assert as_internal == {"open": "internal", "staff": "internal"}
    assert as_external == {"open": "external", "staff": "internal"}


def test_tags_option_is_added_to_each_articles_own_tags(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "---\ntags: [billing]\n---\n# A\n\ntext\n")
    [a] = load_path(tmp_path, tags=["imported", "billing", " "]).articles
    assert a.tags == ("billing", "imported")


# ------------------------------------------------------------------------------ urls


def test_every_format_that_can_name_a_web_page_carries_its_url(tmp_path: Path) -> None:
    write(tmp_path / "hours.md", "---\nurl: https://example.com/help/hours\n---\n# Hours\n\nx\n")
    write(
        tmp_path / "fees.html",
        '<html><head><meta name="url" content="http://example.com/fees?tab=1#call-out">'
        "</head><body><h1>Fees</h1><p>The call-out fee is $89.</p></body></html>",
    )
    write(
        tmp_path / "faq.csv",
        "id,question,answer,url\nq1,Do you work weekends?,Yes.,https://example.com/faq#q1\n"
        "q2,Do you sell parts?,No.,\n",
    )
    write(tmp_path / "plain.txt", "Plain\n\nNo place to say where it lives.\n")
    # The option that marks everything internal rebuilds the article; the url must survive.
    result = load_path(tmp_path, visibility="internal")
    assert result.errors == []
    assert {a.source_id: a.url for a in result.articles} == {
        "hours": "https://example.com/help/hours",
        "fees": "http://example.com/fees?tab=1#call-out",
        "q1": "https://example.com/faq#q1",
        "q2": None,
        "plain": None,
    }


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JavaScript://example.com/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "/help/hours",
        "example.com/help",
        "https://",
        "https://exa mple.com/",
        "ftp://example.com/file",
        "https://example.com/" + "a" * 2048,
        # Characters that break out of an HTML attribute, or are not allowed in a URL.
        'https://example.com/a"onmouseover="alert(1)',
        "https://example.com/a'b",
        "https://example.com/<script>",
        "https://example.com/a`b",
        "https://example.com/a\\b",
    ],
)
def test_a_url_that_is_not_absolute_http_is_refused_per_file_and_per_record(
    tmp_path: Path, url: str
) -> None:
    md = load_file(write(tmp_path / "a.md", f"---\nurl: {url}\n---\n# A\n\ntext\n"))
    assert md.articles == []
    assert [e.code for e in md.errors] == ["bad_metadata"]
    assert md.errors[0].message.startswith("front matter: url must be")

    records = [
        {"id": "good", "title": "Good", "text": "kept", "url": "https://example.com/good"},
        {"id": "bad", "title": "Bad", "text": "refused", "url": url},
    ]
    jsonl = load_file(write(tmp_path / "kb.jsonl", "\n".join(json.dumps(r) for r in records)))
    assert [(a.source_id, a.url) for a in jsonl.articles] == [("good", "https://example.com/good")]
    assert [(e.code, e.line) for e in jsonl.errors] == [("bad_record", 2)]


def test_a_url_that_is_not_a_string_is_a_bad_record(tmp_path: Path) -> None:
    line = json.dumps({"id": "a", "title": "A", "text": "x", "url": 42})
    result = load_file(write(tmp_path / "kb.jsonl", line))
    assert [(e.code, e.line) for e in result.errors] == [("bad_record", 1)]
    assert "42" in result.errors[0].message


def test_url_is_not_part_of_the_content_hash() -> None:
    plain = Article("a", "A", "body")
    linked = Article("a", "A", "body", url="https://example.com/a")
    assert plain.content_hash == linked.content_hash
    assert plain.content_hash != Article("a", "A", "other body").content_hash
