"""FA(3) e-invoice: data model, XML builder and validator (the official FA(3)
XSD ``schemat_FA(3)_v1-0E.xsd``).

The data model is plain Python (dataclasses, ``Decimal`` money, ``datetime.date`` dates) and
describes an invoice the way the Odoo mapping hands it over.  The builder does NOT recompute
anything: totals per KSeF category (``Totals.p_13_1`` …) and line values are written as given,
only formatted for their XSD types.

Public API
----------
Data model (all ``@dataclass(kw_only=True)``)::

    Address(country, line1, line2=None)
    Seller(nip, name, address, email=None, phone=None, eu_vat_prefix=False)
    Buyer(name=None, nip=None, eu_country=None, eu_vat_number=None,
          tax_id=None, tax_id_country=None, address=None, email=None, phone=None,
          customer_number=None, jst=2, gv=2)
    Totals(p_15, p_13_1=None, p_14_1=None, p_14_1w=None, …, p_13_11=None)   + Totals.add(rate, net, vat, vat_pln)
    Annotations(cash_method=False, self_billing=False, reverse_charge=False, split_payment=False,
                exemption_basis_act=None, exemption_basis_directive=None, exemption_basis_other=None,
                triangular=False)
    CorrectedInvoice(issue_date, number, ksef_number=None, outside_ksef=False)
    Correction(corrected, reason=None, correction_type=None)
    Line(name, net_amount, rate, quantity=None, unit=None, unit_price=None, discount=None,
         vat_amount=None, code=None, gtu=None, exchange_rate=None, before_correction=False, number=None,
         annex15=False)
    BankAccount(number, swift=None, bank_name=None)
    Payment(due_dates=[], method=None, bank_accounts=[], paid_date=None, partial_payments=[])
    Invoice(seller, buyer, number, issue_date, created_at, totals, lines=[], currency="PLN",
            issue_place=None, delivery_date=None, exchange_rate=None, annotations=Annotations(),
            kind="VAT", correction=None, additional_info=[], payment=None, footer=None,
            system_info=None, third_parties=[], advance_invoices=[], order=None)
    kind: VAT | KOR | ZAL | ROZ | KOR_ZAL | KOR_ROZ; third_parties, advance_invoices and order take
    the ``fa3_parts`` classes (Podmiot3, FakturaZaliczkowa, Zamowienie).

Functions::

    build(invoice) -> bytes                         # FA(3) XML, UTF-8, no BOM, deterministic
    load_schema(xsd_dir) -> Fa3Schema               # cached per folder, offline
    load_schema_from_bytes(files, main_name) -> Fa3Schema   # XSDs kept e.g. as DB attachments
    check_file(xml_bytes) -> list[ValidationIssue]  # file-level rules of ksef-docs faktury/weryfikacja-faktury.md only
    validate(xml_bytes, schema) -> list[ValidationIssue]    # file rules + XSD; [] means valid
    assert_valid(xml_bytes, schema) -> None         # raises Fa3ValidationError
    strip_discouraged(text) -> str                  # optional clean-up before building

Errors: ``Fa3Error`` (bad input data; names the field), ``Fa3ValidationError(Fa3Error)``
(``.issues``).  Constants: ``NAMESPACE``, ``RATE_CODES``, ``RATE_TOTAL_FIELDS``,
``MAX_SIZE``, ``MAX_SIZE_WITH_ATTACHMENTS``.

Conventions: optional text fields may be ``None``, ``""`` or ``False`` (Odoo's empty value) and
are then omitted; ``created_at`` (``Naglowek/DataWytworzeniaFa``) is supplied by the caller,
naive datetimes are taken as UTC, so the same data always gives the same bytes.
"""
import functools
import hashlib
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from lxml import etree

from . import fa3_parts
from .fa3_party import Party

NAMESPACE = "http://crd.gov.pl/wzor/2025/06/25/13775/"
ETD_NAMESPACE = "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/"
MAIN_XSD = "schemat_FA(3)_v1-0E.xsd"
LOCAL_XSD = "schemat_FA(3)_v1-0E.local.xsd"

MAX_SIZE = 1_000_000
MAX_SIZE_WITH_ATTACHMENTS = 3_000_000

# TStawkaPodatku, in XSD order.
RATE_CODES = ("23", "22", "8", "7", "5", "4", "3", "0 KR", "0 WDT", "0 EX", "zw", "oo", "np I", "np II")

# Rate code -> (net field, VAT field, VAT-in-PLN field) of ``Totals``; None where the category
# has no VAT amount.
RATE_TOTAL_FIELDS = {
    "23": ("p_13_1", "p_14_1", "p_14_1w"),
    "22": ("p_13_1", "p_14_1", "p_14_1w"),
    "8": ("p_13_2", "p_14_2", "p_14_2w"),
    "7": ("p_13_2", "p_14_2", "p_14_2w"),
    "5": ("p_13_3", "p_14_3", "p_14_3w"),
    "4": ("p_13_4", "p_14_4", "p_14_4w"),
    "3": ("p_13_4", "p_14_4", "p_14_4w"),
    "0 KR": ("p_13_6_1", None, None),
    "0 WDT": ("p_13_6_2", None, None),
    "0 EX": ("p_13_6_3", None, None),
    "zw": ("p_13_7", None, None),
    "np I": ("p_13_8", None, None),
    "np II": ("p_13_9", None, None),
    "oo": ("p_13_10", None, None),
}

INVOICE_KINDS = ("VAT", "KOR", "ZAL", "ROZ", "KOR_ZAL", "KOR_ROZ")
# Kinds that correct another invoice and so carry DaneFaKorygowanej.
CORRECTION_KINDS = ("KOR", "KOR_ZAL", "KOR_ROZ")
# TZnakowy512: the longest line name (P_7) the XSD accepts.
MAX_LINE_NAME = 512


class Fa3Error(ValueError):
    """Invoice data that cannot be turned into a valid FA(3) document."""


