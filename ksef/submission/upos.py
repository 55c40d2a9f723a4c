"""UPOs for the outcomes: per invoice (pre-signed downloads in parallel) or the session's pages."""
import concurrent.futures
import logging

from .. import upo as upo_module
from ..errors import IntegrityError, KsefError, KsefUnavailable
from .items import ACCEPTED, SessionUpo
from .retry import RetryLater

_logger = logging.getLogger(__name__)


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

    def _attach_session_upo(self, outcomes, reference, status):
        """Download the session UPO pages once; link every accepted outcome found in them."""
        accepted = {o.invoice_hash: o for o in outcomes if o.status == ACCEPTED}
        if not accepted or not status.upo_pages:
            return
        for page in status.upo_pages:
            try:
                if page.download_url:
                    xml = self._call("download session UPO", self._download, page.download_url)
                else:
                    xml = self._call("session UPO", self.client.session_upo_page, reference, page.reference_number)
            except (RetryLater, KsefError) as exc:
                _logger.warning("session UPO page %s of %s not fetched (%s)", page.reference_number, reference, exc)
                continue
            shared = SessionUpo(reference, page.reference_number, xml)
            for document in upo_module.parse_upo(xml)["documents"]:
                outcome = accepted.get(document.document_hash)
                if outcome is not None and outcome.ksef_number == document.ksef_number:
                    outcome.session_upo = shared
