"""Prometheus metrics of the daemon, on one registry so tests can read them in isolation.

Counters are cumulative over the process; ``observe_cycle`` folds a cycle's report in. Every
family carries an ``org`` label (``DEFAULT_ORG`` for a one-org deployment): one process serving
many orgs (``leadpilot worker``) keeps one registry and hands each org ``for_org(name)``.
"""

from __future__ import annotations

import copy
import errno
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

LEAD_EVENTS = ("pulled", "scored", "assigned", "written", "parked", "skipped", "disqualified", "converted",
               "removed", "rerouted", "retried")
API_KINDS = ("read", "write", "meta")
DEFAULT_ORG = "default"  # the org label without LEADPILOT_ORGS_DIR


@dataclass
class Metrics:
    """The daemon's metric families. Create one per process (or per test)."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    org: str = DEFAULT_ORG

    def __post_init__(self) -> None:
        r = self.registry
        self.leads = Counter("leadpilot_leads_total", "Leads by what happened to them", ["org", "crm", "event"], registry=r)
        self.api_calls = Counter("leadpilot_api_calls_total", "CRM API calls by kind", ["org", "crm", "kind"], registry=r)
        self.api_budget_remaining = Gauge(
            "leadpilot_api_budget_remaining", "CRM API calls left in the current window", ["org", "crm", "window"], registry=r
        )
        self.cycle_seconds = Histogram(
            "leadpilot_cycle_duration_seconds",
            "Duration of one job run",
            ["org", "job"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.last_success = Gauge(
            "leadpilot_last_success_timestamp_seconds", "Unix time of the last successful run", ["org", "job"], registry=r
        )
        self.job_failures = Counter("leadpilot_job_failures_total", "Job runs that failed", ["org", "job"], registry=r)
        self.parked_leads = Gauge("leadpilot_parked_leads", "Leads currently parked for retry", ["org"], registry=r)
        self.rewards = Counter("leadpilot_rewards_applied_total", "Outcomes applied to the routing policy", ["org", "won"], registry=r)
        self.speed_to_lead = Histogram(
            "leadpilot_speed_to_lead_seconds",
            "Time from a lead's creation in the CRM to leadpilot's write of its rep as owner",
            ["org"],
            buckets=(15, 30, 60, 90, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600),
            registry=r,
        )
        self.queue_size = Gauge("leadpilot_queue_size", "Leads waiting with the fallback owner for a rep", ["org"], registry=r)
        self.queue_oldest = Gauge("leadpilot_queue_oldest_seconds", "How long the longest-waiting queued lead has waited",
                                  ["org"], registry=r)
        self.queue_over_sla = Gauge("leadpilot_queue_over_sla",
                                    "Queued leads that waited longer than LEADPILOT_ROUTING__QUEUE_SLA_MINUTES", ["org"],
                                    registry=r)
        self.model_info = Info("leadpilot_model", "Scoring model in use", ["org"], registry=r)
        self.policy_info = Info("leadpilot_policy", "Routing policy in use", ["org"], registry=r)

        self._start_org()

    def _start_org(self) -> None:
        # The families that have no label but the org are shown from the start (a zero count, an
        # empty queue), as they were before the org label, so a scrape sees them at once.
        for family in (self.parked_leads, self.speed_to_lead, self.queue_size, self.queue_oldest,
                       self.queue_over_sla):
            family.labels(org=self.org)

    def for_org(self, org: str) -> Metrics:
        """These metric families (one registry), with ``org`` as the label of what is observed."""
        scoped = copy.copy(self)
        scoped.org = org
        scoped._start_org()
        return scoped

    def observe_leads(self, crm: str, counts: Mapping[str, int]) -> None:
        for event in LEAD_EVENTS:
            n = int(counts.get(event, 0))
            if n:
                self.leads.labels(org=self.org, crm=crm, event=event).inc(n)

    def observe_api(self, crm: str, calls_by_kind: Mapping[str, int]) -> None:
        """Add API calls made since the last observation (deltas, not totals)."""
        for kind, n in calls_by_kind.items():
            if n:
                self.api_calls.labels(org=self.org, crm=crm, kind=kind).inc(int(n))

    def observe_budget(self, crm: str, remaining: int | None, window: str = "daily") -> None:
        if remaining is not None:
            self.api_budget_remaining.labels(org=self.org, crm=crm, window=window).set(remaining)

    def observe_job(self, job: str, seconds: float, ok: bool, finished_at: float) -> None:
        self.cycle_seconds.labels(org=self.org, job=job).observe(seconds)
        if ok:
            self.last_success.labels(org=self.org, job=job).set(finished_at)
        else:
            self.job_failures.labels(org=self.org, job=job).inc()

    def observe_speed(self, seconds: list[float]) -> None:
        for s in seconds:
            self.speed_to_lead.labels(org=self.org).observe(max(s, 0.0))

    def observe_queue(self, size: int, oldest_seconds: float, over_sla: int) -> None:
        self.queue_size.labels(org=self.org).set(size)
        self.queue_oldest.labels(org=self.org).set(oldest_seconds)
        self.queue_over_sla.labels(org=self.org).set(over_sla)

    def set_versions(self, model_version: str | None = None, policy: str | None = None, policy_version: str | None = None) -> None:
        if model_version is not None:
            self.model_info.labels(org=self.org).info({"version": model_version})
        if policy is not None:
            self.policy_info.labels(org=self.org).info({"name": policy, "version": policy_version or ""})

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """A sample's current value for this org (for tests and ``leadpilot status``)."""
        return self.registry.get_sample_value(name, {"org": self.org, **(labels or {})})


class MetricsPortError(Exception):
    """The metrics endpoint cannot listen on its port (taken by another process, or privileged)."""


def start_metrics_server(metrics: Metrics, port: int, addr: str = "127.0.0.1") -> int:
    """Serve ``/metrics`` on ``addr:port`` in a daemon thread; port 0 disables. Returns the port.

    Raises ``MetricsPortError`` naming the address and port when it cannot listen there; the
    caller says which option or variable chooses the port."""
    if port == 0:
        return 0
    try:
        start_http_server(port, addr=addr, registry=metrics.registry)
    except OSError as exc:
        why = "the port is taken by another process" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise MetricsPortError(f"cannot serve metrics on {addr}:{port}: {why}") from None
    return port
