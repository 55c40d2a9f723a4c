"""Reconciliation: after a timeout or a crash, ask KSeF what the journaled sessions hold."""
import logging

from .. import codes, polling
from ..errors import KsefError, SessionNotFound
from .items import ACCEPTED, BATCH, PENDING, RANK, RETRY, ReconcileResult
from .retry import RetryLater

_logger = logging.getLogger(__name__)


class Reconcile:
    """``Submitter.reconcile`` and its per-session step (a mixin)."""

    def reconcile(self, pending_sessions, items):
        """Ask KSeF what it holds from ``pending_sessions`` (``SessionRecord``s from the journal).

        ``items`` are the caller's items that may be in those sessions (any superset is fine).
        Returns ``ReconcileResult(outcomes, to_resend)``: outcomes for what KSeF has (or is still
        processing: ``pending``), and the items it does not have. Nothing is sent.
        """
        items = list(items)
        self._listings.clear()
        self._original_listings.clear()
        self._session_upos.clear()
        by_hash = {item.invoice_hash: item for item in items}
        best = {}
        settled = []
        for record in sorted(pending_sessions, key=lambda r: (r.opened_at or 0, r.reference)):
            ours = {h: by_hash[h] for h in record.hashes if h in by_hash}
            try:
                found, session_done = self._reconcile_session(record, ours)
            except RetryLater as exc:
                found = {item.key: self._outcome(item, PENDING, session=record.reference,
                                                 retry_after=exc.after_seconds, error=exc.cause)
                         for item in ours.values()}
                session_done = False
            for key, outcome in found.items():
                if key not in best or RANK[outcome.status] > RANK[best[key].status]:
                    best[key] = outcome
            if session_done:
                settled.append(record.reference)
        outcomes = [best[item.key] for item in items if item.key in best and best[item.key].status != RETRY]
        to_resend = [item for item in items if item.key not in best or best[item.key].status == RETRY]
        self._journal_outcomes(outcomes)
        for reference in settled:
            self.journal.session_settled(reference)
        return ReconcileResult(outcomes, to_resend)

    def _reconcile_session(self, record, ours):
        """Outcomes for ``ours`` ({hash: item}) from one journaled session, and whether the
        session is settled (nothing in it can change any more)."""
        reference = record.reference
        try:
            status = self._call("session status", self.client.session_status, reference)
        except SessionNotFound:
            return {}, True
        if record.kind == BATCH and status.code in (codes.SESSION_OPEN, codes.SESSION_CANCELLED):
            # never closed (or cancelled): KSeF has processed none of its invoices and never will
            # once we stop touching it; its items are not in KSeF
            return {}, True
        deadline = self.clock() + self.session_timeout
        if record.kind == BATCH:
            status = self._wait_session(reference, deadline)
            if status is None:
                return {item.key: self._outcome(item, PENDING, reference, retry_after=self.poll_interval * 10)
                        for item in ours.values()}, False
            listing = self._final_listing(reference, status)
        else:
            listing = polling.until(
                lambda: {e.invoice_hash: e for e in self._list(reference)},
                lambda found: not any(found[h].is_pending for h in ours if h in found),
                deadline=deadline, interval=min(0.2, self.poll_interval), factor=1.5,
                max_interval=self.poll_interval, sleep=self.sleep, clock=self.clock).value
            keep_open = self.online_session is not None and self.online_session.reference_number == reference
            if status.code == codes.SESSION_OPEN and not keep_open:   # still open: close it so KSeF issues the session UPO
                try:
                    self._call("close online session", self.client.close_online_session, reference)
                except (RetryLater, KsefError) as exc:
                    _logger.info("online session %s not closed during reconcile: %s", reference, exc)
        found = self._outcomes_from_listing(ours, listing, reference)
        accepted = [o for o in found.values() if o.status == ACCEPTED]
        if self.upo != "none" and accepted:
            if record.kind == BATCH and self.upo == "session":
                self._attach_session_upo(accepted, reference, status)
            else:
                self._attach_invoice_upos(accepted, listing)
        done = not any(o.status == PENDING for o in found.values())
        return found, done
