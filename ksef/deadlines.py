"""Offline modes and the deadline for sending an offline invoice to KSeF (the Ministry's
ksef-docs ``tryby-offline.md``, ``offline/automatyczne-okreslanie-trybu-offline.md``,
``offline/korekta-techniczna.md``; Latarnia: VAT act art. 106ne and the official clients).

All the rules live here so the Odoo side only stores facts (mode, issue date, announced events)
and asks for the answer:

- offline24: the next business day after the issue date (``P_1``);
- unavailability (announced maintenance): the next business day after the unavailability ends;
- emergency (announced failure): 7 business days after the failure ends;
- total failure: no obligation to send at all.

And the interactions ("Termin przesłania faktury do KSeF przy kolejnych zdarzeniach"):

- a failure announced while an offline24 / unavailability invoice waits moves its deadline to
  7 business days after that failure ends;
- a further failure announced within the 7-day window restarts the count from its end;
- a total failure announced while the invoice waits lifts the obligation.

The deadline is a compliance alarm, not an API check: KSeF still accepts late invoices (§1.6).

Dates: ``issue_date`` is the calendar date of ``P_1``. Event times may be dates (taken as Polish
calendar dates) or datetimes; an aware datetime is converted to Warsaw time, a naive one is taken
as UTC (Odoo stores naive UTC) and converted too, because a failure ending at 23:30 UTC ends on
the next Polish day.
"""
import dataclasses
import datetime

from . import latarnia
from .calendar import add_business_days, business_days_between, next_business_day

OFFLINE24 = "offline24"
UNAVAILABILITY = "unavailability"
EMERGENCY = "emergency"
TOTAL_FAILURE = "total_failure"
MODES = (OFFLINE24, UNAVAILABILITY, EMERGENCY, TOTAL_FAILURE)

# Latarnia message categories (the official C# client's ``KSeF.Client.Core/Models/Lighthouse``)
CATEGORY_FAILURE = "FAILURE"
CATEGORY_TOTAL_FAILURE = "TOTAL_FAILURE"
CATEGORY_MAINTENANCE = "MAINTENANCE"
CATEGORIES = (CATEGORY_FAILURE, CATEGORY_TOTAL_FAILURE, CATEGORY_MAINTENANCE)

# Latarnia /status values (the official C# client's ``Models/Lighthouse``): their home is the Latarnia wire format.
STATUS_AVAILABLE = latarnia.AVAILABLE
STATUS_MAINTENANCE = latarnia.MAINTENANCE
STATUS_FAILURE = latarnia.FAILURE
STATUS_TOTAL_FAILURE = latarnia.TOTAL_FAILURE

EMERGENCY_BUSINESS_DAYS = 7

# Reason keys of a DeadlineResult: stable identifiers the Odoo side maps to translated text.
REASON_OFFLINE24 = "offline24_next_business_day"
REASON_UNAVAILABILITY = "unavailability_next_business_day_after_end"
REASON_UNAVAILABILITY_ONGOING = "unavailability_ongoing"
REASON_FAILURE = "failure_7_business_days_after_end"
REASON_FAILURE_ONGOING = "failure_ongoing"
REASON_TOTAL_FAILURE = "total_failure_no_obligation"

# The mode an invoice falls into when it cannot go online now, by Latarnia status.
_MODE_BY_STATUS = {
    STATUS_AVAILABLE: OFFLINE24,          # KSeF says it is up: the problem is on our side
    STATUS_MAINTENANCE: UNAVAILABILITY,
    STATUS_FAILURE: EMERGENCY,
    STATUS_TOTAL_FAILURE: TOTAL_FAILURE,
}

_UTC = datetime.timezone.utc


def _warsaw_zone():
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo("Europe/Warsaw")
    except Exception:  # no tz database on this host: fall back on the fixed EU rule below
        return None


_WARSAW = _warsaw_zone()


def _warsaw_offset(moment_utc):
    """CET/CEST by the EU rule (last Sunday of March/October, 01:00 UTC) - fallback only."""
    year = moment_utc.year

    def last_sunday(month):
        day = datetime.datetime(year, month, 31, 1, 0, tzinfo=_UTC)
        return day - datetime.timedelta(days=(day.weekday() + 1) % 7)

    summer = last_sunday(3) <= moment_utc < last_sunday(10)
    return datetime.timedelta(hours=2 if summer else 1)


