"""The sandbox's HTTPS server: one threaded loopback server, three route families.

``/services/*`` is the Salesforce dialect (``sandbox.salesforce.api.handle``), ``/crm/*`` the
HubSpot dialect (``sandbox.hubspot.api.handle``) and ``/_sandbox/*`` the admin API
(``sandbox.admin.handle``). All three see one ``SandboxContext`` (one store, one clock).
A CA is generated at start with ``trustme``; the server certificate carries
``subjectAltName = IP:127.0.0.1`` and the CA bundle is written to a file whose path is in
``.info["ca_cert"]`` (``.info["ca_bundle"]`` is that CA plus the system roots, for
``REQUESTS_CA_BUNDLE``).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO

import trustme

from sandbox.context import Faults, SandboxContext
from sandbox.http import Request, Response
from sandbox.hubspot import api as hubspot_api
from sandbox.salesforce import api as salesforce_api
from sandbox.store import Store
from sandbox.world.simulation import World

log = logging.getLogger("sandbox.server")

# Route family -> module exposing ``handle(ctx, req) -> Response`` (imported lazily so a
# dialect that is not built yet answers 404 instead of breaking the other two).
ROUTES: tuple[tuple[str, Callable[[SandboxContext, Request], Response], str], ...] = (
    ("/services/", salesforce_api.handle, "salesforce"),
    ("/crm/", hubspot_api.handle, "hubspot"),
    ("/oauth/", hubspot_api.handle, "hubspot"),  # HubSpot token introspection
)
ADMIN_PREFIX = "/_sandbox/"

# Path segments that are record ids (Salesforce 15/18-char ids, HubSpot numeric ids, job ids)
# collapse to {id} in the per-endpoint counters.
_ID_SEGMENT = re.compile(r"^(?:\d+|[0-9a-zA-Z]{3}\d[0-9a-zA-Z]{11}(?:[0-9a-zA-Z]{3})?|[0-9a-f-]{36})$")


def route_key(family: str, method: str, path: str) -> str:
    """``"hubspot POST /crm/v3/objects/contacts/search"``: the counter key for one request."""
    parts = [("{id}" if _ID_SEGMENT.match(p) else p) for p in path.split("/")]
    return f"{family} {method} {'/'.join(parts)}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    timeout = 60  # an idle keep-alive connection releases its thread after this
    server: _HTTPSServer

    def _serve(self) -> None:
        body = self._read_body()
        req = Request.build(self.command, self.path, dict(self.headers.items()), body)
        try:
            resp = self.server.owner.dispatch(req)
        except Exception:  # a handler bug must not kill the connection thread silently
            log.exception("sandbox handler failed for %s %s", req.method, req.path)
            resp = Response.json(500, {"status": "error", "message": "sandbox internal error"})
        try:
            self._write(resp)
        except OSError as exc:  # the client gave up first (its read timeout on a held response)
            log.debug("client went away before the answer to %s %s: %s", req.method, req.path, exc)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _write(self, resp: Response) -> None:
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)


class _HTTPSServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: SandboxServer


class SandboxServer:
    """A running sandbox CRM. Use as a context manager or call ``start()`` / ``stop()``.

    ``info`` is the contract JSON (what ``leadpilot sandbox serve`` prints); ``ctx``,
    ``store`` and ``world`` are the live objects behind it, for tests and benchmarks.
    """

    def __init__(
        self,
        seed: int = 0,
        leads: int = 0,
        scenario: str = "skilled",
        faults: Faults | None = None,
        port: int = 0,
        sleep: Callable[[float], None] = time.sleep,
        generated_leads: int = 0,
    ) -> None:
        self.seed, self.leads, self.scenario, self.port = seed, leads, scenario, port
        self.generated_leads = generated_leads
        self._sleep = sleep  # used only for faults.slow_ms
        self.store = Store()
        self.ctx = SandboxContext(store=self.store, faults=faults or Faults())
        self.ctx.rng.seed(seed)
        self.world = World(self.store, seed=seed, scenario=scenario, integration_username=self.ctx.credentials.username)
        _generate(self.store, self.world, generated_leads)
        self.ctx.credentials.rep_username = self.world.rep_username
        self._httpd: _HTTPSServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: Path | None = None
        self.info: dict[str, Any] = {}
        self._holds: list[float] = []  # seconds to hold each of the next CRM responses
        self._stopping = threading.Event()  # cuts a hold short when the server stops

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self.world.populate(self.leads)
        self._tmpdir = Path(tempfile.mkdtemp(prefix="leadpilot-sandbox-"))
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ca_path = self._tmpdir / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        bundle_path = self._tmpdir / "ca-bundle.pem"
        bundle_path.write_bytes(_system_roots() + b"\n" + ca_path.read_bytes())
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(tls)
        httpd = _HTTPSServer(("127.0.0.1", self.port), _Handler, bind_and_activate=True)
        # Handshakes happen on the connection's own thread, not in the accept loop.
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        httpd.owner = self
        self._httpd = httpd
        port = httpd.server_address[1]
        base = f"https://127.0.0.1:{port}"
        self.ctx.base_url = base
        self.info = self._contract(base, str(ca_path), str(bundle_path))
        # A short poll: stop() waits for the loop to notice, and tests start and stop hundreds of servers.
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sandbox-https", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self.ctx.base_url

    def advance(self, days: float) -> dict[str, Any]:
        """Move the simulated clock ``days`` forward and let the world evolve."""
        return self.world.advance(timedelta(days=days))

    def hold(self, seconds: float, count: int = 1) -> None:
        """Hold each of the next ``count`` CRM responses (either dialect) ``seconds`` of real time
        before answering: a hung server, for the clients' read timeouts. The request is served
        after the hold (as a late answer would be); a client that gave up has closed the socket."""
        with self.ctx.lock:
            self._holds += [seconds] * count

    def _take_hold(self) -> float:
        with self.ctx.lock:
            return self._holds.pop(0) if self._holds else 0.0

    def reset(self, seed: int, leads: int = 0, scenario: str | None = None, generated_leads: int = 0) -> None:
        """A fresh store and world (same credentials, tokens and faults)."""
        store = Store()
        world = World(store, seed=seed, scenario=scenario or self.scenario,
                      integration_username=self.ctx.credentials.username)
        _generate(store, world, generated_leads)
        world.populate(leads)
        with self.ctx.lock:
            self.store, self.world, self.ctx.store = store, world, store
            self.seed, self.leads, self.scenario = seed, leads, world.scenario
            self.generated_leads = generated_leads
            self.ctx.credentials.rep_username = world.rep_username
            self.ctx.counters.clear()
            self.ctx.rng.seed(seed)

    def _contract(self, base: str, ca_path: str, bundle_path: str) -> dict[str, Any]:
        cred = self.ctx.credentials
        return {
            "salesforce": {
                "instance_url": base,
                "token_url": f"{base}/services/oauth2/token",
                "username": cred.username,
                "password": cred.password,
                "security_token": cred.security_token,
                "client_id": cred.client_id,
                "client_secret": cred.client_secret,
                "access_token": self.ctx.issue_token(),
                "api_version": "59.0",
                "rep_username": cred.rep_username,
                "rep_password": cred.rep_password,
            },
            "hubspot": {"host": base, "access_token": cred.hubspot_token},
            "ca_cert": ca_path,
            "ca_bundle": bundle_path,
            "admin_url": f"{base}/_sandbox",
            "seed": self.seed,
            "scenario": self.scenario,
        }

    # ------------------------------------------------------------------ dispatch
    def dispatch(self, req: Request) -> Response:
        """Route one request; server-wide faults (slow, 5xx) apply to the CRM dialects only."""
        if req.path.startswith(ADMIN_PREFIX) or req.path == ADMIN_PREFIX.rstrip("/"):
            from sandbox import admin
            return admin.handle(self, req)
        for prefix, handle, family in ROUTES:
            if req.path.startswith(prefix):
                self.ctx.count(route_key(family, req.method, req.path))
                held = self._take_hold()
                if held:
                    self._stopping.wait(held)
                fault = self._fault(family, req.path)
                if fault is not None:
                    return fault
                return handle(self.ctx, req)
        return _not_found(req)

    def _fault(self, family: str, path: str = "") -> Response | None:
        f = self.ctx.faults
        if f.slow_ms > 0:
            self._sleep(f.slow_ms / 1000)
        if f.p_5xx > 0 and self.ctx.rng.random() < f.p_5xx:
            if family == "salesforce" and path.startswith("/services/Soap/"):
                return Response.text(503, _soap_unavailable(), "text/xml; charset=utf-8")  # SOAP answers SOAP
            if family == "salesforce":
                body: Any = [{"errorCode": "SERVER_UNAVAILABLE", "message": "Server temporarily unavailable (sandbox fault)"}]
            else:
                body = {"status": "error", "message": "Service Unavailable (sandbox fault)", "category": "SERVICE_UNAVAILABLE"}
            return Response.json(503, body)
        return None


def _generate(store: Store, world: World, n: int) -> None:
    """Serve ``n`` generated leads (``sandbox.generated``) beside the world's own, owned by the queue."""
    if n > 0:
        from sandbox.generated import GeneratedLeads

        store.records["Lead"] = GeneratedLeads(n, world.seed, lambda: store.fields("Lead"), world.queue_id,
                                               end=store.clock.now())


def _soap_unavailable() -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="http://soap.sforce.com/2006/04/metadata">'
            "<soapenv:Body><soapenv:Fault><faultcode>sf:SERVER_UNAVAILABLE</faultcode>"
            "<faultstring>SERVER_UNAVAILABLE: Server temporarily unavailable (sandbox fault)</faultstring>"
            "</soapenv:Fault></soapenv:Body></soapenv:Envelope>")


def _not_found(req: Request) -> Response:
    if req.path.startswith("/services/"):
        return Response.json(404, [{"errorCode": "NOT_FOUND", "message": f"The requested resource does not exist: {req.path}"}])
    return Response.json(404, {"status": "error", "message": f"Unknown path {req.method} {req.path}", "category": "OBJECT_NOT_FOUND"})


def _system_roots() -> bytes:
    try:
        import certifi

        return Path(certifi.where()).read_bytes()
    except (ImportError, OSError):
        return b""


def serve_until_signal(server: SandboxServer, out: TextIO) -> None:
    """Start ``server``, write its contract JSON as one line to ``out``, serve until
    SIGTERM or SIGINT (must be called from the main thread), then stop."""
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server.start()
    try:
        out.write(json.dumps(server.info) + "\n")
        out.flush()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
