"""Twilio: everything Tollgate knows about api.twilio.com (Messages and Calls), behind the Vendor seam. Pure.

Credentials. Twilio authenticates with HTTP Basic `AccountSid:AuthToken` (or `ApiKeySid:Secret`) and also
names the account in every path: `/2010-04-01/Accounts/{AccountSid}/Messages.json`. The agent's SDK is
configured with the real account SID, which is not a secret (every Twilio response echoes it), and with
the vault token as its auth token. The Secret the VaultKey points at holds the real credential as
`AccountSid:AuthToken` (or `SKxxx:secret` for an API key), sent upstream as Basic auth in place of the
agent's. The agent's Basic user name is not trusted for anything.

Why the path is checked, not rewritten. Envoy 1.40 does let ext_authz overwrite `:path` (tried), so the
gateway could swap a placeholder SID for the real one. It does not, because then the vendor would act on
a path other than the one the decision judged, and because the real SID reaches the agent anyway in every
response body (`account_sid`, `uri`, next-page links). Instead the account SID in the path is one of the
call's accounts (like Stripe's `Stripe-Account`), and rule 4 allows only those in the policy's
`connectedAccounts` (required for Twilio): the credential's own account, plus any subaccounts the agent may
use. A SID the credential cannot reach is refused by Twilio itself.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from types import MappingProxyType

from tollgate.policy.rules import ParamValue
from tollgate.vendors import form, wire
from tollgate.vendors.base import (
    Delivery,
    Denial,
    Endpoint,
    Facts,
    Found,
    Invalid,
    Need,
    Rendered,
    Settlement,
    Unpriced,
    Vendor,
)
from tollgate.vendors.observed import Observed
from tollgate.vendors.twilio import endpoints, errors, outcome, redact
from tollgate.vendors.twilio import facts as _facts
from tollgate.vendors.twilio import observed as _observed
from tollgate.vendors.twilio.policy import POLICY

# Twilio's names are PascalCase; list filters end in '<' or '>' (DateSent>=…).
_PARAM_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*[<>]?$")
# The names a decision reads: a case variant of one could be read by Twilio where Tollgate sees none.
_READ = (
    "To",
    "From",
    "Body",
    "MediaUrl",
    "SendAsMms",
    "ContentSid",
    "MessagingServiceSid",
    "Status",
    "StatusCallback",
    "StatusCallbackMethod",
    "Url",
    "Twiml",
    "ApplicationSid",
)
_READ_CASEFOLD = {n.casefold(): n for n in _READ}


def parse_credential(secret: str) -> tuple[str, str]:
    """'ACxxx:token' → ('ACxxx', 'token'); ValueError for anything else (for whoever reads the Secret)."""
    user, sep, password = secret.strip().partition(":")
    if not sep or not user or not password or not user.startswith(("AC", "SK")):
        raise ValueError("a Twilio credential is 'AccountSid:AuthToken' or 'ApiKeySid:Secret'")
    return user, password


def _basic(credential: str) -> str:
    return "Basic " + base64.b64encode(credential.strip().encode()).decode()


class TwilioVendor(Vendor):
    name = "twilio"
    default_urls = MappingProxyType({"api": "https://api.twilio.com"})
    policy = POLICY
    routes = endpoints.ROUTES
    redacted = redact.REDACTED
    captured = _observed.CAPTURED

    def observed(self, fields: Mapping[str, object]) -> Observed:
        return _observed.observed(fields)

    def vault_token(self, headers: Mapping[str, str]) -> str | None:
        # The vault token is the auth token; the user name is whatever SID the SDK was given.
        user, password = wire.basic_credentials(headers) or ("", "")
        return password if user and password else None

    def parse_params(self, w: wire.Wire) -> dict[str, ParamValue]:
        # Twilio repeats a name for a list (MediaUrl=a&MediaUrl=b), so repeats collect.
        where, data = wire.params_source(w)
        if where == "body":
            wire.check_body_encoding(w, "application/x-www-form-urlencoded", "Twilio")
        params = form.repeated(form.pairs(data, where), _PARAM_NAME, where)
        for name in params:
            canonical = _READ_CASEFOLD.get(name.casefold())
            if canonical is not None and canonical != name:
                raise wire.Ambiguous(
                    f"parameter {name!r} differs from Twilio's {canonical!r} only in case; send {canonical!r}"
                )
        return params

    def match(self, method: str, path: str) -> Endpoint:
        return endpoints.match(method, path)

    def accounts(
        self, endpoint: Endpoint, params: Mapping[str, ParamValue], headers: Mapping[str, str]
    ) -> frozenset[str]:
        # An endpoint the table does not know carries the request path as its template.
        sid = endpoint.path_ids.get("AccountSid") or endpoints.account_in_path(endpoint.template)
        return frozenset({sid}) if sid else frozenset()

    def facts(
        self,
        endpoint: Endpoint,
        params: Mapping[str, ParamValue],
        headers: Mapping[str, str],
        found: Found,
        scope_customers: bool,
    ) -> Facts | Need | Invalid | Unpriced:
        return _facts.facts(endpoint, params)

    def upstream_headers(self, vendor_key: str, headers: Mapping[str, str]) -> dict[str, str]:
        return {"authorization": _basic(vendor_key)}

    def deny(self, denial: Denial) -> Rendered:
        return errors.render(denial)

    def settlement(self, delivery: Delivery) -> Settlement:
        return outcome.settlement(delivery)


TWILIO = TwilioVendor()
