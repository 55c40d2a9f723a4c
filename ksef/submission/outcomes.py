"""Reading a session's results: its invoice list, outcomes per item by hash, the 440 rule."""
import logging

from .. import codes
from ..errors import KsefError
from .items import ACCEPTED, DUPLICATE_ADOPTED, PENDING, REJECTED, RETRY, Outcome
from .retry import RetryLater

_logger = logging.getLogger(__name__)

PAGE_SIZE = 1000    # the largest page KSeF serves (OpenAPI ``pageSize`` of the session invoice list)


def _entry_rank(entry):
    group = codes.invoice_group(entry.status.code)
    return 3 if group == codes.SUCCESS else 2 if group == codes.PENDING else 1


class Outcomes:
    """Listings and outcomes of ``Submitter`` (a mixin)."""

    # --- listings --------------------------------------------------------------------------

    def _list(self, reference, failed=False):
        """Every entry of a session's invoice list, page by page, each page retried on its own."""
        entries, token = [], None
        while True:
            page = self._call("list invoices", self.client.session_invoices_page, reference, PAGE_SIZE, token,
                              failed=failed)
            entries.extend(page.invoices)
            token = page.continuation_token
            if not token:
                return entries

    def _final_listing(self, reference, status=None):
        """{hash: InvoiceStatus} of a processed session: from its UPO when it can tell (see
        ``_listing_from_upo``), else its invoice list; the failed list is read only when the
        counts say the main list missed failures."""
        if reference in self._listings:
            return self._listings[reference]
        listing = self._listing_from_upo(reference, status)
        if listing is None:
            entries = self._list(reference)
            failed_seen = sum(1 for e in entries if (e.status.code or 0) >= 400)
            if status is not None and (status.failed_invoice_count or 0) > failed_seen:
                entries += self._list(reference, failed=True)
            listing = {}
            for entry in entries:
                previous = listing.get(entry.invoice_hash)
                if previous is None or _entry_rank(entry) > _entry_rank(previous):
                    listing[entry.invoice_hash] = entry
        if status is not None and status.is_final and not any(e.is_pending for e in listing.values()):
            self._listings[reference] = listing
        return listing

    # --- outcomes --------------------------------------------------------------------------

    @staticmethod
    def _outcome(item, status, session=None, entry=None, retry_after=None, error=None):
        outcome = Outcome(item.key, status, item.invoice_hash, session_reference=session, retry_after=retry_after)
        if entry is not None:
            outcome.invoice_reference = entry.reference_number
            outcome.ksef_number = entry.ksef_number
            outcome.acquisition_date = entry.acquisition_date
            outcome.invoicing_mode = entry.invoicing_mode
            if entry.status.code != codes.INVOICE_SUCCESS:
                outcome.code = entry.status.code
                outcome.description = entry.status.description
                outcome.details = list(entry.status.details)
        if error is not None:
            outcome.error = error
            if outcome.code is None:
                outcome.code = getattr(error, "code", None) or getattr(error, "http_status", None)
            outcome.description = outcome.description or str(error)
            outcome.details = outcome.details or list(getattr(error, "details", []) or [])
        return outcome

    def _outcomes_from_listing(self, items_by_hash, listing, session_reference):
        """Turn a session listing into outcomes for our items; items absent get ``None``."""
        outcomes, duplicates = {}, []
        for invoice_hash, item in items_by_hash.items():
            entry = listing.get(invoice_hash)
            if entry is None:
                continue
            group = codes.invoice_group(entry.status.code)
            if group == codes.SUCCESS:
                outcomes[item.key] = self._outcome(item, ACCEPTED, session_reference, entry)
            elif group == codes.PENDING:
                outcomes[item.key] = self._outcome(item, PENDING, session_reference, entry,
                                                   retry_after=self.poll_interval)
            elif group == codes.DUPLICATE:
                duplicates.append((item, entry))
            elif group == codes.TECHNICAL:   # not processed (KSeF's trouble, 405 included): send again
                outcomes[item.key] = self._outcome(item, RETRY, session_reference, entry,
                                                   retry_after=self._backoff(1))
            else:
                outcomes[item.key] = self._outcome(item, REJECTED, session_reference, entry)
        for item, entry in duplicates:
            outcomes[item.key] = self._resolve_duplicate(item, entry, session_reference)
        return outcomes

    def _journal_outcomes(self, outcomes):
        for start in range(0, len(outcomes), self.outcome_chunk):
            self.journal.outcomes(outcomes[start:start + self.outcome_chunk])

    # --- duplicates (440) --------------------------------------------------------------------

    def _original_entry(self, session_reference, ksef_number):
        """The entry of an already numbered invoice in its session. Such an entry no longer
        changes, so one listing of the session serves every duplicate that points at it (the
        listing endpoint allows 20 calls a minute)."""
        listing = self._original_listings.get(session_reference)
        if listing is None or not any(e.ksef_number == ksef_number for e in listing.values()):
            listing = self._original_listings[session_reference] = self._final_listing(session_reference)
        return next((e for e in listing.values() if e.ksef_number == ksef_number), None)

    def _resolve_duplicate(self, item, entry, session_reference):
        """440: adopt the original when it is our own earlier send (same hash, or the caller's
        ``is_own_original`` evidence)."""
        extensions = entry.status.extensions or {}
        original_number = extensions.get("originalKsefNumber")
        original_session = extensions.get("originalSessionReferenceNumber")
        rejected = self._outcome(item, REJECTED, session_reference, entry)
        if not original_number or not original_session:
            return rejected
        try:
            original = self._original_entry(original_session, original_number)
        except (RetryLater, KsefError) as exc:
            # Not knowing is not a rejection: KSeF holds the document; settle it on a later run.
            _logger.info("cannot read original session %s of duplicate %s: %s", original_session, item.key, exc)
            return self._outcome(item, PENDING, session_reference, entry, error=exc,
                                 retry_after=getattr(exc, "after_seconds", None) or getattr(exc, "retry_after", None)
                                 or self._backoff(1))
        same_hash = original is not None and original.invoice_hash == item.invoice_hash
        own = same_hash or (self.is_own_original is not None and bool(self.is_own_original(
            item, original_number, original.invoice_hash if original is not None else None)))
        if not own and not (self.trust_duplicates and original is None):
            if original is not None:
                rejected.details = rejected.details + [
                    "The original %s has another content hash (%s): a different document uses this number."
                    % (original_number, original.invoice_hash)]
            return rejected
        adopted = Outcome(item.key, DUPLICATE_ADOPTED, item.invoice_hash, ksef_number=original_number,
                          code=codes.INVOICE_DUPLICATE, description=entry.status.description,
                          details=list(entry.status.details), session_reference=original_session,
                          invoice_reference=original.reference_number if original else None,
                          acquisition_date=original.acquisition_date if original else None,
                          invoicing_mode=original.invoicing_mode if original else None,
                          original_session_reference=original_session)
        if not own:
            adopted.details.append("Original content hash not confirmed (trust_duplicates).")
        if self.upo != "none" and original is not None:
            adopted.upo_xml = self._invoice_upo(original_session, original)
        return adopted
