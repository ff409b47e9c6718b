"""Resend pricing and scoping from the request alone: one email per recipient, every address scoped."""

from typing import Any

import pytest
from tests.builders import wire

from tollgate.vendors.base import Facts, Found, Invalid, Unpriced
from tollgate.vendors.resend import RESEND


def facts(body: bytes, path: str = "/emails", method: str = "POST") -> Any:
    params = RESEND.parse_params(wire("application/json", body))
    return RESEND.facts(RESEND.match(method, path), params, {}, Found(), False)


def emails(f: Any) -> int:
    assert isinstance(f, Facts), f
    (u,) = f.usage
    assert (u.unit, u.destination) == ("email", "")
    return u.quantity


@pytest.mark.parametrize(
    ("body", "count", "recipients"),
    [
        pytest.param(b'{"to": "ana@example.com"}', 1, {"ana@example.com"}, id="one address as a string"),
        pytest.param(
            b'{"to": ["ana@example.com", "bo@example.com"]}',
            2,
            {"ana@example.com", "bo@example.com"},
            id="each address in a list is an email",
        ),
        pytest.param(
            b'{"to": "ana@example.com", "cc": ["bo@example.com"], "bcc": "cy@example.org"}',
            3,
            {"ana@example.com", "bo@example.com", "cy@example.org"},
            id="cc and bcc are sent to, counted and scoped",
        ),
        pytest.param(
            b'{"to": ["ana@example.com", "ana@example.com"]}',
            2,
            {"ana@example.com"},
            id="an address listed twice is delivered and counted twice",
        ),
        pytest.param(
            b'{"to": "Ana Lima <Ana@Example.COM>"}',
            1,
            {"Ana@example.com"},
            id="a display name is dropped and the domain lowercased",
        ),
    ],
)
def test_an_email_counts_one_unit_per_recipient(body: bytes, count: int, recipients: set[str]) -> None:
    f = facts(body)
    assert emails(f) == count
    assert f.recipients == frozenset(recipients)
    assert f.cost is None  # priced by the grant (pricePerEmailUsd), not in a currency


def test_a_batch_counts_every_recipient_of_every_email() -> None:
    body = (
        b'[{"to": "ana@example.com", "cc": "bo@example.com"}, {"to": ["cy@example.org", "di@example.org"]}]'
    )
    f = facts(body, "/emails/batch")
    assert emails(f) == 4
    assert f.recipients == frozenset(
        {"ana@example.com", "bo@example.com", "cy@example.org", "di@example.org"}
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(b'{"subject": "hi"}', "to", id="no to at all"),
        pytest.param(b'{"to": []}', "to", id="an empty to list"),
        pytest.param(b'{"to": "ana@example.com, bo@example.com"}', "to", id="two addresses in one string"),
        pytest.param(b'{"to": "ana@example.com", "cc": "not-an-address"}', "cc", id="cc that is no address"),
        pytest.param(b'{"to": "Ana <a@x.com> <b@y.com>"}', "to", id="two angle addresses"),
    ],
)
def test_addresses_that_cannot_be_read_exactly_are_refused(body: bytes, param: str) -> None:
    f = facts(body)
    assert isinstance(f, Invalid), f
    assert f.param == param


def test_reading_and_cancelling_email_is_free() -> None:
    assert facts(b"", "/emails/4ef9a417-02e9-4d39-ad75-9611e0fcc33c", "GET") == Facts(cost=None)
    assert facts(b"", "/emails/4ef9a417-02e9-4d39-ad75-9611e0fcc33c/cancel") == Facts(cost=None)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/broadcasts", id="a broadcast to an audience"),
        pytest.param("/broadcasts/b1/send", id="sending a broadcast"),
        pytest.param("/domains", id="any write Tollgate does not know"),
    ],
)
def test_writes_tollgate_cannot_count_are_unpriced(path: str) -> None:
    assert isinstance(facts(b"{}", path), Unpriced)