@dataclass(frozen=True)
class ValidationIssue:
    path: str  # e.g. "/Faktura/Fa/FaWiersz[2]/P_12"; "" when the problem is the file itself
    line: int | None
    message: str

    def __str__(self):
        where = self.path or "(file)"
        return "%s: %s" % (where, self.message)


class Fa3ValidationError(Fa3Error):
    """Raised by ``assert_valid``; ``issues`` holds every ``ValidationIssue`` found."""

    SHOWN = 5

    def __init__(self, issues):
        self.issues = list(issues)
        shown = "; ".join(str(issue) for issue in self.issues[: self.SHOWN])
        more = len(self.issues) - self.SHOWN
        if more > 0:
            shown += "; … and %d more" % more
        super().__init__("FA(3) document is not valid (%d issue(s)): %s" % (len(self.issues), shown))


# --------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Address:
    country: str  # KodKraju, ISO 3166 alpha-2
    line1: str  # AdresL1
    line2: str | None = None  # AdresL2


@dataclass(kw_only=True)
class Seller:
    """Podmiot1."""

    nip: str
    name: str
    address: Address
    email: str | None = None
    phone: str | None = None
    eu_vat_prefix: bool = False  # PrefiksPodatnika=PL (seller acts as an EU VAT payer, e.g. WDT)


@dataclass(kw_only=True)
class Buyer(Party):
    """Podmiot2: a ``Party`` with its JST and GV flags."""

    jst: int = 2  # 1 = the invoice concerns a local-government sub-unit
    gv: int = 2  # 1 = the buyer is a VAT-group member


@dataclass(kw_only=True)
class Totals:
    """Fa totals, named after their XSD elements (``p_14_1w`` = ``P_14_1W``).  Written as given."""

    p_15: Decimal  # total amount due
    p_13_1: Decimal | None = None  # net 23 % / 22 %
    p_14_1: Decimal | None = None  # VAT 23 % / 22 %
    p_14_1w: Decimal | None = None  # that VAT in PLN (foreign-currency invoice only)
    p_13_2: Decimal | None = None  # 8 % / 7 %
    p_14_2: Decimal | None = None
    p_14_2w: Decimal | None = None
    p_13_3: Decimal | None = None  # 5 %
    p_14_3: Decimal | None = None
    p_14_3w: Decimal | None = None
    p_13_4: Decimal | None = None  # 4 % / 3 % (taxi flat rate)
    p_14_4: Decimal | None = None
    p_14_4w: Decimal | None = None
    p_13_5: Decimal | None = None  # OSS special procedure
    p_14_5: Decimal | None = None
    p_13_6_1: Decimal | None = None  # 0 KR (0 % domestic)
    p_13_6_2: Decimal | None = None  # 0 WDT (intra-EU supply)
    p_13_6_3: Decimal | None = None  # 0 EX (export)
    p_13_7: Decimal | None = None  # zw (exempt)
    p_13_8: Decimal | None = None  # np I (outside the country)
    p_13_9: Decimal | None = None  # np II (art. 100 ust. 1 pkt 4 services)
    p_13_10: Decimal | None = None  # oo (reverse charge)
    p_13_11: Decimal | None = None  # margin procedure

    def add(self, rate, net, vat=None, vat_pln=None):
        """Accumulate a category amount by rate code (convenience for callers and tests)."""
        if rate not in RATE_TOTAL_FIELDS:
            raise Fa3Error("Totals.add: unknown rate code %r (expected one of %s)" % (rate, ", ".join(RATE_TOTAL_FIELDS)))
        net_field, vat_field, pln_field = RATE_TOTAL_FIELDS[rate]
        pairs = [(net_field, net), (vat_field, vat), (pln_field, vat_pln)]
        if vat_field is None and (vat or vat_pln):
            raise Fa3Error("Totals.add: rate %r has no VAT amount, got vat=%r" % (rate, vat))
        for name, amount in pairs:
            if name is None or amount is None:
                continue
            current = getattr(self, name)
            setattr(self, name, _decimal(amount, "totals." + name) + (current if current is not None else 0))
        return self


@dataclass(kw_only=True)
class Annotations:
    """Fa/Adnotacje.  Booleans become 1 (True) / 2 (False)."""

    cash_method: bool = False  # P_16 metoda kasowa
    self_billing: bool = False  # P_17 samofakturowanie
    reverse_charge: bool = False  # P_18 odwrotne obciążenie
    split_payment: bool = False  # P_18A mechanizm podzielonej płatności
    # Zwolnienie: at most one basis; if one is set P_19=1 + it, otherwise P_19N=1.
    exemption_basis_act: str | None = None  # P_19A provision of the Polish VAT act
    exemption_basis_directive: str | None = None  # P_19B provision of Directive 2006/112/EC
    exemption_basis_other: str | None = None  # P_19C other legal basis
    triangular: bool = False  # P_23 simplified triangular procedure
    # NoweSrodkiTransportu is always P_22N=1 and PMarzy always P_PMarzyN=1 (not supported).


@dataclass(kw_only=True)
class CorrectedInvoice:
    """Fa/DaneFaKorygowanej."""

    issue_date: date  # DataWystFaKorygowanej
    number: str  # NrFaKorygowanej
    ksef_number: str | None = None  # NrKSeF=1 + NrKSeFFaKorygowanej
    outside_ksef: bool = False  # NrKSeFN=1: the original was issued outside KSeF (FA(3) XSD, DaneFaKorygowanej)


@dataclass(kw_only=True)
class Correction:
    corrected: list  # of CorrectedInvoice, at least one
    reason: str | None = None  # PrzyczynaKorekty
    correction_type: int | None = None  # TypKorekty 1|2|3


@dataclass(kw_only=True)
class Line:
    """Fa/FaWiersz."""

    name: str  # P_7
    net_amount: Decimal  # P_11
    rate: str  # P_12, one of RATE_CODES
    quantity: Decimal | None = None  # P_8B, up to 6 decimals
    unit: str | None = None  # P_8A
    unit_price: Decimal | None = None  # P_9A net unit price, up to 8 decimals
    discount: Decimal | None = None  # P_10 discount amount, up to 8 decimals
    vat_amount: Decimal | None = None  # P_11Vat
    code: str | None = None  # Indeks
    gtu: str | None = None  # GTU_01 … GTU_13
    exchange_rate: Decimal | None = None  # KursWaluty, up to 6 decimals
    before_correction: bool = False  # StanPrzed=1
    annex15: bool = False  # P_12_Zal_15=1: goods/services of Annex 15 to the VAT act (split payment)
    number: int | None = None  # NrWierszaFa; default: position 1..n


