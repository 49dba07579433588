"""The Salesforce checklist ``leadpilot check`` prints (``connectors.preflight``), in the order an
admin fixes things: credentials, API access, leadpilot's own fields (visible and editable for the
integration user — describe's ``updateable`` is what field-level security allows), the fields it
reads, the outcome objects, the user list, each named user (fallback owner, routing-file reps),
and the Metadata permission only when fields are missing.

About six calls: userinfo, two describes, two User queries and, when a field is missing, one
readMetadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from simple_salesforce.format import format_soql

from connectors.errors import AuthError, CRMError, Kind
from connectors.preflight import CheckItem
from connectors.records import written_fields
from connectors.salesforce.setup import INTEGRATION_SET

if TYPE_CHECKING:
    from connectors.salesforce.connector import SalesforceConnector

INIT = "run `leadpilot init-crm` (it creates the fields and grants them through the permission set " \
       f"{INTEGRATION_SET}), or grant them to the integration user in a permission set by hand"
OUTCOME_FIELDS = ("IsClosed", "IsWon", "Amount", "CloseDate", "OwnerId")


def run(c: SalesforceConnector, user_ids: Sequence[str], *, writes_reason: bool = False) -> list[CheckItem]:
    items: list[CheckItem] = []
    try:
        me = c._call("userinfo", lambda: c.sf.oauth2("userinfo")) or {}
    except CRMError as err:
        return [_login_item(c, err)]
    items.append(CheckItem("credentials", True, f"logged in as {me.get('preferred_username') or c._user() or '?'}"))
    try:
        lead = c._lead_fields()
    except CRMError as err:
        fix = ("give the integration user the 'API Enabled' permission (the Salesforce Integration licence and the "
               "'Salesforce API Integration' permission set licence include it)") if err.kind is Kind.CONFIG else \
            "try again later; if it persists, check the org's status at status.salesforce.com"
        return [*items, CheckItem("API access (describe Lead)", False, str(err), fix)]
    items.append(CheckItem("API access", True, _budget(c)))
    items += _written_fields(c, lead, writes_reason)
    items += _read_fields(c, lead)
    items.append(_outcomes(c, lead))
    items.append(_users(c))
    items += _named_users(c, user_ids)
    return items


def _login_item(c: SalesforceConnector, err: CRMError) -> CheckItem:
    if isinstance(err, AuthError) or err.kind is Kind.CONFIG:
        return CheckItem("credentials", False, "Salesforce refused the login",
                         str(err).removeprefix("salesforce login: ").removeprefix("salesforce userinfo: "))
    host = c.settings.login_url or f"https://{c.settings.domain}.salesforce.com"
    return CheckItem("credentials", False, f"cannot reach {host}: {err}",
                     "check the network path and proxy, LEADPILOT_SALESFORCE__DOMAIN (login, test or your My "
                     "Domain) and, behind a TLS-inspecting proxy, LEADPILOT_SALESFORCE__CA_BUNDLE")


def _budget(c: SalesforceConnector) -> str:
    b = c.meter.budget
    if b.limit is None:
        return "REST API reachable; API budget not reported"
    return f"REST API reachable; {b.used or 0:,} of {b.limit:,} API requests used in the last 24 h"


def _written_fields(c: SalesforceConnector, lead: dict[str, dict[str, Any]], writes_reason: bool) -> list[CheckItem]:
    from connectors.salesforce.connector import CUSTOM_FIELDS

    # The routing reason is written only with LEADPILOT_ROUTING__WRITE_REASON on: required only then.
    wanted = written_fields(writes_reason)
    names = [c.fmap.written[k] for k in CUSTOM_FIELDS if k in wanted]
    hidden = [n for n in names if n.lower() not in lead]
    exists: set[str] = set()
    md_item: CheckItem | None = None
    if hidden:
        try:
            from connectors.salesforce.session import metadata_api

            found = c._call("readMetadata", lambda: metadata_api(c.sf).CustomField.read([f"Lead.{n}" for n in hidden]))
            found = found if isinstance(found, list) else [found]
            exists = {str(r.fullName).partition(".")[2].lower() for r in found if getattr(r, "fullName", None)}
            if len(exists) < len(hidden):
                md_item = CheckItem("Metadata API permission (to create the missing fields)", True,
                                    "the integration user may read and create custom fields")
        except CRMError as err:
            md_item = CheckItem(
                "Metadata API permission (to create the missing fields)", False, f"not granted ({err.code or err})",
                "give the integration user 'Customize Application' and 'Modify Metadata Through Metadata API "
                f"Functions' for `leadpilot init-crm`, or create these Lead fields by hand: {', '.join(hidden)}")
    items = []
    for n in names:
        name = f"field Lead.{n} editable"
        entry = lead.get(n.lower())
        if entry is not None and entry.get("updateable"):
            items.append(CheckItem(name, True, "read+edit"))
        elif entry is not None:
            items.append(CheckItem(name, False, "readable but not editable by the integration user",
                                   f"give it read+edit on Lead.{n}: {INIT}"))
        elif n.lower() in exists:
            items.append(CheckItem(name, False, "exists but the integration user has no access to it "
                                   "(field-level security)", f"grant read+edit on Lead.{n}: {INIT}"))
        else:
            items.append(CheckItem(name, False, "does not exist" if md_item and md_item.ok else
                                   "not visible: it does not exist, or the integration user has no access",
                                   f"create it: {INIT}"))
    return items + ([md_item] if md_item else [])


def _read_fields(c: SalesforceConnector, lead: dict[str, dict[str, Any]]) -> list[CheckItem]:
    wanted = list(dict.fromkeys([*c.fmap.source.values(), *c.fmap.text, "OwnerId", "IsConverted", "SystemModstamp"]))
    missing = [f for f in wanted if f.lower() not in lead]
    name = "Lead fields leadpilot reads visible"
    if not missing:
        return [CheckItem(name, True, ", ".join(wanted))]
    return [CheckItem(name, False, f"not visible to the integration user: {', '.join(missing)}",
                      "check the names in LEADPILOT_SALESFORCE__SOURCE_FIELDS / TEXT_FIELDS against Setup → Object "
                      "Manager → Lead → Fields; an existing field needs read access for the integration user "
                      f"(field-level security; for custom fields `leadpilot init-crm` grants it in {INTEGRATION_SET})")]


def _outcomes(c: SalesforceConnector, lead: dict[str, dict[str, Any]]) -> CheckItem:
    name = "Opportunity outcomes readable (Opportunity.IsWon, Lead.ConvertedOpportunityId)"
    fix = ("give the integration user Read on Opportunities and read access to Opportunity." +
           ", Opportunity.".join(OUTCOME_FIELDS) + " and Lead.ConvertedOpportunityId")
    missing = [f"Lead.{f}" for f in ("ConvertedOpportunityId", "IsConverted") if f.lower() not in lead]
    try:
        sf: Any = c.sf
        opp = c._call("describe Opportunity", lambda: sf.Opportunity.describe())
        fields = {str(f["name"]).lower() for f in opp.get("fields", [])}
        missing += [f"Opportunity.{f}" for f in OUTCOME_FIELDS if f.lower() not in fields]
    except CRMError as err:
        return CheckItem(name, False, f"Opportunity cannot be described: {err}", fix)
    if missing:
        return CheckItem(name, False, f"not visible: {', '.join(missing)}", fix)
    return CheckItem(name, True, "won/lost outcomes reach the routing policy")


def _users(c: SalesforceConnector) -> CheckItem:
    try:
        reps = c.list_reps()
    except CRMError as err:
        return CheckItem("owners readable", False, str(err),
                         "give the integration user 'View Setup and Configuration' (or read on User)")
    humans = [r for r in reps if not r.is_queue]
    return CheckItem("owners readable", True, f"{len(humans)} active standard user(s)")


def _named_users(c: SalesforceConnector, keys: Sequence[str]) -> list[CheckItem]:
    keys = list(dict.fromkeys(k for k in keys if k))
    if not keys:
        return []
    ids = [k for k in keys if "@" not in k]
    emails = [k.lower() for k in keys if "@" in k]
    clauses = []
    if ids:
        clauses.append(format_soql("Id IN {}", ids))
    if emails:
        clauses.append(format_soql("Email IN {}", emails))
    soql = "SELECT Id, Name, Email, IsActive, UserType FROM User WHERE " + " OR ".join(clauses)
    try:
        rows = list(c._query(soql))
    except CRMError as err:
        return [CheckItem("routing users exist", False, str(err),
                          "give the integration user read on User ('View Setup and Configuration')")]
    by_key: dict[str, dict[str, Any]] = {}
    for r in rows:
        by_key[str(r["Id"])] = r
        by_key[str(r["Id"])[:15]] = r
        if r.get("Email"):
            by_key[str(r["Email"]).lower()] = r
    items = []
    for key in keys:
        found = by_key.get(key.lower() if "@" in key else key)
        name = f"user {key} exists and is active"
        if found is None:
            items.append(CheckItem(name, False, "no such user in this org",
                                   f"fix {key!r} in the routing file (a Salesforce user id 005… or the user's e-mail)"))
        elif not found.get("IsActive"):
            items.append(CheckItem(name, False, f"{found.get('Name')} is inactive",
                                   f"reactivate {found.get('Name')} in Setup → Users, or remove {key!r} from the "
                                   "routing file (leads must not go to an inactive owner)"))
        else:
            items.append(CheckItem(name, True, str(found.get("Name") or found["Id"])))
    return items
