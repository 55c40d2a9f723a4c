"""ksef.submission: planning and backoff (pure), then the engine over real HTTP against the
simulator with production rate limits, faults and crashes injected through its control API."""
import datetime
import random
import uuid
import zoneinfo
from decimal import Decimal as D

import pytest
import requests

from ksef import crypto, fa3
from ksef.client import KsefClient
from ksef.errors import KsefUnavailable
from ksef.ksef_number import is_valid_ksef_number
from ksef.simulator import Simulator
from ksef.submission import (
    ACCEPTED, BATCH, DUPLICATE_ADOPTED, ONLINE, PENDING, REJECTED, RETRY, Item, Journal, MemoryJournal,
    RetryLater, SessionRecord, Submitter, backoff, next_retry_after, plan, retried,
)
from ksef.upo import parse_upo


# --- invoices -------------------------------------------------------------------------------

def random_nip(rng):
    """A NIP with a valid check digit matching the FA(3) pattern (2nd and 3rd digit not both 0)."""
    while True:
        digits = [rng.randrange(1, 10), rng.randrange(1, 10)] + [rng.randrange(10) for _ in range(7)]
        check = sum(d * w for d, w in zip(digits, (6, 5, 7, 2, 3, 4, 5, 6, 7))) % 11
        if check != 10:
            return "".join(map(str, digits + [check]))


def warsaw_today():
    return datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Warsaw")).date()


def invoice_xml(nip, number, issue_date=None, net="100.00"):
    """A small valid FA(3) invoice built with ksef.fa3."""
    net = D(net)
    vat = (net * D("0.23")).quantize(D("0.01"))
    totals = fa3.Totals(p_15=net + vat).add("23", net, vat)
    return fa3.build(fa3.Invoice(
        seller=fa3.Seller(nip=nip, name="Sprzedawca Testowy", address=fa3.Address(country="PL", line1="ul. A 1")),
        buyer=fa3.Buyer(nip="3861610227", name="Nabywca Testowy", address=fa3.Address(country="PL", line1="ul. B 2")),
        number=number, issue_date=issue_date or warsaw_today() - datetime.timedelta(days=1),
        created_at=datetime.datetime(2026, 2, 2, 9, 0, tzinfo=datetime.timezone.utc), totals=totals,
        lines=[fa3.Line(name="Usługa", net_amount=net, rate="23", quantity=D(1), unit="szt", unit_price=net)],
    ))


def make_items(nip, count, offline=True, prefix=None, start=0):
    prefix = prefix or "FV/%s" % uuid.uuid4().hex[:8]
    return [Item.of("%s-%d" % (prefix, n), invoice_xml(nip, "%s/%05d" % (prefix, n)), offline)
            for n in range(start, start + count)]


# --- pure: plan, Item, backoff ----------------------------------------------------------------

def test_item_checks_its_hash_and_correction_mode():
    xml = invoice_xml("5265877635", "FV/1")
    assert Item.of(1, xml, True).invoice_hash == crypto.sha256_b64(xml)
    with pytest.raises(ValueError, match="not the SHA-256"):
        Item(1, xml, crypto.sha256_b64(b"other"), True)
    with pytest.raises(ValueError, match="offline_mode=True"):
        Item.of(1, xml, False, hash_of_corrected_invoice=crypto.sha256_b64(b"x"))


def test_plan_separates_modes_keeps_corrections_interactive_and_uses_threshold():
    nip = "5265877635"
    offline = make_items(nip, 12, True, "OFF")
    online = make_items(nip, 3, False, "ON")
    correction = Item.of("corr", invoice_xml(nip, "COR/1"), True, hash_of_corrected_invoice=crypto.sha256_b64(b"o"))
    result = plan(offline + online + [correction], batch_threshold=10)
    [batch] = result.batches
    assert batch.offline_mode is True and [i.key for i in batch.items] == [i.key for i in offline]
    by_mode = {s.offline_mode: s for s in result.interactive}
    assert [i.key for i in by_mode[True].items] == ["corr"]          # correction alone, interactive
    assert [i.key for i in by_mode[False].items] == [i.key for i in online]
    for session in result.sessions:
        assert {i.offline_mode for i in session.items} == {session.offline_mode}
    # a correction is interactive even when everything else goes in batch
    assert plan([correction], batch_threshold=1).sessions[0].kind == ONLINE