def polish_date(value):
    """The Polish calendar date of a date or datetime (naive datetimes are taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=_UTC)
        if _WARSAW is not None:
            return moment.astimezone(_WARSAW).date()
        moment = moment.astimezone(_UTC)
        return (moment + _warsaw_offset(moment)).date()
    if isinstance(value, datetime.date):
        return value
    raise TypeError("expected a date or datetime, got %r" % (value,))


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError("unknown offline mode %r; expected one of: %s" % (mode, ", ".join(MODES)))


def _parse_timestamp(value):
    if value in (None, ""):
        return None
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value
    text = str(value)
    if text.endswith("Z"):  # fromisoformat before 3.11 does not take "Z"
        text = text[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(text)


@dataclasses.dataclass(frozen=True)
class KsefEvent:
    """One announced KSeF event (a Latarnia message or a notice copied from BIP MF).

    ``end`` None means the event is still going on. ``published`` is when MF announced it; when
    unknown, ``start`` stands in for it. Pass the newest version of each event (Latarnia sends
    the end of a failure as a later message with the same ``event_id``).
    """
    category: str
    start: object = None
    end: object = None
    published: object = None
    event_id: object = None
    title: str = ""

    def __post_init__(self):
        if self.category not in CATEGORIES:
            raise ValueError("unknown KSeF event category %r; expected one of: %s"
                             % (self.category, ", ".join(CATEGORIES)))
        if self.published is None and self.start is None:
            raise ValueError("a KSeF event needs its publication time or at least its start")
        for name in ("start", "end", "published"):
            polish_date(getattr(self, name))  # type check early, not deep inside a computation

    @property
    def ongoing(self):
        return self.end is None

    @property
    def announced_on(self):
        return polish_date(self.published if self.published is not None else self.start)

    @property
    def start_date(self):
        return polish_date(self.start)

    @property
    def end_date(self):
        return polish_date(self.end)

    @classmethod
    def from_latarnia(cls, message):
        """Build an event from a Latarnia message dict (``category``, ``start``, ``end``,
        ``published``, ``eventId``, ``title``; timestamps as ISO 8601 strings)."""
        return cls(
            category=message["category"],
            start=_parse_timestamp(message.get("start")),
            end=_parse_timestamp(message.get("end")),
            published=_parse_timestamp(message.get("published")),
            event_id=message.get("eventId"),
            title=message.get("title") or "",
        )


@dataclasses.dataclass(frozen=True)
class DeadlineResult:
    """The answer to "by when must this invoice reach KSeF, and why".

    - ``deadline``: the last day to send, or None;
    - ``reason``: one of the ``REASON_*`` keys;
    - ``event``: the event that governs the deadline (None for plain offline24).

    ``deadline`` None means either "no obligation" (``reason == REASON_TOTAL_FAILURE``) or
    "not known yet" (an event is still ongoing; ``is_known`` is False).
    """
    deadline: object
    reason: str
    event: object = None

    @property
    def obligation(self):
        """False once a total failure lifted the duty to send the invoice."""
        return self.reason != REASON_TOTAL_FAILURE

    @property
    def is_known(self):
        return self.deadline is not None or not self.obligation

    def is_overdue(self, today):
        return self.deadline is not None and polish_date(today) > self.deadline

    def business_days_left(self, today):
        """Business days from ``today`` to the deadline (0 on the last day, negative when late);
        None when there is no (known) deadline."""
        if self.deadline is None:
            return None
        return business_days_between(polish_date(today), self.deadline)


def submission_deadline(mode, issue_date, event_end=None):
    """The deadline of one mode on its own, without later events.

    ``event_end`` is the end of the unavailability (``UNAVAILABILITY``) or of the failure
    (``EMERGENCY``) and is ignored for the other modes. Returns None for ``TOTAL_FAILURE`` (no
    obligation). A missing ``event_end`` for an event mode raises ValueError rather than
    returning None: None already means "no obligation" here, and "not known yet" must not be
    confused with it. Use ``effective_deadline`` for ongoing events; it says "unknown" explicitly.
    """
    _check_mode(mode)
    issue_date = polish_date(issue_date)
    if mode == OFFLINE24:
        return next_business_day(issue_date)
    if mode == TOTAL_FAILURE:
        return None
    if event_end is None:
        what = "unavailability" if mode == UNAVAILABILITY else "failure"
        raise ValueError("the %s deadline counts from the end of the %s, which is not known; "
                         "pass event_end (use effective_deadline for an event still going on)"
                         % (mode, what))
    if mode == UNAVAILABILITY:
        return next_business_day(polish_date(event_end))
    return add_business_days(polish_date(event_end), EMERGENCY_BUSINESS_DAYS)


def fallback_mode(latarnia_status):
    """The offline mode for an invoice that cannot be sent now, given the Latarnia status.

    ``None`` (Latarnia unreachable) and unrecognised values give ``OFFLINE24``: a Latarnia outage
    is never by itself a KSeF failure (VAT act art. 106ne: MF announces failures), and offline24 has the shortest deadline, so
    it never claims more time than the law grants.
    """
    if latarnia_status is None:
        return OFFLINE24
    return _MODE_BY_STATUS.get(str(latarnia_status).strip().upper(), OFFLINE24)


def _covers(event, day):
    """True when ``event`` is in progress on ``day`` (unknown start counts as "already begun")."""
    start = event.start_date
    return (start is None or start <= day) and (event.ongoing or event.end_date >= day)


def _find_trigger(events, category, issue_date, mode):
    candidates = [event for event in events if event.category == category and _covers(event, issue_date)]
    if not candidates:
        raise ValueError("an invoice in %s mode needs the %s event it was issued under: pass "
                         "mode_event, or include an event covering %s in events"
                         % (mode, category, issue_date.isoformat()))
    # the one lasting longest decides; an ongoing one lasts longest of all
    return max(candidates, key=lambda event: (event.ongoing, event.end_date or datetime.date.min))


def _from_event(event, mode_days, reason, ongoing_reason):
    if event.ongoing:
        return DeadlineResult(None, ongoing_reason, event)
    return DeadlineResult(add_business_days(event.end_date, mode_days), reason, event)


def _utc_moment(value):
    """An aware UTC datetime for a datetime (naive ones are UTC), None for a plain date."""
    if isinstance(value, datetime.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=_UTC)).astimezone(_UTC)
    return None


def _over_before_issue(event, issue_date, issued_at):
    """True when ``event`` had ended before the invoice was issued. With the moment of issue and
    a timed end, moments are compared (Warsaw or UTC alike): a failure that ended at 10:00 does not
    concern an invoice issued at 11:00 the same day, nor may a failure announced at 9:30 be missed
    for an invoice issued at 9:00. Otherwise Polish calendar dates are compared."""
    if event.ongoing:
        return False
    end, issued = _utc_moment(event.end), _utc_moment(issued_at)
    if end is not None and issued is not None:
        return end < issued   # ending at the very moment of issue still overlaps it
    return event.end_date < (polish_date(issued_at) if issued_at is not None else issue_date)


def effective_deadline(mode, issue_date, events=(), mode_event=None, issued_at=None):
    """The deadline of one waiting offline invoice, all announced events considered.

    - ``events``: ``KsefEvent`` records announced around the time the invoice waits; irrelevant
      ones are filtered out here.
    - ``mode_event``: the maintenance (unavailability) or failure (emergency) the invoice was
      issued under; when omitted it is looked up in ``events`` (the event covering
      ``issue_date``).
    - ``issued_at``: the moment the invoice was issued offline (a datetime; naive = UTC), when
      known. The law moves a deadline only for an event announced while the invoice waits
      (``tryby-offline.md``, "Termin przesłania faktury do KSeF przy kolejnych zdarzeniach"), so
      an event over before that moment, even earlier the same day, changes nothing.

    An event counts when it was announced no later than the deadline in force at that moment
    (or at any time while the deadline is unknown) and had not ended before the invoice was
    issued (its moment when known, else its issue date).
    A failure announced after a deadline has passed does not revive it. Events are taken in
    order of announcement:

    - ``TOTAL_FAILURE`` ends the obligation for good;
    - ``FAILURE`` makes the deadline 7 business days after its end; while it is ongoing the
      deadline is unknown;
    - ``MAINTENANCE`` moves nothing: no rule says it does.

    With several failures the latest end wins. This is the "restart" rule of the docs. It also
    guarantees that a short failure inside a longer unavailability never shortens a deadline,
    which the law cannot mean.
    """
    _check_mode(mode)
    issue_date = polish_date(issue_date)
    if mode == TOTAL_FAILURE:
        return DeadlineResult(None, REASON_TOTAL_FAILURE, mode_event)
    events = list(events)
    for event in events:
        if not isinstance(event, KsefEvent):
            raise TypeError("events must be KsefEvent records, got %r" % (event,))

    if mode == OFFLINE24:
        trigger = None
        result = DeadlineResult(next_business_day(issue_date), REASON_OFFLINE24)
    elif mode == UNAVAILABILITY:
        trigger = mode_event or _find_trigger(events, CATEGORY_MAINTENANCE, issue_date, mode)
        result = _from_event(trigger, 1, REASON_UNAVAILABILITY, REASON_UNAVAILABILITY_ONGOING)
    else:
        trigger = mode_event or _find_trigger(events, CATEGORY_FAILURE, issue_date, mode)
        result = _from_event(trigger, EMERGENCY_BUSINESS_DAYS, REASON_FAILURE, REASON_FAILURE_ONGOING)

    for event in sorted(events, key=lambda event: event.announced_on):
        if event is trigger or event == trigger or event.category == CATEGORY_MAINTENANCE:
            continue
        if _over_before_issue(event, issue_date, issued_at):
            continue  # over before the invoice existed
        if result.deadline is not None and event.announced_on > result.deadline:
            continue  # announced after the deadline in force had passed
        if event.category == CATEGORY_TOTAL_FAILURE:
            return DeadlineResult(None, REASON_TOTAL_FAILURE, event)
        candidate = _from_event(event, EMERGENCY_BUSINESS_DAYS, REASON_FAILURE, REASON_FAILURE_ONGOING)
        if not result.is_known:
            continue  # an ongoing event keeps the deadline open; only a total failure changes that
        if candidate.deadline is None or candidate.deadline > result.deadline:
            result = candidate
    return result
