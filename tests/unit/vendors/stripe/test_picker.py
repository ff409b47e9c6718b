"""The restricted-key picker: its data file, the least permissions it picks, blast radius, warnings, policies."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from tollgate.policy.manifests import load_path
from tollgate.policy.rules import EndpointPattern, ParamRule
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.vendors.stripe import picker
from tollgate.vendors.stripe.picker import Level, Permission

ROOT = Path(__file__).resolve().parents[4]
ROLES = (
    "support-refunds",
    "billing-collections",
    "subscription-manager",
    "readonly-analytics",
    "dispute-handler",
    "payment-capture",
)
CATALOG = picker.load_catalog()


def perms(*names: str) -> list[Permission]:
    return [Permission.parse(n) for n in names]


def names(result: picker.Pick) -> set[str]:
    return {p.permission for p in result.permissions}


# --- the data file ---------------------------------------------------------------------------------------


def _rules(rules: list[ParamRule]) -> set[str]:
    return {r.model_dump_json() for r in rules}


def _raw() -> dict[str, object]:
    text = resources.files("tollgate.vendors.stripe").joinpath(picker.DATA_FILE).read_text()
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def _raw_patterns() -> list[str]:
    raw = _raw()
    out: list[str] = []
    for r in raw["resources"].values():  # type: ignore[attr-defined]
        out += r["read"] + r["write"]
    for uc in raw["use_cases"].values():  # type: ignore[attr-defined]
        out += uc["allow"]
        for p in uc.get("params", []):
            out += p.get("endpoints", [])
    return out


def test_every_pattern_in_the_data_file_is_a_policy_endpoint_pattern_as_written() -> None:
    patterns = _raw_patterns()
    assert len(patterns) > 150
    for text in patterns:
        assert EndpointPattern(text) == text, f"{text!r} is not in canonical form"


def test_each_granted_pattern_belongs_to_exactly_its_own_resource_and_level() -> None:
    # If two resources granted the same endpoint, the picker's choice between them would be arbitrary.
    for name, resource in CATALOG.resources.items():
        for level in Level:
            own = resource.read if level is Level.READ else resource.write
            for pattern in own:
                assert picker.permission_for(CATALOG, pattern) == Permission(resource=name, level=level), (
                    pattern
                )


def test_at_least_fourteen_use_cases_with_the_six_roles() -> None:
    assert len(CATALOG.use_cases) >= 14
    assert set(ROLES) <= set(CATALOG.use_cases)


@pytest.mark.parametrize("name", sorted(CATALOG.use_cases))
def test_every_use_case_endpoint_is_covered_by_its_computed_permissions(name: str) -> None:
    uc = CATALOG.use_case(name)
    granted = CATALOG.granted_patterns(picker.minimum_permissions(CATALOG, uc.allow))
    for endpoint in uc.allow:
        assert picker.covered_by(granted, endpoint), endpoint
    for rule in uc.params:
        assert rule.endpoints, (
            "a use case's parameter rule must name its endpoints, or merging would widen it"
        )
        assert set(rule.endpoints) <= set(uc.allow)


@pytest.mark.parametrize("role", ROLES)
def test_the_six_roles_match_their_examples(role: str) -> None:
    m = load_path(ROOT / "deploy/examples/roles" / f"{role}.yaml")
    (example,) = m.policies.values()
    uc = CATALOG.use_case(role)
    assert set(uc.allow) == set(example.spec.allow)
    assert _rules(uc.params) == _rules(example.spec.params)


def test_dangerous_combinations_name_only_known_resources() -> None:
    raw = _raw()
    raw["dangerous"] = [{"requires": ["charge:write", "nosuch:write"], "penalty": 1, "why": "x"}]
    with pytest.raises(ValueError, match="nosuch"):
        picker.Catalog.model_validate(raw)


# --- coverage between patterns -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granting", "wanted", "expected"),
    [
        ("GET /v1/charges/*", "GET /v1/charges/ch_1", True),
        ("GET /v1/charges/*", "GET /v1/charges/*", True),
        ("GET /v1/charges/ch_1", "GET /v1/charges/*", False),
        ("GET /v1/charges/*", "GET /v1/charges", False),
        ("GET /v1/charges/*", "POST /v1/charges/ch_1", False),
        ("GET /v1/customers/*/**", "GET /v1/customers/cus_1/sources/card_1", True),
        ("GET /v1/customers/*/**", "GET /v1/customers/**", False),
        ("GET /v1/customers/**", "GET /v1/customers/**", True),
        ("GET /v1/customers/*", "GET /v1/customers/**", False),
        ("* /v1/refunds", "POST /v1/refunds", True),
        ("POST /v1/refunds", "* /v1/refunds", False),
    ],
)
def test_covers(granting: str, wanted: str, expected: bool) -> None:
    assert picker.covers(EndpointPattern(granting), EndpointPattern(wanted)) is expected


def test_a_wildcard_method_entry_needs_every_method_granted() -> None:
    wanted = EndpointPattern("* /v1/refunds")
    assert not picker.covered_by(
        [EndpointPattern("POST /v1/refunds"), EndpointPattern("GET /v1/refunds")], wanted
    )
    every = [EndpointPattern(f"{m} /v1/refunds") for m in ("GET", "POST", "DELETE")]
    assert picker.covered_by(every, wanted)


# --- permissions -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "resource", "level"),
    [("charge:write", "charge", Level.WRITE), ("payment_intent_read", "payment_intent", Level.READ)],
)
def test_permission_parse(text: str, resource: str, level: Level) -> None:
    assert Permission.parse(text) == Permission(resource=resource, level=level)


@pytest.mark.parametrize("text", ["charge", "charge:admin", "charge_delete", ":read", ""])
def test_permission_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a permission"):
        Permission.parse(text)


def test_write_satisfies_read_but_not_the_reverse() -> None:
    (w, r) = perms("refund:write", "refund:read")
    assert w.satisfies(r) and not r.satisfies(w)
    assert not w.satisfies(Permission.parse("charge:read"))


@pytest.mark.parametrize(
    ("use_cases", "expected"),
    [
        (["support-refunds"], {"refund_write", "charge_read", "payment_intent_read", "customer_read"}),
        (["dispute-handler"], {"dispute_write", "charge_read", "file_write"}),
        (["catalog-manager"], {"product_write", "plan_write"}),
        (["connect-onboarding"], {"connected_account_write", "account_link_write"}),
        (["payout-reconciler"], {"payout_read", "balance_read", "charge_read", "refund_read"}),
        # write on a resource absorbs read on it
        (
            ["support-refunds", "payout-reconciler"],
            {
                "refund_write",
                "charge_read",
                "payment_intent_read",
                "customer_read",
                "payout_read",
                "balance_read",
            },
        ),
    ],
)
def test_minimum_permissions_for_known_cases(use_cases: list[str], expected: set[str]) -> None:
    assert names(picker.pick(CATALOG, use_cases)) == expected


def test_read_only_analytics_gets_read_only_permissions_and_a_low_score() -> None:
    r = picker.pick(CATALOG, ["readonly-analytics"])
    assert {p.level for p in r.permissions} == {Level.READ}
    assert r.blast_radius.warnings == []
    assert r.blast_radius.band == "low"


def test_unknown_use_case_names_the_known_ones() -> None:
    with pytest.raises(picker.UnknownUseCase, match="support-refunds"):
        picker.pick(CATALOG, ["refund-everything"])


def test_an_endpoint_no_permission_grants_is_reported() -> None:
    with pytest.raises(picker.Uncovered, match="/v1/nothing"):
        picker.permission_for(CATALOG, EndpointPattern("GET /v1/nothing"))


# --- blast radius and warnings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pair",
    [
        ("payment_method:write", "transfer:write"),
        ("connected_account:write", "payout:write"),
        ("connected_account:write", "transfer:write"),
        ("customer:write", "charge:write"),
        ("charge:write", "refund:write"),
    ],
)
def test_dangerous_pairs_warn_and_weigh(pair: tuple[str, str]) -> None:
    alone = [picker.blast_radius(CATALOG, perms(p)) for p in pair]
    both = picker.blast_radius(CATALOG, perms(*pair))
    assert all(a.warnings == [] for a in alone)
    assert [w.permissions for w in both.warnings] == [[Permission.parse(p).name for p in pair]]
    assert both.score == sum(a.score for a in alone) + both.warnings[0].penalty


def test_read_level_does_not_complete_a_dangerous_pair() -> None:
    assert picker.blast_radius(CATALOG, perms("payment_method:read", "transfer:write")).warnings == []


def test_score_follows_the_documented_formula() -> None:
    r = picker.blast_radius(CATALOG, perms("payout:write", "balance:read", "charge:read"))
    payout, balance, charge = (CATALOG.resources[n] for n in ("payout", "balance", "charge"))
    penalty = next(
        d.penalty for d in CATALOG.dangerous if d.requires == perms("payout:write", "balance:read")
    )
    assert r.score == payout.write_weight + balance.read_weight + charge.read_weight + penalty
    assert r.band == ("high" if r.score >= 30 else "medium" if r.score >= 10 else "low")
    assert picker.blast_radius(CATALOG, perms(*(f"{n}:write" for n in CATALOG.resources))).band == "high"
    assert picker.blast_radius(CATALOG, perms("balance:read")).band == "low"


def test_irreversible_money_movement_weighs_most() -> None:
    top = max(r.write_weight for r in CATALOG.resources.values())
    assert (
        {n for n, r in CATALOG.resources.items() if r.write_weight == top}
        == {n for n, r in CATALOG.resources.items() if r.irreversible}
        == {"payout", "transfer", "treasury_outbound_payment", "treasury_outbound_transfer"}
    )


@pytest.mark.parametrize("name", sorted(CATALOG.use_cases))
def test_no_single_use_case_needs_a_dangerous_combination(name: str) -> None:
    assert picker.pick(CATALOG, [name]).blast_radius.warnings == []


def test_combining_use_cases_can_create_a_dangerous_combination() -> None:
    r = picker.pick(CATALOG, ["customer-onboarding", "billing-collections"])
    assert ["customer_write", "payment_intent_write"] in [w.permissions for w in r.blast_radius.warnings]


# --- the SpendPolicy ---------------------------------------------------------------------------------------


def _load_generated(policy: dict[str, object], tmp_path: Path) -> SpendPolicySpec:
    f = tmp_path / "policy.yaml"
    f.write_text(yaml.safe_dump(policy, sort_keys=False))
    (obj,) = load_path(f).policies.values()
    return obj.spec


@pytest.mark.parametrize("name", sorted(CATALOG.use_cases))
def test_each_generated_policy_loads_and_stays_within_its_key(name: str, tmp_path: Path) -> None:
    r = picker.pick(CATALOG, [name])
    spec = _load_generated(r.policy, tmp_path)
    uc = CATALOG.use_case(name)
    assert spec.allow == uc.allow and spec.params == uc.params
    assert (
        spec.daily_cap_micro_usd
        == SpendPolicySpec(
            vendor="stripe", daily_cap_usd=uc.daily_cap_usd, allow=uc.allow
        ).daily_cap_micro_usd
    )
    assert picker.check_policy(CATALOG, spec, perms(*names(r))) == []


def test_a_policy_for_several_use_cases_is_their_union(tmp_path: Path) -> None:
    r = picker.pick(
        CATALOG, ["support-refunds", "billing-collections", "support-refunds"], namespace="agents"
    )
    assert r.use_cases == ["support-refunds", "billing-collections"]
    spec = _load_generated(r.policy, tmp_path)
    a, b = CATALOG.use_case("support-refunds"), CATALOG.use_case("billing-collections")
    assert set(spec.allow) == set(a.allow) | set(b.allow)
    assert len(spec.allow) == len(set(spec.allow))
    assert _rules(spec.params) == _rules(a.params) | _rules(b.params)
    assert spec.daily_cap_micro_usd == 2_500_000_000  # $500 + $2000
    assert r.policy["metadata"] == {"name": "support-refunds-billing-collections", "namespace": "agents"}


def test_rules_two_use_cases_put_on_one_parameter_are_reported() -> None:
    r = picker.pick(CATALOG, ["billing-collections", "payment-capture"])
    (conflict,) = r.rule_conflicts
    assert "POST /v1/payment_intents amount" in conflict and "50000" in conflict and "20000" in conflict
    assert picker.pick(CATALOG, ["support-refunds", "billing-collections"]).rule_conflicts == []


def test_every_use_case_at_once_still_validates(tmp_path: Path) -> None:
    r = picker.pick(CATALOG, sorted(CATALOG.use_cases), policy_name="everything")
    spec = _load_generated(r.policy, tmp_path)
    assert set(spec.allow) == {e for uc in CATALOG.use_cases.values() for e in uc.allow}


def test_stripe_cli_lines_grant_each_permission() -> None:
    r = picker.pick(CATALOG, ["dispute-handler"])
    assert r.stripe_cli[0] == "stripe apps set api-access-type restricted_api_key"
    granted = [line.split('"')[1] for line in r.stripe_cli[1:]]
    assert granted == [p.permission for p in r.permissions]


# --- checking a policy against a key -----------------------------------------------------------------------


def _spec(*allow: str) -> SpendPolicySpec:
    return SpendPolicySpec(vendor="stripe", daily_cap_usd="10", allow=list(allow))


def test_check_catches_an_over_broad_policy() -> None:
    key = perms("refund:write", "charge:read")
    gaps = picker.check_policy(
        CATALOG, _spec("POST /v1/refunds", "GET /v1/charges/*", "POST /v1/**", "GET /v1/payouts"), key
    )
    assert [(g.endpoint, g.needs) for g in gaps] == [
        ("POST /v1/**", None),
        ("GET /v1/payouts", "payout_read"),
    ]


def test_check_passes_when_the_key_covers_everything() -> None:
    key = perms("refund:write", "charge:read")
    assert (
        picker.check_policy(CATALOG, _spec("POST /v1/refunds", "GET /v1/refunds/*", "GET /v1/charges"), key)
        == []
    )


def test_check_refuses_other_vendors_and_unknown_resources() -> None:
    spec = SpendPolicySpec(vendor="resend", daily_cap_usd="1", allow=["POST /emails"])
    with pytest.raises(ValueError, match="only stripe"):
        picker.check_policy(CATALOG, spec, perms("charge:read"))
    with pytest.raises(ValueError, match="unknown Stripe permission resource"):
        picker.check_policy(CATALOG, _spec("GET /v1/charges"), perms("chargez:read"))


# Families of the route table whose every route the picker can grant: the money-moving ones and those
# agents use every day. (Test helpers, /v2, OAuth and account-wide settings have no entry yet.)
PICKER_FAMILIES = {
    "charges", "refunds", "disputes", "payment intents", "payouts", "transfers", "top-ups", "application fees",
    "balance", "customers", "invoices", "invoice items", "credit notes", "subscriptions", "subscription items",
    "subscription schedules", "quotes", "credit grants", "billing usage", "setup intents", "issuing",
    "treasury", "terminal", "climate", "forwarding", "files",
}  # fmt: skip


def test_every_route_of_the_money_moving_and_everyday_families_has_a_permission() -> None:
    from tollgate.vendors.stripe import catalog, endpoints

    rows = catalog.parse_csv((ROOT / "src/tollgate/vendors/stripe/routes.csv").read_text())
    missing = []
    for r in rows:
        if r.family in PICKER_FAMILIES:
            wanted = EndpointPattern(f"{r.method} {endpoints.example_path(r.template)}")
            try:
                picker.permission_for(CATALOG, wanted)
            except picker.Uncovered:
                missing.append(f"{r.method} {r.template}")
    assert missing == []