def test_plan_respects_session_count_and_package_size_limits():
    nip = "5265877635"
    items = make_items(nip, 25, True, "SPLIT")
    sessions = plan(items, batch_threshold=1, max_invoices_per_session=10).batches
    assert [len(s.items) for s in sessions] == [9, 8, 8]             # evened out, each <= 10
    assert [i.key for s in sessions for i in s.items] == [i.key for i in items]
    size = len(items[0].xml_bytes) + 200
    sessions = plan(items, batch_threshold=1, max_part_size=size * 2, max_invoices_per_session=10000).batches
    assert all(len(s.items) * size <= 50 * size * 2 for s in sessions) and len(sessions) == 1
    sessions = plan(items * 1, batch_threshold=1, max_part_size=size // 5 + 1).batches  # 50 parts hold ~10
    assert len(sessions) == 3 and max(len(s.items) for s in sessions) <= 10
    with pytest.raises(ValueError, match="same XML"):
        plan([items[0], Item(items[0].key + "x", items[0].xml_bytes, items[0].invoice_hash, True)])
    with pytest.raises(ValueError, match="appears twice"):
        plan([items[0], items[0]])


def test_backoff_grows_is_jittered_and_capped():
    rng = random.Random(7)
    delays = [backoff(a, base=1.0, cap=30.0, rng=rng) for a in range(8)]
    for attempt, delay in enumerate(delays):
        ceiling = min(30.0, 2 ** attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(backoff(3, rng=rng), 6) for _ in range(10)}) > 1
    with pytest.raises(ValueError):
        backoff(-1)


def test_retried_waits_as_told_and_lets_the_caller_decide_what_propagates():
    calls, slept = [], []

    def flaky():
        calls.append(len(calls))
        if len(calls) < 3:
            raise KsefUnavailable("503")
        return "ok"

    seen = []

    def wait_after(error, attempt):
        seen.append((type(error).__name__, attempt))
        return 0.5 * (attempt + 1)

    assert retried(flaky, wait_after, sleep=slept.append) == "ok"
    assert seen == [("KsefUnavailable", 0), ("KsefUnavailable", 1)]
    assert slept == [0.5, 1.0]
    # None: the error itself propagates, at once
    calls.clear()
    slept.clear()
    with pytest.raises(KsefUnavailable):
        retried(flaky, lambda error, attempt: None, sleep=slept.append)
    assert len(calls) == 1 and not slept
    # the caller may turn an error into one of its own (the Submitter: RetryLater)

    def give_up(error, attempt):
        raise RetryLater(30.0, error) from error

    with pytest.raises(RetryLater) as raised:
        retried(flaky, give_up, sleep=slept.append)
    assert isinstance(raised.value.__cause__, KsefUnavailable) and not slept


def test_session_record_round_trips_as_json_data():
    record = SessionRecord("20260202-SB-1", BATCH, True, {"h1": 1, "h2": "b"}, 12.5)
    assert SessionRecord.from_dict(record.to_dict()) == record
    assert record.item_keys == [1, "b"]


# --- against the simulator --------------------------------------------------------------------

@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    sim = Simulator(tmp_path_factory.mktemp("engine") / "state.db", rate_limits="production",
                    processing_delay=0.05)
    base_url = sim.start()
    yield base_url
    sim.stop()


def control(base_url, action, payload=None, method="POST"):
    answer = requests.request(method, base_url + "/_control/" + action, json=payload, timeout=10)
    answer.raise_for_status()
    return answer.json()


