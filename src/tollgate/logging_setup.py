"""One logging setup for every Tollgate process: text for people, or one JSON object per line for log
pipelines (`TOLLGATE_LOG_FORMAT=json`); either way anything shaped like a credential is masked.

Tokens and vendor keys are kept out of logs by construction (request.py drops credential headers);
masking is the second line of defence for anything a library logs on its own. It runs on the whole
formatted record, so an exception's message and traceback are masked too, not only the log message.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

_SECRET = re.compile(
    r"\b(tgk_[A-Za-z0-9_-]{8,}"
    r"|(sk|rk)_(live|test)_[A-Za-z0-9]{8,}"
    r"|re_[A-Za-z0-9_]{16,}"
    r"|(AC|SK)[0-9a-fA-F]{32}:[A-Za-z0-9]{8,}"  # Twilio AccountSid:AuthToken or ApiKeySid:Secret
    r"|(Basic|Bearer) [A-Za-z0-9+/=._~-]{8,})"  # an Authorization header value, whatever it carries
)


def redact(text: str) -> str:
    return _SECRET.sub(_mask, text)


def _mask(m: re.Match[str]) -> str:
    s = m[0]
    if s.startswith(("Basic ", "Bearer ")):
        keep = s.index(" ") + 1
    elif ":" in s:  # a Twilio pair keeps its SID (an identifier, not a secret) and the colon
        keep = s.index(":") + 1
    else:
        keep = 6
    return s[:keep] + "…redacted"


class Redact(logging.Filter):
    """Masks the message for every handler it is on, including those of test harnesses."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET.search(message):
            record.msg, record.args = redact(message), None
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the traceback as one
    string field, so a multi-line exception stays one event in the pipeline."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps({k: redact(v) if isinstance(v, str) else v for k, v in entry.items()})


class _Masked(logging.Formatter):
    """Another formatter's output, masked."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def mask_handlers(logger: logging.Logger | None = None) -> None:
    """Mask credentials in what handlers another library set up write (kopf's, text or JSON), tracebacks
    included, by wrapping their formatters. Idempotent."""
    for h in (logger or logging.getLogger()).handlers:
        if not isinstance(h.formatter, (_Masked, TextFormatter, JsonFormatter)):
            h.setFormatter(_Masked(h.formatter or logging.Formatter()))


def handler(fmt: LogFormat = "text") -> logging.Handler:
    h = logging.StreamHandler()
    h.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    h.addFilter(Redact())
    return h


def configure(level: str, fmt: LogFormat = "text") -> None:
    logging.basicConfig(level=level, handlers=[handler(fmt)], force=True)
