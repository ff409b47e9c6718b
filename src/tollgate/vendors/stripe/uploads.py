"""File uploads: `POST /v1/files`, which stripe-python sends to its second host, files.stripe.com. Pure.

The gateway serves that host under its own prefix (`/stripe-files`), and only the routes the SDK sends
there; every other Stripe call on that prefix, and a file upload on the API prefix, is refused. The body is
multipart/form-data read strictly (vendors/multipart.py): one file part named `file`, text parts only for
the fields Stripe documents, each at most once, no other header, no encoding. Its size is bounded by the
gateway's body limit (`--max-request-bytes`, the chart's `envoy.maxRequestBytes`): a larger upload gets
413 and is never sent. An upload moves no money (free, scope none)."""

from __future__ import annotations

import re

from tollgate.policy.rules import ParamValue
from tollgate.vendors import form, multipart, wire
from tollgate.vendors.routes import Route

ROUTE_NAME = "files.create"
PREFIX = {"files": "/stripe-files", "api": "/stripe"}
# The fields of POST /v1/files besides the file itself.
_FIELDS = re.compile(r"^(purpose|expand|file_link_data)$")


def check_host(w: wire.Wire, route: Route | None) -> None:
    """The call must come in on the gateway prefix of the Stripe host that serves it."""
    served = route.api if route is not None else "api"
    if w.api == served:
        return
    if w.api == "api":
        raise wire.Ambiguous(
            f"{w.method} {w.path} is served by Stripe's {served} host: send it to the gateway's "
            f"{PREFIX.get(served, '(unserved)')} prefix (StripeClient base_addresses={{'{served}': …}})"
        )
    raise wire.Ambiguous(
        f"only what Stripe serves at its {w.api} host (file uploads, POST /v1/files, and quote PDFs) is "
        f"served under {PREFIX.get(w.api, w.api)}"
    )


def params(w: wire.Wire) -> dict[str, ParamValue]:
    if w.method != "POST" or w.query:
        raise wire.Ambiguous("a file upload is a POST with its fields in the body")
    encoding = w.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise wire.Ambiguous(f"Content-Encoding {encoding!r} is not accepted: send the upload uncompressed")
    boundary = multipart.boundary_of(w.headers.get("content-type", ""))
    body = multipart.parse(w.body, boundary)
    if body.file is None or body.file.name != "file":
        raise wire.Ambiguous("a file upload carries exactly one file part, named 'file'")
    out = form.nested(body.fields, _FIELDS, "multipart body")
    if "purpose" not in out:
        raise wire.Ambiguous("a file upload needs its 'purpose' field")
    return out
