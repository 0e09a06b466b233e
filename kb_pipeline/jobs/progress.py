"""How a running job reports its progress to its caller (the CLI's progress bar)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kb_pipeline.loaders import FileError


@dataclass
class FileOutcome:
    """What happened to one file of a job."""

    file: str
    articles: int = 0
    written: int = 0
    unchanged: int = 0
    chunks: int = 0
    errors: list[FileError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file loaded and indexed without any error."""
        return not self.errors


class JobProgress:
    """Receives a job's progress; subclass and override what you need (all no-ops here)."""

    def started(self, files_total: int, skipped: Sequence[str]) -> None:
        """The files were found; ``skipped`` are those of an unsupported type."""

    def file_started(self, file: str) -> None:
        """A file is about to be loaded and indexed."""

    def articles_done(self, file: str, done: int, total: int) -> None:
        """``done`` of the file's ``total`` articles are indexed (called per batch)."""

    def file_done(self, outcome: FileOutcome) -> None:
        """A file is finished (successfully or not)."""

    def cleanup_started(self) -> None:
        """Deleting the articles that are no longer in the source."""
