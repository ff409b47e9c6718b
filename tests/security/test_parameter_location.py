"""Class 2: parameters only where the vendor reads them. A query string on a POST (Stripe might read the
amount there) and a body on a GET or DELETE (ignored by the vendor, but read as a filter) are refused."""

from __future__ import annotations

import pytest
from tests.security.conftest import FORM, JSON, TWILIO_SID, World, refused


@pytest.mark.parametrize(
    ("target", "body"),
    [
        pytest.param("/v1/refunds?amount=100", b"charge=ch_mine", id="the amount only in the query"),
        pytest.param("/v1/refunds?amount=100", b"charge=ch_mine&amount=100", id="the amount in both"),
        pytest.param("/v1/refunds?charge=ch_other", b"charge=ch_mine&amount=100", id="another charge in the query"),
    ],
)  # fmt: skip
def test_a_stripe_post_with_a_query_string_is_refused_and_moves_nothing(
    world: World, target: str, body: bytes
) -> None:
    r = world.stripe("POST", target, body, FORM)
    refused(r, 400, "tollgate_request_invalid", world)
    assert "query string" in r.json()["error"]["message"]
    assert world.spent("stripe") == 0


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        pytest.param("GET", "/v1/charges", b"customer=cus_mine", id="a list filter in the body"),
        pytest.param("GET", "/v1/charges?customer=cus_mine", b"customer=cus_mine", id="filters in both"),
        pytest.param("GET", "/v1/charges/ch_mine", b"expand[]=customer", id="a retrieve with a body"),
        pytest.param("DELETE", "/v1/customers/cus_mine", b"x=1", id="a delete with a body"),
    ],
)
def test_a_stripe_read_with_a_body_is_refused(world: World, method: str, target: str, body: bytes) -> None:
    r = world.stripe(method, target, body, FORM)
    refused(r, 400, "tollgate_request_invalid", world)


def test_a_list_filtered_in_its_query_is_judged_and_sent_as_is(world: World) -> None:
    r = world.stripe("GET", "/v1/charges?customer=cus_mine&limit=3")
    assert r.status == 200, r.body
    [seen] = world.upstreams.stripe.requests
    assert (seen.method, seen.path, seen.body) == ("GET", "/v1/charges?customer=cus_mine&limit=3", b"")


def test_twilio_and_resend_read_parameters_in_the_same_places(world: World) -> None:
    sms = world.twilio(
        b"To=%2B14155550100&Body=hi",
        FORM,
        path=f"/twilio/2010-04-01/Accounts/{TWILIO_SID}/Messages.json?To=%2B449999999999",
    )
    refused(sms, 400, "tollgate_request_invalid", world)
    email = world.resend(
        b'{"from": "bot@example.com", "to": "ana@example.com"}', JSON, path="/resend/emails?to=x%40evil.test"
    )
    refused(email, 400, "tollgate_request_invalid", world)
    assert world.spent("twilio") == world.spent("resend") == 0
