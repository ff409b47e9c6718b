"""An HTTP/1.1 upstream a test steers into the faults a vendor can show on a POST: answer a status, answer
after a delay, read the request and reset the connection without a word, or hang until the client gives
up. Every POST it read in full is counted (`received`): what a real vendor may have run. A GET is
answered 200 at once (reads are not what is being faulted)."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any


@dataclass
class Behaviour:
    mode: str = "answer"  # answer | reset (read it, then RST) | hang (read it, never answer)
    status: int = 200
    body: Any = field(default_factory=lambda: {"id": "re_1", "object": "refund"})
    delay_s: float = 0.0  # before answering


class FaultyUpstream:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.received = 0  # requests read in full
        self.answered_at: list[float] = []  # monotonic time each answer was sent
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str = "answer", status: int = 200, body: Any = None, delay_s: float = 0.0) -> None:
        self.behaviour = Behaviour(mode, status, body if body is not None else Behaviour().body, delay_s)

    def __enter__(self) -> FaultyUpstream:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = 0
                for h in head.split(b"\r\n")[1:]:
                    k, _, v = h.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                buf = rest[length:]
                if head.split(b" ", 1)[0] != b"POST":
                    self._answer(conn, Behaviour())
                    continue
                with self._lock:
                    self.received += 1
                b = self.behaviour
                if b.mode == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    return
                if b.mode == "hang":
                    self._stop.wait(60)
                    return
                if b.delay_s:
                    time.sleep(b.delay_s)
                with self._lock:
                    self.answered_at.append(time.monotonic())
                self._answer(conn, b)
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def _answer(conn: socket.socket, b: Behaviour) -> None:
        payload = json.dumps(b.body).encode()
        conn.sendall(
            f"HTTP/1.1 {b.status} X\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
