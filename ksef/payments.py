"""KSeF numbers in payments (VAT act art. 108g) and collective identifiers (IZ).

A B2B payment names the KSeF number of the invoice it pays, or one collective identifier (IZ)
that KSeF generates for up to 500 invoices of one seller (API 2.7, ``/collective-identifiers``).
An IZ reads ``9999999999-IZRRRRMM-FFFFFFFFFFFF-FF``: the seller's NIP, ``IZ``, year and month of
creation, 12 uppercase hex digits, and the same CRC-8 as a KSeF number (polynomial 0x07, initial
value 0) over the first 32 characters (open-api-2.7 ``POST /collective-identifiers``).
"""
import dataclasses
import datetime
import os
import re

from .ksef_number import crc8, is_valid_ksef_number

MAX_IZ_INVOICES = 500            # invoices per collective identifier
MAX_IZ_PER_INVOICE = 132         # collective identifiers one invoice may belong to (per context)
IZ_LENGTH = 35
IZ_DESCRIPTION_MAX = 512

_KSEF_NUMBER_IN_TEXT = re.compile(r"[1-9]\d{9}-\d{8}-[0-9A-F]{12}-[0-9A-F]{2}")
_IZ_RE = re.compile(r"^([1-9]\d{9})-IZ(\d{4})(\d{2})-([0-9A-F]{12})-([0-9A-F]{2})$")
_IZ_IN_TEXT = re.compile(r"[1-9]\d{9}-IZ\d{6}-[0-9A-F]{12}-[0-9A-F]{2}")


class CollectiveIdentifierError(ValueError):
    """A request for a collective identifier that KSeF would refuse. ``code`` says why:
    ``empty``, ``too_many``, ``invalid_number``, ``duplicate``, ``several_sellers``."""

    def __init__(self, code, message, numbers=()):
        super().__init__(message)
        self.code = code
        self.numbers = list(numbers)


def find_ksef_numbers(text):
    """The valid KSeF numbers (CRC checked) written in ``text`` (a bank statement label...), in
    order, each once. Case-insensitive: banks often upper-case what they pass on."""
    found = []
    for candidate in _KSEF_NUMBER_IN_TEXT.findall((text or "").upper()):
        if is_valid_ksef_number(candidate) and candidate not in found:
            found.append(candidate)
    return found


def make_collective_identifier(nip, date, hex_part=None):
    if isinstance(date, datetime.datetime):
        date = date.date()
    hex_part = hex_part or os.urandom(6).hex().upper()
    body = "%s-IZ%s-%s" % (nip, date.strftime("%Y%m"), hex_part)
    return "%s-%02X" % (body, crc8(body))


def is_valid_collective_identifier(value):
    if not isinstance(value, str) or len(value) != IZ_LENGTH:
        return False
    match = _IZ_RE.match(value)
    if not match or not 1 <= int(match.group(3)) <= 12:
        return False
    return "%02X" % crc8(value[:32]) == value[33:]


def find_collective_identifiers(text):
    found = []
    for candidate in _IZ_IN_TEXT.findall((text or "").upper()):
        if is_valid_collective_identifier(candidate) and candidate not in found:
            found.append(candidate)
    return found


@dataclasses.dataclass(frozen=True)
class CollectiveInvoice:
    ksef_number: str
    amount: float = None        # payment for this invoice (optional, with its currency)
    currency: str = None
    description: str = None

    def to_json(self):
        data = {"ksefNumber": self.ksef_number}
        if self.amount is not None:
            data["payment"] = {"amount": round(float(self.amount), 2), "currency": self.currency}
        if self.description:
            data["description"] = self.description[:IZ_DESCRIPTION_MAX]
        return data


def check_collective_request(invoices):
    """Raise ``CollectiveIdentifierError`` for what KSeF refuses: no invoice, more than 500, a
    malformed KSeF number, the same invoice twice, invoices of several sellers (the identifier
    groups invoices of one seller: its NIP opens the KSeF number)."""
    numbers = [invoice.ksef_number for invoice in invoices]
    if not numbers:
        raise CollectiveIdentifierError("empty", "a collective identifier needs at least one invoice")
    if len(numbers) > MAX_IZ_INVOICES:
        raise CollectiveIdentifierError("too_many", "%s invoices; a collective identifier takes at most %s"
                                        % (len(numbers), MAX_IZ_INVOICES))
    bad = [number for number in numbers if not is_valid_ksef_number(number)]
    if bad:
        raise CollectiveIdentifierError("invalid_number", "not a KSeF number: %s" % ", ".join(map(str, bad)), bad)
    repeated = sorted({number for number in numbers if numbers.count(number) > 1})
    if repeated:
        raise CollectiveIdentifierError("duplicate", "the same invoice twice: %s" % ", ".join(repeated), repeated)
    sellers = sorted({number[:10] for number in numbers})
    if len(sellers) > 1:
        raise CollectiveIdentifierError("several_sellers", "invoices of several sellers: %s" % ", ".join(sellers),
                                        sellers)
    for invoice in invoices:
        if (invoice.amount is None) != (invoice.currency is None):
            raise CollectiveIdentifierError("invalid_number", "%s: a payment needs both amount and currency"
                                            % invoice.ksef_number, [invoice.ksef_number])


def create_collective_identifier(client, invoices):
    """``POST /collective-identifiers`` on an authenticated ``ksef.client.KsefClient``; returns
    the identifier. Checked first: KSeF is not asked for what it would refuse."""
    check_collective_request(invoices)
    body = {"invoices": [invoice.to_json() for invoice in invoices]}
    data = client.call_api("POST", "/collective-identifiers", json=body, expect=(201,))
    return data["collectiveIdentifierNumber"]


def collective_identifier_invoices(client, number, page_size=200):
    """The invoices of identifier ``number`` (every page): dicts as KSeF returns them."""
    return list(client.continued("/collective-identifiers/%s/invoices" % number, "invoices", page_size))


def collective_identifiers_of_invoice(client, ksef_number, page_size=200):
    """The identifiers an invoice belongs to (every page)."""
    return list(client.continued("/collective-identifiers/ksef/%s" % ksef_number, "collectiveIdentifiers",
                                 page_size))
