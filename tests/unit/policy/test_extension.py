"""The policy fields only some vendors read come from each vendor's package, through one registry."""

import pytest
from pydantic import ValidationError
from tests.builders import spend_policy

from tollgate.policy import crd
from tollgate.policy.extension import extensions, vendors_of
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.vendors import VENDORS


def test_a_policy_can_name_exactly_the_vendors_in_the_registry() -> None:
    assert list(extensions()) == list(VENDORS)
    assert SpendPolicySpec.model_json_schema()["properties"]["vendor"]["enum"] == list(VENDORS)


def test_every_field_a_vendor_claims_is_a_policy_field_and_every_entry_rule_is_for_one_of_them() -> None:
    model_fields = set(SpendPolicySpec.model_fields)
    for name, ext in extensions().items():
        assert set(ext.fields) <= model_fields, name
        assert set(ext.items) | set(ext.required) <= set(ext.fields), name


def test_a_field_only_some_vendors_read_names_them_in_registry_order() -> None:
    assert vendors_of("connected_accounts") == ("stripe", "twilio")
    assert vendors_of("recipients") == ("twilio", "resend")
    assert vendors_of("daily_cap_usd") == ()  # every vendor reads it


def test_the_crd_says_which_vendors_may_set_each_vendor_field() -> None:
    rules = crd.spend_policy_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "x-kubernetes-validations"
    ]
    assert {
        "rule": "!has(self.prices) || self.vendor in ['twilio']",
        "message": "prices applies to twilio policies only",
        "fieldPath": ".prices",
    } in rules


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        pytest.param(
            {"vendor": "resend", "connectedAccounts": ["acct_1"]},
            "connectedAccounts applies to stripe and twilio policies only, not resend",
            id="a field the vendor does not read",
        ),
        pytest.param(
            {"vendor": "twilio", "connectedAccounts": ["acct_1"]},
            "'acct_1' is not a Twilio account SID",
            id="an entry in another vendor's shape",
        ),
        pytest.param({"vendor": "twilio"}, "connectedAccounts is required for twilio", id="a required field"),
    ],
)
def test_the_vendor_s_rules_answer_for_its_fields(overrides: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        spend_policy(**overrides)
