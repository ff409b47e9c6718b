"""A vendor is its folder plus one registry entry (README, "Adding a vendor"): a throwaway vendor, defined
and registered here and nowhere else, is named by policies, written into the CRD, compiled into a grant,
routed and decided by ext_authz, audited with its own account header and redactions, served at its own
hosts by default and read back from its answers by Envoy, with nothing outside it edited for it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

import pytest
from envoy.service.auth.v3 import external_auth_pb2
from pydantic import ValidationError
from tests.builders import BOX, TOKEN, grant, spend_policy
from tests.support.crd_schema import admission_errors, spec_schema
from tests.unit.envoy.test_render import http_filter, routes

from tollgate.cli.check import allow_warnings
from tollgate.credentials import token_digest
from tollgate.decide.rules import Rule
from tollgate.decide.verdict import Allow, Deny
from tollgate.envoy.params import EnvoyParams, VendorUpstream
from tollgate.envoy.render import EXTAUTHZ_FILTER, render
from tollgate.policy.extension import ItemRule, PolicyExtension, PriceTable
from tollgate.policy.grant import Grant
from tollgate.policy.manifests import GROUP_VERSION, Manifests, add_document
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.settings import Settings
from tollgate.store.base import NO_LIMITS, BudgetCharge, Commit, CommitStatus, Limits
from tollgate.vendors import VENDORS, captured_fields, checked, default_urls
from tollgate.vendors.base import (
    Delivery,
    Denial,
    Endpoint,
    Facts,
    Found,
    Invalid,
    Need,
    Rendered,
    Settlement,
    Unpriced,
    Usage,
    Vendor,
    settle_by_status,
)
from tollgate.vendors.observed import Observed, text
from tollgate.vendors.routes import Route
from tollgate.vendors.wire import Wire
from tollgate_extauthz.check import Checker, Decision
from tollgate_extauthz.lookup import Lookup
from tollgate_extauthz.request import to_incoming
from tollgate_extauthz.response import to_response
from tollgate_extauthz.server import vendor_urls

PING_MICRO_USD = 2_500


def _prices(policy: SpendPolicySpec) -> PriceTable:
    return {"ping": {"": PING_MICRO_USD}}


class Acme(Vendor):
    """Pings to stations (`POST /pings`, form `to=ops@north.acme`), one price per ping."""

    name = "acme"
    # Pings go to the API host; attachments to a second one, served as the upstream `acme-uploads`.
    default_urls = MappingProxyType({"api": "https://api.acme.test", "uploads": "https://uploads.acme.test"})
    account_header = "acme-tenant"  # one key, many tenants: the audit names it, lookups are kept per tenant
    captured = frozenset({"ping_id", "state"})  # what `observed` reads of an answer
    redacted = frozenset({"note"})  # a free-text field the audit never keeps
    policy = PolicyExtension(
        fields=("recipients",),
        items={
            "recipients": ItemRule(
                re.compile(r"^([a-z]+@)?[a-z]+\.acme$"),
                "is not an Acme station like 'north.acme'",
                cel="r, r.endsWith('.acme')",
                cel_message="acme recipients are stations like 'north.acme'",
            )
        },
        required={"recipients": "recipients is required for acme: the stations pings may go to"},
        prices=_prices,
    )
    routes = (Route("POST", "/pings", "pings.create", "per_ping", "recipient"),)

    def observed(self, fields: Mapping[str, object]) -> Observed:
        ping_id = text(fields, "ping_id")
        return Observed(
            object_id=ping_id, object_type="ping" if ping_id else None, state=text(fields, "state")
        )

    def vault_token(self, headers: Mapping[str, str]) -> str | None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return value or None if scheme.lower() == "bearer" else None

    def parse_params(self, w: Wire) -> dict[str, Any]:
        return dict(parse_qsl(w.body.decode()))

    def match(self, method: str, path: str) -> Endpoint:
        if (method, path) == ("POST", "/pings"):
            return Endpoint(method, "/pings", "pings.create", "per_ping", "recipient")
        return Endpoint(method, path, "unknown", "unpriced", "unknown")

    def facts(
        self,
        endpoint: Endpoint,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        found: Found,
        scope_customers: bool,
    ) -> Facts | Need | Invalid | Unpriced:
        return Facts(cost=None, recipients=frozenset({params["to"]}), usage=(Usage("ping", 1),))

    def upstream_headers(self, vendor_key: str, headers: Mapping[str, str]) -> dict[str, str]:
        return {"authorization": f"Bearer {vendor_key}"}

    def deny(self, denial: Denial) -> Rendered:
        return Rendered(
            denial.status, {"content-type": "application/json"}, json.dumps(denial.message).encode()
        )

    def settlement(self, delivery: Delivery) -> Settlement:
        return settle_by_status(delivery, frozenset({400}))


ACME_SPEC: dict[str, Any] = {
    "vendor": "acme",
    "dailyCapUsd": "1",
    "allow": ["POST /pings"],
    "recipients": ["north.acme"],
}


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Acme:
    """The one line a new vendor adds to tollgate.vendors.VENDORS, for this test only."""
    vendor = checked(Acme())
    monkeypatch.setitem(VENDORS, vendor.name, vendor)
    return vendor


def test_the_registry_refuses_a_name_with_a_dash_and_a_vendor_without_a_main_host() -> None:
    class AcmeEu(Acme):
        name = "acme-eu"

    with pytest.raises(
        ValueError, match="no '-', since the gateway reads the route `x-y` as vendor x's host y"
    ):
        checked(AcmeEu())

    class Hostless(Acme):
        default_urls = MappingProxyType({"uploads": "https://uploads.acme.test"})

    with pytest.raises(
        ValueError, match="vendor acme must declare default_urls with its main host under 'api'"
    ):
        checked(Hostless())


def test_a_policy_names_a_vendor_only_once_it_is_in_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="Input should be 'stripe', 'twilio' or 'resend'"):
        spend_policy(**ACME_SPEC)
    monkeypatch.setitem(VENDORS, "acme", Acme())
    assert spend_policy(**ACME_SPEC).vendor == "acme"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        pytest.param({"recipients": None}, "recipients is required for acme", id="its required field"),
        pytest.param({"recipients": ["+1415"]}, "'+1415' is not an Acme station", id="its entry shape"),
        pytest.param(
            {"customers": ["cus_1"]},
            "customers applies to stripe policies only, not acme",
            id="another's field",
        ),
    ],
)
def test_the_policy_model_holds_its_policies_to_its_own_rules(
    acme: Acme, overrides: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)):
        spend_policy(**{**ACME_SPEC, **overrides})


def test_the_crd_lists_it_and_admits_its_policies_by_its_own_rules(acme: Acme) -> None:
    assert spec_schema("SpendPolicy")["properties"]["vendor"]["enum"] == [
        "stripe",
        "twilio",
        "resend",
        "acme",
    ]
    assert admission_errors("SpendPolicy", ACME_SPEC) == []
    missing = admission_errors("SpendPolicy", {**ACME_SPEC, "recipients": []})
    assert any("recipients is required for acme" in e for e in missing), missing
    wrong = admission_errors("SpendPolicy", {**ACME_SPEC, "recipients": ["ops@example.com"]})
    assert any("acme recipients are stations" in e for e in wrong), wrong
    # and another vendor's entry shape still answers for that vendor only
    assert admission_errors("SpendPolicy", {**ACME_SPEC, "vendor": "resend"}) == []


def test_tollgate_check_reads_its_routes(acme: Acme) -> None:
    m = Manifests()
    doc = {
        "apiVersion": GROUP_VERSION,
        "kind": "SpendPolicy",
        "metadata": {"name": "pings", "namespace": "agents"},
        "spec": {**ACME_SPEC, "allow": ["POST /pings", "POST /pongs"]},
    }
    assert add_document(m, doc, "pings.yaml") == []
    assert allow_warnings(m) == [
        "SpendPolicy agents/pings: spec.allow[1]: 'POST /pongs' matches no acme endpoint Tollgate knows (a typo?);"
        " a write there is refused as unpriced (tollgate_endpoint_unpriced) whatever allow says"
    ]


class CheckOnly:
    """All ext_authz's Check asks of the store (CheckStore): a token's key, its grant, the commit."""

    def __init__(self, g: Grant) -> None:
        self.g = g
        self.spent = 0

    async def key_for_token(self, token_sha256: str) -> str | None:
        return self.g.key_id if token_sha256 == self.g.token_sha256 else None

    async def grant(self, key_id: str) -> Grant | None:
        return self.g if key_id == self.g.key_id else None

    async def commit(
        self,
        key_id: str,
        version: str,
        vendor: str,
        day: str,
        amount_micro_usd: int,
        cap_micro_usd: int,
        *,
        rule: str = "tollgate_allowed",
        decision_id: str = "",
        at_ms: int = 0,
        limits: Limits = NO_LIMITS,
        budget: BudgetCharge | None = None,
    ) -> Commit:
        self.spent += amount_micro_usd
        return Commit(CommitStatus.COMMITTED, self.spent, "res_1")


@pytest.fixture
async def lookup() -> AsyncIterator[Lookup]:
    out = Lookup({}, BOX, timeout_s=1, cache_size=1)  # Acme prices from the request: never used
    yield out
    await out.close()


def ping(to: str) -> external_auth_pb2.CheckRequest:
    req = external_auth_pb2.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path, http.body, http.id = "POST", "/acme/pings", f"to={to}", "1"
    http.headers["authorization"] = f"Bearer {TOKEN}"
    http.headers["content-type"] = "application/x-www-form-urlencoded"
    req.attributes.context_extensions["vendor"] = "acme"
    req.attributes.context_extensions["prefix"] = "/acme"
    return req


async def test_ext_authz_routes_its_calls_to_it_and_prices_them_from_its_table(
    acme: Acme, lookup: Lookup
) -> None:
    g = grant(spend_policy(**ACME_SPEC))
    assert (g.vendor, g.prices, g.token_sha256) == (
        "acme",
        {"ping": {"": PING_MICRO_USD}},
        token_digest(TOKEN),
    )
    checker = Checker(CheckOnly(g), BOX, lookup)

    incoming = to_incoming(ping("ops@north.acme"))
    assert incoming.vendor is acme
    assert incoming.call.params == {"to": "ops@north.acme"}
    allowed = await checker.check(incoming)
    assert isinstance(allowed.verdict, Allow)
    assert allowed.verdict.cost_micro_usd == PING_MICRO_USD

    refused = await checker.check(to_incoming(ping("ops@south.acme")))
    assert isinstance(refused.verdict, Deny)
    assert refused.verdict.rule is Rule.RECIPIENT_OUT_OF_SCOPE


def envoy_config(vendors: dict[str, str]) -> dict[str, Any]:
    """The Envoy bootstrap serving `vendors` (upstream name → URL), with every registered vendor's capture."""
    served = [{"name": n, "prefix": f"/{n}", "url": u} for n, u in vendors.items()]
    return render(
        EnvoyParams(
            extauthz_endpoints=["127.0.0.1:9001"],
            vendors=[VendorUpstream.model_validate(v) for v in served],
            captured_fields=captured_fields(),
        )
    )


