"""What ``leadpilot init-crm`` sets up in a Salesforce org, as a plan of idempotent steps.

A field created through the Metadata API is visible to nobody until field-level security grants
it (crm-apis.md §6), so creating the fields is not enough. The plan, in the order it must run:

1. leadpilot's custom Lead fields (Metadata ``createMetadata``), the missing ones only;
2. permission set ``LeadPilot_Integration``: read+edit on every field leadpilot writes, read on
   every custom field it reads; assigned to the integration user;
3. permission set ``LeadPilot_Reps``: read on score, grade, reasons and the opportunity flag;
   assigned to the reps of the routing file, or to every active user of a profile the admin names,
   or added to a permission set group the admin names (``LEADPILOT_SALESFORCE__REP_ACCESS``);
4. a "leadpilot" section (score, grade, reasons, opportunity flag) on the Lead page layouts (all,
   or the ones named);
5. the list view "My leads by leadpilot score".

Planning only reads (a handful of calls); each ``Step`` says what it would change and does it
when applied. A second run finds nothing to do. Standard fields are not granted here: an org
shows them through profiles, and ``preflight`` says when one is hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from simple_salesforce.format import format_soql

from connectors.errors import CRMError

INTEGRATION_SET = "LeadPilot_Integration"
REPS_SET = "LeadPilot_Reps"
SECTION = "leadpilot"
LIST_VIEW = "Lead.LeadPilot_My_Leads"
LIST_VIEW_LABEL = "My leads by leadpilot score"
REP_FIELDS = ("score", "grade", "reasons", "opportunity")  # what a rep sees, on the layout too
MAX_COMPONENTS = 10  # Metadata API components per create/read/update


@dataclass(frozen=True)
class Step:
    """One change: ``what`` in an admin's words; ``apply`` makes it."""

    what: str
    apply: Callable[[], None] = field(repr=False, compare=False)


@dataclass(frozen=True)
class SetupOptions:
    """Who gets the reps' permission set, and which layouts get the section.

    ``rep_ids``: user ids (the routing file's reps, resolved); ``rep_profile``: instead, every
    active user of this profile; ``rep_group``: instead, a component of this permission set group
    (its DeveloperName): whoever holds the group gets it; ``layouts``: Lead page layout names
    ("Lead-Lead Layout"), empty for every Lead layout.
    """

    rep_ids: tuple[str, ...] = ()
    rep_profile: str | None = None
    rep_group: str | None = None
    layouts: tuple[str, ...] = ()


class OrgApi:
    """The calls the plan needs, each through the connector's retry policy (``call``)."""

    def __init__(self, sf: Callable[[], Any], mdapi: Callable[[], Any], call: Callable[[str, Callable[[], Any]], Any],
                 query: Callable[[str], Iterable[dict[str, Any]]]) -> None:
        self._sf, self._md, self.call, self.query = sf, mdapi, call, query

    def me(self) -> dict[str, Any]:
        """The integration user (``user_id``, ``preferred_username``) from the userinfo endpoint."""
        return dict(self.call("userinfo", lambda: self._sf().oauth2("userinfo")) or {})

    def create(self, sobject: str, values: dict[str, Any]) -> str | None:
        """Create one record; ``None`` when an equal one exists already (another init-crm made it
        meanwhile: ``DUPLICATE_VALUE`` is then what we wanted)."""
        try:
            res = self.call(f"create {sobject}", lambda: getattr(self._sf(), sobject).create(values))
        except CRMError as err:
            if err.code == "DUPLICATE_VALUE":
                return None
            raise
        return str(res["id"])

    def update(self, sobject: str, rid: str, values: dict[str, Any]) -> None:
        self.call(f"update {sobject}", lambda: getattr(self._sf(), sobject).update(rid, values))

    def md_read(self, mtype: str, names: Sequence[str]) -> list[Any]:
        out: list[Any] = []
        for i in range(0, len(names), MAX_COMPONENTS):
            got = self.call(f"readMetadata {mtype}", partial(self._read, mtype, list(names[i: i + MAX_COMPONENTS])))
            out += got if isinstance(got, list) else [got]
        return out

    def _read(self, mtype: str, chunk: list[str]) -> Any:
        return getattr(self._md(), mtype).read(chunk)

    def md_list(self, mtype: str) -> list[str]:
        md = self._md()
        rows = self.call(f"listMetadata {mtype}", lambda: md.list_metadata([md.ListMetadataQuery(type=mtype)]))
        return sorted(str(r.fullName) for r in rows or [])


