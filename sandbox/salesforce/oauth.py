"""Salesforce login: ``POST /services/oauth2/token`` (password, client-credentials and
JWT-bearer grants) and the SOAP partner ``login`` call (``POST /services/Soap/u/{ver}``).

Success answers what a real org answers (``access_token``, ``instance_url`` = the
sandbox, ``id``, ``token_type``, ``issued_at``, ``signature``); failures answer 400
``{"error", "error_description"}`` (SOAP: a 500 ``sf:INVALID_LOGIN`` fault), which
simple-salesforce raises as ``SalesforceAuthenticationFailed``. Secrets are compared in
constant time and never echoed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

import jwt

from sandbox.context import SandboxContext
from sandbox.http import Request, Response

ORG_ID = "00D000000000001AAA"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Hosts a JWT ``aud`` may name: the login hosts, or a My Domain host (``x.my.salesforce.com``).
_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


def _fail(error: str, description: str) -> Response:
    return Response.json(400, {"error": error, "error_description": description})


def _user_id(ctx: SandboxContext, username: str) -> str:
    for rec in ctx.store.all("User"):
        if rec.get("Username") == username:
            return str(rec["Id"])
    return "005000000000001AAA"


def _grant(ctx: SandboxContext, username: str) -> Response:
    """Mint a token and answer the token response."""
    cred = ctx.credentials
    token = ctx.issue_token(username)
    identity = f"{ctx.base_url}/id/{ORG_ID}/{_user_id(ctx, username)}"
    issued_at = str(int(time.time() * 1000))
    sig = hmac.new(cred.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    return Response.json(200, {"access_token": token, "instance_url": ctx.base_url, "id": identity,
                               "token_type": "Bearer", "issued_at": issued_at,
                               "signature": base64.b64encode(sig).decode()})


def token(ctx: SandboxContext, req: Request) -> Response:
    """The OAuth 2.0 token endpoint (form-encoded POST)."""
    if req.method != "POST":
        return _fail("invalid_request", "must use HTTP POST")
    form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    grant = form.get("grant_type", "")
    cred = ctx.credentials
    if grant == "password":
        if not _same(form.get("client_id"), cred.client_id):
            return _fail("invalid_client_id", "client identifier invalid")
        if not _same(form.get("client_secret"), cred.client_secret):
            return _fail("invalid_client", "invalid client credentials")
        password = form.get("password", "")
        # A real org wants password + security token unless the caller's IP is trusted.
        if _same(form.get("username"), cred.username) and (
                _same(password, cred.password) or _same(password, cred.password + cred.security_token)):
            return _grant(ctx, cred.username)
        if cred.rep_username and _same(form.get("username"), cred.rep_username) and _same(password, cred.rep_password):
            return _grant(ctx, cred.rep_username)  # the sales rep (a non-admin user)
        return _fail("invalid_grant", "authentication failure")
    if grant == "client_credentials":
        return _client_credentials(ctx, req, form)
    if grant == JWT_GRANT:
        return _jwt_bearer(ctx, form.get("assertion", ""))
    return _fail("unsupported_grant_type", "grant type not supported")


def _client_credentials(ctx: SandboxContext, req: Request, form: dict[str, str]) -> Response:
    cred = ctx.credentials
    auth = req.headers.get("authorization", "")
    key, secret = form.get("client_id"), form.get("client_secret")
    if auth.lower().startswith("basic "):
        try:
            key, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return _fail("invalid_client", "invalid client credentials")
    if not _same(key, cred.client_id):
        return _fail("invalid_client_id", "client identifier invalid")
    if not _same(secret, cred.client_secret):
        return _fail("invalid_client", "invalid client credentials")
    return _grant(ctx, cred.username)  # the flow runs as the connected app's "run as" user


def _jwt_bearer(ctx: SandboxContext, assertion: str) -> Response:
    cred = ctx.credentials
    if cred.jwt_public_key_pem is None:
        return _fail("invalid_grant", "no certificate is configured for this connected app")
    try:
        # simple-salesforce sends ``exp`` as a STRING, which PyJWT's own check rejects:
        # verify the signature here and the claims by hand below.
        claims: dict[str, Any] = jwt.decode(assertion, cred.jwt_public_key_pem, algorithms=["RS256"],
                                            options={"verify_exp": False, "verify_aud": False})
    except jwt.PyJWTError:
        return _fail("invalid_grant", "invalid assertion")
    if not _same(str(claims.get("iss", "")), cred.client_id):
        return _fail("invalid_client_id", "client identifier invalid")
    aud = str(claims.get("aud", ""))
    host = urlparse(aud).hostname or ""
    if aud not in _AUDIENCES and not (aud.startswith("https://") and host.endswith(".my.salesforce.com")):
        return _fail("invalid_grant", "audience is invalid")
    try:
        exp = float(claims.get("exp", ""))
    except (TypeError, ValueError):
        return _fail("invalid_grant", "invalid assertion")
    if exp < time.time():  # ``exp`` is real Unix time, not the simulated clock
        return _fail("invalid_grant", "expired authorization code")
    if claims.get("sub") != cred.username:
        return _fail("invalid_grant", "user hasn't approved this consumer")
    return _grant(ctx, cred.username)


def userinfo(ctx: SandboxContext, req: Request) -> Response:
    """``GET /services/oauth2/userinfo``: who the bearer token belongs to (OpenID Connect claims)."""
    username = ctx.token_user(req.bearer) if ctx.use_token(req.bearer) else None
    user = next((u for u in ctx.store.all("User") if u.get("Username") == username), None)
    if user is None:
        return Response.json(403, {"error": "invalid_token", "error_description": "Bad_OAuth_Token"})
    return Response.json(200, {"sub": f"{ctx.base_url}/id/{ORG_ID}/{user['Id']}", "user_id": user["Id"],
                               "organization_id": ORG_ID, "preferred_username": username,
                               "name": user.get("Name"), "email": user.get("Email"),
                               "active": bool(user.get("IsActive")), "user_type": user.get("UserType")})


_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_PARTNER = "urn:partner.soap.sforce.com"


def soap_login(ctx: SandboxContext, req: Request, version: str) -> Response:
    """The partner API ``login`` call: password + security token, answered in SOAP."""
    cred = ctx.credentials
    try:
        root = ET.fromstring(req.body)
    except ET.ParseError:
        return _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
    username = root.findtext(f".//{{{_PARTNER}}}username") or ""
    password = root.findtext(f".//{{{_PARTNER}}}password") or ""
    if not (_same(username, cred.username) and _same(password, cred.password + cred.security_token)):
        return _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
    session = ctx.issue_token(cred.username)
    uid = _user_id(ctx, cred.username)
    body = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" '
            f'xmlns="{_PARTNER}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            f"<loginResponse><result>"
            f"<metadataServerUrl>{ctx.base_url}/services/Soap/m/{version}/{ORG_ID[:15]}</metadataServerUrl>"
            f"<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{ctx.base_url}/services/Soap/u/{version}/{ORG_ID[:15]}</serverUrl>"
            f"<sessionId>{escape(session)}</sessionId><userId>{uid}</userId>"
            f"</result></loginResponse></soapenv:Body></soapenv:Envelope>")
    return Response.text(200, body, "text/xml; charset=utf-8")


def _soap_fault(code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" '
            f'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode>"
            f"<faultstring>{code}: {escape(message)}</faultstring><detail>"
            f'<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>'
            f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage></sf:LoginFault>"
            f"</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>")
    return Response.text(500, body, "text/xml; charset=utf-8")
