"""Black-box tests of the simulator's interactive sessions over real HTTP."""
import datetime
import uuid

import pytest
import requests
from lxml import etree

from ksef import crypto
from ksef.ksef_number import is_valid_ksef_number
from ksef.simulator.testing import SAMPLE_SELLER_NIP, sample_invoice, set_invoice_fields, warsaw_today

TOKEN = "online-test-token"




@pytest.fixture
def session(client):
    answer = client.open_online()
    assert answer.status_code == 201, answer.text
    return answer.json()["referenceNumber"]


def number():
    return "FV/%s" % uuid.uuid4().hex[:12]


def exception_code(answer):
    assert answer.status_code == 400, answer.text
    return answer.json()["exception"]["exceptionDetailList"][0]["exceptionCode"]


def send_and_wait(client, session, xml, **kwargs):
    answer = client.send(session, xml, **kwargs)
    assert answer.status_code == 202, answer.text
    return client.wait_invoice(session, answer.json()["referenceNumber"])


def test_invoice_passes_through_processing_to_ksef_number_and_valid_upo(client, session, upo_schema):
    xml = sample_invoice(number())
    answer = client.send(session, xml)
    assert answer.status_code == 202
    invoice_ref = answer.json()["referenceNumber"]
    assert len(invoice_ref) == 36
    early = client.invoice_status(session, invoice_ref).json()
    assert early["status"]["code"] in (100, 150) and early["ksefNumber"] is None
    final = client.wait_invoice(session, invoice_ref)
    assert final["status"]["code"] == 200, final
    assert is_valid_ksef_number(final["ksefNumber"])
    assert final["ksefNumber"].startswith(SAMPLE_SELLER_NIP + "-" + warsaw_today().strftime("%Y%m%d"))
    assert final["invoiceHash"] == crypto.sha256_b64(xml)
    assert final["invoicingMode"] == "Online"
    assert final["acquisitionDate"] and final["permanentStorageDate"] > final["acquisitionDate"]
    # pre-signed UPO link: no token, hash header matches, XSD-valid, names this invoice
    upo = requests.get(final["upoDownloadUrl"], timeout=10)
    assert upo.status_code == 200
    assert upo.headers["x-ms-meta-hash"] == crypto.sha256_b64(upo.content)
    document = etree.fromstring(upo.content)
    assert upo_schema.validate(document), upo_schema.error_log
    ns = {"u": "http://upo.schematy.mf.gov.pl/KSeF/v4-3"}
    assert document.findtext("u:Dokument/u:NumerKSeFDokumentu", namespaces=ns) == final["ksefNumber"]
    assert document.findtext("u:Dokument/u:SkrotDokumentu", namespaces=ns) == crypto.sha256_b64(xml)
    assert document.findtext("u:Uwierzytelnienie/u:NumerReferencyjnyTokenaKSeF", namespaces=ns)
    # the same UPO through the API, by invoice reference and by KSeF number
    by_ref = client.call("GET", "/v2/sessions/%s/invoices/%s/upo" % (session, invoice_ref))
    by_number = client.call("GET", "/v2/sessions/%s/invoices/ksef/%s/upo" % (session, final["ksefNumber"]))
    assert by_ref.content == by_number.content == upo.content
    # the stored invoice can be downloaded back
    download = client.call("GET", "/v2/invoices/ksef/" + final["ksefNumber"])
    assert download.status_code == 200 and download.content == xml


def test_invoice_dated_yesterday_is_classified_offline_and_declared_offline_stays_offline(client, session):
    yesterday = warsaw_today() - datetime.timedelta(days=1)
    late = send_and_wait(client, session, sample_invoice(number(), issue_date=yesterday))
    declared = send_and_wait(client, session, sample_invoice(number()), offline_mode=True)
    assert (late["status"]["code"], late["invoicingMode"]) == (200, "Offline")
    assert (declared["status"]["code"], declared["invoicingMode"]) == (200, "Offline")


def test_future_issue_date_is_rejected_with_450(client, session):
    tomorrow = warsaw_today() + datetime.timedelta(days=1)
    status = send_and_wait(client, session, sample_invoice(number(), issue_date=tomorrow))
    assert status["status"]["code"] == 450
    assert status["ksefNumber"] is None


def test_xsd_errors_are_reported_as_430_with_details(client, session):
    broken = sample_invoice(number()).replace(b"<P_15>177.00</P_15>", b"<P_15>abc</P_15>")
    status = send_and_wait(client, session, broken)
    assert status["status"]["code"] == 430
    assert any("P_15" in detail for detail in status["status"]["details"])
    not_xml = send_and_wait(client, session, b"<Faktura>")
    assert not_xml["status"]["code"] == 430


def test_duplicate_is_440_with_the_original_ksef_number(client, session):
    invoice_number = number()
    first = send_and_wait(client, session, sample_invoice(invoice_number))
    # same seller + kind + P_2 but a different file (other date) is still a duplicate
    second = send_and_wait(client, session, sample_invoice(invoice_number, warsaw_today() - datetime.timedelta(days=2)))
    assert first["status"]["code"] == 200
    assert second["status"]["code"] == 440
    assert second["status"]["extensions"] == {"originalSessionReferenceNumber": session,
                                              "originalKsefNumber": first["ksefNumber"]}