@dataclass
class Plan:
    """The steps to run and the ids they share (a permission set created by one step, granted by
    the next)."""

    steps: list[Step] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)

    def add(self, what: str, apply: Callable[[], None]) -> None:
        self.steps.append(Step(what, apply))


def plan_setup(api: OrgApi, written: dict[str, str], read_custom: Sequence[str], field_specs: dict[str, Any],
               create_fields: Callable[[list[str]], None], options: SetupOptions | None,
               full: bool = True, visible: set[str] | None = None) -> Plan:
    """The steps that bring the org to what leadpilot needs (reads only; nothing changes yet).

    ``written``: attribute → field name of leadpilot's own fields; ``read_custom``: custom fields
    it reads; ``create_fields(keys)`` creates the named fields through Metadata. ``full=False``:
    only the fields and the integration user's access (what the daemon needs to run).
    ``visible``: Lead fields (lower-case) describe already shows the integration user — they exist;
    only the others are looked up through Metadata (a field nobody was granted is not described).
    """
    plan = Plan()
    names = {k: written[k] for k in field_specs}
    shown = visible or set()
    unknown = [f"Lead.{n}" for n in names.values() if n.lower() not in shown]
    existing = {f"Lead.{n}" for n in names.values() if n.lower() in shown}
    existing |= {str(r.fullName) for r in (api.md_read("CustomField", unknown) if unknown else [])
                 if getattr(r, "fullName", None)}
    missing = [k for k, n in names.items() if f"Lead.{n}" not in existing]
    for i in range(0, len(missing), MAX_COMPONENTS):
        keys = missing[i: i + MAX_COMPONENTS]
        plan.add(f"create Lead fields {', '.join(names[k] for k in keys)}", partial(create_fields, keys))
    me = api.me()
    uid, username = str(me.get("user_id") or ""), str(me.get("preferred_username") or "the integration user")
    wanted: dict[str, dict[str, tuple[bool, bool]]] = {
        INTEGRATION_SET: {**{f"Lead.{n}": (True, False) for n in read_custom},
                          **{f"Lead.{n}": (True, True) for n in names.values()}},
    }
    if full:
        wanted[REPS_SET] = {f"Lead.{names[k]}": (True, False) for k in REP_FIELDS if k in names}
    sets = {r["Name"]: r["Id"] for r in api.query(format_soql(
        "SELECT Id, Name FROM PermissionSet WHERE Name IN {}", list(wanted)))}
    plan.ids.update(sets)
    grants: dict[tuple[str, str], dict[str, Any]] = {}
    assigned: set[tuple[str, str]] = set()
    if sets:
        for r in api.query(format_soql("SELECT Id, ParentId, Field, PermissionsRead, PermissionsEdit "
                                       "FROM FieldPermissions WHERE ParentId IN {}", list(sets.values()))):
            grants[(r["ParentId"], str(r["Field"]).lower())] = r
        for r in api.query(format_soql("SELECT Id, PermissionSetId, AssigneeId FROM PermissionSetAssignment "
                                       "WHERE PermissionSetId IN {}", list(sets.values()))):
            assigned.add((r["PermissionSetId"], r["AssigneeId"]))
    for set_name, fields in wanted.items():
        _plan_permission_set(plan, api, set_name, fields, grants)
    _plan_assignments(plan, api, INTEGRATION_SET, [(uid, username)] if uid else [], assigned)
    if not full:
        return plan
    opts = options or SetupOptions()
    if opts.rep_group:
        _plan_group(plan, api, opts.rep_group)
    else:
        _plan_assignments(plan, api, REPS_SET, _rep_assignees(api, opts), assigned)
    section_fields = [names[k] for k in REP_FIELDS if k in names]
    _plan_layouts(plan, api, opts.layouts, section_fields)
    _plan_list_view(plan, api, section_fields)
    return plan


