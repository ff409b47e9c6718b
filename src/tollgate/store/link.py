"""One Redis connection that sends a batch of commands in one write and reads their replies with hiredis:
the commit autopipeline's round trips (store/autopipeline.py), without redis-py's per-command machinery.

Why: each check commits once, and behind gRPC most round trips carry a single commit. redis-py spends
about 140 µs of CPU on one EVALSHA (a task per write for its timeout, the pool, the retry wrapper, an
encoder call per argument); this spends about 45 (bench/PROFILING.md). Everything else in the store
stays on redis-py.

Only a connection it can open exactly as redis-py would is made here: TCP or a unix socket, with a
password (and user) and a database from the URL. For TLS, Sentinel or a credential provider,
`for_client` says None and the autopipeline sends through redis-py's pipeline instead.

Failing closed: a round trip that times out or loses its connection raises redis-py's TimeoutError or
ConnectionError to every caller in it (the store turns both into StoreUnavailable: denied), and the
connection is dropped, never reused; the next round trip opens a new one. Nothing is retried here: a
command that may have run is never sent twice. An error reply is returned in its place, for its caller
alone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import (
    AuthenticationError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tollgate.record import record

# Replies Redis sends as errors, by their first word, as redis-py names them (the rest: ResponseError).
_ERRORS: dict[str, type[ResponseError]] = {"NOSCRIPT": NoScriptError, "READONLY": ReadOnlyError}


def _error(reply: Exception) -> ResponseError:
    text = str(reply)
    return _ERRORS.get(text.split(" ", 1)[0], ResponseError)(text)


@record
class Address:
    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None  # a unix socket instead of host:port
    username: str | None = None
    password: str | None = None
    db: int = 0


class _Protocol(asyncio.Protocol):
    def __init__(self, link: Link) -> None:
        self._link = link
        self._reader = hiredis.Reader(encoding="utf-8")

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            self._link._reply(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._link._lost(self, RedisConnectionError(f"Redis closed the connection: {exc or 'EOF'}"))


class Link:
    """Round trips on one connection, opened on first use and after any failure."""

    def __init__(self, address: Address, *, timeout_s: float) -> None:
        self._address = address
        self._timeout = timeout_s
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._opening = asyncio.Lock()
        # One entry per round trip in flight, oldest first: its future, the replies it still expects,
        # what it has so far, and when it was sent (the watchdog's clock).
        self._waiting: deque[tuple[asyncio.Future[list[Any]], int, list[Any], float]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None

    @classmethod
    def for_client(cls, client: Any) -> Link | None:
        """A link to the server `client` (a redis.asyncio.Redis) talks to, or None where this module
        cannot open the connection exactly as redis-py would (TLS, Sentinel, a credential provider)."""
        pool = getattr(client, "connection_pool", None)
        if pool is None or pool.connection_class not in (Connection, UnixDomainSocketConnection):
            return None
        kw = pool.connection_kwargs
        if kw.get("credential_provider") is not None:
            return None
        address = Address(
            host=kw.get("host", "127.0.0.1"),
            port=int(kw.get("port", 6379)),
            path=kw.get("path") if pool.connection_class is UnixDomainSocketConnection else None,
            username=kw.get("username"),
            password=kw.get("password"),
            db=int(kw.get("db", 0) or 0),
        )
        return cls(address, timeout_s=float(kw.get("socket_timeout") or 0.5))

    async def round_trip(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send `commands` in one write; their replies in order, an error reply in its command's place."""
        if self._transport is None:
            await self._open()
        data = b"".join(hiredis.pack_command(c) for c in commands)
        return await self._send(self._transport, data, len(commands))

    async def close(self) -> None:
        self._drop(RedisConnectionError("the link was closed"))

    # ---- connection ------------------------------------------------------------------------------

    async def _open(self) -> None:
        async with self._opening:  # one connection, however many round trips find none
            if self._transport is not None:
                return
            try:
                await asyncio.wait_for(self._connect(), self._timeout)
            except TimeoutError as exc:
                self._drop(RedisTimeoutError("timed out connecting to Redis"))
                raise RedisTimeoutError(f"timed out connecting to Redis within {self._timeout}s") from exc
            except BaseException:
                self._drop(RedisConnectionError("could not connect to Redis"))
                raise

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        a = self._address
        try:
            if a.path:
                transport, protocol = await loop.create_unix_connection(lambda: _Protocol(self), a.path)
            else:
                transport, protocol = await loop.create_connection(lambda: _Protocol(self), a.host, a.port)
        except OSError as exc:
            raise RedisConnectionError(f"Error connecting to Redis: {exc}") from exc
        self._transport, self._protocol = transport, protocol
        hello: list[tuple[Any, ...]] = []
        if a.password is not None:
            hello.append(("AUTH", a.username, a.password) if a.username else ("AUTH", a.password))
        if a.db:
            hello.append(("SELECT", a.db))
        if hello:  # the transport is set: this goes at once, ahead of any round trip waiting for it
            for reply in await self.round_trip(hello):
                if isinstance(reply, ResponseError):
                    raise AuthenticationError(f"Redis refused the connection's set-up: {reply}")

    def _send(self, transport: Any, data: bytes, n: int) -> asyncio.Future[list[Any]]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.append((fut, n, [], loop.time()))
        transport.write(data)
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._timeout / 4, self._watch)
        return fut

    # ---- replies ---------------------------------------------------------------------------------

    def _reply(self, reply: Any) -> None:
        if not self._waiting:  # a reply nobody asked for: the stream is out of step, trust nothing on it
            self._drop(RedisConnectionError("a reply Redis sent was not asked for"))
            return
        fut, n, replies, _ = self._waiting[0]
        replies.append(_error(reply) if isinstance(reply, hiredis.ReplyError) else reply)
        if len(replies) == n:
            self._waiting.popleft()
            if not fut.done():  # its caller may have been cancelled: the replies are read all the same
                fut.set_result(replies)

    def _watch(self) -> None:
        """Every quarter timeout while round trips are in flight: the oldest one past the timeout drops
        the connection (its commands may have run: each caller is told it failed, none is resent)."""
        self._watchdog = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self._waiting[0][3] > self._timeout:
            self._drop(RedisTimeoutError(f"no reply from Redis within {self._timeout}s"))
            return
        self._watchdog = loop.call_later(self._timeout / 4, self._watch)

    def _lost(self, protocol: _Protocol, exc: Exception) -> None:
        if protocol is self._protocol:  # not an older connection already dropped
            self._drop(exc)

    def _drop(self, exc: Exception) -> None:
        transport, self._transport, self._protocol = self._transport, None, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting = self._waiting, deque()
        for fut, *_ in waiting:
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # read: a cancelled caller's future raises no "never retrieved" warning
        if transport is not None:
            transport.abort()
