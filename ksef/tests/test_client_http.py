"""KsefClient over real HTTP against the KSeF simulator on 127.0.0.1 (the KSeF 2.0 OpenAPI)."""
import datetime
import logging
import uuid

import pytest
import requests

from ksef import crypto, devcerts, errors
from ksef.client import KsefClient, OnlineSession
from ksef.ksef_number import is_valid_ksef_number
from ksef.simulator import Simulator
from ksef.simulator.testing import SAMPLE_SELLER_NIP, sample_invoice, warsaw_today
from ksef.upo import parse_upo

NIP = SAMPLE_SELLER_NIP
TOKEN = "client-http-test-token-%s" % uuid.uuid4().hex


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    sim = Simulator(tmp_path_factory.mktemp("ksef-sim") / "state.db", tokens=["%s:%s" % (NIP, TOKEN)],
                    rate_limits="off", processing_delay=0.1)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def api_url(simulator):
    return simulator.base_url + "/v2"


def control(simulator, action, payload=None):
    answer = requests.post(simulator.base_url + "/_control/" + action, json=payload or {}, timeout=10)
    answer.raise_for_status()
    return answer.json()


@pytest.fixture(autouse=True)
def clean_faults(simulator):
    yield
    control(simulator, "faults/clear")
    control(simulator, "rate-limits", {"enabled": False, "reset": True})


def new_client(api_url, **kwargs):
    kwargs.setdefault("timeout", 5)
    return KsefClient(base_url=api_url, poll_interval=0.05, **kwargs)


@pytest.fixture(scope="module")
def client(api_url):
    ksef = new_client(api_url)
    ksef.authenticate_with_token("Nip", NIP, TOKEN)
    return ksef


class Recorder:
    """Requests hook keeping (method, url, request headers, status) of every call."""

    def __init__(self, session):
        self.calls = []
        session.hooks["response"].append(self._record)

    def _record(self, response, *args, **kwargs):
        request = response.request
        self.calls.append((request.method, request.url, dict(request.headers), response.status_code))

    def count(self, method, fragment):
        return sum(1 for m, url, _h, _s in self.calls if m == method and fragment in url)


def number():
    return "FV/%s" % uuid.uuid4().hex[:12].upper()


# --- full flows ---------------------------------------------------------------------------

def test_token_login_online_session_send_status_upo_without_leaking_secrets(api_url, caplog):
    caplog.set_level(logging.DEBUG)
    ksef = new_client(api_url)
    tokens = ksef.authenticate_with_token("Nip", NIP, TOKEN)
    assert tokens.access_token.valid_until > datetime.datetime.now(datetime.timezone.utc)

    session = ksef.open_online_session()
    assert session.form_code.system_code == "FA (3)" and len(session.symmetric_key) == 32
    xml = sample_invoice(number())
    invoice_reference = ksef.send_invoice(session, xml)
    status = ksef.wait_for_invoice(session, invoice_reference)
    assert status.is_success and status.invoice_hash == crypto.sha256_b64(xml)
    assert is_valid_ksef_number(status.ksef_number) and status.ksef_number.startswith(NIP + "-")
    assert status.invoicing_mode == "Online" and status.acquisition_date is not None

    by_reference = ksef.invoice_upo(session, invoice_reference=invoice_reference)
    by_number = ksef.invoice_upo(session, ksef_number=status.ksef_number)
    document = parse_upo(by_reference)["documents"][0]
    assert document.ksef_number == status.ksef_number
    assert parse_upo(by_number)["documents"][0].document_hash == crypto.sha256_b64(xml)
    assert status.upo_download_url and parse_upo(ksef.download(status.upo_download_url))["documents"]

    listed = list(ksef.session_invoices(session))
    assert [i.reference_number for i in listed] == [invoice_reference]

    ksef.close_online_session(session)
    final = ksef.wait_for_session(session, timeout=20)
    assert final.code == 200 and final.invoice_count == 1 and final.successful_invoice_count == 1
    pages = ksef.session_upo(session)
    assert len(pages) == 1
    upo = parse_upo(pages[0])
    assert upo["session_reference"] == session.reference_number
    assert [d.ksef_number for d in upo["documents"]] == [status.ksef_number]

    secrets = [TOKEN, tokens.access_token.token, tokens.refresh_token.token, crypto.b64(session.symmetric_key)]
    assert caplog.records, "the flow should have logged at DEBUG"
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in repr(ksef) and secret not in repr(session)


