"""A vendor is its folder plus one registry entry (README, "Adding a vendor"): a throwaway vendor, defined
and registered here and nowhere else, is named by policies, written into the CRD, compiled into a grant,
and routed and decided by ext_authz, with nothing in policy/ (or anywhere else) edited for it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

import pytest
from envoy.service.auth.v3 import external_auth_pb2
from pydantic import ValidationError
from tests.builders import BOX, TOKEN, grant, spend_policy
from tests.support.crd_schema import admission_errors, spec_schema

from tollgate.cli.check import allow_warnings
from tollgate.credentials import token_digest
from tollgate.decide.rules import Rule
from tollgate.decide.verdict import Allow, Deny
from tollgate.policy.extension import ItemRule, PolicyExtension, PriceTable
from tollgate.policy.grant import Grant
from tollgate.policy.manifests import GROUP_VERSION, Manifests, add_document
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.store.base import NO_LIMITS, BudgetCharge, Commit, CommitStatus, Limits
from tollgate.vendors import VENDORS
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
from tollgate.vendors.routes import Route
from tollgate.vendors.wire import Wire
from tollgate_extauthz.check import Checker
from tollgate_extauthz.lookup import Lookup
from tollgate_extauthz.request import to_incoming

PING_MICRO_USD = 2_500


def _prices(policy: SpendPolicySpec) -> PriceTable:
    return {"ping": {"": PING_MICRO_USD}}


class Acme(Vendor):
    """Pings to stations (`POST /pings`, form `to=ops@north.acme`), one price per ping."""

    name = "acme"
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
    vendor = Acme()
    monkeypatch.setitem(VENDORS, vendor.name, vendor)
    return vendor


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