@pytest.fixture
def ctx(simulator):
    """A fresh seller NIP (its own rate-limit context) with a token and a logged-in client."""
    control(simulator, "faults/clear")
    nip = random_nip(random.Random(uuid.uuid4().int))
    token = "tok-" + uuid.uuid4().hex
    control(simulator, "tokens", {"nip": nip, "token": token})
    client = KsefClient(base_url=simulator + "/v2", poll_interval=0.05, timeout=10)
    client.authenticate_with_token("Nip", nip, token, timeout=10)

    class Context:
        pass
    context = Context()
    context.nip, context.client, context.base_url = nip, client, simulator
    context.counters = lambda: control(simulator, "counters", method="GET")
    yield context
    control(simulator, "faults/clear")


def fast_submitter(client, **options):
    defaults = dict(poll_interval=0.1, backoff_base=0.05, backoff_cap=1.0, uncertain_grace=0.1,
                    session_timeout=30, max_inline_wait=5.0, rng=random.Random(1))
    defaults.update(options)
    return Submitter(client, **defaults)


def assert_exactly_once(counters, items):
    """Each of our hashes went into KSeF exactly once and was accepted once."""
    for item in items:
        assert counters["submissionsByHash"].get(item.invoice_hash) == 1, item.key
        assert counters["acceptedByHash"].get(item.invoice_hash) == 1, item.key


def test_batch_of_offline_invoices_all_accepted_with_upo_mapped_by_hash(ctx):
    items = make_items(ctx.nip, 300, offline=True)
    journal = MemoryJournal()
    # small parts: the package goes up in several parallel uploads
    submitter = fast_submitter(ctx.client, journal=journal, max_part_size=60_000)
    outcomes = submitter.submit(items)
    assert [o.key for o in outcomes] == [i.key for i in items]
    assert {o.status for o in outcomes} == {ACCEPTED}
    assert all(is_valid_ksef_number(o.ksef_number) and o.ksef_number.startswith(ctx.nip) for o in outcomes)
    assert len({o.ksef_number for o in outcomes}) == 300
    assert {o.invoicing_mode for o in outcomes} == {"Offline"}
    assert all(o.invoice_hash == i.invoice_hash for o, i in zip(outcomes, items))
    [session_reference] = {o.session_reference for o in outcomes}
    assert len(journal.parts[session_reference]) > 1
    # one shared session UPO page lists every invoice with its KSeF number and hash
    [upo] = {id(o.session_upo): o.session_upo for o in outcomes}.values()
    documents = {d.document_hash: d for d in parse_upo(upo.xml)["documents"]}
    for outcome in outcomes:
        assert documents[outcome.invoice_hash].ksef_number == outcome.ksef_number
        assert documents[outcome.invoice_hash].mode == "Offline"
    # the journal saw the session before anything was uploaded, and everything settled
    events = [e[0] for e in journal.events]
    assert events[0] == "opened" and events.index("closed") < events.index("outcomes")
    assert journal.pending_sessions() == []
    assert {k: o.ksef_number for k, o in journal.results.items()} == {o.key: o.ksef_number for o in outcomes}
    assert all(o.acquisition_date and o.acquisition_date.tzinfo for o in outcomes)
    counters = ctx.counters()
    assert counters["acceptedBySeller"][ctx.nip] == 300
    assert_exactly_once(counters, items)
    # the results came from the session UPO: the invoice list (20 calls a minute) was not read
    calls = counters["apiCalls"][ctx.nip]
    assert calls.get("sessionInvoiceList", 0) == 0 and calls.get("sessionFailedInvoiceList", 0) == 0, calls


