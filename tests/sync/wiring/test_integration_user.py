"""Which CRM user is leadpilot's own (its leads are routed, it is never a rep)."""

from __future__ import annotations

import pytest

from connectors.records import Rep
from sync.config.settings import Settings
from sync.wiring.routing import integration_user_id

REPS = [Rep("005A", "Ada Lovelace", "ada@acme.example"), Rep("005B", "Api Integration", "api@acme.example"),
        Rep("005C", "Leadpilot Bot", "bot@acme.example")]
PASSWORD = {"kind": "password", "username": "BOT@acme.example", "password": "x"}


def test_given_salesforce_login_username_when_looked_up_then_the_user_with_that_email() -> None:
    settings = Settings(_env_file=None, crm="salesforce", salesforce={"auth": PASSWORD})  # type: ignore[call-arg]
    assert integration_user_id(settings, REPS) == "005C"


@pytest.mark.parametrize(("crm", "values"), [
    ("hubspot", {"hubspot": {"access_token": "pat-na1-x"}}),  # a private-app token names no user
    ("sandbox", {"salesforce": {"auth": PASSWORD}}),  # no CRM of its own: no login to match
    ("salesforce", {"salesforce": {"auth": {**PASSWORD, "username": "nobody@acme.example"}}}),
])
def test_given_no_login_match_when_looked_up_then_the_user_named_integration(crm: str, values: dict) -> None:
    settings = Settings(_env_file=None, crm=crm, **values)  # type: ignore[call-arg]
    assert integration_user_id(settings, REPS) == "005B"
