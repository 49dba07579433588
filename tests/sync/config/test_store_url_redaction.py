"""Store URL passwords never reach a message or a log, whatever characters they hold."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.config.settings import Settings
from sync.config.urls import redact_url, scrub, secret_pieces, userinfo_problem
from sync.ops.logs import configure_logging, register_settings_secrets

# Passwords with every character that splits a URL in the wrong place.
# Distinctive pieces, so that finding one in a message means it leaked.
PASSWORDS = ["p@ss#w/rd@x", "s3cr#t/w1th?qu3ry", "4t@th3@3nd@", "pl41n-but-l0ng-s3cret", "sl4/sh%40alr3ady"]
UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: the driver fails at once


def _leaks(text: str, password: str) -> list[str]:
    """The pieces of ``password`` (3+ characters between reserved characters) found in ``text``."""
    return [piece for piece in secret_pieces(f"postgresql://u:{password}@h/d") if piece in text]


@pytest.mark.parametrize("password", PASSWORDS)
def test_given_an_encoded_password_then_redact_url_shows_host_and_database_only(password: str) -> None:
    url = f"postgresql://lpuser:{quote(password, safe='')}@db.example:5432/leadpilot"
    assert redact_url(url) == "postgresql://lpuser:***@db.example:5432/leadpilot"
    assert userinfo_problem(url) is None


@pytest.mark.parametrize("password", [p for p in PASSWORDS if set(p) & set("@#/?")])
def test_given_a_raw_password_with_reserved_characters_then_no_part_of_it_shows(password: str) -> None:
    url = f"postgresql://lpuser:{password}@db.example:5432/leadpilot"
    shown = redact_url(url)
    assert shown == "postgresql://lpuser:***@db.example:5432/leadpilot"
    problem = userinfo_problem(url)
    assert problem is not None and "percent-encode" in problem and _leaks(problem, password) == []


def test_given_a_password_in_the_query_then_it_is_hidden_too() -> None:
    url = "postgresql://lp@/leadpilot?host=/var/run/postgresql&password=qu3ry-s3cret"
    shown = redact_url(url)
    assert "qu3ry-s3cret" not in shown and "host=" in shown and "password=hidden" in shown
    assert scrub("FATAL: password qu3ry-s3cret rejected", url) == "FATAL: password *** rejected"


def test_given_a_driver_message_echoing_a_misparsed_host_then_scrub_masks_it() -> None:
    url = "postgresql://lpuser:p@ss#w/rd%40x@db.example:5432/leadpilot"
    message = 'could not translate host name "ss#w" to address: Name or service not known'
    assert scrub(message, url) == 'could not translate host name "***" to address: Name or service not known'


def test_given_a_raw_reserved_password_then_the_settings_refuse_the_url_without_echoing_it(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    monkeypatch.setenv("LEADPILOT_STORE_URL", "postgresql://lpuser:p@ss#w/rd%40x@db.example:5432/leadpilot")
    result = CliRunner().invoke(app, ["check", "--offline"])
    assert result.exit_code == 2
    assert "LEADPILOT_STORE_URL: the user name or password holds @ # / written as is; percent-encode" in result.stderr
    assert _leaks(result.output, "p@ss#w/rd%40x") == [] and "ss#w" not in result.output


@pytest.mark.parametrize("command", [["check"], ["status", "--offline"], ["report"], ["sync", "--once"],
                                     ["evaluate-policy", "--policy", "ucb1"]])
@pytest.mark.parametrize("password", ["p@ss#w/rd@x", "s3cr#t/w1th?qu3ry"])
def test_given_an_unreachable_store_with_a_hard_password_then_every_command_fails_in_one_line_without_it(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], password: str
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    monkeypatch.setenv("LEADPILOT_STORE_URL",
                       f"postgresql://lpuser:{quote(password, safe='')}@{UNREACHABLE}/leadpilot?connect_timeout=2")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if "LEADPILOT_STORE_URL" in line]
    assert len(lines) == 1 and "cannot connect to the store at postgresql://lpuser:***@127.0.0.1:1/leadpilot" in lines[0]
    assert _leaks(result.output, password) == []


def test_given_the_store_password_in_a_log_line_then_it_is_masked(clean_env: Path) -> None:
    password = "lp-s3cret#pass/word"
    settings = Settings(_env_file=None, crm="sandbox",  # type: ignore[call-arg]
                        store_url=f"postgresql://lp:{quote(password, safe='')}@db/leadpilot")
    stream = io.StringIO()
    handler = configure_logging("INFO", "text", stream)
    try:
        register_settings_secrets(settings)
        logging.getLogger("leadpilot.test").error("driver said: password %s / %s rejected",
                                                  password, quote(password, safe=""))
    finally:
        logging.getLogger().removeHandler(handler)
    assert "driver said" in stream.getvalue()
    assert password not in stream.getvalue() and quote(password, safe="") not in stream.getvalue()
