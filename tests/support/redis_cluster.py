"""A real Redis Cluster on loopback: 3 masters + 3 replicas (`redis-server --cluster-enabled yes`,
joined by `redis-cli --cluster create`). A short node timeout makes a failover take a few seconds; not
shorter, or a node starved of CPU for a moment on a busy machine is failed over unasked."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tollgate.local.processes import LOOPBACK, ManagedProcess, ProcessError, free_ports, redis_server_binary

NODE_TIMEOUT_MS = 2000
MIN_VERSION = (7, 0)


class ClusterUnavailable(Exception):
    """redis-server or redis-cli is missing or too old for this machine to start a cluster."""


def require_cluster_tools() -> tuple[Path, Path]:
    """The redis-server and redis-cli binaries, or ClusterUnavailable saying what is missing."""
    cli = shutil.which("redis-cli")
    try:
        server = redis_server_binary()
    except Exception as e:
        raise ClusterUnavailable(f"no redis-server: {e}") from e
    if cli is None:
        raise ClusterUnavailable("no redis-cli on PATH (it creates the cluster): apt-get install redis-tools")
    out = subprocess.run([str(server), "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"v=(\d+)\.(\d+)", out)
    if not m or (int(m[1]), int(m[2])) < MIN_VERSION:
        raise ClusterUnavailable(f"redis-server {out.strip()!r} is older than {MIN_VERSION}")
    return server, Path(cli)


@dataclass
class RedisCluster:
    nodes: list[ManagedProcess]
    cli: Path
    workdir: Path
    stopped: set[int] = field(default_factory=set)

    @property
    def ports(self) -> list[int]:
        return [p.port for p in self.nodes if p.port is not None]

    @property
    def url(self) -> str:
        """The form RedisStore.from_url takes: every node as a seed."""
        return "redis+cluster://" + ",".join(f"{LOOPBACK}:{p}" for p in self.ports)

    def redis_cli(self, port: int, *args: str, timeout: float = 10.0) -> str:
        r = subprocess.run(
            [str(self.cli), "-h", LOOPBACK, "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return r.stdout

    def fields(self, port: int, *command: str) -> dict[str, str]:
        """A `name:value` per line reply (CLUSTER INFO, INFO <section>) as a dict."""
        out = self.redis_cli(port, *command)
        return dict(line.split(":", 1) for line in out.split() if ":" in line)

    def info(self, port: int) -> dict[str, str]:
        return self.fields(port, "cluster", "info")

    def master_of_slot(self, slot: int) -> int | None:
        """The port of the master serving `slot`, as a live node sees it (None while none does)."""
        port = next(p for p in self.ports if p not in self.stopped)
        for line in self.redis_cli(port, "cluster", "nodes").splitlines():
            parts = line.split()
            if "master" not in parts[2] or "fail" in parts[2]:
                continue
            for rng in parts[8:]:
                lo, _, hi = rng.partition("-")
                if lo.isdigit() and int(lo) <= slot <= int(hi or lo):
                    return int(parts[1].split(":")[1].split("@")[0])
        return None

    def kill(self, port: int) -> None:
        """SIGKILL one node: no goodbye, no last flush to its replica."""
        proc = next(p for p in self.nodes if p.port == port)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        self.stopped.add(port)

    def restart(self, port: int) -> None:
        """Start a killed node again from its own nodes.conf: it rejoins, as a replica of whoever took over."""
        old = next(p for p in self.nodes if p.port == port)
        proc = ManagedProcess(old.name, old.argv, log_path=old.log_path, cwd=old.cwd, port=port)
        self.nodes[self.nodes.index(old)] = proc.start()
        proc.wait_tcp(port)
        self.stopped.discard(port)

    def replica_of(self, master_port: int) -> int:
        """The port of a replica replicating from `master_port`, as the master's replication link says
        (its CLUSTER NODES may not have heard of the replica's role yet)."""
        deadline = time.monotonic() + 30
        while True:
            for k, v in self.replication(master_port).items():
                if re.fullmatch(r"slave\d+", k):
                    return int(dict(f.split("=", 1) for f in v.split(","))["port"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"{master_port} has no replica: {self.replication(master_port)}")
            time.sleep(0.02)

    def replication(self, port: int) -> dict[str, str]:
        return self.fields(port, "info", "replication")

    def wait_synced(self, replica: int, master: int, timeout: float = 30.0) -> None:
        """Wait until `replica` follows `master` and holds everything `master` had written when called.

        A replica can be between two states for seconds: after a failover it was not part of, or a
        restart, it full-syncs again and until that ends its data is what it held before. A test that
        kills the master next must first know what the replica holds."""
        target = int(self.replication(master).get("master_repl_offset", "0"))
        deadline = time.monotonic() + timeout
        while True:
            r = self.replication(replica)
            if (
                r.get("role") == "slave"
                and r.get("master_port") == str(master)
                and r.get("master_link_status") == "up"
                and int(r.get("slave_repl_offset", "-1")) >= target
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"replica {replica} not synced with {master} to {target} in {timeout}s: {r}"
                )
            time.sleep(0.02)

    def freeze(self, port: int) -> None:
        """SIGSTOP a node: it reads nothing more until thaw()."""
        proc = next(p for p in self.nodes if p.port == port)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGSTOP)

    def thaw(self, port: int) -> None:
        proc = next(p for p in self.nodes if p.port == port)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGCONT)

    def wait_ok(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        live = [p for p in self.ports if p not in self.stopped]
        while True:
            if all(self.info(p).get("cluster_state") == "ok" for p in live):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"cluster not ok within {timeout}s: {self.redis_cli(live[0], 'cluster', 'nodes')}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        for p in self.nodes:
            p.stop(grace=2.0)


def start_cluster(workdir: Path, *, masters: int = 3, replicas: int = 1) -> RedisCluster:
    """A cluster on loopback; started again on fresh ports (up to 3 times) if another process took one
    of its ports between the pick and the bind."""
    for attempt in range(3):
        try:
            return _start_cluster(workdir / f"try-{attempt}", masters=masters, replicas=replicas)
        except ProcessError as exc:
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_cluster(workdir: Path, *, masters: int, replicas: int) -> RedisCluster:
    server, cli = require_cluster_tools()
    nodes: list[ManagedProcess] = []
    cluster = RedisCluster(nodes, cli, workdir)
    count = masters * (1 + replicas)
    ports = free_ports(2 * count)
    try:
        for i in range(count):
            port, bus = ports[2 * i], ports[2 * i + 1]
            d = workdir / f"node-{i}"
            d.mkdir(parents=True)
            argv = [
                str(server),
                "--bind", LOOPBACK,
                "--port", str(port),
                # An explicit bus port: the default (port + 10000) may be taken or past 65535.
                "--cluster-port", str(bus),
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(d / "nodes.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # A replica whose link was cut may still take over (the failover tests cut it on purpose).
                "--cluster-replica-validity-factor", "0",
                # A replica (re)syncing starts at once, not after the default 5 s wait for more replicas.
                "--repl-diskless-sync-delay", "0",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(d),
            ]  # fmt: skip
            proc = ManagedProcess(f"redis-cluster-{i}", argv, log_path=d / "redis.log", cwd=d, port=port)
            nodes.append(proc.start())
        for p in nodes:
            assert p.port is not None
            p.wait_tcp(p.port)
        create = subprocess.run(
            [
                str(cli),
                "--cluster",
                "create",
                *(f"{LOOPBACK}:{p}" for p in cluster.ports),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{create.stdout}\n{create.stderr}")
        cluster.wait_ok()
        _wait_replicas_linked(cluster, masters * replicas)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_replicas_linked(cluster: RedisCluster, expected: int, timeout: float = 30.0) -> None:
    # `cluster_state:ok` comes before the replicas finish their first sync; a failover needs them synced.
    deadline = time.monotonic() + timeout
    while True:
        linked = sum(cluster.replication(p).get("master_link_status") == "up" for p in cluster.ports)
        if linked >= expected:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {linked}/{expected} replicas linked within {timeout}s")
        time.sleep(0.05)
