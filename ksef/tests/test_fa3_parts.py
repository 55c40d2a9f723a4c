"""FA(3) advance (ZAL) and settlement (ROZ) invoices, their corrections, Podmiot3, split payment
markers, instalments and payments before issue: built, validated against the official XSD, and
read back for their content."""
import os
from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from lxml import etree

from ksef import fa3, fa3_parts

SHARED = Path(os.environ.get("KSEF_SHARED") or Path(__file__).resolve().parents[2] / ".." / "shared").resolve() / "ksef"
NS = {"f": fa3.NAMESPACE}
KSEF_ADVANCE = "5265877635-20261110-0100001AF629-AF"


@pytest.fixture(scope="module")
def schema():
    return fa3.load_schema(SHARED / "xsd" / "FA3")


def _invoice(**values):
    base = dict(
        seller=fa3.Seller(nip="5265877635", name="Firma Testowa", address=fa3.Address(country="PL", line1="ul. Marszałkowska 1")),
        buyer=fa3.Buyer(name="Hurtownia Łódzka", nip="7251801126"),
        number="FV/2026/11/0001",
        issue_date=date(2026, 11, 30),
        created_at=datetime(2026, 11, 30, 10, 0),
        totals=fa3.Totals(p_15=D("123.00")).add("23", D("100.00"), D("23.00")),
        lines=[fa3.Line(name="Usługa", net_amount=D("100.00"), rate="23", quantity=D(1), unit_price=D(100))],
    )
    base.update(values)
    return fa3.Invoice(**base)


def _valid(invoice, schema):
    xml = fa3.build(invoice)
    assert fa3.validate(xml, schema) == []
    return etree.fromstring(xml)


def _texts(root, path):
    return [node.text for node in root.iterfind(path, NS)]


def test_advance_invoice_with_order(schema):
    # 50 % advance on an order of 2 000.00 net + 460.00 VAT: the totals are the advance's.
    order = fa3_parts.Order(total=D("2460.00"), lines=[
        fa3_parts.OrderLine(name="Regał magazynowy", quantity=D(4), unit="szt.", unit_price=D("500"),
                            net_amount=D("2000.00"), vat_amount=D("460.00"), rate="23", code="REG-1")])
    invoice = _invoice(kind="ZAL", lines=[], order=order,
                       totals=fa3.Totals(p_15=D("1230.00")).add("23", D("1000.00"), D("230.00")))
    root = _valid(invoice, schema)
    assert _texts(root, "f:Fa/f:RodzajFaktury") == ["ZAL"]
    assert _texts(root, "f:Fa/f:Zamowienie/f:WartoscZamowienia") == ["2460.00"]
    assert _texts(root, "f:Fa/f:Zamowienie/f:ZamowienieWiersz/f:P_11NettoZ") == ["2000.00"]
    assert _texts(root, "f:Fa/f:Zamowienie/f:ZamowienieWiersz/f:P_12Z") == ["23"]
    assert _texts(root, "f:Fa/f:P_15") == ["1230.00"]
    assert root.find("f:Fa/f:FaWiersz", NS) is None


def test_settlement_invoice_names_its_advances(schema):
    invoice = _invoice(kind="ROZ", advance_invoices=[
        fa3_parts.AdvanceInvoice(ksef_number=KSEF_ADVANCE),
        fa3_parts.AdvanceInvoice(number="FV/2026/10/0007"),  # issued outside KSeF
    ])
    root = _valid(invoice, schema)
    refs = root.findall("f:Fa/f:FakturaZaliczkowa", NS)
    assert [etree.QName(child).localname for ref in refs for child in ref] == [
        "NrKSeFFaZaliczkowej", "NrKSeFZN", "NrFaZaliczkowej"]
    assert refs[0][0].text == KSEF_ADVANCE and refs[1][1].text == "FV/2026/10/0007"


def test_settlement_invoice_without_advances_is_refused():
    with pytest.raises(fa3.Fa3Error, match="advance invoices it settles"):
        fa3.build(_invoice(kind="ROZ"))


def test_advances_and_order_only_on_their_kinds():
    with pytest.raises(fa3.Fa3Error, match="advance_invoices are only"):
        fa3.build(_invoice(advance_invoices=[fa3_parts.AdvanceInvoice(ksef_number=KSEF_ADVANCE)]))
    order = fa3_parts.Order(total=D(1), lines=[fa3_parts.OrderLine(name="x", net_amount=D(1), rate="23")])
    with pytest.raises(fa3.Fa3Error, match="only for advance invoices"):
        fa3.build(_invoice(kind="ROZ", order=order, advance_invoices=[fa3_parts.AdvanceInvoice(number="Z/1")]))


