import datetime
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ksef import deadlines as dl
from ksef.deadlines import KsefEvent

D = datetime.date
UTC = datetime.timezone.utc


def shared_dir():
    return Path(os.environ.get("KSEF_SHARED") or Path(__file__).resolve().parents[2] / ".." / "shared")


def official_deadline_example():
    path = shared_dir() / "ksef" / "test-vectors" / "qr-and-ksef-number-test-vectors.json"
    return json.loads(path.read_text(encoding="utf-8"))["official"]["offline_deadline_example"]["steps"]


def failure(start, end, published=None, category=dl.CATEGORY_FAILURE, event_id=None):
    return KsefEvent(category, start=start, end=end, published=published or start, event_id=event_id)


def test_mf_worked_example_from_the_vectors_file():
    issued, announced, ended, final = official_deadline_example()
    issue_date = D.fromisoformat(issued["date"])
    # step 1: offline24 invoice, deadline = next business day
    assert dl.submission_deadline(dl.OFFLINE24, issue_date) == D.fromisoformat(issued["deadline"])
    before = dl.effective_deadline(dl.OFFLINE24, issue_date, [])
    assert before.deadline == D.fromisoformat(issued["deadline"])
    assert before.reason == dl.REASON_OFFLINE24 and before.event is None
    # step 2: the failure is announced and still going on -> deadline unknown
    ongoing = failure(D.fromisoformat(announced["date"]), None)
    during = dl.effective_deadline(dl.OFFLINE24, issue_date, [ongoing])
    assert during.deadline is None and not during.is_known and during.obligation
    assert during.reason == dl.REASON_FAILURE_ONGOING and during.event is ongoing
    # steps 3-4: the failure ends on Saturday -> 7 business days later
    ended_event = failure(D.fromisoformat(announced["date"]), D.fromisoformat(ended["date"]), event_id=1)
    after = dl.effective_deadline(dl.OFFLINE24, issue_date, [ended_event])
    assert after.deadline == D.fromisoformat(final["date"]) == D(2025, 7, 22)
    assert after.reason == dl.REASON_FAILURE and after.event is ended_event


def test_submission_deadline_per_mode():
    assert dl.submission_deadline(dl.OFFLINE24, D(2025, 7, 11)) == D(2025, 7, 14)          # Fri -> Mon
    assert dl.submission_deadline(dl.UNAVAILABILITY, D(2025, 7, 8), D(2025, 7, 10)) == D(2025, 7, 11)
    assert dl.submission_deadline(dl.UNAVAILABILITY, D(2025, 12, 22), D(2025, 12, 23)) == D(2025, 12, 29)
    assert dl.submission_deadline(dl.EMERGENCY, D(2025, 7, 9), D(2025, 7, 12)) == D(2025, 7, 22)
    assert dl.submission_deadline(dl.TOTAL_FAILURE, D(2025, 7, 9)) is None


@pytest.mark.parametrize("mode", [dl.UNAVAILABILITY, dl.EMERGENCY])
def test_submission_deadline_without_event_end_is_an_error(mode):
    with pytest.raises(ValueError, match="event_end"):
        dl.submission_deadline(mode, D(2025, 7, 9))


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="unknown offline mode"):
        dl.submission_deadline("offline", D(2025, 7, 9))
    with pytest.raises(ValueError, match="unknown offline mode"):
        dl.effective_deadline("online", D(2025, 7, 9))


def test_event_end_datetime_is_read_in_polish_time():
    # 23:30 UTC on Fri 11 Jul is 01:30 on Sat 12 Jul in Warsaw (CEST)
    late_utc = datetime.datetime(2025, 7, 11, 23, 30, tzinfo=UTC)
    assert dl.submission_deadline(dl.EMERGENCY, D(2025, 7, 9), late_utc) == D(2025, 7, 22)
    # naive datetimes are UTC (Odoo convention)
    assert dl.submission_deadline(dl.EMERGENCY, D(2025, 7, 9), late_utc.replace(tzinfo=None)) == D(2025, 7, 22)
    # in winter 23:30 UTC is 00:30 CET of the next day
    assert dl.polish_date(datetime.datetime(2025, 1, 10, 23, 30)) == D(2025, 1, 11)
    assert dl.polish_date(datetime.datetime(2025, 1, 10, 22, 30)) == D(2025, 1, 10)


