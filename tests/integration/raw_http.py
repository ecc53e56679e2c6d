"""A raw HTTP/1.1 client on one socket, for tests of what the server does to the connection:
whether it stays usable after an answer, closes with ``Connection: close``, or is cut off.
Answers are read by their ``Content-Length`` (the server's answers to these tests carry one)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

TIMEOUT_S = 15.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def closes(self) -> bool:
        return "close" in self.headers.get("connection", "").lower()


class Connection:
    """One TCP connection to ``127.0.0.1:port``."""

    def __init__(self, port: int, timeout: float = TIMEOUT_S) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.port = port
        self._buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        self.send(request_bytes(method, path, self.port, body, headers))
        return self.answer()

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 16)
        self._buffer += data
        return bool(data)

    def answer(self) -> Answer:
        """The next answer on the connection; ``ConnectionError`` if it closes before one."""
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill():
                raise ConnectionError(f"closed before an answer (got {self._buffer[:200]!r})")
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            if not self._fill():
                raise ConnectionError("closed inside an answer's body")
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Answer(status, headers, body)

    def closed_by_server(self) -> bool:
        """Whether the server ends the connection (an orderly EOF) with nothing more sent."""
        try:
            return not self._buffer and not self._fill()
        except ConnectionResetError:
            return False


def request_bytes(
    method: str,
    path: str,
    port: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    all_headers = {"Content-Length": str(len(body))} if body or method != "GET" else {}
    all_headers.update(headers or {})
    lines += [f"{k}: {v}" for k, v in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
