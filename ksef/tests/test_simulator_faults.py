"""Fault injection, rate limits, Latarnia, counters and persistence of the simulator."""
import uuid

import pytest
import requests

from ksef import crypto
from ksef.simulator import Simulator, start_subprocess, stop_subprocess
from ksef.simulator.testing import SAMPLE_SELLER_NIP, SimClient, sample_invoice

TOKEN = "faults-test-token"


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    simulator = Simulator(tmp_path_factory.mktemp("sim") / "state.db", tokens={SAMPLE_SELLER_NIP: TOKEN},
                          rate_limits="off", processing_delay=0.05, seed=7)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def client(simulator):
    client = SimClient(simulator.base_url)
    client.control("reset")
    client.login(SAMPLE_SELLER_NIP, TOKEN)
    yield client
    client.control("faults/clear")
    client.control("rate-limits", {"enabled": False, "reset": True})


def number():
    return "FF/%s" % uuid.uuid4().hex[:12]


def test_down_answers_503_on_v2_but_control_and_latarnia_still_work(client):
    body = {"formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
            "encryption": client.encryption()}
    client.control("faults", {"down": True})
    answer = client.call("POST", "/v2/sessions/online", json=body)
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert requests.post(client.url("/v2/auth/challenge"), timeout=10).status_code == 503
    assert requests.get(client.url("/status"), timeout=10).status_code == 200
    client.control("faults", {"down": False})
    assert client.call("POST", "/v2/sessions/online", json=body).status_code == 201


def test_down_with_closed_connection(client):
    client.control("faults", {"down": True, "down_mode": "close"})
    with pytest.raises(requests.ConnectionError):
        requests.post(client.url("/v2/auth/challenge"), timeout=5)
    client.control("faults/clear")
    assert requests.post(client.url("/v2/auth/challenge"), timeout=10).status_code == 200


def test_error_ratio_is_deterministic_for_a_seed(client):
    def run():
        client.control("faults", {"error_ratio": 0.5, "seed": 1234})
        codes = [requests.post(client.url("/v2/auth/challenge"), timeout=10).status_code for _ in range(20)]
        client.control("faults/clear")
        return codes

    first, second = run(), run()
    assert first == second
    assert 200 in first and set(first) - {200} <= {500, 502, 503} and len(set(first)) > 1


def test_timeout_after_accept_stores_the_invoice(client):
    session = client.open_online().json()["referenceNumber"]
    client.control("faults", {"stall_after_accept_seconds": 1.5, "stall_after_accept_count": 1})
    xml = sample_invoice(number())
    with pytest.raises(requests.Timeout):
        client.http.post(client.url("/v2/sessions/online/%s/invoices" % session), json=client.invoice_payload(xml),
                         headers={"Authorization": "Bearer " + client.access_token}, timeout=0.5)
    # the invoice was accepted although the client never saw the answer; a resend is a duplicate
    counters = client.control("counters", method="GET")
    assert counters["acceptedByHash"] == {crypto.sha256_b64(xml): 1}
    assert counters["acceptedBySeller"] == {SAMPLE_SELLER_NIP: 1}
    retry = client.send(session, xml)
    assert retry.status_code == 202  # only one stall was requested
    status = client.wait_invoice(session, retry.json()["referenceNumber"])
    assert status["status"]["code"] == 440
    assert client.control("counters", method="GET")["submissionsByHash"] == {crypto.sha256_b64(xml): 2}


def test_delay_slows_answers(client):
    import time
    client.control("faults", {"delay": 0.3})
    started = time.monotonic()
    requests.post(client.url("/v2/auth/challenge"), timeout=10)
    assert time.monotonic() - started >= 0.3


def test_rate_limit_429_with_retry_after(client):
    client.control("rate-limits", {"enabled": True, "scale": 0.1, "reset": True})  # GET /sessions: 5/s -> 1/s
    params = {"sessionType": "Online"}
    assert client.call("GET", "/v2/sessions", params=params).status_code == 200
    limited = client.call("GET", "/v2/sessions", params=params)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["status"]["code"] == 429 and limited.json()["status"]["details"]
    problem = client.call("GET", "/v2/sessions", params=params, headers={"X-Error-Format": "problem-details"})
    assert problem.status_code == 429 and problem.json()["status"] == 429
    # another endpoint group is counted separately
    assert client.open_online().status_code == 201


def test_latarnia_events(client):
    assert requests.get(client.url("/status"), timeout=10).json() == {"status": "AVAILABLE", "messages": []}
    maintenance = client.control("latarnia", {"action": "maintenance", "start": "2099-01-01T10:00:00+00:00",
                                              "end": "2099-01-01T12:00:00+00:00"})
    status = requests.get(client.url("/status"), timeout=10).json()
    assert status["status"] == "AVAILABLE" and status["messages"][0]["type"] == "MAINTENANCE_ANNOUNCEMENT"
    failure = client.control("latarnia", {"action": "failure_start", "text": "Awaria KSeF"})
    status = requests.get(client.url("/status"), timeout=10).json()
    assert status["status"] == "FAILURE"
    started = [m for m in status["messages"] if m["type"] == "FAILURE_START"][0]
    assert started["eventId"] == failure["eventId"] != maintenance["eventId"] and started["end"] is None
    ended = client.control("latarnia", {"action": "failure_end", "eventId": failure["eventId"]})
    assert ended["start"] == failure["start"] and ended["end"]
    assert requests.get(client.url("/status"), timeout=10).json()["status"] == "AVAILABLE"
    client.control("latarnia", {"action": "total_failure"})
    assert requests.get(client.url("/status"), timeout=10).json()["status"] == "TOTAL_FAILURE"
    messages = requests.get(client.url("/messages"), timeout=10).json()
    assert [m["type"] for m in messages] == ["FAILURE_START", "FAILURE_END", "FAILURE_START",
                                              "MAINTENANCE_ANNOUNCEMENT"]
    assert {"id", "eventId", "category", "type", "title", "text", "start", "end", "version",
            "published"} <= set(messages[0])
    client.control("faults", {"latarnia_down": True})
    assert requests.get(client.url("/status"), timeout=10).status_code == 502


def test_state_survives_a_restart_of_the_process(tmp_path):
    state = tmp_path / "state.db"
    process, base_url = start_subprocess(state, tokens=["%s:%s" % (SAMPLE_SELLER_NIP, TOKEN)],
                                         rate_limits="off", processing_delay=0)
    try:
        client = SimClient(base_url)
        client.login(SAMPLE_SELLER_NIP, TOKEN)
        session = client.open_online().json()["referenceNumber"]
        invoice_ref = client.send(session, sample_invoice(number())).json()["referenceNumber"]
        before = client.wait_invoice(session, invoice_ref)
        keys_before = requests.get(base_url + "/v2/security/public-key-certificates", timeout=10).json()
    finally:
        stop_subprocess(process)
    process, base_url = start_subprocess(state, rate_limits="off", processing_delay=0)
    try:
        client.base_url = base_url  # same access token: its signing secret is in the state file
        after = client.invoice_status(session, invoice_ref).json()
        assert after["ksefNumber"] == before["ksefNumber"] and after["status"]["code"] == 200
        assert requests.get(base_url + "/v2/security/public-key-certificates", timeout=10).json() == keys_before
        assert client.call("POST", "/v2/sessions/online/%s/close" % session).status_code == 204
        assert client.wait_session(session)["status"]["code"] == 200
        client.login(SAMPLE_SELLER_NIP, TOKEN)  # the token registered at the first start is kept
    finally:
        stop_subprocess(process)
