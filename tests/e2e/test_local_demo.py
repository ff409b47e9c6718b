"""localstripe's demo data (tollgate.local.demo): what the README's examples refund is really there, and
comes back when the supervisor restarts a localstripe that died (it keeps everything in memory)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import stripe
from tests.support.gateway_faults import eventually

from tollgate.local.demo import CHARGES, CUSTOMER_EMAIL, Demo
from tollgate.local.gateway import GatewayOptions, LocalGateway


def assert_in_localstripe(gateway: LocalGateway, demo: Demo) -> None:
    direct = stripe.StripeClient("sk_test_demo_check", base_addresses={"api": gateway.upstreams["stripe"]})
    assert direct.v1.customers.retrieve(demo.customer).email == CUSTOMER_EMAIL
    listed = {c.description: (c.id, c.amount, c.customer, c.paid) for c in direct.v1.charges.list().data}
    expected = {d: (cid, amount, demo.customer, True) for d, (cid, amount) in demo.charges.items()}
    assert listed == expected
    assert {d: a for d, (_, a) in demo.charges.items()} == dict(CHARGES)


def test_the_demo_data_is_in_localstripe_and_comes_back_after_a_restart(tmp_path: Path) -> None:
    options = GatewayOptions(localstripe=True, demo_data=True, audit=False, workdir=tmp_path)
    with LocalGateway(options) as gw:
        first = gw.demo
        assert first is not None
        assert_in_localstripe(gw, first)
        assert gw.localstripe is not None and gw.localstripe.pid is not None
        os.kill(gw.localstripe.pid, signal.SIGKILL)
        again = eventually(lambda: gw.demo is not first and gw.demo, timeout=60, what="new demo data")
        assert again.customer != first.customer  # a new localstripe, seeded anew
        assert_in_localstripe(gw, again)
