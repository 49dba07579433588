"""HubSpot tokens and scopes: who may call what, the 403 ``MISSING_SCOPES`` body, token introspection.

A portal's tokens each hold a set of scopes, as a real Service Key or private app does. The
sandbox's main token (``credentials.hubspot_token``, a private-app token) holds every scope
unless the admin API narrows it; more tokens (Service Keys, private apps) are added through
``POST /_sandbox/hubspot/tokens``. A call whose token lacks a scope its endpoint needs gets the
403 HubSpot sends (crm-apis.md §6): ``category: MISSING_SCOPES`` and the scopes in
``errors[].context.requiredGranularScopes``.

Introspection: ``POST /oauth/v2/private-apps/get/access-token-info`` (``{"tokenKey": token}``)
answers a private-app token's scopes. Service Keys have no documented introspection endpoint
(as of 2026-12), so for them the sandbox answers that endpoint as for any token that is not a
private app's: 400 — a client then learns the scopes by calling what it needs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sandbox.context import SandboxContext
from sandbox.http import Request, Response

OBJECTS = ("contacts", "deals", "leads")
ALL_SCOPES: tuple[str, ...] = (
    *(f"crm.objects.{o}.{rw}" for o in OBJECTS for rw in ("read", "write")),
    *(f"crm.schemas.{o}.{rw}" for o in OBJECTS for rw in ("read", "write")),
    "crm.objects.owners.read",
    "oauth",
)
KINDS = ("private_app", "service_key")
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"
HUB_ID, APP_ID, USER_ID = 24_601_000, 3_141_592, 9_000_001
SCOPES_DOC = "https://developers.hubspot.com/scopes"


@dataclass
class Grant:
    """What one token may do: its kind and its scopes."""

    kind: str = "private_app"
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(ALL_SCOPES))


def new_token(kind: str) -> str:
    """A token of ``kind``: private-app tokens look as HubSpot's do (``pat-na1-…``); Service Keys
    get a prefix of the sandbox's own (their real format is not documented)."""
    prefix = "pat-na1-" if kind == "private_app" else "sk-na1-"
    return prefix + secrets.token_hex(16)


def grant_for(ctx: SandboxContext, token: str | None) -> Grant | None:
    """The grant behind a bearer token, or None when the portal does not know it."""
    from sandbox.hubspot.api import state

    if token is None:
        return None
    st = state(ctx)
    if token == ctx.credentials.hubspot_token:
        return st.main_grant
    return st.tokens.get(token)


def add_token(ctx: SandboxContext, body: Any) -> dict[str, Any]:
    """Admin: add a token (or change the scopes of a known one, the main token included).

    ``body``: ``{"kind": "service_key"|"private_app", "scopes": [...], "token"?: existing}``;
    scopes default to all of them. Raises ``ValueError`` naming what is wrong.
    """
    from sandbox.hubspot.api import state

    if not isinstance(body, dict):
        raise ValueError('POST /_sandbox/hubspot/tokens takes a JSON object, e.g. {"kind": "service_key", '
                         '"scopes": ["crm.objects.contacts.read"]}')
    kind = str(body.get("kind") or "private_app")
    if kind not in KINDS:
        raise ValueError(f"token kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    scopes = body.get("scopes", list(ALL_SCOPES))
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValueError("scopes must be a list of scope names")
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(ALL_SCOPES)}")
    grant = Grant(kind, frozenset(scopes))
    st = state(ctx)
    token = body.get("token")
    with st.lock:
        if token is None:
            token = new_token(kind)
        elif token == ctx.credentials.hubspot_token:
            st.main_grant = grant
            return {"token": token, "kind": kind, "scopes": sorted(grant.scopes)}
        elif token not in st.tokens:
            raise ValueError("no such token: leave out \"token\" to create one")
        st.tokens[str(token)] = grant
    return {"token": token, "kind": kind, "scopes": sorted(grant.scopes)}


def required_scopes(route: str, params: dict[str, str]) -> list[str]:
    """The scopes an endpoint needs (all of them) — granular scopes, as HubSpot names them."""
    module, func = route.split(".")
    if module == "objects":
        if func == "associations":
            return [f"crm.objects.{params['t']}.read", f"crm.objects.{params['to']}.read"]
        rw = "write" if func in ("batch_update", "update_one") else "read"
        return [f"crm.objects.{params['t']}.{rw}"]
    if func in ("owners", "owner"):
        return ["crm.objects.owners.read"]
    rw = "write" if func.startswith(("create", "update")) else "read"
    return [f"crm.schemas.{params['t']}.{rw}"]


def missing_scopes(ctx: SandboxContext, grant: Grant, needed: list[str]) -> Response | None:
    """The 403 HubSpot answers when ``grant`` lacks any of ``needed`` (None: allowed)."""
    from sandbox.hubspot.api import error

    if all(s in grant.scopes for s in needed):
        return None
    which = "All of the following scopes are required." if len(needed) > 1 else \
        "One or more of the following scopes are required."
    return error(ctx, 403, "This app hasn't been granted all required scopes to make this call. Read more about "
                 f"required scopes here: {SCOPES_DOC}.", "MISSING_SCOPES",
                 errors=[{"message": which, "context": {"requiredGranularScopes": needed}}],
                 links={"scopes": SCOPES_DOC})


def token_info(ctx: SandboxContext, req: Request) -> Response:
    """``POST /oauth/v2/private-apps/get/access-token-info``: a private-app token's scopes."""
    from sandbox.hubspot.api import error

    try:
        body = req.json() if req.body else None
    except ValueError:
        body = None
    key = body.get("tokenKey") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key:
        return error(ctx, 400, 'The body needs "tokenKey": the private app access token to inspect.',
                     "VALIDATION_ERROR")
    grant = grant_for(ctx, key)
    if grant is None:
        return error(ctx, 401, "The access token is not valid: it is unknown, expired or revoked.",
                     "INVALID_AUTHENTICATION")
    if grant.kind != "private_app":
        return error(ctx, 400, "The token is not a private app access token.", "VALIDATION_ERROR")
    return Response.json(200, {"userId": USER_ID, "hubId": HUB_ID, "appId": APP_ID, "scopes": sorted(grant.scopes)})
