"""FA(3) builder and validator against the official XSD and samples (../shared/ksef)."""
import os
import re
import shutil
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from lxml import etree

from ksef import fa3

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("KSEF_SHARED") or REPO_ROOT / ".." / "shared").resolve() / "ksef"
XSD_DIR = SHARED / "xsd" / "FA3"
NS = {"f": fa3.NAMESPACE}

# The C#/Java client templates carry "#placeholder#" values that their tests fill in.
PLACEHOLDERS = {
    b"#nip#": b"5265877635",
    b"#nipOdbiorca#": b"3861610227",
    b"#selfInvocingNip#": b"3861610227",
    b"#invoice_number#": b"FV/2026/02/0001",
    b"#invoicing_date#": b"2026-02-02",
}
NOT_AN_INVOICE = {"ksef-pdf-generator_assets_upo.xml"}


@pytest.fixture(scope="module")
def schema():
    if not XSD_DIR.is_dir():
        pytest.fail("shared reference data not found at %s (set KSEF_SHARED)" % SHARED)
    return fa3.load_schema(XSD_DIR)


def official_samples():
    return sorted(p for p in (SHARED / "samples" / "official").glob("*.xml") if p.name not in NOT_AN_INVOICE)


def own_examples():
    return sorted((SHARED / "examples-own").glob("*.xml"))


# --- samples --------------------------------------------------------------------------------


def test_sample_folders_are_not_empty():
    assert len(official_samples()) >= 7
    assert len(own_examples()) >= 3


@pytest.mark.parametrize("path", official_samples(), ids=lambda p: p.name)
def test_official_sample_validates(schema, path):
    data = path.read_bytes()
    placeholders = set(re.findall(rb"#[A-Za-z_]+#", data))
    if placeholders:
        # As published these templates fail only on their placeholders; filled in, they validate.
        raw_issues = fa3.validate(data, schema)
        assert raw_issues and all("#" in issue.message for issue in raw_issues), raw_issues
        assert placeholders <= set(PLACEHOLDERS), placeholders - set(PLACEHOLDERS)
        for placeholder in placeholders:
            data = data.replace(placeholder, PLACEHOLDERS[placeholder])
    assert fa3.validate(data, schema) == []


@pytest.mark.parametrize("path", own_examples(), ids=lambda p: p.name)
def test_own_example_validates(schema, path):
    assert fa3.validate(path.read_bytes(), schema) == []


def test_upo_file_is_reported_as_not_an_invoice(schema):
    issues = fa3.validate((SHARED / "samples" / "official" / "ksef-pdf-generator_assets_upo.xml").read_bytes(), schema)
    assert issues and "Potwierdzenie" in issues[0].message


# --- schema loading -------------------------------------------------------------------------


def test_load_schema_is_cached_per_folder(schema):
    assert fa3.load_schema(str(XSD_DIR)) is schema


def test_official_xsd_loads_through_catalog(tmp_path):
    # A folder without the .local.xsd: the unmodified official file + catalog.xml must do.
    shutil.copy(XSD_DIR / fa3.MAIN_XSD, tmp_path)
    shutil.copy(XSD_DIR / "catalog.xml", tmp_path)
    shutil.copytree(XSD_DIR / "bazowe", tmp_path / "bazowe")
    official = fa3.load_schema(tmp_path)
    assert official.origin.endswith(fa3.MAIN_XSD)
    xml = fa3.build(base_invoice())
    assert fa3.validate(xml, official) == []
    assert fa3.validate(xml.replace(b"<P_12>23</P_12>", b"<P_12>24</P_12>"), official)


def test_missing_schema_folder_is_a_clear_error(tmp_path):
    with pytest.raises(fa3.Fa3Error, match="no FA\\(3\\) schema"):
        fa3.load_schema(tmp_path)


def schema_files():
    files = {fa3.MAIN_XSD: (XSD_DIR / fa3.MAIN_XSD).read_bytes()}
    for path in (XSD_DIR / "bazowe").glob("*.xsd"):
        files["bazowe/" + path.name] = path.read_bytes()
    return files


def test_schema_from_bytes_resolves_the_absolute_import():
    schema = fa3.load_schema_from_bytes(schema_files(), fa3.MAIN_XSD)
    assert fa3.load_schema_from_bytes(schema_files(), fa3.MAIN_XSD) is schema  # cached by content
    xml = fa3.build(base_invoice())
    assert fa3.validate(xml, schema) == []
    issues = fa3.validate(xml.replace(b"<P_12>23</P_12>", b"<P_12>24</P_12>"), schema)
    assert [issue.path for issue in issues] == ["/Faktura/Fa/FaWiersz/P_12"]


