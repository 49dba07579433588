"""Salesforce settings: auth modes (a discriminated union), the login host, API limits, the Lead
fields leadpilot reads and the fields it writes, and the checks pydantic cannot express
(``SalesforceSettings.problems``).

Sections of the settings root in ``sync.config.settings``: ``LEADPILOT_SALESFORCE__…`` and
``LEADPILOT_FIELDS__…``. Messages name variables from the prefix the root passes in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from connectors.settings import Deadlines, FieldName, FrozenModel, Seconds


# ---------------------------------------------------------------- Salesforce auth (discriminated)
class SalesforceJWT(FrozenModel):
    """OAuth 2.0 JWT bearer flow: a connected app's consumer key and the private key file."""

    kind: Literal["jwt"] = "jwt"
    username: str
    consumer_key: str
    private_key_file: Path


class SalesforceClientCredentials(FrozenModel):
    """OAuth client-credentials flow; needs the org's My Domain (e.g. ``acme.my``)."""

    kind: Literal["client_credentials"] = "client_credentials"
    consumer_key: str
    consumer_secret: SecretStr


class SalesforcePassword(FrozenModel):
    """Username + password + security token (OAuth password flow when a consumer key is given)."""

    kind: Literal["password"] = "password"
    username: str
    password: SecretStr
    security_token: SecretStr = SecretStr("")
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None


class SalesforceToken(FrozenModel):
    """A plain access token and instance URL (no refresh possible: the token must be renewed outside)."""

    kind: Literal["token"] = "token"
    access_token: SecretStr
    instance_url: str

    @field_validator("instance_url")
    @classmethod
    def _https(cls, v: str) -> str:
        if not v.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("not an https:// URL")
        return v.rstrip("/")


SalesforceAuth = Annotated[
    SalesforceJWT | SalesforceClientCredentials | SalesforcePassword | SalesforceToken,
    Field(discriminator="kind"),
]


class SalesforceSettings(FrozenModel):
    """Salesforce: auth mode, login host, API version and the Lead fields leadpilot reads."""

    auth: SalesforceAuth | None = None
    # "login", "test" (sandboxes) or a My Domain prefix like "acme.my"
    domain: str = "login"
    # Where login requests really go (sandbox/testing); empty: https://{domain}.salesforce.com
    login_url: str | None = None
    api_version: str = "59.0"
    object: Literal["Lead"] = "Lead"
    # Above this many updates in one write, use Bulk API 2.0 instead of sObject Collections
    bulk_threshold: int = Field(default=10_000, ge=1)
    # Query overlap behind the watermark: SystemModstamp is set at commit, rows can appear late
    lookback_seconds: int = Field(default=600, ge=0)
    # CRM field names for the lead attributes leadpilot reads (override for custom fields)
    source_fields: dict[str, FieldName] = Field(default_factory=dict)
    text_fields: tuple[FieldName, ...] = ("Title", "Company", "Industry", "Description")
    ca_bundle: Path | None = None
    # Deadlines of every call (connectors.settings.Deadlines)
    connect_timeout: Seconds = Deadlines().connect
    read_timeout: Seconds = Deadlines().read
    # Bulk API 2.0 result downloads (one CSV of up to 150 MB per file) get a longer read deadline
    bulk_read_timeout: Seconds = 300.0
    # init-crm: the Lead page layouts that get the "leadpilot" section (empty: every Lead layout)
    layouts: tuple[str, ...] = ()
    # init-crm: who gets the reps' read-only permission set: "" = the reps of the routing file,
    # "profile:<Profile name>" = every active user of that profile,
    # "permission_set_group:<DeveloperName>" = a component of that permission set group (its holders)
    rep_access: str = ""

    @property
    def has_credentials(self) -> bool:
        """An auth mode is configured."""
        return self.auth is not None

    @property
    def login_username(self) -> str | None:
        """The user leadpilot logs in as, when the auth mode names one (jwt, password)."""
        return getattr(self.auth, "username", None)

    @property
    def deadlines(self) -> Deadlines:
        """``LEADPILOT_SALESFORCE__CONNECT_TIMEOUT`` and ``__READ_TIMEOUT``."""
        return Deadlines(self.connect_timeout, self.read_timeout)

    def problems(self, env_prefix: str, required_by: str | None = None) -> list[str]:
        """Problems a valid-looking section can still have, one line each (``VARIABLE: what is
        wrong; e.g. VARIABLE=valid``). ``env_prefix``: this section's variable prefix
        (``LEADPILOT_SALESFORCE__``); ``required_by``: the setting that chose this CRM
        (``LEADPILOT_CRM=salesforce``), ``None`` when Salesforce is not the configured CRM."""
        out: list[str] = []
        auth, p = self.auth, env_prefix
        if required_by and auth is None:
            out.append(
                f"{p}AUTH__KIND: not set but {required_by} needs an auth mode "
                f"(jwt | client_credentials | password | token); e.g. {p}AUTH__KIND=jwt"
            )
        if isinstance(auth, SalesforceJWT) and not auth.private_key_file.is_file():
            out.append(
                f"{p}AUTH__PRIVATE_KEY_FILE: {str(auth.private_key_file)!r} is not a readable "
                f"file; e.g. {p}AUTH__PRIVATE_KEY_FILE=/etc/leadpilot/salesforce.key"
            )
        if isinstance(auth, SalesforceClientCredentials) and self.domain in ("login", "test") and not self.login_url:
            out.append(
                f"{p}DOMAIN: the client-credentials flow needs the org's My Domain, not "
                f"{self.domain!r}; e.g. {p}DOMAIN=acme.my"
            )
        return out


class FieldNames(FrozenModel):
    """The CRM fields/properties leadpilot writes (created by ``leadpilot init-crm``)."""

    score: FieldName = "LeadPilot_Score__c"
    grade: FieldName = "LeadPilot_Grade__c"
    opportunity: FieldName = "LeadPilot_Opportunity__c"
    reasons: FieldName = "LeadPilot_Reasons__c"
    model_version: FieldName = "LeadPilot_Model_Version__c"
    scored_at: FieldName = "LeadPilot_Scored_At__c"
    routing_reason: FieldName = "LeadPilot_Routing_Reason__c"
    owner: FieldName = "OwnerId"
