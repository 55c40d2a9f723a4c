"""The one table of KSeF status codes (``ksef/codes.py``) against the official OpenAPI files."""
import json
import re

import pytest

from ksef import codes, errors
from ksef.simulator.invoices import default_shared_dir

SPECS = ("open-api.json", "open-api-2.7-snapshot.json")
ROW = re.compile(r"^\|\s*(\d{3})\s*\|\s*([^|]*?)\s*\|")


def _spec(name):
    path = default_shared_dir() / "ksef" / "openapi" / name
    if not path.exists():
        pytest.fail("OpenAPI file not found at %s (set KSEF_SHARED)" % path)
    return json.loads(path.read_text(encoding="utf-8"))


def _tables(spec, schema):
    """{section title: {code: description}} of the status tables of ``schema``'s ``status``."""
    text = spec["components"]["schemas"][schema]["properties"]["status"]["description"]
    tables, title = {}, ""
    for line in text.splitlines():
        line = line.strip()
        if line.endswith(":") and not line.startswith("|"):
            title = line[:-1]
        found = ROW.match(line)
        if found:
            code, text_ = int(found.group(1)), " ".join(found.group(2).split())
            tables.setdefault(title, {}).setdefault(code, text_)
    return tables


# The meaning of a description, read from the spec's own words: a code whose description
# changes meaning (or a new code) fails here until the table says what it means.
def _meaning(text):
    lowered = text.lower()
    if any(w in lowered for w in ("w toku", "trwa przetwarzanie", "rozpoczęta", "otwarta", "zamknięta",
                                  "przyjęta do dalszego")):
        return codes.PENDING
    if "sukces" in lowered or "pomyślnie" in lowered:
        return codes.SUCCESS
    if "duplikat" in lowered:
        return codes.DUPLICATE
    if "nieznany błąd" in lowered or "anulowana przez system" in lowered or "z powodu błędu sesji" in lowered:
        return codes.TECHNICAL
    if "uprawnień" in lowered or "z załącznikiem" in lowered:
        return codes.PERMISSION
    if "sesja anulowana" in lowered:
        return codes.CANCELLED
    return codes.REJECTED


def _same_table(spec_name, schema, ours, title=""):
    """The spec's table ``title`` of ``schema`` has exactly our codes, with our descriptions."""
    documented = _tables(_spec(spec_name), schema)[title]
    assert set(documented) == set(ours), (spec_name, schema, title)
    assert {code: ours[code] for code in documented} == documented, (spec_name, schema, title)
    return documented


@pytest.mark.parametrize("spec_name", SPECS)
def test_invoice_codes_match_the_spec(spec_name):
    documented = _same_table(spec_name, "SessionInvoiceStatusResponse", codes.INVOICE)
    for code, text in documented.items():
        assert codes.invoice_group(code) == _meaning(text), (code, text)


@pytest.mark.parametrize("spec_name", SPECS)
def test_session_codes_match_the_spec(spec_name):
    for title, ours in (("Sesja wsadowa", codes.BATCH_SESSION), ("Sesja interaktywna", codes.ONLINE_SESSION)):
        documented = _same_table(spec_name, "SessionStatusResponse", ours, title)
        for code, text in documented.items():
            meaning = _meaning(text)
            group = codes.session_group(code)
            if meaning == codes.PENDING:
                assert group == codes.PENDING and not codes.is_final_session(code), (title, code)
            elif meaning == codes.SUCCESS:
                assert group == codes.SUCCESS and codes.is_final_session(code), (title, code)
            elif meaning == codes.CANCELLED:
                assert group == codes.CANCELLED and codes.is_final_session(code), (title, code)
            else:   # every failure ends the session, KSeF's trouble (500) included
                assert group == codes.FAILED and codes.is_final_session(code), (title, code)


@pytest.mark.parametrize("spec_name", SPECS)
def test_auth_codes_match_the_spec(spec_name):
    _same_table(spec_name, "AuthenticationOperationStatusResponse", codes.AUTH)
    assert codes.auth_group(100) == codes.PENDING and codes.auth_group(200) == codes.SUCCESS
    assert codes.auth_group(415) == codes.PERMISSION   # "Brak przypisanych uprawnień"
    assert codes.auth_group(550) == codes.TECHNICAL


@pytest.mark.parametrize("spec_name", SPECS)
def test_enrollment_codes_match_the_spec(spec_name):
    _same_table(spec_name, "CertificateEnrollmentStatusResponse", codes.ENROLLMENT)
    assert codes.ENROLLMENT_PENDING == (100,) and codes.ENROLLMENT_ISSUED == 200


def test_groups_do_not_overlap_and_cover_the_tables():
    invoice_groups = (codes.INVOICE_PENDING, (codes.INVOICE_SUCCESS,), (codes.INVOICE_DUPLICATE,),
                      codes.INVOICE_TECHNICAL, codes.INVOICE_PERMISSION, codes.INVOICE_REJECTED)
    listed = [code for group in invoice_groups for code in group]
    assert sorted(listed) == sorted(codes.INVOICE)
    sessions = set(codes.BATCH_SESSION) | set(codes.ONLINE_SESSION)
    assert set(codes.SESSION_PENDING).isdisjoint(codes.FINAL_SESSION_CODES)
    assert set(codes.SESSION_PENDING) | set(codes.FINAL_SESSION_CODES) == sessions


def test_405_is_a_final_session_failure_but_a_retryable_invoice_status():
    assert codes.is_final_session(405) and codes.session_group(405) == codes.FAILED
    assert codes.invoice_group(405) == codes.TECHNICAL
    # the typed error agrees: KSeF's trouble, not a verdict on the document
    for code in codes.INVOICE_TECHNICAL:
        assert isinstance(errors.error_from_invoice_status({"code": code}), errors.KsefUnavailable), code
    for code in codes.INVOICE_PERMISSION + codes.INVOICE_REJECTED:
        error = errors.error_from_invoice_status({"code": code})
        assert isinstance(error, errors.Rejected) and not isinstance(error, errors.Duplicate), code
    assert isinstance(errors.error_from_invoice_status({"code": 440}), errors.Duplicate)
    for code in codes.INVOICE_PENDING + (codes.INVOICE_SUCCESS,):
        assert errors.error_from_invoice_status({"code": code}) is None
