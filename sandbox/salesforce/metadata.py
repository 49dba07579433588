"""The Metadata SOAP API (``POST /services/Soap/m/{ver}/``): custom fields, page layouts, list views.

simple-salesforce's ``sf.mdapi`` (zeep) sends ``SOAPAction: ""`` and puts the session in
``SessionHeader/sessionId``; the operation is the body's element. Supported:
``createMetadata`` of ``CustomField`` components (``Lead.ML_Score__c`` …; ≤ 10 per call;
a field that exists answers ``DUPLICATE_DEVELOPER_NAME``) and of ``ListView`` components
(``Lead.My_View``); ``readMetadata`` of those and of ``Layout`` (``Lead-Lead Layout``);
``updateMetadata`` of ``Layout`` and ``ListView``; ``listMetadata`` of ``Layout`` and
``ListView``. Only an administrator may call it (else a ``INSUFFICIENT_ACCESS`` fault).
Created fields join the store's schema at once but, as in a real org, nobody may see them
until a permission set grants them (``sandbox.salesforce.access``). Responses
are in the ``http://soap.sforce.com/2006/04/metadata`` namespace, as zeep expects;
session and protocol errors are SOAP faults (HTTP 500), as a real org sends.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from sandbox.context import SandboxContext
from sandbox.http import Request, Response
from sandbox.salesforce.access import is_admin, user_id
from sandbox.salesforce.values import METADATA_TYPES
from sandbox.store import OBJECTS

MD = "http://soap.sforce.com/2006/04/metadata"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_COMPONENTS = 10
_DESCRIBE_TO_MD = {v: k for k, v in reversed(list(METADATA_TYPES.items()))}


def _envelope(inner: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{ENV}" '
            f'xmlns="{MD}" xmlns:xsi="{XSI}"><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>')


def fault(code: str, message: str) -> Response:
    """A SOAP fault (``sf:CODE``) — zeep raises it as ``zeep.exceptions.Fault``."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{ENV}" '
            f'xmlns:sf="{MD}"><soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode>'
            f"<faultstring>{code}: {escape(message)}</faultstring></soapenv:Fault></soapenv:Body>"
            f"</soapenv:Envelope>")
    return Response.text(500, body, "text/xml; charset=utf-8")


def handle(ctx: SandboxContext, req: Request, spend: Callable[[], int | None]) -> Response:
    """Serve one Metadata API call; ``spend()`` counts it against the API budget."""
    try:
        root = ET.fromstring(req.body)
    except ET.ParseError:
        return fault("INVALID_XML", "The request body is not well-formed XML")
    session = root.findtext(f".//{{{MD}}}SessionHeader/{{{MD}}}sessionId")
    if not ctx.use_token(session):
        return fault("INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session")
    if spend() is None:
        return fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    if not is_admin(ctx.store, user_id(ctx, session)):
        return fault("INSUFFICIENT_ACCESS", "insufficient access rights on cross-reference id")
    body = root.find(f"{{{ENV}}}Body")
    op = body[0] if body is not None and len(body) else None
    if op is None:
        return fault("INVALID_OPERATION", "The SOAP body names no operation")
    name = op.tag.rsplit("}", 1)[-1]
    if name in ("createMetadata", "updateMetadata"):
        items = op.findall(f"{{{MD}}}metadata")
        if len(items) > MAX_COMPONENTS:
            return fault("LIMIT_EXCEEDED", f"{name} takes at most {MAX_COMPONENTS} components, got {len(items)}")
        save = _create if name == "createMetadata" else _update
        with ctx.lock:
            results = "".join(save(ctx, item) for item in items)
        return _ok(f"<{name}Response>{results}</{name}Response>")
    if name == "readMetadata":
        mtype = op.findtext(f"{{{MD}}}type") or "CustomField"
        names = [e.text or "" for e in op.findall(f"{{{MD}}}fullNames")]
        if len(names) > MAX_COMPONENTS:
            return fault("LIMIT_EXCEEDED", f"readMetadata takes at most {MAX_COMPONENTS} names, got {len(names)}")
        reader = _READERS.get(mtype)
        if reader is None:
            return fault("INVALID_TYPE", f"The sandbox reads {', '.join(_READERS)} metadata, not {mtype}")
        with ctx.lock:
            records = "".join(reader(ctx, n) for n in names)
        return _ok(f"<readMetadataResponse><result>{records}</result></readMetadataResponse>")
    if name == "listMetadata":
        types = [q.findtext(f"{{{MD}}}type") or "" for q in op.findall(f"{{{MD}}}queries")]
        with ctx.lock:
            found = "".join(_file_properties(ctx, t) for t in types)
        return _ok(f"<listMetadataResponse>{found}</listMetadataResponse>")
    return fault("INVALID_OPERATION", "The sandbox Metadata API supports createMetadata, readMetadata, "
                 f"updateMetadata and listMetadata, not {name}")


