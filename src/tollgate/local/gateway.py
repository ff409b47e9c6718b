"""A whole working gateway on this machine: Redis, ext_authz and Envoy as local processes, loaded
from manifests through the same reconcile code the operator uses. `tollgate local` and the
integration tests both run it, so local mode is exercised by every test run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tollgate.audit.ingest import settled_to_end
from tollgate.audit.sql import AuditStore, AuditStoreUnavailable
from tollgate.credentials import CredentialBox, new_box_key
from tollgate.envoy.params import EnvoyParams, VendorUpstream
from tollgate.envoy.render import render_yaml
from tollgate.errors import StoreUnavailable
from tollgate.local import demo
from tollgate.local.expiry import ApprovalSweeper
from tollgate.local.processes import (
    ManagedProcess,
    ProcessError,
    free_ports,
    start_envoy,
    start_localstripe,
    start_process,
    start_redis,
)
from tollgate.local.supervise import Supervisor
from tollgate.local.watch import ManifestWatcher
from tollgate.policy.manifests import Manifests, load_path
from tollgate.reconcile.manifests import apply_manifests
from tollgate.reconcile.vault_keys import Outcome
from tollgate.store.redis import RedisStore
from tollgate.vendors import captured_fields, default_urls
from tollgate.vendors.envoy_replies import local_replies


@dataclass
class GatewayOptions:
    manifests: Path | None = None
    listen_port: int = 0  # 0: any free port
    redis_url: str | None = None  # None: start a private redis-server
    upstreams: dict[str, str] = field(default_factory=default_urls)
    localstripe: bool = False  # start localstripe and send Stripe traffic there
    demo_data: bool = False  # seed that localstripe (tollgate.local.demo), and again when it restarts
    workdir: Path | None = None
    extauthz_timeout_ms: int = 1000
    max_request_bytes: int = 1_048_576  # Envoy answers a larger body 413 and never sends it
    request_timeout_s: int = 60  # a request must arrive whole within this time, else 408
    # Envoy keeps few long-lived HTTP/2 connections, so processes sharing a port would not share load:
    # each ext_authz process gets its own port and Envoy round-robins across them.
    extauthz_procs: int = 1
    audit_url: str | None = None  # None: a SQLite file in the work directory
    audit: bool = True  # run the audit pipeline (access log → SQL, spend settlement)
    alerts_webhook_url: str | None = None  # Slack-compatible webhook for the audit's alerts
    # Past this size, once ingested, the access log is renamed and Envoy asked to reopen it; 0: never.
    audit_rotate_bytes: int = 64 << 20
    # Keep state in `workdir` across runs: Redis's data (append-only, fsynced before each reply), the key
    # that seals vendor keys in it, and the vault tokens (so agents keep theirs unless `rotate_tokens`).
    persist: bool = False
    rotate_tokens: bool = False
    supervise: bool = True  # restart any process that dies (tollgate.local.supervise)
    # Mark approvals past their expiry expired (tollgate.local.expiry). Off only beside an operator,
    # which does it in a cluster: one sweeper per Redis.
    expire_approvals: bool = True
    upstream_timeout_s: int = 80  # Envoy's route timeout to the vendors
    # How soon Envoy writes access-log lines to the file: the audit settles from them, so this bounds how
    # long a refused call keeps its reservation.
    access_log_flush_ms: int = 50
    ledger_timeout_s: float = 30.0  # how long start()/apply() wait for the audit to mark keys' spend
    # Follow edits of `manifests` (tollgate.local.watch): each applied change is passed to `on_follow`
    # as one line per key that changed; a change that does not load, to `on_refused` as its problems.
    watch: bool = False
    on_follow: Callable[[list[str]], None] | None = None
    on_refused: Callable[[list[str]], None] | None = None
    progress: Callable[[str], None] | None = None  # told each step of start(), for a person waiting


log = logging.getLogger("tollgate.local")
TOKENS_FILE = "tokens.json"
WATCH_INTERVAL_S = 0.1  # a change is applied after two equal polls: within about 0.2 s plus the apply
BOX_KEY_FILE = "credentials.key"


class LocalGateway:
    def __init__(self, options: GatewayOptions) -> None:
        self.options = options
        self._own_workdir = options.workdir is None
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix="tollgate-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.box_key = self._kept(BOX_KEY_FILE, new_box_key)
        self.box = CredentialBox([self.box_key])
        self.redis: ManagedProcess | None = None
        self.localstripe: ManagedProcess | None = None
        self.extauthz: list[ManagedProcess] = []
        self.envoy: ManagedProcess | None = None
        self.auditor: ManagedProcess | None = None
        self.redis_url = options.redis_url or ""
        self.upstreams = dict(options.upstreams)
        # Every port at once, all different (one free_port() after another may repeat a port).
        procs = max(1, options.extauthz_procs)
        listen, audit_metrics, envoy_admin, *per_process = free_ports(3 + 2 * procs)
        self.port = options.listen_port or listen
        self.extauthz_ports = per_process[:procs]
        self.metrics_ports = per_process[procs:]  # Prometheus /metrics of each process
        self.audit_metrics_port = audit_metrics  # the audit's /metrics (settlement, approval decisions)
        self.access_log = self.workdir / "access.log"
        self.envoy_admin_port = envoy_admin  # 127.0.0.1 only; the auditor asks it to reopen a rotated log
        self.audit_url = options.audit_url or f"sqlite:///{self.workdir / 'audit.db'}"
        self.tokens: dict[str, str] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.supervisor: Supervisor | None = None
        self.watcher: ManifestWatcher | None = None
        self.sweeper: ApprovalSweeper | None = None
        self.demo: demo.Demo | None = None
        self.manifests: Manifests | None = None  # the last set applied from the folder

    def _step(self, what: str) -> None:
        if self.options.progress is not None:
            self.options.progress(what)

    def _kept(self, name: str, make: Callable[[], str]) -> str:
        """A secret of the work dir: made once and kept (owner-only) when persisting, else fresh."""
        path = self.workdir / name
        if self.options.persist and path.is_file():
            return path.read_text().strip()
        value = make()
        if self.options.persist:
            _write_private(path, value)
        return value

    def processes(self) -> list[ManagedProcess]:
        procs = [self.redis, self.localstripe, *self.extauthz, self.envoy, self.auditor]
        return [p for p in procs if p is not None]

    # ---- lifecycle --------------------------------------------------------------------------------

    def start(self) -> LocalGateway:
        try:
            folder = self.options.manifests
            if folder is not None and self.options.watch:  # before loading: an edit from now on is seen
                self.watcher = ManifestWatcher(
                    folder, self._follow, report=self.options.on_refused, interval_s=WATCH_INTERVAL_S
                )
            manifests = load_path(folder) if folder else None
            if not self.redis_url:
                self._step("starting Redis")
                self.redis = start_redis(workdir=self.workdir, persist=self.options.persist)
                assert self.redis.url is not None
                self.redis_url = self.redis.url
            # `tollgate approve|reject|approvals` find the gateway's Redis here (a loopback URL, no secret).
            _write_private(self.workdir / "redis.url", self.redis_url + "\n")
            if self.options.localstripe:
                self._step("starting localstripe (the offline Stripe)")
                self.localstripe = start_localstripe(log_dir=self.workdir)
                self.upstreams["stripe"] = f"http://127.0.0.1:{self.localstripe.port}"
                if self.options.demo_data:
                    self._step("adding demo data to localstripe (a customer and three charges)")
                    self.demo = demo.seed(self.upstreams["stripe"])
            if manifests is not None:
                self._step("loading the manifests into Redis")
                self.apply(manifests)
            self._step("starting ext_authz")
            self.start_extauthz()
            self._step("starting Envoy")
            self.start_envoy()
            if self.options.audit:
                self._step("starting the audit and restoring today's spend from its ledger")
                self.start_auditor()
                self.wait_ledger()
            if self.options.supervise:
                self.supervisor = Supervisor(self.processes, on_restart=self._restarted).start()
            if self.options.expire_approvals:
                self.sweeper = ApprovalSweeper(self.redis_url).start()
            if self.watcher is not None:
                self.watcher.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _restarted(self, proc: ManagedProcess) -> None:
        # localstripe keeps its objects in memory: a restarted one has lost the demo the banner named.
        if proc is self.localstripe and self.options.demo_data:
            try:
                self.demo = demo.seed(self.upstreams["stripe"])
            except httpx.HTTPError as exc:
                log.error("localstripe restarted empty and the demo data could not be added: %s", exc)
                return
            log.warning("localstripe restarted empty; new demo data: %s", self.demo.describe())

    def wait_ledger(self, key_ids: Iterable[str] | None = None) -> None:
        """Wait until Redis holds the spend of these keys (default: every ready key) from the audit
        ledger; until then their money calls are refused. Raises ProcessError after ledger_timeout_s."""
        wanted = set(key_ids if key_ids is not None else (k for k, o in self.outcomes.items() if o.ready))
        if not wanted or not self.options.audit:
            return
        missing = asyncio.run(self._wait_marked(wanted, self.options.ledger_timeout_s))
        if missing:
            tail = self.auditor.log_tail() if self.auditor else ""
            raise ProcessError(f"the audit did not restore the spend of {sorted(missing)} in time\n{tail}")

    def wait_audited(self, timeout_s: float = 15.0) -> None:
        """Wait until every line Envoy has written (it flushes every access_log_flush_ms) is in the audit
        store and settled (each has its own checkpoint: neither implies the other). Raises
        ProcessError after `timeout_s`."""
        time.sleep(2 * self.options.access_log_flush_ms / 1000)
        deadline = time.monotonic() + timeout_s
        audit = AuditStore.from_url(self.audit_url)
        try:
            while True:
                try:
                    cp = audit.checkpoint(str(self.access_log.resolve()))
                    size = self.access_log.stat().st_size if self.access_log.exists() else 0
                    if size == 0 or (cp is not None and cp.offset >= size):
                        break
                except AuditStoreUnavailable:
                    pass
                if time.monotonic() >= deadline:
                    raise ProcessError(f"the audit did not catch up with {self.access_log} in {timeout_s:g}s")
                time.sleep(0.02)
        finally:
            audit.dispose()
        if not asyncio.run(self._wait_settled(deadline)):
            raise ProcessError(f"settlement did not catch up with {self.access_log} in {timeout_s:g}s")

    async def _wait_settled(self, deadline: float) -> bool:
        store = RedisStore.from_url(self.redis_url)
        source = str(self.access_log.resolve())  # the ingester's source: its log's path
        try:
            while True:
                try:
                    if settled_to_end(await store.settle_checkpoint(source), self.access_log):
                        return True
                except StoreUnavailable:
                    pass
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(0.02)
        finally:
            await store.close()

    async def _wait_marked(self, wanted: set[str], timeout_s: float) -> set[str]:
        store = RedisStore.from_url(self.redis_url)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    missing = await store.unmarked(wanted)
                except StoreUnavailable:
                    missing = wanted
                if not missing or time.monotonic() >= deadline:
                    return missing
                await asyncio.sleep(0.02)
        finally:
            await store.close()

    def start_extauthz(self) -> None:
        for i, (port, metrics_port) in enumerate(zip(self.extauthz_ports, self.metrics_ports, strict=True)):
            env = {
                **os.environ,
                "TOLLGATE_REDIS__URL": self.redis_url,
                "TOLLGATE_EXTAUTHZ__HOST": "127.0.0.1",
                "TOLLGATE_EXTAUTHZ__PORT": str(port),
                "TOLLGATE_EXTAUTHZ__METRICS_PORT": str(metrics_port),
                "TOLLGATE_EXTAUTHZ__VENDOR_URLS": json.dumps(self.upstreams),
                "TOLLGATE_CREDENTIALS__KEYS": self.box_key,
            }
            name = "extauthz" if i == 0 else f"extauthz-{i}"
            proc = start_process(
                name,
                [sys.executable, "-m", "tollgate_extauthz"],
                env=env,
                ready_port=port,
                log_dir=self.workdir,
            )
            self.extauthz.append(proc)

    def stop_extauthz(self) -> None:
        for proc in self.extauthz:
            proc.stop()
        self.extauthz = []

    def start_envoy(self) -> None:
        vendors = [VendorUpstream(name=n, prefix=f"/{n}", url=u) for n, u in sorted(self.upstreams.items())]
        params = EnvoyParams(
            listen_port=self.port,
            extauthz_endpoints=[f"127.0.0.1:{port}" for port in self.extauthz_ports],
            extauthz_timeout_ms=self.options.extauthz_timeout_ms,
            max_request_bytes=self.options.max_request_bytes,
            request_timeout_s=self.options.request_timeout_s,
            upstream_timeout_s=self.options.upstream_timeout_s,
            access_log_path=str(self.access_log),
            admin_port=self.envoy_admin_port,
            vendors=vendors,
            local_replies=local_replies({v.name: v.prefix for v in vendors}),
            captured_fields=captured_fields(),
        )
        config = self.workdir / "envoy.yaml"
        config.write_text(render_yaml(params))
        self.envoy = start_envoy(
            config,
            listen_port=self.port,
            log_path=self.workdir / "envoy.log",
            admin_port=self.envoy_admin_port,
            file_flush_interval_ms=self.options.access_log_flush_ms,
        )

    def start_auditor(self) -> None:
        # Migrate before the ingest process starts, so the audit is queryable as soon as start() returns;
        # a database that is unavailable now is the ingester's to wait for (it retries forever).
        audit = AuditStore.from_url(self.audit_url)
        with contextlib.suppress(AuditStoreUnavailable):
            audit.migrate()
        audit.dispose()
        argv = [sys.executable, "-m", "tollgate.cli.main", "audit", "ingest", "--log", str(self.access_log),
                "--db", self.audit_url, "--redis-url", self.redis_url,
                "--rotate-bytes", str(self.options.audit_rotate_bytes),
                "--envoy-admin", f"http://127.0.0.1:{self.envoy_admin_port}",
                "--flush-ms", str(self.options.access_log_flush_ms),
                "--metrics-port", str(self.audit_metrics_port), "--metrics-host", "127.0.0.1"]  # fmt: skip
        env = {"TOLLGATE_ALERTS__SLACK_WEBHOOK_URL": self.options.alerts_webhook_url or ""}
        self.auditor = start_process("audit", argv, env=env, log_dir=self.workdir)

    def stop_auditor(self) -> None:
        if self.auditor is not None:
            self.auditor.stop()
            self.auditor = None

    def stop(self) -> None:
        if self.watcher is not None:  # first: nothing may be applied to a Redis being stopped
            self.watcher.stop()
            self.watcher = None
        if self.sweeper is not None:
            self.sweeper.stop()
            self.sweeper = None
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        for proc in (self.envoy, self.auditor, *self.extauthz, self.localstripe, self.redis):
            if proc is not None:
                proc.stop()
        self.envoy = self.auditor = self.localstripe = self.redis = None
        self.extauthz = []
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what a person (or a test) uses ------------------------------------------------------------

    def base_url(self, vendor: str = "stripe") -> str:
        return f"http://127.0.0.1:{self.port}/{vendor}"

    def apply(self, manifests: Manifests | Path, *, keep_tokens: bool = False) -> dict[str, str]:
        """Load manifests into Redis; returns key id → vault token. Tokens are fresh for every key, except
        with `persist`, where a key keeps the token of an earlier run unless `rotate_tokens`, and with
        `keep_tokens`, where a key keeps the token it has now. Returns once the audit has marked the
        keys' spend (money calls wait for it)."""
        if isinstance(manifests, Path):
            manifests = load_path(manifests)
        keep = self._saved_tokens() if self.options.persist and not self.options.rotate_tokens else {}
        if keep_tokens:
            keep = {**keep, **self.tokens}
        result = asyncio.run(self._apply(manifests, keep))
        self.manifests = manifests
        self.outcomes = {k: o for k, (_, o) in result.items()}
        self.tokens = {k: t for k, (t, o) in result.items() if o.ready}
        if self.options.persist:
            _write_private(self.workdir / TOKENS_FILE, json.dumps(self.tokens, indent=2, sort_keys=True))
        if self.auditor is not None:
            self.wait_ledger(self.tokens)
        return self.tokens

    def follow(self, manifests: Manifests) -> list[str]:
        """Apply an edited folder as the operator applies `kubectl apply/delete`: every key keeps its
        token, a key gone from the folder is revoked. Returns one line per key that changed."""
        before, had = dict(self.outcomes), set(self.tokens)
        self.apply(manifests, keep_tokens=True)
        return describe_changes(before, had, self)

    def _follow(self, manifests: Manifests) -> None:
        lines = self.follow(manifests)
        if self.options.on_follow is not None:
            self.options.on_follow(lines)

    def served_vendors(self) -> list[str]:
        """The vendors the loaded policies are for: the only ones worth naming to a person."""
        policies = self.manifests.policies.values() if self.manifests else ()
        return sorted({p.spec.vendor for p in policies})

    def _saved_tokens(self) -> dict[str, str]:
        try:
            saved = json.loads((self.workdir / TOKENS_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in saved.items()} if isinstance(saved, dict) else {}

    async def _apply(self, manifests: Manifests, keep: dict[str, str]) -> dict[str, tuple[str, Outcome]]:
        # Without an audit there is no ledger: Redis is the only copy of spend, and grants are marked so.
        store = RedisStore.from_url(self.redis_url, audited=self.options.audit)
        try:
            return await apply_manifests(store, self.box, manifests, keep_tokens=keep)
        finally:
            await store.close()


def describe_changes(before: dict[str, Outcome], had_token: set[str], gateway: LocalGateway) -> list[str]:
    """One line per key whose state changed between two applies (tokens of new keys included: the
    person who added the key needs it, as they need the banner's)."""
    keys = gateway.manifests.keys if gateway.manifests else {}
    lines = []
    for key_id in sorted(set(before) | set(gateway.outcomes)):
        old, new = before.get(key_id), gateway.outcomes.get(key_id)
        if new is None:
            lines.append(f"{key_id}: deleted, revoked: refused from the next call")
        elif not new.ready:
            if old is None or old != new:
                lines.append(f"{key_id}: not ready ({new.state}: {new.message})")
        elif key_id in keys and keys[key_id].spec.suspended:
            if old is None or old != new:
                lines.append(f"{key_id}: suspended: refused until `suspended: false`")
        elif key_id not in had_token:
            lines.append(f"{key_id}: ready, vault key {gateway.tokens[key_id]}")
        elif old != new:
            lines.append(f"{key_id}: updated: the next call is judged by the edited manifests")
    return lines or ["no key changed"]


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (vault tokens, the sealing key)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)
