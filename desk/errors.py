"""Why the desk refused a turn or an action: domain errors with stable codes.

Each is a :class:`helpdesk.errors.DeskError` (``code``, ``status``); ``api/errors.py`` turns any
of them into the HTTP error of that status and code, the CLI prints the message.
"""

from __future__ import annotations

from helpdesk.errors import Conflict, DeskError


class TurnInProgress(Conflict):
    """Another message of the conversation is being answered."""

    code = "turn_in_progress"


class IdempotencyKeyInProgress(Conflict):
    """The first request with this Idempotency-Key is still running."""

    code = "idempotency_key_in_progress"


class ConversationBusy(Conflict):
    """Another action or turn on the conversation is running."""

    code = "conversation_busy"


class ConversationClosed(Conflict):
    """The conversation is closed."""

    code = "conversation_closed"


class ConversationOwned(Conflict):
    """Another agent owns the conversation."""

    code = "conversation_owned"


class InterruptConflict(Conflict):
    """What the action needs the thread to wait on is not what it waits on (any more)."""

    code = "interrupt_conflict"


class ActionFailed(DeskError):
    """The graph run of an agent action failed (a bug: logged with its traceback)."""

    code = "internal"
    status = 500