def test_batch_flow_with_several_parts_to_ksef_numbers_and_upo(client):
    invoices = [("faktura-%02d.xml" % n, sample_invoice(number())) for n in range(1, 13)]
    recorder = Recorder(client.http)
    batch_session = client.open_batch_session(invoices, offline_mode=True, max_part_size=1500)
    assert len(batch_session.package.parts) > 1
    assert len(batch_session.part_upload_requests) == len(batch_session.package.parts)
    client.upload_batch_parts(batch_session)
    client.close_batch_session(batch_session)

    uploads = [call for call in recorder.calls if call[0] == "PUT"]
    assert len(uploads) == len(batch_session.package.parts)
    assert all("Authorization" not in headers for _m, _u, headers, status in uploads)
    assert all(status in (200, 201) for *_rest, status in uploads)

    final = client.wait_for_session(batch_session, timeout=30)
    assert final.code == 200 and final.successful_invoice_count == 12
    statuses = list(client.session_invoices(batch_session, page_size=10))  # 12 invoices: two pages
    assert len(statuses) == 12 and len({s.reference_number for s in statuses}) == 12
    by_name = batch_session.file_names
    for status in statuses:
        assert status.is_success and is_valid_ksef_number(status.ksef_number)
        assert by_name[status.invoice_file_name] == status.invoice_hash
        assert status.invoicing_mode == "Offline"
    pages = client.session_upo(batch_session)
    numbers = {d.ksef_number for page in pages for d in parse_upo(page)["documents"]}
    assert numbers == {s.ksef_number for s in statuses}
    assert list(client.failed_session_invoices(batch_session)) == []


def test_send_batch_convenience_and_pagination_over_continuation_tokens(client):
    invoices = [sample_invoice(number()) for _ in range(25)]
    batch_session = client.send_batch(invoices)
    client.wait_for_session(batch_session, timeout=30)
    recorder = Recorder(client.http)
    statuses = list(client.session_invoices(batch_session, page_size=10))
    assert len(statuses) == 25
    assert sorted(s.invoice_hash for s in statuses) == sorted(crypto.sha256_b64(x) for x in invoices)
    pages = [call for call in recorder.calls if "/invoices?" in call[1]]
    assert len(pages) == 3
    assert "x-continuation-token" not in {k.lower() for k in pages[0][2]}
    assert all("x-continuation-token" in {k.lower() for k in call[2]} for call in pages[1:])


def test_certificate_login_with_xades(api_url):
    for key_type in ("ec", "rsa"):
        certificate, key = devcerts.make_certificate(devcerts.AUTHENTICATION, NIP, key_type=key_type)
        ksef = new_client(api_url)
        ksef.authenticate_with_certificate("Nip", NIP, certificate, key)
        assert ksef.session_status(ksef.open_online_session()).code == 100


def test_offline_certificate_cannot_log_in(api_url):
    certificate, key = devcerts.make_certificate(devcerts.OFFLINE, NIP)
    with pytest.raises(errors.AuthenticationFailed) as caught:
        new_client(api_url).authenticate_with_certificate("Nip", NIP, certificate, key)
    assert caught.value.code == 460


def test_wrong_ksef_token_is_unauthorized(api_url):
    ksef = new_client(api_url)
    with pytest.raises(errors.Unauthorized) as caught:
        ksef.authenticate_with_token("Nip", NIP, "not-the-token")
    assert isinstance(caught.value, errors.AuthenticationFailed) and caught.value.code == 450
    assert "not-the-token" not in str(caught.value)


def test_redeem_works_once(api_url):
    ksef = new_client(api_url)
    operation = ksef.start_token_authentication("Nip", NIP, TOKEN)
    ksef.wait_for_authentication(operation)
    ksef.redeem(operation)
    with pytest.raises(errors.Unauthorized) as caught:
        ksef.redeem(operation)
    assert caught.value.code == 21301


