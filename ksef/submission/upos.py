"""UPOs for the outcomes: per invoice (pre-signed downloads in parallel) or the session's pages.

A processed session's collective UPO also says which invoices KSeF accepted, under which number,
when and in which mode (``Dokument`` of the Ministry's ``upo-v4-3.xsd``); the engine reads a batch
session's results from it (``sesja-sprawdzenie-stanu-i-pobranie-upo.md``) rather than from the
session's invoice list, which KSeF serves 20 pages a minute (UPO pages: 120 a minute, each up to
10,000 invoices; OpenAPI ``x-rate-limits``)."""
import concurrent.futures
import logging

from .. import codes
from .. import upo as upo_module
from ..client_types import InvoiceStatus, Status, parse_datetime
from ..errors import IntegrityError, KsefError, KsefUnavailable
from .items import ACCEPTED, SessionUpo
from .retry import RetryLater

_logger = logging.getLogger(__name__)


def _upo_entry(document):
    """A session-list entry of an accepted invoice, as its UPO ``Dokument`` tells it (KSeF's
    per-invoice reference number is not in the UPO). ``DataNadaniaNumeruKSeF`` is the list's
    ``acquisitionDate`` ("Data nadania numeru KSeF", OpenAPI ``SessionInvoiceStatusResponse``)."""
    return InvoiceStatus(
        reference_number=None, status=Status(codes.INVOICE_SUCCESS), invoice_number=document.invoice_number,
        ksef_number=document.ksef_number, invoice_hash=document.document_hash,
        acquisition_date=parse_datetime(document.numbered_at), invoicing_date=parse_datetime(document.sent_at),
        invoicing_mode=document.mode)


class Upos:
    """UPO downloads of ``Submitter`` (a mixin)."""

    def _download(self, url):
        """A pre-signed download (not rate-limited); a damaged one is fetched again like a lost one."""
        try:
            return self.client.download(url)
        except IntegrityError as exc:
            raise KsefUnavailable(str(exc)) from exc

    def _invoice_upo(self, session_reference, entry):
        """Per-invoice UPO: the pre-signed URL (not rate-limited), else the API by KSeF number."""
        try:
            if entry.upo_download_url:
                return self._call("download UPO", self._download, entry.upo_download_url)
            return self._call("invoice UPO", self.client.invoice_upo, session_reference,
                              ksef_number=entry.ksef_number)
        except (RetryLater, KsefError) as exc:
            _logger.info("UPO of %s not fetched now (%s); fetch it later by KSeF number",
                         entry.ksef_number, type(exc).__name__)
            return None

    def _attach_invoice_upos(self, outcomes, listing):
        """Per-invoice UPOs for accepted outcomes, downloaded in parallel."""
        wanted = [o for o in outcomes if o.status == ACCEPTED and o.upo_xml is None]
        if not wanted:
            return
        entries = {o.key: listing[o.invoice_hash] for o in wanted}
        with concurrent.futures.ThreadPoolExecutor(self.upload_workers) as pool:
            futures = {pool.submit(self._invoice_upo, o.session_reference, entries[o.key]): o for o in wanted}
            for future in concurrent.futures.as_completed(futures):
                futures[future].upo_xml = future.result()

    def _session_upo_page(self, reference, page):
        """(SessionUpo, its documents) of one page of the session UPO; None when not fetched now."""
        try:
            if page.download_url:
                xml = self._call("download session UPO", self._download, page.download_url)
            else:
                xml = self._call("session UPO", self.client.session_upo_page, reference, page.reference_number)
            parsed = upo_module.parse_upo(xml)
        except (RetryLater, KsefError, ValueError, SyntaxError) as exc:
            _logger.warning("session UPO page %s of %s not fetched (%s)", page.reference_number, reference, exc)
            return None
        if parsed["session_reference"] not in (None, reference):
            _logger.warning("session UPO page %s names session %s, not %s", page.reference_number,
                            parsed["session_reference"], reference)
            return None
        return SessionUpo(reference, page.reference_number, xml), parsed["documents"]

    def _listing_from_upo(self, reference, status):
        """{hash: InvoiceStatus} of a processed session from its UPO (the accepted invoices) and,
        when some failed, its failed list; None when that cannot account for every invoice the
        status counts (the caller then reads the whole list)."""
        if self.upo != "session" or status is None or status.code != codes.SESSION_SUCCESS or not status.upo_pages:
            return None
        total, accepted, failed = status.invoice_count, status.successful_invoice_count, status.failed_invoice_count
        if None in (total, accepted, failed) or total != accepted + failed:
            return None
        pages = []
        for page in status.upo_pages:
            fetched = self._session_upo_page(reference, page)
            if fetched is None:
                return None
            pages.append(fetched)
        listing = {}
        for _page, documents in pages:
            for document in documents:
                listing[document.document_hash] = _upo_entry(document)
        if len(listing) != accepted:
            return None
        self._session_upos[reference] = pages
        if failed:
            failures = self._list(reference, failed=True)
            if len({entry.invoice_hash for entry in failures}) != failed:
                return None
            for entry in failures:
                listing.setdefault(entry.invoice_hash, entry)
        return listing

    def _attach_session_upo(self, outcomes, reference, status):
        """The session UPO pages (downloaded once); link every accepted outcome found in them."""
        accepted = {o.invoice_hash: o for o in outcomes if o.status == ACCEPTED}
        if not accepted or not status.upo_pages:
            return
        pages = self._session_upos.get(reference)
        if pages is None:
            pages = [fetched for fetched in (self._session_upo_page(reference, page) for page in status.upo_pages)
                     if fetched is not None]
        for shared, documents in pages:
            for document in documents:
                outcome = accepted.get(document.document_hash)
                if outcome is not None and outcome.ksef_number == document.ksef_number:
                    outcome.session_upo = shared
