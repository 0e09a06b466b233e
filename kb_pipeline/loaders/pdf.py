"""PDF files (``.pdf``): one article from the text layer (pypdf), pages separated by blank lines.

Title: the document's ``/Title``, else the file name (a first line is often a running header).
Scanned PDFs (no text layer) are reported as ``no_text_layer``; OCR is out of scope."""

from __future__ import annotations

import io
import re
from datetime import datetime
from pathlib import Path

from kb_pipeline.loaders.base import Article, LoadError
from kb_pipeline.loaders.fields import default_visibility, stem_id, title_from_name


def pdf_article(data: bytes, path: Path, mtime: datetime) -> Article:
    """The article of a PDF file's bytes (its text layer)."""
    import pypdf  # imported on use: only PDF ingestion pays for it

    if b"%PDF-" not in data[:1024]:
        raise LoadError("corrupt_pdf", "expected a PDF (starting with '%PDF-'), got other bytes")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("corrupt_pdf", "the PDF is encrypted with a password")
        pages = [(page.extract_text() or "").replace("\x00", "") for page in reader.pages]
        meta_title = ""
        if reader.metadata is not None and reader.metadata.title:
            meta_title = str(reader.metadata.title).strip()
    except LoadError:
        raise
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...)
        raise LoadError(
            "corrupt_pdf", f"cannot parse the PDF: {type(exc).__name__}: {exc}"
        ) from exc
    if not pages:
        raise LoadError("empty_file", "the PDF has no pages")
    texts = [re.sub(r"[ \t]+\n", "\n", p).strip() for p in pages]
    body = "\n\n".join(t for t in texts if t)
    if not body:
        raise LoadError(
            "no_text_layer",
            f"none of the {len(pages)} page(s) has extractable text (a scan? OCR it first)",
        )
    title = meta_title or title_from_name(path)
    return Article(
        source_id=stem_id(path),
        title=title,
        body=body,
        visibility=default_visibility(title),
        updated_at=mtime,
    )