# --- per-invoice verdicts -----------------------------------------------------------------

def test_duplicate_carries_the_original_ksef_number(client):
    session = client.open_online_session()
    xml = sample_invoice(number())
    first = client.wait_for_invoice(session, client.send_invoice(session, xml))
    again = client.send_invoice(session, xml)
    with pytest.raises(errors.Duplicate) as caught:
        client.wait_for_invoice(session, again)
    assert caught.value.code == 440
    assert caught.value.original_ksef_number == first.ksef_number
    assert caught.value.original_session_reference_number == session.reference_number
    assert isinstance(caught.value, errors.Rejected)


def test_rejections_430_and_450_then_technical_correction(client):
    session = client.open_online_session()
    broken = sample_invoice(number()).replace(b"<P_15>177.00</P_15>", b"<P_15>abc</P_15>")
    broken_ref = client.send_invoice(session, broken, offline_mode=True)
    with pytest.raises(errors.Rejected) as caught:
        client.wait_for_invoice(session, broken_ref)
    assert caught.value.code == 430 and caught.value.reference_number == broken_ref

    future = sample_invoice(number(), issue_date=warsaw_today() + datetime.timedelta(days=5))
    with pytest.raises(errors.Rejected) as caught:
        client.wait_for_invoice(session, client.send_invoice(session, future))
    assert caught.value.code == 450 and not isinstance(caught.value, errors.Duplicate)

    failed = {s.reference_number: s.code for s in client.failed_session_invoices(session)}
    assert failed[broken_ref] == 430 and len(failed) == 2

    fixed = broken.replace(b"<P_15>abc</P_15>", b"<P_15>177.00</P_15>")
    fixed_ref = client.send_invoice(session, fixed, offline_mode=True,
                                    hash_of_corrected_invoice=crypto.sha256_b64(broken))
    status = client.wait_for_invoice(session, fixed_ref)
    assert status.is_success and status.invoicing_mode == "Offline"


def test_session_record_is_reusable_by_another_client(client, api_url):
    stored = client.open_online_session().to_dict()
    other = new_client(api_url)
    other.authenticate_with_token("Nip", NIP, TOKEN)
    session = OnlineSession.from_dict(stored)
    status = other.wait_for_invoice(session, other.send_invoice(session, sample_invoice(number())))
    assert status.is_success


def test_closed_session_refuses_invoices(client):
    session = client.open_online_session()
    client.send_invoice(session, sample_invoice(number()))
    client.close_online_session(session)
    with pytest.raises(errors.SessionClosed) as caught:
        client.send_invoice(session, sample_invoice(number()))
    assert caught.value.code == 21180


# --- transport and protocol errors --------------------------------------------------------

def test_rate_limit_raises_with_retry_after(simulator, client):
    session = client.open_online_session()
    control(simulator, "rate-limits", {"enabled": True, "scale": 0.1, "reset": True})
    with pytest.raises(errors.RateLimited) as caught:
        for _ in range(5):
            client.session_status(session)
    assert caught.value.http_status == 429 and caught.value.retry_after >= 1


def test_timeout_from_a_slow_answer(simulator, api_url):
    ksef = new_client(api_url, timeout=0.3)
    control(simulator, "faults", {"delay": 1.0})
    with pytest.raises(errors.KsefTimeout):
        ksef.challenge()


@pytest.mark.parametrize("mode, http_status", [("503", 503), ("close", None)])
def test_unavailable_when_ksef_is_down(simulator, api_url, mode, http_status):
    control(simulator, "faults", {"down": True, "down_mode": mode})
    with pytest.raises(errors.KsefUnavailable) as caught:
        new_client(api_url).challenge()
    assert caught.value.http_status == http_status
    assert not isinstance(caught.value, errors.KsefTimeout)


def test_connection_refused_is_unavailable():
    with socket_free_port() as port:
        pass
    with pytest.raises(errors.KsefUnavailable, match="cannot connect"):
        KsefClient(base_url="http://127.0.0.1:%d/v2" % port, timeout=2).challenge()


