"""The per-process event hub without a database: a notification payload it cannot read is
dropped, not raised."""

from __future__ import annotations

import uuid

from helpdesk.notify import EventHub


def test_malformed_payloads_are_ignored() -> None:
    hub = EventHub("postgresql://unused")
    hub.dispatch("not a payload")
    hub.dispatch(f"{uuid.uuid4()} {uuid.uuid4()} notanumber note")