def test_batch_results_with_failures_read_the_upo_and_only_the_failed_list(ctx):
    """Accepted invoices come from the session UPO, the rest (a 430, 440 duplicates of our own
    earlier send) from the failed list: the session's full invoice list is never read."""
    earlier = make_items(ctx.nip, 3, offline=True, prefix="OLD/%s" % uuid.uuid4().hex[:6])
    first = {o.key: o for o in fast_submitter(ctx.client, batch_threshold=100).submit(earlier)}
    assert {o.status for o in first.values()} == {ACCEPTED}
    fresh = make_items(ctx.nip, 10, offline=True)
    broken = Item.of("broken", invoice_xml(ctx.nip, "ZLA/%s" % uuid.uuid4().hex[:6]).replace(
        b"<KodWaluty>PLN</KodWaluty>", b""), True)
    before = ctx.counters()["apiCalls"][ctx.nip]
    outcomes = {o.key: o for o in fast_submitter(ctx.client, batch_threshold=10).submit(fresh + earlier + [broken])}
    assert len({o.session_reference for o in outcomes.values() if o.status != DUPLICATE_ADOPTED}) == 1
    assert {outcomes[i.key].status for i in fresh} == {ACCEPTED}
    assert all(is_valid_ksef_number(outcomes[i.key].ksef_number) for i in fresh)
    assert [outcomes[i.key].ksef_number for i in earlier] == [first[i.key].ksef_number for i in earlier]
    assert {outcomes[i.key].status for i in earlier} == {DUPLICATE_ADOPTED}
    assert (outcomes["broken"].status, outcomes["broken"].code) == (REJECTED, 430)
    assert outcomes["broken"].details
    after = ctx.counters()["apiCalls"][ctx.nip]
    assert after.get("sessionFailedInvoiceList", 0) - before.get("sessionFailedInvoiceList", 0) == 1
    # the full list is read once, for the session of the originals (to confirm they are ours)
    assert after.get("sessionInvoiceList", 0) - before.get("sessionInvoiceList", 0) == 1
    assert_exactly_once(ctx.counters(), fresh)


def test_results_are_listed_when_the_upo_cannot_account_for_them(ctx):
    """KSeF's counts and its UPO disagree (or a UPO page cannot be fetched): the session's
    invoice list is read, as before, with the same results."""
    items = make_items(ctx.nip, 12, offline=True)
    submitter = fast_submitter(ctx.client, batch_threshold=10)
    outcomes = submitter.submit(items)
    [reference] = {o.session_reference for o in outcomes}
    status = ctx.client.session_status(reference)
    from_upo = fast_submitter(ctx.client)._final_listing(reference, status)
    status.successful_invoice_count += 1
    before = ctx.counters()["apiCalls"][ctx.nip].get("sessionInvoiceList", 0)
    listed = fast_submitter(ctx.client)._final_listing(reference, status)
    assert ctx.counters()["apiCalls"][ctx.nip]["sessionInvoiceList"] == before + 1
    assert set(listed) == set(from_upo) == {i.invoice_hash for i in items}
    for invoice_hash, entry in listed.items():
        assert entry.ksef_number == from_upo[invoice_hash].ksef_number
        # the UPO gives the numbering time to the millisecond
        assert abs(entry.acquisition_date - from_upo[invoice_hash].acquisition_date) < datetime.timedelta(milliseconds=1)
        assert entry.invoicing_mode == from_upo[invoice_hash].invoicing_mode == "Offline"
        assert entry.reference_number and from_upo[invoice_hash].reference_number is None


def test_mixed_modes_go_to_separate_sessions(ctx):
    offline = make_items(ctx.nip, 12, offline=True)
    online = make_items(ctx.nip, 11, offline=False, prefix="ON/%s" % uuid.uuid4().hex[:6])
    few_offline = make_items(ctx.nip, 2, offline=True, prefix="FEW/%s" % uuid.uuid4().hex[:6])
    submitter = fast_submitter(ctx.client, batch_threshold=10)
    # the 2 extra offline ones join the offline batch group (14 >= 10)
    outcomes = {o.key: o for o in submitter.submit(offline + online + few_offline)}
    assert {o.status for o in outcomes.values()} == {ACCEPTED}
    offline_sessions = {outcomes[i.key].session_reference for i in offline + few_offline}
    online_sessions = {outcomes[i.key].session_reference for i in online}
    assert len(offline_sessions) == 1 and len(online_sessions) == 1 and offline_sessions != online_sessions
    # issued yesterday, so even the online batch is classified Offline by KSeF
    # (`offline/automatyczne-okreslanie-trybu-offline.md`);
    # what matters here is the declared mode per session, checked through the UPO of today's invoices
    today_online = [Item.of("today-%d" % n, invoice_xml(ctx.nip, "T/%s/%d" % (uuid.uuid4().hex[:6], n),
                                                         issue_date=warsaw_today()), False) for n in range(3)]
    today_offline = [Item.of("today-off-%d" % n, invoice_xml(ctx.nip, "TO/%s/%d" % (uuid.uuid4().hex[:6], n),
                                                             issue_date=warsaw_today()), True) for n in range(3)]
    result = {o.key: o for o in fast_submitter(ctx.client, batch_threshold=1).submit(today_online + today_offline)}
    assert {result[i.key].invoicing_mode for i in today_online} == {"Online"}
    assert {result[i.key].invoicing_mode for i in today_offline} == {"Offline"}
    assert len({result[i.key].session_reference for i in today_online + today_offline}) == 2
    assert_exactly_once(ctx.counters(), offline + online + few_offline + today_online + today_offline)


