"""Collective identifiers (IZ, API 2.7) and KSeF numbers in payments: the core over real HTTP
against the simulator, checked against open-api-2.7-snapshot.json."""
import datetime
import json
import uuid

import pytest
import requests

from ksef import errors, payments
from ksef.client import KsefClient
from ksef.ksef_number import make_ksef_number
from ksef.simulator import Simulator
from ksef.simulator.invoices import default_shared_dir
from ksef.simulator.testing import SAMPLE_SELLER_NIP, SimClient, sample_invoice

SELLER = SAMPLE_SELLER_NIP        # Podmiot1 of the sample invoice
BUYER = "3861610227"              # Podmiot2 of the sample invoice
STRANGER = "7251801126"
TOKENS = {nip: "iz-test-%s-%s" % (nip, uuid.uuid4().hex) for nip in (SELLER, BUYER, STRANGER)}


def spec():
    return json.loads((default_shared_dir() / "ksef" / "openapi" / "open-api-2.7-snapshot.json").read_text())


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    sim = Simulator(tmp_path_factory.mktemp("ksef-sim") / "state.db",
                    tokens=["%s:%s" % item for item in TOKENS.items()], rate_limits="off", processing_delay=0.05)
    sim.start()
    yield sim
    sim.stop()


def client_of(simulator, nip):
    client = KsefClient(base_url=simulator.base_url + "/v2", timeout=5, poll_interval=0.05)
    client.authenticate_with_token("Nip", nip, TOKENS[nip])
    return client


@pytest.fixture(scope="module")
def bills(simulator):
    """Three invoices of SELLER to BUYER, accepted by KSeF: their KSeF numbers."""
    seller = SimClient(simulator.base_url)
    seller.login(SELLER, TOKENS[SELLER])
    session = seller.open_online().json()["referenceNumber"]
    numbers = []
    for index in range(3):
        sent = seller.send(session, sample_invoice("FV/IZ/%s/%s" % (index, uuid.uuid4().hex[:6]))).json()
        status = seller.wait_invoice(session, sent["referenceNumber"])
        assert status["status"]["code"] == 200, status
        numbers.append(status["ksefNumber"])
    return numbers


def test_collective_identifier_format_and_crc():
    assert payments.is_valid_collective_identifier("1111111111-IZ202607-65ED02180000-E7")   # the spec's example
    assert not payments.is_valid_collective_identifier("1111111111-IZ202607-65ED02180000-E8")
    assert not payments.is_valid_collective_identifier("1111111111-IZ202613-65ED02180000-E7")
    made = payments.make_collective_identifier(SELLER, datetime.date(2026, 11, 30))
    assert payments.is_valid_collective_identifier(made) and made.startswith(SELLER + "-IZ202611-")
    assert payments.find_collective_identifiers("Zapłata za IZ %s dzięki" % made.lower()) == [made]


def test_ksef_numbers_are_found_in_bank_statement_text():
    number = make_ksef_number(SELLER, datetime.date(2026, 11, 2))
    wrong_crc = number[:-2] + ("00" if number[-2:] != "00" else "01")
    text = "PRZELEW /NRKSEF/%s/ FV 1/11/2026 %s %s" % (number.lower(), wrong_crc, number)
    assert payments.find_ksef_numbers(text) == [number]
    assert payments.find_ksef_numbers(None) == []


def test_buyer_groups_three_bills_into_one_identifier(simulator, bills):
    buyer = client_of(simulator, BUYER)
    invoices = [payments.CollectiveInvoice(number, amount=123.0, currency="PLN", description="Opłata")
                for number in bills]
    number = payments.create_collective_identifier(buyer, invoices)
    assert payments.is_valid_collective_identifier(number) and number.startswith(SELLER + "-IZ")
    listed = payments.collective_identifier_invoices(buyer, number, page_size=10)
    assert sorted(item["ksefNumber"] for item in listed) == sorted(bills)
    assert all(item["payment"] == {"amount": 123.0, "currency": "PLN"} and not item["detailsHidden"] for item in listed)
    of_invoice = payments.collective_identifiers_of_invoice(buyer, bills[0])
    assert [(i["collectiveIdentifierNumber"], i["createdInCurrentContext"]) for i in of_invoice] == [(number, True)]
    # The seller sees it too, not as its own.
    seller = client_of(simulator, SELLER)
    assert payments.collective_identifiers_of_invoice(seller, bills[0])[0]["createdInCurrentContext"] is False
    # Query by creation date (at most 100 days).
    now = datetime.datetime.now(datetime.timezone.utc)
    body = {"dateCreatedFrom": (now - datetime.timedelta(days=1)).isoformat(), "dateCreatedTo": (now + datetime.timedelta(hours=1)).isoformat()}
    found = buyer._request("POST", "/collective-identifiers/query", json=body).json()["collectiveIdentifiers"]
    assert [(i["collectiveIdentifierNumber"], i["invoiceCount"]) for i in found] == [(number, 3)]
    body["dateCreatedFrom"] = (now - datetime.timedelta(days=101)).isoformat()
    with pytest.raises(errors.KsefError):
        buyer._request("POST", "/collective-identifiers/query", json=body)


