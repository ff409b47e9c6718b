"""Stripe's agent toolkit (`stripe-agent-toolkit`, PyPI) through Tollgate, with only its key and API base
changed: the vault key as its secret key, the gateway as stripe-python's `api_base`.

Its tools are called the way every framework wrapper it ships calls them (OpenAI Agents, LangChain,
CrewAI): the model's JSON arguments validated against the tool's `args_schema`, then
`StripeAPI.run(method, **arguments)`. No model is needed to prove the governance: a refund within the cap
moves money, the one over it is refused with Tollgate's rule code and message, which is what the agent
reads back as the tool's result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from stripe_agent_toolkit import functions
from stripe_agent_toolkit.api import StripeAPI
from stripe_agent_toolkit.configuration import is_tool_allowed
from stripe_agent_toolkit.tools import tools
from tests.e2e.conftest import NAMESPACE, Deploy

from tollgate.local.gateway import LocalGateway

# What the agent may do, as the toolkit's own configuration says it; Tollgate enforces the rest.
CONFIGURATION: dict[str, Any] = {"actions": {"refunds": {"create": True}, "balance": {"read": True}}}


class StripeAPI15(StripeAPI):
    """The toolkit's StripeAPI for stripe-python 15 and later, whose objects are no longer dicts: 0.6.1
    answers with `json.dumps(result)`, which then raises after the call went through."""

    def run(self, method: str, *args: Any, **kwargs: Any) -> str:
        if method not in {t["method"] for t in tools}:
            raise ValueError("Invalid method " + method)
        result = getattr(functions, method)(self._context, *args, **kwargs)
        return json.dumps(result, default=lambda o: o.to_dict())


class Agent:
    """The tool loop of an agent framework, without the model: the model's arguments in, the tool's
    result (or the error the framework hands back to the model) out."""

    def __init__(self, secret_key: str) -> None:
        self.api = StripeAPI15(secret_key=secret_key, context=None)
        self.tools = {t["method"]: t for t in tools if is_tool_allowed(t, CONFIGURATION)}

    def call(self, method: str, arguments: str) -> dict[str, Any]:
        tool = self.tools[method]
        args = tool["args_schema"].model_validate_json(arguments).model_dump(exclude_none=True)
        try:
            return {"result": json.loads(self.api.run(method, **args))}
        except stripe.StripeError as e:  # what the framework turns into the tool's answer to the model
            code = e.error.code if e.error is not None else None
            return {"error": str(e), "code": code, "status": e.http_status}


@pytest.fixture
def toolkit_globals(monkeypatch: pytest.MonkeyPatch, gateway: LocalGateway) -> Iterator[None]:
    # The toolkit sets stripe-python's module globals (api_key, app_info); the test puts them back after.
    monkeypatch.setattr(stripe, "api_key", None)
    monkeypatch.setattr(stripe, "app_info", None)
    # The one line a deployment adds: stripe-python's API base is the gateway.
    monkeypatch.setattr(stripe, "api_base", gateway.base_url("stripe"))
    yield


def paid_intent(direct: stripe.StripeClient, amount: int) -> str:
    pi = direct.v1.payment_intents.create(
        params={"amount": amount, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert pi.status == "succeeded"
    return pi.id


def test_the_toolkits_refund_tool_refunds_within_the_cap_and_the_agent_reads_tollgates_refusal_over_it(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway, toolkit_globals: None
) -> None:
    deploy({"dailyCapUsd": "20", "allow": ["POST /v1/refunds", "GET /v1/balance"]})
    token = gateway.tokens[f"{NAMESPACE}/bot"]
    assert not token.startswith("sk_")  # the agent never holds the Stripe key
    agent = Agent(token)
    assert set(agent.tools) == {"create_refund", "retrieve_balance"}
    pi = paid_intent(direct, 5000)

    done = agent.call("create_refund", json.dumps({"payment_intent": pi, "amount": 1500}))
    assert done["result"]["object"] == "refund" and done["result"]["amount"] == 1500

    over = agent.call("create_refund", json.dumps({"payment_intent": pi, "amount": 600}))
    assert "result" not in over, over
    assert over["status"] == 402, over
    assert over["code"] == "tollgate_cap_exceeded"
    assert "$15.00 of $20.00" in over["error"] and "not a card decline" in over["error"]

    refunds = direct.v1.refunds.list(params={"payment_intent": pi}).data
    assert [r.amount for r in refunds] == [1500]  # nothing moved for the refused one

    # what still fits passes; a read is free
    fits = agent.call("create_refund", json.dumps({"payment_intent": pi, "amount": 500}))
    assert fits["result"]["amount"] == 500
    assert "available" in agent.call("retrieve_balance", "{}")["result"]


def test_a_tool_outside_the_policy_is_refused_with_the_rule_and_the_endpoint_named(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway, toolkit_globals: None
) -> None:
    deploy({"dailyCapUsd": "20", "allow": ["GET /v1/balance"]})
    token = gateway.tokens[f"{NAMESPACE}/bot"]
    pi = paid_intent(direct, 1000)
    over = Agent(token).call("create_refund", json.dumps({"payment_intent": pi, "amount": 100}))
    assert over["status"] == 403 and over["code"] == "tollgate_endpoint_not_allowed"
    assert "POST /v1/refunds" in over["error"]
    assert direct.v1.refunds.list(params={"payment_intent": pi}).data == []
