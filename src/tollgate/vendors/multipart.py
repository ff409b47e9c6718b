"""Strict multipart/form-data: what every reader splits the same way, or a refusal. Pure.

Multipart parsers disagree at many edges: a boundary inside a part, a preamble or epilogue, a part header
folded over two lines or sent twice, `filename*=` beside `filename=`, backslash escapes in quoted strings,
`Content-Transfer-Encoding`, a missing closing delimiter. None of that is guessed here: the body must be
exactly what the official SDKs write (stripe-python's MultipartDataGenerator) —

    --B CRLF  Content-Disposition: form-data; name="purpose" CRLF CRLF  value CRLF
    --B CRLF  Content-Disposition: form-data; name="file"; filename="x" CRLF
              Content-Type: application/octet-stream CRLF CRLF  bytes CRLF
    --B-- CRLF

— with the boundary nowhere else in the body, every part header known, and at most one file part.
"""

from __future__ import annotations

import re

from tollgate.record import record
from tollgate.vendors.wire import Ambiguous, decode_utf8, parse_media_type

# RFC 2046 bchars, without the space (a trailing space is trimmed by some readers and not by others).
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,./:=?-]{1,70}$")
_DISPOSITION = re.compile(r'^form-data; name="([^"\\\r\n]{1,200})"(?:; filename="([^"\\\r\n]{0,255})")?$')
_PART_TYPE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
MAX_PARTS = 32
MAX_HEADER_BYTES = 1024


@record
class FilePart:
    name: str  # the form field ("file")
    filename: str
    content_type: str
    size: int


@record
class Multipart:
    fields: list[tuple[str, str]]  # the text parts, in order, as (name, value)
    file: FilePart | None


def boundary_of(content_type: str) -> str:
    """The boundary of `multipart/form-data; boundary=…`; any other parameter is refused."""
    mime, params = parse_media_type(content_type)
    if mime != "multipart/form-data":
        raise Ambiguous(f"expected multipart/form-data, not {mime!r}")
    if set(params) != {"boundary"}:
        raise Ambiguous("multipart/form-data takes exactly one parameter, boundary")
    boundary = params["boundary"]
    if not _BOUNDARY.fullmatch(boundary):
        raise Ambiguous("the multipart boundary must be 1-70 letters, digits or '()+_,-./:=?' (no spaces)")
    return boundary


def parse(body: bytes, boundary: str) -> Multipart:
    delimiter = b"--" + boundary.encode("ascii")
    if not body.startswith(delimiter + b"\r\n"):
        raise Ambiguous("a multipart body must start with its boundary (no preamble)")
    closing = b"\r\n" + delimiter + b"--\r\n"
    if not body.endswith(closing):
        raise Ambiguous("a multipart body must end with its closing boundary and CRLF (no epilogue)")
    inner = body[len(delimiter) + 2 : -len(closing)]
    chunks = inner.split(b"\r\n" + delimiter + b"\r\n")
    if len(chunks) > MAX_PARTS:
        raise Ambiguous(f"a multipart body may have at most {MAX_PARTS} parts")
    # Any other occurrence of the boundary is a part some reader would split and another would not.
    if any(delimiter in chunk for chunk in chunks):
        raise Ambiguous("the multipart boundary appears inside a part")
    fields: list[tuple[str, str]] = []
    file: FilePart | None = None
    for chunk in chunks:
        name, filename, content_type, content = _part(chunk)
        if filename is None:
            fields.append((name, decode_utf8(content, f"multipart field {name!r}")))
            continue
        if file is not None:
            raise Ambiguous("a multipart body may carry only one file")
        file = FilePart(name, filename, content_type or "application/octet-stream", len(content))
    return Multipart(fields, file)


def _part(chunk: bytes) -> tuple[str, str | None, str | None, bytes]:
    head, sep, content = chunk.partition(b"\r\n\r\n")
    if not sep or len(head) > MAX_HEADER_BYTES:
        raise Ambiguous("a multipart part needs short headers, then an empty line")
    headers: dict[str, str] = {}
    for line in decode_utf8(head, "multipart part headers").split("\r\n"):
        name, colon, value = line.partition(":")
        key = name.lower()
        if not colon or not name or name != name.strip() or "\n" in line or "\r" in line:
            raise Ambiguous(f"multipart part header {line[:60]!r} is not 'Name: value' on one line")
        if key in headers:
            raise Ambiguous(f"multipart part header {name} is sent twice")
        if key not in ("content-disposition", "content-type"):
            raise Ambiguous(
                f"multipart part header {name} is not accepted (only Content-Disposition, Content-Type)"
            )
        headers[key] = value.strip()
    m = _DISPOSITION.fullmatch(headers.get("content-disposition", ""))
    if not m:
        raise Ambiguous(
            'each multipart part needs Content-Disposition: form-data; name="…" (and for a file '
            '; filename="…"), with no other parameter or escape'
        )
    name, filename = m.group(1), m.group(2)
    content_type = headers.get("content-type")
    if content_type is not None and (filename is None or not _PART_TYPE.fullmatch(content_type)):
        raise Ambiguous("only a file part may carry a Content-Type, and it must be a plain media type")
    if filename is not None and any(ord(c) < 0x20 or c == "\x7f" for c in filename):
        raise Ambiguous("a multipart filename may not hold control characters")
    return name, filename, content_type, content
