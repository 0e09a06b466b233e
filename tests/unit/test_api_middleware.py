"""The API's request-body limit (``api/middleware.py``) on a bare ASGI app, and the OpenAPI
responses its error codes document (``api/errors.py``): no server, no database."""

from __future__ import annotations

import json
from typing import Any

from api.errors import ERROR_CODES, responses
from api.middleware import BodyLimit


def _scope(path: str = "/v1/x", method: str = "POST", length: int | None = None) -> dict:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": method, "path": path, "headers": headers}


async def _call(
    scope: dict, chunks: list[bytes], limit_for=lambda path: 10
) -> tuple[list[dict], list[Any]]:
    seen_by_app: list[Any] = []
    sent: list[dict] = []
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ] + [{"type": "http.disconnect"}]

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen_by_app.append(await receive())
        seen_by_app.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    await BodyLimit(app, limit_for=limit_for)(scope, receive, send)
    return sent, seen_by_app


async def test_declared_oversized_body_is_refused_before_reading():
    sent, seen = await _call(_scope(length=11), [b"x" * 11])
    assert sent[0]["status"] == 413 and not seen
    assert json.loads(sent[1]["body"])["code"] == "body_too_large"


async def test_chunked_body_is_cut_when_it_passes_the_limit():
    sent, seen = await _call(_scope(), [b"x" * 6, b"y" * 6])
    assert sent[0]["status"] == 413 and not seen


async def test_accepted_body_is_replayed_whole_then_the_real_channel_follows():
    sent, seen = await _call(_scope(), [b"12345", b"67890"])
    assert sent[0]["status"] == 200
    assert seen[0] == {"type": "http.request", "body": b"1234567890", "more_body": False}
    assert seen[1] == {"type": "http.disconnect"}  # SSE responses watch for it


async def test_limit_depends_on_the_path():
    def limits(path: str) -> int:
        return 100 if path == "/upload" else 10

    sent, _ = await _call(_scope("/upload", length=50), [b"x" * 50], limits)
    assert sent[0]["status"] == 200
    sent, _ = await _call(_scope("/other", length=50), [b"x" * 50], limits)
    assert sent[0]["status"] == 413


async def test_get_requests_pass_untouched():
    sent, seen = await _call(_scope(method="GET", length=999), [b""])
    assert sent[0]["status"] == 200 and seen[0]["body"] == b""


def test_error_codes_document_their_status_in_openapi():
    out = responses("not_found", "interrupt_conflict", "turn_in_progress")
    assert set(out) == {404, 409}
    assert set(out[409]["content"]["application/json"]["examples"]) == {
        "interrupt_conflict",
        "turn_in_progress",
    }
    assert all(400 <= status < 600 for status, _ in ERROR_CODES.values())