def test_interactive_send_and_technical_correction(ctx):
    number = "TK/%s" % uuid.uuid4().hex[:8]
    good = invoice_xml(ctx.nip, number)
    broken = good.replace(b"<KodWaluty>PLN</KodWaluty>", b"")      # XSD error -> 430
    original = Item.of("orig", broken, True)
    submitter = fast_submitter(ctx.client, batch_threshold=100)
    [rejected] = submitter.submit([original])
    assert rejected.status == REJECTED and rejected.code == 430 and rejected.ksef_number is None
    correction = Item.of("orig-fixed", good, True, hash_of_corrected_invoice=original.invoice_hash)
    others = make_items(ctx.nip, 3, offline=True)
    # batch_threshold=1: the others go in batch, the correction still goes interactive
    outcomes = {o.key: o for o in fast_submitter(ctx.client, batch_threshold=1).submit(others + [correction])}
    fixed = outcomes["orig-fixed"]
    assert fixed.status == ACCEPTED and is_valid_ksef_number(fixed.ksef_number)
    assert fixed.session_reference != outcomes[others[0].key].session_reference
    assert parse_upo(fixed.upo_xml)["documents"][0].document_hash == correction.invoice_hash
    # a second correction of the same original is refused synchronously (21166)
    again = Item.of("orig-fixed-2", invoice_xml(ctx.nip, number, net="100.00").replace(
        b"Us\xc5\x82uga", b"Usluga"), True, hash_of_corrected_invoice=original.invoice_hash)
    [refused] = submitter.submit([again])
    assert refused.status == REJECTED and refused.code == 21166


def test_server_errors_are_retried_without_double_sends(ctx):
    control(ctx.base_url, "faults", {"error_ratio": 0.3, "error_statuses": [500, 502, 503], "seed": 3})
    online = make_items(ctx.nip, 6, offline=False)
    batch = make_items(ctx.nip, 15, offline=True)
    submitter = fast_submitter(ctx.client, batch_threshold=10, max_attempts=8, max_part_size=5_000)
    outcomes = submitter.submit(online + batch)
    control(ctx.base_url, "faults/clear")
    assert {o.status for o in outcomes} == {ACCEPTED}, [(o.key, o.status, o.description) for o in outcomes]
    assert_exactly_once(ctx.counters(), online + batch)


def test_lost_answers_after_accepting_are_found_not_resent(ctx):
    # the simulator stores the invoice / closes the batch, then holds the answer past our timeout
    ctx.client.timeout = 0.6
    control(ctx.base_url, "faults", {"stall_after_accept_seconds": 1.5, "stall_after_accept_count": 1})
    online = make_items(ctx.nip, 3, offline=False)
    [first] = fast_submitter(ctx.client, batch_threshold=100).submit(online[:1])
    assert first.status == ACCEPTED
    control(ctx.base_url, "faults", {"stall_after_accept_seconds": 1.5, "stall_after_accept_count": 1})
    batch = make_items(ctx.nip, 12, offline=True)
    outcomes = fast_submitter(ctx.client, batch_threshold=10).submit(batch + online[1:])
    assert {o.status for o in outcomes} == {ACCEPTED}
    assert_exactly_once(ctx.counters(), online + batch)