def test_schema_from_bytes_without_base_files_fails_clearly():
    files = {fa3.MAIN_XSD: (XSD_DIR / fa3.MAIN_XSD).read_bytes()}
    with pytest.raises(fa3.Fa3Error, match="cannot compile"):
        fa3.load_schema_from_bytes(files, fa3.MAIN_XSD)
    with pytest.raises(fa3.Fa3Error, match="not among the files"):
        fa3.load_schema_from_bytes(files, "other.xsd")


# --- builder --------------------------------------------------------------------------------

CREATED = datetime(2026, 2, 2, 9, 15, tzinfo=timezone.utc)
SELLER = fa3.Seller(
    nip="5265877635",
    name="Sprzedawca Testowy sp. z o.o.",
    address=fa3.Address(country="PL", line1="ul. Przykładowa 1", line2="00-001 Warszawa"),
    email="biuro@example.com",
    phone="+48 22 000 00 00",
)
BUYER_PL = fa3.Buyer(
    nip="3861610227",
    name="Nabywca Testowy S.A.",
    address=fa3.Address(country="PL", line1="ul. Odbiorcza 2", line2="30-001 Kraków"),
)


def invoice_for(lines, **overrides):
    """An invoice whose totals are summed from ``lines`` per category, like Odoo passes them."""
    totals = fa3.Totals(p_15=D(0))
    for line in lines:
        if line.before_correction:
            continue
        vat = line.vat_amount if line.vat_amount is not None else (
            (line.net_amount * D(line.rate) / 100).quantize(D("0.01")) if line.rate.isdigit() else None
        )
        totals.add(line.rate, line.net_amount, vat)
        totals.p_15 += line.net_amount + (vat or 0)
    values = dict(
        seller=SELLER,
        buyer=BUYER_PL,
        number="FV/2026/02/0001",
        issue_date=date(2026, 2, 2),
        created_at=CREATED,
        totals=totals,
        lines=lines,
        issue_place="Warszawa",
        delivery_date=date(2026, 2, 1),
        payment=fa3.Payment(
            due_dates=[date(2026, 2, 16)],
            method=6,
            bank_accounts=[fa3.BankAccount(number="61 1090 1014 0000 0712 1981 2874", bank_name="Bank Testowy")],
        ),
        system_info="l10n_pl_ksef tests",
    )
    values.update(overrides)
    return fa3.Invoice(**values)


def line(rate="23", net="100.00", **kw):
    values = dict(name="Usługa serwisowa", net_amount=D(net), rate=rate, quantity=D(2), unit="szt.", unit_price=D(net) / 2)
    values.update(kw)
    return fa3.Line(**values)


def base_invoice(**overrides):
    return invoice_for([line()], **overrides)


def parsed(xml):
    return etree.fromstring(xml)


def text_of(xml, xpath):
    return [getattr(e, "text", e) for e in parsed(xml).xpath(xpath, namespaces=NS)]


EU_BUYER = fa3.Buyer(
    eu_country="DE", eu_vat_number="811907980", name="Käufer GmbH",
    address=fa3.Address(country="DE", line1="Hauptstraße 1", line2="10115 Berlin"),
)  # fmt: skip
NON_EU_BUYER = fa3.Buyer(tax_id="12-3456789", tax_id_country="US", name="Buyer Inc.", address=fa3.Address(country="US", line1="1 Main St, Springfield"))
CONSUMER = fa3.Buyer(name="Jan Kowalski")
EXEMPT = fa3.Annotations(exemption_basis_act="art. 43 ust. 1 pkt 37 ustawy o VAT")


def kor_with_ksef_number():
    return invoice_for(
        [line(net="100.00", before_correction=True, number=1), line(net="50.00", quantity=D(1), unit_price=D(50), number=1)],
        kind="KOR",
        number="KOR/2026/02/0001",
        correction=fa3.Correction(
            reason="Zwrot 1 szt.",
            correction_type=2,
            corrected=[fa3.CorrectedInvoice(issue_date=date(2026, 2, 2), number="FV/2026/02/0001", ksef_number="5265877635-20260203-0100001AF629-D0")],
        ),
    )


