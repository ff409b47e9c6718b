"""The seam every vendor implements, and the values that cross it. Pure."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tollgate.money import Money
from tollgate.policy.extension import PolicyExtension
from tollgate.policy.rules import ParamValue
from tollgate.record import record
from tollgate.vendors.observed import Observed
from tollgate.vendors.wire import Wire

if TYPE_CHECKING:  # routes.py builds Endpoints, so it imports this module
    from tollgate.vendors.routes import Route


@record
class Endpoint:
    """One operation of a vendor's API, as matched from method + path."""

    method: str
    template: str  # "/v1/refunds/{id}"
    name: str  # "refunds.create"
    pricing: str  # vendor-specific pricing rule; "free" moves no money
    scope: str  # vendor-specific rule for whom the call touches
    path_ids: Mapping[str, str] = field(default_factory=dict)  # values of {placeholders}
    reason: str = ""  # why an "unpriced" endpoint is refused, and what would make it free


@record
class ObjectRef:
    """A vendor object the gateway must read (with the real key) to price or scope a call."""

    collection: str  # "charges"
    id: str


@record
class Need:
    """Facts cannot be known without reading these objects; `fresh` forbids cached copies (amounts move)."""

    refs: tuple[ObjectRef, ...]
    fresh: bool = False


@record
class Invalid:
    """The request cannot be read exactly or is incomplete; deny with this message."""

    message: str
    param: str | None = None


@record
class Unpriced:
    """The endpoint (or this use of it) may move money Tollgate cannot price; deny rather than guess."""

    message: str


@record
class Usage:
    """Units a call consumes that the policy prices (SMS segments, emails), where the vendor bills per unit.

    The vendor module counts; the grant holds the prices (defaults merged with the policy's), so a policy
    can change a price without Tollgate guessing. A unit with no price denies the call."""

    unit: str  # "sms_segment", "mms", "call", "email"
    quantity: int
    destination: str = ""  # priced by longest prefix ("+1415…"); "" where the price is flat
    hint: str = ""  # how to price it, for the denial when the policy does not


@record
class Facts:
    """What a call does, in the terms rules speak: how much money, whose, on which account."""

    cost: Money | None  # None: moves no money
    customers: frozenset[str] = frozenset()  # customers the call touches
    unscoped: str | None = None  # why the customers can't be told, for a call that does touch customers
    customer_related: bool = False
    recipients: frozenset[str] = frozenset()  # phone numbers or email addresses the call sends to
    usage: tuple[Usage, ...] = ()  # priced by the grant, on top of `cost`


@dataclass
class Found:
    """Objects read from the vendor during one check; `fresh` marks those read for this call (not cached)."""

    objects: dict[ObjectRef, Mapping[str, Any]] = field(default_factory=dict)
    fresh: set[ObjectRef] = field(default_factory=set)

    def get(self, ref: ObjectRef, *, fresh: bool) -> Mapping[str, Any] | None:
        if ref in self.objects and (not fresh or ref in self.fresh):
            return self.objects[ref]
        return None


@record
class Denial:
    """What a vendor's error renderer needs: a stable code, the HTTP status and words for a human."""

    code: str
    status: int
    message: str
    retry: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    # The approval the call waits for or met (rule 7b): a field of the body where the vendor's error shape
    # has room for one, so an agent reads it without parsing the message.
    approval_id: str | None = None


@record
class Rendered:
    status: int
    headers: dict[str, str]
    body: bytes