@dataclass(kw_only=True)
class BankAccount:
    number: str  # NrRB (whitespace removed)
    swift: str | None = None
    bank_name: str | None = None  # NazwaBanku


@dataclass(kw_only=True)
class Payment:
    """Fa/Platnosc."""

    due_dates: list = field(default_factory=list)  # TerminPlatnosci/Termin, one element each
    method: int | None = None  # FormaPlatnosci 1 cash, 2 card, 3 voucher, 4 cheque, 5 credit, 6 transfer, 7 mobile
    bank_accounts: list = field(default_factory=list)  # of BankAccount -> RachunekBankowy
    paid_date: date | None = None  # Zaplacono=1 + DataZaplaty
    # ZnacznikZaplatyCzesciowej=1 + ZaplataCzesciowa: (amount, date) of each part paid before issue
    partial_payments: list = field(default_factory=list)


@dataclass(kw_only=True)
class Invoice:
    seller: Seller
    buyer: Buyer
    number: str  # P_2
    issue_date: date  # P_1
    created_at: datetime  # Naglowek/DataWytworzeniaFa, supplied by the caller (naive = UTC)
    totals: Totals
    lines: list = field(default_factory=list)  # of Line
    currency: str = "PLN"  # KodWaluty
    issue_place: str | None = None  # P_1M
    delivery_date: date | None = None  # P_6
    exchange_rate: Decimal | None = None  # KursWalutyZ
    annotations: Annotations = field(default_factory=Annotations)
    kind: str = "VAT"  # RodzajFaktury, one of INVOICE_KINDS
    correction: Correction | None = None  # required for KOR, KOR_ZAL, KOR_ROZ
    additional_info: list = field(default_factory=list)  # DodatkowyOpis: (key, value) pairs
    payment: Payment | None = None
    footer: str | None = None  # Stopka/Informacje/StopkaFaktury
    system_info: str | None = None  # Naglowek/SystemInfo
    # FA(3) parts built by ``fa3_parts`` (advance/settlement invoices, third parties):
    third_parties: list = field(default_factory=list)  # of fa3_parts.ThirdParty -> Podmiot3
    advance_invoices: list = field(default_factory=list)  # of fa3_parts.AdvanceInvoice -> FakturaZaliczkowa
    order: object = None  # fa3_parts.Order -> Zamowienie (advance invoices, art. 106f ust. 1 pkt 4)


# --------------------------------------------------------------------------------------------
# Characters and value formatting
# --------------------------------------------------------------------------------------------

# ksef-docs faktury/weryfikacja-faktury.md: "discouraged" code points KSeF refuses (plus the last two of every plane).
_DISCOURAGED = "\x7f-\x84\x86-\x9f\ufdd0-\ufdef" + "".join(
    chr(plane * 0x10000 + 0xFFFE) + chr(plane * 0x10000 + 0xFFFF) for plane in range(17)
)
_DISCOURAGED_RE = re.compile("[%s]" % _DISCOURAGED)
# What may not go into element text at all: XML 1.0 forbidden controls, lone surrogates,
# and the discouraged set.
_FORBIDDEN_TEXT_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff%s]" % _DISCOURAGED)


def strip_discouraged(text):
    """Remove the characters ``build`` would refuse (for callers that prefer cleaning)."""
    return _FORBIDDEN_TEXT_RE.sub("", text)


def _text(value, where, required=False):
    if value is None or value is False or (isinstance(value, str) and not value.strip()):
        if required:
            raise Fa3Error("%s is required" % where)
        return None
    if not isinstance(value, str):
        raise Fa3Error("%s must be text, got %s" % (where, type(value).__name__))
    bad = _FORBIDDEN_TEXT_RE.search(value)
    if bad:
        raise Fa3Error(
            "%s contains the character U+%04X at position %d, which KSeF does not accept"
            % (where, ord(bad.group()), bad.start())
        )
    return value


def _decimal(value, where):
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool):
        raise Fa3Error("%s must be a number, got a bool" % where)
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # shortest round-trip form, not the binary expansion
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise Fa3Error("%s is not a number: %r" % (where, value)) from None
    else:
        raise Fa3Error("%s must be a number, got %s" % (where, type(value).__name__))
    if not number.is_finite():
        raise Fa3Error("%s must be a finite number, got %s" % (where, number))
    return number


_EXPONENTS = {places: Decimal(1).scaleb(-places) for places in range(9)}


def _format_decimal(value, where, max_places, min_places):
    """Plain notation, rounded half-up to ``max_places``, trailing zeros trimmed to ``min_places``."""
    number = _decimal(value, where).quantize(_EXPONENTS[max_places], rounding=ROUND_HALF_UP)
    if not number:
        number = abs(number)  # no "-0.00"
    text = format(number, "f")
    if max_places > min_places and "." in text:
        integer, fraction = text.split(".")
        fraction = fraction.rstrip("0")
        if len(fraction) < min_places:
            fraction = fraction.ljust(min_places, "0")
        text = integer + "." + fraction if fraction else integer
    return text


def _amount(value, where):  # TKwotowy
    return _format_decimal(value, where, 2, 2)


def _price(value, where):  # TKwotowy2
    return _format_decimal(value, where, 8, 2)


def _quantity(value, where):  # TIlosci (quantities and exchange rates)
    return _format_decimal(value, where, 6, 0)


def _date(value, where):
    if isinstance(value, datetime) or not isinstance(value, date):
        raise Fa3Error("%s must be a datetime.date, got %s" % (where, type(value).__name__))
    return value.isoformat()


