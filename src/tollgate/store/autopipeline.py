"""Auto-pipelining of one Lua script: while one round trip to Redis is in flight, the calls that
concurrent checks make wait, and then go together as one pipeline (one write, one round trip) instead
of one each. Alone, a call goes at once, from its caller's task: an idle gateway adds no wait; a busy one
batches as much as its load (group commit). Round trips go one after the other, each on one pooled
connection.

Each call is still its own EVALSHA, so each runs alone and atomically in Redis, exactly as when sent by
itself: a pipeline is no transaction, and needs none (every commit is complete in itself). Nothing is
merged or reordered across callers; each gets its own reply. Any error fails closed: a reply that is an
error goes to its caller alone, and an error of the whole round trip (a connection lost, a timeout) to
every caller in it, so each of them is denied. A script Redis no longer holds (a restart, SCRIPT FLUSH)
is loaded again and only the calls it refused are sent again (a refused EVALSHA ran nothing).

Round trips go by `send`: the store's (store/link.py's own connection where it can open one, TCP or a
unix socket; else redis-py's pipeline, as by default here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

MAX_BATCH = 256  # calls per pipeline: bounds one write and one reply buffer
Send = Callable[[list[tuple[Any, ...]]], Awaitable[list[Any]]]  # commands → their replies, one round trip


class AutoPipeline:
    def __init__(
        self, client: Any, script: AsyncScript, *, max_batch: int = MAX_BATCH, send: Send | None = None
    ) -> None:
        self._client = client
        self._script = script
        self._round_trip: Send = send if send is not None else partial(pipelined, client)
        self._max = max_batch
        self._queue: list[tuple[Sequence[Any], Sequence[Any], asyncio.Future[Any]]] = []
        self._busy = False  # a round trip is in flight: calls queue behind it
        self._sender: asyncio.Task[None] | None = None  # sends what queued, one round trip at a time
        self.batches = 0  # round trips sent, and calls they carried: for tests and the bench
        self.calls = 0

    async def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        if not self._busy:  # idle: this call goes at once, from its own task; errors reach this caller
            self._busy = True  # as from a plain call
            self.batches += 1
            self.calls += 1
            try:
                (reply,) = await self._run([(keys, args)])
            finally:
                self._next()
            if isinstance(reply, BaseException):
                raise reply
            return reply
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((keys, args, fut))
        return await fut

    def _next(self) -> None:
        """After a round trip: send what queued meanwhile, or go idle."""
        if self._queue:
            self._sender = asyncio.get_running_loop().create_task(self._drain())
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max]
                del self._queue[: self._max]
                await self._send(batch)
        finally:
            self._busy, self._sender = False, None
            # Only when this task is cancelled (the loop shutting down) can calls be left waiting.
            left, self._queue = self._queue, []
            _fail(left, RedisConnectionError("the Redis round trip was cancelled"))

    async def _send(self, batch: list[tuple[Sequence[Any], Sequence[Any], asyncio.Future[Any]]]) -> None:
        self.batches += 1
        self.calls += len(batch)
        try:
            replies = await self._run([(k, a) for k, a, _ in batch])
            for (_, _, fut), reply in zip(batch, replies, strict=True):
                _answer(fut, reply)
        except Exception as exc:  # the round trip failed: every caller still waiting fails with it
            _fail(batch, exc)
        except BaseException:
            _fail(batch, RedisConnectionError("the Redis round trip was cancelled"))
            raise

    async def _run(self, calls: list[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        return await run_scripts(
            self._client, [(self._script, keys, args) for keys, args in calls], self._round_trip
        )


async def run_scripts(
    client: Any, calls: Sequence[tuple[AsyncScript, Sequence[Any], Sequence[Any]]], send: Send
) -> list[Any]:
    """EVALSHA of each (script, keys, args) in one round trip by `send`, each reply (an error reply too)
    in its call's place; when Redis lacks a script (a restart, SCRIPT FLUSH), it is loaded and just the
    calls it refused (which ran nothing) go once more."""
    # execute_command's form: a cluster pipeline refuses .evalsha(), not the command itself
    commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args in calls]
    replies = await send(commands)
    retry = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
    if retry:
        for script in {calls[i][0].sha: calls[i][0] for i in retry}.values():
            await client.script_load(script.script)  # every master of a cluster
        again = await send([commands[i] for i in retry])
        for i, r in zip(retry, again, strict=True):
            replies[i] = r
    return replies


async def pipelined(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """`commands` in one redis-py pipeline (no MULTI: each stands alone), every reply kept, errors too."""
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(await pipe.execute(raise_on_error=False))


def _fail(calls: list[tuple[Sequence[Any], Sequence[Any], asyncio.Future[Any]]], exc: Exception) -> None:
    for _, _, fut in calls:
        if not fut.done():
            fut.set_exception(exc)


def _answer(fut: asyncio.Future[Any], reply: Any) -> None:
    if fut.done():  # the caller went away (its check was cancelled); the script ran all the same
        return
    if isinstance(reply, BaseException):
        fut.set_exception(reply)
    else:
        fut.set_result(reply)
