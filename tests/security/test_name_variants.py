"""Class 7: names the decision reads, spelled so the vendor may read them while the gateway does not
(Twilio `to` beside `To`; Resend `"To"`, `"CC"`; recipients in custom email headers), are refused."""

from __future__ import annotations

import json

import pytest
from tests.security.conftest import FORM, JSON, World, refused


@pytest.mark.parametrize(
    "body",
    [
        b"To=%2B14155550100&to=%2B449999999999&Body=hi",
        b"to=%2B449999999999&Body=hi",
        b"To=%2B14155550100&TO=%2B449999999999&Body=hi",
        b"To=%2B14155550100&body=hi",
        b"To=%2B14155550100&Body=hi&mediaUrl=https%3A%2F%2Fx.test%2Fa.png",
        b"To=%2B14155550100&To=%2B449999999999&Body=hi",
        b"To=%2B14155550100&Body=hi&%54o=%2B449999999999",
    ],
)
def test_twilio_case_variants_and_repeats_of_read_fields_are_refused(world: World, body: bytes) -> None:
    r = world.twilio(body, FORM)
    assert r.status == 400, r.body
    assert r.headers["x-tollgate-rule"] == "tollgate_request_invalid"
    assert world.upstreams.all() == [] and world.spent("twilio") == 0


def test_a_plain_sms_to_an_allowed_number_passes(world: World) -> None:
    r = world.twilio(b"To=%2B14155550100&From=%2B14155550199&Body=hi", FORM)
    assert r.status == 201, r.body
    assert world.upstreams.twilio.requests[-1].body == b"To=%2B14155550100&From=%2B14155550199&Body=hi"


EMAIL = {"from": "bot@example.com", "to": "ana@example.com", "subject": "s", "text": "t"}


@pytest.mark.parametrize(
    "email",
    [
        {**EMAIL, "To": "x@evil.test"},
        {**EMAIL, "CC": "x@evil.test"},
        {**EMAIL, "Bcc": ["x@evil.test"]},
        {**EMAIL, "headers": {"Bcc": "x@evil.test"}},
        {**EMAIL, "headers": {"cc": "x@evil.test"}},
        {**EMAIL, "headers": {"To": "x@evil.test"}},
        {**EMAIL, "headers": {"Resent-To": "x@evil.test"}},
        {**EMAIL, "headers": {"From": "ceo@example.com"}},
    ],
)
def test_resend_recipients_outside_to_cc_bcc_are_refused(world: World, email: dict) -> None:
    for body in (email, [EMAIL, email]):
        path = "/resend/emails" if isinstance(body, dict) else "/resend/emails/batch"
        r = world.resend(json.dumps(body).encode(), JSON, path=path)
        refused(r, 400, "tollgate_request_invalid", world)
    assert world.spent("resend") == 0


def test_an_email_within_scope_passes(world: World) -> None:
    r = world.resend(json.dumps({**EMAIL, "headers": {"X-Entity-Ref-ID": "42"}}).encode(), JSON)
    assert r.status == 200, r.body
    assert world.upstreams.resend.requests[-1].json()["headers"] == {"X-Entity-Ref-ID": "42"}
