"""Class 10: file uploads. stripe-python sends `POST /v1/files` to its second host (files.stripe.com), which
the gateway serves at /stripe-files. Multipart bodies are read strictly: what a lenient parser would split
differently is refused before anything reaches either Stripe host."""

from __future__ import annotations

import pytest
from tests.security.conftest import World, refused

B = "0123456789abcdef0123456789abcdef"
CTYPE = ("content-type", f"multipart/form-data; boundary={B}")
PURPOSE = b'Content-Disposition: form-data; name="purpose"\r\n\r\ndispute_evidence'
FILE = (
    b'Content-Disposition: form-data; name="file"; filename="evidence.pdf"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n%PDF-1.4\r\n\x00\xffbinary\r\n"
)


def body(*parts: bytes, tail: bytes = b"\r\n") -> bytes:
    d = f"--{B}".encode()
    return d + b"\r\n" + (b"\r\n" + d + b"\r\n").join(parts) + b"\r\n" + d + b"--" + tail


def upload(world: World, raw: bytes, *headers: tuple[str, str], prefix: str = "/stripe-files") -> object:
    auth = ("authorization", f"Bearer {world.tokens['stripe']}")
    return world.send("POST", f"{prefix}/v1/files", raw, [auth, *(headers or (CTYPE,))])


def test_an_upload_reaches_the_files_host_byte_for_byte_with_the_real_key(world: World) -> None:
    raw = body(PURPOSE, FILE)
    r = upload(world, raw)
    assert r.status == 200, r.body  # type: ignore[attr-defined]
    (got,) = world.upstreams.stripe_files.requests
    assert (got.method, got.path, got.body) == ("POST", "/v1/files", raw)
    assert got.header("authorization") == "Bearer sk_test_security_real_stripe_key"
    assert world.upstreams.stripe.requests == []
    assert world.spent("stripe") == 0


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(body(PURPOSE, FILE, FILE), id="two files"),
        pytest.param(body(PURPOSE), id="no file"),
        pytest.param(body(FILE), id="no purpose"),
        pytest.param(body(PURPOSE, PURPOSE, FILE), id="purpose twice"),
        pytest.param(
            body(PURPOSE.replace(b"purpose", b"amount"), FILE), id="a field files.create does not take"
        ),
        pytest.param(b"junk\r\n" + body(PURPOSE, FILE), id="preamble"),
        pytest.param(body(PURPOSE, FILE, tail=b"\r\n--" + B.encode() + b"\r\nsmuggled"), id="epilogue"),
        pytest.param(body(PURPOSE, FILE)[:-2], id="no closing CRLF"),
        pytest.param(
            body(PURPOSE, FILE.replace(b"binary", b"--" + B.encode() + b"\r\n")), id="boundary inside"
        ),
        pytest.param(body(b"Content-Transfer-Encoding: base64\r\n" + PURPOSE, FILE), id="transfer encoding"),
        pytest.param(
            body(PURPOSE, FILE.replace(b'filename="evidence.pdf"', b"filename*=UTF-8''e.pdf")), id="filename*"
        ),
        pytest.param(body(PURPOSE.replace(b"\r\n\r\n", b"\r\n Folded: x\r\n\r\n"), FILE), id="folded header"),
    ],
)
def test_multipart_bodies_parsers_read_differently_are_refused(world: World, raw: bytes) -> None:
    refused(upload(world, raw), 400, "tollgate_request_invalid", world)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ctype",
    [
        f"multipart/form-data; boundary={B}; charset=utf-8",
        f"multipart/mixed; boundary={B}",
        "application/x-www-form-urlencoded",
        f'multipart/form-data; boundary="{B} "',
    ],
)
def test_an_upload_must_say_plain_multipart_form_data_with_one_boundary(world: World, ctype: str) -> None:
    refused(
        upload(world, body(PURPOSE, FILE), ("content-type", ctype)), 400, "tollgate_request_invalid", world
    )  # type: ignore[arg-type]


def test_a_compressed_upload_is_refused(world: World) -> None:
    r = upload(world, body(PURPOSE, FILE), CTYPE, ("content-encoding", "gzip"))
    refused(r, 400, "tollgate_request_invalid", world)  # type: ignore[arg-type]


def test_an_upload_on_the_api_prefix_is_refused_and_named_to_the_files_prefix(world: World) -> None:
    r = upload(world, body(PURPOSE, FILE), prefix="/stripe")
    refused(r, 400, "tollgate_request_invalid", world)  # type: ignore[arg-type]
    assert b"/stripe-files" in r.body  # type: ignore[attr-defined]


def test_no_other_stripe_call_is_served_on_the_files_prefix(world: World) -> None:
    auth = ("authorization", f"Bearer {world.tokens['stripe']}")
    r = world.send(
        "POST",
        "/stripe-files/v1/refunds",
        b"charge=ch_mine&amount=100",
        [auth, ("content-type", "application/x-www-form-urlencoded")],
    )
    refused(r, 400, "tollgate_request_invalid", world)
    assert world.spent("stripe") == 0


def test_another_vendors_key_on_the_files_prefix_is_refused(world: World) -> None:
    r = world.send(
        "POST",
        "/stripe-files/v1/files",
        body(PURPOSE, FILE),
        [("authorization", f"Bearer {world.tokens['resend']}"), CTYPE],
    )
    refused(r, 401, "tollgate_key_wrong_vendor", world)
