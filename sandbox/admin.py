"""The sandbox's own admin API under ``/_sandbox/`` — not part of either CRM dialect.

| route | what |
|---|---|
| ``GET /_sandbox/status`` | clock, seed, scenario, record counts |
| ``POST /_sandbox/advance?days=N`` | move the simulated clock; the world evolves |
| ``POST /_sandbox/observe`` | draw outcomes for newly owned leads now (``advance`` does it too) |
| ``POST /_sandbox/reset?seed=&leads=&scenario=&generated=`` | a fresh store and world (``generated``: leads made on demand, ``sandbox.generated``) |
| ``GET / DELETE /_sandbox/counters`` | per-endpoint API call counters |
| ``GET / DELETE /_sandbox/writes?object=Lead`` | per record, the API writes that set its owner / any leadpilot field: ``{"object", "records": {id: {"owner": n, "leadpilot": n}}}`` (ids as stored: the Salesforce ids) |
| ``GET / PUT /_sandbox/faults`` | fault settings (PUT a JSON object of the fields to change) |
| ``GET /_sandbox/ground-truth?ids=a,b`` | each lead's true P(convert) / P(won) per rep |
| ``GET /_sandbox/reps`` | the reps and their true skill per segment |
| ``POST /_sandbox/hold?seconds=S&count=N`` | hold the next N CRM responses S seconds each (real time: a hung server, for client timeouts) |
| ``POST /_sandbox/hubspot/tokens`` | add a HubSpot token with chosen scopes, or narrow a known one (``sandbox.hubspot.auth.add_token``) |
| ``POST /_sandbox/leads/{id}/delete`` | delete a lead (recycle bin: ``queryAll`` / ``archived=true`` see it) |
| ``POST /_sandbox/leads/{id}/merge?ids=a,b`` | merge leads ``a``, ``b`` into ``{id}`` (the survivor) |
| ``POST /_sandbox/leads/{id}/unreadable-stamp`` | serve this lead's modification stamp unreadable from now on |
| ``POST /_sandbox/leads/{id}/activity`` | log an activity on a lead now (``LastActivityDate`` / ``hs_last_sales_activity_timestamp``) |
| ``POST /_sandbox/users/{id}/deactivate`` | deactivate a user (an archived owner on HubSpot) |

Lead and user ids are the store's (``00Q…``, ``005…``) or HubSpot's numeric ones.

No authentication: the admin API only listens on loopback, as the whole sandbox does.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from sandbox.context import Faults
from sandbox.http import Request, Response
from sandbox.hubspot.props import canonical_id

if TYPE_CHECKING:
    from sandbox.server import SandboxServer

FAULT_FIELDS = {f.name: f.type for f in dataclasses.fields(Faults)}


class BadFaults(ValueError):
    """A fault specification names an unknown setting or a value of the wrong type."""


def _coerce(name: str, value: Any) -> Any:
    if name not in FAULT_FIELDS:
        raise BadFaults(f"unknown fault setting {name!r}; known: {', '.join(FAULT_FIELDS)}")
    kind = FAULT_FIELDS[name]
    try:
        v: Any = int(value) if kind in ("int", int) else float(value)
    except (TypeError, ValueError):
        raise BadFaults(f"fault setting {name} needs a number, got {value!r}") from None
    if name.startswith("p_") and not 0.0 <= v <= 1.0:
        raise BadFaults(f"fault setting {name} is a probability: use a value between 0 and 1, got {v}")
    if v < 0:
        raise BadFaults(f"fault setting {name} must not be negative, got {v}")
    return v


def parse_faults(spec: str, base: Faults | None = None) -> Faults:
    """``"p_429=0.1,p_5xx=0.05,token_expiry_after_calls=50"`` -> ``Faults`` (unset keys keep
    ``base``'s values, or the defaults)."""
    changes: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise BadFaults(f"fault item {item!r} is not name=value (e.g. p_429=0.1)")
        changes[name.strip()] = _coerce(name.strip(), value.strip())
    return dataclasses.replace(base or Faults(), **changes)


def _int(req: Request, name: str, default: int) -> int:
    raw = req.q(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadFaults(f"query parameter {name} must be an integer, got {raw!r}") from None


def handle(server: SandboxServer, req: Request) -> Response:
    """Serve one admin request."""
    route = req.path[len("/_sandbox"):].rstrip("/") or "/status"
    try:
        return _route(server, req, route)
    except (BadFaults, ValueError) as exc:
        return Response.json(400, {"error": str(exc)})


def _route(server: SandboxServer, req: Request, route: str) -> Response:
    ctx, world = server.ctx, server.world
    key = (req.method, route)
    if key == ("GET", "/status"):
        store = server.store
        return Response.json(200, {"now": store.clock.now().isoformat(), "seed": world.seed, "scenario": world.scenario,
                                   "records": {o: len(r) for o, r in store.records.items()},
                                   "queue_id": world.queue_id, "integration_user_id": world.integration_user_id})
    if key == ("POST", "/advance"):
        raw = req.q("days", "1") or "1"
        try:
            days = float(raw)
        except ValueError:
            raise BadFaults(f"days must be a number, got {raw!r}") from None
        return Response.json(200, server.advance(days))
    if key == ("POST", "/observe"):
        return Response.json(200, {"outcomes_drawn": world.observe()})
    if key == ("POST", "/reset"):
        scenario = req.q("scenario", world.scenario) or world.scenario
        server.reset(seed=_int(req, "seed", world.seed), leads=_int(req, "leads", 0), scenario=scenario,
                     generated_leads=_int(req, "generated", 0))
        return Response.json(200, {"seed": server.world.seed, "scenario": scenario,
                                   "records": {o: len(r) for o, r in server.store.records.items()}})
    if route == "/counters" and req.method in ("GET", "DELETE"):
        with ctx.lock:
            counts = dict(sorted(ctx.counters.items()))
            if req.method == "DELETE":
                ctx.counters.clear()
        return Response.json(200, {"total": sum(counts.values()), "counters": counts})
    if route == "/writes" and req.method in ("GET", "DELETE"):
        obj = req.q("object") or "Lead"
        if obj not in server.store.records:
            return Response.json(400, {"error": f"object={obj}: unknown object; use one of "
                                                f"{', '.join(sorted(server.store.records))}"})
        written = server.store.write_counts(obj, clear=req.method == "DELETE")
        return Response.json(200, {"object": obj, "records": written})
    if route == "/faults" and req.method == "GET":
        return Response.json(200, dataclasses.asdict(ctx.faults))
    if route == "/faults" and req.method in ("PUT", "PATCH"):
        body = req.json()
        if not isinstance(body, dict):
            raise BadFaults('PUT /_sandbox/faults takes a JSON object, e.g. {"p_429": 0.1}')
        changes = {k: _coerce(k, v) for k, v in body.items()}
        with ctx.lock:
            for k, v in changes.items():
                setattr(ctx.faults, k, v)  # mutate in place: handlers hold this object
        return Response.json(200, dataclasses.asdict(ctx.faults))
    if key == ("GET", "/ground-truth"):
        ids = [i for i in (req.q("ids") or "").split(",") if i] or None
        return Response.json(200, {"scenario": world.scenario, "reps": sorted(world.reps),
                                   "leads": world.ground_truth(ids)})
    if key == ("POST", "/hold"):
        raw = req.q("seconds", "") or ""
        try:
            seconds = float(raw)
        except ValueError:
            raise BadFaults(f"seconds must be a number, got {raw!r}; e.g. /_sandbox/hold?seconds=5") from None
        count = _int(req, "count", 1)
        if seconds <= 0 or count < 1:
            raise BadFaults("hold needs seconds > 0 and count >= 1")
        server.hold(seconds, count)
        return Response.json(200, {"held_seconds": seconds, "responses": count})
    if key == ("POST", "/hubspot/tokens"):
        from sandbox.hubspot.auth import add_token
        return Response.json(201, add_token(ctx, req.json()))
    if key == ("GET", "/reps"):
        return Response.json(200, [{"id": r.user_id, "name": r.name, "email": r.email, "skill": r.skill}
                                   for r in world.reps.values()])
    if req.method == "POST" and route.startswith(("/leads/", "/users/")):
        return _record_action(server, req, route)
    return Response.json(404, {"error": f"unknown admin route {req.method} {req.path}"})


def _stored_id(server: SandboxServer, obj: str, raw: str) -> str:
    rid = (canonical_id(obj, raw) if raw.isdigit() else raw) or raw
    if server.store.get(obj, rid) is None:
        raise BadFaults(f"no {obj} with id {raw!r}")
    return rid


def _record_action(server: SandboxServer, req: Request, route: str) -> Response:
    """Deletes, merges, broken stamps and deactivations: what admins and integrations do to records."""
    parts = route.strip("/").split("/")
    if len(parts) != 3:
        return Response.json(404, {"error": f"unknown admin route {req.method} {req.path}"})
    kind, raw, action = parts
    obj = "Lead" if kind == "leads" else "User"
    store = server.store
    rid = _stored_id(server, obj, raw)
    try:
        if (obj, action) == ("Lead", "delete"):
            store.delete(obj, rid)
        elif (obj, action) == ("Lead", "merge"):
            losers = [_stored_id(server, obj, x) for x in (req.q("ids") or "").split(",") if x]
            if not losers:
                raise BadFaults("merge needs ?ids=<the leads to merge into this one>")
            store.merge(obj, rid, losers)
        elif (obj, action) == ("Lead", "activity"):
            store.log_activity(rid, store.clock.now())
        elif (obj, action) == ("Lead", "unreadable-stamp"):
            store.break_stamp(obj, rid)
        elif (obj, action) == ("User", "deactivate"):
            store.update(obj, rid, {"IsActive": False})
        else:
            return Response.json(404, {"error": f"unknown admin route {req.method} {req.path}"})
    except KeyError as exc:
        raise BadFaults(f"{obj} {exc.args[0]} is already deleted (or merges into itself)") from None
    rec = store.get(obj, rid) or {}
    return Response.json(200, {"id": rid, "IsDeleted": rec.get("IsDeleted"), "SystemModstamp": str(rec.get("SystemModstamp"))})
