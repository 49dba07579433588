"""The Metadata SOAP API (``POST /services/Soap/m/{ver}/``) for custom fields.

simple-salesforce's ``sf.mdapi`` (zeep) sends ``SOAPAction: ""`` and puts the session in
``SessionHeader/sessionId``; the operation is the body's element. Supported:
``createMetadata`` of ``CustomField`` components (``Lead.ML_Score__c`` …; ≤ 10 per call;
a field that exists answers ``DUPLICATE_DEVELOPER_NAME``) and ``readMetadata``. Created
fields join the store's schema at once, so SOQL, describe and writes see them. Responses
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
    if not ctx.use_token(root.findtext(f".//{{{MD}}}SessionHeader/{{{MD}}}sessionId")):
        return fault("INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session")
    if spend() is None:
        return fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    body = root.find(f"{{{ENV}}}Body")
    op = body[0] if body is not None and len(body) else None
    if op is None:
        return fault("INVALID_OPERATION", "The SOAP body names no operation")
    if op.tag == f"{{{MD}}}createMetadata":
        items = op.findall(f"{{{MD}}}metadata")
        if len(items) > MAX_COMPONENTS:
            return fault("LIMIT_EXCEEDED", f"createMetadata takes at most {MAX_COMPONENTS} components, got {len(items)}")
        results = "".join(_create(ctx, item) for item in items)
        return Response.text(200, _envelope(f"<createMetadataResponse>{results}</createMetadataResponse>"),
                             "text/xml; charset=utf-8")
    if op.tag == f"{{{MD}}}readMetadata":
        names = [e.text or "" for e in op.findall(f"{{{MD}}}fullNames")]
        records = "".join(_read(ctx, n) for n in names)
        return Response.text(200, _envelope(f"<readMetadataResponse><result>{records}</result></readMetadataResponse>"),
                             "text/xml; charset=utf-8")
    name = op.tag.rsplit("}", 1)[-1]
    return fault("INVALID_OPERATION", f"The sandbox Metadata API supports createMetadata and readMetadata, not {name}")


def _result(full_name: str, error: tuple[str, str] | None = None) -> str:
    errors = "" if error is None else (f"<errors><message>{escape(error[1])}</message>"
                                       f"<statusCode>{error[0]}</statusCode></errors>")
    return (f"<result>{errors}<fullName>{escape(full_name)}</fullName>"
            f"<success>{'false' if error else 'true'}</success></result>")


def _create(ctx: SandboxContext, item: ET.Element) -> str:
    """Create one CustomField; the SaveResult XML."""
    text: dict[str, Any] = {c.tag.rsplit("}", 1)[-1]: (c.text or "").strip() for c in item}
    full_name = text.get("fullName", "")
    xsi_type = (item.get(f"{{{XSI}}}type") or "").rsplit(":", 1)[-1]
    if xsi_type != "CustomField":
        return _result(full_name, ("INVALID_TYPE", f"The sandbox creates CustomField components only, not {xsi_type!r}"))
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
