"""Loaders: files on disk -> :class:`Article` records, with per-file errors instead of crashes.

Everything is in :mod:`~kb_pipeline.loaders.files` for now; code outside this package imports
what it needs from here.
"""

from kb_pipeline.loaders.files import (
    DEFAULT_MAX_FILE_BYTES,
    ERROR_CODES,
    SUPPORTED_SUFFIXES,
    Article,
    FileError,
    LoadResult,
    Visibility,
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
