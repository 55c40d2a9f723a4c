"""Podmiot2 (``fa3.Buyer``) and Podmiot3 (``fa3_parts.ThirdParty``) share one ``Party`` base and
one identification builder: their FA(3) bytes, element order included, stay exactly what they
were before the two were merged.  The XSD checks order only where it has a sequence; these tests
check the bytes themselves (the digest was taken from the builder before the merge)."""
import hashlib
from datetime import date, datetime
from decimal import Decimal as D

import pytest
from lxml import etree

from ksef import fa3, fa3_parts

NS = {"f": fa3.NAMESPACE}
ADDRESS_DE = fa3.Address(country="DE", line1="Hauptstraße 1", line2="10115 Berlin")
BUYERS = [
    fa3.Buyer(name="Hurtownia Łódzka", nip="7251801126", address=fa3.Address(country="PL", line1="ul. Piotrkowska 1"),
              email="faktury@hurtownia.pl", phone="+48 42 000 00 00", customer_number="K-17", jst=1, gv=1),
    fa3.Buyer(name="Kunde GmbH", eu_country="DE", eu_vat_number="123456789", address=ADDRESS_DE),
    fa3.Buyer(name="Buyer Inc.", tax_id="12-3456789", tax_id_country="US",
              address=fa3.Address(country="US", line1="1 Main St, Springfield")),
    fa3.Buyer(name="Jan Kowalski"),
]
THIRD_PARTIES = [
    fa3_parts.ThirdParty(name="Faktor S.A.", nip="5260250274", role=fa3_parts.ROLE_FACTOR,
                         address=fa3.Address(country="PL", line1="ul. Prosta 2"), email="f@faktor.pl",
                         phone="+48 22 111 11 11", customer_number="F-1"),
    fa3_parts.ThirdParty(name="Zweiter Käufer", eu_country="DE", eu_vat_number="987654321",
                         role=fa3_parts.ROLE_ADDITIONAL_BUYER, share=D("25.5")),
    fa3_parts.ThirdParty(name="Payer Ltd", tax_id="GB99", tax_id_country="GB", other_role="Płatnik zagraniczny"),
    fa3_parts.ThirdParty(name="Odbiorca bez NIP", role=fa3_parts.ROLE_RECIPIENT),
]
# SHA-256 of the four invoices' bytes below, joined by b"\n" (built before the merge of the two).
DIGEST = "fd4bdd7da8ec92d3bcf7f6720053f3e00c19362d6db671e66dc1828b4b85b3a4"


def _invoice(buyer):
    return fa3.Invoice(
        seller=fa3.Seller(nip="5265877635", name="Firma Testowa",
                          address=fa3.Address(country="PL", line1="ul. Marszałkowska 1")),
        buyer=buyer, third_parties=THIRD_PARTIES,
        number="FV/2026/11/0001", issue_date=date(2026, 11, 30), created_at=datetime(2026, 11, 30, 10, 0),
        totals=fa3.Totals(p_15=D("123.00")).add("23", D("100.00"), D("23.00")),
        lines=[fa3.Line(name="Usługa", net_amount=D("100.00"), rate="23", quantity=D(1), unit_price=D(100))],
    )


def _tags(element):
    return [etree.QName(node).localname for node in element.iter() if isinstance(node.tag, str)]


def test_buyer_and_third_party_bytes_are_unchanged():
    built = b"\n".join(fa3.build(_invoice(buyer)) for buyer in BUYERS)
    assert hashlib.sha256(built).hexdigest() == DIGEST


def test_buyer_elements_in_xsd_order():
    root = etree.fromstring(fa3.build(_invoice(BUYERS[0])))
    assert _tags(root.find("f:Podmiot2", NS)) == [
        "Podmiot2", "DaneIdentyfikacyjne", "NIP", "Nazwa", "Adres", "KodKraju", "AdresL1",
        "DaneKontaktowe", "Email", "Telefon", "NrKlienta", "JST", "GV"]
    root = etree.fromstring(fa3.build(_invoice(BUYERS[2])))
    assert _tags(root.find("f:Podmiot2/f:DaneIdentyfikacyjne", NS)) == [
        "DaneIdentyfikacyjne", "KodKraju", "NrID", "Nazwa"]


def test_third_party_elements_in_xsd_order():
    root = etree.fromstring(fa3.build(_invoice(BUYERS[3])))
    first, second, third, fourth = root.findall("f:Podmiot3", NS)
    assert _tags(first) == ["Podmiot3", "DaneIdentyfikacyjne", "NIP", "Nazwa", "Adres", "KodKraju", "AdresL1",
                            "DaneKontaktowe", "Email", "Telefon", "Rola", "NrKlienta"]
    assert _tags(second) == ["Podmiot3", "DaneIdentyfikacyjne", "KodUE", "NrVatUE", "Nazwa", "Rola", "Udzial"]
    assert _tags(third) == ["Podmiot3", "DaneIdentyfikacyjne", "KodKraju", "NrID", "Nazwa", "RolaInna", "OpisRoli"]
    assert _tags(fourth) == ["Podmiot3", "DaneIdentyfikacyjne", "BrakID", "Nazwa", "Rola"]


@pytest.mark.parametrize("party", [
    fa3.Buyer(nip="7251801126", tax_id="X1"),
    fa3_parts.ThirdParty(nip="7251801126", eu_country="DE", eu_vat_number="1", role=1),
])
def test_one_kind_of_identification_for_both(party):
    invoice = _invoice(party) if isinstance(party, fa3.Buyer) else _invoice(BUYERS[3])
    if not isinstance(party, fa3.Buyer):
        invoice.third_parties = [party]
    with pytest.raises(fa3.Fa3Error, match="more than one kind of identification"):
        fa3.build(invoice)
