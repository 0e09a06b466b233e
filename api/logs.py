"""Access-log redaction: credentials in a query string never reach the log.

EventSource cannot send headers, so ``GET .../events?token=ct_...`` (and the demo page's
``?key=wk_...``) carry a credential in the URL, and uvicorn's access log writes the whole URL.
:class:`RedactCredentials` rewrites the logged path, on every route, to ``token=[redacted]``
(and ``key=``), whatever the request's method or status.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
REDACTED_PARAMS = ("token", "key")
_CREDENTIAL = re.compile(rf"([?&](?:{'|'.join(REDACTED_PARAMS)})=)[^&#\s]*", re.IGNORECASE)


def redact(path: str) -> str:
    """``path`` (with its query string) with credential parameters' values redacted."""
    return _CREDENTIAL.sub(r"\1[redacted]", path)


class RedactCredentials(logging.Filter):
    """Redacts credentials in uvicorn access-log records (their args carry the path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's string args in place; never drop the record."""
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """Add the filter to the access logger (once; uvicorn's logging config keeps filters)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactCredentials) for f in logger.filters):
        logger.addFilter(RedactCredentials())