def _ok(inner: str) -> Response:
    return Response.text(200, _envelope(inner), "text/xml; charset=utf-8")


def _result(full_name: str, error: tuple[str, str] | None = None) -> str:
    errors = "" if error is None else (f"<errors><message>{escape(error[1])}</message>"
                                       f"<statusCode>{error[0]}</statusCode></errors>")
    return (f"<result>{errors}<fullName>{escape(full_name)}</fullName>"
            f"<success>{'false' if error else 'true'}</success></result>")


def _local(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _create(ctx: SandboxContext, item: ET.Element) -> str:
    """Create one CustomField or ListView; the SaveResult XML."""
    text: dict[str, Any] = {c.tag.rsplit("}", 1)[-1]: (c.text or "").strip() for c in item}
    full_name = text.get("fullName", "")
    xsi_type = (item.get(f"{{{XSI}}}type") or "").rsplit(":", 1)[-1]
    if xsi_type == "ListView":
        if full_name in _list_views(ctx):
            return _result(full_name, ("DUPLICATE_DEVELOPER_NAME",
                                       f"There is already a list view named {full_name.partition('.')[2]}."))
        return _save_list_view(ctx, item, full_name)
    if xsi_type != "CustomField":
        return _result(full_name, ("INVALID_TYPE", "The sandbox creates CustomField and ListView components only, "
                                   f"not {xsi_type!r}"))
    obj_name, _, field = full_name.partition(".")
    obj = next((o for o in OBJECTS if o.lower() == obj_name.lower()), None)
    if obj is None or not field:
        return _result(full_name, ("INVALID_CROSS_REFERENCE_KEY",
                                   f"In field: fullName - no CustomObject named {obj_name} found"))
    if not field.endswith("__c") or len(field) <= 3:
        return _result(full_name, ("FIELD_INTEGRITY_EXCEPTION",
                                   "A custom field name must end in __c, e.g. Lead.ML_Score__c"))
    if not text.get("label"):
        return _result(full_name, ("FIELD_INTEGRITY_EXCEPTION", "Field Label: You must enter a value"))
    ftype = METADATA_TYPES.get(text.get("type", ""))
    if ftype is None:
        return _result(full_name, ("FIELD_INTEGRITY_EXCEPTION",
                                   f"Invalid field type {text.get('type')!r}; use one of {', '.join(METADATA_TYPES)}"))
    if not ctx.store.add_field(obj, field, ftype):
        return _result(full_name, ("DUPLICATE_DEVELOPER_NAME", f"There is already a field named {field[:-3]} on {obj}."))
    with ctx.lock:
        ctx.state.setdefault("sf_labels", {}).setdefault(obj, {})[field] = text["label"]
    return _result(full_name)


def _read(ctx: SandboxContext, full_name: str) -> str:
    obj_name, _, field = full_name.partition(".")
    obj = next((o for o in OBJECTS if o.lower() == obj_name.lower()), None)
    custom = ctx.store.custom_fields.get(obj, {}) if obj else {}
    name = next((k for k in custom if k.lower() == field.lower()), None)
    if obj is None or name is None:
        return '<records xsi:type="CustomField"/>'  # what a real org answers for a missing component
    label = ctx.state.get("sf_labels", {}).get(obj, {}).get(name, name)
    md_type = _DESCRIBE_TO_MD.get(custom[name], "Text")
    return (f'<records xsi:type="CustomField"><fullName>{obj}.{name}</fullName>'
            f"<label>{escape(label)}</label><type>{md_type}</type></records>")


# ---------------------------------------------------------------------- page layouts and list views
# A fresh org's Lead page layouts: section label → columns of (behavior, field).
_DEFAULT_LAYOUTS: dict[str, list[dict[str, Any]]] = {
    "Lead-Lead Layout": [
        {"label": "Lead Information", "style": "TwoColumnsTopToBottom",
         "columns": [[("Required", "Company"), ("Edit", "Title"), ("Edit", "Email"), ("Required", "Status")],
                     [("Edit", "OwnerId"), ("Edit", "LeadSource"), ("Edit", "Industry"), ("Edit", "Country")]]},
        {"label": "Description Information", "style": "OneColumn", "columns": [[("Edit", "Description")]]},
    ],
    "Lead-Lead (Marketing) Layout": [
        {"label": "Lead Information", "style": "TwoColumnsTopToBottom",
         "columns": [[("Required", "Company"), ("Edit", "Email")], [("Edit", "OwnerId"), ("Edit", "LeadSource")]]},
    ],
}


def _layouts(ctx: SandboxContext) -> dict[str, list[dict[str, Any]]]:
    return ctx.state.setdefault("sf_layouts", {k: [dict(s) for s in v] for k, v in _DEFAULT_LAYOUTS.items()})


def _list_views(ctx: SandboxContext) -> dict[str, dict[str, Any]]:
    return ctx.state.setdefault("sf_list_views", {"Lead.MyUnreadLeads": {
        "label": "My Unread Leads", "filterScope": "Mine", "columns": ["FULL_NAME", "LEAD.COMPANY"], "filters": []}})


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c) == name]


