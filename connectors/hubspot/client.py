"""hubspot-api-client plumbing: cached API objects, counted calls, windowed search.

- Each ``api.crm.….search_api`` access builds a new Configuration, ApiClient and PoolManager,
  so the API objects are built once and kept (rebuilt only when the token changes).
- urllib3 gets ``Retry(total=0)``: its default retry skips POSTs (crm-apis.md pitfall 8) and
  hides attempts; all retries go through ``connectors.retry`` and every attempt is counted.
- TLS: ``ssl_ca_cert`` (REQUESTS_CA_BUNDLE does not reach urllib3's PoolManager).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hubspot import HubSpot
from urllib3.util.retry import Retry

from connectors.hubspot.settings import HubSpotSettings
from connectors.usage import UsageMeter, parse_hubspot_headers
from connectors.window import SEARCH_CAP, SearchWindow, must_rewindow, search_limit_problem

PAGE = 200  # search page maximum


class HubSpotApis:
    """The API objects leadpilot uses, built once per token."""

    def __init__(self, settings: HubSpotSettings, token: str) -> None:
        self.settings = settings
        self._token = token
        self._cache: dict[str, Any] = {}
        # Every call passes this as ``_request_timeout``: the client has no session-wide timeout
        # (Configuration ignores unknown keys) and urllib3 waits forever without one.
        self.timeout = settings.deadlines

    @property
    def token(self) -> str:
        """The token in use (for the introspection call's body; never logged)."""
        return self._token

    def set_token(self, token: str) -> bool:
        """Use a new token; False when it is the same one (nothing to refresh)."""
        if token == self._token:
            return False
        self._token, self._cache = token, {}
        return True

    def _client(self) -> HubSpot:
        return HubSpot(
            access_token=self._token,
            host=self.settings.host.rstrip("/"),
            ssl_ca_cert=str(self.settings.ca_bundle) if self.settings.ca_bundle else None,
            retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
        )

    def get(self, name: str) -> Any:
        """``"objects.contacts.search"`` style names → the cached API object."""
        if name not in self._cache:
            c = self._client().crm
            obj_type = self.settings.object_type
            objects = {"contacts": c.contacts, "leads": c.objects.leads, "deals": c.deals}
            table: dict[str, Callable[[], Any]] = {
                "search": lambda: objects[obj_type].search_api,
                "batch": lambda: objects[obj_type].batch_api,
                "basic": lambda: objects[obj_type].basic_api,
                "deals.search": lambda: c.deals.search_api,
                "deals.batch": lambda: c.deals.batch_api,
                "owners": lambda: c.owners.owners_api,
                "properties": lambda: c.properties.core_api,
                "groups": lambda: c.properties.groups_api,
                "associations": lambda: c.associations.v4.batch_api,
            }
            self._cache[name] = table[name]()
        return self._cache[name]


class BurstPacer:
    """Client-side pacing under HubSpot's rolling burst limit (default 100 calls / 10 s).

    A 429 is a wasted call; our own calls are what the per-app limit counts, so keeping a
    rolling log of them and waiting for the oldest to leave the window avoids the 429s.
    The limit and window are learnt from ``X-HubSpot-RateLimit-Max`` / ``-Interval-Milliseconds``.
    """

    def __init__(self, sleep: Callable[[float], None], monotonic: Callable[[], float],
                 max_calls: int = 100, interval: float = 10.0) -> None:
        self.sleep, self.monotonic = sleep, monotonic
        self.max_calls, self.interval = max_calls, interval
        self.calls: deque[float] = deque()
        self.waited = 0.0

    def before_call(self) -> None:
        now = self.monotonic()
        while self.calls and self.calls[0] <= now - self.interval:
            self.calls.popleft()
        if self.max_calls > 0 and len(self.calls) >= self.max_calls:
            wait = self.calls[0] + self.interval - now + 0.05
            self.waited += wait
            self.sleep(wait)
            now = self.monotonic()
            while self.calls and self.calls[0] <= now - self.interval:
                self.calls.popleft()
        self.calls.append(now)

    def after_call(self) -> None:
        """Stamp the call just made with the time it ended: the server counted it somewhere
        between start and end, so the end is the safe edge (a start stamp let a call leave our
        window a few milliseconds before it left HubSpot's, and the next call got a 429)."""
        if self.calls:
            self.calls[-1] = self.monotonic()

    def learn(self, headers: Mapping[str, str]) -> None:
        h = {k.lower(): v for k, v in headers.items()}
        with contextlib.suppress(KeyError, ValueError):
            self.max_calls = int(h["x-hubspot-ratelimit-max"])
        with contextlib.suppress(KeyError, ValueError):
            self.interval = int(h["x-hubspot-ratelimit-interval-milliseconds"]) / 1000


def as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else dict(obj)


def counted(meter: UsageMeter, kind: str, fn: Callable[[], Any], pacer: BurstPacer | None = None) -> Any:
    """Run a ``*_with_http_info`` call: pace, count it, read the budget headers, return the body as a dict."""
    if pacer is not None:
        pacer.before_call()
    meter.record(kind)
    try:
        data, _status, headers = fn()
    except Exception as exc:
        _learn(meter, pacer, dict(getattr(exc, "headers", None) or {}))
        raise
    finally:
        if pacer is not None:
            pacer.after_call()
    _learn(meter, pacer, dict(headers or {}))
    return as_dict(data)


def _learn(meter: UsageMeter, pacer: BurstPacer | None, headers: dict[str, str]) -> None:
    budget = parse_hubspot_headers(headers)
    if budget is not None:
        meter.budget = budget
    if pacer is not None:
        pacer.learn(headers)


def search_all(
    call: Callable[[str, Callable[[], Any]], Any],
    search: Callable[[dict[str, Any]], Callable[[], Any]],
    stamp_property: str,
    start_ms: int | None,
    properties: list[str],
    extra_filters: list[dict[str, Any]] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(stamp ms, object) for every object with ``stamp >= start_ms``, ascending, across windows.

    Pages of 200 sorted by the stamp alone (HubSpot takes one sorting rule); before paging past
    the 10,000-result cap the query restarts at the last stamp seen, and a millisecond holding a
    whole window is read on its own, sorted by ``hs_object_id`` and continued by an id filter
    (``SearchWindow``). Objects re-read at a window edge come out again: callers de-duplicate by
    (id, stamp). A body outside HubSpot's search limits raises ``ValueError`` before it is sent.
    """
    from connectors.values import epoch_ms, to_datetime

    window: SearchWindow | None = SearchWindow(start_ms)
    while window is not None:
        after: str | None = None
        fetched = 0
        last: tuple[int, str] | None = None
        first_ms: int | None = None
        cursors: set[str] = set()
        while True:
            body: dict[str, Any] = {
                "filterGroups": window.filter_groups(stamp_property, extra_filters),
                "sorts": window.sorts(stamp_property),
                "properties": properties,
                "limit": PAGE,
            }
            problem = search_limit_problem(body)
            if problem is not None:
                raise ValueError(f"a HubSpot search leadpilot built has {problem}; this is a bug, please report it")
            if after is not None:
                body["after"] = after
            page = call("search", search(body))
            for obj in page.get("results") or []:
                fetched += 1
                props = obj.get("properties") or {}
                dt = to_datetime(props.get(stamp_property)) or to_datetime(obj.get("updated_at"))
                ms = epoch_ms(dt) if dt else 0
                last = (ms, str(obj.get("id")))
                first_ms = ms if first_ms is None else first_ms
                yield ms, obj
            nxt = ((page.get("paging") or {}).get("next") or {}).get("after")
            total = page.get("total")
            capped = fetched >= SEARCH_CAP and (total is None or int(total) > fetched)
            if not nxt and not capped:
                window = window.after_drained()
                break
            if (capped or must_rewindow(fetched, PAGE)) and last is not None:
                window = window.next(*last, first_ms)  # the server gives no cursor past the cap
                break
            if nxt in cursors:
                raise RuntimeError(f"HubSpot returned the search cursor {nxt!r} twice; stopping this pull")
            cursors.add(str(nxt))
            after = str(nxt)