def test_it_is_served_at_each_of_its_hosts_by_default(acme: Acme) -> None:
    urls = vendor_urls(Settings())  # what ext_authz reads objects from, unless configured
    assert urls == default_urls()
    assert (urls["acme"], urls["acme-uploads"]) == ("https://api.acme.test", "https://uploads.acme.test")
    uploads = routes(envoy_config(urls))["vendor_acme-uploads"]
    extensions = uploads["typed_per_filter_config"][EXTAUTHZ_FILTER]["check_settings"]["context_extensions"]
    assert extensions == {"vendor": "acme", "prefix": "/acme-uploads", "api": "uploads"}


def test_envoy_keeps_the_fields_of_its_answers_it_reads(acme: Acme) -> None:
    config = envoy_config({"acme": "https://api.acme.test"})
    lua = http_filter(config, "envoy.filters.http.lua")["default_source_code"]["inline_string"]
    assert '["ping_id"] = true' in lua and '["state"] = true' in lua
    assert acme.observed({"ping_id": "pg_1", "state": "sent"}) == Observed("pg_1", "ping", state="sent")


def test_the_audit_names_its_tenant_and_keeps_none_of_its_redacted_params(acme: Acme) -> None:
    req = ping("ops@north.acme")
    req.attributes.request.http.headers["acme-tenant"] = "tenant_7"
    req.attributes.request.http.body = "to=ops@north.acme&note=call+me+on+%2B14155550100"
    incoming = to_incoming(req)
    decision = Decision("dec_1", Deny(Rule.ENDPOINT_NOT_ALLOWED, "no"), grant(spend_policy(**ACME_SPEC)))
    meta = dict(to_response(decision, incoming.call, incoming.vendor).dynamic_metadata)
    assert meta["connected_account"] == "tenant_7"
    assert json.loads(meta["params"]) == {"to": "ops@north.acme", "note": "[redacted]"}
    assert acme.cache_scope(incoming.call.headers) == "tenant_7"  # a lookup's cache is kept per tenant


def test_a_request_naming_its_tenant_twice_is_refused(acme: Acme) -> None:
    req = ping("ops@north.acme")
    for name, value in [
        *req.attributes.request.http.headers.items(),
        ("acme-tenant", "a"),
        ("acme-tenant", "b"),
    ]:
        req.attributes.request.http.header_map.headers.add(key=name, raw_value=value.encode())
    error = to_incoming(req).call.parse_error
    assert error is not None and "header acme-tenant is sent more than once" in error