def test_expired_access_token_is_refreshed_once(simulator, api_url):
    ksef = new_client(api_url)
    ksef.authenticate_with_token("Nip", NIP, TOKEN)
    session = ksef.open_online_session()
    old_access = ksef.access_token.token
    control(simulator, "expire", {"access_tokens": True})
    recorder = Recorder(ksef.http)
    assert ksef.session_status(session).code == 100
    assert recorder.count("POST", "/auth/token/refresh") == 1
    assert ksef.access_token.token != old_access
    assert [status for _m, url, _h, status in recorder.calls if url.endswith(session.reference_number)] == [401, 200]


def test_unauthorized_after_one_failed_refresh(api_url, client):
    session = client.open_online_session()
    ksef = new_client(api_url, access_token="bogus-access", refresh_token="bogus-refresh")
    recorder = Recorder(ksef.http)
    with pytest.raises(errors.Unauthorized):
        ksef.session_status(session)
    assert recorder.count("POST", "/auth/token/refresh") == 1
    assert recorder.count("GET", "/sessions/") == 1


def test_unauthorized_without_refresh_token(api_url, client):
    session = client.open_online_session()
    with pytest.raises(errors.Unauthorized) as caught:
        new_client(api_url, access_token="bogus-access").session_status(session)
    assert caught.value.http_status == 401 and "bogus-access" not in str(caught.value)


def test_unknown_public_key_reloads_keys_and_retries_once(simulator, api_url):
    ksef = new_client(api_url)
    ksef.authenticate_with_token("Nip", NIP, TOKEN)
    old_ids = {c.public_key_id for c in ksef.public_key_certificates()}
    control(simulator, "keys/rotate", {"mode": "emergency"})
    recorder = Recorder(ksef.http)
    session = ksef.open_online_session()
    assert session.public_key_id not in old_ids
    assert recorder.count("GET", "/security/public-key-certificates") == 1
    assert [s for m, url, _h, s in recorder.calls if m == "POST" and url.endswith("/sessions/online")] == [400, 201]
    assert ksef.wait_for_invoice(session, ksef.send_invoice(session, sample_invoice(number()))).is_success
    # token login picks the new KsefTokenEncryption key the same way
    control(simulator, "keys/rotate", {"mode": "emergency"})
    ksef.authenticate_with_token("Nip", NIP, TOKEN)


def test_public_key_choice_prefers_latest_valid_key(simulator, api_url):
    control(simulator, "keys/rotate", {"mode": "transition"})
    ksef = new_client(api_url)
    keys = ksef.public_key_certificates()
    for usage in ("KsefTokenEncryption", "SymmetricKeyEncryption"):
        usable = [k for k in keys if usage in k.usage]
        assert len(usable) >= 2
        assert ksef.public_key_for(usage).valid_from == max(k.valid_from for k in usable)
        assert crypto.b64(ksef.public_key_for(usage).certificate.public_bytes(
            crypto_encoding())) == ksef.public_key_for(usage).certificate_b64


def test_system_warning_header_is_logged(caplog):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = b'{"challenge":"20250625-CR-20F5EE4000-DA48AE4124-46","timestamp":"2026-01-01T00:00:00Z",' \
                   b'"timestampMs":1,"clientIp":"127.0.0.1"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-System-Warning", "[W001]: Planowana zmiana API | [W002]: Drugi komunikat")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        caplog.set_level(logging.WARNING, logger="ksef.client")
        KsefClient(base_url="http://127.0.0.1:%d/v2" % server.server_address[1], timeout=5).challenge()
    finally:
        server.shutdown()
        server.server_close()
    assert "[W001]: Planowana zmiana API" in caplog.text and "/auth/challenge" in caplog.text


# --- helpers ------------------------------------------------------------------------------

def crypto_encoding():
    from cryptography.hazmat.primitives.serialization import Encoding
    return Encoding.DER


class socket_free_port:
    """A port that was free a moment ago (bound then released) on 127.0.0.1."""

    def __enter__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()
