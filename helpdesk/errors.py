"""Domain errors with stable codes; the API maps them to HTTP statuses."""

from __future__ import annotations


class DeskError(Exception):
    """A domain error with a stable machine-readable ``code``."""

    code = "error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DeskError):
    """The thing asked for does not exist for this tenant."""

    code = "not_found"
    status = 404


class Conflict(DeskError):
    """The request conflicts with the current state (already exists, already decided)."""

    code = "conflict"
    status = 409


class InvalidInput(DeskError):
    """The request is well-formed but its values are not acceptable."""

    code = "invalid_input"
    status = 422
