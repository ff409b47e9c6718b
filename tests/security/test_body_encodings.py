"""Class 1: bodies the decision could read one way and the vendor another (charsets, compression, other
media types) are refused; nothing is sent, nothing is counted."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from tests.security.conftest import FORM, JSON, World, refused

REFUND = b"charge=ch_mine&amount=100"


def brotli_like(data: bytes) -> bytes:
    # Any bytes labelled br: the gateway must refuse the label, whatever the bytes are.
    return b"\x8b\x02\x80" + data + b"\x03"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param("charge=ch_other".encode("utf-16-le"), [("content-type", "application/x-www-form-urlencoded; charset=utf-16le")], id="utf-16le"),
        pytest.param("charge=ch_other".encode("utf-16"), [("content-type", "application/x-www-form-urlencoded; charset=utf-16")], id="utf-16 with a BOM"),
        pytest.param("charge=ch_mine&description=caf\xe9".encode("latin-1"), [("content-type", "application/x-www-form-urlencoded; charset=iso-8859-1")], id="latin-1"),
        pytest.param(zlib.compress(b"charge=ch_other"), [FORM, ("content-encoding", "deflate")], id="deflate"),
        pytest.param(gzip.compress(b"charge=ch_other"), [FORM, ("content-encoding", "gzip")], id="gzip"),
        pytest.param(brotli_like(b"charge=ch_other"), [FORM, ("content-encoding", "br")], id="br"),
        pytest.param(REFUND, [FORM, ("content-encoding", "identity, gzip")], id="a chain of encodings"),
        pytest.param(json.dumps({"charge": "ch_other", "amount": 6000}).encode(), [FORM], id="JSON typed as form"),
        pytest.param(json.dumps({"charge": "ch_other"}).encode(), [JSON], id="JSON"),
        pytest.param(b"--x\r\nContent-Disposition: form-data; name=\"charge\"\r\n\r\nch_other\r\n--x--\r\n",
                     [("content-type", "multipart/form-data; boundary=x")], id="multipart"),
        pytest.param(REFUND, [("content-type", "text/plain")], id="text/plain"),
        pytest.param(REFUND, [], id="no content type"),
        pytest.param(b"charge=ch_mine;amount=100", [FORM], id="semicolon-separated"),
        pytest.param(b"charge=ch_mine&amount", [FORM], id="a field without a value"),
        pytest.param(b"charge=ch_mine&amount=%GG", [FORM], id="a broken escape"),
        pytest.param(b"charge=ch_mine&amount=1&amount=100", [FORM], id="amount twice"),
        pytest.param(b"charge=ch_mine&amount=1&amount[]=100", [FORM], id="amount and amount[]"),
        pytest.param(b"charge=ch_mine&Amount=100", [FORM], id="a case variant"),
    ],
)  # fmt: skip
def test_stripe_bodies_that_are_not_plain_utf8_form_encoding_are_refused(
    world: World, body: bytes, headers: list[tuple[str, str]]
) -> None:
    r = world.stripe("POST", "/v1/refunds", body, *headers)
    refused(r, 400, "tollgate_request_invalid", world)
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and "not sent" in error["message"]
    assert world.spent("stripe") == 0


def test_the_plain_form_body_stripe_python_sends_passes_and_is_what_the_vendor_gets(world: World) -> None:
    r = world.stripe(
        "POST", "/v1/refunds", REFUND, ("content-type", "application/x-www-form-urlencoded; charset=utf-8")
    )
    assert r.status == 200, r.body
    refund = world.upstreams.stripe.requests[-1]
    assert (refund.method, refund.path, refund.body) == ("POST", "/v1/refunds", REFUND)
    assert world.spent("stripe") == 100 * 10_000


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param("To=+14155550100&Body=hi".encode("utf-16-le"), [("content-type", "application/x-www-form-urlencoded; charset=utf-16le")], id="utf-16le"),
        pytest.param(gzip.compress(b"To=%2B449999&Body=hi"), [FORM, ("content-encoding", "gzip")], id="gzip"),
        pytest.param(b'{"To": "+449999", "Body": "hi"}', [JSON], id="JSON"),
    ],
)  # fmt: skip
def test_twilio_bodies_other_than_plain_form_encoding_are_refused(
    world: World, body: bytes, headers: list[tuple[str, str]]
) -> None:
    r = world.twilio(body, *headers)
    refused(r, 400, "tollgate_request_invalid", world)
    assert r.json()["details"]["tollgate_rule"] == "tollgate_request_invalid"
    assert world.spent("twilio") == 0


EMAIL = {"from": "bot@example.com", "to": "ana@example.com", "subject": "s", "text": "t"}


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(json.dumps(EMAIL).encode("utf-16-le"), [("content-type", "application/json; charset=utf-16le")], id="utf-16le"),
        pytest.param(json.dumps(EMAIL).encode("utf-32"), [JSON], id="utf-32 that json.loads would guess"),
        pytest.param(b"\xef\xbb\xbf" + json.dumps(EMAIL).encode(), [JSON], id="a byte-order mark"),
        pytest.param(gzip.compress(json.dumps({**EMAIL, "to": "x@evil.test"}).encode()), [JSON, ("content-encoding", "gzip")], id="gzip"),
        pytest.param(b"to=x%40evil.test&from=bot%40example.com", [FORM], id="a form body"),
        pytest.param(b'{"to": "ana@example.com", "to": "x@evil.test", "from": "bot@example.com"}', [JSON], id="a key twice"),
    ],
)  # fmt: skip
def test_resend_bodies_other_than_utf8_json_are_refused(
    world: World, body: bytes, headers: list[tuple[str, str]]
) -> None:
    r = world.resend(body, *headers)
    refused(r, 400, "tollgate_request_invalid", world)
    assert r.json()["name"] == "validation_error"
    assert world.spent("resend") == 0
