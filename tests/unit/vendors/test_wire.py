import base64

import pytest

from tollgate.vendors.wire import (
    Ambiguous,
    Wire,
    basic_credentials,
    bearer_token,
    check_body_encoding,
    check_path,
    decode_utf8,
    params_source,
    parse_media_type,
)

FORM = "application/x-www-form-urlencoded"


def wire(method: str = "POST", query: str = "", body: bytes = b"", **headers: str) -> Wire:
    return Wire(method, "/v1/refunds", query, {k.replace("_", "-"): v for k, v in headers.items()}, body)


@pytest.mark.parametrize(
    ("w", "where"),
    [
        (wire("POST", body=b"a=1"), "body"),
        (wire("GET", query="a=1"), "query string"),
        (wire("DELETE", query="a=1"), "query string"),
        (wire("PATCH", body=b"{}"), "body"),
    ],
)
def test_parameters_are_read_where_the_method_carries_them(w: Wire, where: str) -> None:
    assert params_source(w)[0] == where


@pytest.mark.parametrize(
    "w",
    [
        pytest.param(wire("POST", query="amount=100", body=b"charge=ch_1"), id="post with a query"),
        pytest.param(wire("POST", query="amount=100"), id="post with only a query"),
        pytest.param(wire("GET", body=b"customer=cus_1"), id="get with a body"),
        pytest.param(wire("DELETE", body=b"x=1"), id="delete with a body"),
        pytest.param(wire("HEAD", body=b"x=1"), id="head with a body"),
    ],
)
def test_parameters_anywhere_else_are_refused(w: Wire) -> None:
    with pytest.raises(Ambiguous, match="carries its parameters"):
        params_source(w)


@pytest.mark.parametrize(
    "content_type",
    [
        FORM,
        f"{FORM}; charset=utf-8",
        f"{FORM};charset=UTF-8",
        f'{FORM}; charset="utf-8"',
        "Application/X-WWW-Form-Urlencoded",
    ],
)
def test_the_vendors_media_type_in_utf8_is_accepted(content_type: str) -> None:
    check_body_encoding(wire(body=b"a=1", content_type=content_type), FORM, "Stripe")


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"content_type": f"{FORM}; charset=utf-16le"}, "charset"),
        ({"content_type": f"{FORM}; charset=iso-8859-1"}, "charset"),
        ({"content_type": f"{FORM}; charset=utf-8; charset=utf-16"}, "twice"),
        ({"content_type": f"{FORM}; boundary=x"}, "boundary"),
        ({"content_type": "application/json"}, "not 'application/json'"),
        ({"content_type": "multipart/form-data; boundary=x"}, "not 'multipart/form-data'"),
        ({"content_type": "text/plain"}, "not 'text/plain'"),
        ({"content_type": "form"}, "not a media type"),
        ({}, "needs Content-Type"),
        ({"content_type": FORM, "content_encoding": "gzip"}, "Content-Encoding"),
        ({"content_type": FORM, "content_encoding": "deflate"}, "Content-Encoding"),
        ({"content_type": FORM, "content_encoding": "br"}, "Content-Encoding"),
        ({"content_type": FORM, "content_encoding": "identity, gzip"}, "Content-Encoding"),
    ],
)
def test_other_encodings_charsets_and_types_are_refused(headers: dict[str, str], words: str) -> None:
    with pytest.raises(Ambiguous, match=words):
        check_body_encoding(wire(body=b"a=1", **headers), FORM, "Stripe")


def test_an_empty_body_needs_no_content_type() -> None:
    check_body_encoding(wire(), FORM, "Stripe")


def test_media_type_parameters_are_read_strictly() -> None:
    assert parse_media_type('text/plain; charset="UTF-8"') == ("text/plain", {"charset": "UTF-8"})


@pytest.mark.parametrize("path", ["/v1/charges/ch_1", "/2010-04-01/Accounts/AC1/Messages.json", "/emails"])
def test_plain_paths_pass(path: str) -> None:
    check_path(path)


@pytest.mark.parametrize(
    "path", ["/v1/%72efunds", "/v1/charges;x=1", "/v1/charges/ch 1", "/v1/ch\u00e9", "/v1/a:b"]
)
def test_paths_a_server_could_decode_or_split_are_refused(path: str) -> None:
    with pytest.raises(Ambiguous, match="path"):
        check_path(path)


def test_utf8_is_decoded_strictly() -> None:
    assert decode_utf8("café".encode(), "body") == "café"
    for bad in (b"\xef\xbb\xbf{}", "{}".encode("utf-16"), b"\xc3\x28"):
        with pytest.raises(Ambiguous):
            decode_utf8(bad, "body")


def _basic(raw: bytes) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.mark.parametrize(
    ("headers", "bearer", "basic"),
    [
        pytest.param({"authorization": "Bearer tgk_a"}, "tgk_a", None, id="bearer"),
        pytest.param(
            {"authorization": "BEARER  tgk_a "}, "tgk_a", None, id="scheme in any case, value trimmed"
        ),
        pytest.param({"authorization": "Bearer "}, None, None, id="empty bearer"),
        pytest.param(
            _basic(b"user:pass:word"), None, ("user", "pass:word"), id="basic splits at the first colon"
        ),
        pytest.param(_basic(b"user"), None, ("user", ""), id="basic without a colon"),
        pytest.param(_basic(b"\xff:x"), None, None, id="basic that is not UTF-8"),
        pytest.param({"authorization": "Basic !!!"}, None, None, id="basic that is not base64"),
        pytest.param({}, None, None, id="no header"),
    ],
)
def test_the_authorization_header_is_read_one_way_for_every_vendor(
    headers: dict[str, str], bearer: str | None, basic: tuple[str, str] | None
) -> None:
    assert bearer_token(headers) == bearer
    assert basic_credentials(headers) == basic
