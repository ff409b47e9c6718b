"""One logging setup for every Tollgate process; a filter masks anything shaped like a credential.

Tokens and vendor keys are kept out of logs by construction (request.py drops credential headers);
the filter is the second line of defence for anything a library logs on its own.
"""

from __future__ import annotations

import logging
import re

_SECRET = re.compile(r"\b(tgk_[A-Za-z0-9_-]{8,}|(sk|rk)_(live|test)_[A-Za-z0-9]{8,}|re_[A-Za-z0-9]{16,})")


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET.search(message):
            record.msg, record.args = _SECRET.sub(lambda m: m[0][:6] + "…redacted", message), None
        return True


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(Redact())
    logging.basicConfig(level=level, handlers=[handler], force=True)