def _timestamp(value, where):
    if not isinstance(value, datetime):
        raise Fa3Error("%s must be a datetime.datetime, got %s" % (where, type(value).__name__))
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _choice(flag):
    return "1" if flag else "2"


# --------------------------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------------------------

_TAGS = {}


def _tag(name):
    tag = _TAGS.get(name)
    if tag is None:
        tag = _TAGS[name] = "{%s}%s" % (NAMESPACE, name)
    return tag


def _sub(parent, name, text=None):
    element = etree.SubElement(parent, _tag(name))
    if text is not None:
        element.text = text
    return element


def _sub_opt(parent, name, text):
    if text is not None:
        _sub(parent, name, text)


_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def build(invoice):
    """Return the FA(3) XML of ``invoice`` as UTF-8 bytes (no BOM).  Raises ``Fa3Error``."""
    if not isinstance(invoice, Invoice):
        raise Fa3Error("build() expects an Invoice, got %s" % type(invoice).__name__)
    root = etree.Element(_tag("Faktura"), nsmap={None: NAMESPACE})
    _build_header(root, invoice)
    _build_seller(root, invoice.seller)
    _build_buyer(root, invoice.buyer)
    fa3_parts.build_third_parties(root, invoice.third_parties)
    _build_fa(root, invoice)
    footer = _text(invoice.footer, "footer")
    if footer is not None:
        if len(footer) > 3500:
            raise Fa3Error("footer is longer than 3500 characters")
        informacje = _sub(_sub(root, "Stopka"), "Informacje")
        _sub(informacje, "StopkaFaktury", footer)
    return _XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True)


def _build_header(root, invoice):
    header = _sub(root, "Naglowek")
    form = _sub(header, "KodFormularza", "FA")
    form.set("kodSystemowy", "FA (3)")
    form.set("wersjaSchemy", "1-0E")
    _sub(header, "WariantFormularza", "3")
    _sub(header, "DataWytworzeniaFa", _timestamp(invoice.created_at, "created_at"))
    _sub_opt(header, "SystemInfo", _text(invoice.system_info, "system_info"))


def _build_address(parent, name, address, where):
    element = _sub(parent, name)
    _sub(element, "KodKraju", _text(address.country, where + ".country", True))
    _sub(element, "AdresL1", _text(address.line1, where + ".line1", True))
    _sub_opt(element, "AdresL2", _text(address.line2, where + ".line2"))


def _build_contact(parent, party, where):
    email = _text(party.email, where + ".email")
    phone = _text(party.phone, where + ".phone")
    if email is not None or phone is not None:
        contact = _sub(parent, "DaneKontaktowe")
        _sub_opt(contact, "Email", email)
        _sub_opt(contact, "Telefon", phone)


def _build_seller(root, seller):
    if not isinstance(seller, Seller):
        raise Fa3Error("seller must be a Seller")
    podmiot = _sub(root, "Podmiot1")
    if seller.eu_vat_prefix:
        _sub(podmiot, "PrefiksPodatnika", "PL")
    ident = _sub(podmiot, "DaneIdentyfikacyjne")
    _sub(ident, "NIP", _text(seller.nip, "seller.nip", True))
    _sub(ident, "Nazwa", _text(seller.name, "seller.name", True))
    if seller.address is None:
        raise Fa3Error("seller.address is required")
    _build_address(podmiot, "Adres", seller.address, "seller.address")
    _build_contact(podmiot, seller, "seller")


def _build_buyer(root, buyer):
    if not isinstance(buyer, Buyer):
        raise Fa3Error("buyer must be a Buyer")
    podmiot = _sub(root, "Podmiot2")
    _build_identification(podmiot, buyer, "buyer")
    if buyer.address is not None:
        _build_address(podmiot, "Adres", buyer.address, "buyer.address")
    _build_contact(podmiot, buyer, "buyer")
    _sub_opt(podmiot, "NrKlienta", _text(buyer.customer_number, "buyer.customer_number"))
    for name, value in (("JST", buyer.jst), ("GV", buyer.gv)):
        if value not in (1, 2):
            raise Fa3Error("buyer.%s must be 1 or 2, got %r" % (name.lower(), value))
        _sub(podmiot, name, str(value))


def _build_identification(podmiot, party, where):
    """DaneIdentyfikacyjne of a ``Party`` (XSD TPodmiot2/TPodmiot3): one kind of identification, or BrakID."""
    nip = _text(party.nip, where + ".nip")
    eu_country = _text(party.eu_country, where + ".eu_country")
    eu_vat_number = _text(party.eu_vat_number, where + ".eu_vat_number")
    tax_id = _text(party.tax_id, where + ".tax_id")
    tax_id_country = _text(party.tax_id_country, where + ".tax_id_country")
    kinds = [
        kind
        for kind, used in (
            ("nip", nip is not None),
            ("eu_country/eu_vat_number", eu_country is not None or eu_vat_number is not None),
            ("tax_id/tax_id_country", tax_id is not None or tax_id_country is not None),
        )
        if used
    ]
    if len(kinds) > 1:
        raise Fa3Error("%s has more than one kind of identification: %s (use exactly one)" % (where, ", ".join(kinds)))
    ident = _sub(podmiot, "DaneIdentyfikacyjne")
    if nip is not None:
        _sub(ident, "NIP", nip)
    elif eu_country is not None or eu_vat_number is not None:
        if eu_country is None or eu_vat_number is None:
            raise Fa3Error("%s.eu_country and %s.eu_vat_number must be given together" % (where, where))
        _sub(ident, "KodUE", eu_country)
        _sub(ident, "NrVatUE", eu_vat_number)
    elif tax_id is not None:
        _sub_opt(ident, "KodKraju", tax_id_country)
        _sub(ident, "NrID", tax_id)
    elif tax_id_country is not None:
        raise Fa3Error("%s.tax_id_country needs %s.tax_id" % (where, where))
    else:
        _sub(ident, "BrakID", "1")
    _sub_opt(ident, "Nazwa", _text(party.name, where + ".name"))


