"""Black-box tests of the simulator's batch sessions (ZIP parts, encryption, processing)."""
import datetime
import uuid

import requests
from lxml import etree

from ksef import crypto
from ksef.ksef_number import is_valid_ksef_number
from ksef.simulator.testing import sample_invoice, warsaw_today

TOKEN = "batch-test-token"
PROCESSING_DELAY = 0.05




def number():
    return "FB/%s" % uuid.uuid4().hex[:12]


def exception_code(answer):
    assert answer.status_code == 400, answer.text
    return answer.json()["exception"]["exceptionDetailList"][0]["exceptionCode"]


def test_batch_round_trip_in_three_parts(client, upo_schema):
    duplicate_number = number()
    invoices = {"inv-%03d.xml" % i: sample_invoice(number()) for i in range(30)}
    invoices["dup-a.xml"] = sample_invoice(duplicate_number)
    invoices["dup-b.xml"] = sample_invoice(duplicate_number, warsaw_today() - datetime.timedelta(days=1))
    invoices["broken.xml"] = b"<Faktura/>"
    yesterday = warsaw_today() - datetime.timedelta(days=1)
    invoices["late.xml"] = sample_invoice(number(), yesterday)
    reference = client.send_batch(invoices, part_count=3)
    status = client.wait_session(reference)
    assert status["status"]["code"] == 200, status
    assert (status["invoiceCount"], status["successfulInvoiceCount"], status["failedInvoiceCount"]) == (34, 32, 2)
    listed = client.all_invoices(reference, page_size=10)
    by_name = {item["invoiceFileName"]: item for item in listed}
    assert len(by_name) == 34
    for name, xml in invoices.items():
        assert by_name[name]["invoiceHash"] == crypto.sha256_b64(xml)
    assert by_name["broken.xml"]["status"]["code"] == 430
    assert by_name["dup-b.xml"]["status"]["code"] == 440
    assert by_name["dup-b.xml"]["status"]["extensions"]["originalKsefNumber"] == by_name["dup-a.xml"]["ksefNumber"]
    assert by_name["late.xml"]["invoicingMode"] == "Offline"
    assert by_name["inv-000.xml"]["invoicingMode"] == "Online"
    assert all(is_valid_ksef_number(item["ksefNumber"]) for item in listed if item["status"]["code"] == 200)
    failed = client.all_invoices(reference, failed=True)
    assert sorted(item["invoiceFileName"] for item in failed) == ["broken.xml", "dup-b.xml"]
    [page] = status["upo"]["pages"]
    upo = requests.get(page["downloadUrl"], timeout=10)
    assert upo.headers["x-ms-meta-hash"] == crypto.sha256_b64(upo.content)
    document = etree.fromstring(upo.content)
    assert upo_schema.validate(document), upo_schema.error_log
    assert len(document.findall("{http://upo.schematy.mf.gov.pl/KSeF/v4-3}Dokument")) == 32


def test_declared_offline_batch(client):
    reference = client.send_batch({"a.xml": sample_invoice(number())}, offline_mode=True)
    assert client.wait_session(reference)["status"]["code"] == 200
    [invoice] = client.all_invoices(reference)
    assert invoice["invoicingMode"] == "Offline"


def test_part_with_wrong_hash_fails_the_session_with_405(client):
    answer, parts = client.open_batch(client.zip_invoices({"a.xml": sample_invoice(number())}))
    opened = answer.json()
    tampered = [parts[0][:-16] + bytes(16)]  # same size, other content
    assert all(r.status_code == 201 for r in client.upload_parts(opened, tampered))
    assert client.call("POST", "/v2/sessions/batch/%s/close" % opened["referenceNumber"]).status_code == 204
    assert client.wait_session(opened["referenceNumber"])["status"]["code"] == 405


def test_not_a_zip_fails_with_430_and_no_valid_invoices_with_445(client):
    answer, parts = client.open_batch(b"this is not a zip archive")
    opened = answer.json()
    client.upload_parts(opened, parts)
    client.call("POST", "/v2/sessions/batch/%s/close" % opened["referenceNumber"])
    assert client.wait_session(opened["referenceNumber"])["status"]["code"] == 430
    reference = client.send_batch({"bad.xml": b"<x/>"})
    status = client.wait_session(reference)
    assert status["status"]["code"] == 445 and status["upo"] is None


def test_close_checks_parts_synchronously(client):
    answer, parts = client.open_batch(client.zip_invoices({"a.xml": sample_invoice(number())}), part_count=1)
    opened = answer.json()
    close = "/v2/sessions/batch/%s/close" % opened["referenceNumber"]
    assert exception_code(client.call("POST", close)) == 21205  # nothing uploaded
    upload = opened["partUploadRequests"][0]
    assert requests.put(upload["url"], data=parts[0] + b"extra", headers=upload["headers"], timeout=10).status_code == 201
    assert exception_code(client.call("POST", close)) == 21157  # size differs from the declaration
    assert requests.put(upload["url"] + "x", data=parts[0], timeout=10).status_code == 403  # signature is checked
    assert requests.put(upload["url"], data=parts[0], headers=upload["headers"], timeout=10).status_code == 201
    assert client.call("POST", close).status_code == 204
    assert client.wait_session(opened["referenceNumber"])["status"]["code"] == 200


def test_open_checks_part_count_and_size(client):
    package = client.zip_invoices({"a.xml": sample_invoice(number())})
    answer, _ = client.open_batch(package)
    assert answer.status_code == 201
    too_many, _ = client.open_batch(package * 60, part_count=51)
    assert exception_code(too_many) == 21161
    body = {"formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
            "batchFile": {"fileSize": 200000000, "fileHash": crypto.sha256_b64(b""),
                          "fileParts": [{"ordinalNumber": 1, "fileSize": 150000000,
                                         "fileHash": crypto.sha256_b64(b"")}]},
            "encryption": client.encryption()}
    assert exception_code(client.call("POST", "/v2/sessions/batch", json=body)) == 21157


def test_expired_batch_is_cancelled(client):
    answer, parts = client.open_batch(client.zip_invoices({"a.xml": sample_invoice(number())}))
    opened = answer.json()
    client.control("expire", {"sessions": True})
    assert exception_code(client.call("POST", "/v2/sessions/batch/%s/close" % opened["referenceNumber"])) == 21208
    assert client.session_status(opened["referenceNumber"]).json()["status"]["code"] == 440


def test_invoice_limit_per_batch_gives_420(client):
    client.control("config", {"max_invoices_per_session": 3})
    try:
        reference = client.send_batch({"%d.xml" % i: sample_invoice(number()) for i in range(4)})
        assert client.wait_session(reference)["status"]["code"] == 420
    finally:
        client.control("config", {"max_invoices_per_session": 10000})