class Crash(BaseException):
    """The process dies: not an Exception, so nothing in the engine can swallow it."""


class CrashingJournal(MemoryJournal):
    def __init__(self, crash_on):
        super().__init__()
        self.crash_on = crash_on

    def _maybe(self, event):
        if event == self.crash_on:
            raise Crash(event)

    def session_opened(self, record):
        super().session_opened(record)
        self._maybe("session_opened")

    def batch_part_uploaded(self, session_reference, ordinal_number):
        super().batch_part_uploaded(session_reference, ordinal_number)
        self._maybe("batch_part_uploaded")

    def session_closed(self, session_reference):
        super().session_closed(session_reference)
        self._maybe("session_closed")

    def outcomes(self, outcomes):
        self._maybe("outcomes")
        super().outcomes(outcomes)


@pytest.mark.parametrize("crash_on, kind", [
    ("session_opened", BATCH), ("batch_part_uploaded", BATCH), ("session_closed", BATCH), ("outcomes", BATCH),
    ("session_opened", ONLINE), ("outcomes", ONLINE),
])
def test_crash_then_reconcile_from_the_journal_sends_each_invoice_once(ctx, crash_on, kind):
    items = make_items(ctx.nip, 12 if kind == BATCH else 3, offline=True)
    journal = CrashingJournal(crash_on)
    crashed = fast_submitter(ctx.client, journal=journal, batch_threshold=10 if kind == BATCH else 100,
                             max_part_size=4_000, upload_workers=1)
    with pytest.raises(Crash):
        crashed.submit(items)
    [record] = journal.pending_sessions()
    assert record.kind == kind and set(record.hashes) == {i.invoice_hash for i in items}
    # the journal was persisted as JSON; a new process reconciles with a fresh Submitter
    stored = [SessionRecord.from_dict(r.to_dict()) for r in journal.pending_sessions()]
    fresh_journal = MemoryJournal()
    fresh = fast_submitter(ctx.client, journal=fresh_journal, batch_threshold=10)
    result = fresh.reconcile(stored, items)
    if crash_on in ("session_closed", "outcomes"):   # KSeF had them all
        assert result.to_resend == [] and {o.status for o in result.outcomes} == {ACCEPTED}
    else:                                            # KSeF never processed the session
        assert [i.key for i in result.to_resend] == [i.key for i in items] and result.outcomes == []
        assert {o.status for o in fresh.submit(result.to_resend)} == {ACCEPTED}
    assert record.reference in fresh_journal.settled and fresh_journal.pending_sessions() == []
    assert_exactly_once(ctx.counters(), items)
    if kind == BATCH and crash_on in ("session_opened", "batch_part_uploaded"):
        assert list(ctx.client.session_invoices(record.reference)) == []   # the abandoned session holds none


def test_rate_limit_burst_gives_retry_with_retry_after(ctx):
    # production limit: 30 sends a minute per context; the 31st gets 429 + Retry-After
    items = make_items(ctx.nip, 32, offline=False)
    submitter = fast_submitter(ctx.client, batch_threshold=1000, max_inline_wait=2.0)
    outcomes = submitter.submit(items)
    statuses = [o.status for o in outcomes]
    assert statuses[:30] == [ACCEPTED] * 30 and statuses[30:] == [RETRY, RETRY]
    retry_after = next_retry_after(outcomes)
    assert 2.0 < retry_after <= 60 and outcomes[30].code == 429
    counters = ctx.counters()
    assert_exactly_once(counters, items[:30])
    assert all(i.invoice_hash not in counters["submissionsByHash"] for i in items[30:])
    # the scheduler's side of it: _call turns a long 429 into RetryLater with that value
    with pytest.raises(RetryLater) as caught:
        submitter._call("send", ctx.client.send_invoice, ctx.client.open_online_session(), items[30].xml_bytes)
    assert 2.0 < caught.value.after_seconds <= 60