def _child_text(el: ET.Element, name: str) -> str:
    found = _children(el, name)
    return (found[0].text or "").strip() if found else ""


def _update(ctx: SandboxContext, item: ET.Element) -> str:
    full_name = _child_text(item, "fullName")
    xsi_type = (item.get(f"{{{XSI}}}type") or "").rsplit(":", 1)[-1]
    if xsi_type == "ListView":
        if full_name not in _list_views(ctx):
            return _result(full_name, ("INVALID_CROSS_REFERENCE_KEY",
                                       f"In field: fullName - no ListView named {full_name} found"))
        return _save_list_view(ctx, item, full_name)
    if xsi_type != "Layout":
        return _result(full_name, ("INVALID_TYPE", f"The sandbox updates Layout and ListView only, not {xsi_type!r}"))
    layouts = _layouts(ctx)
    if full_name not in layouts:
        return _result(full_name, ("INVALID_CROSS_REFERENCE_KEY", f"In field: fullName - no Layout named {full_name} found"))
    obj = full_name.partition("-")[0]
    sections = []
    for sec in _children(item, "layoutSections"):
        columns = [[(_child_text(li, "behavior") or "Edit", _child_text(li, "field"))
                    for li in _children(col, "layoutItems") if _child_text(li, "field")]
                   for col in _children(sec, "layoutColumns")]
        for _, f in (pair for col in columns for pair in col):
            if obj in OBJECTS and not ctx.store.has_field(obj, f):
                return _result(full_name, ("FIELD_INTEGRITY_EXCEPTION", f"Field:{f} does not exist. Check spelling."))
        sections.append({"label": _child_text(sec, "label"), "style": _child_text(sec, "style") or "TwoColumnsTopToBottom",
                         "columns": columns})
    layouts[full_name] = sections
    return _result(full_name)


