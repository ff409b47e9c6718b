"""The parameters the audit keeps: each vendor's redaction list, credentials masked, and a bound."""

from __future__ import annotations

import json

import pytest

from tollgate.policy.rules import ParamValue
from tollgate.vendors import VENDORS
from tollgate.vendors.redaction import MASK, MAX_JSON_CHARS, MAX_VALUE_CHARS, audit_json, redact


@pytest.mark.parametrize(
    ("vendor", "params", "hidden"),
    [
        ("stripe", {"card[number]": "4242", "card[cvc]": "1", "card[exp_year]": "30"}, {"card[number]", "card[cvc]"}),
        ("stripe", {"bank_account[account_number]": "0001", "bank_account[routing_number]": "110"},
         {"bank_account[account_number]", "bank_account[routing_number]"}),
        ("stripe", {"payment_method_data[card][number]": "4242", "pii[id_number]": "1", "amount": "5"},
         {"payment_method_data[card][number]", "pii[id_number]"}),
        ("twilio", {"Body": "your code is 1234", "To": "+14155550100"}, {"Body"}),
        ("resend", {"html": "<p>hi</p>", "text": "hi", "attachments[0][content]": "QUJD", "subject": "s"},
         {"html", "text", "attachments[0][content]"}),
    ],
)  # fmt: skip
def test_each_vendor_hides_its_secrets_and_keeps_the_rest(
    vendor: str, params: dict[str, ParamValue], hidden: set[str]
) -> None:
    out = redact(params, VENDORS[vendor].redacted)
    assert {k for k, v in out.items() if v == MASK} == hidden
    assert all(out[k] == params[k] for k in params if k not in hidden)


def test_a_list_holding_a_credential_is_masked_whole() -> None:
    assert redact({"expand[]": ["charge", "sk_live_x"]}, (), secrets=("sk_live_x", "")) == {"expand[]": MASK}


def test_the_json_is_bounded_and_says_how_much_was_left_out() -> None:
    params: dict[str, ParamValue] = {f"metadata[k{i:03}]": "v" * 100 for i in range(200)}
    params["description"] = "d" * 10_000
    out = audit_json(params, ())
    assert len(out) <= MAX_JSON_CHARS + 10
    got = json.loads(out)
    assert len(got["description"]) == MAX_VALUE_CHARS and got["description"].endswith("…")
    assert got["_more"] == len(params) - (len(got) - 1)


def _audit_json_by_dumps(params: dict[str, ParamValue]) -> str:
    """audit_json as first written: each entry sized by json.dumps (the sizing it must keep)."""
    from tollgate.vendors.redaction import _cut

    kept: dict[str, ParamValue | int] = {}
    size = 2
    items = sorted(params.items())
    for i, (key, value) in enumerate(items):
        short = [_cut(v) for v in value] if isinstance(value, list) else _cut(value)
        piece = len(json.dumps({key: short}))
        if size + piece > MAX_JSON_CHARS:
            kept["_more"] = len(items) - i
            break
        kept[key] = short
        size += piece
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False)


def test_the_bound_falls_where_json_dumps_would_put_it_whatever_the_characters() -> None:
    import random

    rng = random.Random(14)
    alphabet = 'ab"\\\n\t\x01é€…😀<&'
    for _ in range(300):
        params: dict[str, ParamValue] = {}
        for i in range(rng.randint(1, 60)):
            name = f"p{i}" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
            params[name] = text if rng.random() < 0.7 else [text[:20]] * rng.randint(0, 3)
        assert audit_json(params, ()) == _audit_json_by_dumps(params)


def test_parameters_that_just_fit_are_kept_whole_and_one_character_more_is_not() -> None:
    # Values up to MAX_VALUE_CHARS each: sixteen of them, the last one's length swept across the bound.
    base: dict[str, ParamValue] = {f"metadata[k{i:02}]": "v" * 240 for i in range(15)}
    seen = set()
    for n in range(0, MAX_VALUE_CHARS):
        params = {**base, "z": "é" * n}  # escaped to 6 characters each in the measure
        out = audit_json(params, ())
        assert out == _audit_json_by_dumps(params)
        seen.add("_more" in json.loads(out))
    assert seen == {True, False}


def test_ascii_parameters_near_the_bound_give_what_json_dumps_sizing_gives() -> None:
    # The all-ASCII shortcut must answer exactly as the sizing loop: lists and escapes, with the last
    # name's value swept across the bound one character at a time.
    import random

    rng = random.Random(7)
    for _ in range(40):
        params: dict[str, ParamValue] = {}
        sized = 2  # the sizing loop's measure of what is kept
        while True:
            text = "".join(rng.choice('ab"\\\n') for _ in range(rng.randint(0, 60)))
            value: ParamValue = text if rng.random() < 0.6 else [text[:20]] * rng.randint(0, 4)
            name = f"k{len(params):03}"
            piece = len(json.dumps({name: value}))
            if sized + piece > MAX_JSON_CHARS - 100:
                break
            params[name], sized = value, sized + piece
        room = MAX_JSON_CHARS - sized - len(json.dumps({"zz": ""}))  # "zz" this long just fits
        kept = set()
        for n in range(room - 3, room + 3):
            params["zz"] = "x" * n
            out = audit_json(params, ())
            assert out == _audit_json_by_dumps(params), n - room
            kept.add("_more" not in out)
        assert kept == {True, False}  # both sides of the bound were met
