import datetime

import pytest

from ksef import deadlines as dl
from ksef import jpk
from ksef.jpk import RegisterDocument

D = datetime.date
NUMBER = "5265877635-20261130-0100000000A1-7C"
NUMBERED = D(2026, 11, 30)
BEFORE, ON, AFTER = D(2026, 11, 29), D(2026, 11, 30), D(2026, 12, 1)


def doc(mode=None, numbered=True, **kwargs):
    if numbered:
        kwargs.update(ksef_number=NUMBER, numbered_on=NUMBERED)
    return RegisterDocument(mode=mode, **kwargs)


@pytest.mark.parametrize("mode", [None, dl.OFFLINE24, dl.UNAVAILABILITY, dl.EMERGENCY, dl.TOTAL_FAILURE])
def test_a_number_on_the_filing_day_wins_whatever_the_mode(mode):
    for filing in (ON, AFTER):
        marking = jpk.marking(doc(mode), filing)
        assert (marking.ksef_number, marking.marker, marking.value) == (NUMBER, None, NUMBER)


@pytest.mark.parametrize("mode, marker", [
    (dl.EMERGENCY, jpk.OFF),           # art. 106nf: only the failure (emergency) mode is OFF
    (dl.OFFLINE24, jpk.DI),            # art. 106nda: DI, despite the name of the mode
    (dl.UNAVAILABILITY, jpk.DI),       # art. 106nh: DI as well
    (dl.TOTAL_FAILURE, jpk.BFK),       # art. 106ng: outside KSeF
])
def test_the_day_before_the_number_the_mode_decides(mode, marker):
    assert jpk.marking(doc(mode), BEFORE) == jpk.Marking(marker=marker)
    assert jpk.marking(doc(mode, numbered=False), AFTER) == jpk.Marking(marker=marker)


def test_documents_other_than_invoices_are_di_even_with_a_number():
    assert jpk.marking(RegisterDocument(is_invoice=False), ON).marker == jpk.DI
    assert jpk.marking(doc(is_invoice=False), AFTER).marker == jpk.DI


@pytest.mark.parametrize("reason", jpk.OUTSIDE_REASONS)
def test_invoices_issued_outside_ksef_are_bfk(reason):
    assert jpk.marking(doc(numbered=False, outside=reason), ON).marker == jpk.BFK


def test_an_online_invoice_without_a_number_has_no_lawful_marker():
    marking = jpk.marking(doc(numbered=False), ON)
    assert (marking.ksef_number, marking.marker, marking.problem, marking.value) == (None, None, jpk.PROBLEM_NOT_IN_KSEF, "")


@pytest.mark.parametrize("mode, before, on", [
    (dl.OFFLINE24, True, False),
    (dl.UNAVAILABILITY, True, False),
    (dl.EMERGENCY, False, False),      # OFF: no correction once numbered
    (dl.TOTAL_FAILURE, False, False),
    (None, False, False),
])
def test_correction_only_for_offline24_and_unavailability_filed_before_their_number(mode, before, on):
    assert jpk.needs_correction(doc(mode), BEFORE) is before
    assert jpk.needs_correction(doc(mode), ON) is on
    # not numbered yet: nothing to correct, but it will be
    assert jpk.needs_correction(doc(mode, numbered=False), BEFORE) is False
    assert jpk.awaits_correction(doc(mode, numbered=False), BEFORE) is before


def test_receipts_never_need_a_correction():
    assert not jpk.needs_correction(doc(is_invoice=False, mode=dl.OFFLINE24), BEFORE)


def test_bad_inputs():
    with pytest.raises(ValueError):
        RegisterDocument(mode="offline48")
    with pytest.raises(ValueError):
        RegisterDocument(outside="abroad")
    with pytest.raises(ValueError):
        RegisterDocument(ksef_number=NUMBER)
    with pytest.raises(TypeError):
        jpk.marking(doc(), "2026-11-30")