def _save_list_view(ctx: SandboxContext, item: ET.Element, full_name: str) -> str:
    obj, _, view = full_name.partition(".")
    if obj not in OBJECTS or not view:
        return _result(full_name, ("INVALID_CROSS_REFERENCE_KEY", f"In field: fullName - no CustomObject named {obj} found"))
    label = _child_text(item, "label")
    if not label:
        return _result(full_name, ("REQUIRED_FIELD_MISSING", "Required field is missing: label"))
    columns = [(c.text or "").strip() for c in _children(item, "columns")]
    for col in columns:
        if col.endswith("__c") and not ctx.store.has_field(obj, col):
            return _result(full_name, ("FIELD_INTEGRITY_EXCEPTION", f"Invalid column: {col}"))
    filters = [(_child_text(f, "field"), _child_text(f, "operation"), _child_text(f, "value"))
               for f in _children(item, "filters")]
    _list_views(ctx)[full_name] = {"label": label, "filterScope": _child_text(item, "filterScope") or "Everything",
                                   "columns": columns, "filters": filters}
    return _result(full_name)


def _read_layout(ctx: SandboxContext, full_name: str) -> str:
    sections = _layouts(ctx).get(full_name)
    if sections is None:
        return '<records xsi:type="Layout"/>'
    out = []
    for sec in sections:
        cols = "".join("<layoutColumns>" + "".join(f"<layoutItems><behavior>{b}</behavior><field>{escape(f)}</field>"
                                                   "</layoutItems>" for b, f in col) + "</layoutColumns>"
                       for col in sec["columns"])
        out.append(f"<layoutSections><customLabel>true</customLabel><detailHeading>true</detailHeading>"
                   f"<editHeading>true</editHeading><label>{escape(sec['label'])}</label>{cols}"
                   f"<style>{sec['style']}</style></layoutSections>")
    return f'<records xsi:type="Layout"><fullName>{escape(full_name)}</fullName>{"".join(out)}</records>'


def _read_list_view(ctx: SandboxContext, full_name: str) -> str:
    view = _list_views(ctx).get(full_name)
    if view is None:
        return '<records xsi:type="ListView"/>'
    cols = "".join(f"<columns>{escape(c)}</columns>" for c in view["columns"])
    filters = "".join(f"<filters><field>{escape(f)}</field><operation>{op}</operation><value>{escape(v)}</value>"
                      "</filters>" for f, op, v in view["filters"])
    return (f'<records xsi:type="ListView"><fullName>{escape(full_name)}</fullName>{cols}'
            f"<filterScope>{view['filterScope']}</filterScope>{filters}<label>{escape(view['label'])}</label></records>")


def _file_properties(ctx: SandboxContext, mtype: str) -> str:
    names = list(_layouts(ctx)) if mtype == "Layout" else list(_list_views(ctx)) if mtype == "ListView" else []
    folder = "layouts" if mtype == "Layout" else "objects"
    return "".join(
        f"<result><createdById>005000000000001AAA</createdById><createdByName>Integration User</createdByName>"
        f"<createdDate>2025-01-01T00:00:00.000Z</createdDate><fileName>{folder}/{escape(n)}</fileName>"
        f"<fullName>{escape(n)}</fullName><id>00h{i:012d}AAA</id><lastModifiedById>005000000000001AAA"
        f"</lastModifiedById><lastModifiedByName>Integration User</lastModifiedByName><lastModifiedDate>"
        f"2025-01-01T00:00:00.000Z</lastModifiedDate><type>{mtype}</type></result>"
        for i, n in enumerate(names, 1))


_READERS: dict[str, Callable[[SandboxContext, str], str]] = {
    "CustomField": _read, "Layout": _read_layout, "ListView": _read_list_view,
}
