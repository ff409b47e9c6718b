import pytest

from tollgate.vendors.form import Ambiguous, parse_form


def test_nested_keys_and_arrays_are_kept_by_their_wire_names() -> None:
    params = parse_form(b"charge=ch_1&metadata%5Border%5D=7&expand[]=charge&expand[]=customer", "")
    assert params == {"charge": "ch_1", "metadata[order]": "7", "expand[]": ["charge", "customer"]}


def test_query_parameters_count_like_body_parameters() -> None:
    assert parse_form(b"charge=ch_1", "amount=500") == {"charge": "ch_1", "amount": "500"}


@pytest.mark.parametrize(
    ("body", "query", "words"),
    [
        pytest.param(b"amount=1&amount=2", "", "more than once", id="same key twice"),
        pytest.param(b"amount=1", "amount=2", "both the body and the query", id="body and query"),
        pytest.param(b"amount=1&amount[]=2", "", "both as a value", id="scalar beside array"),
        pytest.param(b"metadata=x&metadata[a]=1", "", "both as a value", id="scalar beside nested"),
        pytest.param(b"amount", "", "form encoding", id="key without value"),
        pytest.param(b"\xff\xfe", "", "UTF-8", id="not utf-8"),
        pytest.param(b"a=%ZZ&b", "", "form encoding", id="broken pair"),
    ],
)
def test_anything_the_vendor_could_read_two_ways_is_refused(body: bytes, query: str, words: str) -> None:
    with pytest.raises(Ambiguous, match=words):
        parse_form(body, query)


def test_empty_body_and_query_give_no_params() -> None:
    assert parse_form(b"", "") == {}
