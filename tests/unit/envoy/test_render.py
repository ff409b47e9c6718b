"""tollgate.envoy.render: the settings the gateway's safety rests on, read off the rendered bootstrap."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tollgate.envoy.params import EnvoyParams, VendorUpstream
from tollgate.envoy.render import ACCESS_LOG_FORMAT, EXTAUTHZ_FILTER, render, render_yaml
from tollgate.vendors import VENDORS, captured_fields, default_urls
from tollgate.vendors.resend import ResendVendor

STRIPE = {"name": "stripe", "prefix": "/stripe", "url": "https://api.stripe.com"}
LOCAL = {"name": "local", "prefix": "/local", "url": "http://127.0.0.1:12111"}


def params(**overrides: Any) -> EnvoyParams:
    fields: dict[str, Any] = {
        "extauthz_endpoints": ["127.0.0.1:9001"],
        "vendors": [STRIPE, LOCAL],
        "captured_fields": captured_fields(),
    }
    return EnvoyParams.model_validate(fields | overrides)


def hcm(config: dict[str, Any]) -> dict[str, Any]:
    [listener] = config["static_resources"]["listeners"]
    [chain] = listener["filter_chains"]
    [network_filter] = chain["filters"]
    return network_filter["typed_config"]


def http_filter(config: dict[str, Any], name: str) -> dict[str, Any]:
    [f] = [f for f in hcm(config)["http_filters"] if f["name"] == name]
    return f["typed_config"]


def routes(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [vhost] = hcm(config)["route_config"]["virtual_hosts"]
    return {r["name"]: r for r in vhost["routes"]}


def cluster(config: dict[str, Any], name: str) -> dict[str, Any]:
    [c] = [c for c in config["static_resources"]["clusters"] if c["name"] == name]
    return c


def test_ext_authz_fails_closed_with_503_and_sees_the_whole_body() -> None:
    authz = http_filter(render(params(extauthz_timeout_ms=250, max_request_bytes=4096)), EXTAUTHZ_FILTER)
    assert authz["failure_mode_allow"] is False
    assert authz["status_on_error"] == {"code": "ServiceUnavailable"}
    assert authz["transport_api_version"] == "V3"
    assert authz["grpc_service"] == {"envoy_grpc": {"cluster_name": "tollgate_extauthz"}, "timeout": "0.250s"}
    assert authz["with_request_body"] == {
        "max_request_bytes": 4096,
        "allow_partial_message": False,
        "pack_as_bytes": True,
    }
    # One entry per header as sent, so a repeated header cannot hide behind a comma-joined value.
    assert authz["encode_raw_headers"] is True


def test_underscored_header_names_are_refused_and_requests_must_arrive_in_bounded_time() -> None:
    h = hcm(render(params(request_timeout_s=7)))
    assert h["common_http_protocol_options"] == {"headers_with_underscores_action": "REJECT_REQUEST"}
    assert (h["request_timeout"], h["request_headers_timeout"]) == ("7s", "10s")


def test_envoys_own_answers_are_rewritten_per_vendor_then_by_a_fallback_never_over_ext_authz() -> None:
    from tollgate.vendors.envoy_replies import ANSWERS, local_replies

    replies = local_replies({"stripe": "/stripe", "resend": "/resend"})
    mappers = hcm(render(params(local_replies=replies)))["local_reply_config"]["mappers"]
    assert len(mappers) == 3 * len(ANSWERS)  # stripe, resend, then the fallback for any request
    for m in mappers:
        cel = m["filter"]["and_filter"]["filters"][1]
        assert (
            cel["extension_filter"]["typed_config"]["expression"]
            == "response.code_details != 'ext_authz_denied'"
        )
    prefixes = [
        m["filter"]["and_filter"]["filters"][2]["metadata_filter"]["matcher"]["value"]["string_match"][
            "prefix"
        ]
        if len(m["filter"]["and_filter"]["filters"]) == 3
        else None
        for m in mappers
    ]
    assert prefixes == ["/stripe/"] * len(ANSWERS) + ["/resend/"] * len(ANSWERS) + [None] * len(ANSWERS)
    stripe_503 = next(r for r in replies if r.prefix == "/stripe" and r.status == 503)
    assert stripe_503.body["error"]["type"] == "api_error"
    assert stripe_503.headers["stripe-should-retry"] == "true"
    resend_413 = next(r for r in replies if r.prefix == "/resend" and r.status == 413)
    assert resend_413.body["statusCode"] == 413 and "error" not in resend_413.body
    fallback = next(r for r in replies if r.prefix is None and r.status == 400)
    assert {"error", "code", "status", "statusCode", "name", "message"} <= set(fallback.body)


def test_every_envoy_answer_names_a_rule_of_the_one_vocabulary() -> None:
    from tollgate.decide.rules import Rule
    from tollgate.vendors.envoy_replies import ANSWERS

    for a in ANSWERS:
        assert Rule(a.code).status in (a.status, 400), a


def test_a_vendors_captured_fields_reach_the_filter_once_it_is_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Acme(ResendVendor):  # a throwaway vendor, registered for this test only
        name = "acme"
        captured = frozenset({"ping_id", "end"})

    def lua() -> str:
        config = render(params(captured_fields=captured_fields()))
        return str(http_filter(config, "envoy.filters.http.lua")["default_source_code"]["inline_string"])

    assert '["ping_id"] = true' not in lua()
    monkeypatch.setitem(VENDORS, "acme", Acme())
    assert '["ping_id"] = true' in lua() and '["end"] = true' in lua()  # a Lua keyword stays a key
    assert '["sid"] = true' in lua()  # and the others' fields stay


def test_ext_authz_runs_before_the_router() -> None:
    names = [f["name"] for f in hcm(render(params()))["http_filters"]]
    assert names.index(EXTAUTHZ_FILTER) < names.index("envoy.filters.http.router") == len(names) - 1


def test_the_vendor_answer_is_read_after_ext_authz_and_logged_under_its_own_field() -> None:
    from tollgate.envoy import capture

    config = render(params())
    names = [f["name"] for f in hcm(config)["http_filters"]]
    assert (
        names.index(EXTAUTHZ_FILTER)
        < names.index("envoy.filters.http.lua")
        < names.index("envoy.filters.http.router")
    )
    lua = http_filter(config, "envoy.filters.http.lua")["default_source_code"]["inline_string"]
    assert "__" not in lua.replace("__index", "")  # every placeholder filled in
    assert f"local LIMIT = {capture.LIMIT_BYTES}" in lua
    for vendor in VENDORS.values():  # what each vendor's `observed` reads, Envoy keeps
        assert vendor.captured and all(f'["{f}"] = true' in lua for f in vendor.captured), vendor.name
    assert ACCESS_LOG_FORMAT["vendor_response"] == f"%DYNAMIC_METADATA({capture.NAMESPACE})%"
    # uncompressed answers, asked for by the route: no Lua on the request path (see capture.lua)
    assert "function envoy_on_request" not in lua
    vendor_routes = [r for name, r in routes(config).items() if name != "not_found"]
    assert vendor_routes and all(r["request_headers_to_remove"] == ["accept-encoding"] for r in vendor_routes)


def test_paths_are_normalised_and_escaped_slashes_rejected() -> None:
    h = hcm(render(params()))
    assert h["normalize_path"] is True
    assert h["merge_slashes"] is True
    assert h["path_with_escaped_slashes_action"] == "REJECT_REQUEST"


def test_router_sends_no_envoy_headers_upstream() -> None:
    assert http_filter(render(params()), "envoy.filters.http.router")["suppress_envoy_headers"] is True


def test_vendor_route_strips_prefix_rewrites_host_and_names_the_vendor_for_authz() -> None:
    r = routes(render(params(upstream_timeout_s=80)))
    stripe, local = r["vendor_stripe"], r["vendor_local"]
    assert stripe["match"] == {"prefix": "/stripe/"}
    assert stripe["route"] == {
        "cluster": "vendor_stripe",
        "prefix_rewrite": "/",
        "host_rewrite_literal": "api.stripe.com",
        "timeout": "80s",
    }
    assert stripe["typed_per_filter_config"][EXTAUTHZ_FILTER]["check_settings"] == {
        "context_extensions": {"vendor": "stripe", "prefix": "/stripe"}
    }
    # A non-default port is part of the Host header the vendor expects.
    assert local["route"]["host_rewrite_literal"] == "127.0.0.1:12111"
    assert local["typed_per_filter_config"][EXTAUTHZ_FILTER]["check_settings"]["context_extensions"] == {
        "vendor": "local",
        "prefix": "/local",
    }


def test_only_the_direct_response_catch_all_disables_ext_authz() -> None:
    r = routes(render(params()))
    assert list(r) == ["vendor_stripe", "vendor_local", "not_found"], "catch-all must come last"
    for name, route in r.items():
        per_route = route["typed_per_filter_config"][EXTAUTHZ_FILTER]
        if "route" in route:
            assert "disabled" not in per_route, f"{name} forwards to a vendor without ext_authz"
    catch_all = r["not_found"]
    assert catch_all["match"] == {"prefix": "/"}
    assert catch_all["direct_response"]["status"] == 404
    assert catch_all["typed_per_filter_config"][EXTAUTHZ_FILTER]["disabled"] is True
    body = yaml.safe_load(catch_all["direct_response"]["body"]["inline_string"])
    assert body["error"]["code"] == "tollgate_unknown_route"


def test_tls_is_the_only_difference_between_https_and_http_vendors() -> None:
    config = render(params())
    tls, plain = cluster(config, "vendor_stripe"), cluster(config, "vendor_local")
    assert "transport_socket" not in plain
    socket = tls.pop("transport_socket")
    assert socket["name"] == "envoy.transport_sockets.tls"
    ctx = socket["typed_config"]
    assert ctx["sni"] == "api.stripe.com"
    validation = ctx["common_tls_context"]["validation_context"]
    assert validation["trusted_ca"] == {"filename": "/etc/ssl/certs/ca-certificates.crt"}
    assert validation["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "api.stripe.com"}}
    ]

    assert tls["type"] in ("STRICT_DNS", "LOGICAL_DNS")
    differing = ("name", "load_assignment")
    assert {k: v for k, v in tls.items() if k not in differing} == {
        k: v for k, v in plain.items() if k not in differing
    }
    stripe_addr = tls["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert stripe_addr == {"socket_address": {"address": "api.stripe.com", "port_value": 443}}


def test_extauthz_cluster_is_http2_round_robin_over_every_endpoint() -> None:
    c = cluster(
        render(params(extauthz_endpoints=["10.0.0.1:9001", "10.0.0.1:9002", "extauthz:9003"])),
        "tollgate_extauthz",
    )
    assert c["lb_policy"] == "ROUND_ROBIN"
    options = c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert options["explicit_http_config"] == {"http2_protocol_options": {}}
    addresses = [
        (
            e["endpoint"]["address"]["socket_address"]["address"],
            e["endpoint"]["address"]["socket_address"]["port_value"],
        )
        for e in c["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ]
    assert addresses == [("10.0.0.1", 9001), ("10.0.0.1", 9002), ("extauthz", 9003)]
    assert c["health_checks"][0]["grpc_health_check"] == {
        "service_name": "envoy.service.auth.v3.Authorization"
    }
    assert "health_checks" not in cluster(render(params(extauthz_health_check=False)), "tollgate_extauthz")


CREDENTIAL_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "stripe-account",
    "x-twilio-signature",
}
COMMAND_WITH_HEADER = re.compile(r"%(REQ|RESP|TRAILER|REQ_WITHOUT_QUERY)\(([^)]*)\)")


def logged_headers(fmt: dict[str, str]) -> set[str]:
    headers: set[str] = set()
    for value in fmt.values():
        for _, arg in COMMAND_WITH_HEADER.findall(value):
            headers.update(name.lower() for name in arg.split("?"))
    return headers


def test_access_log_is_json_with_the_audit_fields_and_no_credential_header() -> None:
    [log] = hcm(render(params(access_log_path="/var/log/envoy.jsonl")))["access_log"]
    assert log["typed_config"]["path"] == "/var/log/envoy.jsonl"
    fmt = log["typed_config"]["log_format"]["json_format"]
    assert fmt == ACCESS_LOG_FORMAT
    assert fmt["authz"] == "%DYNAMIC_METADATA(envoy.filters.http.ext_authz)%"
    assert fmt["agent_run_id"] == "%REQ(X-AGENT-RUN-ID)%"
    assert fmt["request_id"] == "%REQ(X-REQUEST-ID)%"
    for field in ("start_time", "method", "path", "response_code", "response_flags", "duration_ms"):
        assert field in fmt
    for field in ("bytes_received", "bytes_sent", "upstream_host"):
        assert field in fmt
    headers = logged_headers(fmt)
    assert headers == {":method", ":path", "x-request-id", "x-agent-run-id"}, "new logged header: check it"
    assert not headers & CREDENTIAL_HEADERS
    text = yaml.safe_dump(fmt).lower()
    for name in CREDENTIAL_HEADERS:
        assert name not in text


def test_logged_headers_parser_sees_a_credential_header() -> None:
    # Guard for the guard: the parser above must catch the obvious mistake.
    assert "authorization" in logged_headers({"x": "%REQ(X-FOO?AUTHORIZATION)%"})
    assert "cookie" in logged_headers({"x": "%REQ(COOKIE):10%"})


def test_admin_interface_only_when_asked_for() -> None:
    assert "admin" not in render(params())
    assert render(params(admin_port=9901, admin_address="0.0.0.0"))["admin"] == {
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 9901}}
    }


def test_listener_binds_the_configured_address() -> None:
    [listener] = render(params(listen_address="0.0.0.0", listen_port=8080))["static_resources"]["listeners"]
    assert listener["address"] == {"socket_address": {"address": "0.0.0.0", "port_value": 8080}}


def test_render_yaml_is_the_same_document() -> None:
    p = params(admin_port=9901)
    assert yaml.safe_load(render_yaml(p)) == render(p)


def test_vendor_upstream_derived_fields() -> None:
    v = VendorUpstream(name="stripe", prefix="/stripe", url="https://api.stripe.com/")
    assert (v.url, v.host, v.port, v.tls, v.authority) == (
        "https://api.stripe.com",
        "api.stripe.com",
        443,
        True,
        "api.stripe.com",
    )
    v = VendorUpstream(name="fake", prefix="/fake", url="http://127.0.0.1:12111")
    assert (v.host, v.port, v.tls, v.authority) == ("127.0.0.1", 12111, False, "127.0.0.1:12111")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"extauthz_endpoints": []}, "at least one ext_authz endpoint", id="no ext_authz endpoint"
        ),
        pytest.param({"extauthz_endpoints": ["extauthz"]}, "must be 'host:port'", id="endpoint without port"),
        pytest.param({"extauthz_endpoints": ["h:70000"]}, "outside 1-65535", id="endpoint port out of range"),
        pytest.param({"extauthz_endpoints": ["h:1", "h:1"]}, "listed twice", id="duplicate endpoint"),
        pytest.param({"vendors": []}, "at least one vendor", id="no vendor"),
        pytest.param(
            {"vendors": [STRIPE | {"prefix": "stripe"}]}, "must start with '/'", id="prefix without slash"
        ),
        pytest.param(
            {"vendors": [STRIPE | {"prefix": "/stripe/"}]}, "must not end with '/'", id="trailing slash"
        ),
        pytest.param({"vendors": [STRIPE | {"prefix": "/"}]}, "must not end with '/'", id="root prefix"),
        pytest.param({"vendors": [STRIPE | {"prefix": "/a/../b"}]}, "'.' or '..'", id="dot segment prefix"),
        pytest.param({"vendors": [STRIPE | {"prefix": "/str ipe"}]}, "path segments", id="space in prefix"),
        pytest.param(
            {"vendors": [STRIPE, LOCAL | {"prefix": "/stripe"}]},
            "prefix '/stripe' is used twice",
            id="dup prefix",
        ),
        pytest.param(
            {"vendors": [STRIPE, LOCAL | {"name": "stripe"}]}, "name 'stripe' is used twice", id="dup name"
        ),
        pytest.param(
            {"vendors": [STRIPE, LOCAL | {"prefix": "/stripe/x"}]},
            "nested under '/stripe'",
            id="nested prefix",
        ),
        pytest.param({"vendors": [STRIPE | {"name": "Stripe"}]}, "lowercase", id="uppercase name"),
        pytest.param({"vendors": [STRIPE | {"url": "ftp://x"}]}, "http:// or https://", id="bad scheme"),
        pytest.param(
            {"vendors": [STRIPE | {"url": "https://api.stripe.com/v1"}]}, "no path", id="url with path"
        ),
        pytest.param(
            {"vendors": [STRIPE | {"url": "https://u:p@api.stripe.com"}]}, "credentials", id="url credentials"
        ),
        pytest.param({"vendors": [STRIPE | {"url": "https://"}]}, "has no host", id="url without host"),
        pytest.param(
            {"admin_port": 10000, "listen_port": 10000}, "both 10000", id="admin port = listen port"
        ),
        pytest.param({"listen_port": 0}, "greater than or equal to 1", id="port zero"),
        pytest.param({"extauthz_timeout_ms": 0}, "greater than or equal to 1", id="zero timeout"),
        pytest.param({"access_log_path": " "}, "must not be empty", id="blank access log path"),
        pytest.param({"extauthz_endpoint": ["h:1"]}, "Extra inputs are not permitted", id="misspelt field"),
        pytest.param(
            {"captured_fields": {"id", 'x"] = os.exit()'}}, "letters, digits and '_'", id="captured field"
        ),
    ],
)
def test_invalid_params_are_refused_with_a_clear_message(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        params(**overrides)


def test_every_vendor_served_by_default_gets_its_own_route_and_verified_tls_upstream() -> None:
    # What ext_authz serves by default (each vendor's default_urls) is what the gateway must route in
    # production: each host at /<name>, over TLS to it, with the vendor named for ext_authz by the route.
    defaults = default_urls()
    vendors = [{"name": n, "prefix": f"/{n}", "url": u} for n, u in defaults.items()]
    config = render(params(vendors=vendors))
    r = routes(config)
    # Every registered vendor, every host it declares, and nothing else.
    assert {VendorUpstream.model_validate(v).vendor for v in vendors} == set(VENDORS)
    assert len(defaults) == sum(len(v.default_urls) for v in VENDORS.values())
    for name, url in defaults.items():
        host = url.removeprefix("https://")
        route = r[f"vendor_{name}"]
        assert route["match"] == {"prefix": f"/{name}/"}
        assert (route["route"]["cluster"], route["route"]["host_rewrite_literal"]) == (f"vendor_{name}", host)
        extensions = route["typed_per_filter_config"][EXTAUTHZ_FILTER]["check_settings"]["context_extensions"]
        vendor, _, api = name.partition("-")
        assert extensions == {"vendor": vendor, "prefix": f"/{name}", **({"api": api} if api else {})}
        tls = cluster(config, f"vendor_{name}")["transport_socket"]["typed_config"]
        assert tls["sni"] == host
        san = tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"]
        assert san == [{"san_type": "DNS", "matcher": {"exact": host}}]
