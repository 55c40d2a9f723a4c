"""FA(3) parts beyond the ordinary VAT invoice: advance and settlement invoices and third parties.

* ``Podmiot3`` (``ThirdParty``): another party of the invoice than the seller and the buyer, with
  its role (XSD ``TRolaPodmiotu3``: 1 factor, 2 recipient — a unit of the buyer, 3 original entity,
  4 additional buyer, 5 issuer, 6 payer, 7/8 local-government issuer/recipient, 9/10 VAT-group
  member issuer/recipient, 11 employee) or ``RolaInna`` with a description.
* ``FakturaZaliczkowa`` (``AdvanceInvoice``): on a settlement invoice (``ROZ``, art. 106f ust. 3 of
  the VAT act) and its corrections, each advance invoice it settles — by KSeF number when it was
  issued in KSeF, otherwise ``NrKSeFZN`` + its number.
* ``Zamowienie`` (``Order``): on an advance invoice (``ZAL``, art. 106f ust. 1 pkt 4), the order or
  contract the advance is paid for: its gross value and its lines, in the invoice's currency.

Kept apart from ``fa3`` (which calls the ``build_*`` functions below at their XSD places) so that
the ordinary invoice's builder stays readable.  Same conventions: plain data in, Fa3Error out.
"""
from dataclasses import dataclass, field
from decimal import Decimal

from . import fa3
from .fa3_party import Party

# TRolaPodmiotu3 codes.
ROLE_FACTOR = 1
ROLE_RECIPIENT = 2
ROLE_ORIGINAL_ENTITY = 3
ROLE_ADDITIONAL_BUYER = 4
ROLE_ISSUER = 5
ROLE_PAYER = 6
THIRD_PARTY_ROLES = tuple(range(1, 12))

# Kinds that may name the advance invoices they settle (FakturaZaliczkowa), and those that must.
ADVANCE_REFERENCE_KINDS = ("ZAL", "ROZ", "KOR_ZAL", "KOR_ROZ")
SETTLEMENT_KINDS = ("ROZ",)
# Kinds that may carry the order of an advance (Zamowienie).
ORDER_KINDS = ("ZAL", "KOR_ZAL")


@dataclass(kw_only=True)
class ThirdParty(Party):
    """Podmiot3: a ``Party`` (identification as for ``fa3.Buyer``: one kind, or none: BrakID=1);
    then either ``role`` (a ``TRolaPodmiotu3`` code) or ``other_role`` (RolaInna=1 + OpisRoli)."""

    role: int | None = None
    other_role: str | None = None
    share: Decimal | None = None  # Udzial, % of an additional buyer (role 4)


@dataclass(kw_only=True)
class AdvanceInvoice:
    """Fa/FakturaZaliczkowa: ``ksef_number`` when the advance invoice was issued in KSeF,
    otherwise ``number`` (NrKSeFZN=1 + NrFaZaliczkowej: issued outside KSeF)."""

    ksef_number: str | None = None
    number: str | None = None


@dataclass(kw_only=True)
class OrderLine:
    """Fa/Zamowienie/ZamowienieWiersz."""

    name: str  # P_7Z
    net_amount: Decimal  # P_11NettoZ
    rate: str  # P_12Z
    vat_amount: Decimal | None = None  # P_11VatZ
    quantity: Decimal | None = None  # P_8BZ
    unit: str | None = None  # P_8AZ
    unit_price: Decimal | None = None  # P_9AZ
    code: str | None = None  # IndeksZ
    gtu: str | None = None  # GTUZ
    annex15: bool = False  # P_12Z_Zal_15
    before_correction: bool = False  # StanPrzedZ


@dataclass(kw_only=True)
class Order:
    """Fa/Zamowienie: ``total`` is the order's value with VAT (WartoscZamowienia)."""

    total: Decimal
    lines: list = field(default_factory=list)  # of OrderLine, 1..10000


def _items(items, name, kind, kind_text):
    """(where, item) for each of the 0..100 ``items`` the XSD allows, each checked to be a ``kind``."""
    if len(items) > 100:
        raise fa3.Fa3Error("%s: FA(3) takes at most 100, got %d" % (name, len(items)))
    for index, item in enumerate(items):
        where = "%s[%d]" % (name, index)
        if not isinstance(item, kind):
            raise fa3.Fa3Error("%s must be %s" % (where, kind_text))
        yield where, item