def kor_outside_ksef():
    invoice = kor_with_ksef_number()
    invoice.correction.corrected = [fa3.CorrectedInvoice(issue_date=date(2025, 12, 30), number="FV/2025/12/0099", outside_ksef=True)]
    return invoice


def eur_invoice():
    invoice = invoice_for([line(net="1000.00")], currency="EUR", exchange_rate=D("4.2571"))
    invoice.totals.p_14_1w = D("979.13")  # 230.00 EUR * 4.2571, as Odoo computed it
    invoice.lines[0].exchange_rate = D("4.2571")
    return invoice


SHAPES = {
    "23": lambda: base_invoice(),
    "8": lambda: invoice_for([line("8")]),
    "5": lambda: invoice_for([line("5", gtu="GTU_01")]),
    "0 KR": lambda: invoice_for([line("0 KR")]),
    "0 WDT EU buyer": lambda: invoice_for([line("0 WDT")], buyer=EU_BUYER, seller=replace(SELLER, eu_vat_prefix=True)),
    "0 EX non-EU NrID": lambda: invoice_for([line("0 EX")], buyer=NON_EU_BUYER),
    "zw P_19A": lambda: invoice_for([line("zw")], annotations=EXEMPT),
    "np I": lambda: invoice_for([line("np I")], buyer=NON_EU_BUYER),
    "oo reverse charge": lambda: invoice_for([line("oo")], annotations=fa3.Annotations(reverse_charge=True)),
    "mixed rates": lambda: invoice_for(
        [line("23"), line("8", net="50.00"), line("5", net="10.00"), line("0 KR", net="5.00"), line("zw", net="7.00"), line("np II", net="3.00")],
        annotations=EXEMPT,
    ),
    "consumer BrakID": lambda: invoice_for([line()], buyer=CONSUMER, payment=fa3.Payment(paid_date=date(2026, 2, 2), method=1)),
    "EUR with P_14_1W": eur_invoice,
    "discounts": lambda: invoice_for([line(net="90.00", quantity=D(2), unit_price=D(50), discount=D("10.00")), line(net="0.33", quantity=D("0.333333"), unit_price=D("0.99999999"))]),
    "KOR NrKSeF": kor_with_ksef_number,
    "KOR NrKSeFN": kor_outside_ksef,
    "500 lines": lambda: invoice_for([line(net="%d.%02d" % (i, i % 100), quantity=D(1), unit_price=D("%d.%02d" % (i, i % 100)), code="SKU-%04d" % i) for i in range(1, 501)]),
    "diacritics and specials": lambda: invoice_for(
        [line(name="Zażółć gęślą jaźń & <tag> \"cudzysłów\" 'apostrof'")],
        buyer=replace(BUYER_PL, name="Łódzkie Żółwie & Spółka <\"'>"),
        additional_info=[("Uwagi", "A & B < C > D \" ' É")],
        footer="Ś & <Stopka> \"'",
    ),
    "0-amount line": lambda: invoice_for([line(), line(net="0.00", name="Gratis", quantity=D(1), unit_price=D(0))]),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_built_shape_is_xsd_valid(schema, shape):
    xml = fa3.build(SHAPES[shape]())
    assert fa3.validate(xml, schema) == []
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Faktura xmlns="http://crd.gov.pl/wzor/2025/06/25/13775/">')
    assert b"<?" not in xml[5:] and b"xmlns:" not in xml  # no PIs, no extra namespaces


def test_shapes_carry_their_distinguishing_elements():
    def first(shape, xpath):
        return text_of(fa3.build(SHAPES[shape]()), xpath)

    assert first("0 WDT EU buyer", "//f:Podmiot2/f:DaneIdentyfikacyjne/*/text()") == ["DE", "811907980", "Käufer GmbH"]
    assert first("0 WDT EU buyer", "//f:Podmiot1/f:PrefiksPodatnika") == ["PL"]
    assert first("0 WDT EU buyer", "//f:P_13_6_2") == ["100.00"]
    assert first("0 EX non-EU NrID", "//f:Podmiot2/f:DaneIdentyfikacyjne/*") == ["US", "12-3456789", "Buyer Inc."]
    assert first("zw P_19A", "//f:Zwolnienie/*") == ["1", "art. 43 ust. 1 pkt 37 ustawy o VAT"]
    assert first("zw P_19A", "//f:P_13_7") == ["100.00"]
    assert first("oo reverse charge", "//f:P_18") == ["1"]
    assert first("oo reverse charge", "//f:P_13_10") == ["100.00"]
    assert first("consumer BrakID", "//f:Podmiot2/f:DaneIdentyfikacyjne/*") == ["1", "Jan Kowalski"]
    assert first("consumer BrakID", "//f:Platnosc/*") == ["1", "2026-02-02", "1"]
    assert first("EUR with P_14_1W", "//f:Fa/f:KodWaluty|//f:P_14_1W|//f:KursWalutyZ|//f:KursWaluty") == ["EUR", "979.13", "4.2571", "4.2571"]
    assert first("mixed rates", "//f:Fa/*[starts-with(local-name(), 'P_1')]") == [
        "2026-02-02", "Warszawa", "100.00", "23.00", "50.00", "4.00", "10.00", "0.50", "5.00", "7.00", "3.00", "202.50",
    ]  # fmt: skip
    assert first("discounts", "//f:FaWiersz/f:P_10|//f:FaWiersz/f:P_8B|//f:FaWiersz/f:P_9A") == ["2", "50.00", "10.00", "0.333333", "0.99999999"]
    assert first("KOR NrKSeF", "//f:DaneFaKorygowanej/*") == ["2026-02-02", "FV/2026/02/0001", "1", "5265877635-20260203-0100001AF629-D0"]
    assert first("KOR NrKSeF", "//f:FaWiersz/f:StanPrzed") == ["1"]
    assert first("KOR NrKSeFN", "//f:DaneFaKorygowanej/*") == ["2025-12-30", "FV/2025/12/0099", "1"]
    assert b"<NrKSeFN>1</NrKSeFN>" in fa3.build(kor_outside_ksef())
    assert len(first("500 lines", "//f:FaWiersz")) == 500
    assert first("500 lines", "//f:FaWiersz[500]/f:NrWierszaFa") == ["500"]
    assert first("0-amount line", "//f:FaWiersz[2]/f:P_11") == ["0.00"]
    assert first("23", "//f:RachunekBankowy/*") == ["61109010140000071219812874", "Bank Testowy"]


def test_special_characters_are_escaped_and_round_trip():
    xml = fa3.build(SHAPES["diacritics and specials"]())
    assert b"&amp; &lt;tag&gt;" in xml
    assert "Zażółć gęślą jaźń".encode("utf-8") in xml  # raw UTF-8, not character references
    root = parsed(xml)
    assert root.findtext(".//f:FaWiersz/f:P_7", namespaces=NS) == "Zażółć gęślą jaźń & <tag> \"cudzysłów\" 'apostrof'"
    assert root.findtext(".//f:Podmiot2//f:Nazwa", namespaces=NS) == "Łódzkie Żółwie & Spółka <\"'>"
    assert root.findtext(".//f:StopkaFaktury", namespaces=NS) == "Ś & <Stopka> \"'"


def test_build_is_deterministic_and_follows_created_at():
    first = fa3.build(SHAPES["mixed rates"]())
    assert fa3.build(SHAPES["mixed rates"]()) == first
    later = fa3.build(invoice_for(SHAPES["mixed rates"]().lines, annotations=EXEMPT, created_at=CREATED + timedelta(seconds=1)))
    assert later != first
    assert b"<DataWytworzeniaFa>2026-02-02T09:15:01Z</DataWytworzeniaFa>" in later


def test_created_at_is_written_in_utc():
    warsaw = timezone(timedelta(hours=1))
    xml = fa3.build(base_invoice(created_at=datetime(2026, 2, 2, 10, 15, 30, 123456, tzinfo=warsaw)))
    assert text_of(xml, "//f:DataWytworzeniaFa") == ["2026-02-02T09:15:30Z"]
    naive = fa3.build(base_invoice(created_at=datetime(2026, 2, 2, 9, 15)))
    assert text_of(naive, "//f:DataWytworzeniaFa") == ["2026-02-02T09:15:00Z"]


@pytest.mark.parametrize(
    "formatter, value, expected",
    [
        (fa3._amount, D("1E+3"), "1000.00"),
        (fa3._amount, D("12.345"), "12.35"),
        (fa3._amount, D("-0.001"), "0.00"),
        (fa3._amount, D("-61.5"), "-61.50"),
        (fa3._amount, 0.1 + 0.2, "0.30"),
        (fa3._amount, 7, "7.00"),
        (fa3._price, D("1E-8"), "0.00000001"),
        (fa3._price, D("19.990000000"), "19.99"),
        (fa3._price, D("3"), "3.00"),
        (fa3._quantity, D("2.000000"), "2"),
        (fa3._quantity, D("1E+2"), "100"),
        (fa3._quantity, D("0.1234567"), "0.123457"),
        (fa3._quantity, D("4.25710000"), "4.2571"),
    ],
)
def test_decimal_formatting_is_plain_and_within_xsd_precision(formatter, value, expected):
    assert formatter(value, "x") == expected


# --- builder refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: base_invoice(seller=replace(SELLER, name="Firma\x85\x86")), r"seller\.name .*U\+0086"),
        (lambda: invoice_for([line(name="Towar\ufdd0")]), r"lines\[0\]\.name .*U\+FDD0"),
        (lambda: invoice_for([line(name="Towar\x00")]), r"lines\[0\]\.name .*U\+0000"),
        (lambda: base_invoice(buyer=replace(BUYER_PL, name="X\U0001fffe")), r"buyer\.name .*U\+1FFFE"),
        (lambda: replace(base_invoice(), lines=[line(rate="24")]), r"lines\[0\]\.rate '24' is not a KSeF rate code"),
        (lambda: base_invoice(number=""), r"^number is required"),
        (lambda: base_invoice(buyer=replace(BUYER_PL, eu_country="DE", eu_vat_number="1")), "more than one kind"),
        (lambda: base_invoice(buyer=fa3.Buyer(eu_country="DE")), "given together"),
        (lambda: invoice_for([line("zw")]), "exempt .* legal basis"),
        (lambda: invoice_for([line("oo")]), "reverse_charge=True"),
        (lambda: base_invoice(kind="KOR"), "needs correction"),
        (lambda: base_invoice(correction=kor_with_ksef_number().correction), "only allowed on a KOR"),
        (lambda: base_invoice(totals=fa3.Totals(p_15=D(1), p_13_1=D(1))), "p_13_1 and totals.p_14_1"),
        (lambda: base_invoice(totals=fa3.Totals(p_15=D(1), p_13_1=D(1), p_14_1=D(0), p_14_1w=D(0))), "foreign-currency"),
        (lambda: base_invoice(issue_date=datetime(2026, 2, 2)), "issue_date must be a datetime.date"),
        (lambda: base_invoice(totals=fa3.Totals(p_15="abc")), "totals.p_15 is not a number"),
    ],
)
def test_build_refuses_bad_data_naming_the_field(make, message):
    with pytest.raises(fa3.Fa3Error, match=message):
        fa3.build(make())