class Vendor(ABC):
    """The seam every vendor implements. A vendor overrides the abstract methods, and a default only where
    it does more: one that prices every call from the request alone keeps `lookup_path` and `cacheable`,
    one with a single account keeps `accounts`, and one that reads objects with the same headers it sends
    upstream keeps `lookup_headers`."""

    name: str
    # Where its API is served unless configured otherwise: host → base URL. "api" is the main host; any
    # other (Stripe's "files") is the upstream `<name>-<host>` (tollgate.vendors.upstream_name).
    default_urls: Mapping[str, str]
    policy: PolicyExtension = PolicyExtension()  # the policy fields only this vendor reads, and its prices
    routes: tuple[Route, ...] = ()  # the endpoints it knows, for `tollgate check` to flag allow entries
    redacted: frozenset[str] = frozenset()  # parameter names whose values never reach the audit
    # Top-level members of its JSON answers that Envoy keeps for `observed` (tollgate.envoy.capture):
    # scalars that name an object or money, never a secret. None by default: `observed` reads nothing.
    captured: frozenset[str] = frozenset()
    # The header naming the sub-account a call acts in (Stripe-Account), for the audit's connected_account
    # column and, by default, the cache scope; "" where the key reaches one account only.
    account_header: str = ""
    # Headers its decisions read beyond the shared ones (wire.DECISION_HEADERS); with `account_header`,
    # a request that repeats any of them is refused, since the vendor would see every copy.
    decision_headers: frozenset[str] = frozenset()

    def observed(self, fields: Mapping[str, object]) -> Observed:
        """What the vendor's answer says it did, from the few fields Envoy read out of it."""
        return Observed()

    @abstractmethod
    def vault_token(self, headers: Mapping[str, str]) -> str | None:
        """The vault token the agent presented, from wherever this vendor's SDK puts its key."""

    @abstractmethod
    def parse_params(self, w: Wire) -> dict[str, ParamValue]:
        """The parameters, read exactly where and as the vendor reads them, as one flat map; raises
        wire.Ambiguous for anything the vendor could read otherwise."""

    @abstractmethod
    def match(self, method: str, path: str) -> Endpoint:
        """The endpoint; paths the vendor module does not know come back with pricing "unpriced"
        (writes, denied) or "free" with scope "unknown" (reads)."""

    def accounts(
        self, endpoint: Endpoint, params: Mapping[str, ParamValue], headers: Mapping[str, str]
    ) -> frozenset[str]:
        """Connected accounts the call acts on or pays, from the request alone; none by default (one key,
        one account: nothing to choose between)."""
        return frozenset()

    @abstractmethod
    def facts(
        self,
        endpoint: Endpoint,
        params: Mapping[str, ParamValue],
        headers: Mapping[str, str],
        found: Found,
        scope_customers: bool,
    ) -> Facts | Need | Invalid | Unpriced: ...

    def lookup_path(self, ref: ObjectRef) -> str:
        """Path (under the vendor's base URL) that reads `ref`. By default the vendor's facts never ask for
        an object (it prices every call from the request alone), so a lookup is a bug."""
        raise AssertionError(
            f"{self.name} calls are priced from the request alone; nothing is ever looked up"
        )

    def cacheable(self, ref: ObjectRef, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """The part of `obj` that can never change, safe to cache across calls; None (the default): do not
        cache."""
        return None

    @abstractmethod
    def upstream_headers(self, vendor_key: str, headers: Mapping[str, str]) -> dict[str, str]:
        """Headers to set on the forwarded request so the vendor sees the real key."""

    def lookup_headers(self, vendor_key: str, headers: Mapping[str, str]) -> dict[str, str]:
        """Headers for the gateway's own reads of objects the call refers to; the upstream ones by default."""
        return self.upstream_headers(vendor_key, headers)

    def cache_scope(self, headers: Mapping[str, str]) -> str:
        """Within one key, whose objects a lookup reads (Stripe: the connected account a header names).
        Cached objects are kept per scope, so one sub-account's never answer for another's. By default:
        the sub-account `account_header` names, if the vendor has one."""
        return headers.get(self.account_header, "") if self.account_header else ""

    @abstractmethod
    def deny(self, denial: Denial) -> Rendered:
        """The denial in this vendor's own error format, so its SDK raises its usual exception."""

    @abstractmethod
    def settlement(self, delivery: Delivery) -> Settlement:
        """What a forwarded call's outcome proves (its module lists the statuses that mean "not processed")."""


@runtime_checkable
class Idempotent(Protocol):
    """A vendor that runs a request at most once per idempotency key and replays its first result to
    retries (Stripe: the `Idempotency-Key` header, 24 h). Tollgate then counts a retry only once."""

    def idempotency_key(self, method: str, headers: Mapping[str, str]) -> str | None:
        """The key the vendor will deduplicate this request by; None when it will not."""
        ...


def post_idempotency_key(method: str, headers: Mapping[str, str]) -> str | None:
    """The `Idempotency-Key` header of a POST: how Stripe (v1) and Resend both deduplicate."""
    key = headers.get("idempotency-key", "").strip()
    return key if method == "POST" and key else None


class Settlement(StrEnum):
    """What a reservation becomes once the call's outcome is known (settle by evidence)."""

    SETTLED = "settled"  # the vendor did it: the cost stays counted
    RELEASED = "released"  # proven that no money moved: the cost goes back
    UNKNOWN = "unknown"  # no proof either way: the cost stays counted, and someone is told


@record
class Delivery:
    """What is known of a forwarded call's fate, as Envoy saw it (tollgate.envoy.evidence reads it)."""

    vendor_status: int | None  # the status the vendor itself answered; None when it answered nothing
    never_sent: bool = False  # Envoy proves the request never left for the vendor


def settle_by_status(delivery: Delivery, not_processed: frozenset[int]) -> Settlement:
    """The rule every vendor shares: a 2xx settles; a status in the vendor's own `not_processed` list, or a
    request that never left, releases; anything else (5xx, timeout, reset, disconnect) is unknown."""
    status = delivery.vendor_status
    if status is not None:
        if 200 <= status < 300:
            return Settlement.SETTLED
        return Settlement.RELEASED if status in not_processed else Settlement.UNKNOWN
    return Settlement.RELEASED if delivery.never_sent else Settlement.UNKNOWN
