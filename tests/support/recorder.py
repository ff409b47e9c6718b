"""A recording HTTP upstream for tests: stands where a vendor would, keeps every request it receives,
and answers with a configurable status and JSON body."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lowercased names; a repeated header keeps its values joined by ", "
    raw_headers: list[tuple[str, str]]  # as received, in order
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[RecordedRequest], Reply]


class RecordingUpstream:
    """`with RecordingUpstream() as up:` → `up.port`, `up.url`, `up.requests`, `up.reply = Reply(...)`.

    `reply` may also be a callable taking the RecordedRequest. Binds 127.0.0.1 on a free port."""

    def __init__(self, reply: Reply | Responder | None = None, host: str = "127.0.0.1") -> None:
        self.reply: Reply | Responder = reply or Reply()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server = ThreadingHTTPServer((host, 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[RecordedRequest]:
        """Poll until at least `count` requests arrived; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"expected {count} request(s) at the upstream within {timeout}s, got {len(got)}"
                )
            time.sleep(0.01)

    def start(self) -> RecordingUpstream:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="recording-upstream", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> RecordingUpstream:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _record(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
        return self.reply(request) if callable(self.reply) else self.reply


def _make_handler(upstream: RecordingUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as Envoy's upstream connection pool expects of a real vendor.
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            raw = [(k, v) for k, v in self.headers.items()]
            headers: dict[str, str] = {}
            for k, v in raw:
                key = k.lower()
                headers[key] = f"{headers[key]}, {v}" if key in headers else v
            reply = upstream._record(RecordedRequest(self.command, self.path, headers, raw, body))
            payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            out = {"content-type": "application/json", **{k.lower(): v for k, v in reply.headers.items()}}
            for k, v in out.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not traffic
            pass

    return Handler


def iter_json_lines(text: str) -> Iterator[dict[str, Any]]:
    """Parse JSON-lines output (an access log), skipping blank and non-JSON lines."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            yield json.loads(line)
