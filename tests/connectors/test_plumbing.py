"""Call classification, the factory and Protocol conformance (no server)."""

from __future__ import annotations

import pytest

from connectors.base import Connector
from connectors.errors import CRMError, Kind
from connectors.hubspot.connector import HubSpotConnector
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.session import call_kind
from sync.config.settings import Settings
from sync.wiring.connector import make_connector


@pytest.mark.parametrize(("method", "url", "kind"), [
    ("POST", "https://login.salesforce.com/services/oauth2/token", "auth"),
    ("POST", "https://x/services/Soap/u/59.0", "auth"),
    ("POST", "https://x/services/Soap/m/59.0/", "meta"),
    ("GET", "https://x/services/data/v59.0/sobjects/Lead/describe", "meta"),
    ("GET", "https://x/services/data/v59.0/query/?q=SELECT", "read"),
    ("GET", "https://x/services/data/v59.0/query/01gxx-2000", "read"),
    ("PATCH", "https://x/services/data/v59.0/composite/sobjects", "write"),
    ("GET", "https://x/services/data/v59.0/jobs/ingest/750x", "write"),
    ("POST", "https://x/services/data/v59.0/jobs/query", "read"),
])
def test_every_salesforce_request_is_counted_by_kind(method: str, url: str, kind: str) -> None:
    assert call_kind(method, url) == kind


def test_the_factory_builds_protocol_conforming_connectors() -> None:
    settings = Settings(crm="hubspot", hubspot={"access_token": "pat-na1-x"},
                        salesforce={"auth": {"kind": "token", "access_token": "00Dx!y", "instance_url": "https://x"}})
    hs = make_connector(settings)
    sf = make_connector(settings, crm="salesforce")
    assert isinstance(hs, HubSpotConnector) and isinstance(sf, SalesforceConnector)
    assert isinstance(hs, Connector) and isinstance(sf, Connector)
    assert isinstance(make_connector(settings.model_copy(update={"crm": "sandbox"})), SalesforceConnector)
    with pytest.raises(ValueError, match="unknown CRM"):
        make_connector(settings, crm="pipedrive")
    with pytest.raises(ValueError, match="source_fields: unknown attribute"):
        make_connector(Settings(crm="salesforce", salesforce={"source_fields": {"sector": "X__c"}}))


def test_given_no_property_scope_when_creating_then_the_error_names_the_scope() -> None:
    settings = Settings(crm="hubspot", hubspot={"access_token": "pat-na1-x"})
    hs = make_connector(settings)
    assert isinstance(hs, HubSpotConnector)

    class Forbidden(Exception):
        status, reason, headers = 403, "Forbidden", {}
        body = b'{"status":"error","message":"This app hasn\'t been granted all required scopes","category":"MISSING_SCOPES"}'

    def refuse() -> None:
        raise Forbidden()

    with pytest.raises(CRMError, match="crm.schemas.contacts.write") as info:
        hs._create_ignoring_conflict("create property", refuse)
    assert info.value.kind is Kind.CONFIG

    class Conflict(Forbidden):
        status, body = 409, b'{"category":"CONFLICT","message":"exists"}'

    def exists() -> None:
        raise Conflict()

    assert hs._create_ignoring_conflict("create property", exists) is False
