"""Auto-pipelining of the commit script, against a fake Redis client that records what it was sent:
each caller gets its own reply, a batch is one round trip, and every error fails its callers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from tollgate.store.autopipeline import AutoPipeline

SHA = "f" * 40


class FakeScript:
    """AsyncScript's surface the pipeline reads: the script and its SHA."""

    sha = SHA
    script = "return ARGV[1]"


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.sent: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []

    def execute_command(self, name: str, sha: str, numkeys: int, *rest: Any) -> None:
        assert (name, sha) == ("EVALSHA", SHA)
        self.sent.append((tuple(rest[:numkeys]), tuple(rest[numkeys:])))

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        assert raise_on_error is False  # per-call errors are each caller's, not the batch's
        self.redis.trips.append(self.sent)
        refused = len(self.redis.trips) - 1 == self.redis.refuse_trip
        await self.redis.gate.wait()
        if self.redis.broken is not None:
            raise self.redis.broken
        return [self.redis.reply(k, a, refused) for k, a in self.sent]


class FakeRedis:
    def __init__(self) -> None:
        self.trips: list[list[tuple[tuple[Any, ...], tuple[Any, ...]]]] = []  # what each round trip carried
        self.gate = asyncio.Event()  # replies wait for it: round trips stay in flight until the test says
        self.broken: Exception | None = None  # the next pipeline's round trip fails with this
        self.refuse_trip: int | None = None  # this round trip's EVALSHAs meet a Redis that lost the script
        self.loaded = 0

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert transaction is False  # each commit is atomic on its own; no MULTI around the batch
        return FakePipeline(self)

    async def script_load(self, script: str) -> str:
        self.loaded += 1
        return SHA

    def reply(self, keys: tuple[Any, ...], args: tuple[Any, ...], refused: bool = False) -> Any:
        if refused:
            return NoScriptError("No matching script")
        if args[0] == "bad":
            return ResponseError("ERR script failed")
        return [1, args[0], 0]


@pytest.fixture
def redis() -> FakeRedis:
    return FakeRedis()


def pipeline(redis: FakeRedis) -> AutoPipeline:
    return AutoPipeline(redis, FakeScript())  # type: ignore[arg-type]


async def started(n: int, ap: AutoPipeline, first_arg: Any = "x") -> list[asyncio.Task[Any]]:
    tasks = [asyncio.create_task(ap([f"k{i}"], [f"{first_arg}{i}"])) for i in range(n)]
    await asyncio.sleep(0)
    return tasks


async def test_an_idle_call_goes_at_once_alone(redis: FakeRedis) -> None:
    redis.gate.set()
    ap = pipeline(redis)
    assert await ap(["k"], ["a"]) == [1, "a", 0]
    assert redis.trips == [[(("k",), ("a",))]]


async def test_calls_made_during_a_round_trip_share_the_next_one_and_each_gets_its_own_reply(
    redis: FakeRedis,
) -> None:
    ap = pipeline(redis)
    first = asyncio.create_task(ap(["k"], ["first"]))
    await asyncio.sleep(0)
    rest = await started(5, ap)
    assert len(redis.trips) == 1  # the five wait behind the round trip in flight
    redis.gate.set()
    assert await first == [1, "first", 0]
    assert [await t for t in rest] == [[1, f"x{i}", 0] for i in range(5)]
    assert [len(t) for t in redis.trips] == [1, 5]
    assert redis.trips[1] == [((f"k{i}",), (f"x{i}",)) for i in range(5)]  # in order, none merged
    assert (ap.batches, ap.calls) == (2, 6)


async def test_an_error_reply_fails_only_its_own_caller(redis: FakeRedis) -> None:
    ap = pipeline(redis)
    first = asyncio.create_task(ap(["k"], ["first"]))
    await asyncio.sleep(0)
    good = asyncio.create_task(ap(["k1"], ["good"]))
    bad = asyncio.create_task(ap(["k2"], ["bad"]))
    redis.gate.set()
    await first
    assert await good == [1, "good", 0]
    with pytest.raises(ResponseError):
        await bad


async def test_a_failed_round_trip_fails_every_caller_in_it(redis: FakeRedis) -> None:
    ap = pipeline(redis)
    first = asyncio.create_task(ap(["k"], ["first"]))
    await asyncio.sleep(0)
    rest = await started(4, ap)
    redis.broken = RedisConnectionError("Connection reset by peer")
    redis.gate.set()
    for t in [first, *rest]:
        with pytest.raises(RedisConnectionError):
            await t
    # The pipeline recovers: the next call goes alone, as on an idle gateway.
    redis.broken = None
    assert await ap(["k"], ["after"]) == [1, "after", 0]


async def test_a_failed_call_alone_fails_its_caller_and_lets_the_queue_go_on(redis: FakeRedis) -> None:
    ap = pipeline(redis)
    first = asyncio.create_task(ap(["k"], ["bad"]))
    await asyncio.sleep(0)
    rest = await started(2, ap)
    redis.gate.set()
    with pytest.raises(ResponseError):
        await first
    assert [await t for t in rest] == [[1, "x0", 0], [1, "x1", 0]]


async def test_a_script_redis_lost_is_loaded_again_and_only_refused_calls_are_resent(
    redis: FakeRedis,
) -> None:
    ap = pipeline(redis)
    first = asyncio.create_task(ap(["k"], ["first"]))
    await asyncio.sleep(0)
    rest = await started(3, ap)
    redis.refuse_trip = 1  # Redis restarted: the batch's EVALSHAs are refused, and ran nothing
    redis.gate.set()
    await first
    assert [await t for t in rest] == [[1, f"x{i}", 0] for i in range(3)]
    assert redis.loaded == 1
    assert [len(t) for t in redis.trips] == [1, 3, 3]  # the batch, then the same three once more


async def test_a_cancelled_caller_does_not_disturb_the_others(redis: FakeRedis) -> None:
    ap = pipeline(redis)
    first = asyncio.create_task(ap(["k"], ["first"]))
    await asyncio.sleep(0)
    rest = await started(3, ap)
    rest[1].cancel()
    redis.gate.set()
    await first
    assert await rest[0] == [1, "x0", 0]
    assert await rest[2] == [1, "x2", 0]
    assert rest[1].cancelled()


async def test_batches_are_bounded(redis: FakeRedis) -> None:
    ap = AutoPipeline(redis, FakeScript(), max_batch=4)  # type: ignore[arg-type]
    first = asyncio.create_task(ap(["k"], ["first"]))
    await asyncio.sleep(0)
    rest = await started(10, ap)
    redis.gate.set()
    await first
    assert [await t for t in rest] == [[1, f"x{i}", 0] for i in range(10)]
    assert [len(t) for t in redis.trips] == [1, 4, 4, 2]
