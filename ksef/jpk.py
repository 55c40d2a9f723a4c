"""JPK_VAT (JPK_V7M(3) / JPK_V7K(3)) KSeF markers of sales documents.

Since 1 February 2026 every line of the JPK_VAT sales register carries either the document's
KSeF number or exactly one marker saying why there is none, judged as of the day the JPK file
is filed (regulation of the Minister of Finance of 15.10.2019, Dz.U. poz. 1988 as amended; the
Ministry's JPK_VAT(3) brochure):

* the KSeF number: the invoice has one on the filing day, whatever mode it was issued in;
* ``OFF``: only an invoice issued in KSeF failure (emergency) mode, art. 106nf ust. 1 of the VAT
  act, still without a number on the filing day; no correction once it is numbered;
* ``BFK``: an invoice issued outside KSeF: during a total failure (art. 106ng), a B2C invoice
  issued outside KSeF, an invoice from before the KSeF obligation;
* ``DI``: a document other than an invoice (receipt, internal document), and also an offline24
  (art. 106nda) or unavailability (art. 106nh ust. 1) invoice still without a number on the
  filing day; the filed JPK must then be corrected once the invoice gets its number.

Pure functions of their inputs: no clock, no Odoo.
"""
import dataclasses
import datetime

from . import deadlines

OFF = "OFF"
BFK = "BFK"
DI = "DI"
MARKERS = (OFF, BFK, DI)

# Why an invoice is outside KSeF (BFK) although not issued in a total failure.
OUTSIDE_B2C = "b2c"
OUTSIDE_BEFORE_OBLIGATION = "before_obligation"
OUTSIDE_REASONS = (OUTSIDE_B2C, OUTSIDE_BEFORE_OBLIGATION)

# Offline modes whose invoices filed without a number need a JPK correction once numbered.
CORRECTION_MODES = (deadlines.OFFLINE24, deadlines.UNAVAILABILITY)

# Why a document has neither a number nor a marker on a filing day.
PROBLEM_NOT_IN_KSEF = "not_in_ksef"


@dataclasses.dataclass(frozen=True)
class RegisterDocument:
    """What the marker of one sales document depends on.

    ``is_invoice``: False for receipts and other non-invoice documents.
    ``mode``: the offline mode it was issued in (``ksef.deadlines`` constants) or None (online).
    ``ksef_number`` / ``numbered_on``: the KSeF number and the day (Polish time) KSeF assigned it.
    ``outside``: one of ``OUTSIDE_REASONS`` for an invoice deliberately issued outside KSeF.
    """
    is_invoice: bool = True
    mode: str = None
    ksef_number: str = None
    numbered_on: datetime.date = None
    outside: str = None

    def __post_init__(self):
        if self.mode is not None and self.mode not in deadlines.MODES:
            raise ValueError("unknown offline mode %r" % self.mode)
        if self.outside is not None and self.outside not in OUTSIDE_REASONS:
            raise ValueError("unknown reason for an invoice outside KSeF %r" % self.outside)
        if self.ksef_number and self.numbered_on is None:
            raise ValueError("a KSeF number needs the day it was assigned (numbered_on)")


@dataclasses.dataclass(frozen=True)
class Marking:
    """The register value of a document on a filing day: ``ksef_number`` or ``marker`` (never
    both), or ``problem`` when neither applies (an invoice that should be in KSeF and is not)."""
    ksef_number: str = None
    marker: str = None
    problem: str = None

    @property
    def value(self):
        return self.ksef_number or self.marker or ""


def marking(document, filing_date):
    """The ``Marking`` of ``document`` in a JPK_VAT filed on ``filing_date``."""
    if not isinstance(filing_date, datetime.date):
        raise TypeError("filing_date must be a date")
    if not document.is_invoice:
        return Marking(marker=DI)
    if document.ksef_number and document.numbered_on <= filing_date:
        return Marking(ksef_number=document.ksef_number)
    if document.mode == deadlines.TOTAL_FAILURE or document.outside:
        return Marking(marker=BFK)
    if document.mode == deadlines.EMERGENCY:
        return Marking(marker=OFF)
    if document.mode in CORRECTION_MODES:
        return Marking(marker=DI)
    return Marking(problem=PROBLEM_NOT_IN_KSEF)


def needs_correction(document, filing_date):
    """True when the JPK_VAT filed on ``filing_date`` must be corrected for ``document``: it
    went in as ``DI`` being an offline24 / unavailability invoice, and it has its KSeF number now.
    (``OFF`` invoices need no correction; ``BFK`` ones never get a number in the register.)"""
    if not document.is_invoice or document.mode not in CORRECTION_MODES or not document.ksef_number:
        return False
    return marking(document, filing_date).marker == DI


def awaits_correction(document, filing_date):
    """True when the document went into the JPK filed on ``filing_date`` as ``DI`` and, still
    without its number, will require a correction once numbered."""
    return (document.is_invoice and document.mode in CORRECTION_MODES and not document.ksef_number
            and marking(document, filing_date).marker == DI)