def build_third_parties(root, parties):
    """Podmiot3 elements (0..100), after Podmiot2."""
    for where, party in _items(parties, "third_parties", ThirdParty, "a ThirdParty"):
        podmiot = fa3._sub(root, "Podmiot3")
        fa3._build_identification(podmiot, party, where)
        if party.address is not None:
            fa3._build_address(podmiot, "Adres", party.address, where + ".address")
        fa3._build_contact(podmiot, party, where)
        other_role = fa3._text(party.other_role, where + ".other_role")
        if (party.role is None) == (other_role is None):
            raise fa3.Fa3Error("%s needs exactly one of role (a TRolaPodmiotu3 code) or other_role" % where)
        if party.role is not None:
            if party.role not in THIRD_PARTY_ROLES:
                raise fa3.Fa3Error("%s.role must be a TRolaPodmiotu3 code 1..11, got %r" % (where, party.role))
            fa3._sub(podmiot, "Rola", str(party.role))
        else:
            fa3._sub(podmiot, "RolaInna", "1")
            fa3._sub(podmiot, "OpisRoli", other_role)
        if party.share is not None:
            fa3._sub(podmiot, "Udzial", fa3._format_decimal(party.share, where + ".share", 6, 0))
        fa3._sub_opt(podmiot, "NrKlienta", fa3._text(party.customer_number, where + ".customer_number"))


def build_advance_invoices(fa, invoice):
    """FakturaZaliczkowa elements (0..100), after DodatkowyOpis."""
    advances = invoice.advance_invoices
    if advances and invoice.kind not in ADVANCE_REFERENCE_KINDS:
        raise fa3.Fa3Error("advance_invoices are only for %s invoices (kind=%r)" % (", ".join(ADVANCE_REFERENCE_KINDS), invoice.kind))
    if invoice.kind in SETTLEMENT_KINDS and not advances:
        raise fa3.Fa3Error("a settlement (ROZ) invoice must name the advance invoices it settles (advance_invoices)")
    for where, advance in _items(advances, "advance_invoices", AdvanceInvoice, "an AdvanceInvoice"):
        ksef_number = fa3._text(advance.ksef_number, where + ".ksef_number")
        number = fa3._text(advance.number, where + ".number")
        element = fa3._sub(fa, "FakturaZaliczkowa")
        if ksef_number is not None:
            if number is not None:
                raise fa3.Fa3Error("%s: give the KSeF number or, for one issued outside KSeF, its number — not both" % where)
            fa3._sub(element, "NrKSeFFaZaliczkowej", ksef_number)
        elif number is not None:
            fa3._sub(element, "NrKSeFZN", "1")
            fa3._sub(element, "NrFaZaliczkowej", number)
        else:
            raise fa3.Fa3Error("%s has neither a KSeF number nor a number" % where)


def build_order(fa, invoice):
    """Zamowienie, after Platnosc (WarunkiTransakcji is not produced)."""
    order = invoice.order
    if order is None:
        return
    if invoice.kind not in ORDER_KINDS:
        raise fa3.Fa3Error("order (Zamowienie) is only for advance invoices ZAL/KOR_ZAL (kind=%r)" % invoice.kind)
    if not isinstance(order, Order):
        raise fa3.Fa3Error("order must be an Order")
    if not order.lines:
        raise fa3.Fa3Error("order.lines: an order needs at least one line")
    if len(order.lines) > 10000:
        raise fa3.Fa3Error("order.lines: at most 10000, got %d" % len(order.lines))
    zamowienie = fa3._sub(fa, "Zamowienie")
    fa3._sub(zamowienie, "WartoscZamowienia", fa3._amount(order.total, "order.total"))
    for index, line in enumerate(order.lines):
        where = "order.lines[%d]" % index
        if not isinstance(line, OrderLine):
            raise fa3.Fa3Error("%s must be an OrderLine" % where)
        row = fa3._sub(zamowienie, "ZamowienieWiersz")
        fa3._sub(row, "NrWierszaZam", str(index + 1))
        name = fa3._text(line.name, where + ".name", True)
        if len(name) > fa3.MAX_LINE_NAME:
            raise fa3.Fa3Error("%s.name has %d characters; KSeF accepts at most %d" % (where, len(name), fa3.MAX_LINE_NAME))
        fa3._sub(row, "P_7Z", name)
        fa3._sub_opt(row, "IndeksZ", fa3._text(line.code, where + ".code"))
        fa3._sub_opt(row, "P_8AZ", fa3._text(line.unit, where + ".unit"))
        if line.quantity is not None:
            fa3._sub(row, "P_8BZ", fa3._quantity(line.quantity, where + ".quantity"))
        if line.unit_price is not None:
            fa3._sub(row, "P_9AZ", fa3._price(line.unit_price, where + ".unit_price"))
        fa3._sub(row, "P_11NettoZ", fa3._amount(line.net_amount, where + ".net_amount"))
        if line.vat_amount is not None:
            fa3._sub(row, "P_11VatZ", fa3._amount(line.vat_amount, where + ".vat_amount"))
        if line.rate not in fa3.RATE_TOTAL_FIELDS:
            raise fa3.Fa3Error("%s.rate %r is not a KSeF rate code" % (where, line.rate))
        fa3._sub(row, "P_12Z", line.rate)
        if line.annex15:
            fa3._sub(row, "P_12Z_Zal_15", "1")
        fa3._sub_opt(row, "GTUZ", fa3._text(line.gtu, where + ".gtu"))
        if line.before_correction:
            fa3._sub(row, "StanPrzedZ", "1")