def test_fallback_eu_rule_agrees_with_tz_database():
    # the fallback used when no tz database exists must match zoneinfo around both DST switches
    for moment in (datetime.datetime(2025, 3, 30, 0, 59, tzinfo=UTC), datetime.datetime(2025, 3, 30, 1, 0, tzinfo=UTC),
                   datetime.datetime(2025, 10, 26, 0, 59, tzinfo=UTC), datetime.datetime(2025, 10, 26, 1, 0, tzinfo=UTC),
                   datetime.datetime(2026, 7, 1, 22, 30, tzinfo=UTC), datetime.datetime(2026, 12, 31, 23, 30, tzinfo=UTC)):
        assert dl._warsaw_offset(moment) == moment.astimezone(dl._WARSAW).utcoffset()


def test_later_failure_within_the_window_restarts_the_count():
    first = failure(D(2025, 7, 9), D(2025, 7, 12))                  # -> 22 Jul
    second = failure(D(2025, 7, 21), D(2025, 7, 23))                # announced inside the window
    result = dl.effective_deadline(dl.OFFLINE24, D(2025, 7, 8), [second, first])   # order does not matter
    assert result.deadline == D(2025, 8, 1)                         # 7 business days after Wed 23 Jul
    assert result.event is second


def test_failure_announced_after_the_window_changes_nothing():
    first = failure(D(2025, 7, 9), D(2025, 7, 12))
    too_late = failure(D(2025, 7, 23), D(2025, 7, 24))
    result = dl.effective_deadline(dl.OFFLINE24, D(2025, 7, 8), [first, too_late])
    assert result.deadline == D(2025, 7, 22) and result.event is first


def test_failure_after_an_offline24_deadline_passed_does_not_revive_it():
    late = failure(D(2025, 7, 10), D(2025, 7, 11))
    result = dl.effective_deadline(dl.OFFLINE24, D(2025, 7, 8), [late])
    assert result.deadline == D(2025, 7, 9) and result.reason == dl.REASON_OFFLINE24
    assert result.is_overdue(D(2025, 7, 10)) and not result.is_overdue(D(2025, 7, 9))
    assert result.business_days_left(D(2025, 7, 8)) == 1


def test_failure_over_before_the_invoice_was_issued_is_ignored():
    old = failure(D(2025, 7, 1), D(2025, 7, 3))
    assert dl.effective_deadline(dl.OFFLINE24, D(2025, 7, 8), [old]).deadline == D(2025, 7, 9)


def test_unavailability_then_failure_moves_the_deadline():
    maintenance = KsefEvent(dl.CATEGORY_MAINTENANCE, start=D(2025, 7, 7), end=D(2025, 7, 8), published=D(2025, 7, 1))
    alone = dl.effective_deadline(dl.UNAVAILABILITY, D(2025, 7, 8), [maintenance])
    assert alone.deadline == D(2025, 7, 9) and alone.event is maintenance and alone.reason == dl.REASON_UNAVAILABILITY
    crash = failure(D(2025, 7, 9), D(2025, 7, 10))
    moved = dl.effective_deadline(dl.UNAVAILABILITY, D(2025, 7, 8), [maintenance, crash])
    assert moved.deadline == D(2025, 7, 21) and moved.event is crash and moved.reason == dl.REASON_FAILURE


def test_short_failure_inside_a_long_unavailability_never_shortens_the_deadline():
    maintenance = KsefEvent(dl.CATEGORY_MAINTENANCE, start=D(2025, 7, 1), end=D(2025, 7, 31), published=D(2025, 6, 20))
    blip = failure(D(2025, 7, 2), D(2025, 7, 2))
    result = dl.effective_deadline(dl.UNAVAILABILITY, D(2025, 7, 1), [blip], mode_event=maintenance)
    assert result.deadline == D(2025, 8, 1) and result.event is maintenance


def test_ongoing_unavailability_leaves_the_deadline_unknown():
    maintenance = KsefEvent(dl.CATEGORY_MAINTENANCE, start=D(2025, 7, 7), published=D(2025, 7, 1))
    result = dl.effective_deadline(dl.UNAVAILABILITY, D(2025, 7, 8), [maintenance])
    assert result.deadline is None and result.reason == dl.REASON_UNAVAILABILITY_ONGOING
    assert not result.is_known and result.business_days_left(D(2025, 7, 8)) is None


def test_maintenance_does_not_move_an_offline24_deadline():
    maintenance = KsefEvent(dl.CATEGORY_MAINTENANCE, start=D(2025, 7, 9), end=D(2025, 7, 15), published=D(2025, 7, 8))
    assert dl.effective_deadline(dl.OFFLINE24, D(2025, 7, 8), [maintenance]).deadline == D(2025, 7, 9)