def test_correction_of_an_unnumbered_original_is_refused():
    invoice = kor_with_ksef_number()
    invoice.correction.corrected[0].ksef_number = None
    with pytest.raises(fa3.Fa3Error, match=r"corrected\[0\] has no ksef_number.*outside_ksef=True"):
        fa3.build(invoice)


def test_strip_discouraged_cleans_what_build_refuses():
    assert fa3.strip_discouraged("A\x7fB\x85C\x9fD\ufdefE\uffffF\x01") == "AB\x85CDEF"


def test_optional_odoo_false_values_are_omitted(schema):
    xml = fa3.build(base_invoice(issue_place=False, buyer=replace(BUYER_PL, email=False, phone=""), footer=False))
    assert fa3.validate(xml, schema) == []
    assert b"P_1M" not in xml and b"Stopka" not in xml and b"<Podmiot2>\n    <DaneIdentyfikacyjne>" in xml


# --- validator ------------------------------------------------------------------------------


def test_wrong_rate_and_missing_number_give_readable_paths(schema):
    xml = fa3.build(invoice_for([line(), line("8")]))
    issues = fa3.validate(xml.replace(b"<P_12>8</P_12>", b"<P_12>9</P_12>"), schema)
    assert [(i.path, i.line) for i in issues] == [("/Faktura/Fa/FaWiersz[2]/P_12", xml.count(b"\n", 0, xml.index(b"<P_12>8")) + 1)]
    assert "The value '9' is not an element of the set" in issues[0].message and "{http" not in issues[0].message
    issues = fa3.validate(xml.replace(b"<P_2>FV/2026/02/0001</P_2>", b""), schema)
    assert [i.path for i in issues] == ["/Faktura/Fa/P_6"]
    assert "Expected is ( P_2 )" in issues[0].message


