"""What every sandbox handler receives: the store, the fault settings, credentials, counters.

The server builds one ``SandboxContext`` and passes it to each dialect's
``handle(ctx, req) -> Response``. Fields may be extended; existing names stay.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sandbox.store import Store


@dataclass
class Faults:
    """Fault injection, settable at start (``--faults k=v,k=v``) and at run time (admin API)."""

    p_429: float = 0.0  # probability a request is answered 429 (HubSpot TEN_SECONDLY_ROLLING body)
    p_5xx: float = 0.0  # probability of a 503
    slow_ms: int = 0  # added latency per request (real time; keep 0 in tests)
    token_expiry_after_calls: int = 0  # 0 = never; else every issued token dies after N calls
    p_lock_row: float = 0.0  # per-record UNABLE_TO_LOCK_ROW probability in sObject Collections
    index_lag_seconds: float = 0.0  # HubSpot search sees a write only N simulated seconds later
    sf_daily_budget: int = 15_000  # Salesforce API requests per 24 h (Sforce-Limit-Info total)
    hs_daily_limit: int = 250_000  # HubSpot daily limit
    hs_burst_limit: int = 100  # HubSpot requests per rolling 10 s (simulated clock + call count)


@dataclass
class Credentials:
    """The sandbox org's users and apps (printed in the serve JSON)."""

    username: str = "integration@leadpilot.sandbox"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    security_token: str = field(default_factory=lambda: secrets.token_urlsafe(8))
    client_id: str = field(default_factory=lambda: "3MVG" + secrets.token_urlsafe(24))
    client_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    hubspot_token: str = field(default_factory=lambda: "pat-na1-" + secrets.token_hex(16))
    jwt_public_key_pem: bytes | None = None  # for the JWT bearer flow; set by the server/tests
    # A sales rep who logs in too (a non-admin user: sees leadpilot's fields only through a
    # permission set); the username is the world's first rep, set by the server.
    rep_username: str = ""
    rep_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))


@dataclass
class SandboxContext:
    store: Store
    faults: Faults = field(default_factory=Faults)
    credentials: Credentials = field(default_factory=Credentials)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    counters: Counter[str] = field(default_factory=Counter)  # "<dialect> <METHOD> <route>" -> calls
    base_url: str = ""  # https://127.0.0.1:PORT
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Live Salesforce access tokens -> calls made with each (for faults.token_expiry_after_calls).
    tokens: dict[str, int] = field(default_factory=dict)
    # Per-dialect state that outlives a request (e.g. HubSpot's rate-limit windows).
    state: dict[str, Any] = field(default_factory=dict)
    # Salesforce access token -> the username it was issued to (whose permissions apply).
    token_users: dict[str, str] = field(default_factory=dict)

    def count(self, key: str) -> None:
        with self.lock:
            self.counters[key] += 1

    def issue_token(self, username: str | None = None) -> str:
        """Mint a Salesforce access token (org id prefix ``00D``, as real session ids look) for
        ``username`` (default: the integration user)."""
        token = "00D000000000001!" + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = 0
            self.token_users[token] = username or self.credentials.username
        return token

    def token_user(self, token: str | None) -> str | None:
        """The username a live-or-retired token was issued to."""
        with self.lock:
            return self.token_users.get(token or "")

    def use_token(self, token: str | None) -> bool:
        """True when ``token`` is live; counts the call and retires the token after
        ``faults.token_expiry_after_calls`` calls (0 = never)."""
        if token is None:
            return False
        with self.lock:
            calls = self.tokens.get(token)
            if calls is None:
                return False
            limit = self.faults.token_expiry_after_calls
            if limit and calls >= limit:
                del self.tokens[token]
                return False
            self.tokens[token] = calls + 1
            return True
