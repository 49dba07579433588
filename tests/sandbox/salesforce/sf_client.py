"""Build a logged-in simple-salesforce client against a running sandbox (test helper).

simple-salesforce's login URLs are fixed (``https://{domain}.salesforce.com/...``), so
``login`` mounts a ``requests`` adapter that rewrites any ``*.salesforce.com`` URL to the
sandbox; the token response's ``instance_url`` then points every later call there.
TLS: the session trusts only the sandbox CA (``verify=ca``) and ignores
``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` (``trust_env=False`` — they would override
``verify``, psf/requests#3829); ``trust_mdapi`` does the same for the Metadata API's own
zeep session (simple-salesforce#686).

    info = server.info                      # SandboxServer(...).info, or the serve JSON line
    sf = login(info, "password")            # | "client_credentials" | "jwt" | "soap" | "direct"
    sf.query_all("SELECT Id FROM Lead")

The JWT flow needs ``private_key`` (PEM) whose public half is in the sandbox's
``ctx.credentials.jwt_public_key_pem`` (see ``rsa_key_pair``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

MY_DOMAIN = "leadpilot-sandbox.my"  # client credentials need a My Domain; any *.my works


class SandboxRedirectAdapter(HTTPAdapter):
    """Sends requests for ``*.salesforce.com`` to ``base_url`` (path and query kept)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        if (parts.hostname or "").endswith(".salesforce.com"):
            request.url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, *args, **kwargs)


def sandbox_session(info: dict[str, Any]) -> requests.Session:
    """A ``requests`` session that reaches the sandbox for login and trusts only its CA."""
    session = requests.Session()
    session.trust_env = False
    session.verify = info["ca_cert"]
    session.mount("https://", SandboxRedirectAdapter(info["salesforce"]["instance_url"]))
    return session


def login(info: dict[str, Any], flow: str = "password", private_key: bytes | None = None,
          session: requests.Session | None = None) -> Salesforce:
    """A real ``simple_salesforce.Salesforce`` logged in to the sandbox by ``flow``."""
    sf_info = info["salesforce"]
    s = session or sandbox_session(info)
    if flow == "password":
        sf = Salesforce(username=sf_info["username"], password=sf_info["password"],
                        consumer_key=sf_info["client_id"], consumer_secret=sf_info["client_secret"], session=s)
    elif flow == "client_credentials":
        sf = Salesforce(consumer_key=sf_info["client_id"], consumer_secret=sf_info["client_secret"],
                        domain=MY_DOMAIN, session=s)
    elif flow == "jwt":
        if private_key is None:
            raise ValueError("the jwt flow needs private_key (PEM); see rsa_key_pair()")
        sf = Salesforce(username=sf_info["username"], consumer_key=sf_info["client_id"],
                        privatekey=private_key.decode(), session=s)
    elif flow == "soap":
        sf = Salesforce(username=sf_info["username"], password=sf_info["password"],
                        security_token=sf_info["security_token"], session=s)
    elif flow == "rep":  # the sales rep: a non-admin user (password flow)
        sf = Salesforce(username=sf_info["rep_username"], password=sf_info["rep_password"],
                        consumer_key=sf_info["client_id"], consumer_secret=sf_info["client_secret"], session=s)
    elif flow == "direct":  # a token minted by the server; direct mode never re-logs in
        sf = Salesforce(instance_url=sf_info["instance_url"], session_id=sf_info["access_token"], session=s)
    else:
        raise ValueError(f"unknown flow {flow!r}: use password, client_credentials, jwt, soap, rep or direct")
    return sf


def grant(sf: Salesforce, name: str, fields: dict[str, bool], assignee: str) -> str:
    """A permission set ``name`` granting read (and edit where ``fields`` says True) on each
    ``Object.Field``, assigned to the user ``assignee``; its id. Over REST, as an admin does."""
    ps = sf.PermissionSet.create({"Name": name, "Label": name.replace("_", " ")})["id"]
    for full, edit in fields.items():
        sf.FieldPermissions.create({"ParentId": ps, "SobjectType": full.partition(".")[0], "Field": full,
                                    "PermissionsRead": True, "PermissionsEdit": edit})
    sf.PermissionSetAssignment.create({"PermissionSetId": ps, "AssigneeId": assignee})
    return str(ps)


def trust_mdapi(sf: Salesforce, info: dict[str, Any]) -> None:
    """Make the Metadata API's zeep session trust the sandbox CA too (it has its own)."""
    zeep_session = sf.mdapi._client.transport.session
    zeep_session.verify = info["ca_cert"]
    zeep_session.trust_env = False


def rsa_key_pair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) for the JWT bearer flow."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public