def _plan_permission_set(plan: Plan, api: OrgApi, set_name: str, fields: dict[str, tuple[bool, bool]],
                         grants: dict[tuple[str, str], dict[str, Any]]) -> None:
    if set_name not in plan.ids:
        label = "LeadPilot integration" if set_name == INTEGRATION_SET else "LeadPilot reps (read only)"

        def create_set(set_name: str = set_name, label: str = label) -> None:
            made = api.create("PermissionSet", {
                "Name": set_name, "Label": label,
                "Description": "Created by `leadpilot init-crm`: access to leadpilot's Lead fields"})
            plan.ids[set_name] = made or next(str(r["Id"]) for r in api.query(format_soql(
                "SELECT Id FROM PermissionSet WHERE Name = {}", set_name)))

        plan.add(f"create permission set {set_name}", create_set)
    for full_name, (read, edit) in fields.items():
        have = grants.get((plan.ids.get(set_name, ""), full_name.lower()))
        mode = "read+edit" if edit else "read"
        values = {"PermissionsRead": read, "PermissionsEdit": edit}
        if have is None:
            def grant(set_name: str = set_name, full_name: str = full_name, values: dict[str, Any] = values) -> None:
                api.create("FieldPermissions", {"ParentId": plan.ids[set_name], "SobjectType": "Lead",
                                                "Field": full_name, **values})

            plan.add(f"grant {mode} on {full_name} in {set_name}", grant)
        elif (bool(have.get("PermissionsRead")), bool(have.get("PermissionsEdit"))) != (read, edit):
            plan.add(f"change {full_name} to {mode} in {set_name}",
                     partial(api.update, "FieldPermissions", str(have["Id"]), values))


def _plan_assignments(plan: Plan, api: OrgApi, set_name: str, users: Sequence[tuple[str, str]],
                      assigned: set[tuple[str, str]]) -> None:
    for uid, label in users:
        if (plan.ids.get(set_name, ""), uid) in assigned:
            continue

        def assign(set_name: str = set_name, uid: str = uid) -> None:
            api.create("PermissionSetAssignment", {"PermissionSetId": plan.ids[set_name], "AssigneeId": uid})

        plan.add(f"assign {set_name} to {label}", assign)


def _plan_group(plan: Plan, api: OrgApi, developer_name: str) -> None:
    """The reps' permission set as a component of the admin's permission set group."""
    groups = [r["Id"] for r in api.query(format_soql(
        "SELECT Id FROM PermissionSetGroup WHERE DeveloperName = {}", developer_name))]
    if not groups:
        raise ValueError(f"no permission set group named {developer_name!r} in this org (LEADPILOT_SALESFORCE__"
                         "REP_ACCESS names one by its API name, e.g. permission_set_group:Sales_Reps)")
    have = REPS_SET in plan.ids and any(True for _ in api.query(format_soql(
        "SELECT Id FROM PermissionSetGroupComponent WHERE PermissionSetGroupId = {} AND PermissionSetId = {}",
        groups[0], plan.ids[REPS_SET])))
    if not have:
        def join() -> None:
            api.create("PermissionSetGroupComponent",
                       {"PermissionSetGroupId": groups[0], "PermissionSetId": plan.ids[REPS_SET]})

        plan.add(f"add {REPS_SET} to permission set group {developer_name}", join)