# (net, vat, vat in PLN) element groups that form an XSD sequence: net and vat go together.
_PAIRED_TOTALS = (
    ("P_13_1", "P_14_1", "P_14_1W"),
    ("P_13_2", "P_14_2", "P_14_2W"),
    ("P_13_3", "P_14_3", "P_14_3W"),
    ("P_13_4", "P_14_4", "P_14_4W"),
    ("P_13_5", "P_14_5", None),
)
_SINGLE_TOTALS = ("P_13_6_1", "P_13_6_2", "P_13_6_3", "P_13_7", "P_13_8", "P_13_9", "P_13_10", "P_13_11")


def _build_totals(fa, totals, currency):
    if not isinstance(totals, Totals):
        raise Fa3Error("totals must be a Totals")
    for net_name, vat_name, pln_name in _PAIRED_TOTALS:
        net = getattr(totals, net_name.lower())
        vat = getattr(totals, vat_name.lower())
        vat_pln = getattr(totals, pln_name.lower()) if pln_name else None
        if net is None and vat is None and vat_pln is None:
            continue
        if net is None or (vat is None and vat_name != "P_14_5"):
            raise Fa3Error("totals.%s and totals.%s must be given together" % (net_name.lower(), vat_name.lower()))
        if vat_pln is not None and currency == "PLN":
            raise Fa3Error("totals.%s (VAT converted to PLN) is only for foreign-currency invoices" % pln_name.lower())
        _sub(fa, net_name, _amount(net, "totals." + net_name.lower()))
        if vat is not None:
            _sub(fa, vat_name, _amount(vat, "totals." + vat_name.lower()))
        if vat_pln is not None:
            _sub(fa, pln_name, _amount(vat_pln, "totals." + pln_name.lower()))
    for name in _SINGLE_TOTALS:
        value = getattr(totals, name.lower())
        if value is not None:
            _sub(fa, name, _amount(value, "totals." + name.lower()))
    if totals.p_15 is None:
        raise Fa3Error("totals.p_15 (total amount due) is required")
    _sub(fa, "P_15", _amount(totals.p_15, "totals.p_15"))


def _build_annotations(fa, notes, invoice):
    if not isinstance(notes, Annotations):
        raise Fa3Error("annotations must be an Annotations")
    adnotacje = _sub(fa, "Adnotacje")
    _sub(adnotacje, "P_16", _choice(notes.cash_method))
    _sub(adnotacje, "P_17", _choice(notes.self_billing))
    _sub(adnotacje, "P_18", _choice(notes.reverse_charge))
    _sub(adnotacje, "P_18A", _choice(notes.split_payment))
    bases = [
        (element, text)
        for element, text in (
            ("P_19A", _text(notes.exemption_basis_act, "annotations.exemption_basis_act")),
            ("P_19B", _text(notes.exemption_basis_directive, "annotations.exemption_basis_directive")),
            ("P_19C", _text(notes.exemption_basis_other, "annotations.exemption_basis_other")),
        )
        if text is not None
    ]
    if len(bases) > 1:
        raise Fa3Error("annotations: give only one exemption basis (act, directive or other)")
    rates = {getattr(line, "rate", None) for line in invoice.lines}
    if not bases and (invoice.totals.p_13_7 is not None or "zw" in rates):
        raise Fa3Error("exempt (zw) supply needs its legal basis: set annotations.exemption_basis_act/_directive/_other")
    if not notes.reverse_charge and (invoice.totals.p_13_10 is not None or "oo" in rates):
        raise Fa3Error("reverse-charge (oo) supply needs annotations.reverse_charge=True (P_18=1)")
    zwolnienie = _sub(adnotacje, "Zwolnienie")
    if bases:
        _sub(zwolnienie, "P_19", "1")
        _sub(zwolnienie, *bases[0])
    else:
        _sub(zwolnienie, "P_19N", "1")
    _sub(_sub(adnotacje, "NoweSrodkiTransportu"), "P_22N", "1")
    _sub(adnotacje, "P_23", _choice(notes.triangular))
    _sub(_sub(adnotacje, "PMarzy"), "P_PMarzyN", "1")


def _build_correction(fa, correction):
    if not isinstance(correction, Correction):
        raise Fa3Error("a KOR invoice needs correction=Correction(...)")
    _sub_opt(fa, "PrzyczynaKorekty", _text(correction.reason, "correction.reason"))
    if correction.correction_type is not None:
        if correction.correction_type not in (1, 2, 3):
            raise Fa3Error("correction.correction_type must be 1, 2 or 3, got %r" % (correction.correction_type,))
        _sub(fa, "TypKorekty", str(correction.correction_type))
    if not correction.corrected:
        raise Fa3Error("correction.corrected must list at least one corrected invoice")
    for index, original in enumerate(correction.corrected):
        where = "correction.corrected[%d]" % index
        dane = _sub(fa, "DaneFaKorygowanej")
        _sub(dane, "DataWystFaKorygowanej", _date(original.issue_date, where + ".issue_date"))
        _sub(dane, "NrFaKorygowanej", _text(original.number, where + ".number", True))
        ksef_number = _text(original.ksef_number, where + ".ksef_number")
        if ksef_number is not None and original.outside_ksef:
            raise Fa3Error("%s: ksef_number and outside_ksef exclude each other" % where)
        if ksef_number is not None:
            _sub(dane, "NrKSeF", "1")
            _sub(dane, "NrKSeFFaKorygowanej", ksef_number)
        elif original.outside_ksef:
            _sub(dane, "NrKSeFN", "1")
        else:
            # FA(3) XSD (DaneFaKorygowanej): NrKSeFN is not "offline, not numbered yet"; hold the correction instead.
            raise Fa3Error(
                "%s has no ksef_number: wait until the original has its KSeF number, "
                "or set outside_ksef=True if it was issued outside KSeF" % where
            )


