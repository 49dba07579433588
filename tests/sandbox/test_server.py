"""The sandbox server itself: TLS, keep-alive, concurrency, routing, the admin API, the CLI."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sandbox.admin import BadFaults, parse_faults
from sandbox.context import Faults
from sandbox.http import Request
from sandbox.server import SandboxServer, route_key

pytestmark = pytest.mark.integration


def _conn(server: SandboxServer) -> http.client.HTTPSConnection:
    tls = ssl.create_default_context(cafile=server.info["ca_cert"])  # verifies the cert's IP SAN
    port = int(server.base_url.rsplit(":", 1)[1])
    return http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=30)


def _call(conn: http.client.HTTPSConnection, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn.request(method, path, body=None if body is None else json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, json.loads(data) if data else None


def test_contract_json_has_what_the_clients_need(sandbox_server: SandboxServer) -> None:
    info = sandbox_server.info
    assert set(info["salesforce"]) >= {"instance_url", "token_url", "username", "password", "client_id",
                                       "client_secret", "access_token"}
    assert info["salesforce"]["instance_url"].startswith("https://127.0.0.1:")
    assert info["salesforce"]["token_url"] == info["salesforce"]["instance_url"] + "/services/oauth2/token"
    assert info["hubspot"]["host"] == sandbox_server.base_url and info["hubspot"]["access_token"].startswith("pat-")
    assert info["admin_url"] == sandbox_server.base_url + "/_sandbox"
    assert b"BEGIN CERTIFICATE" in Path(info["ca_cert"]).read_bytes()
    assert sandbox_server.ctx.use_token(info["salesforce"]["access_token"])  # pre-issued and live


def test_a_client_without_the_ca_is_refused(sandbox_server: SandboxServer) -> None:
    port = int(sandbox_server.base_url.rsplit(":", 1)[1])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(), timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/_sandbox/status")


def test_keep_alive_serves_many_requests_on_one_connection(sandbox_server: SandboxServer) -> None:
    conn = _conn(sandbox_server)
    for _ in range(5):
        status, body = _call(conn, "GET", "/_sandbox/status")
        assert status == 200 and body["records"]["Lead"] >= 200
    status, _ = _call(conn, "GET", "/crm/v3/owners/")  # no token: 401, and the connection survives it
    assert status == 401
    assert _call(conn, "GET", "/_sandbox/status")[0] == 200
    conn.close()


def test_concurrent_requests_are_served(sandbox_server: SandboxServer) -> None:
    def one(_: int) -> int:
        conn = _conn(sandbox_server)
        try:
            return _call(conn, "GET", "/_sandbox/status")[0]
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(one, range(16))) == [200] * 16


def test_unknown_paths_are_404_in_each_dialects_shape(sandbox_server: SandboxServer) -> None:
    conn = _conn(sandbox_server)
    status, body = _call(conn, "GET", "/nowhere")
    assert status == 404 and body["status"] == "error"
    status, body = _call(conn, "GET", "/_sandbox/nowhere")
    assert status == 404 and "unknown admin route" in body["error"]


def test_admin_counters_count_per_endpoint_with_ids_collapsed(sandbox_server: SandboxServer) -> None:
    conn = _conn(sandbox_server)
    _call(conn, "DELETE", "/_sandbox/counters")
    _call(conn, "GET", "/crm/v3/objects/contacts/123")
    _call(conn, "GET", "/crm/v3/objects/contacts/456")
    status, body = _call(conn, "GET", "/_sandbox/counters")
    assert status == 200 and body["counters"] == {"hubspot GET /crm/v3/objects/contacts/{id}": 2} and body["total"] == 2
    assert route_key("salesforce", "GET", "/services/data/v59.0/sobjects/Lead/00Q000000000123AAA") == \
        "salesforce GET /services/data/v59.0/sobjects/Lead/{id}"


def test_admin_faults_get_put_and_validation(sandbox_server: SandboxServer, faults: Faults) -> None:
    conn = _conn(sandbox_server)
    status, body = _call(conn, "PUT", "/_sandbox/faults", {"p_429": 0.25, "token_expiry_after_calls": 7})
    assert status == 200 and body["p_429"] == 0.25 and body["token_expiry_after_calls"] == 7
    assert faults.p_429 == 0.25 and faults is sandbox_server.ctx.faults
    status, body = _call(conn, "PUT", "/_sandbox/faults", {"p_429": 2})
    assert status == 400 and "between 0 and 1" in body["error"]
    status, body = _call(conn, "PUT", "/_sandbox/faults", {"p_42": 0.1})
    assert status == 400 and "p_42" in body["error"] and "p_429" in body["error"]


def test_admin_ground_truth_and_reps(sandbox_server: SandboxServer) -> None:
    conn = _conn(sandbox_server)
    lead_id = sorted(sandbox_server.world.truth)[0]
    status, body = _call(conn, "GET", f"/_sandbox/ground-truth?ids={lead_id}")
    assert status == 200 and [row["lead_id"] for row in body["leads"]] == [lead_id]
    row = body["leads"][0]
    assert set(row["p_convert"]) == set(sandbox_server.world.reps) == set(body["reps"])
    assert all(0 < p < 1 for p in row["p_convert"].values())
    status, reps = _call(conn, "GET", "/_sandbox/reps")
    assert status == 200 and len(reps) == 8 and all(len(r["skill"]) == 9 for r in reps)


def test_admin_advance_moves_the_clock_and_the_world(sandbox_server: SandboxServer) -> None:
    conn = _conn(sandbox_server)
    before = sandbox_server.store.clock.now()
    leads_before = len(sandbox_server.store.all("Lead"))
    status, body = _call(conn, "POST", "/_sandbox/advance?days=2")
    assert status == 200 and body["arrive"] > 0
    assert (sandbox_server.store.clock.now() - before).days == 2
    assert len(sandbox_server.store.all("Lead")) == leads_before + body["arrive"]
    assert _call(conn, "POST", "/_sandbox/advance?days=-1")[0] == 400
    assert _call(conn, "POST", "/_sandbox/advance?days=soon")[0] == 400


def test_admin_reset_rebuilds_the_world_with_the_same_credentials() -> None:
    with SandboxServer(seed=3, leads=50) as server:
        token = server.info["hubspot"]["access_token"]
        conn = _conn(server)
        status, body = _call(conn, "POST", "/_sandbox/reset?seed=4&leads=30&scenario=flat")
        assert status == 200 and body["records"]["Lead"] == 30 and server.world.scenario == "flat"
        assert server.info["hubspot"]["access_token"] == token


def test_parse_faults_spec() -> None:
    f = parse_faults("p_429=0.1, p_5xx=0.05,token_expiry_after_calls=50")
    assert (f.p_429, f.p_5xx, f.token_expiry_after_calls) == (0.1, 0.05, 50)
    assert parse_faults("") == Faults()
    for bad, words in [("p_429", "name=value"), ("p_5xx=lots", "needs a number"), ("nope=1", "unknown"),
                       ("slow_ms=-5", "negative")]:
        with pytest.raises(BadFaults, match=words):
            parse_faults(bad)


def test_cli_serve_prints_one_json_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "sandbox", "serve", "--leads", "20", "--seed", "5",
                             "--faults", "p_429=0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["salesforce"]["instance_url"].startswith("https://127.0.0.1:") and Path(info["ca_cert"]).exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read() == b""  # exactly one line
        assert not Path(info["ca_cert"]).exists()  # cleaned up on stop
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_rejects_bad_options_with_a_clear_message() -> None:
    out = subprocess.run([sys.executable, "-m", "sync.cli", "sandbox", "serve", "--faults", "p_42=1"],
                         capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode != 0 and "p_42" in out.stderr


def test_slow_fault_sleeps_through_the_injected_sleep_and_5xx_uses_each_dialects_shape() -> None:
    slept: list[float] = []
    server = SandboxServer(seed=1, faults=Faults(slow_ms=250, p_5xx=1.0), sleep=slept.append)
    resp = server.dispatch(Request.build("GET", "/crm/v3/owners/", {}, b""))
    assert slept == [0.25] and resp.status == 503 and json.loads(resp.body)["status"] == "error"
    resp = server.dispatch(Request.build("GET", "/services/data/v59.0/limits/", {}, b""))
    assert resp.status == 503 and json.loads(resp.body)[0]["errorCode"] == "SERVER_UNAVAILABLE"
    resp = server.dispatch(Request.build("GET", "/_sandbox/status", {}, b""))
    assert resp.status == 200  # the admin API is never faulted
