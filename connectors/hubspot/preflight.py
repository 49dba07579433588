"""HubSpot's preflight for ``leadpilot check``: token, scopes, properties, owners — as a checklist.

Scopes: a legacy private-app token's scopes are read from HubSpot's introspection endpoint
(``POST /oauth/v2/private-apps/get/access-token-info``). A Service Key has no documented
introspection endpoint, so for any token that endpoint refuses, each needed scope is tested by
one cheap call that needs it; a 403 ``MISSING_SCOPES`` means the scope is missing (its body
names the scopes the call required). HubSpot checks scopes before it reads the request body, so
the write probe sends an empty batch (nothing is written).

Call count: owners (1), properties (1), introspection (1) or up to 4 probes, the owner pages,
one owner read per listed id that is not an active owner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from connectors.errors import CRMError
from connectors.hubspot.errors import token_rejected_message
from connectors.preflight import CheckItem
from connectors.records import written_fields

if TYPE_CHECKING:
    from connectors.hubspot.connector import HubSpotConnector

TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"
DOC = "docs/hubspot.md"


def needed_scopes(object_type: str) -> dict[str, str]:
    """Scope -> what leadpilot does with it (``crm.schemas.<object>.write`` only for ``init-crm``)."""
    return {
        f"crm.objects.{object_type}.read": f"pull the {object_type} (search, batch read)",
        f"crm.objects.{object_type}.write": "write scores, grades, reasons and owners back",
        f"crm.schemas.{object_type}.read": "check leadpilot's properties exist",
        "crm.objects.owners.read": "list the owners leads are routed to",
        "crm.objects.deals.read": "learn outcomes from closed deals",
        f"crm.schemas.{object_type}.write": "create leadpilot's properties (`leadpilot init-crm`)",
    }


def _missing_scope(err: CRMError) -> bool:
    return err.code == "MISSING_SCOPES"


def _scope_fix(scope: str) -> str:
    return (f"add the scope {scope} to the Service Key (HubSpot: Development > Keys > Service keys > the key > "
            f"Scopes), or to the legacy private app, then run `leadpilot check` again ({DOC})")


class _Run:
    """One preflight: the connector, what each call found, and the items in order."""

    def __init__(self, c: HubSpotConnector) -> None:
        self.c = c
        self.obj = c.settings.object_type
        self.items: list[CheckItem] = []

    def call(self, operation: str, fn: Callable[[], Any]) -> Any:
        return self.c._call("meta", operation, fn)

    def probe(self, operation: str, fn: Callable[[], Any]) -> CRMError | None:
        """Run one call for its scope: the ``MISSING_SCOPES`` error, or None when the scope was
        not what stopped it (a 400 for the empty body is a pass)."""
        try:
            self.call(operation, fn)
        except CRMError as err:
            if _missing_scope(err):
                return err
            if err.status is None or err.status >= 500 or err.status == 401:
                raise
        return None

    def introspect(self) -> set[str] | None:
        """The token's scopes from the private-app introspection endpoint; None where the token
        kind has none (Service Keys: the endpoint refuses it)."""
        apis = self.c.apis

        def fn() -> Any:
            return apis.get("owners").api_client.call_api(
                TOKEN_INFO_PATH, "POST", header_params={"Content-Type": "application/json",
                                                        "Accept": "application/json"},
                body={"tokenKey": apis.token}, response_types_map={200: "object"}, auth_settings=["oauth2"],
                _return_http_data_only=False, _request_timeout=apis.timeout)

        try:
            info = self.call("token introspection", fn)
        except CRMError as err:
            if err.status is not None and 400 <= err.status < 500 and err.status != 429:
                return None
            raise
        scopes = info.get("scopes")
        return {str(s) for s in scopes} if isinstance(scopes, list) else None


def run_preflight(c: HubSpotConnector, user_ids: Sequence[str], *, writes_reason: bool = False) -> list[CheckItem]:
    """The checklist (see ``Connector.preflight``); stops after the first item nothing else can follow."""
    run = _Run(c)
    items = run.items
    host = c.settings.host
    prefix = c.env_prefix
    # 1. the API answers and the token is accepted (owners: the cheapest authenticated read)
    owners_err: CRMError | None = None
    try:
        run.call("owners", c._op("owners", "get_page", limit=1))
    except CRMError as err:
        if err.status is None:
            return [CheckItem(f"HubSpot API reachable at {host}", False, str(err),
                              fix=f"check the network, proxy and {prefix}HOST; behind a TLS-inspecting proxy set "
                                  f"{prefix}CA_BUNDLE")]
        if err.status == 401:
            return [CheckItem(f"HubSpot API reachable at {host}", True),
                    CheckItem("access token accepted", False, "HubSpot answers 401 to it",
                              fix=token_rejected_message(prefix))]
        if not _missing_scope(err):
            return [CheckItem(f"HubSpot API reachable at {host}", True),
                    CheckItem("access token accepted", False, str(err),
                              fix=f"see the message; the token's scopes and its portal are described in {DOC}")]
        owners_err = err
    items += [CheckItem(f"HubSpot API reachable at {host}", True), CheckItem("access token accepted", True)]

    # 2. properties (also the schemas.read probe)
    names: set[str] | None = None
    props_err: CRMError | None = None
    try:
        names = c._property_names()
    except CRMError as err:
        if not _missing_scope(err):
            raise
        props_err = err
    written = [c.pmap.written[k] for k in written_fields(writes_reason)]
    missing_props = [n for n in written if names is not None and n not in names]

    # 3. scopes: introspection, else one probe per scope
    needed = needed_scopes(run.obj)
    if names is not None and not missing_props:
        needed.pop(f"crm.schemas.{run.obj}.write")  # only init-crm needs it, and nothing is left to create
    held = run.introspect()
    how = "token introspection"
    if held is None:
        how = "a call that needs it answered"
        refused: dict[str, CRMError | None] = {
            "crm.objects.owners.read": owners_err,
            f"crm.schemas.{run.obj}.read": props_err,
            f"crm.objects.{run.obj}.read": run.probe("probe read", c._op(
                "search", "do_search", public_object_search_request={"limit": 1, "properties": ["hs_object_id"]})),
            f"crm.objects.{run.obj}.write": run.probe("probe write", c._op(
                "batch", "update", batch_input_simple_public_object_batch_input={"inputs": []})),
            "crm.objects.deals.read": run.probe("probe deals", c._op(
                "deals.search", "do_search", public_object_search_request={"limit": 1, "properties": ["dealstage"]})),
        }
        if f"crm.schemas.{run.obj}.write" in needed:
            refused[f"crm.schemas.{run.obj}.write"] = run.probe("probe property write", c._op(
                "groups", "create", run.obj, property_group_create={}))
        missing = {scope for scope, err in refused.items() if err is not None}
        for refusal in refused.values():  # the scopes a refusal names are missing too
            if refusal is not None:
                missing |= set(getattr(refusal, "required_scopes", ()) or ()) & set(needed)
        held = set(needed) - missing
    for scope, why in needed.items():
        ok = scope in held
        items.append(CheckItem(f"scope {scope}", ok, f"held ({how})" if ok else f"missing: needed to {why}",
                               fix=None if ok else _scope_fix(scope)))

    # 4. each property leadpilot writes, then those it reads
    if names is None:
        items.append(CheckItem(f"properties on {run.obj} readable", False, "HubSpot refused to list them",
                               fix=_scope_fix(f"crm.schemas.{run.obj}.read")))
    else:
        for name in written:
            ok = name in names
            items.append(CheckItem(f"property {name} on {run.obj}", ok, "present" if ok else "missing",
                                   fix=None if ok else "run `leadpilot init-crm` (it needs the scope "
                                   f"crm.schemas.{run.obj}.write), or create it by hand as {DOC} shows"))
        owner = c.pmap.written["owner"]
        read = [n for n in c.pmap.properties() if n not in written]
        absent = [n for n in read if n not in names]
        items.append(CheckItem(f"properties leadpilot reads on {run.obj}", not absent,
                               f"{len(read) - len(absent)} of {len(read)} present" + (
                                   f"; missing: {', '.join(absent)}" if absent else ""),
                               fix=None if not absent else (
                                   f"name your portal's properties in {prefix}SOURCE_PROPERTIES / "
                                   f"{prefix}TEXT_PROPERTIES (or the owner property in "
                                   f"LEADPILOT_HUBSPOT_PROPERTIES__OWNER, now {owner})")))

    # 5. owners, and each owner the settings and the routing file name
    if owners_err is not None:
        items.append(CheckItem("owners readable", False, "HubSpot refused to list them",
                               fix=_scope_fix("crm.objects.owners.read")))
    else:
        reps = c.list_reps()
        active = {r.id: r for r in reps if r.active}  # a queue may be the fallback owner
        people = sum(1 for r in active.values() if not r.is_queue)
        items.append(CheckItem("owners readable", True, f"{people} active owner(s)"))
        for uid in dict.fromkeys(user_ids):
            items.append(_owner_item(run, uid, active))

    # 6. the day's API budget (learnt from the headers of the calls above)
    budget = c.meter.budget
    frac = budget.fraction_left
    if frac is not None:
        items.append(CheckItem("daily API budget", frac >= 0.1, f"{budget.remaining} of {budget.limit} calls left",
                               fix=None if frac >= 0.1 else "wait for the daily reset (midnight in the portal's "
                               "time zone) or find what else spends this portal's API calls"))
    return items


def _owner_item(run: _Run, uid: str, active: dict[str, Any]) -> CheckItem:
    """One owner leads may be given to (an owner id, or an e-mail as the routing file may name
    one): it must exist and be active."""
    name = f"owner {uid} exists and is active"
    if "@" in uid:
        match = next((r for r in active.values() if (r.email or "").lower() == uid.lower()), None)
        if match is not None:
            return CheckItem(name, True, f"{match.name} (owner {match.id})")
        page = run.call("owner", run.c._op("owners", "get_page", email=uid, archived=True, limit=1))
        found = page.get("results") or []
        if not found:
            return CheckItem(name, False, "HubSpot has no owner with this e-mail",
                             fix="use the e-mail the rep logs in to HubSpot with, or the owner id, in the "
                                 "routing file")
        owner = found[0]
    elif uid in active:
        return CheckItem(name, True, active[uid].name + (" (a queue)" if active[uid].is_queue else ""))
    else:
        try:
            owner = run.call("owner", run.c._op("owners", "get_by_id", uid, archived=True))
        except CRMError as err:
            if err.status not in (400, 404):
                raise
            return CheckItem(name, False, "HubSpot has no owner with this id",
                             fix="use an owner id HubSpot lists (GET /crm/v3/owners: the owner id, not the user "
                                 "id) or the rep's e-mail in the routing file")
    label = " ".join(str(owner.get(k) or "") for k in ("first_name", "last_name")).strip() or uid
    return CheckItem(name, False, f"{label} is deactivated (archived)",
                     fix="reactivate the user in HubSpot, or remove this owner from the routing file / the "
                         "fallback owner setting")
