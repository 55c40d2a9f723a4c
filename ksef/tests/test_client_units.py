"""Client pieces that need no server: error parsing, request documents, session records."""
import datetime
import json
import os
from pathlib import Path

import pytest
import requests
from lxml import etree

from ksef import client as ksef_client
from ksef import crypto, devcerts, errors, xades

SHARED = Path(os.environ.get("KSEF_SHARED") or Path(__file__).resolve().parents[2] / ".." / "shared")
AUTH_XSD = SHARED / "ksef" / "xsd" / "auth" / "schemat_auth_v2-1.xsd"
CHALLENGE = "20250625-CR-20F5EE4000-DA48AE4124-46"


def _response(status, body=None, headers=None, content_type="application/json"):
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    if body is not None:
        response._content = json.dumps(body).encode()
        response.headers.setdefault("Content-Type", content_type)
    else:
        response._content = b""
    return response


EXCEPTION_BODY = {"exception": {
    "exceptionDetailList": [{"exceptionCode": 21405, "exceptionDescription": "Błąd walidacji danych wejściowych.",
                             "details": ["Wskazany kod formularza nie jest wspierany."]}],
    "referenceNumber": "20250625-EE-319D7EE000-B67F415CDC-2C", "serviceCode": "00-abc", "timestamp": "x"}}
PROBLEM_BODY = {"title": "Bad Request", "status": 400, "instance": "/sessions/online", "detail": "Żądanie jest nieprawidłowe.",
                "errors": [{"code": 21470, "description": "Przesłany identyfikator klucza jest nieznany.",
                            "details": ["Klucz o identyfikatorze X nie jest wspierany."]}],
                "timestamp": "2025-07-11T12:23:56Z", "traceId": "673843e0"}


def test_exception_list_format_is_parsed():
    error = errors.error_from_response(_response(400, EXCEPTION_BODY))
    assert type(error) is errors.Rejected
    assert (error.code, error.http_status) == (21405, 400)
    assert error.details == ["Wskazany kod formularza nie jest wspierany."]
    assert error.reference_number == "20250625-EE-319D7EE000-B67F415CDC-2C"
    assert "21405" in str(error) and "kod formularza" in str(error)


def test_problem_details_format_is_parsed_and_21470_is_typed():
    error = errors.error_from_response(_response(400, PROBLEM_BODY, content_type="application/problem+json"))
    assert isinstance(error, errors.PublicKeyUnknown) and isinstance(error, errors.Rejected)
    assert error.code == 21470
    assert error.errors == [errors.ApiError(21470, "Przesłany identyfikator klucza jest nieznany.",
                                            ("Klucz o identyfikatorze X nie jest wspierany.",))]
    assert "Żądanie jest nieprawidłowe." in error.description


@pytest.mark.parametrize("status, body, expected", [
    (401, {"title": "Unauthorized", "status": 401, "detail": "Wymagane jest uwierzytelnienie."}, errors.Unauthorized),
    (403, {"title": "Forbidden", "status": 403, "detail": "Brak uprawnień.", "reasonCode": "missing-permissions"},
     errors.Forbidden),
    (410, {"title": "Gone", "status": 410, "detail": "Operacja wygasła."}, errors.Gone),
    (502, None, errors.KsefUnavailable),
    (400, {"exception": {"exceptionDetailList": [{"exceptionCode": 21173, "exceptionDescription": "Brak sesji"}]}},
     errors.SessionNotFound),
    (400, {"exception": {"exceptionDetailList": [{"exceptionCode": 21180, "exceptionDescription": "Status sesji"}]}},
     errors.SessionClosed),
    (400, {"exception": {"exceptionDetailList": [{"exceptionCode": 21301, "exceptionDescription": "Brak autoryzacji."}]}},
     errors.Unauthorized),
])
def test_http_statuses_map_to_types(status, body, expected):
    error = errors.error_from_response(_response(status, body))
    assert type(error) is expected and error.http_status == status
    if expected is errors.Forbidden:
        assert error.reason_code == "missing-permissions"


def test_rate_limit_in_both_formats_and_both_retry_after_forms():
    legacy = {"status": {"code": 429, "description": "Too Many Requests",
                         "details": ["Przekroczono limit 20 żądań na minutę."]}}
    error = errors.error_from_response(_response(429, legacy, {"Retry-After": "30"}))
    assert isinstance(error, errors.RateLimited) and error.retry_after == 30
    assert error.details == ["Przekroczono limit 20 żądań na minutę."]
    now = datetime.datetime(2026, 1, 5, 10, 0, 0, tzinfo=datetime.timezone.utc)
    problem = {"title": "Too Many Requests", "status": 429, "detail": "Spróbuj ponownie po 45 sekundach."}
    error = errors.error_from_response(_response(429, problem, {"Retry-After": "Mon, 05 Jan 2026 10:00:45 GMT"}), now=now)
    assert error.retry_after == 45 and "45" in str(error)
    assert errors.parse_retry_after("Mon, 05 Jan 2026 09:00:00 GMT", now=now) == 0
    assert errors.parse_retry_after("soon") is None and errors.parse_retry_after(None) is None


