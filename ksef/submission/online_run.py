"""An interactive session: send each invoice, settle lost answers from the session's list (never
send twice), wait for the verdicts, close, per-invoice UPOs."""
import logging
import time

from .. import polling
from ..errors import KsefError, KsefUnavailable, RateLimited, Rejected, SessionClosed, SessionNotFound
from .items import ONLINE, PENDING, REJECTED, RETRY, SessionRecord
from .retry import RetryLater, retried

_logger = logging.getLogger(__name__)

UNCERTAIN = "uncertain"     # a send whose answer was lost: KSeF may or may not hold the invoice


class _Stop(Exception):
    """Internal: stop sending in this session; the rest of its items get ``outcome``-like status."""

    def __init__(self, status, retry_after, error):
        self.status, self.retry_after, self.error = status, retry_after, error
        super().__init__(str(error))


class OnlineRun:
    """Interactive sessions of ``Submitter`` (a mixin)."""

    def _run_online(self, session_plan):
        items = session_plan.items
        session = self.online_session
        if session is None:
            try:
                session = self._call("open online session", self.client.open_online_session)
            except RetryLater as exc:
                return [self._outcome(item, RETRY, retry_after=exc.after_seconds, error=exc.cause)
                        for item in items]
        reference = session.reference_number
        record = SessionRecord(reference, ONLINE, session_plan.offline_mode,
                               {item.invoice_hash: item.key for item in items}, time.time())
        self.journal.session_opened(record)

        results = {}          # key -> Outcome decided without KSeF processing (sync refusals, retry)
        sent = {}             # hash -> item
        uncertain = []        # items whose send answer was lost
        stop = None
        lost_in_a_row = 0
        for item in items:
            if stop is None and lost_in_a_row >= 3:   # KSeF is not answering: stop, keep the rest unsent
                stop = _Stop(RETRY, self._backoff(2), KsefUnavailable("3 invoice sends in a row got no answer"))
            if stop is not None:
                results[item.key] = self._outcome(item, stop.status, reference, retry_after=stop.retry_after,
                                                  error=stop.error)
                continue
            lost_before = len(uncertain)
            stop = self._send_and_file(session, item, sent, uncertain, results)
            if stop is None:
                lost_in_a_row = lost_in_a_row + 1 if len(uncertain) > lost_before else 0

        if uncertain:
            self._settle_uncertain(session, uncertain, sent, results, allow_resend=stop is None)

        outcomes = list(results.values())
        if sent:
            outcomes += self._poll_online(reference, sent)
        if self.online_session is None:   # a session the caller handed over stays open for its next sends
            try:
                self._call("close online session", self.client.close_online_session, reference)
                self.journal.session_closed(reference)
            except (RetryLater, KsefError) as exc:
                _logger.info("online session %s not closed (%s); it expires on its own", reference, exc)
        self._journal_outcomes(outcomes)
        if all(o.status != PENDING for o in outcomes):
            self.journal.session_settled(reference)
        order = {item.key: index for index, item in enumerate(items)}
        return sorted(outcomes, key=lambda o: order[o.key])

    def _send_one(self, session, item):
        """True: accepted for processing; None: answer lost (uncertain); a ``Rejected`` error:
        refused synchronously. Raises ``_Stop`` when the session must stop sending."""
        def send():
            self.stats["requests"] += 1
            return self.client.send_invoice(session, item.xml_bytes, offline_mode=item.offline_mode,
                                            hash_of_corrected_invoice=item.hash_of_corrected_invoice)

        def wait_after(error, attempt):
            if isinstance(error, RateLimited):      # answered before anything happened: safe to resend
                wait = self._wait_for(error, attempt)
                if wait > self.max_inline_wait:
                    raise _Stop(RETRY, wait, error) from error
                return wait
            if isinstance(error, (SessionClosed, SessionNotFound)):
                raise _Stop(RETRY, self._backoff(0), error) from error
            if isinstance(error, KsefUnavailable) and attempt:
                raise _Stop(UNCERTAIN, self._backoff(attempt + 1), error) from error
            return None

        try:
            self._sent_references[item.invoice_hash] = retried(send, wait_after, sleep=self.sleep)
        except KsefUnavailable:
            return None     # the invoice may or may not be stored: only the session listing can tell
        except Rejected as exc:
            return exc
        return True

    def _send_and_file(self, session, item, sent, uncertain, results):
        """Send ``item`` once and file it under ``sent`` (accepted for processing), ``uncertain``
        (answer lost) or ``results`` (refused now, or to retry later). Returns the ``_Stop``
        that should end this session's sending (a lost answer there becomes a retry), or None."""
        reference = session.reference_number
        try:
            verdict = self._send_one(session, item)
        except _Stop as exc:
            if exc.status == UNCERTAIN:
                uncertain.append(item)
                return _Stop(RETRY, exc.retry_after, exc.error)
            results[item.key] = self._outcome(item, exc.status, reference, retry_after=exc.retry_after,
                                              error=exc.error)
            return exc
        if verdict is True:
            sent[item.invoice_hash] = item
        elif verdict is None:
            uncertain.append(item)
        else:
            results[item.key] = self._outcome(item, REJECTED, reference, error=verdict)
        return None

    def _settle_uncertain(self, session, uncertain, sent, results, allow_resend):
        """Lost answers: list the session, keep what KSeF has, resend what it does not; repeat
        for answers lost again, at most ``max_attempts`` rounds (then ``pending``)."""
        reference = session.reference_number

        def settle_round():
            """One look at the session; returns the items whose answer is (again) lost."""
            self.sleep(self.uncertain_grace)
            listing = {e.invoice_hash: e for e in self._list(reference)}
            still_uncertain = []
            for item in uncertain:
                if item.invoice_hash in listing:
                    sent[item.invoice_hash] = item
                elif not allow_resend:
                    results[item.key] = self._outcome(item, RETRY, reference, retry_after=self._backoff(2))
                else:  # a stop here ends nothing: the other lost answers still need settling
                    self._send_and_file(session, item, sent, still_uncertain, results)
            uncertain[:] = still_uncertain
            return still_uncertain

        uncertain = list(uncertain)
        try:
            polling.until(settle_round, lambda rest: not rest, max_polls=self.max_attempts, pause=self._backoff,
                          sleep=self.sleep, clock=self.clock)
        except RetryLater as exc:
            for item in uncertain:
                results[item.key] = self._outcome(item, PENDING, reference, retry_after=exc.after_seconds,
                                                  error=exc.cause)
            return
        for item in uncertain:
            results[item.key] = self._outcome(item, PENDING, reference, retry_after=self._backoff(2))

    def _poll_online(self, reference, sent):
        """Wait for the sent invoices' final statuses (session list pages), then UPOs."""
        # the list endpoint allows 20 calls a minute: the pause grows to 3 s at least
        each = self.poll_each and all(h in self._sent_references for h in sent)

        def look():
            if each:   # a user waiting for a few invoices: their own status endpoint
                return {h: self._call("invoice status", self.client.invoice_status, reference,
                                      self._sent_references[h]) for h in sent}
            return {e.invoice_hash: e for e in self._list(reference)}

        try:
            listing = polling.until(
                look,
                lambda found: not any(h not in found or found[h].is_pending for h in sent),
                deadline=self.clock() + self.session_timeout, interval=min(0.2, self.poll_interval), factor=2,
                max_interval=max(self.poll_interval, 3.0), sleep=self.sleep, clock=self.clock).value
        except RetryLater as exc:
            outcomes = [self._outcome(item, PENDING, reference, retry_after=exc.after_seconds, error=exc.cause)
                        for item in sent.values()]
            for outcome in outcomes:
                outcome.invoice_reference = self._sent_references.get(outcome.invoice_hash)
            return outcomes
        found = self._outcomes_from_listing(sent, listing, reference)
        outcomes = []
        for item in sent.values():
            outcome = found.get(item.key) or self._outcome(
                item, PENDING, reference, retry_after=self.poll_interval * 10)  # sent but not listed yet
            outcome.invoice_reference = outcome.invoice_reference or self._sent_references.get(item.invoice_hash)
            outcomes.append(outcome)
        if self.upo != "none":
            self._attach_invoice_upos(outcomes, listing)
        return outcomes