def _build_line(fa, line, position):
    where = "lines[%d]" % position
    if not isinstance(line, Line):
        raise Fa3Error("%s must be a Line" % where)
    wiersz = _sub(fa, "FaWiersz")
    number = line.number if line.number is not None else position + 1
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise Fa3Error("%s.number must be a positive int, got %r" % (where, number))
    _sub(wiersz, "NrWierszaFa", str(number))
    name = _text(line.name, where + ".name", True)
    if len(name) > MAX_LINE_NAME:
        raise Fa3Error("%s.name has %d characters; KSeF accepts at most %d" % (where, len(name), MAX_LINE_NAME))
    _sub(wiersz, "P_7", name)
    _sub_opt(wiersz, "Indeks", _text(line.code, where + ".code"))
    _sub_opt(wiersz, "P_8A", _text(line.unit, where + ".unit"))
    if line.quantity is not None:
        _sub(wiersz, "P_8B", _quantity(line.quantity, where + ".quantity"))
    if line.unit_price is not None:
        _sub(wiersz, "P_9A", _price(line.unit_price, where + ".unit_price"))
    if line.discount is not None:
        _sub(wiersz, "P_10", _price(line.discount, where + ".discount"))
    if line.net_amount is None:
        raise Fa3Error("%s.net_amount is required" % where)
    _sub(wiersz, "P_11", _amount(line.net_amount, where + ".net_amount"))
    if line.vat_amount is not None:
        _sub(wiersz, "P_11Vat", _amount(line.vat_amount, where + ".vat_amount"))
    if line.rate not in RATE_TOTAL_FIELDS:
        raise Fa3Error("%s.rate %r is not a KSeF rate code (%s)" % (where, line.rate, ", ".join(RATE_CODES)))
    _sub(wiersz, "P_12", line.rate)
    if line.annex15:
        _sub(wiersz, "P_12_Zal_15", "1")
    _sub_opt(wiersz, "GTU", _text(line.gtu, where + ".gtu"))
    if line.exchange_rate is not None:
        _sub(wiersz, "KursWaluty", _quantity(line.exchange_rate, where + ".exchange_rate"))
    if line.before_correction:
        _sub(wiersz, "StanPrzed", "1")


def _build_payment(fa, payment):
    if not isinstance(payment, Payment):
        raise Fa3Error("payment must be a Payment")
    platnosc = _sub(fa, "Platnosc")
    if payment.paid_date is not None and payment.partial_payments:
        raise Fa3Error("payment: give either paid_date (paid in full) or partial_payments, not both")
    if payment.paid_date is not None:
        _sub(platnosc, "Zaplacono", "1")
        _sub(platnosc, "DataZaplaty", _date(payment.paid_date, "payment.paid_date"))
    elif payment.partial_payments:
        if len(payment.partial_payments) > 100:
            raise Fa3Error("payment.partial_payments: at most 100 parts")
        _sub(platnosc, "ZnacznikZaplatyCzesciowej", "1")
        for index, (amount, paid_on) in enumerate(payment.partial_payments):
            where = "payment.partial_payments[%d]" % index
            part = _sub(platnosc, "ZaplataCzesciowa")
            _sub(part, "KwotaZaplatyCzesciowej", _amount(amount, where + ".amount"))
            _sub(part, "DataZaplatyCzesciowej", _date(paid_on, where + ".date"))
    if len(payment.due_dates) > 100:
        raise Fa3Error("payment.due_dates: FA(3) takes at most 100 due dates, got %d" % len(payment.due_dates))
    for index, due in enumerate(payment.due_dates):
        _sub(_sub(platnosc, "TerminPlatnosci"), "Termin", _date(due, "payment.due_dates[%d]" % index))
    if payment.method is not None:
        if payment.method not in (1, 2, 3, 4, 5, 6, 7):
            raise Fa3Error("payment.method must be a FormaPlatnosci code 1..7, got %r" % (payment.method,))
        _sub(platnosc, "FormaPlatnosci", str(payment.method))
    for index, account in enumerate(payment.bank_accounts):
        where = "payment.bank_accounts[%d]" % index
        rachunek = _sub(platnosc, "RachunekBankowy")
        _sub(rachunek, "NrRB", "".join(_text(account.number, where + ".number", True).split()))
        _sub_opt(rachunek, "SWIFT", _text(account.swift, where + ".swift"))
        _sub_opt(rachunek, "NazwaBanku", _text(account.bank_name, where + ".bank_name"))


def _build_fa(root, invoice):
    fa = _sub(root, "Fa")
    currency = _text(invoice.currency, "currency", True)
    _sub(fa, "KodWaluty", currency)
    _sub(fa, "P_1", _date(invoice.issue_date, "issue_date"))
    _sub_opt(fa, "P_1M", _text(invoice.issue_place, "issue_place"))
    _sub(fa, "P_2", _text(invoice.number, "number", True))
    if invoice.delivery_date is not None:
        _sub(fa, "P_6", _date(invoice.delivery_date, "delivery_date"))
    _build_totals(fa, invoice.totals, currency)
    if invoice.exchange_rate is not None:
        _sub(fa, "KursWalutyZ", _quantity(invoice.exchange_rate, "exchange_rate"))
    _build_annotations(fa, invoice.annotations, invoice)
    if invoice.kind not in INVOICE_KINDS:
        raise Fa3Error("kind must be one of %s, got %r" % (", ".join(INVOICE_KINDS), invoice.kind))
    _sub(fa, "RodzajFaktury", invoice.kind)
    if invoice.kind in CORRECTION_KINDS:
        _build_correction(fa, invoice.correction)
    elif invoice.correction is not None:
        raise Fa3Error("correction is only allowed on a KOR invoice (or KOR_ZAL, KOR_ROZ; kind=%r)" % invoice.kind)
    for index, pair in enumerate(invoice.additional_info):
        where = "additional_info[%d]" % index
        try:
            key, value = pair
        except (TypeError, ValueError):
            raise Fa3Error("%s must be a (key, value) pair" % where) from None
        opis = _sub(fa, "DodatkowyOpis")
        _sub(opis, "Klucz", _text(key, where + ".key", True))
        _sub(opis, "Wartosc", _text(value, where + ".value", True))
    fa3_parts.build_advance_invoices(fa, invoice)
    if len(invoice.lines) > 10000:
        raise Fa3Error("an FA(3) invoice holds at most 10000 lines, got %d" % len(invoice.lines))
    for position, line in enumerate(invoice.lines):
        _build_line(fa, line, position)
    if invoice.payment is not None:
        _build_payment(fa, invoice.payment)
    fa3_parts.build_order(fa, invoice)


