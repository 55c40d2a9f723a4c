"""Issue 11, findings 7, 8, 9 and the address/timeout inputs of 11, in the pure core: hostile XML,
slow and huge answers, addresses that are not http(s), the drill simulator's control secret."""
import http.server
import socket
import threading
import time

import pytest
import requests

from ksef import client as ksef_client
from ksef import errors, latarnia, safehttp, safeurl, upo
from ksef.simulator import Simulator, control_secret, launcher

TOKEN = "security-core-token"
SECRET_TEXT = "to-jest-tajne-haslo-1234"


def _xxe(tmp_path, element):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_TEXT)
    return ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file://%s">]>' % secret, element)


# ---- 7. entities ----------------------------------------------------------------------------

def test_parse_upo_never_reads_a_local_file(tmp_path):
    doctype, _element = _xxe(tmp_path, None)
    xml = ('%s<Potwierdzenie xmlns="%s"><NazwaPodmiotuPrzyjmujacego>&xxe;</NazwaPodmiotuPrzyjmujacego>'
           '<NumerReferencyjnySesji>20261130-SO-0000000001-AA</NumerReferencyjnySesji></Potwierdzenie>'
           % (doctype, upo.UPO_NAMESPACE)).encode()
    try:
        parsed = upo.parse_upo(xml)
    except Exception as error:  # noqa: BLE001 - refusing the document is fine too, without the file in it
        assert SECRET_TEXT not in str(error)
        return
    assert SECRET_TEXT not in repr(parsed)


def test_simulator_xades_endpoint_does_not_echo_a_local_file(tmp_path):
    # Its second parse (for the schema check) resolved entities; the official auth schemas do not
    # compile with libxml2 here (a '^...$' pattern), so that path is guarded rather than reproduced.
    simulator = Simulator(tmp_path / "state.db", rate_limits="off")
    base_url = simulator.start()
    try:
        doctype, _element = _xxe(tmp_path, None)
        body = ('%s<AuthTokenRequest xmlns="http://ksef.mf.gov.pl/auth/token/2.0" '
                'xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><Challenge>&xxe;</Challenge>'
                '<ContextIdentifier><Nip>5265877635</Nip></ContextIdentifier>'
                '<SubjectIdentifierType>certificateSubject</SubjectIdentifierType><ds:Signature/></AuthTokenRequest>'
                % doctype).encode()
        answer = requests.post(base_url + "/v2/auth/xades-signature", data=body, timeout=10,
                               headers={"Content-Type": "application/xml"})
        assert answer.status_code >= 400
        assert SECRET_TEXT not in answer.text
    finally:
        simulator.stop()


def test_safe_parser_resolves_nothing(tmp_path):
    doctype, _element = _xxe(tmp_path, None)
    root = safehttp.parse_xml(("%s<r>&xxe;</r>" % doctype).encode())
    assert SECRET_TEXT not in (root.text or "")


# ---- 8. deadlines and size caps ----------------------------------------------------------------

class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def _serve(handler):
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, "http://127.0.0.1:%d" % server.server_address[1]


class _Drip(http.server.BaseHTTPRequestHandler):
    """Answers 200 with a JSON body one byte every 0.3 s: each read is fast, the answer is not."""

    def do_GET(self):  # noqa: N802 - http.server's name
        body = b'{"status": "' + b"x" * 40 + b'"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.3)

    def log_message(self, *args):
        pass


class _Huge(http.server.BaseHTTPRequestHandler):
    size = 3 * 1024 * 1024

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()   # no Content-Length: the cap must count what arrives
        chunk = b" " * 65536
        sent = 0
        try:   # valid JSON: only its size is wrong
            self.wfile.write(b'{"status": "AVAILABLE", "messages": [], "padding": "')
            while sent < self.size:
                self.wfile.write(chunk)
                sent += len(chunk)
            self.wfile.write(b'"}')
        except OSError:
            return

    def log_message(self, *args):
        pass


