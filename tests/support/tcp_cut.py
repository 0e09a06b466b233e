"""A loopback TCP proxy that cuts the connection after the server has sent N bytes: the
"connection dropped mid-fetch" fault."""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttingProxy:
    """Forward 127.0.0.1:<port> to ``target``; once ``cut_after`` bytes came back from the
    server on one connection, close it (``cut_after`` None: never)."""

    def __init__(self, target_port: int, cut_after: int | None) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = int(self._listener.getsockname()[1])
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counting: bool) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if counting and self.cut_after is not None and sent + len(data) > self.cut_after:
                    dst.sendall(data[: max(self.cut_after - sent, 0)])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