# --------------------------------------------------------------------------------------------
# Schema loading
# --------------------------------------------------------------------------------------------


class Fa3Schema:
    """A compiled FA(3) XSD.  lxml keeps the error log on the schema object, so validation is
    serialised with a lock (Odoo runs requests in threads)."""

    def __init__(self, xml_schema, origin):
        self.xml_schema = xml_schema
        self.origin = origin
        self._lock = threading.Lock()

    def __repr__(self):
        return "Fa3Schema(%r)" % self.origin

    def _errors(self, tree):
        with self._lock:
            if self.xml_schema.validate(tree):
                return []
            return list(self.xml_schema.error_log)


class _CatalogResolver(etree.Resolver):
    """Maps URL prefixes to local folders, as the rewriteURI/rewriteSystem entries of an OASIS
    catalog do.  Done in Python because libxml2 reads XML_CATALOG_FILES only once per process."""

    def __init__(self, rewrites):
        super().__init__()
        self.rewrites = rewrites

    def resolve(self, url, pubid, context):
        for prefix, folder in self.rewrites:
            if url and url.startswith(prefix):
                return self.resolve_filename(os.path.join(folder, url[len(prefix):]), context)
        return None


_CATALOG_NS = "{urn:oasis:names:tc:entity:xmlns:xml:catalog}"


def _catalog_rewrites(catalog_path):
    catalog = etree.parse(catalog_path, etree.XMLParser(no_network=True, resolve_entities=False))
    base = os.path.dirname(catalog_path)
    rewrites = []
    for entry in catalog.getroot():
        if entry.tag == _CATALOG_NS + "rewriteURI":
            prefix = entry.get("uriStartString")
        elif entry.tag == _CATALOG_NS + "rewriteSystem":
            prefix = entry.get("systemIdStartString")
        else:
            continue
        rewrites.append((prefix, os.path.join(base, entry.get("rewritePrefix"))))
    return rewrites


def _compile(tree, origin):
    try:
        return Fa3Schema(etree.XMLSchema(tree), origin)
    except etree.XMLSchemaParseError as error:
        raise Fa3Error("cannot compile the FA(3) schema from %s: %s" % (origin, error)) from None


@functools.lru_cache(maxsize=8)
def _load_schema_cached(xsd_dir):
    local = os.path.join(xsd_dir, LOCAL_XSD)
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    if os.path.isfile(local):
        return _compile(etree.parse(local, parser), local)
    main = os.path.join(xsd_dir, MAIN_XSD)
    catalog = os.path.join(xsd_dir, "catalog.xml")
    if not os.path.isfile(main):
        raise Fa3Error("no FA(3) schema in %s (expected %s or %s)" % (xsd_dir, LOCAL_XSD, MAIN_XSD))
    if os.path.isfile(catalog):
        parser.resolvers.add(_CatalogResolver(_catalog_rewrites(catalog)))
    return _compile(etree.parse(main, parser), main)


def load_schema(xsd_dir):
    """Compile the FA(3) XSD found in ``xsd_dir`` (cached per folder, never uses the network).

    Uses ``schemat_FA(3)_v1-0E.local.xsd`` when present, otherwise the official file with the
    ``catalog.xml`` beside it redirecting the crd.gov.pl import to ``bazowe/``.
    """
    return _load_schema_cached(os.path.realpath(os.fspath(xsd_dir)))


class _MemoryResolver(etree.Resolver):
    """Serves includes/imports from an in-memory {basename: bytes} map, whatever the URL."""

    def __init__(self, files):
        super().__init__()
        self.files = files

    def resolve(self, url, pubid, context):
        name = (url or "").replace("\\", "/").rsplit("/", 1)[-1]
        content = self.files.get(name)
        if content is None:
            return None
        return self.resolve_string(content, context, base_url="memory:/" + name)


_MEMORY_SCHEMAS = {}
_MEMORY_SCHEMAS_LOCK = threading.Lock()


def load_schema_from_bytes(files, main_name=MAIN_XSD):
    """Compile the FA(3) XSD from in-memory files, e.g. Odoo attachments.

    ``files`` maps file names (basenames; any folder part is ignored) to contents; it must hold
    the main XSD and the three ``bazowe`` files (``StrukturyDanych_v10-0E.xsd``,
    ``ElementarneTypyDanych_v10-0E.xsd``, ``KodyKrajow_v10-0E.xsd``).  Imports and includes,
    including the official absolute crd.gov.pl URL, are resolved by basename.  Compiled schemas
    are cached by content.
    """
    by_name = {name.replace("\\", "/").rsplit("/", 1)[-1]: bytes(content) for name, content in files.items()}
    if main_name not in by_name:
        raise Fa3Error("load_schema_from_bytes: %r is not among the files (%s)" % (main_name, ", ".join(sorted(by_name))))
    digest = hashlib.sha256(main_name.encode())
    for name in sorted(by_name):
        digest.update(b"\0%s\0%d\0" % (name.encode(), len(by_name[name])))
        digest.update(by_name[name])
    key = digest.hexdigest()
    with _MEMORY_SCHEMAS_LOCK:
        cached = _MEMORY_SCHEMAS.get(key)
    if cached is not None:
        return cached
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_MemoryResolver(by_name))
    try:
        root = etree.fromstring(by_name[main_name], parser, base_url="memory:/" + main_name)
    except etree.XMLSyntaxError as error:
        raise Fa3Error("%s is not well-formed XML: %s" % (main_name, error)) from None
    schema = _compile(etree.ElementTree(root), "memory:/" + main_name)
    with _MEMORY_SCHEMAS_LOCK:
        if len(_MEMORY_SCHEMAS) >= 8:
            _MEMORY_SCHEMAS.clear()
        _MEMORY_SCHEMAS[key] = schema
    return schema


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

