"""tollgate_extauthz.lookup: the cache of immutable object fields is kept per vendor, key and sub-account
(the vendor's cache scope), so an object read in one sub-account never answers for another."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from tests.builders import BOX, grant

from tollgate.vendors.base import (
    Delivery,
    Denial,
    Endpoint,
    Facts,
    Found,
    Invalid,
    Need,
    ObjectRef,
    Rendered,
    Settlement,
    Unpriced,
    Vendor,
)
from tollgate.vendors.stripe import STRIPE
from tollgate.vendors.twilio import TWILIO
from tollgate.vendors.wire import Wire
from tollgate_extauthz.lookup import Lookup


class Depot(Vendor):
    """A throwaway vendor whose key reaches several sites, chosen per call by a `Depot-Site` header."""

    name = "depot"
    account_header = "depot-site"  # and so, by default, its cache scope

    def lookup_path(self, ref: ObjectRef) -> str:
        return f"/{ref.collection}/{ref.id}"

    def cacheable(self, ref: ObjectRef, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        return dict(obj)

    def lookup_headers(self, vendor_key: str, headers: Mapping[str, str]) -> dict[str, str]:
        return {"depot-site": headers.get("depot-site", "")}

    # What a lookup never asks of a vendor.
    def vault_token(self, headers: Mapping[str, str]) -> str | None:
        raise NotImplementedError

    def parse_params(self, w: Wire) -> dict[str, Any]:
        raise NotImplementedError

    def match(self, method: str, path: str) -> Endpoint:
        raise NotImplementedError

    def facts(
        self,
        endpoint: Endpoint,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        found: Found,
        scope_customers: bool,
    ) -> Facts | Need | Invalid | Unpriced:
        raise NotImplementedError

    def upstream_headers(self, vendor_key: str, headers: Mapping[str, str]) -> dict[str, str]:
        raise NotImplementedError

    def deny(self, denial: Denial) -> Rendered:
        raise NotImplementedError

    def settlement(self, delivery: Delivery) -> Settlement:
        raise NotImplementedError


# Which sub-account a read was made in: the one header each vendor reads objects under.
SUB_ACCOUNT_HEADERS = ("stripe-account", "stripe-context", "depot-site")


class Upstream:
    """Answers every read with an object that names the sub-account it was read in, and counts reads."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        where = next((request.headers[h] for h in SUB_ACCOUNT_HEADERS if h in request.headers), "")
        self.reads.append((request.url.path, where))
        obj_id = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json={"id": obj_id, "currency": "usd", "customer": f"cus_of_{where}"})


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
async def lookup(upstream: Upstream) -> AsyncIterator[Lookup]:
    urls = {"stripe": "http://stripe.test", "depot": "http://depot.test"}
    out = Lookup(urls, BOX, timeout_s=1, cache_size=100, transport=httpx.MockTransport(upstream))
    yield out
    await out.close()


async def read(lookup: Lookup, vendor: Vendor, ref: ObjectRef, **headers: str) -> Mapping[str, Any]:
    found = Found()
    await lookup.fetch(
        vendor, grant(), {k.replace("_", "-"): v for k, v in headers.items()}, Need((ref,)), found
    )
    return found.objects[ref]


CHARGE = ObjectRef("charges", "ch_1")
PARCEL = ObjectRef("parcels", "pa_1")


@pytest.mark.parametrize(
    ("vendor", "ref", "scopes"),
    [
        pytest.param(
            STRIPE,
            CHARGE,
            [{"stripe_account": "acct_A"}, {"stripe_account": "acct_B"}, {"stripe_context": "acct_C"}, {}],
            id="stripe: connected accounts, contexts and the platform",
        ),
        pytest.param(
            Depot(), PARCEL, [{"depot_site": "north"}, {"depot_site": "south"}, {}], id="a new vendor's sites"
        ),
    ],
)
async def test_two_scopes_never_share_a_cached_object(
    lookup: Lookup, upstream: Upstream, vendor: Vendor, ref: ObjectRef, scopes: list[dict[str, str]]
) -> None:
    for headers in scopes:
        where = next(iter(headers.values()), "")
        assert (await read(lookup, vendor, ref, **headers))["customer"] == f"cus_of_{where}"
    assert len(upstream.reads) == len(scopes)  # each scope read its own copy
    for headers in scopes:  # and, read again, is served its own copy from the cache
        where = next(iter(headers.values()), "")
        assert (await read(lookup, vendor, ref, **headers))["customer"] == f"cus_of_{where}"
    assert len(upstream.reads) == len(scopes)


def test_the_scope_is_the_sub_account_the_vendors_header_names_and_empty_without_one() -> None:
    assert STRIPE.cache_scope({"stripe-account": "acct_A"}) == "acct_A"
    assert STRIPE.cache_scope({"stripe-context": "acct_A/acct_B"}) == "acct_A/acct_B"
    assert STRIPE.cache_scope({}) == ""
    assert TWILIO.cache_scope({"stripe-account": "acct_A"}) == ""
    assert Depot().cache_scope({"depot-site": "north", "stripe-account": "acct_A"}) == "north"
