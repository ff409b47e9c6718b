"""Logs: one JSON object per line when asked, and every credential masked, in the message, in an
exception's traceback, in either format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from tollgate.logging_setup import LogFormat, handler

SID = "AC" + "1f" * 16
TWILIO_PAIR = f"{SID}:{'9a' * 16}"
SECRETS = [
    "tgk_RNnRMWHtL2JSnSoeB8wBprtMy6UunPPCm7Ilyz9aN4k",
    "sk_live_51Habcdefghijklmnop",
    "rk_test_51Habcdefghijklmnop",
    "re_123456789_abcdefghijklmn",
    TWILIO_PAIR,
    "SK" + "2e" * 16 + ":abcdefghijklmnopqrstuvwxyz012345",
    "Basic " + "QUMxZjFmMWYxZjFmMWYxZjFmMWYxZjFmMWYxZjFmMWY6OWE5YQ==",
]


@pytest.fixture(params=["text", "json"])
def logged(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, io.StringIO, LogFormat]]:
    out = io.StringIO()
    h = handler(request.param)
    assert isinstance(h, logging.StreamHandler)
    h.setStream(out)
    log = logging.getLogger(f"tollgate.test.{request.param}")
    log.addHandler(h)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log, out, request.param
    log.removeHandler(h)


@pytest.mark.parametrize("secret", SECRETS)
def test_a_credential_in_a_message_is_masked(
    logged: tuple[logging.Logger, io.StringIO, LogFormat], secret: str
) -> None:
    log, out, _ = logged
    log.warning("upstream said no to %s", secret)
    text = out.getvalue()
    assert secret not in text and secret[-8:] not in text
    assert "…redacted" in text or "\\u2026redacted" in text


@pytest.mark.parametrize("secret", SECRETS)
def test_a_credential_in_a_traceback_is_masked(
    logged: tuple[logging.Logger, io.StringIO, LogFormat], secret: str
) -> None:
    log, out, fmt = logged
    try:
        raise RuntimeError(f"401 from https://api.example.com with {secret}")
    except RuntimeError:
        log.exception("lookup failed")
    text = out.getvalue()
    assert "Traceback" in text and "RuntimeError" in text
    assert secret not in text and secret[-8:] not in text
    if fmt == "json":
        assert secret not in json.loads(text)["exception"]


def test_a_twilio_pair_keeps_its_account_sid(logged: tuple[logging.Logger, io.StringIO, LogFormat]) -> None:
    log, out, fmt = logged
    log.info("credential %s", TWILIO_PAIR)
    message = json.loads(out.getvalue())["message"] if fmt == "json" else out.getvalue()
    assert f"{SID}:…redacted" in message


def test_json_format_is_one_object_per_line_with_the_usual_fields() -> None:
    out = io.StringIO()
    h = handler("json")
    assert isinstance(h, logging.StreamHandler)
    h.setStream(out)
    log = logging.getLogger("tollgate.test.lines")
    log.addHandler(h)
    log.propagate = False
    try:
        log.warning("first\nwith a second line")
        try:
            {}["missing"]
        except KeyError:
            log.error("second", exc_info=True)
    finally:
        log.removeHandler(h)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "WARNING" and first["logger"] == "tollgate.test.lines"
    assert first["message"] == "first\nwith a second line"
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert "exception" not in first
    assert second["exception"].startswith("Traceback") and "KeyError: 'missing'" in second["exception"]


def test_the_log_format_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from tollgate.settings import Settings

    monkeypatch.setenv("TOLLGATE_LOG_FORMAT", "json")
    assert Settings().log_format == "json"
    monkeypatch.setenv("TOLLGATE_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()


@pytest.mark.parametrize("kopf_format", ["FULL", "JSON"])
def test_handlers_kopf_set_up_are_masked_too(kopf_format: str) -> None:
    import kopf

    from tollgate.logging_setup import mask_handlers

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        kopf.configure(log_format=getattr(kopf.LogFormat, kopf_format))
        out = io.StringIO()
        for h in root.handlers:
            if isinstance(h, logging.StreamHandler):
                h.setStream(out)
        mask_handlers()
        mask_handlers()  # twice is once
        try:
            raise RuntimeError(f"secret {TWILIO_PAIR}")
        except RuntimeError:
            logging.getLogger("kopf.objects").exception("handler failed with %s", SECRETS[0])
        text = out.getvalue()
        assert "handler failed" in text and "RuntimeError" in text
        assert TWILIO_PAIR not in text and SECRETS[0] not in text
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