_BOMS = ((b"\xef\xbb\xbf", "UTF-8"), (b"\xff\xfe", "UTF-16 LE"), (b"\xfe\xff", "UTF-16 BE"))
_PROLOG_RE = re.compile(rb"<\?xml\s[^>]*?\?>")
_ENCODING_RE = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_CHAR_REF_RE = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")
_NAMESPACE_NOISE_RE = re.compile(r"\{https?://[^}]*\}")
_ATTACHMENT_RE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Zalacznik[\s/>]")  # FA(3) attachment element


def _line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def check_file(xml_bytes):
    """The file-level rules KSeF applies before the schema (ksef-docs ``faktury/weryfikacja-faktury.md``,
    ``limity/limity.md``)."""
    return _check_file(xml_bytes)[0]


def _check_file(xml_bytes):
    """Return (issues, decodable): ``decodable`` is False when the bytes are not UTF-8."""
    if not isinstance(xml_bytes, (bytes, bytearray)):
        raise TypeError("expected the XML file as bytes, got %s" % type(xml_bytes).__name__)
    issues = []
    for bom, label in _BOMS:
        if xml_bytes.startswith(bom):
            issues.append(ValidationIssue("", 1, "the file starts with a %s byte order mark (BOM); KSeF needs UTF-8 without BOM" % label))
            break
    body = xml_bytes[3:] if xml_bytes.startswith(b"\xef\xbb\xbf") else xml_bytes
    prolog = _PROLOG_RE.match(body)
    if prolog:
        encoding = _ENCODING_RE.search(prolog.group())
        declared = encoding.group(1).decode("ascii", "replace") if encoding else "UTF-8"
        if declared.lower() not in ("utf-8", "utf8"):
            issues.append(ValidationIssue("", 1, "the XML declaration says encoding=%r; KSeF needs UTF-8" % declared))
    size_limit = MAX_SIZE_WITH_ATTACHMENTS if _ATTACHMENT_RE.search(xml_bytes) else MAX_SIZE
    if len(xml_bytes) > size_limit:
        issues.append(ValidationIssue("", None, "the file has %d bytes, more than the KSeF limit of %d" % (len(xml_bytes), size_limit)))
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as error:
        line = body[: error.start].count(b"\n") + 1
        issues.append(ValidationIssue("", line, "the file is not valid UTF-8 (byte 0x%02X at offset %d)" % (body[error.start], error.start)))
        return issues, False
    bad = _DISCOURAGED_RE.search(text)
    if bad:
        issues.append(ValidationIssue("", _line_of(text, bad.start()), "the file contains the discouraged character U+%04X" % ord(bad.group())))
    elif "&#" in text:
        for match in _CHAR_REF_RE.finditer(text):
            ref = match.group(1)
            try:
                char = chr(int(ref[1:], 16) if ref[0] == "x" else int(ref))
            except (ValueError, OverflowError):
                continue  # the parser reports it
            if _DISCOURAGED_RE.match(char):
                issues.append(ValidationIssue("", _line_of(text, match.start()), "the file refers to the discouraged character U+%04X" % ord(char)))
                break
    return issues, True


_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=False
)
_PARSER_LOCAL = threading.local()


def _parser():
    # lxml parsers are not thread-safe; keep one per thread.
    parser = getattr(_PARSER_LOCAL, "parser", None)
    if parser is None:
        parser = _PARSER_LOCAL.parser = _SAFE_PARSER.copy()
    return parser


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _readable_path(root, raw_path):
    """Turn libxml2's node path ('/*/*[4]/*[2]', or 'p:Fa[1]' for prefixed documents) into
    '/Faktura/Fa/FaWiersz[2]': local names, an index only where a name repeats."""
    if not raw_path or not raw_path.startswith("/"):
        return raw_path or ""
    steps = raw_path.strip("/").split("/")
    node, parts = None, []
    try:
        for step in steps:
            if step.startswith("@") or step.startswith("text()"):
                parts.append(step)
                break
            match = re.fullmatch(r"([^\[]+)(?:\[(\d+)\])?", step)
            name, index = match.group(1), int(match.group(2) or 1)
            candidates = [root] if node is None else [child for child in node if isinstance(child.tag, str)]
            if name != "*":
                wanted = name.rsplit(":", 1)[-1]
                candidates = [child for child in candidates if _local(child.tag) == wanted]
            node = candidates[index - 1]
            parent = node.getparent()
            same = [node] if parent is None else [c for c in parent if isinstance(c.tag, str) and c.tag == node.tag]
            label = _local(node.tag)
            if len(same) > 1:
                label += "[%d]" % (same.index(node) + 1)
            parts.append(label)
    except (AttributeError, IndexError, ValueError):
        return _NAMESPACE_NOISE_RE.sub("", raw_path)
    return "/" + "/".join(parts)


def validate(xml_bytes, schema):
    """All problems of ``xml_bytes`` as ``ValidationIssue``s: file-level rules, well-formedness,
    processing instructions, then the XSD.  An empty list means valid."""
    issues, decodable = _check_file(xml_bytes)
    if not decodable:
        return issues
    try:
        root = etree.fromstring(bytes(xml_bytes), _parser())
    except etree.XMLSyntaxError as error:
        line = error.position[0] if error.position else None
        issues.append(ValidationIssue("", line, "not well-formed XML: %s" % error.msg))
        return issues
    tree = root.getroottree()
    for pi in tree.xpath("//processing-instruction()"):
        issues.append(ValidationIssue("", pi.sourceline, "processing instruction <?%s ...?> is not allowed" % pi.target))
    if schema is None:
        return issues
    for entry in schema._errors(tree):
        issues.append(
            ValidationIssue(_readable_path(root, entry.path), entry.line, _NAMESPACE_NOISE_RE.sub("", entry.message))
        )
    return issues


def assert_valid(xml_bytes, schema):
    """Raise ``Fa3ValidationError`` unless ``validate`` finds nothing."""
    issues = validate(xml_bytes, schema)
    if issues:
        raise Fa3ValidationError(issues)
