"""Building a ``simple_salesforce.Salesforce`` from settings: TLS, login redirection, counting.

- TLS: with ``ca_bundle`` set, ``trust_env = False`` (else REQUESTS_CA_BUNDLE silently overrides
  ``verify``, psf/requests#3829) and ``verify = ca_bundle``; zeep's Metadata session gets the
  same session (simple-salesforce#686).
- ``login_url``: the client's login URLs are fixed (``https://{domain}.salesforce.com``); a
  mounted adapter rewrites them to the given host, which works for every login flow.
- No transport retries (requests' default is none): retries happen in ``connectors.retry``.
- Every response passes a hook that counts it by kind and reads ``Sforce-Limit-Info``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

from connectors.salesforce.settings import (
    SalesforceClientCredentials,
    SalesforceJWT,
    SalesforcePassword,
    SalesforceSettings,
    SalesforceToken,
)
from connectors.usage import UsageMeter, parse_sforce_limit_info


class LoginRedirectAdapter(HTTPAdapter):
    """Sends requests for the fixed Salesforce login host to ``target`` (scheme://host:port)."""

    def __init__(self, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._target = urlsplit(target)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url or "")
        request.url = urlunsplit((self._target.scheme, self._target.netloc, url.path, url.query, url.fragment))
        return super().send(request, *args, **kwargs)


def call_kind(method: str, url: str) -> str:
    """read / write / meta / auth for one Salesforce request (by endpoint)."""
    path = urlsplit(url).path
    if "/services/oauth2/token" in path or "/services/Soap/u/" in path:
        return "auth"
    if "/services/Soap/m/" in path or path.endswith("/describe") or path.endswith("/limits"):
        return "meta"
    if "/jobs/ingest" in path or "/composite/" in path:
        return "write"
    return "read" if method.upper() == "GET" or "/jobs/query" in path else "write"


def build_session(settings: SalesforceSettings, meter: UsageMeter) -> requests.Session:
    s = requests.Session()
    if settings.ca_bundle is not None:
        s.trust_env = False
        s.verify = str(settings.ca_bundle)
    s.mount("https://", HTTPAdapter(max_retries=0))
    if settings.login_url:
        s.mount(f"https://{settings.domain}.salesforce.com", LoginRedirectAdapter(settings.login_url, max_retries=0))

    def count(resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        req = resp.request
        meter.record(call_kind(req.method or "GET", req.url or ""),
                     parse_sforce_limit_info(resp.headers.get("Sforce-Limit-Info")))

    s.hooks["response"].append(count)
    return s


def login(settings: SalesforceSettings, session: requests.Session) -> Salesforce:
    """A logged-in client for the configured auth flow (direct token mode: no login call)."""
    auth = settings.auth
    common: dict[str, Any] = {"session": session, "version": settings.api_version}
    if auth is None:
        raise ValueError(
            "Salesforce auth is not configured: set LEADPILOT_SALESFORCE__AUTH__KIND to jwt, "
            "client_credentials, password or token (see .env.example)"
        )
    if isinstance(auth, SalesforceToken):
        return Salesforce(instance_url=auth.instance_url, session_id=auth.access_token.get_secret_value(), **common)
    if isinstance(auth, SalesforceJWT):
        return Salesforce(username=auth.username, consumer_key=auth.consumer_key,
                          privatekey_file=str(auth.private_key_file), domain=settings.domain, **common)
    if isinstance(auth, SalesforceClientCredentials):
        return Salesforce(consumer_key=auth.consumer_key, consumer_secret=auth.consumer_secret.get_secret_value(),
                          domain=settings.domain, **common)
    if isinstance(auth, SalesforcePassword):
        if auth.consumer_key and auth.consumer_secret is not None:
            return Salesforce(username=auth.username, password=auth.password.get_secret_value(),
                              consumer_key=auth.consumer_key, consumer_secret=auth.consumer_secret.get_secret_value(),
                              domain=settings.domain, **common)
        return Salesforce(username=auth.username, password=auth.password.get_secret_value(),
                          security_token=auth.security_token.get_secret_value(), domain=settings.domain, **common)
    raise ValueError(f"unsupported Salesforce auth kind {type(auth).__name__}")


def refresher(settings: SalesforceSettings) -> Callable[[Salesforce], None] | None:
    """How to get a new session for this auth mode; ``None`` for a plain token (cannot refresh)."""
    if isinstance(settings.auth, SalesforceToken) or settings.auth is None:
        return None

    def refresh(sf: Salesforce) -> None:
        # The client re-logs in by itself only inside its own REST calls; Bulk 2.0 and the
        # Metadata API (which caches the session header) need it done for them.
        sf._refresh_session()
        sf._mdapi = None

    return refresh


def metadata_api(sf: Salesforce) -> Any:
    """``sf.mdapi`` with zeep's transport using our session (TLS settings, counting)."""
    mdapi = sf.mdapi
    mdapi._client.transport.session = sf.session
    return mdapi
