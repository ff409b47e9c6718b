"""Class 6: every id the gateway looks up or matches in a path is in the vendor's id grammar. An id that
is not an id (`ch_other/../ch_mine`) could make the lookup read one object while the vendor acts on
another: it is refused before any lookup."""

from __future__ import annotations

import pytest
from tests.security.conftest import FORM, World, refused


@pytest.mark.parametrize(
    "body",
    [
        b"charge=ch_other%2F..%2Fch_mine",
        b"charge=ch_other/../ch_mine",
        b"charge=ch_mine%3Fexpand%5B%5D%3Dx",
        b"charge=ch_mine%23",
        b"charge=ch_mine+",
        b"charge=%2E%2E%2Fv1%2Fcharges%2Fch_mine",
        b"charge=ch_mine%00",
        b"payment_intent=..%2Fcharges%2Fch_mine",
    ],
)
def test_ids_outside_stripes_grammar_are_refused_before_any_lookup(world: World, body: bytes) -> None:
    r = world.stripe("POST", "/v1/refunds", body, FORM)
    refused(r, 400, "tollgate_request_invalid", world)
    assert world.spent("stripe") == 0


@pytest.mark.parametrize(
    "target",
    [
        "/v1/charges/ch_mine;x=1",
        "/v1/charges/ch_mine%3B",
        "/v1/charges/ch_mine%20",
        "/v1/customers/cus_mine:x",
    ],
)
def test_path_segments_a_server_could_decode_or_split_are_refused(world: World, target: str) -> None:
    r = world.stripe("GET", target)
    refused(r, 400, "tollgate_request_invalid", world)


def test_an_escaped_unreserved_character_is_decoded_by_envoy_before_anyone_judges_it(world: World) -> None:
    r = world.stripe("GET", "/v1/charges/ch_%6Dine")
    assert r.status == 200, r.body
    # The call itself (the gateway's lookup of ch_mine may be served from its cache of immutable fields).
    assert world.upstreams.stripe.requests[-1].path == "/v1/charges/ch_mine"


def test_a_full_refund_of_the_customers_charge_is_priced_from_that_very_charge(world: World) -> None:
    r = world.stripe("POST", "/v1/refunds", b"charge=ch_mine", FORM)
    assert r.status == 200, r.body
    lookup, refund = world.upstreams.stripe.requests
    assert (lookup.path, refund.body) == ("/v1/charges/ch_mine", b"charge=ch_mine")
    assert world.spent("stripe") == 5000 * 10_000
