"""Loaders: files on disk -> :class:`Article` records, with per-file errors instead of crashes.

:func:`load_path` takes a file or a folder and returns a :class:`LoadResult`: the articles,
the files read, the files skipped, and one :class:`FileError` per problem (codes in
:data:`ERROR_CODES`). A bad file never stops the others.

One module per format, each with its own rules: :mod:`~kb_pipeline.loaders.markdown`
(``.md``), :mod:`~kb_pipeline.loaders.html` (``.html``), :mod:`~kb_pipeline.loaders.pdf`,
:mod:`~kb_pipeline.loaders.plain_text` (``.txt``) and :mod:`~kb_pipeline.loaders.faq` (``.csv``
and ``.jsonl``, one article per record). What they share: :mod:`~kb_pipeline.loaders.base`
(the records and error codes), :mod:`~kb_pipeline.loaders.fields` (decoding; visibility, tags,
dates, urls, ids) and :mod:`~kb_pipeline.loaders.files` (finding files, dispatch by suffix, the
entry points and the rules across files).

Code outside this package imports what it needs from here.
"""

from kb_pipeline.loaders.base import (
    DEFAULT_MAX_FILE_BYTES,
    ERROR_CODES,
    Article,
    FileError,
    LoadResult,
    Visibility,
)
from kb_pipeline.loaders.files import (
    SUPPORTED_SUFFIXES,
    demo_kb_path,
    discover,
    display_name,
    drop_duplicates,
    load_directory,
    load_file,
    load_markdown,
    load_path,
)

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "ERROR_CODES",
    "SUPPORTED_SUFFIXES",
    "Article",
    "FileError",
    "LoadResult",
    "Visibility",
    "demo_kb_path",
    "discover",
    "display_name",
    "drop_duplicates",
    "load_directory",
    "load_file",
    "load_markdown",
    "load_path",
]