def test_a_dripping_answer_is_cut_at_the_total_deadline():
    server, url = _serve(_Drip)
    try:
        client = ksef_client.KsefClient(base_url=url, timeout=1.5)
        started = time.monotonic()
        with pytest.raises(errors.KsefTimeout):
            client._request("GET", "/status", auth=None)
        assert time.monotonic() - started < 4.0   # 14 s without the total deadline
        started = time.monotonic()
        with pytest.raises(latarnia.LatarniaUnavailable):
            latarnia.LatarniaClient(base_url=url, timeout=1.5).status()
        assert time.monotonic() - started < 4.0
    finally:
        server.shutdown()


def test_answers_have_a_size_cap():
    server, url = _serve(_Huge)
    try:
        with pytest.raises(safehttp.ResponseTooLarge):
            safehttp.bounded_request(requests.Session(), "GET", url + "/x", 10, max_bytes=1024 * 1024)
        with pytest.raises(latarnia.LatarniaUnavailable):   # Latarnia's answers: 1 MB at most
            latarnia.LatarniaClient(base_url=url, timeout=10).status()
    finally:
        server.shutdown()


# ---- 11. addresses and timeouts ------------------------------------------------------------------

@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://ksef.example/", "gopher://127.0.0.1:70/",
                                 "http://user:pass@ksef.mf.gov.pl", "javascript:alert(1)", "", "http://"])
def test_only_http_addresses_are_called(url):
    with pytest.raises(ValueError):
        ksef_client.KsefClient(base_url=url)
    with pytest.raises(ValueError):
        latarnia.LatarniaClient(base_url=url)


@pytest.mark.parametrize("timeout", [-1, 0, "abc", None])
def test_a_timeout_must_be_positive(timeout):
    with pytest.raises(ValueError):
        ksef_client.KsefClient(base_url="http://127.0.0.1:9", timeout=timeout)


@pytest.mark.parametrize("url,expected", [
    ("http://127.0.0.1:8766", "http://127.0.0.1:8766"),
    ("http://localhost:8766/", "http://localhost:8766"),
    ("http://[::1]:8766", "http://[::1]:8766"),
])
def test_local_simulator_urls(url, expected):
    assert safeurl.local_simulator_url(url) == expected


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:1@other-host:8766", "http://127.0.0.1:8766/../../etc", "http://127.0.0.1.nip.io:8766",
    "https://127.0.0.1:8766", "http://10.0.0.1:8766", "http://127.0.0.1", "http://127.0.0.1:8766/?x=1",
    "http://127.0.0.1:8766#f", "http://127.0.0.1:99999"])
def test_not_local_simulator_urls(url):
    with pytest.raises(safeurl.UnsafeUrl):
        safeurl.local_simulator_url(url)


# ---- 9. the control secret ---------------------------------------------------------------------------

def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_started_simulator_answers_its_control_api_only_to_its_secret(tmp_path):
    url = "http://127.0.0.1:%d" % _free_port()
    secret = "drill-secret-%d" % time.time_ns()
    result = launcher.ensure_running(url, tmp_path / "drill.sqlite", secret=secret)
    assert result["started"]
    try:
        assert launcher.is_running(url)   # health stays open
        answer = requests.post(url + "/_control/tokens", json={"nip": "5265877635", "token": "x"}, timeout=10)
        assert answer.status_code == 403
        answer = requests.post(url + "/_control/tokens", json={"nip": "5265877635", "token": "x"}, timeout=10,
                               headers={control_secret.HEADER: "wrong"})
        assert answer.status_code == 403
        launcher.register_token(url, "5265877635", "drill-token", secret=secret)
        assert launcher.get_script(url, secret=secret)["steps"] == []
    finally:
        assert launcher.stop(result["pid"])
    for _attempt in range(50):
        if not launcher.is_running(url):
            break
        time.sleep(0.1)
    assert not launcher.is_running(url)


def test_stop_leaves_other_processes_alone():
    assert not launcher.stop(1)   # init is no simulator
    assert not launcher.stop(999999999)
