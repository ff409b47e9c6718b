"""HTTP/1.1 sent byte for byte: for requests no SDK (and no well-behaved client library) would send.

httpx and the SDKs normalise paths, join or drop repeated headers and fix Content-Length; an attacker
does none of that, so hostile requests are written here by hand."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names; a repeat keeps the last value
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def encode(
    method: str,
    target: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    *,
    version: str = "HTTP/1.1",
    content_length: int | None = None,
) -> bytes:
    """The request's bytes, exactly: `content_length` overrides the true length (to lie about it)."""
    lines = [f"{method} {target} {version}", "host: gateway", "connection: close"]
    length = len(body) if content_length is None else content_length
    lines.append(f"content-length: {length}")
    lines += [f"{k}: {v}" for k, v in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def send(
    port: int,
    method: str,
    target: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    *,
    version: str = "HTTP/1.1",
    content_length: int | None = None,
    timeout: float = 15.0,
) -> RawResponse:
    """One request on a new connection; `content_length` overrides the true length (to lie about it)."""
    request = encode(method, target, body, headers, version=version, content_length=content_length)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        reader = sock.makefile("rb")
        status_line = reader.readline().decode("latin-1")
        got: dict[str, str] = {}
        while (line := reader.readline().decode("latin-1")) not in ("\r\n", "\n", ""):
            name, _, value = line.partition(":")
            got[name.strip().lower()] = value.strip()
        # Read by Content-Length, not to EOF: Envoy holds a refused connection open for its delayed close.
        payload = reader.read(int(got.get("content-length", "0")))
    return RawResponse(int(status_line.split(" ", 2)[1]), got, payload)


@contextmanager
def sent(
    port: int,
    method: str,
    target: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    *,
    timeout: float = 15.0,
) -> Iterator[socket.socket]:
    """One request on a new connection, left unread while the `with` block runs, then closed: a client
    that hangs up at a moment the test chooses."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(encode(method, target, body, headers))
        yield sock
