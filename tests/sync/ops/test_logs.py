"""Given log records carrying secrets, when they are formatted, then no secret is written."""

from __future__ import annotations

import io
import json
import logging

import pytest

from sync.ops.logs import MASK, configure_logging, redact, register_secret


@pytest.fixture()
def capture() -> io.StringIO:
    stream = io.StringIO()
    yield stream
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == "leadpilot":
            root.removeHandler(h)


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig", "eyJhbGciOiJSUzI1NiJ9.payload.sig"),
        ("POST grant_type=password&password=hunter2hunter2&username=a", "hunter2hunter2"),
        ('{"access_token": "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog"}', "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog"),
        ("token pat-na1-11112222-3333-4444-5555-666677778888 rejected", "pat-na1-11112222-3333-4444-5555-666677778888"),
        ("client_secret=abcdef0123456789", "abcdef0123456789"),
    ],
)
def test_given_credential_shapes_when_redacted_then_value_masked(raw: str, secret: str) -> None:
    out = redact(raw)
    assert secret not in out
    assert MASK in out


def test_given_registered_secret_when_logged_as_text_then_masked_in_message_and_traceback(capture: io.StringIO) -> None:
    register_secret("s3cr3t-value-xyz")
    configure_logging("INFO", "text", stream=capture)
    log = logging.getLogger("leadpilot.test")
    log.info("connecting with %s", "s3cr3t-value-xyz")
    try:
        raise RuntimeError("login failed for s3cr3t-value-xyz")
    except RuntimeError:
        log.exception("sync failed")
    text = capture.getvalue()
    assert "s3cr3t-value-xyz" not in text
    assert text.count(MASK) >= 2
    assert "RuntimeError" in text


def test_given_json_format_when_logging_with_extra_then_one_json_object_per_line(capture: io.StringIO) -> None:
    configure_logging("DEBUG", "json", stream=capture)
    logging.getLogger("leadpilot.cycle").info("cycle done", extra={"leads": 12, "crm": "hubspot"})
    lines = [json.loads(line) for line in capture.getvalue().splitlines()]
    assert lines[-1]["msg"] == "cycle done"
    assert lines[-1]["leads"] == 12
    assert lines[-1]["crm"] == "hubspot"
    assert lines[-1]["level"] == "INFO"
