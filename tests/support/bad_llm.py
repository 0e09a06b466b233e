"""An OpenAI-compatible endpoint on loopback that fails on purpose (aiohttp, in the test's
own event loop): in front of the real llama.cpp server it forwards, slowly when asked; on its
own it answers every request in the way ``mode`` names.

Modes: ``forward`` (pass to ``upstream``), ``slow`` (wait ``delay_s``, then forward),
``500``, ``429`` (with ``Retry-After: 1``), ``reset`` (close the connection), ``garbage``
(200 with a body that is not JSON), ``text:<content>`` (a well-formed chat completion, streamed
when asked, whose content is the given text: schema-breaking JSON, an empty answer, a
promise to transfer the customer...).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import ClientSession, web


@dataclass
class BadLlm:
    mode: str = "500"
    upstream: str | None = None
    delay_s: float = 0.0
    requests: list[dict[str, object]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/models"):
            return web.json_response({"object": "list", "data": [{"id": "bad"}]})
        body = await request.json()
        self.requests.append(body)
        mode = self.mode
        if mode == "500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if mode == "429":
            return web.json_response(
                {"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "1"}
            )
        if mode == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if mode == "garbage":
            return web.Response(text="<html>not json", content_type="application/json")
        if mode.startswith("text:"):
            return await self._text(request, body, mode[len("text:") :])
        if mode == "slow":
            await asyncio.sleep(self.delay_s)
        return await self._forward(request, body)

    async def _text(self, request: web.Request, body: dict, text: str) -> web.StreamResponse:
        base = {"id": "x", "created": 0, "model": "bad"}
        if not body.get("stream"):
            message = {"role": "assistant", "content": text}
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for delta, finish in (({"role": "assistant", "content": text}, None), ({}, "stop")):
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _forward(self, request: web.Request, body: dict) -> web.StreamResponse:
        assert self.upstream, "forwarding needs an upstream"
        async with (
            ClientSession() as session,
            session.post(f"{self.upstream}/chat/completions", json=body) as up,
        ):
            resp = web.StreamResponse(
                status=up.status, headers={"Content-Type": up.headers["Content-Type"]}
            )
            await resp.prepare(request)
            async for piece in up.content.iter_any():
                await resp.write(piece)
            await resp.write_eof()
            return resp


@asynccontextmanager
async def bad_llm(mode: str = "500", **kw: object) -> AsyncIterator[BadLlm]:
    """Serve a :class:`BadLlm` on a free loopback port; ``.url`` is its ``/v1`` base URL."""
    bad = BadLlm(mode, **kw)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", bad.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    bad.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    try:
        yield bad
    finally:
        await runner.cleanup()
