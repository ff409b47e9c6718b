"""A Redis master, its replica and Sentinels watching them (`redis-server --sentinel`), on loopback. A
three-second down-after makes a failover take a few seconds."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from tollgate.local.processes import LOOPBACK, ManagedProcess, free_port, redis_server_binary

MASTER_NAME = "tollgate"
# Above Sentinel's one-second PING period: at 1 s, the Sentinels could each find the master they had
# just promoted "down" before their first PING to it was answered, and fail over again, back to the old
# master restarted as its replica, leaving the promoted one a master without replicas (seen in a run:
# replica acks then never came, and every money call was refused until the test gave up).
DOWN_AFTER_MS = 3000


@dataclass
class Sentinels:
    master: ManagedProcess
    replica: ManagedProcess
    sentinels: list[ManagedProcess]

    @property
    def url(self) -> str:
        """The form RedisStore.from_url takes: every Sentinel, then the master's name."""
        hosts = ",".join(f"{LOOPBACK}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}"

    def kill(self, proc: ManagedProcess) -> None:
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)

    def restart(self, proc: ManagedProcess, *extra: str) -> ManagedProcess:
        again = ManagedProcess(
            proc.name, [*proc.argv, *extra], log_path=proc.log_path, cwd=proc.cwd, port=proc.port
        )
        again.start()
        assert proc.port is not None
        again.wait_tcp(proc.port)
        return again

    def stop(self) -> None:
        for p in (*self.sentinels, self.replica, self.master):
            p.stop(grace=2.0)


def _server(name: str, workdir: Path, *extra: str) -> ManagedProcess:
    port = free_port()
    d = workdir / name
    d.mkdir(parents=True)
    argv = [str(redis_server_binary()), "--bind", LOOPBACK, "--port", str(port), "--save", "",
            "--appendonly", "no", "--repl-diskless-sync-delay", "0", "--dir", str(d), *extra]  # fmt: skip
    return ManagedProcess(name, argv, log_path=d / "redis.log", cwd=d, port=port)


def start_sentinels(workdir: Path, count: int = 3) -> Sentinels:
    """A master, one replica, and `count` Sentinels (quorum: a majority) that fail over to the replica."""
    started: list[ManagedProcess] = []
    try:
        master = _server("master", workdir)
        started.append(master.start())
        assert master.port is not None
        master.wait_tcp(master.port)
        replica = _server("replica", workdir, "--replicaof", LOOPBACK, str(master.port))
        started.append(replica.start())
        assert replica.port is not None
        replica.wait_tcp(replica.port)
        sentinels = []
        for i in range(count):
            port = free_port()
            d = workdir / f"sentinel-{i}"
            d.mkdir(parents=True)
            conf = d / "sentinel.conf"  # Sentinel rewrites its file with what it learns
            conf.write_text(
                f"bind {LOOPBACK}\nport {port}\ndir {d}\n"
                f"sentinel monitor {MASTER_NAME} {LOOPBACK} {master.port} {count // 2 + 1}\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            )
            s = ManagedProcess(
                f"sentinel-{i}",
                [str(redis_server_binary()), str(conf), "--sentinel"],
                log_path=d / "sentinel.log",
                cwd=d,
                port=port,
            )
            started.append(s.start())
            s.wait_tcp(port)
            sentinels.append(s)
        _wait_linked(replica)
        return Sentinels(master, replica, sentinels)
    except BaseException:
        for p in started:
            p.stop(grace=2.0)
        raise


def _wait_linked(replica: ManagedProcess, timeout: float = 30.0) -> None:
    import redis

    assert replica.port is not None
    deadline = time.monotonic() + timeout
    with redis.Redis(host=LOOPBACK, port=replica.port, decode_responses=True) as r:
        while r.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica did not sync with its master within {timeout}s")
            time.sleep(0.05)
