"""Building a ``simple_salesforce.Salesforce`` from settings: TLS, login redirection, counting.

- TLS: with ``ca_bundle`` set, ``trust_env = False`` (else REQUESTS_CA_BUNDLE silently overrides
  ``verify``, psf/requests#3829) and ``verify = ca_bundle``; zeep's Metadata session gets the
  same session (simple-salesforce#686).
- ``login_url``: the client's login URLs are fixed (``https://{domain}.salesforce.com``); a
  mounted adapter rewrites them to the given host, which works for every login flow.
- No transport retries (requests' default is none): retries happen in ``connectors.retry``.
- Deadlines: every request without its own timeout gets ``(connect_timeout, read_timeout)``
  (Bulk 2.0 result downloads ``bulk_read_timeout``), login and the Metadata API's zeep calls
  included; a timed-out call raises requests' ``Timeout``, a transient ``network`` fault.
- Every response passes a hook that counts it by kind and reads ``Sforce-Limit-Info``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from connectors.salesforce.errors import login_failure
from connectors.salesforce.settings import (
    SalesforceClientCredentials,
    SalesforceJWT,
    SalesforcePassword,
    SalesforceSettings,
    SalesforceToken,
)
from connectors.usage import UsageMeter, parse_sforce_limit_info


class DeadlineAdapter(HTTPAdapter):
    """No transport retries, and a deadline for every request that does not bring its own.

    simple-salesforce and zeep send most requests without ``timeout`` (requests then waits
    forever); ``timeouts`` is (connect, read) seconds, ``bulk_read`` the read deadline of Bulk 2.0
    result downloads.
    """

    def __init__(self, timeouts: tuple[float, float], bulk_read: float, **kwargs: Any) -> None:
        super().__init__(max_retries=0, **kwargs)
        self._timeouts, self._bulk_read = timeouts, bulk_read

    def deadline(self, url: str) -> tuple[float, float]:
        """(connect, read) seconds for a request to ``url``."""
        path = urlsplit(url).path.rstrip("/")
        bulk = "/jobs/" in path and path.rsplit("/", 1)[-1] in (
            "successfulResults", "failedResults", "unprocessedRecords", "results")
        return self._timeouts[0], self._bulk_read if bulk else self._timeouts[1]

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.deadline(request.url or "")
        return super().send(request, *args, **kwargs)


class LoginRedirectAdapter(DeadlineAdapter):
    """Sends requests for the fixed Salesforce login host to ``target`` (scheme://host:port)."""

    def __init__(self, target: str, timeouts: tuple[float, float], bulk_read: float, **kwargs: Any) -> None:
        super().__init__(timeouts, bulk_read, **kwargs)
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
    timeouts = settings.deadlines
    s.mount("https://", DeadlineAdapter(timeouts, settings.bulk_read_timeout))
    s.mount("http://", DeadlineAdapter(timeouts, settings.bulk_read_timeout))
    if settings.login_url:
        s.mount(f"https://{settings.domain}.salesforce.com",
                LoginRedirectAdapter(settings.login_url, timeouts, settings.bulk_read_timeout))

    def count(resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        req = resp.request
        meter.record(call_kind(req.method or "GET", req.url or ""),
                     parse_sforce_limit_info(resp.headers.get("Sforce-Limit-Info")))

    s.hooks["response"].append(count)
    return s


def login(settings: SalesforceSettings, session: requests.Session) -> Salesforce:
    """A logged-in client for the configured auth flow (direct token mode: no login call).

    A refused login raises ``AuthError`` saying what is wrong for this flow and what to do.
    """
    try:
        return _login(settings, session)
    except SalesforceAuthenticationFailed as exc:
        raise login_failure(settings.auth, exc.code, str(getattr(exc, "auth_message", "") or "")) from None


def _login(settings: SalesforceSettings, session: requests.Session) -> Salesforce:
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
