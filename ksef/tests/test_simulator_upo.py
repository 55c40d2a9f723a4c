"""ksef.upo: the UPO v4-3 builder used by the simulator (and the parser the add-on can use)."""
import datetime

import pytest
from lxml import etree

from ksef.simulator.invoices import default_shared_dir
from ksef.upo import RECEIVING_ENTITY, UpoDocument, build_upo, page_ranges, parse_upo

UPO_DIR = default_shared_dir() / "ksef" / "upo"
SCHEMA = etree.XMLSchema(etree.parse(str(UPO_DIR / "upo-v4-3.xsd")))
WHEN = datetime.datetime(2026, 2, 2, 10, 0, 0, 123000, tzinfo=datetime.timezone.utc)


def document(ksef_number="5265877635-20250916-0200A0D6723E-C2", mode="Offline"):
    return UpoDocument("5265877635", ksef_number, "FV/1", datetime.date(2026, 2, 1), WHEN, WHEN,
                       "GZMGNVzs3krF6URKgvaw77OOeG3nJ+WGziT5xguliQ8=", mode)


@pytest.mark.parametrize("context", [("Nip", "5265877635"), ("InternalId", "5265877635-12345")])
def test_invoice_and_session_upo_validate_and_parse_back(context):
    single = build_upo("20260202-SO-2EBD6FA000-242EB9B66D-43", *context, [document()],
                       auth_document_hash="kyqH+QUgP8ATWd/95IY632mP4uqibwG66Oqclq9+qno=")
    assert SCHEMA.validate(etree.fromstring(single)), SCHEMA.error_log
    docs = [document(), document("5265877635-20250916-010040741B3E-46", "Online")]
    session = build_upo("20260202-SB-2EBD6FA000-242EB9B66D-43", *context, docs,
                        auth_token_reference="20250819-EC-1ECDD12000-5EE71AE5E3-B7", page=page_ranges(2)[0])
    assert SCHEMA.validate(etree.fromstring(session)), SCHEMA.error_log
    parsed = parse_upo(session)
    assert parsed["receiving_entity"] == RECEIVING_ENTITY
    assert parsed["page"] == (1, 1, 1, 2, 2)
    assert [d.ksef_number for d in parsed["documents"]] == [d.ksef_number for d in docs]
    assert parsed["documents"][0].sent_at == "2026-02-02T10:00:00.123+00:00"


def test_official_examples_parse():
    parsed = parse_upo((UPO_DIR / "examples" / "upo-sesja-kontekst-id-nip.xml").read_bytes())
    assert parsed["page"].total_documents == 2 and len(parsed["documents"]) == 2
    assert parsed["documents"][1].mode == "Online"


def test_pages_hold_at_most_10000_documents():
    assert page_ranges(0) == []
    pages = page_ranges(20001)
    assert [(p.page, p.range_from, p.range_to) for p in pages] == [(1, 1, 10000), (2, 10001, 20000),
                                                                   (3, 20001, 20001)]
    assert {p.page_count for p in pages} == {3}
    with pytest.raises(ValueError):
        build_upo("20260202-SB-2EBD6FA000-242EB9B66D-43", "Nip", "5265877635", [document()] * 10001,
                  auth_token_reference="20250819-EC-1ECDD12000-5EE71AE5E3-B7")
    with pytest.raises(ValueError):
        build_upo("20260202-SB-2EBD6FA000-242EB9B66D-43", "Nip", "5265877635", [document()])