@pytest.mark.parametrize("kind", ["KOR_ZAL", "KOR_ROZ"])
def test_corrections_of_advance_and_settlement(schema, kind):
    correction = fa3.Correction(corrected=[fa3.CorrectedInvoice(issue_date=date(2026, 11, 2), number="FZ/1", ksef_number=KSEF_ADVANCE)],
                                reason="Zmiana zamówienia", correction_type=2)
    extra = {"advance_invoices": [fa3_parts.AdvanceInvoice(ksef_number=KSEF_ADVANCE)]} if kind == "KOR_ROZ" else {}
    invoice = _invoice(kind=kind, correction=correction, totals=fa3.Totals(p_15=D("-123.00")).add("23", D("-100.00"), D("-23.00")),
                       lines=[fa3.Line(name="Usługa", net_amount=D("-100.00"), rate="23", quantity=D(-1), unit_price=D(100))], **extra)
    root = _valid(invoice, schema)
    assert _texts(root, "f:Fa/f:RodzajFaktury") == [kind]
    assert _texts(root, "f:Fa/f:TypKorekty") == ["2"]
    assert _texts(root, "f:Fa/f:DaneFaKorygowanej/f:NrKSeFFaKorygowanej") == [KSEF_ADVANCE]


def test_correction_data_needs_a_correction_kind():
    correction = fa3.Correction(corrected=[fa3.CorrectedInvoice(issue_date=date(2026, 11, 2), number="FZ/1", ksef_number=KSEF_ADVANCE)])
    with pytest.raises(fa3.Fa3Error, match="only allowed on a KOR invoice"):
        fa3.build(_invoice(kind="ZAL", correction=correction))


def test_third_parties_with_roles(schema):
    parties = [
        fa3_parts.ThirdParty(name="Oddział Kraków", nip="6762451246", role=fa3_parts.ROLE_RECIPIENT,
                             address=fa3.Address(country="PL", line1="ul. Floriańska 3", line2="31-019 Kraków")),
        fa3_parts.ThirdParty(name="Płatnik Sp. z o.o.", nip="5213017228", role=fa3_parts.ROLE_PAYER),
        fa3_parts.ThirdParty(name="Magazyn Berlin", eu_country="DE", eu_vat_number="811907980", other_role="Odbiorca towaru"),
    ]
    root = _valid(_invoice(third_parties=parties), schema)
    podmioty = root.findall("f:Podmiot3", NS)
    assert [p.findtext("f:Rola", namespaces=NS) for p in podmioty] == ["2", "6", None]
    assert podmioty[2].findtext("f:OpisRoli", namespaces=NS) == "Odbiorca towaru"
    # Podmiot3 comes between Podmiot2 and Fa
    assert [etree.QName(child).localname for child in root][:6] == ["Naglowek", "Podmiot1", "Podmiot2", "Podmiot3", "Podmiot3", "Podmiot3"]


def test_third_party_needs_one_role():
    with pytest.raises(fa3.Fa3Error, match="exactly one of role"):
        fa3.build(_invoice(third_parties=[fa3_parts.ThirdParty(name="X")]))
    with pytest.raises(fa3.Fa3Error, match="TRolaPodmiotu3"):
        fa3.build(_invoice(third_parties=[fa3_parts.ThirdParty(name="X", role=12)]))


def test_annex15_marker_and_split_payment(schema):
    line = fa3.Line(name="Pręty stalowe", net_amount=D("20000.00"), rate="23", annex15=True, gtu="GTU_08")
    invoice = _invoice(lines=[line], totals=fa3.Totals(p_15=D("24600.00")).add("23", D("20000.00"), D("4600.00")),
                       annotations=fa3.Annotations(split_payment=True))
    root = _valid(invoice, schema)
    assert _texts(root, "f:Fa/f:FaWiersz/f:P_12_Zal_15") == ["1"]
    assert _texts(root, "f:Fa/f:FaWiersz/f:GTU") == ["GTU_08"]
    assert _texts(root, "f:Fa/f:Adnotacje/f:P_18A") == ["1"]


def test_installments_and_partial_payments(schema):
    payment = fa3.Payment(due_dates=[date(2026, 12, 30), date(2027, 1, 29), date(2027, 2, 28)],
                          partial_payments=[(D("41.00"), date(2026, 11, 30))], method=6)
    root = _valid(_invoice(payment=payment), schema)
    assert _texts(root, "f:Fa/f:Platnosc/f:TerminPlatnosci/f:Termin") == ["2026-12-30", "2027-01-29", "2027-02-28"]
    assert _texts(root, "f:Fa/f:Platnosc/f:ZnacznikZaplatyCzesciowej") == ["1"]
    assert _texts(root, "f:Fa/f:Platnosc/f:ZaplataCzesciowa/f:KwotaZaplatyCzesciowej") == ["41.00"]


def test_paid_in_full_and_in_part_exclude_each_other():
    payment = fa3.Payment(paid_date=date(2026, 11, 30), partial_payments=[(D(1), date(2026, 11, 30))])
    with pytest.raises(fa3.Fa3Error, match="not both"):
        fa3.build(_invoice(payment=payment))


def test_more_than_100_due_dates_is_refused():
    with pytest.raises(fa3.Fa3Error, match="at most 100 due dates"):
        fa3.build(_invoice(payment=fa3.Payment(due_dates=[date(2027, 1, 1)] * 101)))


def test_line_name_over_512_characters_is_refused_before_the_schema():
    with pytest.raises(fa3.Fa3Error, match=r"lines\[0\].name has 513 characters; KSeF accepts at most 512"):
        fa3.build(_invoice(lines=[fa3.Line(name="x" * 513, net_amount=D("100.00"), rate="23")]))
    fa3.build(_invoice(lines=[fa3.Line(name="x" * 512, net_amount=D("100.00"), rate="23")]))
