"""simple-salesforce over HTTPS against the sandbox: auth flows, pulls, writes, Bulk 2.0, faults, outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.errors import AuthError, Kind, StopCycle
from connectors.records import LeadUpdate
from sandbox.context import Faults

pytestmark = pytest.mark.integration


def score_all(leads: list[Any], version: str = "m1") -> list[LeadUpdate]:
    return [LeadUpdate(x.id, score=int(x.id[3:15]) % 100, grade="B", opportunity=True,
                       reasons=f"reason {x.id}", model_version=version) for x in leads]


def sf_calls(server: Any, fragment: str, method: str = "") -> int:
    return sum(n for k, n in server.ctx.counters.items()
               if k.startswith(f"salesforce {method}") and fragment in k)


def test_given_2500_changed_leads_when_first_sync_then_two_pages_of_2000(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=1, leads=2500)
    c = make(server, "salesforce")
    with pytest.raises(Exception, match="INVALID_FIELD.*init-crm"):  # leadpilot's fields are not there yet
        list(c.iter_changed_leads(None))
    c.ensure_fields()
    before = c.api_usage()
    leads = list(c.iter_changed_leads(None))
    assert len(leads) == len({x.id for x in leads}) == 2500
    assert c.api_usage()["read"] - before["read"] == 2 and c.api_usage()["write"] == before["write"]
    assert [x.modified_at for x in leads] == sorted(x.modified_at for x in leads)
    assert c.meter.budget.limit == 15000 and c.meter.budget.used is not None


def _jwt_key(server: Any, tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server.ctx.credentials.jwt_public_key_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


@pytest.mark.parametrize("flow", ["password_oauth", "password_soap", "client_credentials", "jwt", "token"])
def test_given_each_auth_flow_when_checking_then_login_reaches_the_sandbox(
        sandbox_factory: Any, make: Any, tmp_path: Path, flow: str) -> None:
    server = sandbox_factory(seed=2, leads=3)
    sf = server.info["salesforce"]
    auth: dict[str, Any] = {
        "password_oauth": {"kind": "password", "username": sf["username"], "password": sf["password"],
                           "consumer_key": sf["client_id"], "consumer_secret": sf["client_secret"]},
        "password_soap": {"kind": "password", "username": sf["username"], "password": sf["password"],
                          "security_token": sf["security_token"]},
        "client_credentials": {"kind": "client_credentials", "consumer_key": sf["client_id"],
                               "consumer_secret": sf["client_secret"]},
        "jwt": {"kind": "jwt", "username": sf["username"], "consumer_key": sf["client_id"],
                "private_key_file": str(_jwt_key(server, tmp_path)) if flow == "jwt" else "x"},
        "token": {"kind": "token", "access_token": sf["access_token"], "instance_url": sf["instance_url"]},
    }[flow]
    domain = "leadpilot.my" if flow in ("client_credentials", "jwt") else "login"
    c = make(server, "salesforce", salesforce={"auth": auth, "domain": domain})
    assert len(c.list_reps()) >= 4
    assert c.api_usage()["auth"] == (0 if flow == "token" else 1)


def test_given_ensure_fields_twice_then_second_run_creates_nothing(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=3, leads=5)
    c = make(server, "salesforce")
    assert not c.check().ok
    assert len(c.ensure_fields()) == 7  # six leadpilot fields and the optional routing reason
    assert c.ensure_fields() == [] and c.check().ok
    assert sf_calls(server, "/Soap/m/") == 2  # read what exists (describe hides ungranted fields), create


def test_given_written_scores_when_pulling_again_then_our_own_writes_are_recognised(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=4, leads=450)
    c = make(server, "salesforce")
    c.ensure_fields()
    start = server.store.clock.now()
    first = {x.id: x for x in c.iter_changed_leads(None)}
    report = c.write(score_all(list(first.values())))
    assert len(report.succeeded) == 450 and report.api_calls == 3  # ⌈450/200⌉ collection PATCHes
    echoes = list(c.iter_changed_leads(start))
    assert {x.id for x in echoes} == set(first)
    assert all(x.input_hash == first[x.id].input_hash and x.modified_at > first[x.id].modified_at for x in echoes)
    assert all(x.written["score"] == int(x.id[3:15]) % 100 and x.written["model_version"] == "m1" for x in echoes)


def test_given_new_and_changed_leads_when_syncing_incrementally_then_overlap_is_deduplicated(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=5, leads=200)
    c = make(server, "salesforce")
    c.ensure_fields()
    seen = {x.id for x in c.iter_changed_leads(None)}
    mark = server.store.clock.now()
    server.advance(2)
    changed = list(c.iter_changed_leads(mark))
    assert len(changed) == len({(x.id, x.modified_at) for x in changed})
    store_changed = {r["Id"] for r in server.store.all("Lead") if r["SystemModstamp"] >= mark}
    assert store_changed <= {x.id for x in changed} and store_changed - seen
    strict = list(c.iter_changed_leads(mark, overlap=False))  # continuing inside a cycle: no lookback
    assert {x.id for x in strict} == store_changed and len(strict) <= len(changed)


def test_given_tokens_expiring_mid_pull_and_mid_bulk_when_syncing_then_relogin_and_nothing_lost(
        sandbox_factory: Any, make: Any, clock: Any) -> None:
    server = sandbox_factory(seed=6, leads=2100)
    c = make(server, "salesforce", salesforce={"bulk_threshold": 1000})
    c.ensure_fields()
    server.ctx.faults.token_expiry_after_calls = 2
    leads = list(c.iter_changed_leads(None))
    assert len({x.id for x in leads}) == 2100
    report = c.write(score_all(leads))  # Bulk 2.0: the client has no 401 handling there, we refresh
    assert len(report.succeeded) == 2100
    assert c.api_usage()["auth"] >= 3


def test_given_a_plain_token_that_expires_when_pulling_then_config_error_says_it_cannot_refresh(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=6, leads=10)
    sf = server.info["salesforce"]
    c = make(server, "salesforce", salesforce={"auth": {"kind": "token", "access_token": sf["access_token"],
                                                        "instance_url": sf["instance_url"]}})
    c.ensure_fields()
    server.ctx.faults.token_expiry_after_calls = server.ctx.tokens[sf["access_token"]] + 1
    list(c.iter_changed_leads(None))
    with pytest.raises(AuthError, match="cannot refresh") as info:
        list(c.iter_changed_leads(None))
    assert info.value.kind is Kind.CONFIG and sf["access_token"] not in str(info.value)


def test_given_locked_rows_and_bad_ids_when_writing_then_locks_retried_later_and_errors_reported(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=7, leads=600, faults=Faults(p_lock_row=0.05))
    c = make(server, "salesforce")
    c.ensure_fields()
    leads = list(c.iter_changed_leads(None))
    updates = [*score_all(leads), LeadUpdate("00Q999999999999AAA", score=1), LeadUpdate("not-an-id", score=2)]
    report = c.write(updates)
    assert len(report.results) == 602
    failed = {r.lead_id: r for r in report.failed}
    assert set(failed) == {"00Q999999999999AAA", "not-an-id"}
    assert all(not r.transient and r.message and r.error_code for r in failed.values())
    patches = sf_calls(server, "composite/sobjects", "PATCH")
    assert 4 <= patches <= 5  # 3 batches of ≤200 + the locked rows together in one later round
    stored = {r["Id"]: r for r in server.store.all("Lead")}
    assert all(stored[x.id]["LeadPilot_Score__c"] == int(x.id[3:15]) % 100 for x in leads)


def test_given_5xx_faults_when_syncing_then_retried_and_nothing_lost(sandbox_factory: Any, make: Any, clock: Any) -> None:
    server = sandbox_factory(seed=8, leads=2200, faults=Faults(p_5xx=0.2))
    c = make(server, "salesforce")
    c.ensure_fields()
    leads = list(c.iter_changed_leads(None))
    assert len({x.id for x in leads}) == 2200
    assert len(c.write(score_all(leads)).succeeded) == 2200
    assert c.retrier.retries > 0 and clock.sleeps


def test_given_the_daily_budget_is_spent_when_syncing_then_stop_cycle_not_a_spin(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=9, leads=600)
    c = make(server, "salesforce")
    c.ensure_fields()
    leads = list(c.iter_changed_leads(None))
    server.ctx.faults.sf_daily_budget = c.meter.budget.used + 1
    with pytest.raises(StopCycle) as info:
        c.write(score_all(leads))
    err = info.value
    assert err.code == "REQUEST_LIMIT_EXCEEDED" and err.resume_at is not None
    report = err.report  # type: ignore[attr-defined]
    assert len(report.results) == 600 and len(report.succeeded) == 200
    assert all(r.transient for r in report.failed)


def test_given_a_backfill_above_the_threshold_when_writing_then_bulk_2_is_used(sandbox_factory: Any, make: Any,
                                                                                clock: Any) -> None:
    server = sandbox_factory(seed=10, leads=700)
    c = make(server, "salesforce", salesforce={"bulk_threshold": 500})
    c.ensure_fields()
    leads = list(c.iter_changed_leads(None))
    updates = [*score_all(leads), LeadUpdate("00Q999999999999AAA", score=3)]
    report = c.write(updates)
    assert len(report.succeeded) == 700
    assert [r.lead_id for r in report.failed] == ["00Q999999999999AAA"] and report.failed[0].message
    assert sf_calls(server, "composite/sobjects") == 0 and sf_calls(server, "/jobs/ingest") >= 5
    assert report.api_calls <= 12
    stored = {r["Id"]: r for r in server.store.all("Lead")}
    assert all(stored[x.id]["LeadPilot_Grade__c"] == "B" for x in leads)


def test_given_converted_leads_when_reading_outcomes_then_each_closed_opportunity_has_its_lead(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=11, leads=500)
    c = make(server, "salesforce")
    outcomes = list(c.iter_outcomes(None))
    closed = [o for o in server.store.all("Opportunity") if o["IsClosed"]]
    assert len(outcomes) == len(closed) > 0
    truth = {o["Id"]: (server.store.opportunity_lead[o["Id"]], bool(o["IsWon"])) for o in closed}
    assert {o.opportunity_id: (o.lead_id, o.won) for o in outcomes} == truth


def test_given_history_when_labelling_then_the_rule_matches_the_store(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=12, leads=400)
    c = make(server, "salesforce")
    c.ensure_fields()
    history = list(c.iter_history(label="converted"))
    converted = {r["Id"] for r in server.store.all("Lead") if r["IsConverted"]}
    assert {h.lead.id for h in history if h.converted} == converted
    won = {h.lead.id: h.converted for h in c.iter_history(label="won")}
    opp_won = {server.store.opportunity_lead[o["Id"]]: bool(o["IsWon"])
               for o in server.store.all("Opportunity") if o["IsClosed"]}
    assert {k: v for k, v in won.items() if k in opp_won} == opp_won


def test_given_reps_and_owner_checks(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=13, leads=50)
    c = make(server, "salesforce")
    reps = c.list_reps()
    assert any(r.is_queue for r in reps)
    c.ensure_fields()
    leads = list(c.iter_changed_leads(None))
    assert c.get_owners([x.id for x in leads]) == {x.id: x.owner_id for x in leads}