def test_answers_carry_the_fields_the_2_7_spec_requires(simulator, bills):
    schemas = spec()["components"]["schemas"]
    buyer = client_of(simulator, BUYER)
    created = buyer._request("POST", "/collective-identifiers", json={"invoices": [{"ksefNumber": bills[1]}]},
                             expect=(201,)).json()
    assert set(schemas["GenerateCollectiveIdentifierResponse"]["required"]) <= set(created)
    assert len(created["collectiveIdentifierNumber"]) == 35
    listed = buyer._request("GET", "/collective-identifiers/%s/invoices" % created["collectiveIdentifierNumber"]).json()
    assert set(schemas["CollectiveIdentifierInvoicesQueryResponse"]["required"]) <= set(listed)
    for item in listed["invoices"]:
        assert set(schemas["CollectiveIdentifierInvoicesQueryResponseItem"]["required"]) <= set(item)
    by_ksef = buyer._request("GET", "/collective-identifiers/ksef/%s" % bills[1]).json()
    for item in by_ksef["collectiveIdentifiers"]:
        assert set(schemas["CollectiveIdentifiersByKsefNumberQueryResponseItem"]["required"]) <= set(item)
    with pytest.raises(errors.KsefError):   # pageSize outside 10..200
        buyer._request("GET", "/collective-identifiers/ksef/%s" % bills[1], params={"pageSize": 5})


def test_refusals(simulator, bills):
    stranger = client_of(simulator, STRANGER)
    with pytest.raises(errors.KsefError) as refused:
        payments.create_collective_identifier(stranger, [payments.CollectiveInvoice(bills[0])])
    assert "71001" in str(refused.value) or getattr(refused.value, "code", None) == 71001
    # The core refuses before asking KSeF ...
    too_many = [payments.CollectiveInvoice(make_ksef_number(SELLER, datetime.date(2026, 11, 2))) for _ in range(501)]
    with pytest.raises(payments.CollectiveIdentifierError) as error:
        payments.create_collective_identifier(stranger, too_many)
    assert error.value.code == "too_many"
    for bad, code in ([], "empty"), ([payments.CollectiveInvoice("FV/1")], "invalid_number"), \
            ([payments.CollectiveInvoice(bills[0])] * 2, "duplicate"), \
            ([payments.CollectiveInvoice(bills[0]),
              payments.CollectiveInvoice(make_ksef_number(STRANGER, datetime.date(2026, 11, 2)))], "several_sellers"):
        with pytest.raises(payments.CollectiveIdentifierError) as error:
            payments.check_collective_request(bad)
        assert error.value.code == code
    # ... and so does KSeF when asked anyway.
    buyer = client_of(simulator, BUYER)
    body = {"invoices": [{"ksefNumber": number} for number in [bills[0]] * 501]}
    answer = requests.post(simulator.base_url + "/v2/collective-identifiers", json=body, timeout=5,
                           headers={"Authorization": "Bearer " + buyer.access_token.token})
    assert answer.status_code == 400
    assert answer.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 21405


def test_creation_rate_limit_of_the_spec(simulator, bills):
    operation = spec()["paths"]["/collective-identifiers"]["post"]
    assert operation["x-rate-limits"] == {"perSecond": 10, "perMinute": 60, "perHour": 120}
    from ksef.simulator.ratelimit import group_of
    assert group_of("POST", "/collective-identifiers") == ("collectiveIdentifier", (10, 60, 120))
    buyer = client_of(simulator, BUYER)
    requests.post(simulator.base_url + "/_control/rate-limits", json={"enabled": True, "scale": 0.1, "reset": True},
                  timeout=5).raise_for_status()
    try:
        statuses = [requests.post(simulator.base_url + "/v2/collective-identifiers", timeout=5,
                                  json={"invoices": [{"ksefNumber": bills[2]}]},
                                  headers={"Authorization": "Bearer " + buyer.access_token.token}) for _ in range(2)]
        assert [s.status_code for s in statuses] == [201, 429]
        assert statuses[1].headers.get("Retry-After")
    finally:
        requests.post(simulator.base_url + "/_control/rate-limits", json={"enabled": False, "reset": True}, timeout=5)
