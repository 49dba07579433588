"""The routing policy as the daemon holds it: an ``allocation.Router`` plus its persisted state.

``RouterBox`` loads the latest saved policy state from the store (or builds a fresh router
from the routing configuration), delegates ``assign`` / ``record_outcome`` / ``tick``, and
saves a new state version on ``save``.

The saved state must never diverge from the decisions and rewards tables, even with two
processes on one store (a ``sync --once`` from cron beside the service). So every change
goes through ``commit``: the change is made in memory, then the rows it covers are
recorded and the state saved in ONE transaction, the save being a compare-and-set on the
version the state was loaded from. A process that loses the race (another saved first, a
decision it made was taken, the database broke a deadlock) rolls back, reloads the
winner's state and redoes its change from there — it never saves choices whose rows were
not recorded. ``ledger_divergence`` checks the invariant.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from connectors.records import Rep
from connectors.registry import CRMS
from sync.config.settings import Settings
from sync.store import Assignment, PolicyConflict, Store
from sync.store.engine import is_transient

if TYPE_CHECKING:  # at run time allocation is imported where it is used, as below
    from allocation import Choice, Router

log = logging.getLogger(__name__)

# Saved policy versions kept (the state holds every open assignment; older versions are
# only useful to inspect a recent change).
KEEP_VERSIONS = 20
# Races lost in a row before ``commit`` gives up (the work is redone by the next cycle/run).
COMMIT_ATTEMPTS = 8
P = TypeVar("P")


class LostRace(RuntimeError):
    """Another process recorded a row this change also made (e.g. decided the same lead first)."""


class PolicyBusy(RuntimeError):
    """``commit`` lost the race ``COMMIT_ATTEMPTS`` times in a row."""


class RouterBox:
    """A ``Router`` with load/save against the state store. ``name`` keys its saved states."""

    router: Router  # set by reload()

    def __init__(self, store: Store, name: str, factory: Callable[[], Router], fallback_owner: str | None = None,
                 *, persist: bool = True) -> None:
        self.store, self.name, self.factory = store, name, factory
        self.fallback_owner = fallback_owner
        self.persist = persist
        self.version = 0
        # One change at a time per process (the daemon runs sync and rewards in two threads).
        self.lock = threading.RLock()
        self.lost_races = 0  # commits redone because another process got there first
        self.excluded: frozenset[str] = frozenset()  # reps not routed to (their CRM user left)
        self.open_counts: dict[str, int] = {}  # each rep's open load from the CRM (sync_open)
        self.rep_names: dict[str, str] = {}  # owner id -> the CRM's name, for reasons people read
        self.reload()

    def reload(self) -> None:
        """Back to the latest saved state (or a fresh router before the first save)."""
        from allocation import Router
        from allocation.registry import policy_from_state, policy_to_state

        saved = self.store.load_policy_state(self.name)
        if saved is None:
            self.router, self.version = self.factory(), 0
            return
        self.router = Router.from_state(saved.state)
        self.version = saved.version
        fresh = self.factory()
        # The settings may have changed since the state was saved (floors, prices, contextual
        # mode): the configured options and parameters win, what the policy learned stays.
        stored, configured = self.router.policy, fresh.policy
        if (stored.options, stored.params()) != (configured.options, configured.params()):
            log.info("routing settings differ from the saved state's; using the configured ones",
                     extra={"saved": str(stored.options), "configured": str(configured.options)})
            self.router.policy = policy_from_state({**policy_to_state(configured), "fitted": stored.fitted_state()})
        # So may the routing file: its reps, rules and fallback win.
        self.router.update_reps(list(fresh.reps.values()), fresh.rules)
        self.router.fallback = fresh.fallback
        self._apply_exclusions()
        self._apply_open()

    def exclude_reps(self, rep_ids: frozenset[str]) -> None:
        """Route to none of ``rep_ids`` (e.g. deactivated CRM users), now and after every reload."""
        self.excluded = frozenset(rep_ids)
        self._apply_exclusions()

    def _apply_exclusions(self) -> None:
        reps = self.router.reps
        if any(r in self.excluded for r in reps):
            self.router.update_reps([c for rid, c in reps.items() if rid not in self.excluded])

    def save(self, now: datetime) -> int:
        """Save the current state as the version after the one loaded (no-op for a scratch copy).

        A compare-and-set: raises ``PolicyConflict`` when another process saved meanwhile.
        Call it inside the transaction that records what the change covers (``commit`` does).
        """
        if self.persist:
            self.version = int(self.store.save_policy_state(self.name, self.router.to_state(), now,
                                                            keep=KEEP_VERSIONS, expected_version=self.version))
        return self.version

    def refresh(self) -> bool:
        """Reload when another process saved a newer version than the one held; True if it did."""
        if self.persist and self.store.latest_policy_version(self.name) != self.version:
            self.reload()
            return True
        return False

    def commit(self, prepare: Callable[[], P], record: Callable[[P], bool], now: datetime, *,
               on_redo: Callable[[], None] | None = None, attempts: int = COMMIT_ATTEMPTS) -> P:
        """Change the policy and record what the change covers, as one compare-and-set transaction.

        ``prepare()`` changes the in-memory policy (e.g. ``assign``) outside the transaction and
        returns the plan; ``record(plan)`` runs inside it, writes the rows (raising ``LostRace``
        when one was taken by another process) and returns whether the state changed; the state
        is then saved on the version it was loaded from. A conflict, a lost race or a deadlock
        rolls everything back, reloads the saved state and runs them again. Before each attempt a
        state another process saved meanwhile is loaded, then ``on_redo`` re-reads what
        ``prepare`` depends on (e.g. the decisions already recorded), so it is never older than
        the state. Any other error rolls back, reloads and is raised.
        """
        with self.lock:
            for attempt in range(1, attempts + 1):
                self.refresh()
                if on_redo is not None:
                    on_redo()  # read after the state it must match was loaded (rows ⊇ the state's)
                try:
                    plan = prepare()
                    with self.store.atomic():
                        if record(plan):
                            self.save(now)
                    return plan
                except (PolicyConflict, LostRace, sa.exc.DBAPIError) as exc:
                    self.reload()  # the database rolled back: so does the in-memory policy
                    if isinstance(exc, sa.exc.DBAPIError) and not is_transient(exc):
                        raise
                    self.lost_races += 1
                    log.info("policy %s: lost a race with another process (%s); redoing on the saved state "
                             "(%d/%d)", self.name, _short(exc), attempt, attempts)
                except BaseException:
                    self.reload()
                    raise
        raise PolicyBusy(f"policy {self.name!r} changed under this process {attempts} times in a row (another "
                         "leadpilot process on the same store); nothing was saved, the work is retried next run")

    def scratch(self) -> RouterBox:
        """A throwaway copy for dry runs: same state, never saved."""
        from allocation import Router

        box = RouterBox.__new__(RouterBox)
        box.store, box.name, box.factory = self.store, self.name, self.factory
        box.fallback_owner, box.persist, box.version = self.fallback_owner, False, self.version
        box.lock, box.lost_races, box.excluded = threading.RLock(), 0, self.excluded
        box.open_counts = dict(self.open_counts)
        box.rep_names = dict(self.rep_names)
        box.router = Router.from_state(self.router.to_state())
        return box

    # ------------------------------------------------------------ delegation
    def assign(self, lead_id: str, context: Mapping[str, Any], now: datetime,
               attrs: Mapping[str, Any] | None = None, *, widen: bool = False,
               exclude: Mapping[str, str] | None = None) -> Choice:
        return self.router.assign(lead_id, context, now, attrs, widen=widen, exclude=exclude)

    def sync_open(self, counts: Mapping[str, int]) -> None:
        """Each listed rep's open load as the CRM counts it (plus our writes since): capacity.
        Kept through reloads (a lost race reloads mid-cycle)."""
        self.open_counts = dict(counts)
        self._apply_open()

    def _apply_open(self) -> None:
        self.router.sync_open({rid: n for rid, n in self.open_counts.items() if rid in self.router.reps})

    def record_outcome(self, lead_id: str, won: bool, now: datetime) -> None:
        if not self.router.record_outcome(lead_id, won, now):
            # An assignment the policy state does not know (e.g. made before a state reset):
            # the store still records the outcome; the policy cannot learn from it.
            log.warning("policy has no open assignment for lead %s; outcome recorded, not learned", lead_id)

    def forget(self, lead_id: str) -> bool:
        """The policy drops this lead's assignment, learning nothing from it (``Router.forget``)."""
        return bool(self.router.forget(lead_id))

    def retire(self, lead_id: str, now: datetime, *, as_loss: bool) -> bool:
        """The rep left this lead untouched: free it for a new assignment (``Router.retire``)."""
        return bool(self.router.retire(lead_id, now, as_loss=as_loss))

    def record_opportunity(self, lead_id: str, now: datetime) -> bool:
        return bool(self.router.record_opportunity(lead_id, now))

    def tick(self, now: datetime) -> None:
        self.router.tick(now)

    def owner_for(self, rep_id: str | None) -> str | None:
        """The CRM owner id to write for a decision (``None`` rep: the configured fallback)."""
        return rep_id or self.fallback_owner

    @property
    def policy_name(self) -> str:
        return str(self.router.policy.name)


