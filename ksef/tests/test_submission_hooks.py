"""The Submitter's hooks for a caller that sends one invoice while a user waits (Odoo's Post to
KSeF): an interactive session it already holds open, its own evidence for the 440 rule, and
polling the sent invoice's own status. Against the real simulator (production rate limits)."""
import uuid

from ksef.submission import ACCEPTED, DUPLICATE_ADOPTED, REJECTED, Item, MemoryJournal

from ksef.tests.test_submission import ctx, fast_submitter, invoice_xml, simulator  # noqa: F401 - fixtures


def test_online_session_is_used_and_never_closed(ctx):  # noqa: F811
    session = ctx.client.open_online_session()
    journal = MemoryJournal()
    before = ctx.counters()["sessions"].get("Online", 0)
    outcomes = []
    for index in range(2):
        item = Item.of("one-%d" % index, invoice_xml(ctx.nip, "OS/%s/%d" % (uuid.uuid4().hex[:6], index)), False)
        submitter = fast_submitter(ctx.client, journal=journal, online_session=session, poll_each=True,
                                   upo="invoice")
        [outcome] = submitter.submit([item])
        outcomes.append(outcome)
        assert outcome.status == ACCEPTED and outcome.invoice_reference
        assert outcome.session_reference == session.reference_number
        assert outcome.upo_xml
    assert ctx.counters()["sessions"].get("Online", 0) == before, "no session of its own"
    assert session.reference_number not in journal.closed
    assert ctx.client.session_status(session.reference_number).code == 100, "still open"
    # reconcile asks about the caller's session without closing it
    record = journal.sessions[session.reference_number]
    item = Item.of("one-0", invoice_xml(ctx.nip, "x"), False)   # not in it: to resend
    result = fast_submitter(ctx.client, online_session=session).reconcile([record], [item])
    assert result.to_resend == [item]
    assert ctx.client.session_status(session.reference_number).code == 100


def test_is_own_original_is_evidence_for_a_440_of_another_file(ctx):  # noqa: F811
    number = "OWN/%s" % uuid.uuid4().hex[:8]
    theirs = Item.of("theirs", invoice_xml(ctx.nip, number, net="100.00"), False)
    [first] = fast_submitter(ctx.client).submit([theirs])
    assert first.status == ACCEPTED
    ours = Item.of("ours", invoice_xml(ctx.nip, number, net="200.00"), False)
    asked = []

    def is_own(item, ksef_number, original_hash):
        asked.append((item.key, ksef_number, original_hash))
        return original_hash == theirs.invoice_hash
    [adopted] = fast_submitter(ctx.client, is_own_original=is_own).submit([ours])
    assert adopted.status == DUPLICATE_ADOPTED and adopted.ksef_number == first.ksef_number
    assert asked == [("ours", first.ksef_number, theirs.invoice_hash)]
    # without that evidence the same 440 is not ours
    [refused] = fast_submitter(ctx.client, is_own_original=lambda *args: False).submit([ours])
    assert refused.status == REJECTED and refused.code == 440
