"""What the vendor did, read by a real Envoy from the vendor's answer (capture.lua) into the access log:
the top-level members only, bounded, never a header or a key, and nothing from an answer that is not a
plain JSON success."""

from __future__ import annotations

import json
from typing import Any

import httpx
from tests.integration import test_envoy_contract as contract
from tests.integration.test_envoy_contract import AGENT_TOKEN, REAL_KEY, Gateway, log_entry
from tests.support.recorder import Reply

from tollgate.envoy.capture import LIMIT_BYTES

# The contract module's gateway (real Envoy, fake ext_authz that allows, recording upstream), one per module.
upstream = contract.upstream
module_gateway = contract.module_gateway
gateway = contract.gateway


async def post(gateway: Gateway, path: str = "/stripe/v1/refunds") -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        r = await client.post(
            gateway.url + path,
            content=b"amount=1",
            headers={"authorization": AGENT_TOKEN, "accept-encoding": "gzip"},
        )
    entry, _ = log_entry(gateway, r.headers["x-request-id"])
    return entry


REFUND = {
    "id": "re_123",
    "object": "refund",
    "amount": 750,
    "balance_transaction": {"id": "txn_nested", "amount": 99999, "object": "balance_transaction"},
    "charge": "ch_1",
    "currency": "usd",
    "metadata": {"status": "nested", "id": "nested"},
    "status": "succeeded",
    "note": 'a string with "quotes", braces } and a colon: here',
}


async def test_top_level_members_of_the_vendors_answer_reach_the_access_log(gateway: Gateway) -> None:
    gateway.upstream.reply = Reply(200, REFUND)
    entry = await post(gateway)
    assert entry["vendor_response"] == {
        "id": "re_123",
        "object": "refund",
        "amount": "750",
        "currency": "usd",
        "status": "succeeded",
    }
    # the vendor answers uncompressed so its body can be read; the agent's key never reaches the log
    [sent] = gateway.upstream.requests
    assert sent.header("accept-encoding") is None
    assert REAL_KEY.split()[1] not in json.dumps(entry) and AGENT_TOKEN.split()[1] not in json.dumps(entry)


async def test_twilio_shaped_answer_gives_sid_status_and_price(gateway: Gateway) -> None:
    gateway.upstream.reply = Reply(
        201,
        {"account_sid": "AC1", "body": "hi", "price": "-0.00790", "price_unit": "USD", "sid": "SM9",
         "status": "queued", "subresource_uris": {"media": "/x"}},
    )  # fmt: skip
    entry = await post(gateway)
    assert entry["vendor_response"] == {
        "sid": "SM9",
        "status": "queued",
        "price": "-0.00790",
        "price_unit": "USD",
    }


async def test_nothing_is_read_from_an_error_or_a_non_json_answer(gateway: Gateway) -> None:
    gateway.upstream.reply = Reply(402, {"error": {"type": "card_error"}, "id": "re_x"})
    assert (await post(gateway))["vendor_response"] is None
    gateway.upstream.reply = Reply(200, b'{"id": "re_x"}', headers={"content-type": "text/plain"})
    assert (await post(gateway))["vendor_response"] is None


async def test_only_the_first_bytes_of_a_large_answer_are_read_and_the_client_gets_all_of_it(
    gateway: Gateway,
) -> None:
    filler = "x" * (LIMIT_BYTES * 4)
    body = {"id": "ch_early", "filler": filler, "amount": 5}
    gateway.upstream.reply = Reply(200, body)
    async with httpx.AsyncClient() as client:
        r = await client.post(
            gateway.url + "/stripe/v1/charges", content=b"amount=1", headers={"authorization": AGENT_TOKEN}
        )
    assert r.json() == body
    entry, _ = log_entry(gateway, r.headers["x-request-id"])
    assert entry["vendor_response"] == {"id": "ch_early"}


async def test_a_value_outside_the_plain_charset_or_too_long_is_dropped(gateway: Gateway) -> None:
    gateway.upstream.reply = Reply(200, {"id": "re_ok", "status": "a b<script>", "object": "o" * 200})
    assert (await post(gateway))["vendor_response"] == {"id": "re_ok"}
