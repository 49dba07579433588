"""hubspot-api-client plumbing: cached API objects, counted calls, windowed search.

- Each ``api.crm.….search_api`` access builds a new Configuration, ApiClient and PoolManager,
  so the API objects are built once and kept (rebuilt only when the token changes).
- urllib3 gets ``Retry(total=0)``: its default retry skips POSTs (crm-apis.md pitfall 8) and
  hides attempts; all retries go through ``connectors.retry`` and every attempt is counted.
- TLS: ``ssl_ca_cert`` (REQUESTS_CA_BUNDLE does not reach urllib3's PoolManager).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from hubspot import HubSpot
from urllib3.util.retry import Retry

from connectors.usage import UsageMeter, parse_hubspot_headers
from connectors.window import SearchWindow, must_rewindow
from sync.settings import HubSpotSettings

PAGE = 200  # search page maximum


class HubSpotApis:
    """The API objects leadpilot uses, built once per token."""

    def __init__(self, settings: HubSpotSettings, token: str) -> None:
        self.settings = settings
        self._token = token
        self._cache: dict[str, Any] = {}

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
                "deals.search": lambda: c.deals.search_api,
                "deals.batch": lambda: c.deals.batch_api,
                "owners": lambda: c.owners.owners_api,
                "properties": lambda: c.properties.core_api,
                "groups": lambda: c.properties.groups_api,
                "associations": lambda: c.associations.v4.batch_api,
            }
            self._cache[name] = table[name]()
        return self._cache[name]


def as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else dict(obj)


def counted(meter: UsageMeter, kind: str, fn: Callable[[], Any]) -> Any:
    """Run a ``*_with_http_info`` call: count it, read the budget headers, return the body as a dict."""
    meter.record(kind)
    try:
        data, _status, headers = fn()
    except Exception as exc:
        budget = parse_hubspot_headers(dict(getattr(exc, "headers", None) or {}))
        if budget is not None:
            meter.budget = budget
        raise
    budget = parse_hubspot_headers(dict(headers or {}))
    if budget is not None:
        meter.budget = budget
    return as_dict(data)


def search_all(
    call: Callable[[str, Callable[[], Any]], Any],
    search: Callable[[dict[str, Any]], Callable[[], Any]],
    stamp_property: str,
    start_ms: int | None,
    properties: list[str],
    extra_filters: list[dict[str, Any]] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(stamp ms, object) for every object with ``stamp >= start_ms``, ascending, across windows.

    Pages of 200 sorted by the stamp then ``hs_object_id``; before paging past the 10,000-result
    cap the query restarts at the last stamp seen (``SearchWindow.next``). Objects re-read at a
    window edge come out again: callers de-duplicate by (id, stamp).
    """
    from connectors.values import epoch_ms, to_datetime

    window = SearchWindow(start_ms)
    while True:
        after: str | None = None
        fetched = 0
        last: tuple[int, str] | None = None
        cursors: set[str] = set()
        while True:
            groups = window.filter_groups(stamp_property)
            if extra_filters:
                groups = [{"filters": g["filters"] + extra_filters} for g in groups] or [{"filters": extra_filters}]
            body: dict[str, Any] = {
                "filterGroups": groups,
                "sorts": [{"propertyName": stamp_property, "direction": "ASCENDING"},
                          {"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": properties,
                "limit": PAGE,
            }
            if after is not None:
                body["after"] = after
            page = call("search", search(body))
            for obj in page.get("results") or []:
                fetched += 1
                props = obj.get("properties") or {}
                dt = to_datetime(props.get(stamp_property)) or to_datetime(obj.get("updated_at"))
                ms = epoch_ms(dt) if dt else 0
                last = (ms, str(obj.get("id")))
                yield ms, obj
            nxt = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not nxt:
                return
            if nxt in cursors:
                raise RuntimeError(f"HubSpot returned the search cursor {nxt!r} twice; stopping this pull")
            cursors.add(nxt)
            if must_rewindow(fetched, PAGE) and last is not None:
                window = window.next(*last)
                break
            after = str(nxt)
