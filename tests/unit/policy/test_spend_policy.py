import pytest
from pydantic import ValidationError
from tests.builders import spend_policy, vault_key

from tollgate.policy.manifests import field_errors
from tollgate.policy.rules import EndpointPattern, ParamRule


def test_a_valid_policy_compiles_its_cap_to_micro_usd() -> None:
    p = spend_policy(dailyCapUsd="250.50")
    assert p.daily_cap_micro_usd == 250_500_000
    assert [c.code for c in p.currencies] == ["usd"]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        pytest.param({"dailyCapUsd": "-5"}, "dailyCapUsd", "≥ 0", id="negative cap"),
        pytest.param({"allow": []}, "allow", "at least 1", id="empty allowlist"),
        pytest.param({"allow": ["PATCH /v1/refunds"]}, "allow[0]", "method", id="unknown method"),
        pytest.param({"allow": ["POST v1/refunds"]}, "allow[0]", "METHOD /path", id="path without slash"),
        pytest.param({"allow": ["POST /v1/**/refunds"]}, "allow[0]", "last segment", id="** in the middle"),
        pytest.param({"allow": ["GET /v1/../secrets"]}, "allow[0]", "not allowed", id="dot-dot segment"),
        pytest.param({"vendor": "paypal"}, "vendor", "stripe", id="unknown vendor"),
        pytest.param({"customers": ["alice"]}, "customers", "cus_", id="customer id shape"),
        pytest.param({"connectedAccounts": ["acct-1"]}, "connectedAccounts", "acct_", id="account id shape"),
        pytest.param({"currencies": [{"code": "eur"}]}, "currencies", "usdRate", id="non-USD without rate"),
        pytest.param(
            {"currencies": [{"code": "usd"}, {"code": "USD"}]}, "currencies", "twice", id="duplicate currency"
        ),
        pytest.param({"timeZone": "Mars/Olympus"}, "timeZone", "IANA", id="bad time zone"),
        pytest.param(
            {"budgetRef": {"name": "Support"}}, "budgetRef.name", "object name", id="budget name case"
        ),
        pytest.param(
            {"budgetRef": {"name": "support\n"}}, "budgetRef.name", "object name", id="budget name line end"
        ),
        pytest.param({"expiresAt": "2026-12-01T00:00:00"}, "expiresAt", "time zone", id="naive expiry"),
        pytest.param({"dailyCapUSD": "5"}, "dailyCapUSD", "Extra inputs", id="misspelled key"),
        pytest.param(
            {"params": [{"field": "amount", "op": "lte"}]}, "params[0]", "numeric", id="lte without value"
        ),
        pytest.param(
            {"params": [{"field": "amount", "op": "between", "value": 1}]},
            "params[0].op",
            "in",
            id="unknown op",
        ),
        pytest.param(
            {"params": [{"field": "x", "op": "matches", "value": "("}]},
            "params[0]",
            "regular",
            id="bad regex",
        ),
        pytest.param(
            {"params": [{"field": "x", "op": "in", "value": "a"}]}, "params[0]", "list", id="in without list"
        ),
    ],
)
def test_invalid_policies_are_rejected_naming_the_field(overrides: dict, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as exc:
        spend_policy(**overrides)
    messages = field_errors(exc.value, "spec")
    assert any(m.startswith(f"spec.{field}") and words in m for m in messages), messages


def test_a_yaml_float_cap_is_read_as_the_decimal_written() -> None:
    assert spend_policy(dailyCapUsd=250.1).daily_cap_micro_usd == 250_100_000


def test_vault_key_requires_policy_and_secret_refs() -> None:
    with pytest.raises(ValidationError, match="vendorKeySecretRef"):
        vault_key(vendorKeySecretRef=None)


@pytest.mark.parametrize(
    ("pattern", "method", "path", "matches"),
    [
        ("POST /v1/refunds", "POST", "/v1/refunds", True),
        ("POST /v1/refunds", "GET", "/v1/refunds", False),
        ("POST /v1/refunds", "POST", "/v1/refunds/re_1", False),
        ("GET /v1/charges/*", "GET", "/v1/charges/ch_1", True),
        ("GET /v1/charges/*", "GET", "/v1/charges", False),
        ("GET /v1/charges/*", "GET", "/v1/charges/ch_1/refunds", False),
        ("GET /v1/**", "GET", "/v1/anything/at/all", True),
        ("* /v1/customers/*", "DELETE", "/v1/customers/cus_1", True),
    ],
)
def test_endpoint_patterns_match_whole_segments(pattern: str, method: str, path: str, matches: bool) -> None:
    assert EndpointPattern(pattern).matches(method, path) is matches


@pytest.mark.parametrize(
    ("rule", "params", "holds"),
    [
        ({"field": "amount", "op": "lte", "value": 5000}, {"amount": "5000"}, True),
        ({"field": "amount", "op": "lte", "value": 5000}, {"amount": "5001"}, False),
        ({"field": "amount", "op": "lte", "value": 5000}, {}, False),
        ({"field": "amount", "op": "lte", "value": 5000}, {"amount": "12abc"}, False),
        ({"field": "capture_method", "op": "in", "value": ["manual"]}, {"capture_method": "manual"}, True),
        (
            {"field": "capture_method", "op": "in", "value": ["manual"]},
            {"capture_method": "automatic"},
            False,
        ),
        ({"field": "cancel_at_period_end", "op": "absent"}, {}, True),
        ({"field": "cancel_at_period_end", "op": "absent"}, {"cancel_at_period_end": "true"}, False),
        ({"field": "metadata[reason]", "op": "present"}, {"metadata[reason]": "dup"}, True),
        ({"field": "reason", "op": "matches", "value": "dup.*"}, {"reason": "duplicate"}, True),
        ({"field": "reason", "op": "matches", "value": "dup"}, {"reason": "duplicate"}, False),
        (
            {"field": "expand[]", "op": "in", "value": ["customer"]},
            {"expand[]": ["customer", "invoice"]},
            False,
        ),
        ({"field": "currency", "op": "eq", "value": "usd"}, {"currency": "usd"}, True),
        ({"field": "currency", "op": "ne", "value": "usd"}, {"currency": "usd"}, False),
    ],
)
def test_param_rules_fail_on_absent_or_non_numeric_values(rule: dict, params: dict, holds: bool) -> None:
    assert ParamRule.model_validate(rule).holds(params) is holds