def test_prefixed_documents_get_the_same_paths(schema):
    xml = fa3.build(base_invoice()).replace(b'xmlns="', b'xmlns:f="').replace(b"<", b"<f:").replace(b"<f:/", b"</f:").replace(b"<f:?", b"<?")
    assert fa3.validate(xml, schema) == []
    issues = fa3.validate(xml.replace(b"<f:P_12>23<", b"<f:P_12>x<"), schema)
    assert [i.path for i in issues] == ["/Faktura/Fa/FaWiersz/P_12"]


def test_assert_valid_lists_the_first_issues(schema):
    fa3.assert_valid(fa3.build(base_invoice()), schema)
    bad = fa3.build(base_invoice()).replace(b"<P_12>23</P_12>", b"<P_12>24</P_12>")
    with pytest.raises(fa3.Fa3ValidationError) as caught:
        fa3.assert_valid(b"\xef\xbb\xbf" + bad, schema)
    assert len(caught.value.issues) == 2
    assert str(caught.value).startswith("FA(3) document is not valid (2 issue(s)): (file): the file starts with a UTF-8 byte order mark")
    assert "/Faktura/Fa/FaWiersz/P_12: Element 'P_12'" in str(caught.value)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda x: b"\xef\xbb\xbf" + x, "byte order mark"),
        (lambda x: x.replace(b"?>\n", b"?>\n<?xml-stylesheet href='a.xsl'?>\n", 1), "processing instruction <?xml-stylesheet"),
        (lambda x: x.replace(b"</P_7>", b"<?php echo 1 ?></P_7>", 1), "processing instruction <?php"),
        (lambda x: x.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-2"').replace("Usługa".encode(), "Usługa".encode("iso-8859-2")), "encoding='ISO-8859-2'"),
        (lambda x: x.replace("Usługa".encode(), "Usługa".encode("iso-8859-2")), "not valid UTF-8"),
        (lambda x: x.replace("Usługa".encode(), "Usł\u0080uga".encode()), "discouraged character U+0080"),
        (lambda x: x.replace("Usługa".encode(), b"Us&#x9F;uga"), "discouraged character U+009F"),
        (lambda x: x.replace(b"</Faktura>", b"<!--" + b"x" * fa3.MAX_SIZE + b"--></Faktura>"), "more than the KSeF limit of 1000000"),
        (lambda x: x.replace(b"</Faktura>", b"</Faktur>"), "not well-formed XML"),
    ],
)
def test_file_level_rules_are_enforced(schema, mutate, message):
    issues = fa3.validate(mutate(fa3.build(base_invoice())), schema)
    assert any(message in issue.message for issue in issues), issues


