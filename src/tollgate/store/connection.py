"""How a Redis client is built from `TOLLGATE_REDIS__URL`: one Redis, a Redis/Valkey Cluster, or Sentinel.

  redis://host:port/db, rediss://…, unix://…        one Redis (redis-py's own URL forms)
  redis+cluster://[user:pass@]host:port[,host:port…]  a cluster; every listed node is a seed
  rediss+cluster://…                                  the same over TLS
  redis+sentinel://[user:pass@]host:port[,host:port…]/<master name>[/db]
                                                      the master Sentinel names (rediss+sentinel: TLS)

Every key one Lua script touches shares a hash tag (store/keys.py), so the same scripts run on all three.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff

from tollgate.errors import TollgateError

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


class RedisUrlError(TollgateError, ValueError):
    """A Redis URL Tollgate cannot use; the message names the accepted forms."""


def _hosts(netloc: str, url: str) -> tuple[list[tuple[str, int]], str | None, str | None]:
    auth, _, hosts = netloc.rpartition("@")
    user, _, password = auth.partition(":")
    out: list[tuple[str, int]] = []
    for h in hosts.split(","):
        host, _, port = h.rpartition(":")
        if not host or not port.isdigit():
            raise RedisUrlError(f"{url!r}: every node must be host:port (got {h!r})")
        out.append((host, int(port)))
    return out, unquote(user) or None, unquote(password) or None


def connect(url: str, *, timeout_s: float = 0.5, max_connections: int = 64) -> Any:
    """A redis.asyncio client (Redis or RedisCluster) for `url`, answering str (decode_responses)."""
    common: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "decode_responses": True,
    }
    scheme = url.partition("://")[0].lower()
    if scheme in CLUSTER_SCHEMES:
        parts = urlsplit(url)
        nodes, user, password = _hosts(parts.netloc, url)
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in nodes],
            # Deny fast while a slot has no master: redis-py's default (10 retries, backoff up to
            # seconds) would hold each check far past Envoy's ext_authz timeout.
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2),
            username=user,
            password=password,
            ssl=scheme.startswith("rediss"),
            max_connections=max_connections,
            **common,
        )
    if scheme in SENTINEL_SCHEMES:
        parts = urlsplit(url)
        nodes, user, password = _hosts(parts.netloc, url)
        path = [p for p in parts.path.split("/") if p]
        if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
            raise RedisUrlError(
                f"{url!r}: expected redis+sentinel://host:port[,host:port]/<master name>[/db]"
            )
        sentinel = Sentinel(nodes, sentinel_kwargs={"socket_timeout": timeout_s}, **common)
        return sentinel.master_for(
            path[0],
            db=int(path[1]) if len(path) == 2 else 0,
            username=user,
            password=password,
            ssl=scheme.startswith("rediss"),
            max_connections=max_connections,
        )
    try:
        # A blocking pool: a burst past max_connections waits for a free connection (up to the command
        # timeout) instead of failing at once with MaxConnectionsError, which would deny the burst.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout_s, **common
        )
        return aioredis.Redis.from_pool(pool)  # owns the pool: close() disconnects it
    except ValueError as e:
        raise RedisUrlError(
            f"{url!r}: {e}; use redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://"
        ) from e