def test_invoice_status_errors():
    duplicate = errors.error_from_invoice_status({
        "code": 440, "description": "Duplikat faktury", "details": ["Duplikat faktury."],
        "extensions": {"originalSessionReferenceNumber": "20250626-SO-2F14610000-242991F8C9-B4",
                       "originalKsefNumber": "5265877635-20250626-010080DD2B5E-26"}})
    assert isinstance(duplicate, errors.Duplicate) and isinstance(duplicate, errors.Rejected)
    assert duplicate.original_ksef_number == "5265877635-20250626-010080DD2B5E-26"
    assert duplicate.original_session_reference_number == "20250626-SO-2F14610000-242991F8C9-B4"
    rejected = errors.error_from_invoice_status({"code": 450, "description": "Błąd weryfikacji semantyki"})
    assert type(rejected) is errors.Rejected and rejected.code == 450
    assert isinstance(errors.error_from_invoice_status({"code": 550, "description": "x"}), errors.KsefUnavailable)
    for code in (100, 150, 200):
        assert errors.error_from_invoice_status({"code": code, "description": "x"}) is None


def test_timeout_is_an_unavailability():
    assert issubclass(errors.KsefTimeout, errors.KsefUnavailable)


def _validate_against_auth_xsd(document):
    schema = etree.XMLSchema(etree.parse(str(AUTH_XSD)))
    schema.assertValid(etree.fromstring(document))


@pytest.mark.parametrize("context_type, value", [("Nip", "5265877635"), ("InternalId", "5265877635-12345")])
def test_auth_token_request_follows_the_v2_1_schema(context_type, value):
    document = ksef_client.KsefClient.auth_token_request_xml(CHALLENGE, context_type, value)
    _validate_against_auth_xsd(document)
    # the signed form is the same document plus ds:Signature; without it, it still validates
    certificate, key = devcerts.make_certificate(devcerts.AUTHENTICATION, "5265877635")
    signed = etree.fromstring(xades.sign_auth_token_request(document, certificate, key))
    signed.remove(signed.find("{%s}Signature" % xades.DS_NS))
    _validate_against_auth_xsd(etree.tostring(signed))


def test_auth_token_request_is_refused_by_the_schema_when_wrong():
    document = ksef_client.KsefClient.auth_token_request_xml("not-a-challenge", "Nip", "5265877635")
    with pytest.raises(etree.DocumentInvalid):
        _validate_against_auth_xsd(document)


def test_invoice_payload_hashes_and_sizes():
    key, iv = crypto.new_symmetric_key()
    session = ksef_client.OnlineSession("20250625-SO-0000000000-0000000000-00", key, iv)
    xml = b"<Faktura>" + b"a" * 6461 + b"</Faktura>"  # a multiple of 16 gains a full padding block
    assert len(xml) % 16 == 0
    body = ksef_client.KsefClient.invoice_payload(session, xml, offline_mode=True,
                                                  hash_of_corrected_invoice="A" * 43 + "=")
    encrypted = crypto.b64decode(body["encryptedInvoiceContent"])
    assert body["invoiceHash"] == crypto.sha256_b64(xml) and body["invoiceSize"] == len(xml)
    assert body["encryptedInvoiceSize"] == len(xml) + 16 == len(encrypted)
    assert body["encryptedInvoiceHash"] == crypto.sha256_b64(encrypted)
    assert crypto.aes_decrypt(encrypted, key, iv) == xml
    assert body["offlineMode"] is True and body["hashOfCorrectedInvoice"] == "A" * 43 + "="
    plain = ksef_client.KsefClient.invoice_payload(session, xml)
    assert plain["offlineMode"] is False and "hashOfCorrectedInvoice" not in plain


def test_online_session_round_trips_and_hides_its_key():
    key, iv = crypto.new_symmetric_key()
    until = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)
    session = ksef_client.OnlineSession("20250625-SO-0000000000-0000000000-00", key, iv, until,
                                        ksef_client.FORM_CODES["FA (3)"], "K" * 44)
    stored = json.loads(json.dumps(session.to_dict()))
    assert ksef_client.OnlineSession.from_dict(stored) == session
    assert crypto.b64(key) not in repr(session) and "symmetric_key" not in repr(session)
    token = ksef_client.TokenInfo("secret-token-value", until)
    assert "secret-token-value" not in repr(token)
    assert "secret-token-value" not in repr(ksef_client.AuthTokens(token, token))


def test_dates_with_seven_fraction_digits_parse():
    parsed = ksef_client.parse_datetime("2025-07-11T12:23:56.0154302+00:00")
    assert parsed == datetime.datetime(2025, 7, 11, 12, 23, 56, 15430, tzinfo=datetime.timezone.utc)
    assert ksef_client.parse_datetime("2025-07-11T12:23:56Z").tzinfo is not None
    assert ksef_client.parse_datetime(None) is None


def test_environments_and_bad_arguments():
    assert ksef_client.KsefClient("production").base_url == "https://api.ksef.mf.gov.pl/v2"
    assert ksef_client.KsefClient("test").base_url == "https://api-test.ksef.mf.gov.pl/v2"
    assert ksef_client.KsefClient("demo").base_url == "https://api-demo.ksef.mf.gov.pl/v2"
    with pytest.raises(ValueError):
        ksef_client.KsefClient("staging")
    with pytest.raises(ValueError):
        ksef_client.KsefClient.auth_token_request_xml(CHALLENGE, "Pesel", "1")
    with pytest.raises(errors.Unauthorized, match="not authenticated"):
        ksef_client.KsefClient(base_url="http://127.0.0.1:9").session_status("x")