def test_emergency_mode_finds_its_failure_among_the_events():
    crash = failure(D(2025, 7, 7), D(2025, 7, 9))
    result = dl.effective_deadline(dl.EMERGENCY, D(2025, 7, 8), [crash])
    assert result.deadline == D(2025, 7, 18) and result.event is crash


def test_event_mode_without_its_event_is_an_error():
    unrelated = failure(D(2025, 6, 1), D(2025, 6, 2))
    with pytest.raises(ValueError, match="mode_event"):
        dl.effective_deadline(dl.EMERGENCY, D(2025, 7, 8), [unrelated])
    with pytest.raises(ValueError, match="mode_event"):
        dl.effective_deadline(dl.UNAVAILABILITY, D(2025, 7, 8), [])


def test_emergency_ongoing_failure_then_second_failure_still_unknown():
    crash = failure(D(2025, 7, 7), None)
    later = failure(D(2025, 7, 20), D(2025, 7, 21))
    result = dl.effective_deadline(dl.EMERGENCY, D(2025, 7, 8), [crash, later], mode_event=crash)
    assert result.deadline is None and result.event is crash and result.reason == dl.REASON_FAILURE_ONGOING


def test_events_announced_while_deadline_unknown_still_count():
    crash = failure(D(2025, 7, 7), D(2025, 7, 25), published=D(2025, 7, 7))
    # announced on 20 Jul, long after the offline24 deadline, but while the first failure ran
    second = failure(D(2025, 7, 20), D(2025, 7, 30), published=D(2025, 7, 20))
    result = dl.effective_deadline(dl.OFFLINE24, D(2025, 7, 8), [crash, second])
    assert result.deadline == D(2025, 8, 8) and result.event is second


@pytest.mark.parametrize("mode", [dl.OFFLINE24, dl.UNAVAILABILITY, dl.EMERGENCY])
def test_total_failure_lifts_the_obligation(mode):
    maintenance = KsefEvent(dl.CATEGORY_MAINTENANCE, start=D(2025, 7, 8), end=D(2025, 7, 8), published=D(2025, 7, 1))
    crash = failure(D(2025, 7, 8), D(2025, 7, 9))
    total = failure(D(2025, 7, 9), None, category=dl.CATEGORY_TOTAL_FAILURE)
    result = dl.effective_deadline(mode, D(2025, 7, 8), [maintenance, crash, total])
    assert result.deadline is None and not result.obligation and result.is_known
    assert result.reason == dl.REASON_TOTAL_FAILURE and result.event is total
    assert not result.is_overdue(D(2030, 1, 1))


def test_total_failure_announced_after_the_deadline_does_not_lift_it():
    total = failure(D(2025, 7, 10), D(2025, 7, 11), category=dl.CATEGORY_TOTAL_FAILURE)
    result = dl.effective_deadline(dl.OFFLINE24, D(2025, 7, 8), [total])
    assert result.obligation and result.deadline == D(2025, 7, 9)


def test_total_failure_mode_has_no_deadline():
    result = dl.effective_deadline(dl.TOTAL_FAILURE, D(2025, 7, 8))
    assert result.deadline is None and not result.obligation


def test_fallback_mode_from_latarnia_status():
    assert dl.fallback_mode("AVAILABLE") == dl.OFFLINE24
    assert dl.fallback_mode("MAINTENANCE") == dl.UNAVAILABILITY
    assert dl.fallback_mode("FAILURE") == dl.EMERGENCY
    assert dl.fallback_mode("total_failure") == dl.TOTAL_FAILURE
    assert dl.fallback_mode(None) == dl.OFFLINE24           # Latarnia down is not a KSeF failure
    assert dl.fallback_mode("SOMETHING_NEW") == dl.OFFLINE24


def test_event_validation():
    with pytest.raises(ValueError, match="category"):
        KsefEvent("OUTAGE", start=D(2025, 7, 1))
    with pytest.raises(ValueError, match="publication"):
        KsefEvent(dl.CATEGORY_FAILURE)
    with pytest.raises(TypeError):
        KsefEvent(dl.CATEGORY_FAILURE, start="2025-07-01")
    with pytest.raises(TypeError, match="KsefEvent"):
        dl.effective_deadline(dl.OFFLINE24, D(2025, 7, 8), [{"category": "FAILURE"}])