def test_declaration_is_optional_and_lowercase_utf8_is_fine(schema):
    xml = fa3.build(base_invoice())
    assert fa3.validate(xml.split(b"\n", 1)[1], schema) == []
    assert fa3.validate(xml.replace(b'encoding="UTF-8"', b"encoding='utf-8'"), schema) == []


def test_attachments_raise_the_size_limit_to_three_megabytes(schema):
    padding = b"<!--" + b"x" * (fa3.MAX_SIZE + 10) + b"-->"
    xml = fa3.build(base_invoice())
    with_word = xml.replace(b"</Faktura>", padding + b"</Faktura>").replace(b"<P_7>", b"<P_7>Zalacznik ")
    assert any("limit of 1000000" in i.message for i in fa3.check_file(with_word))
    with_element = xml.replace(b"</Faktura>", padding + b"<Zalacznik/></Faktura>")
    assert not any("limit" in i.message for i in fa3.check_file(with_element))
    assert any("limit of 3000000" in i.message for i in fa3.check_file(with_element + b" " * 2_000_000))


def test_totals_add_accumulates_by_category():
    totals = fa3.Totals(p_15=D(0)).add("23", D("10.00"), D("2.30")).add("22", "5", "1.10").add("0 WDT", D(7))
    assert (totals.p_13_1, totals.p_14_1, totals.p_13_6_2) == (D("15.00"), D("3.40"), D(7))
    with pytest.raises(fa3.Fa3Error, match="has no VAT amount"):
        totals.add("zw", D(1), D(1))


def test_validation_is_safe_across_threads(schema):
    from concurrent.futures import ThreadPoolExecutor

    good = fa3.build(base_invoice())
    bad = good.replace(b"<P_12>23</P_12>", b"<P_12>24</P_12>")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda xml: [i.path for i in fa3.validate(xml, schema)], [good, bad] * 100))
    assert results == [[], ["/Faktura/Fa/FaWiersz/P_12"]] * 100
