"""store/link.py against a real redis-server: replies come back in order and in step with their commands,
whatever a caller, a pause, a timeout or a killed connection does; the connection opens as the URL says
(password, user, database) or not at all; a failure is an error to every caller in the round trip, never
a reply of another command."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tests.builders import grant

from tollgate.errors import StoreUnavailable
from tollgate.local.processes import ManagedProcess, start_redis
from tollgate.store.connection import connect
from tollgate.store.link import Address, Link
from tollgate.store.redis import RedisStore


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ManagedProcess]:
    # Its own Redis: these tests pause it, kill its clients and set a password.
    proc = start_redis(workdir=tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


def port_of(server: ManagedProcess) -> int:
    assert server.port is not None
    return server.port


@pytest.fixture
async def admin(server: ManagedProcess) -> AsyncIterator[aioredis.Redis]:
    """A second client: pauses the server, kills its clients, sets passwords."""
    client = aioredis.Redis(port=port_of(server), decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def link_to(server: ManagedProcess) -> AsyncIterator[Callable[[float], Link]]:
    """Links to the server with a given timeout, closed after the test."""
    made: list[Link] = []

    def make(timeout_s: float) -> Link:
        made.append(Link(Address(port=port_of(server)), timeout_s=timeout_s))
        return made[-1]

    yield make
    for link in made:
        await link.close()


async def test_a_round_trip_answers_each_command_in_its_place_an_error_reply_too(
    link_to: Callable[[float], Link],
) -> None:
    replies = await link_to(1).round_trip(
        [
            ("SET", "tg:s", "abc"),
            ("INCR", "tg:s"),
            ("EVALSHA", "0" * 40, 0),
            ("GET", "tg:s"),
            ("INCRBY", "tg:n", 5),
        ]
    )
    assert replies[0] == "OK"
    assert isinstance(replies[1], ResponseError) and "not an integer" in str(replies[1])
    assert isinstance(replies[2], NoScriptError)  # the pipeline loads the script on this one
    assert replies[3:] == ["abc", 5]


async def test_a_cancelled_caller_leaves_the_stream_in_step(
    admin: aioredis.Redis, link_to: Callable[[float], Link]
) -> None:
    link = link_to(5)
    await link.round_trip([("SET", "tg:a", "1")])
    await admin.execute_command("CLIENT", "PAUSE", 300, "ALL")
    first = asyncio.create_task(link.round_trip([("GET", "tg:a"), ("INCR", "tg:a")]))
    await asyncio.sleep(0.05)
    first.cancel()  # its two replies still come, and must go to nobody
    assert await link.round_trip([("INCR", "tg:b"), ("GET", "tg:a")]) == [1, "2"]
    assert first.cancelled()


async def test_a_round_trip_past_the_timeout_fails_and_the_next_one_opens_a_new_connection(
    admin: aioredis.Redis, link_to: Callable[[float], Link]
) -> None:
    link = link_to(0.2)
    await link.round_trip([("SET", "tg:t", "0")])
    await admin.execute_command("CLIENT", "PAUSE", 800, "ALL")
    with pytest.raises(RedisTimeoutError):
        await link.round_trip([("INCR", "tg:t")])  # it may still run: never sent again
    await asyncio.sleep(0.8)
    # The INCR ran or not (its connection was dropped while Redis held it); either way its reply
    # (an integer) is never taken for this GET's (a string).
    assert await link.round_trip([("GET", "tg:t")]) in (["0"], ["1"])


async def test_a_connection_the_server_closed_is_opened_again(
    admin: aioredis.Redis, link_to: Callable[[float], Link]
) -> None:
    link = link_to(1)
    await link.round_trip([("SET", "tg:k", "v")])
    assert await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 1
    await asyncio.sleep(0.05)  # the close reaches the link
    assert await link.round_trip([("GET", "tg:k")]) == ["v"]


async def test_a_lost_server_fails_the_round_trip(
    server: ManagedProcess, link_to: Callable[[float], Link]
) -> None:
    link = link_to(1)
    await link.round_trip([("PING",)])
    server.stop()
    with pytest.raises(RedisConnectionError):
        await link.round_trip([("PING",)])
    with pytest.raises(RedisConnectionError):  # and cannot connect again while it is down
        await link.round_trip([("PING",)])


async def test_the_url_s_password_user_and_database_are_what_the_link_connects_with(
    server: ManagedProcess, admin: aioredis.Redis
) -> None:
    port = port_of(server)
    await admin.execute_command("ACL", "SETUSER", "gate", "on", ">s3cret", "~*", "+@all")
    await admin.config_set("requirepass", "rootpw")
    for url, user in (
        (f"redis://gate:s3cret@127.0.0.1:{port}/3", "gate"),
        (f"redis://:rootpw@127.0.0.1:{port}/3", "default"),
    ):
        client = connect(url)
        link = Link.for_client(client)
        assert link is not None
        try:
            assert await link.round_trip([("SET", "tg:db", user), ("ACL", "WHOAMI")]) == ["OK", user]
        finally:
            await link.close()
        assert await client.get("tg:db") == user  # database 3, where redis-py reads it too
        await client.aclose()
    wrong = Link.for_client(connect(f"redis://:nope@127.0.0.1:{port}/0"))
    assert wrong is not None
    with pytest.raises(AuthenticationError):
        await wrong.round_trip([("PING",)])
    await wrong.close()


def test_only_connections_it_opens_as_redis_py_would_get_a_link() -> None:
    assert Link.for_client(connect("redis://127.0.0.1:6379/0")) is not None
    assert Link.for_client(connect("unix:///tmp/redis.sock")) is not None
    assert Link.for_client(connect("rediss://127.0.0.1:6379/0")) is None  # TLS: redis-py's pipeline
    assert Link.for_client(connect("redis+sentinel://127.0.0.1:26379/mymaster")) is None
    assert Link.for_client(connect("redis+cluster://127.0.0.1:7000")) is None


async def test_the_store_commits_over_the_link_and_denies_when_redis_is_gone(server: ManagedProcess) -> None:
    store = RedisStore.from_url(str(server.url), timeout_s=0.5, audited=False)
    pipe = store._commit_pipelined
    assert pipe is not None and store._link is not None
    assert pipe._round_trip == store._link.round_trip  # the commits' round trips go over the link
    try:
        g = grant()
        await store.put_grant(g)
        results = await asyncio.gather(
            *(store.commit(g.key_id, g.version, "stripe", "d", 2, 100) for _ in range(80))
        )
        assert sorted(r.spent_micro_usd for r in results if r.reservation_id) == list(range(2, 101, 2))
        assert pipe.batches < pipe.calls  # some shared a round trip
        server.stop()
        with pytest.raises(StoreUnavailable):
            await store.commit(g.key_id, g.version, "stripe", "d", 2, 1000)
    finally:
        await store.close()
