"""The contract between Tollgate and a real Envoy, with a fake ext_authz server and a recording upstream:
what ext_authz sees, what reaches the vendor, and that every failure closes the gate."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tests.support.recorder import RecordingUpstream, iter_json_lines

from tollgate.envoy.params import EnvoyParams, VendorUpstream
from tollgate.envoy.render import render_yaml
from tollgate.local.processes import ManagedProcess, envoy_validate, free_port, start_envoy
from tollgate.vendors import captured_fields
from tollgate.vendors.envoy_replies import local_replies

AGENT_TOKEN = "Bearer tg_vk_agent_secret_0123456789"
REAL_KEY = "Bearer sk_test_real_vendor_key_9876543210"
MAX_BODY = 2048
REQUEST_TIMEOUT_S = 2


# --- the fake ext_authz server ------------------------------------------------------------------------


def overwrite(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, value=value),
        append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def metadata(values: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def allow(request: external_auth_pb2.CheckRequest) -> external_auth_pb2.CheckResponse:
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.OK),
        ok_response=external_auth_pb2.OkHttpResponse(headers=[overwrite("authorization", REAL_KEY)]),
        dynamic_metadata=metadata({"decision_id": "dec-allow", "rule": "allowed"}),
    )


DENY_BODY = {"error": {"type": "invalid_request_error", "code": "tollgate_cap_exceeded", "message": "cap"}}


def deny(request: external_auth_pb2.CheckRequest) -> external_auth_pb2.CheckResponse:
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.PERMISSION_DENIED),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=http_status_pb2.PaymentRequired),
            headers=[
                overwrite("content-type", "application/json"),
                overwrite("x-tollgate-rule", "tollgate_cap_exceeded"),
            ],
            body=json.dumps(DENY_BODY),
        ),
        dynamic_metadata=metadata({"decision_id": "dec-deny", "rule": "tollgate_cap_exceeded"}),
    )


@dataclass
class FakeAuthz(external_auth_pb2_grpc.AuthorizationServicer):
    decide: Callable[[external_auth_pb2.CheckRequest], external_auth_pb2.CheckResponse] = allow
    checks: list[external_auth_pb2.CheckRequest] = field(default_factory=list)

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        self.checks.append(request)
        return self.decide(request)


async def serve_fake(fake: FakeAuthz, port: int = 0) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(fake, server)
    # The real server answers gRPC health checks, which the rendered cluster uses; so does the fake.
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await health_servicer.set("envoy.service.auth.v3.Authorization", health_pb2.HealthCheckResponse.SERVING)
    return server, bound


def raw_headers(http: Any) -> list[tuple[str, str]]:
    """Headers as ext_authz receives them (encode_raw_headers): one entry per header sent."""
    return [(h.key, h.raw_value.decode()) for h in http.header_map.headers]


# --- one gateway for the module -----------------------------------------------------------------------


@dataclass
class Gateway:
    envoy: ManagedProcess
    fake: FakeAuthz
    upstream: RecordingUpstream
    access_log: Path

    @property
    def port(self) -> int:
        assert self.envoy.port is not None
        return self.envoy.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.fake.decide = allow
        self.fake.checks.clear()
        self.upstream.clear()


def start_gateway(tmp: Path, authz_port: int, upstream: RecordingUpstream, fake: FakeAuthz) -> Gateway:
    port = free_port()
    params = EnvoyParams(
        listen_port=port,
        extauthz_endpoints=[f"127.0.0.1:{authz_port}"],
        max_request_bytes=MAX_BODY,
        request_timeout_s=REQUEST_TIMEOUT_S,
        access_log_path=str(tmp / "access.log"),
        vendors=[VendorUpstream(name="stripe", prefix="/stripe", url=upstream.url)],
        local_replies=local_replies({"stripe": "/stripe"}),
        captured_fields=captured_fields(),
    )
    config = tmp / "envoy.yaml"
    config.write_text(render_yaml(params))
    envoy = start_envoy(config, port, tmp / "envoy.log", concurrency=1, file_flush_interval_ms=100)
    return Gateway(envoy, fake, upstream, tmp / "access.log")


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream() as up:
        yield up


@pytest.fixture(scope="module")
async def module_gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: RecordingUpstream
) -> AsyncIterator[Gateway]:
    fake = FakeAuthz()
    server, authz_port = await serve_fake(fake)
    gw = start_gateway(tmp_path_factory.mktemp("envoy"), authz_port, upstream, fake)
    try:
        yield gw
    finally:
        gw.envoy.stop()
        await server.stop(grace=None)


@pytest.fixture
def gateway(module_gateway: Gateway) -> Gateway:
    module_gateway.reset()
    return module_gateway


async def raw_request(port: int, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
    """HTTP/1.1 with the request target sent byte for byte (httpx would normalise '..' and '//' itself)."""
    status, _, payload = await raw_exchange(port, method, target, body)
    return status, payload


async def raw_exchange(
    port: int,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    *,
    version: str = "HTTP/1.1",
    content_length: int | None = None,
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [
        f"{method} {target} {version}",
        "host: gateway",
        "connection: close",
        f"content-length: {len(body) if content_length is None else content_length}",
    ]
    pairs = headers.items() if isinstance(headers, dict) else headers or []
    lines += [f"{k}: {v}" for k, v in pairs]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    # Read by Content-Length, not to EOF: Envoy holds a connection it rejected open for its delayed-close time.
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    got = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines) if k}
    payload = await asyncio.wait_for(reader.readexactly(int(got.get("content-length", 0))), timeout=10)
    writer.close()
    return int(status_line.split(" ", 2)[1]), got, payload


def log_entry(gw: Gateway, request_id: str, timeout: float = 5.0) -> tuple[dict[str, Any], str]:
    """Poll the access log (Envoy writes it out every file_flush_interval_ms) for the line of one request."""
    deadline = time.monotonic() + timeout
    while True:
        text = gw.access_log.read_text() if gw.access_log.exists() else ""
        for entry in iter_json_lines(text):
            if entry.get("request_id") == request_id:
                return entry, text
        if time.monotonic() >= deadline:
            raise AssertionError(f"no access-log line for {request_id} within {timeout}s:\n{text[-2000:]}")
        time.sleep(0.05)


# --- the contract -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(
            EnvoyParams(
                listen_address="0.0.0.0",
                admin_port=9901,
                extauthz_endpoints=["tollgate-extauthz-0.tollgate:9001", "tollgate-extauthz-1.tollgate:9001"],
                vendors=[
                    VendorUpstream(name="stripe", prefix="/stripe", url="https://api.stripe.com"),
                    VendorUpstream(name="twilio", prefix="/twilio", url="https://api.twilio.com"),
                    VendorUpstream(name="resend", prefix="/resend", url="https://api.resend.com"),
                ],
                captured_fields=captured_fields(),
            ),
            id="production",
        ),
        pytest.param(
            EnvoyParams(
                extauthz_endpoints=["127.0.0.1:9001"],
                access_log_path="/tmp/tollgate-access.log",
                vendors=[VendorUpstream(name="stripe", prefix="/stripe", url="http://127.0.0.1:12111")],
                captured_fields=captured_fields(),
            ),
            id="local",
        ),
    ],
)
def test_envoy_validates_the_rendered_config(params: EnvoyParams, tmp_path: Path) -> None:
    config = tmp_path / "envoy.yaml"
    config.write_text(render_yaml(params))
    assert "OK" in envoy_validate(config)


async def test_allowed_request_is_forwarded_with_the_real_key_and_prefix_stripped(gateway: Gateway) -> None:
    body = b"amount=1000&currency=usd&metadata[note]=caf\xc3\xa9\xff\x00"
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{gateway.url}/stripe/v1/refunds?expand[]=charge",
            content=body,
            headers={"authorization": AGENT_TOKEN, "content-type": "application/x-www-form-urlencoded"},
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"]  # always set in the response, for correlation with the log

    [check] = gateway.fake.checks
    http = check.attributes.request.http
    assert dict(check.attributes.context_extensions) == {"vendor": "stripe", "prefix": "/stripe"}
    assert http.path == "/stripe/v1/refunds?expand[]=charge"
    assert http.method == "POST"
    assert http.raw_body == body
    assert ("authorization", AGENT_TOKEN) in raw_headers(http)

    [seen] = gateway.upstream.requests
    assert (seen.method, seen.path, seen.body) == ("POST", "/v1/refunds?expand[]=charge", body)
    assert [v for k, v in seen.raw_headers if k.lower() == "authorization"] == [REAL_KEY]
    assert seen.header("host") == f"127.0.0.1:{gateway.upstream.port}"
    assert not [k for k in seen.headers if k.startswith("x-envoy-")]


@pytest.mark.parametrize("target", ["/stripe/v1//refunds", "/stripe/v1/./refunds", "/stripe/v1/x/../refunds"])
async def test_paths_are_normalised_before_ext_authz_and_upstream(gateway: Gateway, target: str) -> None:
    status, _ = await raw_request(gateway.port, "POST", target, b"amount=1")
    assert status == 200
    assert [c.attributes.request.http.path for c in gateway.fake.checks] == ["/stripe/v1/refunds"]
    assert [r.path for r in gateway.upstream.requests] == ["/v1/refunds"]


@pytest.mark.parametrize("target", ["/stripe/v1%2Frefunds", "/stripe/v1%2frefunds", "/stripe/v1%5Crefunds"])
async def test_escaped_slash_is_rejected_before_ext_authz(gateway: Gateway, target: str) -> None:
    status, _ = await raw_request(gateway.port, "POST", target, b"amount=1")
    assert status == 400
    assert gateway.fake.checks == []
    assert gateway.upstream.requests == []


async def test_denied_response_reaches_the_client_and_nothing_reaches_the_vendor(gateway: Gateway) -> None:
    gateway.fake.decide = deny
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{gateway.url}/stripe/v1/refunds", content=b"amount=1", headers={"authorization": AGENT_TOKEN}
        )
    assert r.status_code == 402
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-tollgate-rule"] == "tollgate_cap_exceeded"
    assert r.json() == DENY_BODY
    assert len(gateway.fake.checks) == 1
    assert gateway.upstream.requests == []


async def test_oversized_body_gets_413_and_never_reaches_the_vendor(gateway: Gateway) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{gateway.url}/stripe/v1/refunds", content=b"a" * (MAX_BODY + 1))
        ok = await client.post(f"{gateway.url}/stripe/v1/refunds", content=b"a" * MAX_BODY)
    assert r.status_code == 413
    assert ok.status_code == 200
    assert [len(c.attributes.request.http.raw_body) for c in gateway.fake.checks] == [MAX_BODY]
    assert [len(u.body) for u in gateway.upstream.requests] == [MAX_BODY]


@pytest.mark.parametrize(
    "path", ["/", "/v1/refunds", "/stripe", "/twilio/2010-04-01/Accounts", "/stripex/v1"]
)
async def test_unknown_path_gets_404_without_calling_ext_authz(gateway: Gateway, path: str) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(gateway.url + path, content=b"amount=1", headers={"authorization": AGENT_TOKEN})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "tollgate_unknown_route"
    assert gateway.fake.checks == []
    assert gateway.upstream.requests == []


async def test_access_log_carries_authz_metadata_and_never_a_key(gateway: Gateway) -> None:
    async with httpx.AsyncClient() as client:
        allowed = await client.post(
            f"{gateway.url}/stripe/v1/refunds",
            content=b"amount=1",
            headers={"authorization": AGENT_TOKEN, "x-agent-run-id": "run-42"},
        )
        gateway.fake.decide = deny
        denied = await client.post(
            f"{gateway.url}/stripe/v1/charges",
            content=b"amount=2",
            headers={"authorization": AGENT_TOKEN, "x-agent-run-id": "run-43"},
        )
    assert (allowed.status_code, denied.status_code) == (200, 402)

    entry, _ = log_entry(gateway, allowed.headers["x-request-id"])
    assert entry["authz"]["decision_id"] == "dec-allow"
    assert entry["agent_run_id"] == "run-42"
    assert (entry["method"], entry["path"], entry["response_code"]) == ("POST", "/stripe/v1/refunds", 200)
    assert entry["upstream_host"] == f"127.0.0.1:{gateway.upstream.port}"
    assert entry["route"] == "vendor_stripe"

    entry, text = log_entry(gateway, denied.headers["x-request-id"])
    assert (entry["authz"]["decision_id"], entry["authz"]["rule"]) == ("dec-deny", "tollgate_cap_exceeded")
    assert (entry["path"], entry["response_code"], entry["agent_run_id"]) == (
        "/stripe/v1/charges",
        402,
        "run-43",
    )
    assert entry["upstream_host"] is None

    for secret in (AGENT_TOKEN, REAL_KEY, "tg_vk_agent_secret", "sk_test_real"):
        assert secret not in text


async def test_a_repeated_header_reaches_ext_authz_as_two_headers(gateway: Gateway) -> None:
    status, _, _ = await raw_exchange(
        gateway.port,
        "POST",
        "/stripe/v1/refunds",
        b"amount=1",
        [("authorization", AGENT_TOKEN), ("idempotency-key", "k1"), ("Idempotency-Key", "k2")],
    )
    assert status == 200
    [check] = gateway.fake.checks
    keys = [v for k, v in raw_headers(check.attributes.request.http) if k == "idempotency-key"]
    assert keys == ["k1", "k2"]


@pytest.mark.parametrize("name", ["stripe_account", "Idempotency_Key", "x_agent_run_id"])
async def test_a_header_name_with_an_underscore_is_refused_in_stripes_shape(
    gateway: Gateway, name: str
) -> None:
    status, headers, body = await raw_exchange(
        gateway.port, "POST", "/stripe/v1/refunds", b"amount=1", [(name, "acct_other")]
    )
    assert status == 400
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert headers["stripe-should-retry"] == "false"
    assert gateway.fake.checks == []
    assert gateway.upstream.requests == []


async def test_envoys_own_refusals_are_stripe_errors_stripe_python_can_read(gateway: Gateway) -> None:
    status, headers, body = await raw_exchange(gateway.port, "POST", "/stripe/v1%2Frefunds", b"amount=1")
    error = json.loads(body)["error"]
    assert (status, error["type"], error["code"]) == (400, "invalid_request_error", "tollgate_path_rejected")
    assert "escaped" in error["message"] and headers["x-tollgate-rule"] == "tollgate_path_rejected"
    status, headers, body = await raw_exchange(
        gateway.port, "POST", "/stripe/v1/refunds", b"a" * (MAX_BODY + 1)
    )
    assert (status, json.loads(body)["error"]["code"]) == (413, "tollgate_body_too_large")
    assert headers["stripe-should-retry"] == "false"
    assert gateway.fake.checks == [] and gateway.upstream.requests == []


@pytest.mark.parametrize(
    ("method", "version", "status"),
    [("get", "HTTP/1.1", 400), ("GET", "HTTP/1.0", 426)],
)
async def test_requests_too_broken_to_name_a_vendor_get_every_vendors_error_shape_at_once(
    gateway: Gateway, method: str, version: str, status: int
) -> None:
    got, _, body = await raw_exchange(gateway.port, method, "/stripe/v1/balance", version=version)
    doc = json.loads(body)
    assert got == status
    assert doc["error"]["code"].startswith("tollgate_")  # stripe-python
    assert (doc["status"], doc["message"]) == (status, doc["error"]["message"])  # twilio-python
    assert doc["statusCode"] == status and doc["name"]  # resend-python
    assert gateway.upstream.requests == []


async def test_a_body_shorter_than_its_content_length_is_answered_in_bounded_time(gateway: Gateway) -> None:
    started = time.monotonic()
    status, _, body = await raw_exchange(
        gateway.port, "POST", "/stripe/v1/refunds", b"amount=1", content_length=500
    )
    assert status == 408
    assert json.loads(body)["error"]["code"] == "tollgate_request_timeout"
    assert time.monotonic() - started < REQUEST_TIMEOUT_S + 5
    assert gateway.upstream.requests == []


@pytest.mark.parametrize("http_status", [400, 503])
async def test_ext_authz_denials_keep_their_own_body_whatever_their_status(
    gateway: Gateway, http_status: int
) -> None:
    body = {"error": {"type": "x", "code": "tollgate_request_invalid", "message": "mine"}}

    def deny_with(request: external_auth_pb2.CheckRequest) -> external_auth_pb2.CheckResponse:
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=code_pb2.PERMISSION_DENIED),
            denied_response=external_auth_pb2.DeniedHttpResponse(
                status=http_status_pb2.HttpStatus(code=http_status),  # type: ignore[arg-type]
                headers=[overwrite("content-type", "application/json")],
                body=json.dumps(body),
            ),
            dynamic_metadata=metadata({"decision_id": "dec-x", "rule": "tollgate_request_invalid"}),
        )

    gateway.fake.decide = deny_with
    status, _, got = await raw_exchange(gateway.port, "POST", "/stripe/v1/refunds", b"amount=1")
    assert (status, json.loads(got)) == (http_status, body)


async def test_ext_authz_down_gets_503_and_nothing_reaches_the_vendor(
    tmp_path: Path, upstream: RecordingUpstream
) -> None:
    fake = FakeAuthz()
    server, authz_port = await serve_fake(fake)
    gw = start_gateway(tmp_path, authz_port, upstream, fake)
    try:
        upstream.clear()
        async with httpx.AsyncClient() as client:
            before = await client.post(f"{gw.url}/stripe/v1/refunds", content=b"amount=1")
            assert before.status_code == 200, "the gateway works while ext_authz is up"
            await server.stop(grace=None)
            upstream.clear()
            for _ in range(3):
                r = await client.post(
                    f"{gw.url}/stripe/v1/refunds", content=b"amount=1", headers={"authorization": AGENT_TOKEN}
                )
                assert r.status_code == 503
                # stripe-python reads an APIError it may retry (the call was never sent).
                assert r.json()["error"]["type"] == "api_error"
                assert r.json()["error"]["code"] == "tollgate_unavailable"
                assert r.headers["stripe-should-retry"] == "true"
        assert upstream.requests == []
    finally:
        gw.envoy.stop()
        await server.stop(grace=None)