def test_hash_and_size_mismatches_are_refused_synchronously(client, session):
    xml = sample_invoice(number())
    cases = {
        ("invoiceSize", len(xml) + 1): 21402,
        ("invoiceHash", crypto.sha256_b64(b"other")): 21403,
        ("encryptedInvoiceSize", 1): 21402,
        ("encryptedInvoiceHash", crypto.sha256_b64(b"other")): 21403,
    }
    for (field, value), code in cases.items():
        payload = client.invoice_payload(xml)
        payload[field] = value
        answer = client.call("POST", "/v2/sessions/online/%s/invoices" % session, json=payload)
        assert exception_code(answer) == code, field
    # problem-details form on request
    payload = client.invoice_payload(xml)
    payload["invoiceSize"] = 1
    answer = client.call("POST", "/v2/sessions/online/%s/invoices" % session, json=payload,
                         headers={"X-Error-Format": "problem-details"})
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["errors"][0]["code"] == 21402


def test_technical_correction_of_a_rejected_offline_invoice(client, session):
    invoice_number = number()
    rejected_xml = sample_invoice(invoice_number).replace(b"<P_15>177.00</P_15>", b"<P_15>x</P_15>")
    rejected = send_and_wait(client, session, rejected_xml, offline_mode=True)
    assert rejected["status"]["code"] == 430
    fixed = sample_invoice(invoice_number)
    original_hash = crypto.sha256_b64(rejected_xml)
    # a correction needs offlineMode
    answer = client.send(session, fixed, corrected_hash=original_hash)
    assert exception_code(answer) == 21405
    corrected = send_and_wait(client, session, fixed, offline_mode=True, corrected_hash=original_hash)
    assert corrected["status"]["code"] == 200 and corrected["invoicingMode"] == "Offline"
    # only one accepted correction per original
    again = client.send(session, set_invoice_fields(fixed, P_2=number()), offline_mode=True,
                        corrected_hash=original_hash)
    assert exception_code(again) == 21166
    # an invoice that was processed fine cannot be corrected
    fine = sample_invoice(number())
    assert send_and_wait(client, session, fine)["status"]["code"] == 200
    refused = client.send(session, sample_invoice(number()), offline_mode=True,
                          corrected_hash=crypto.sha256_b64(fine))
    assert exception_code(refused) == 21167


def test_unknown_session_and_session_limit(client, session, base_url):
    answer = client.send("20260101-SO-0000000000-0000000000-00", sample_invoice(number()))
    assert exception_code(answer) == 21173
    client.control("config", {"max_invoices_per_session": 2})
    try:
        assert client.send(session, sample_invoice(number())).status_code == 202
        assert client.send(session, sample_invoice(number())).status_code == 202
        assert exception_code(client.send(session, sample_invoice(number()))) == 21155
    finally:
        client.control("config", {"max_invoices_per_session": 10000})


def test_close_produces_session_upo_and_lists_paginate(client, session, upo_schema):
    numbers = [number() for _ in range(12)]
    refs = [client.send(session, sample_invoice(n)).json()["referenceNumber"] for n in numbers]
    bad = client.send(session, sample_invoice(number(), warsaw_today() + datetime.timedelta(days=3)))
    assert client.call("POST", "/v2/sessions/online/%s/close" % session).status_code == 204
    assert exception_code(client.send(session, sample_invoice(number()))) == 21180
    early = client.session_status(session).json()
    assert early["status"]["code"] in (170, 200)
    status = client.wait_session(session)
    assert status["status"]["code"] == 200, status
    assert (status["invoiceCount"], status["successfulInvoiceCount"], status["failedInvoiceCount"]) == (13, 12, 1)
    [page] = status["upo"]["pages"]
    upo = client.call("GET", "/v2/sessions/%s/upo/%s" % (session, page["referenceNumber"]))
    document = etree.fromstring(upo.content)
    assert upo_schema.validate(document), upo_schema.error_log
    assert len(document.findall("{http://upo.schematy.mf.gov.pl/KSeF/v4-3}Dokument")) == 12
    assert requests.get(page["downloadUrl"], timeout=10).content == upo.content
    # first page of 10 then the rest, via x-continuation-token
    first = client.call("GET", "/v2/sessions/%s/invoices" % session, params={"pageSize": 10}).json()
    assert [i["referenceNumber"] for i in first["invoices"]] == refs[:10]
    rest = client.call("GET", "/v2/sessions/%s/invoices" % session, params={"pageSize": 10},
                       headers={"x-continuation-token": first["continuationToken"]}).json()
    assert [i["referenceNumber"] for i in rest["invoices"]] == refs[10:] + [bad.json()["referenceNumber"]]
    assert rest["continuationToken"] is None
    failed = client.call("GET", "/v2/sessions/%s/invoices/failed" % session).json()["invoices"]
    assert [i["status"]["code"] for i in failed] == [450]
    listed = client.call("GET", "/v2/sessions", params={"sessionType": "Online", "statuses": "Succeeded"}).json()
    assert session in [s["referenceNumber"] for s in listed["sessions"]]


def test_session_without_invoices_is_cancelled(client, session):
    assert client.call("POST", "/v2/sessions/online/%s/close" % session).status_code == 204
    status = client.wait_session(session)
    assert status["status"]["code"] == 440 and status["upo"] is None


def test_invoice_of_another_seller_is_refused(client, session):
    status = send_and_wait(client, session, sample_invoice(number(), seller_nip="3861610227"))
    assert status["status"]["code"] == 410


def test_undecryptable_invoice_gets_status_435(client, session):
    payload = client.invoice_payload(sample_invoice(number()))
    garbage = b"not a whole AES block"  # CBC cannot decrypt a partial block
    payload.update(encryptedInvoiceContent=crypto.b64(garbage), encryptedInvoiceSize=len(garbage),
                   encryptedInvoiceHash=crypto.sha256_b64(garbage))
    answer = client.call("POST", "/v2/sessions/online/%s/invoices" % session, json=payload)
    assert answer.status_code == 202
    assert client.wait_invoice(session, answer.json()["referenceNumber"])["status"]["code"] == 435
