"""Every (method, path) the installed stripe-python can send, read from the SDK's own source.

The SDK's service classes (`StripeClient().v1…`, `.v2…`) name every method and path; the legacy resource
classes (`stripe.Charge.list_refunds`, …) add a few paths of their own. Both are read with `ast`, never
called, so nothing is sent anywhere. Used by `tollgate dev stripe-routes` and the coverage test."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_REQUEST_CALL = re.compile(r"^_?(static_)?request(_async|_stream|_stream_async)?$")


@dataclass(frozen=True, order=True)
class SdkRoute:
    path: str  # "/v1/charges/{charge}/capture", placeholders as the SDK names them
    method: str  # "POST"
    name: str  # "charges.capture" (v1) or "v2.core.accounts.create"
    api: str  # the SDK's base address: "api", "files", "connect" or "meter_events"


def sdk_version() -> str:
    import stripe

    return str(stripe.VERSION)


@cache
def sdk_routes() -> tuple[SdkRoute, ...]:
    """The installed SDK's routes, one per (method, path), sorted by path then method."""
    import stripe
    from stripe._stripe_service import StripeService

    found: dict[tuple[str, str], SdkRoute] = {}
    client = stripe.StripeClient("sk_test_route_scan")
    for root, prefix in ((client.v1, ""), (client.v2, "v2."), (client.oauth, "oauth.")):
        _walk(root, prefix, found, StripeService, set())
    # Legacy module-style classes: any literal path the services do not already name.
    for file in sorted(Path(stripe.__file__).parent.rglob("*.py")):
        for method, path, api in _literal_requests(ast.parse(file.read_text())):
            found.setdefault((method, path), SdkRoute(path, method, _name_from_path(method, path), api))
    return tuple(sorted(found.values()))


def _walk(
    service: Any, prefix: str, found: dict[tuple[str, str], SdkRoute], base: type, seen: set[int]
) -> None:
    cls = type(service)
    for attr in [a for k in cls.__mro__ for a in getattr(k, "__annotations__", {})]:
        if attr.startswith("_"):
            continue
        sub = getattr(service, attr, None)
        if isinstance(sub, base) and id(sub) not in seen:
            seen.add(id(sub))
            _walk(sub, f"{prefix}{attr}.", found, base, seen)
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_") or name.endswith("_async"):
            continue
        for method, path, api in _literal_requests(ast.parse(textwrap.dedent(inspect.getsource(fn)))):
            found[(method, path)] = SdkRoute(path, method, f"{prefix}{name}", api)


def _literal_requests(tree: ast.AST) -> list[tuple[str, str, str]]:
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or len(node.args) < 2:
            continue
        fn = node.func
        called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
        if not _REQUEST_CALL.match(called):
            continue
        method, path = _literal(node.args[0]), _literal(node.args[1])
        if method and path and path.startswith("/"):
            api = next(
                (
                    k.value.value
                    for k in node.keywords
                    if k.arg == "base_address" and isinstance(k.value, ast.Constant)
                ),
                "api",
            )
            out.append((method.upper(), path, str(api)))
    return out


def _literal(node: ast.expr) -> str | None:
    """A string literal, or the template of `"…{x}…".format(...)`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _literal(node.func.value)
    return None


def _name_from_path(method: str, path: str) -> str:
    words = [s for s in path.split("/")[1:] if not s.startswith("{")]
    if words and words[0] == "v1":
        words = words[1:]
    verb = {"GET": "retrieve" if path.endswith("}") else "list", "DELETE": "delete"}.get(method, "create")
    return ".".join([*words, verb])
