"""A batch session: package and open, parallel part uploads, close, wait, read every result."""
import concurrent.futures
import logging
import time

from .. import codes, polling
from ..errors import KsefError, KsefUnavailable, RateLimited, SessionClosed
from .items import BATCH, PENDING, RETRY, SessionRecord
from .retry import RetryLater

_logger = logging.getLogger(__name__)


class BatchRun:
    """Batch sessions of ``Submitter`` (a mixin)."""

    def _run_batch(self, session_plan):
        items = session_plan.items
        named = [("%05d.xml" % index, item.xml_bytes) for index, item in enumerate(items, start=1)]
        try:
            with self._phase("package+open"):
                session = self._call("open batch session", self.client.open_batch_session, named,
                                     offline_mode=session_plan.offline_mode, max_part_size=self.max_part_size)
        except RetryLater as exc:
            return [self._outcome(item, RETRY, retry_after=exc.after_seconds, error=exc.cause) for item in items]
        except KsefError as exc:   # refused outright (e.g. 21157 sizes): nothing was opened
            return [self._outcome(item, RETRY, retry_after=self.backoff_cap, error=exc) for item in items]
        reference = session.reference_number
        record = SessionRecord(reference, BATCH, session_plan.offline_mode,
                               {item.invoice_hash: item.key for item in items}, time.time())
        self.journal.session_opened(record)

        try:
            with self._phase("upload"):
                self._upload_parts(session)
        except (RetryLater, KsefError) as exc:
            # never closed: KSeF will cancel the session, so none of its items can be in KSeF
            after = exc.after_seconds if isinstance(exc, RetryLater) else self._backoff(2)
            outcomes = [self._outcome(item, RETRY, reference, retry_after=after,
                                      error=getattr(exc, "cause", None) or exc) for item in items]
            self._journal_outcomes(outcomes)
            self.journal.session_settled(reference)
            return outcomes

        with self._phase("close"):
            closed = self._close_batch(reference)
        if closed is not True:
            status = RETRY if closed is False else PENDING
            outcomes = [self._outcome(item, status, reference, retry_after=self.poll_interval * 4)
                        for item in items]
            self._journal_outcomes(outcomes)
            if status == RETRY:
                self.journal.session_settled(reference)
            return outcomes
        self.journal.session_closed(reference)
        return self._collect(record, {item.invoice_hash: item for item in items})

    def _upload_parts(self, session):
        uploads = self.client.batch_part_uploads(session)   # KsefError when a part has no address

        def upload(request, content):
            self._call("upload part", self.client.upload_batch_part, request, content, session.reference_number)
            return request.ordinal_number

        workers = min(self.upload_workers, len(uploads))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(upload, request, content) for request, content in uploads]
            try:
                for future in concurrent.futures.as_completed(futures):
                    self.journal.batch_part_uploaded(session.reference_number, future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _close_batch(self, reference):
        """True: closed (KSeF processes it); False: certainly not closed; None: unknown."""
        for attempt in range(self.max_attempts):
            try:
                self.stats["requests"] += 1
                self.client.close_batch_session(reference)
                return True
            except RateLimited as exc:
                wait = self._wait_for(exc, attempt)
                if wait > self.max_inline_wait:
                    return False        # a 429 is answered before anything happens
                self.sleep(wait)
                continue
            except SessionClosed:
                pass                    # maybe our own earlier close got through: look below
            except KsefUnavailable:
                self.sleep(min(self.uncertain_grace, self.max_inline_wait))
            except KsefError as exc:
                _logger.warning("closing batch session %s refused: %s", reference, exc)
                return False
            try:
                status = self._call("session status", self.client.session_status, reference)
            except RetryLater:
                return None
            if status.code == codes.SESSION_CANCELLED:
                return False            # cancelled: nothing of it will ever be processed
            if status.code != codes.SESSION_OPEN:
                return True             # 150 or final: our close got through
        return None

    def _wait_session(self, reference, deadline):
        """Poll until the session's status is final; None when the deadline passes first."""
        polled = polling.until(
            lambda: self._call("session status", self.client.session_status, reference),
            lambda status: status.is_final, deadline=deadline, interval=min(0.2, self.poll_interval),
            factor=1.5, max_interval=self.poll_interval, sleep=self.sleep, clock=self.clock)
        return polled.value if polled.done else None

    def _collect(self, record, items_by_hash):
        """After closing: wait, read every result, map by hash, UPO, journal."""
        reference = record.reference
        deadline = self.clock() + self.session_timeout
        try:
            with self._phase("wait processing"):
                status = self._wait_session(reference, deadline)
            if status is None:
                outcomes = [self._outcome(item, PENDING, reference, retry_after=self.poll_interval * 10)
                            for item in items_by_hash.values()]
                self._journal_outcomes(outcomes)
                return outcomes
            with self._phase("read results"):
                listing = self._final_listing(reference, status)
                found = self._outcomes_from_listing(items_by_hash, listing, reference)
        except RetryLater as exc:
            outcomes = [self._outcome(item, PENDING, reference, retry_after=exc.after_seconds, error=exc.cause)
                        for item in items_by_hash.values()]
            self._journal_outcomes(outcomes)
            return outcomes
        outcomes = []
        for item in items_by_hash.values():
            outcome = found.get(item.key)
            if outcome is None:  # the processed session does not list it: it is not in KSeF
                outcome = self._outcome(item, RETRY, reference, retry_after=self._backoff(1))
                outcome.code, outcome.description = status.code, status.status.description
            outcomes.append(outcome)
        with self._phase("upo"):
            if self.upo == "session":
                self._attach_session_upo(outcomes, reference, status)
            elif self.upo == "invoice":
                self._attach_invoice_upos(outcomes, listing)
        with self._phase("journal"):
            self._journal_outcomes(outcomes)
            self.journal.session_settled(reference)
        return outcomes
