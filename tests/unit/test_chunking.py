"""Chunking an article (``kb_pipeline/chunking.py``): chunks keep their section path and stay
within the token bound."""

from __future__ import annotations

import pytest

from kb_pipeline.chunking import chunk_article, count_tokens


def test_chunking_keeps_sections_and_bounds():
    body = (
        "# Title\n\nIntro paragraph.\n\n## Prices\n\n"
        + " ".join(f"Sentence number {i} about prices." for i in range(200))
        + "\n\n## Hours\n\nWe open at 8."
    )
    chunks = chunk_article("Title", body, max_tokens=64, overlap=8)
    assert all(count_tokens(c.text) <= 64 for c in chunks)
    assert chunks[0].section == "Title"
    assert {c.section for c in chunks} == {"Title", "Title > Prices", "Title > Hours"}
    assert chunks[-1].text == "We open at 8."
    with pytest.raises(ValueError):
        chunk_article("t", "b", max_tokens=10, overlap=20)