def _short(exc: BaseException) -> str:
    if isinstance(exc, sa.exc.DBAPIError):
        return f"{type(exc.orig).__name__}"
    return str(exc)


def ledger_divergence(store: Store, name: str, decisions: Sequence[Assignment] | None = None) -> list[str]:
    """How the saved state of policy ``name`` differs from the decisions table; [] when it does not.

    The invariant: every live (non-shadow) decision to a rep is a row of the saved ledger with
    the same rep; the row is closed exactly when the decision's reward was applied, with the
    same outcome; the ledger has no row without a decision. Closed rows the policy forgot
    (discounted away) may be missing, and must be for a decision closed without an outcome
    (its lead deleted or merged away); open ones may not.
    """
    from allocation.ledger import LOST, OPEN, WON, Ledger

    saved = store.load_policy_state(name)
    rows = Ledger.from_state(saved.state["ledger"]) if saved is not None else Ledger()
    ledger = {k: (rows.reps[i], rows.status[i]) for k, i in rows.row.items()}
    live = {a.lead_id: a for a in (store.assignments(effective=True) if decisions is None else decisions)
            if not a.shadow and a.rep_id is not None and a.superseded_at is None}
    problems: list[str] = []
    unknown = sorted(k for k in ledger if k not in live)
    if unknown:
        problems.append(f"{len(unknown)} ledger row(s) without a decision (e.g. {unknown[0]})")
    missing = sorted(k for k, a in live.items() if k not in ledger and a.reward_applied_at is None)
    if missing:
        problems.append(f"{len(missing)} open decision(s) the policy does not know (e.g. {missing[0]})")
    other_rep = sorted(k for k, a in live.items() if k in ledger and ledger[k][0] != a.rep_id)
    if other_rep:
        problems.append(f"{len(other_rep)} lead(s) credited to another rep than decided (e.g. {other_rep[0]})")
    want = {None: OPEN, "won": WON, "lost": LOST}
    # closed without an outcome (the lead was deleted or merged away): the policy forgot it
    status = sorted(k for k, a in live.items() if k in ledger and (
        ledger[k][1] != want[a.outcome] or (a.outcome is None and a.reward_applied_at is not None)))
    if status:
        problems.append(f"{len(status)} lead(s) whose outcome differs between policy and decisions (e.g. {status[0]})")
    return problems