def test_event_from_latarnia_message():
    message = {"id": "K/2025/AWR/01", "eventId": 7, "category": "FAILURE", "type": "FAILURE_END",
               "title": "Awaria", "start": "2025-07-09T08:00:00Z", "end": "2025-07-11T22:30:00+00:00",
               "published": "2025-07-09T08:05:00Z"}
    event = KsefEvent.from_latarnia(message)
    assert event.event_id == 7 and event.announced_on == D(2025, 7, 9)
    assert event.end_date == D(2025, 7, 12)   # 00:30 CEST on Saturday
    assert dl.effective_deadline(dl.OFFLINE24, D(2025, 7, 8), [event]).deadline == D(2025, 7, 22)
    assert KsefEvent.from_latarnia(dict(message, end=None)).ongoing


# ---- the moment of issue against the moments of an event (issue 15, point 8) -----------------

WARSAW = ZoneInfo("Europe/Warsaw")


def at(day, hour, minute=0):
    """A Warsaw wall-clock moment (aware)."""
    return datetime.datetime(2026, 12, day, hour, minute, tzinfo=WARSAW)


# Wednesday 2 December 2026: next business day Thursday 3rd; 7 business days after the 2nd: 11th.
def test_failure_ended_earlier_the_same_day_does_not_move_an_offline24_deadline():
    ended = failure(at(2, 8), at(2, 10), published=at(2, 8))
    result = dl.effective_deadline(dl.OFFLINE24, D(2026, 12, 2), [ended], issued_at=at(2, 11))
    assert (result.deadline, result.reason) == (D(2026, 12, 3), dl.REASON_OFFLINE24)
    # Without the moment (dates only) the same-day failure still counts: the old behaviour.
    assert dl.effective_deadline(dl.OFFLINE24, D(2026, 12, 2), [ended]).deadline == D(2026, 12, 11)


def test_failure_announced_later_the_same_day_moves_the_deadline():
    later = failure(at(2, 9, 30), at(2, 10), published=at(2, 9, 30))
    result = dl.effective_deadline(dl.OFFLINE24, D(2026, 12, 2), [later], issued_at=at(2, 9))
    assert (result.deadline, result.reason) == (D(2026, 12, 11), dl.REASON_FAILURE)


@pytest.mark.parametrize("end_minute, moved", [(59, False), (0, True), (1, True)])
def test_boundary_end_against_the_moment_of_issue(end_minute, moved):
    """Ending one minute before, exactly at, or one minute after the issue at 12:00."""
    end = at(2, 11, 59) if end_minute == 59 else at(2, 12, end_minute)
    event = failure(at(2, 8), end, published=at(2, 8))
    result = dl.effective_deadline(dl.OFFLINE24, D(2026, 12, 2), [event], issued_at=at(2, 12))
    assert result.deadline == (D(2026, 12, 11) if moved else D(2026, 12, 3))


def test_moments_compare_across_time_zones_and_naive_utc():
    # 10:00 Warsaw = 09:00 UTC: a failure ending then is over before an invoice issued at 09:30 UTC
    event = failure(at(2, 8), at(2, 10), published=at(2, 8))
    issued_naive_utc = datetime.datetime(2026, 12, 2, 9, 30)
    assert dl.effective_deadline(dl.OFFLINE24, D(2026, 12, 2), [event], issued_at=issued_naive_utc).deadline \
        == D(2026, 12, 3)
    issued_before = datetime.datetime(2026, 12, 2, 8, 30)   # 09:30 Warsaw, the failure still going on
    assert dl.effective_deadline(dl.OFFLINE24, D(2026, 12, 2), [event], issued_at=issued_before).deadline \
        == D(2026, 12, 11)


def test_late_evening_end_is_the_next_polish_day():
    # Ends 23:30 UTC on the 2nd = 00:30 on the 3rd in Warsaw: seven business days from the 3rd.
    event = failure(at(2, 20), datetime.datetime(2026, 12, 2, 23, 30, tzinfo=UTC), published=at(2, 20))
    result = dl.effective_deadline(dl.OFFLINE24, D(2026, 12, 2), [event], issued_at=at(2, 19))
    assert result.deadline == D(2026, 12, 14)


def test_date_only_end_still_compares_by_date():
    event = failure(D(2026, 12, 2), D(2026, 12, 2))
    assert dl.effective_deadline(dl.OFFLINE24, D(2026, 12, 2), [event], issued_at=at(2, 23)).deadline \
        == D(2026, 12, 11)
    assert dl.effective_deadline(dl.OFFLINE24, D(2026, 12, 3), [event], issued_at=at(3, 8)).deadline \
        == D(2026, 12, 4)
