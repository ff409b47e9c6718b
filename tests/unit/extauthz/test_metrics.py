"""ext_authz's own metric families expose what prometheus_client's Counter and Histogram would, sample
for sample, so dashboards, alert rules and queries read them unchanged."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tollgate_extauthz.metrics import Family, Metrics

BOUNDS = (0.00025, 0.001, 0.5, 1.0)
# On a bound, between bounds, below the first, past the last: each lands where `le` says.
VALUES = (0.00025, 0.0003, 0.0, 0.75, 1.0, 3.0, 0.001)


def _samples(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if not line.startswith("#") and "_created" not in line)


def test_a_counter_family_exposes_what_a_prometheus_counter_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    family = Family("t_calls", "Calls.", ["vendor", "rule"], ours)
    counter = Counter("t_calls", "Calls.", ["vendor", "rule"], registry=theirs)
    for labels, amount in ((("stripe", "a"), 1), (("stripe", "a"), 2.5), (("twilio", "b"), 7_000_000)):
        family.labels(*labels).inc(amount)
        counter.labels(*labels).inc(amount)
    assert _samples(ours) == _samples(theirs)
    assert "t_calls_total" in generate_latest(ours).decode()


def test_a_histogram_family_exposes_what_a_prometheus_histogram_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    family = Family("t_seconds", "Time.", ["vendor"], ours, BOUNDS)
    histogram = Histogram("t_seconds", "Time.", ["vendor"], buckets=BOUNDS, registry=theirs)
    for i, value in enumerate(VALUES):
        vendor = "stripe" if i % 3 else "resend"
        family.labels(vendor).observe(value)
        histogram.labels(vendor).observe(value)
    assert _samples(ours) == _samples(theirs)


def test_the_check_path_metrics_keep_their_names_and_types() -> None:
    m = Metrics()
    m.decisions.labels("stripe", "allow", "tollgate_allowed").inc()
    m.check_seconds.labels("stripe").observe(0.0004)
    m.cap_share.labels("stripe", "team/p").observe(0.8)
    m.reserved.labels("stripe", "team/p").inc(7_000_000)
    get = m.registry.get_sample_value
    assert (
        get("tollgate_decisions_total", {"vendor": "stripe", "decision": "allow", "rule": "tollgate_allowed"})
        == 1
    )
    assert get("tollgate_check_duration_seconds_bucket", {"vendor": "stripe", "le": "0.0005"}) == 1
    assert get("tollgate_check_duration_seconds_bucket", {"vendor": "stripe", "le": "0.00025"}) == 0
    assert get("tollgate_cap_spent_ratio_bucket", {"vendor": "stripe", "policy": "team/p", "le": "0.8"}) == 1
    assert get("tollgate_cap_spent_ratio_count", {"vendor": "stripe", "policy": "team/p"}) == 1
    assert get("tollgate_reserved_micro_usd_total", {"vendor": "stripe", "policy": "team/p"}) == 7_000_000
    assert "# TYPE tollgate_check_duration_seconds histogram" in generate_latest(m.registry).decode()


def test_a_child_is_kept_and_the_wrong_number_of_labels_is_refused() -> None:
    m = Metrics()
    assert m.replays.labels("stripe") is m.replays.labels("stripe")
    with pytest.raises(ValueError, match="expected labels"):
        m.replays.labels("stripe", "extra")


def test_a_second_family_of_the_same_name_is_refused_at_registration() -> None:
    registry = CollectorRegistry()
    Family("t_calls", "Calls.", ["vendor"], registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Family("t_calls", "Calls.", ["vendor"], registry)
