"""Helpers of the browser tests: Debian's Chromium, a loopback stand-in for a customer's site,
and a TCP proxy that can drop every connection between the browser and the server (which runs
in a thread: ``tests.support.live_api.serve_app``).

``context.set_offline(True)`` in Playwright only fails *new* requests; an SSE stream that is
already open keeps flowing. To test what a customer sees when the network really drops, the
browser talks to the server through :class:`DroppingProxy`, which can cut every connection and
refuse new ones until it is restored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
_HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"OPTIONS ", b"HEAD ")


def chromium_path() -> str:
    """Debian's Chromium (``make test`` installs it), or ``$DESKGRAPH_CHROMIUM``.

    Playwright cannot download its own browser here. Without a browser the tests are skipped
    on a developer's machine but fail in CI, where a skip would hide a broken install.
    """
    path = os.environ.get("DESKGRAPH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        message = f"no Chromium at {path}: apt-get install chromium, or set DESKGRAPH_CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextlib.contextmanager
def serve_page(body: str, headers: dict[str, str]) -> Iterator[str]:
    """Serve one HTML page (at every path) from a loopback server: a stand-in for a customer's
    own site. Yield its origin as ``http://localhost:PORT``.

    A page fulfilled by Playwright's ``route`` counts as public to Chromium, which then refuses
    its requests to a loopback API (local network access); a real loopback server does not.
    """
    data = body.encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            for name, value in {"Content-Type": "text/html; charset=utf-8", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class DroppingProxy:
    """A TCP forwarder to ``127.0.0.1:target_port`` that can simulate a dropped network.

    :meth:`cut` closes every open connection (both ends) and refuses new ones;
    :meth:`restore` accepts connections again. The first bytes of every HTTP request that
    passes through are kept in :attr:`requests`, so a test can check what a reconnecting
    client sent (its ``Last-Event-ID``, say).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.requests: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._blocked = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._blocked.is_set():
                client.close()  # the network is "down": the browser sees a closed connection
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_browser: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_browser and data.startswith(_HTTP_METHODS):
                    with self._lock:
                        self.requests.append(data.split(b"\r\n\r\n", 1)[0].decode("latin-1"))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until :meth:`restore`."""
        self._blocked.set()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            self._drop(s)

    def restore(self) -> None:
        """Accept connections again."""
        self._blocked.clear()

    def requests_to(self, path_part: str) -> list[str]:
        """The request heads whose request line contains ``path_part``, oldest first."""
        with self._lock:
            return [r for r in self.requests if path_part in r.split("\r\n", 1)[0]]

    def close(self) -> None:
        """Stop listening and drop everything."""
        self._closed.set()
        self.cut()
        # close() alone does not wake a thread blocked in accept() on Linux; shutdown() does.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)


def header(request_head: str, name: str) -> str | None:
    """The value of header ``name`` in a raw HTTP request head (case-insensitive)."""
    for line in request_head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None