def routed_reps(settings: Settings, crm_reps: Sequence[Rep], integration_user: str | None) -> tuple[list[Any], str | None]:
    """Rep configurations from the routing file, or every active human CRM user when there is none.

    Returns ``(reps, fallback_owner)``; the file's assignment rules: ``routed_rules``.
    """
    from allocation import RepConfig

    path = settings.routing.file
    if path.exists():
        from sync.config import routing
        cfg = routing.load_routing(path)
        exclude = [integration_user] if integration_user else []
        return routing.rep_configs(cfg, crm_reps, exclude), routing.fallback_owner(cfg, crm_reps)
    reps = [RepConfig(id=r.id) for r in crm_reps if r.active and not r.is_queue and r.id != integration_user]
    queue = next((r.id for r in crm_reps if r.is_queue), None)
    return reps, queue


def routed_rules(settings: Settings, crm_reps: Sequence[Rep], reps: Sequence[Any]) -> list[Any]:
    """The routing file's ordered assignment rules (``allocation.AssignmentRule``) over ``reps``;
    none without a routing file."""
    path = settings.routing.file
    if not path.exists():
        return []
    from sync.config import routing
    return routing.assignment_rules(routing.load_routing(path), crm_reps, reps)


def integration_user_id(settings: Settings, crm_reps: Sequence[Rep]) -> str | None:
    """The CRM user leadpilot itself logs in as (its leads are up for routing, it is never a rep)."""
    username = settings.crm_section(settings.crm).login_username if settings.crm in CRMS else None
    if username:
        for r in crm_reps:
            if r.email and r.email.lower() == username.lower():
                return r.id
    for r in crm_reps:  # the usual naming of API-only users
        if "integration" in r.name.lower():
            return r.id
    return None


def build_router_box(settings: Settings, store: Any, crm_reps: Sequence[Rep], integration_user: str | None) -> RouterBox:
    """A ``RouterBox`` for the configured policy, reps and fallback."""
    from allocation import Router, make_policy

    reps, fallback = routed_reps(settings, crm_reps, integration_user)
    if not reps:
        raise ValueError("no rep to route to: list reps in the routing file or activate users in the CRM")
    rules = routed_rules(settings, crm_reps, reps)
    r = settings.routing

    def factory() -> Any:
        # Every option passed; their defaults are allocation's (an unset capacity price: the policy's own)
        own = {"mode": r.contextual_mode} if r.policy == "contextual" else {}
        policy = make_policy(r.policy, seed=r.seed, fairness_floor=r.fairness_floor,
                             exploration_floor=r.exploration_floor, posterior_exploration=r.posterior_exploration,
                             capacity_price=r.capacity_price, capacity_target=r.capacity_target, **own)
        return Router(policy=policy, reps=reps, fallback=fallback, rules=rules)

    box = RouterBox(store, f"routing:{r.policy}", factory, fallback)
    box.rep_names = {rep.id: rep.name for rep in crm_reps if rep.name}
    return box
