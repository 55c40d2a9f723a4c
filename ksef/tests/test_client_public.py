"""The client's public page-level listing and pre-signed transfers, over real HTTP against the
simulator; and the engine (``ksef.submission``) using nothing but the client's public calls."""
import concurrent.futures
import socket
import threading
import time
import uuid

import pytest

from ksef import errors, submission
from ksef.client import KsefClient
from ksef.simulator.testing import SAMPLE_SELLER_NIP, SimClient, sample_invoice
from ksef.upo import parse_upo

TOKEN = "client-public-test-token-%s" % uuid.uuid4().hex   # conftest's simulator registers it


@pytest.fixture
def sim(base_url):
    """The simulator's control side; faults set by a test are cleared after it."""
    control = SimClient(base_url)
    yield control
    control.control("faults/clear")


@pytest.fixture(scope="module")
def ksef(base_url):
    ksef = KsefClient(base_url=base_url + "/v2", timeout=5, poll_interval=0.05)
    ksef.authenticate_with_token("Nip", SAMPLE_SELLER_NIP, TOKEN)
    return ksef


def number():
    return "FV/%s" % uuid.uuid4().hex[:12].upper()


def test_invoice_pages_with_continuation_token_and_failed_only(ksef):
    good = [sample_invoice(number()) for _ in range(12)]
    broken = sample_invoice(number()).replace(b"<P_15>177.00</P_15>", b"<P_15>abc</P_15>")
    batch_session = ksef.send_batch(good + [broken], offline_mode=True)
    status = ksef.wait_for_session(batch_session, timeout=30, raise_on_failure=False)
    assert status.failed_invoice_count == 1

    first = ksef.session_invoices_page(batch_session, page_size=10)
    assert len(first.invoices) == 10 and first.continuation_token
    second = ksef.session_invoices_page(batch_session.reference_number, page_size=10,
                                          continuation_token=first.continuation_token)
    assert len(second.invoices) == 3 and second.continuation_token is None
    listed = first.invoices + second.invoices
    assert len({entry.reference_number for entry in listed}) == 13

    failed = ksef.session_invoices_page(batch_session, page_size=10, failed=True)
    assert [entry.code for entry in failed.invoices] == [430] and failed.continuation_token is None
    assert failed.invoices[0].group == "rejected"
    assert all(entry.group == "success" for entry in listed if entry.invoice_hash != failed.invoices[0].invoice_hash)


def test_page_size_outside_the_api_bounds_is_refused_before_asking(ksef):
    for size in (9, 1001):
        with pytest.raises(ValueError):
            ksef.session_invoices_page("20250101-SO-0000000000-0000000000-00", page_size=size)


def test_parallel_part_uploads_then_presigned_upo_downloads(ksef):
    invoices = [("faktura-%02d.xml" % n, sample_invoice(number())) for n in range(1, 13)]
    batch_session = ksef.open_batch_session(invoices, offline_mode=True, max_part_size=1500)
    uploads = ksef.batch_part_uploads(batch_session)
    assert len(uploads) == len(batch_session.package.parts) > 3
    threads = set()

    def upload(request, content):
        threads.add(threading.get_ident())
        ksef.upload_batch_part(request, content, batch_session.reference_number)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(upload, request, content) for request, content in uploads]:
            future.result()
    ksef.close_batch_session(batch_session)
    status = ksef.wait_for_session(batch_session, timeout=30)
    assert status.successful_invoice_count == 12

    pages = [ksef.download(page.download_url) for page in status.upo_pages]
    numbers = {d.ksef_number for page in pages for d in parse_upo(page)["documents"]}
    listed = list(ksef.session_invoices(batch_session))
    assert numbers == {entry.ksef_number for entry in listed} and len(numbers) == 12
    one = parse_upo(ksef.download(listed[0].upo_download_url))["documents"]
    assert [d.ksef_number for d in one] == [listed[0].ksef_number]


def test_presigned_failures_are_typed_ksef_errors(ksef, sim):
    batch_session = ksef.open_batch_session([sample_invoice(number())])
    (request, content), = ksef.batch_part_uploads(batch_session)
    sim.control("faults", {"down": True, "down_mode": "503"})
    with pytest.raises(errors.KsefUnavailable) as caught:
        ksef.upload_batch_part(request, content, batch_session.reference_number)
    assert caught.value.http_status == 503 and caught.value.reference_number == batch_session.reference_number
    assert "upload of batch part 1 failed" in str(caught.value)
    sim.control("faults", {"down": True, "down_mode": "close"})
    with pytest.raises(errors.KsefUnavailable):
        ksef.upload_batch_part(request, content)
    sim.control("faults/clear")
    with pytest.raises(errors.KsefUnavailable):     # not http(s): refused, never read
        ksef.download("file:///etc/passwd")
    ksef.upload_batch_part(request, content)      # the same part goes through once KSeF is back


def test_presigned_download_has_a_total_deadline(ksef):
    """A server that drips its answer one byte at a time does not hold the caller for ever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def drip():
        connection, _address = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        try:
            for _ in range(40):
                connection.sendall(b"x")
                time.sleep(0.1)
        except OSError:
            pass
        connection.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    slow = KsefClient(base_url="http://127.0.0.1:1/v2", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(errors.KsefTimeout):
        slow.download("http://127.0.0.1:%d/upo.xml" % listener.getsockname()[1])
    assert time.monotonic() - started < 2.5
    listener.close()


class PublicOnly:
    """The client as the engine may see it: its private parts and its HTTP session are off limits."""

    def __init__(self, client):
        object.__setattr__(self, "_client", client)

    def __getattr__(self, name):
        if name.startswith("_") or name == "http":
            raise AssertionError("the engine touched the client's private %s" % name)
        return getattr(object.__getattribute__(self, "_client"), name)


def test_the_engine_uses_only_the_clients_public_calls(ksef):
    items = [submission.Item.of(index, sample_invoice(number()), offline_mode=True) for index in range(12)]
    items += [submission.Item.of(100 + index, sample_invoice(number()), offline_mode=False) for index in range(2)]
    submitter = submission.Submitter(PublicOnly(ksef), batch_threshold=10, max_part_size=1500, upo="session",
                                     poll_interval=0.05)
    outcomes = submitter.submit(items)
    assert [o.status for o in outcomes] == [submission.ACCEPTED] * 14
    assert all(o.session_upo is not None for o in outcomes[:12])       # batch: the session UPO, shared
    assert all(o.upo_xml for o in outcomes[12:])                       # interactive: per-invoice UPO
    result = submitter.reconcile(submitter.journal.sessions.values(), items)
    assert result.to_resend == [] and len(result.outcomes) == 14


def test_the_engine_sends_in_an_interactive_session_the_caller_keeps_open(ksef):
    session = ksef.open_online_session()
    items = [submission.Item.of("k%d" % index, sample_invoice(number()), offline_mode=False) for index in range(2)]
    submitter = submission.Submitter(ksef, online_session=session, poll_interval=0.05)
    outcomes = submitter.submit(items)
    assert [o.status for o in outcomes] == [submission.ACCEPTED] * 2
    assert {o.session_reference for o in outcomes} == {session.reference_number}
    assert submitter.journal.closed == set()                      # not closed by the engine
    assert ksef.session_status(session).code == 100             # still open for the caller's next send
    later = ksef.wait_for_invoice(session, ksef.send_invoice(session, sample_invoice(number())))
    assert later.is_success
    ksef.close_online_session(session)