def test_duplicate_of_our_own_send_is_adopted_and_a_foreign_one_rejected(ctx):
    items = make_items(ctx.nip, 12, offline=True, prefix="DUP/%s" % uuid.uuid4().hex[:6])
    first = {o.key: o for o in fast_submitter(ctx.client, batch_threshold=10).submit(items)}
    # the results were lost (no journal): the same items are sent again
    again = fast_submitter(ctx.client, batch_threshold=10).submit(items)
    assert {o.status for o in again} == {DUPLICATE_ADOPTED}
    assert all(o.ksef_number == first[o.key].ksef_number for o in again)
    assert all(o.original_session_reference == first[o.key].session_reference for o in again)
    assert all(parse_upo(o.upo_xml)["documents"][0].ksef_number == o.ksef_number for o in again)
    # same number, different content: not ours to adopt
    number = items[0].key.rsplit("-", 1)[0] + "/%05d" % 0
    foreign = Item.of("foreign", invoice_xml(ctx.nip, number, net="999.00"), True)
    [conflict] = fast_submitter(ctx.client, batch_threshold=10).submit([foreign])
    assert conflict.status == REJECTED and conflict.code == 440
    assert ctx.counters()["acceptedByHash"].get(foreign.invoice_hash) is None


def test_base_journal_is_a_no_op_interface():
    journal = Journal()
    journal.session_opened(SessionRecord("r", BATCH, True, {}))
    journal.outcomes([])
    journal.session_settled("r")
    assert PENDING == "pending"


def test_ksef_down_gives_retry_outcomes_and_sends_nothing(ctx):
    control(ctx.base_url, "faults", {"down": True})
    online = make_items(ctx.nip, 2, offline=False)
    batch = make_items(ctx.nip, 10, offline=True)
    outcomes = fast_submitter(ctx.client, batch_threshold=10, max_attempts=3).submit(online + batch)
    assert {o.status for o in outcomes} == {RETRY}
    assert all(o.retry_after and o.retry_after > 0 for o in outcomes)
    assert all(o.code == 503 for o in outcomes)
    control(ctx.base_url, "faults/clear")
    submissions = ctx.counters()["submissionsByHash"]
    assert not any(i.invoice_hash in submissions for i in online + batch)
    # later, the scheduler sends them again: exactly once
    assert {o.status for o in fast_submitter(ctx.client, batch_threshold=10).submit(online + batch)} == {ACCEPTED}
    assert_exactly_once(ctx.counters(), online + batch)


def test_lost_send_answers_while_ksef_is_failing_are_settled_by_listing(ctx):
    # sends whose connection is dropped unanswered are "uncertain": the engine lists the session
    # before resending, and resends only what KSeF does not hold
    online = make_items(ctx.nip, 6, offline=False)
    ctx.client.timeout = 2
    submitter = fast_submitter(ctx.client, batch_threshold=100, max_attempts=2)
    session = ctx.client.open_online_session()
    control(ctx.base_url, "faults", {"down": True, "down_mode": "close"})
    results, sent = {}, {}
    verdicts = [submitter._send_one(session, item) for item in online[:2]]
    assert verdicts == [None, None]
    control(ctx.base_url, "faults/clear")
    submitter._settle_uncertain(session, online[:2], sent, results, allow_resend=True)
    assert set(sent) == {i.invoice_hash for i in online[:2]} and results == {}
    assert [e.invoice_hash for e in ctx.client.session_invoices(session)] == [i.invoice_hash for i in online[:2]]


def test_many_duplicates_read_their_original_session_once(ctx):
    """A restored backup resends 25 invoices KSeF already holds: each 440 is resolved against
    the original session's listing, read once — not once per invoice, which ran into the
    listing rate limit (20/min) and turned accepted invoices into rejections."""
    items = make_items(ctx.nip, 25, offline=True, prefix="BAK/%s" % uuid.uuid4().hex[:6])
    first = {o.key: o for o in fast_submitter(ctx.client, batch_threshold=10).submit(items)}
    assert {o.status for o in first.values()} == {ACCEPTED}
    again = fast_submitter(ctx.client, batch_threshold=10).submit(items)
    assert {o.status for o in again} == {DUPLICATE_ADOPTED}
    assert all(o.ksef_number == first[o.key].ksef_number for o in again)
