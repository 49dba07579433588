"""HubSpot preflight (the checklist of ``leadpilot check``), scopes at run time and call deadlines,
with hubspot-api-client over HTTPS against the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.errors import CRMError, Kind
from connectors.preflight import CheckItem, all_ok, render
from connectors.records import LeadUpdate
from sandbox.hubspot.auth import ALL_SCOPES, add_token

pytestmark = pytest.mark.integration


def by_name(items: list[CheckItem]) -> dict[str, CheckItem]:
    return {i.name: i for i in items}


def failed(items: list[CheckItem]) -> list[str]:
    return [i.name for i in items if not i.ok]


def token(server: Any, kind: str, without: str | None = None) -> str:
    scopes = [s for s in ALL_SCOPES if s != without]
    return str(add_token(server.ctx, {"kind": kind, "scopes": scopes})["token"])


def test_given_a_ready_portal_then_every_item_passes_scopes_read_by_introspection(sandbox_factory: Any,
                                                                                  make: Any) -> None:
    server = sandbox_factory(seed=21, leads=20)
    c = make(server, "hubspot")
    c.ensure_fields()
    reps = [r for r in c.list_reps() if not r.is_queue]
    items = c.preflight(user_ids=[reps[0].id, reps[1].id])
    assert all_ok(items), render(items)
    checks = by_name(items)
    assert checks["scope crm.objects.contacts.write"].detail == "held (token introspection)"
    assert "scope crm.schemas.contacts.write" not in checks  # only init-crm needs it, and nothing is missing
    assert checks[f"owner {reps[0].id} exists and is active"].detail == reps[0].name
    assert [i.name for i in items[:2]] == [f"HubSpot API reachable at {server.base_url}", "access token accepted"]


def test_given_no_properties_yet_then_each_is_named_with_init_crm_as_the_fix(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=22, leads=5)
    items = make(server, "hubspot").preflight()
    assert failed(items) == [f"property leadpilot_{n} on contacts" for n in
                             ("score", "grade", "opportunity", "reasons", "model_version", "scored_at")]
    assert all("leadpilot init-crm" in str(i.fix) for i in items if not i.ok)
    assert by_name(items)["scope crm.schemas.contacts.write"].ok  # init-crm will be allowed to create them
    # the routing reason is required only when LEADPILOT_ROUTING__WRITE_REASON is on
    assert failed(make(server, "hubspot").preflight(writes_reason=True))[-1] == "property leadpilot_routing_reason on contacts"


@pytest.mark.parametrize("kind", ["service_key", "private_app"])
@pytest.mark.parametrize("scope", ["crm.objects.contacts.write", "crm.objects.deals.read", "crm.objects.owners.read",
                                   "crm.objects.contacts.read"])
def test_given_a_token_lacking_one_scope_then_exactly_that_scope_fails(sandbox_factory: Any, make: Any,
                                                                       kind: str, scope: str) -> None:
    server = sandbox_factory(seed=23, leads=5)
    make(server, "hubspot").ensure_fields()
    c = make(server, "hubspot", hubspot={"access_token": token(server, kind, without=scope)})
    items = c.preflight()
    bad = failed(items)
    assert f"scope {scope}" in bad
    expected = {f"scope {scope}"} | ({"owners readable"} if scope == "crm.objects.owners.read" else set())
    assert set(bad) == expected, render(items)
    item = by_name(items)[f"scope {scope}"]
    assert "Service Key" in str(item.fix) and scope in str(item.fix)
    how = "token introspection" if kind == "private_app" else "a call that needs it answered"
    assert all(i.detail == f"held ({how})" for i in items if i.name.startswith("scope ") and i.ok)
    assert not any(k.startswith("hubspot POST") and "batch/update" in k and n > 1
                   for k, n in server.ctx.counters.items())  # the write probe sends one empty batch at most


def test_given_a_rejected_token_then_the_checklist_says_it_is_invalid_not_a_permission(sandbox_factory: Any,
                                                                                       make: Any) -> None:
    server = sandbox_factory(seed=24, leads=5)
    items = make(server, "hubspot", hubspot={"access_token": "pat-na1-00000000-0000-0000-0000-000000000000"}).preflight()
    assert failed(items) == ["access token accepted"] and len(items) == 2
    fix = str(items[1].fix)
    assert "invalid, expired or revoked" in fix and "Service Key" in fix and "lacks a permission" not in fix
    assert "pat-na1-0000" not in "\n".join(render(items))


def test_given_listed_owners_that_are_unknown_or_deactivated_then_each_fails_a_queue_passes(sandbox_factory: Any,
                                                                                     make: Any) -> None:
    from sandbox.hubspot.props import hs_id

    server = sandbox_factory(seed=25, leads=5)
    c = make(server, "hubspot")
    c.ensure_fields()
    people = [u for u in server.store.all("User") if u.get("IsActive") and u.get("UserType") != "Queue"]
    gone = people[-1]
    server.store.update("User", gone["Id"], {"IsActive": False})
    queue = next(u for u in server.store.all("User") if u.get("UserType") == "Queue")
    ids = [hs_id(people[0]["Id"]), hs_id(gone["Id"]), "987654", hs_id(queue["Id"])]
    checks = by_name(c.preflight(user_ids=ids))
    assert checks[f"owner {ids[0]} exists and is active"].ok
    assert "deactivated" in checks[f"owner {ids[1]} exists and is active"].detail
    assert "no owner with this id" in checks["owner 987654 exists and is active"].detail
    assert checks[f"owner {ids[3]} exists and is active"].detail.endswith("(a queue)")  # a fallback owner may be one
    emails = [people[0]["Email"], gone["Email"], "ghost@nowhere.example"]  # the routing file may name e-mails
    by_email = by_name(c.preflight(user_ids=emails))
    assert by_email[f"owner {emails[0]} exists and is active"].ok
    assert "deactivated" in by_email[f"owner {emails[1]} exists and is active"].detail
    assert "no owner with this e-mail" in by_email["owner ghost@nowhere.example exists and is active"].detail


def test_given_a_token_lacking_the_write_scope_when_writing_then_a_config_error_names_the_scope(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=26, leads=5)
    make(server, "hubspot").ensure_fields()
    c = make(server, "hubspot", hubspot={"access_token": token(server, "service_key",
                                                               without="crm.objects.contacts.write")})
    leads = list(c.iter_changed_leads(None))
    with pytest.raises(CRMError) as info:
        c.write([LeadUpdate(x.id, score=1) for x in leads])
    err = info.value
    assert err.kind is Kind.CONFIG and err.code == "MISSING_SCOPES"
    assert "crm.objects.contacts.write" in str(err) and "Service Key" in str(err)
    assert "lacks a permission" not in str(err)


def test_given_a_hung_response_when_pulling_then_the_read_timeout_fires_and_the_call_is_retried(
        sandbox_factory: Any, make: Any) -> None:
    """The deadline is the client's (0.3 s); the sandbox holds one answer 2 s. No wall-clock assert."""
    server = sandbox_factory(seed=27, leads=250)
    c = make(server, "hubspot", hubspot={"read_timeout_seconds": 0.3, "connect_timeout_seconds": 1})
    assert c.apis.timeout == (1, 0.3)
    server.hold(2.0, count=1)
    leads = list(c.iter_changed_leads(None))
    assert len({x.id for x in leads}) == 250
    # the timed-out search page, retried as a transient fault: had the client waited for the held
    # answer, that answer would have come back (slow, but whole) and nothing would be retried
    assert c.retrier.retries == 1


def test_timeouts_default_to_ten_and_sixty_seconds() -> None:
    from connectors.hubspot.settings import HubSpotSettings

    s = HubSpotSettings()
    assert (s.connect_timeout_seconds, s.read_timeout_seconds) == (10.0, 60.0)
    with pytest.raises(ValueError, match="greater than 0"):
        HubSpotSettings(read_timeout_seconds=0)
