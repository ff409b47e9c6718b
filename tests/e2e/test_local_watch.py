"""`tollgate local` follows its manifests folder: what an edit does to the very next call, through the
real gateway (Redis, ext_authz, Envoy, the audit, localstripe), as `kubectl apply/delete` does in a
cluster. Each edit is waited for through the watcher's own count of applied (or refused) changes, so
no test depends on how fast the machine is; bench/watch_lag.py measures that."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import stripe

from tollgate.local.gateway import GatewayOptions, LocalGateway

POLICY = """\
apiVersion: tollgate.dev/v1alpha1
kind: SpendPolicy
metadata: {name: refunds, namespace: agents}
spec:
  vendor: stripe
  dailyCapUsd: "{cap}"
  allow: [POST /v1/refunds, GET /v1/balance]
"""
KEY = """\
apiVersion: tollgate.dev/v1alpha1
kind: VaultKey
metadata: {{name: {name}, namespace: agents}}
spec:
  policyRef: {{name: refunds}}
  vendorKeySecretRef: {{name: stripe-key, key: api-key}}
  suspended: {suspended}
"""
SECRET = """\
apiVersion: v1
kind: Secret
metadata: {name: stripe-key, namespace: agents}
stringData: {api-key: sk_test_tollgate_watch}
"""


class Folder:
    """The manifests folder and the gateway following it; `edit` returns once the change was handled."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.gateway: LocalGateway
        self.followed: list[list[str]] = []
        self.refused: list[list[str]] = []

    def write(self, name: str, text: str) -> None:
        (self.path / name).write_text(text)

    def edit(self, change: Callable[[], None], *, applies: bool = True) -> None:
        watcher = self.gateway.watcher
        assert watcher is not None
        applied, refused = watcher.applied, watcher.refused
        change()
        if applies:
            assert watcher.wait(applied=applied + 1, timeout_s=30), "the edit was not applied"
        else:
            assert watcher.wait(refused=refused + 1, timeout_s=30), "the broken edit was not reported"
        assert (watcher.applied, watcher.refused) == (
            (applied + 1, refused) if applies else (applied, refused + 1)
        )

    def agent(self, key: str = "agents/bot") -> stripe.StripeClient:
        token = self.gateway.tokens[key]
        return stripe.StripeClient(token, base_addresses={"api": self.gateway.base_url("stripe")})


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Folder]:
    f = Folder(tmp_path / "manifests")
    f.path.mkdir()
    f.write("policy.yaml", POLICY.replace("{cap}", "100"))
    f.write("bot.yaml", KEY.format(name="bot", suspended="false"))
    f.write("secret.yaml", SECRET)
    options = GatewayOptions(
        manifests=f.path,
        localstripe=True,
        watch=True,
        workdir=tmp_path / "work",
        on_follow=f.followed.append,
        on_refused=f.refused.append,
    )
    with LocalGateway(options) as gw:
        f.gateway = gw
        yield f


def test_deleting_a_vault_key_file_refuses_the_next_call(folder: Folder) -> None:
    agent = folder.agent()
    assert agent.v1.balance.retrieve().available is not None
    folder.edit(lambda: (folder.path / "bot.yaml").unlink())
    with pytest.raises(stripe.AuthenticationError) as exc:
        agent.v1.balance.retrieve()
    assert exc.value.error is not None and exc.value.error.code == "tollgate_key_revoked"
    assert folder.followed[-1] == ["agents/bot: deleted, revoked: refused from the next call"]


def test_suspending_a_key_refuses_the_next_call_and_resuming_keeps_its_token(folder: Folder) -> None:
    agent = folder.agent()
    token = folder.gateway.tokens["agents/bot"]
    folder.edit(lambda: folder.write("bot.yaml", KEY.format(name="bot", suspended="true")))
    with pytest.raises(stripe.AuthenticationError) as exc:
        agent.v1.balance.retrieve()
    assert exc.value.error is not None and exc.value.error.code == "tollgate_key_suspended"
    folder.edit(lambda: folder.write("bot.yaml", KEY.format(name="bot", suspended="false")))
    assert folder.gateway.tokens["agents/bot"] == token  # the agent's key works again as it was
    assert agent.v1.balance.retrieve().available is not None


def test_a_broken_edit_is_reported_and_the_last_good_state_stays(folder: Folder) -> None:
    agent = folder.agent()
    folder.edit(lambda: folder.write("policy.yaml", POLICY.replace("{cap}", "-1")), applies=False)
    assert any("policy.yaml" in p and "spec.dailyCapUsd" in p for p in folder.refused[-1]), folder.refused
    folder.edit(lambda: folder.write("bot.yaml", "spec: [unclosed\n"), applies=False)
    assert any("bot.yaml" in p and "not valid YAML" in p for p in folder.refused[-1]), folder.refused
    # Neither edit reached the store: the key still works, under the cap of the last good policy.
    assert agent.v1.balance.retrieve().available is not None
    assert folder.gateway.tokens.keys() == {"agents/bot"}

    def mend() -> None:
        folder.write("policy.yaml", POLICY.replace("{cap}", "100"))
        folder.write("bot.yaml", KEY.format(name="bot", suspended="true"))

    folder.edit(mend)
    with pytest.raises(stripe.AuthenticationError):
        agent.v1.balance.retrieve()  # the folder loads again, and is followed again


def test_a_lowered_cap_applies_to_the_next_call(folder: Folder) -> None:
    direct = stripe.StripeClient(
        "sk_test_tollgate_watch", base_addresses={"api": folder.gateway.upstreams["stripe"]}
    )
    ch = direct.v1.charges.create(params={"amount": 5000, "currency": "usd", "source": "pm_card_visa"})
    agent = folder.agent()
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 1000})
    folder.edit(lambda: folder.write("policy.yaml", POLICY.replace("{cap}", "15")))
    with pytest.raises(stripe.CardError) as exc:
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 1000})  # $10 spent + $10 > $15
    assert exc.value.error is not None and exc.value.error.code == "tollgate_cap_exceeded"


def test_a_new_key_file_is_served_with_its_token_reported(folder: Folder) -> None:
    folder.edit(lambda: folder.write("second.yaml", KEY.format(name="second", suspended="false")))
    token = folder.gateway.tokens["agents/second"]
    assert folder.followed[-1] == [f"agents/second: ready, vault key {token}"]
    assert folder.agent("agents/second").v1.balance.retrieve().available is not None
    assert (
        folder.agent("agents/bot").v1.balance.retrieve().available is not None
    )  # the other key is untouched
