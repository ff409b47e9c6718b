"""A vendor's route table: method + path template → endpoint name, pricing rule and scope rule.

Each vendor lists its routes in its own endpoints.py; matching is the same for all of them. A path no route
knows is still named: a read is free, a write is unpriced (denied, never guessed).

Routes are indexed by method, segment count and first two segments, so a table of hundreds of routes is
matched by trying only the few that share them; within a bucket, literal segments win over placeholders
(`/v1/invoices/create_preview` is no invoice id, though it is in the id grammar)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType

from tollgate.record import record
from tollgate.vendors.base import Endpoint


@record
class Route:
    method: str
    template: str  # "/v1/charges/{id}/capture": a `{name}` is one path segment in the table's id grammar
    name: str
    pricing: str
    scope: str
    reason: str = ""  # why an unpriced route is refused, and what would make it free
    api: str = "api"  # which of the vendor's hosts serves it (Stripe: api, files, connect, meter_events)

    def allowed_by(self, method: str, segments: Sequence[str]) -> bool:
        """Whether an allowlist entry (its method, or '*', and its path segments: a literal, '*' for one
        segment, a final '**' for the rest) lets some call to this route through."""
        if method not in ("*", self.method):
            return False
        own = [s for s in self.template.split("/") if s]
        for i, seg in enumerate(segments):
            if seg == "**":
                return True
            if i >= len(own) or not (seg == "*" or _segment(own[i]).fullmatch(seg)):
                return False
        return len(own) == len(segments)


_Key = tuple[str, int, str, str]


class RouteTable:
    def __init__(self, routes: Iterable[Route], *, id_pattern: str, unknown_scope: str) -> None:
        """`id_pattern`: the vendor's id grammar as a regex (no anchors), e.g. "[a-z]+_[A-Za-z0-9]+"; a
        segment outside it matches no `{placeholder}` (so `/v1/charges/search` is no charge);
        `unknown_scope`: the scope rule of a path no route knows."""
        self.routes = tuple(routes)
        self.unknown_scope = unknown_scope
        self._index: dict[_Key, list[tuple[Route, re.Pattern[str]]]] = {}
        for route in sorted(self.routes, key=_specificity):
            self._index.setdefault(_key(route.method, route.template), []).append(
                (route, _compile(route.template, id_pattern))
            )
        # Each check looks its path up twice (to parse the request, then to decide on it), and agents
        # call the same few paths again and again. Bounded: paths that carry ids come and go.
        self._found = lru_cache(maxsize=1024)(self._search)
        self._matched = lru_cache(maxsize=1024)(self._endpoint)

    def find(self, method: str, path: str) -> tuple[Route, Mapping[str, str]] | None:
        return self._found(method.upper(), path)

    def match(self, method: str, path: str) -> Endpoint:
        return self._matched(method.upper(), path)

    def _search(self, method: str, path: str) -> tuple[Route, Mapping[str, str]] | None:
        segments = path.split("/")
        head = ([*segments[1:3], "", ""])[:2]
        # Literal buckets before placeholder ones: the same order as _specificity within a bucket.
        for first in (head[0], "*"):
            for second in (head[1], "*"):
                for route, regex in self._index.get((method, len(segments), first, second), ()):
                    if m := regex.fullmatch(path):
                        return route, MappingProxyType(m.groupdict())  # shared by every caller: read-only
        return None

    def _endpoint(self, method: str, path: str) -> Endpoint:
        if found := self._found(method, path):
            route, ids = found
            return Endpoint(
                route.method, route.template, route.name, route.pricing, route.scope, ids, route.reason
            )
        if method in ("GET", "HEAD"):
            return Endpoint(method, path, "unknown.read", "free", self.unknown_scope)
        return Endpoint(method, path, "unknown.write", "unpriced", self.unknown_scope)


def _key(method: str, template: str) -> _Key:
    """Bucket of a template: its method, segment count and first two segments ('*' for a placeholder)."""
    segments = template.split("/")
    head = ["*" if seg.startswith("{") else seg for seg in ([*segments[1:3], "", ""])[:2]]
    return method, len(segments), head[0], head[1]


def _specificity(route: Route) -> tuple[int, ...]:
    return tuple(1 if s.startswith("{") else 0 for s in route.template.split("/"))


def _compile(template: str, id_pattern: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>{id_pattern})", re.escape(template))
    return re.compile(f"^{pattern}$")


def _segment(template_segment: str) -> re.Pattern[str]:
    # '{Sid}.json' admits 'SM1.json' and so on: a `{name}` is any run of characters but '/'.
    return re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template_segment)))
