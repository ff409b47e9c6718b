import re

import pytest

from tollgate.vendors.form import Ambiguous, nested, pairs, repeated

ROOT = re.compile(r"^[a-z][a-z0-9_]*$")
PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*[<>]?$")


def stripe_like(data: bytes) -> dict:
    return nested(pairs(data, "body"), ROOT, "body")


def test_nested_keys_and_arrays_are_kept_by_their_wire_names() -> None:
    params = stripe_like(b"charge=ch_1&metadata%5Border%5D=7&expand[]=charge&expand[]=customer")
    assert params == {"charge": "ch_1", "metadata[order]": "7", "expand[]": ["charge", "customer"]}


def test_names_are_judged_decoded_as_the_vendor_reads_them() -> None:
    assert stripe_like(b"%61mount=5&note=caf%C3%A9+au+lait") == {"amount": "5", "note": "café au lait"}


def test_indexed_arrays_of_objects_are_read_as_stripe_python_sends_them() -> None:
    params = stripe_like(b"items[0][price]=p_1&items[0][quantity]=2&items[1][price]=p_2")
    assert params == {"items[0][price]": "p_1", "items[0][quantity]": "2", "items[1][price]": "p_2"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(b"amount=1&amount=2", "more than once", id="same key twice"),
        pytest.param(b"amount=1&%61mount=2", "more than once", id="same key twice, one escaped"),
        pytest.param(b"amount=1&amount[]=2", "both as a", id="scalar beside array"),
        pytest.param(b"metadata=x&metadata[a]=1", "both as a", id="scalar beside nested"),
        pytest.param(b"metadata[a]=1&metadata[a][b]=2", "both as a", id="nested value beside deeper"),
        pytest.param(b"expand[]=a&expand[0]=b", "both as a", id="list beside map"),
        pytest.param(b"items[][price]=a&items[][quantity]=1", "may only end", id="list of objects"),
        pytest.param(b"amount", "name=value", id="key without value"),
        pytest.param(b"=5", "name=value", id="empty name"),
        pytest.param(b"a=1&&b=2", "name=value", id="empty field"),
        pytest.param(b"\xff\xfe", "plain form encoding", id="raw bytes"),
        pytest.param(b"a=%ZZ", "two hex digits", id="broken escape"),
        pytest.param(b"a=%C3%28", "not UTF-8", id="escape that is not utf-8"),
        pytest.param(b"a=1;amount=100", "';' is not a separator", id="semicolon separator"),
        pytest.param(b'{"amount":"1"}', "plain form encoding", id="a JSON document"),
        pytest.param(b"a=1 b", "plain form encoding", id="raw space"),
        pytest.param(b"Amount=1", "not one this API reads", id="name outside the grammar"),
        pytest.param(b"a b=1".replace(b" ", b"+"), "not one this API reads", id="space in a root name"),
        pytest.param(b"a[b]c=1", "not one this API reads", id="text after brackets"),
    ],
)
def test_anything_a_reader_could_take_two_ways_is_refused(body: bytes, words: str) -> None:
    with pytest.raises(Ambiguous, match=words):
        stripe_like(body)


def test_empty_input_gives_no_params() -> None:
    assert stripe_like(b"") == {}


def test_repeated_names_collect_into_lists_where_the_api_reads_repeats() -> None:
    params = repeated(pairs(b"To=%2B1415&MediaUrl=a&MediaUrl=b", "body"), PASCAL, "body")
    assert params == {"To": "+1415", "MediaUrl": ["a", "b"]}


def test_repeated_names_follow_the_vendor_grammar() -> None:
    with pytest.raises(Ambiguous, match="not one this API reads"):
        repeated(pairs(b"to=%2B1415", "body"), PASCAL, "body")
    assert repeated(pairs(b"DateSent%3E=2026-01-01", "query string"), PASCAL, "query string") == {
        "DateSent>": "2026-01-01"
    }
