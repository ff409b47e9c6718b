"""A vendor's route table: method + path template → endpoint name, pricing rule and scope rule.

Each vendor lists its routes in its own endpoints.py; matching is the same for all of them. A path no route
knows is still named: a read is free, a write is unpriced (denied, never guessed)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tollgate.vendors.base import Endpoint


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/v1/charges/{id}/capture": a `{name}` is one path segment in the table's id grammar
    name: str
    pricing: str
    scope: str

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


class RouteTable:
    def __init__(self, routes: Iterable[Route], *, id_pattern: str, unknown_scope: str) -> None:
        """`id_pattern`: the vendor's id grammar as a regex (no anchors), e.g. "[a-z]+_[A-Za-z0-9]+"; a
        segment outside it matches no `{placeholder}` (so `/v1/charges/search` is no charge);
        `unknown_scope`: the scope rule of a path no route knows."""
        self.routes = tuple(routes)
        self.unknown_scope = unknown_scope
        self._compiled = tuple((r, _compile(r.template, id_pattern)) for r in self.routes)

    def match(self, method: str, path: str) -> Endpoint:
        method = method.upper()
        for route, regex in self._compiled:
            if route.method == method and (m := regex.match(path)):
                return Endpoint(
                    route.method, route.template, route.name, route.pricing, route.scope, m.groupdict()
                )
        if method in ("GET", "HEAD"):
            return Endpoint(method, path, "unknown.read", "free", self.unknown_scope)
        return Endpoint(method, path, "unknown.write", "unpriced", self.unknown_scope)


def _compile(template: str, id_pattern: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>{id_pattern})", re.escape(template))
    return re.compile(f"^{pattern}$")


def _segment(template_segment: str) -> re.Pattern[str]:
    # '{Sid}.json' admits 'SM1.json' and so on: a `{name}` is any run of characters but '/'.
    return re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template_segment)))