def _rep_assignees(api: OrgApi, opts: SetupOptions) -> list[tuple[str, str]]:
    """(user id, name) of the active users who get the reps' permission set."""
    if opts.rep_profile:
        profiles = [r["Id"] for r in api.query(format_soql("SELECT Id FROM Profile WHERE Name = {}", opts.rep_profile))]
        if not profiles:
            raise ValueError(f"no profile named {opts.rep_profile!r} in this org (LEADPILOT_SALESFORCE__REP_ACCESS "
                             "names a profile by its label, e.g. profile:Standard User)")
        soql = format_soql("SELECT Id, Name FROM User WHERE ProfileId = {} AND IsActive = true "
                           "AND UserType = 'Standard' ORDER BY Name", profiles[0])
    elif opts.rep_ids:
        soql = format_soql("SELECT Id, Name FROM User WHERE Id IN {} AND IsActive = true ORDER BY Name",
                           sorted(set(opts.rep_ids)))
    else:
        return []
    return [(str(r["Id"]), str(r.get("Name") or r["Id"])) for r in api.query(soql)]


def _section(api: OrgApi, fields: Sequence[str]) -> Any:
    md = api._md()
    items = [md.LayoutItem(behavior="Readonly", field=f) for f in fields]
    return md.LayoutSection(customLabel=True, detailHeading=True, editHeading=False, label=SECTION,
                            layoutColumns=[md.LayoutColumn(layoutItems=items)], style="OneColumn")


def _section_fields(section: Any) -> list[str]:
    return [str(item.field) for col in (section.layoutColumns or []) for item in (col.layoutItems or [])
            if getattr(item, "field", None)]


def _plan_layouts(plan: Plan, api: OrgApi, named: Sequence[str], fields: Sequence[str]) -> None:
    available = [n for n in api.md_list("Layout") if n.startswith("Lead-")]
    unknown = sorted(set(named) - set(available))
    if unknown:
        raise ValueError(f"no Lead page layout named {', '.join(repr(u) for u in unknown)}; this org has "
                         f"{', '.join(repr(a) for a in available)} (LEADPILOT_SALESFORCE__LAYOUTS)")
    for layout in api.md_read("Layout", list(named) or available):
        sections = list(layout.layoutSections or [])
        ours = [s for s in sections if getattr(s, "label", None) == SECTION]
        if ours and _section_fields(ours[0]) == list(fields):
            continue
        verb = "update" if ours else "add"

        def change(layout: Any = layout, sections: list[Any] = sections) -> None:
            layout.layoutSections = [s for s in sections if getattr(s, "label", None) != SECTION]
            layout.layoutSections.append(_section(api, fields))
            api.call("updateMetadata Layout", lambda: api._md().Layout.update([layout]))

        plan.add(f"{verb} the '{SECTION}' section ({', '.join(fields)}) on page layout {layout.fullName}", change)


def _plan_list_view(plan: Plan, api: OrgApi, fields: Sequence[str]) -> None:
    columns = ["FULL_NAME", "LEAD.COMPANY", *fields, "LEAD.STATUS"]
    have = api.md_read("ListView", [LIST_VIEW])
    current = have[0] if have and getattr(have[0], "fullName", None) else None
    if current is not None and (current.label, current.filterScope, list(current.columns or [])) == (
            LIST_VIEW_LABEL, "Mine", columns):
        return

    def save() -> None:
        md = api._md()
        view = md.ListView(fullName=LIST_VIEW, label=LIST_VIEW_LABEL, filterScope="Mine", columns=columns)
        if current is None:
            try:
                api.call("createMetadata ListView", lambda: md.ListView.create([view]))
                return
            except CRMError as err:
                if err.code != "DUPLICATE_DEVELOPER_NAME":
                    raise  # else created meanwhile by another init-crm: make it ours below
        api.call("updateMetadata ListView", lambda: md.ListView.update([view]))

    plan.add(f"{'update' if current is not None else 'create'} the list view '{LIST_VIEW_LABEL}' ({LIST_VIEW})", save)
