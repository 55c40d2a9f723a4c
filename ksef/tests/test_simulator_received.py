"""Invoices a company receives, over real HTTP: the buyer finds them with
``POST /invoices/query/metadata`` (subject type, date range, paging) and downloads them with
``GET /invoices/ksef/{n}``; a stranger sees neither."""
import datetime
import uuid

import pytest

from ksef import crypto
from ksef.simulator.testing import SAMPLE_SELLER_NIP, SimClient, sample_invoice, warsaw_today

TOKEN = "received-test-token"
BUYER_NIP = "3861610227"          # Podmiot2 of the shared sample invoice
STRANGER_NIP = "7251801126"


def _client(base_url, nip):
    client = SimClient(base_url)
    client.control("tokens", {"nip": nip, "token": "tok-%s" % nip})
    client.login(nip, "tok-%s" % nip)
    return client


def _window(days=1):
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"dateType": "Invoicing", "from": (now - datetime.timedelta(days=days)).isoformat(),
            "to": (now + datetime.timedelta(minutes=5)).isoformat()}


def _query(client, subject, page_size=10, page_offset=0, date_range=None):
    return client.call("POST", "/v2/invoices/query/metadata", params={"pageSize": page_size, "pageOffset": page_offset},
                       json={"subjectType": subject, "dateRange": date_range or _window()})


@pytest.fixture(scope="module")
def sent(base_url):
    """Twelve invoices of the sample seller to the sample buyer, all accepted."""
    client = SimClient(base_url)
    client.login(SAMPLE_SELLER_NIP, TOKEN)
    session = client.open_online().json()["referenceNumber"]
    numbers = {}
    for _ in range(12):
        xml = sample_invoice("FV/R/%s" % uuid.uuid4().hex[:10])
        reference = client.send(session, xml).json()["referenceNumber"]
        status = client.wait_invoice(session, reference)
        assert status["status"]["code"] == 200, status
        numbers[status["ksefNumber"]] = xml
    return numbers


def test_buyer_finds_received_invoices_page_by_page(base_url, sent):
    buyer = _client(base_url, BUYER_NIP)
    first = _query(buyer, "Subject2")
    assert first.status_code == 200, first.text
    page1 = first.json()
    assert page1["hasMore"] is True and page1["isTruncated"] is False and len(page1["invoices"]) == 10
    page2 = _query(buyer, "Subject2", page_offset=1).json()
    assert page2["hasMore"] is False and len(page2["invoices"]) == 2
    found = {item["ksefNumber"]: item for item in page1["invoices"] + page2["invoices"]}
    assert set(found) == set(sent)
    item = next(iter(found.values()))
    assert item["seller"]["nip"] == SAMPLE_SELLER_NIP
    assert item["buyer"]["identifier"] == {"type": "Nip", "value": BUYER_NIP}
    assert item["grossAmount"] == 177.0 and item["vatAmount"] == 27.0 and item["netAmount"] == 150.0
    assert item["invoiceHash"] == crypto.sha256_b64(sent[item["ksefNumber"]])


def test_buyer_downloads_a_received_invoice_a_stranger_cannot(base_url, sent):
    number, xml = next(iter(sent.items()))
    buyer = _client(base_url, BUYER_NIP)
    answer = buyer.call("GET", "/v2/invoices/ksef/%s" % number)
    assert answer.status_code == 200 and answer.content == xml
    stranger = _client(base_url, STRANGER_NIP)
    assert stranger.call("GET", "/v2/invoices/ksef/%s" % number).status_code == 400
    assert _query(stranger, "Subject2").json()["invoices"] == []


def test_seller_query_and_date_range_and_bad_input(base_url, sent):
    seller = SimClient(base_url)
    seller.login(SAMPLE_SELLER_NIP, TOKEN)
    assert len(_query(seller, "Subject1", page_size=100).json()["invoices"]) == 12
    # as buyer the seller received nothing
    assert _query(seller, "Subject2").json()["invoices"] == []
    # a window in the past holds nothing
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=10)
    old = {"dateType": "Invoicing", "from": past.isoformat(), "to": (past + datetime.timedelta(days=1)).isoformat()}
    assert _query(seller, "Subject1", date_range=old).json()["invoices"] == []
    # issue dates (Warsaw calendar days) work too; the machine's own date differs from Warsaw's
    # for an hour or two around midnight
    today = warsaw_today().isoformat()
    issue = {"dateType": "Issue", "from": today + "T00:00:00", "to": today + "T23:59:59"}
    assert len(_query(seller, "Subject1", page_size=100, date_range=issue).json()["invoices"]) == 12
    assert _query(seller, "Subject9").status_code == 400
    assert _query(seller, "Subject1", page_size=5).status_code == 400
    too_long = {"dateType": "Invoicing", "from": "2026-01-01T00:00:00Z", "to": "2026-06-01T00:00:00Z"}
    assert _query(seller, "Subject1", date_range=too_long).status_code == 400
    assert seller.call("POST", "/v2/invoices/query/metadata", json={"subjectType": "Subject1"}).status_code == 400
