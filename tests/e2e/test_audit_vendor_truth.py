"""The audit row holds what was asked and what the vendor did: through the real Envoy to localstripe,
each row carries the call's parameters (redacted), the object Stripe created and the amount it says
moved, and a reservation settles to that amount."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from tests.e2e.conftest import REAL_KEY, Deploy
from tests.e2e.test_audit_trail import eventually, rows
from tests.e2e.test_stripe_sdk import REFUNDS, charge
from typer.testing import CliRunner

from tollgate.cli.main import app
from tollgate.local.gateway import LocalGateway

CHARGES = ["POST /v1/charges", "POST /v1/payment_methods", *REFUNDS]


def settled_row(gateway: LocalGateway, run: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        got = rows(gateway, "agent_run_id = :run AND decision = 'allow'", {"run": run})
        return got[0] if got and got[0]["settlement"] else None

    return eventually(done)


def test_a_refund_row_holds_its_parameters_the_refund_id_and_the_amount_stripe_refunded(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    ch = charge(direct, 5000)
    opts: Any = {"headers": {"X-Agent-Run-Id": "run-truth-1"}}
    re = agent.v1.refunds.create(
        params={"charge": ch.id, "amount": 1200, "metadata": {"ticket": "T-9"}}, options=opts
    )
    row = settled_row(gateway, "run-truth-1")
    assert json.loads(row["params"]) == {"amount": "1200", "charge": ch.id, "metadata[ticket]": "T-9"}
    assert (row["vendor_object_id"], row["vendor_object"], row["vendor_state"]) == (
        re.id,
        "refund",
        "succeeded",
    )
    assert (row["vendor_amount_minor"], row["vendor_currency"]) == (1200, "usd")
    assert (row["settlement"], row["cost_micro_usd"], row["settled_micro_usd"]) == (
        "settled",
        12_000_000,
        12_000_000,
    )


def test_a_full_refund_settles_to_what_stripe_says_it_refunded(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    # (localstripe refunds the whole charge even after a partial refund, so the charge starts whole here.)
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    ch = charge(direct, 2000)
    re = agent.v1.refunds.create(
        params={"charge": ch.id}, options={"headers": {"X-Agent-Run-Id": "run-truth-2"}}
    )
    row = settled_row(gateway, "run-truth-2")
    assert "amount" not in json.loads(row["params"])
    assert (row["vendor_object_id"], row["vendor_amount_minor"]) == (re.id, 2000)
    assert row["settled_micro_usd"] == row["cost_micro_usd"] == 20_000_000


def test_a_charge_row_holds_the_charge_id_and_amount_and_never_a_card_number_or_key(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    agent = deploy({"dailyCapUsd": "50", "allow": CHARGES})
    opts: Any = {"headers": {"X-Agent-Run-Id": "run-truth-3"}}
    ch = agent.v1.charges.create(
        params={"amount": 2500, "currency": "usd", "source": "pm_card_visa", "description": "order 7"},
        options=opts,
    )
    row = settled_row(gateway, "run-truth-3")
    assert json.loads(row["params"]) == {
        "amount": "2500", "currency": "usd", "source": "pm_card_visa", "description": "order 7",
    }  # fmt: skip
    assert (row["vendor_object_id"], row["vendor_object"]) == (ch.id, "charge")
    assert (row["vendor_amount_minor"], row["vendor_currency"], row["settled_micro_usd"]) == (
        2500,
        "usd",
        25_000_000,
    )
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "314"}
    pm = agent.v1.payment_methods.create(
        params={"type": "card", "card": card}, options={"headers": {"X-Agent-Run-Id": "run-truth-4"}}
    )
    [row] = eventually(lambda: rows(gateway, "agent_run_id = 'run-truth-4'"))
    assert json.loads(row["params"]) == {
        "type": "card", "card[number]": "[redacted]", "card[cvc]": "[redacted]",
        "card[exp_month]": "12", "card[exp_year]": "2030",
    }  # fmt: skip
    assert row["vendor_object_id"] == pm.id and row["vendor_amount_minor"] is None
    dump = repr(rows(gateway, "1=1"))
    assert REAL_KEY not in dump and "tgk_" not in dump and "4242424242424242" not in dump


def test_reconcile_lists_the_stripe_objects_of_the_day_that_no_row_explains(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    around = charge(direct, 4000)  # made with the real key, around the gateway
    re = agent.v1.refunds.create(
        params={"charge": around.id, "amount": 500}, options={"headers": {"X-Agent-Run-Id": "run-truth-5"}}
    )
    settled_row(gateway, "run-truth-5")
    monkeypatch.setenv("STRIPE_READ_KEY", REAL_KEY)
    day = datetime.now(UTC).date().isoformat()
    args = ["audit", "reconcile", "--day", day, "--db", gateway.audit_url, "--format", "json",
            "--stripe-read-key-env", "STRIPE_READ_KEY", "--stripe-api", gateway.upstreams["stripe"],
            "--stripe-unfiltered"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # something to look at
    missing = {f["vendor_object_id"]: f for f in json.loads(result.stdout) if f["finding"] == "not_in_audit"}
    assert around.id in missing and re.id not in missing
    # localstripe has no amount_captured: what the charge holds now, captured less refunded
    assert (missing[around.id]["vendor_object"], missing[around.id]["vendor_amount_minor"]) == (
        "charge",
        3500,
    )
