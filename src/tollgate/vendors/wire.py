"""The request as bytes on the wire: the shape rules every vendor's reading builds on. Pure.

The gateway must decide on exactly what the vendor will act on, so a request whose meaning depends on
who reads it is refused (as `Ambiguous`), never interpreted. Each vendor module says what its API
accepts (a media type, a parameter-name grammar); this module holds the mechanics they share:

- Parameters live in one place only: the query string of a GET, HEAD, DELETE or OPTIONS, the body of
  anything else. A body beside a GET, or a query string beside a POST, is refused: servers disagree on
  whether (and with what precedence) they read it.
- A body is read as sent: no Content-Encoding (a compressed body would be judged as its compressed
  bytes while the vendor inflates it) and exactly the media type and charset the vendor takes.
- The path holds only unreserved characters: a percent-escape or a `;` is read differently by
  different servers (Envoy leaves `%63harges` alone; a vendor may decode it to `charges`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from tollgate.record import record


class Ambiguous(ValueError):
    """The request can be read more than one way, or not as the vendor reads it."""


# Methods whose parameters are in the query string; every other method carries them in its body.
QUERY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
# The headers every decision may read; each vendor adds its own (Vendor.decision_headers, gathered by
# tollgate.vendors.decision_headers). Sent twice, a vendor sees two headers while ext_authz would see one
# comma-joined value, so a repeat of any of them is refused.
DECISION_HEADERS = frozenset(
    {"authorization", "content-type", "content-encoding", "idempotency-key", "x-agent-run-id"}
)
# Headers some servers (Rack's MethodOverride, many frameworks) read as the request's real method: a POST
# judged as a POST could run as a DELETE. No SDK sends them.
METHOD_OVERRIDE_HEADERS = frozenset({"x-http-method-override", "x-http-method", "x-method-override"})
_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA = re.compile(rf"^\s*({_TOKEN}/{_TOKEN})\s*((?:;\s*{_TOKEN}\s*=\s*(?:{_TOKEN}|\"[^\"\\]*\")\s*)*)$")
_MEDIA_PARAM = re.compile(rf";\s*({_TOKEN})\s*=\s*({_TOKEN}|\"[^\"\\]*\")\s*")


@record
class Wire:
    """One request as ext_authz received it: the method, the path (Envoy-normalised, vendor prefix
    stripped) and its query string, the headers (lower-case names, one value each), the exact body, and
    the vendor host the route serves."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    api: str = "api"  # which of the vendor's hosts the gateway route serves (Stripe: "api" or "files")

    @property
    def carries_body(self) -> bool:
        return self.method not in QUERY_METHODS


def check_method(headers: Mapping[str, str]) -> None:
    for name in METHOD_OVERRIDE_HEADERS & headers.keys():
        raise Ambiguous(f"header {name} could make the vendor run another method than the one judged")


def check_path(path: str) -> None:
    if not _PATH.fullmatch(path):
        raise Ambiguous(
            "the path may only hold letters, digits and '-._~/' (no percent-escapes, ';' or other "
            "characters a server could decode or split differently)"
        )


def params_source(w: Wire) -> tuple[str, bytes]:
    """('query string', bytes) or ('body', bytes): where this method's parameters are; refused elsewhere."""
    if w.carries_body:
        if w.query:
            raise Ambiguous(f"a {w.method} carries its parameters in the body; send none in the query string")
        return "body", w.body
    if w.body:
        raise Ambiguous(f"a {w.method} carries its parameters in the query string; send no body")
    if not w.query.isascii():
        raise Ambiguous("the query string holds raw non-ASCII characters; percent-encode them as UTF-8")
    return "query string", w.query.encode("ascii")


def check_body_encoding(w: Wire, media_type: str, vendor: str) -> None:
    """A body of exactly `media_type` in UTF-8 (a charset parameter, if any, says utf-8), unencoded."""
    if not w.body:
        return
    encoding = w.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise Ambiguous(
            f"Content-Encoding {encoding!r} is not accepted: send the body uncompressed, so Tollgate reads "
            "the same bytes the vendor acts on"
        )
    raw = w.headers.get("content-type")
    if raw is None:
        raise Ambiguous(f"a body needs Content-Type: {media_type}")
    mime, params = parse_media_type(raw)
    if mime != media_type:
        raise Ambiguous(f"{vendor} takes {media_type} bodies here, not {mime!r}")
    for name, value in params.items():
        if name != "charset" or value.lower() not in ("utf-8", "utf8"):
            raise Ambiguous(
                f"Content-Type parameter {name}={value!r} is not accepted; send UTF-8 with no other parameter"
            )


def parse_media_type(raw: str) -> tuple[str, dict[str, str]]:
    """'application/json; charset="UTF-8"' → ('application/json', {'charset': 'UTF-8'}); a parameter
    given twice, or anything that is not a media type, is refused."""
    m = _MEDIA.fullmatch(raw)
    if not m:
        raise Ambiguous(f"Content-Type {raw!r} is not a media type")
    params: dict[str, str] = {}
    for name, value in _MEDIA_PARAM.findall(m.group(2)):
        key = name.lower()
        if key in params:
            raise Ambiguous(f"Content-Type names {key!r} twice")
        params[key] = value[1:-1] if value.startswith('"') else value
    return m.group(1).lower(), params


def decode_utf8(data: bytes, where: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        raise Ambiguous(f"the {where} starts with a byte-order mark")
    try:
        return data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise Ambiguous(f"the {where} is not UTF-8") from exc


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of `Authorization: Bearer <token>`; None for another scheme, an empty token or no header."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """The user name and password of `Authorization: Basic <base64>`; None for another scheme or no header,
    and for a value that is not base64 of UTF-8 (no token, never a guess)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password
