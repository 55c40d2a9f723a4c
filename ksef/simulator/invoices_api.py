"""Invoices of a session (KSeF ``faktury/sesje/sesja-sprawdzenie-stanu-i-pobranie-upo.md``): status
and lists, per-invoice and per-session UPO v4-3 (also behind pre-signed ``/storage`` addresses)
and ``GET /invoices/ksef/{n}``. A mixin of ``SimulatorApp``."""
import datetime
import json

from .. import crypto
from .. import upo as upo_xml
from .common import DOWNLOAD_URL_LIFETIME, UPO_PAGE_SIZE, WARSAW, context_nip
from .queries_api import page_response, read_page
from .received import invoice_parties
from .statuses import INVOICE_STATUS
from .wire import ApiError, ProblemError, json_response, utc_iso, xml_response

UPO_NOT_FOUND = "Nie znaleziono UPO dla podanych kryteriów."


def _upo_document(row):
    return upo_xml.UpoDocument(
        row["seller_nip"], row["ksef_number"], row["invoice_number"], row["issue_date"],
        datetime.datetime.fromisoformat(row["invoicing_date"]).astimezone(WARSAW),
        datetime.datetime.fromisoformat(row["acquisition_date"]).astimezone(WARSAW),
        row["invoice_hash"], row["invoicing_mode"])


def _xml_with_hash(body):
    return xml_response(body, {"x-ms-meta-hash": crypto.sha256_b64(body)})


class InvoicesApiMixin:
    """Handlers of ``/v2/sessions/{ref}/invoices*``, ``/v2/sessions/{ref}/upo/*``,
    ``/v2/invoices/ksef/*`` and ``/storage/*``."""

    def invoice_routes(self):
        return [
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/invoices", self.session_invoices, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/invoices/failed", self.session_failed_invoices, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/invoices/ksef/(?P<ksef>[^/]+)/upo", self.invoice_upo_by_ksef, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/invoices/(?P<inv>[^/]+)/upo", self.invoice_upo, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/invoices/(?P<inv>[^/]+)", self.invoice_status, "access"),
            ("GET", r"/v2/sessions/(?P<ref>[^/]+)/upo/(?P<upo>[^/]+)", self.session_upo, "access"),
            ("GET", r"/v2/invoices/ksef/(?P<ksef>[^/]+)", self.invoice_download, "access"),
        ]

    def storage_routes(self):
        return [
            ("GET", r"/storage/invoice-upo/(?P<ref>[^/]+)/(?P<inv>[^/]+)", self.storage_invoice_upo, "signed"),
            ("GET", r"/storage/session-upo/(?P<ref>[^/]+)/(?P<upo>[^/]+)", self.storage_session_upo, "signed"),
        ]

    # ------------------------------------------------------------------ status and lists
    def _invoice_view(self, request, row, session_ref):
        now = self.now()
        view = {
            "ordinalNumber": row["ordinal"],
            "invoiceNumber": row["invoice_number"],
            "ksefNumber": None,
            "referenceNumber": row["reference"],
            "invoiceHash": row["invoice_hash"],
            "invoiceFileName": row["file_name"],
            "acquisitionDate": None,
            "invoicingDate": row["invoicing_date"],
            "permanentStorageDate": None,
            "upoDownloadUrl": None,
            "upoDownloadUrlExpirationDate": None,
            "invoicingMode": None,
        }
        if now < row["ready_at"]:
            delay = self.config["processing_delay"]
            code = 100 if now < row["received_ts"] + delay / 2 else 150
            view["status"] = {"code": code, "description": INVOICE_STATUS[code]}
            return view
        status = {"code": row["status_code"], "description": row["status_description"]}
        if row["status_details"]:
            status["details"] = json.loads(row["status_details"])
        if row["status_extensions"]:
            status["extensions"] = json.loads(row["status_extensions"])
        view["status"] = status
        view["invoicingMode"] = row["invoicing_mode"]
        if row["status_code"] == 200:
            url, expires = self.signed_url(request, "/storage/invoice-upo/%s/%s" % (session_ref, row["reference"]),
                                           DOWNLOAD_URL_LIFETIME)
            view.update(ksefNumber=row["ksef_number"], acquisitionDate=row["acquisition_date"],
                        permanentStorageDate=row["permanent_storage_date"], upoDownloadUrl=url,
                        upoDownloadUrlExpirationDate=utc_iso(expires))
        return view

    def _invoice_list(self, request, ref, failed_only):
        self._session(request, ref)
        size, offset = read_page(request)
        rows = self.store.session_invoices(ref, size + 1, offset, self.now() if failed_only else None)
        more = len(rows) > size
        return page_response("invoices", [self._invoice_view(request, row, ref) for row in rows[:size]],
                             offset, more)

    def session_invoices(self, request, ref):
        return self._invoice_list(request, ref, failed_only=False)

    def session_failed_invoices(self, request, ref):
        return self._invoice_list(request, ref, failed_only=True)

    def invoice_status(self, request, ref, inv):
        self._session(request, ref)
        row = self.store.session_invoice(ref, inv)
        if row is None:
            raise ApiError(400, 21405, "Błąd walidacji danych wejściowych.",
                           ["Faktura o numerze referencyjnym %s nie istnieje w sesji %s." % (inv, ref)])
        return json_response(200, self._invoice_view(request, row, ref))

    # ------------------------------------------------------------------ UPO
    def _auth_for_upo(self, session):
        auth = self.store.auth_operation(session["auth_reference"])
        if auth is None:
            return {"auth_token_reference": session["auth_reference"]}
        if auth["document_hash"]:
            return {"auth_document_hash": auth["document_hash"]}
        return {"auth_token_reference": auth["token_reference"]}

    def _invoice_upo_bytes(self, session, row):
        if row is None or row["status_code"] != 200 or row["ready_at"] > self.now():
            return None
        return upo_xml.build_upo(session["reference"], session["context_type"], session["context_value"],
                                 [_upo_document(row)], **self._auth_for_upo(session))

    def _session_upo_bytes(self, session, upo_ref):
        page = self.store.upo_page(upo_ref, session["reference"])
        if page is None:
            return None
        rows = self.store.upo_invoices(session["reference"])
        info = upo_xml.page_ranges(len(rows), UPO_PAGE_SIZE)[page - 1]
        documents = [_upo_document(row) for row in rows[info.range_from - 1:info.range_to]]
        return upo_xml.build_upo(session["reference"], session["context_type"], session["context_value"],
                                 documents, page=info, **self._auth_for_upo(session))

    def _invoice_upo_answer(self, request, ref, missing, **lookup):
        """The UPO of the session's invoice found by ``lookup`` (reference= or ksef_number=);
        21178 with the detail ``missing`` when there is none (yet)."""
        session = self._session(request, ref)
        body = self._invoice_upo_bytes(session, self.store.upo_invoice(ref, **lookup))
        if body is None:
            raise ApiError(400, 21178, UPO_NOT_FOUND, [missing])
        return _xml_with_hash(body)

    def invoice_upo(self, request, ref, inv):
        return self._invoice_upo_answer(request, ref, "UPO faktury %s w sesji %s nie zostało znalezione."
                                        % (inv, ref), reference=inv)

    def invoice_upo_by_ksef(self, request, ref, ksef):
        return self._invoice_upo_answer(
            request, ref, "UPO o numerze KSeF %s i numerze referencyjnym sesji %s nie zostało znalezione."
            % (ksef, ref), ksef_number=ksef)

    def session_upo(self, request, ref, upo):
        body = self._session_upo_bytes(self._session(request, ref), upo)
        if body is None:
            raise ApiError(400, 21178, UPO_NOT_FOUND,
                           ["UPO o numerze referencyjnym %s dla sesji %s nie zostało znalezione." % (upo, ref)])
        return _xml_with_hash(body)

    def storage_invoice_upo(self, request, ref, inv):
        session = self.store.session(ref)
        body = self._invoice_upo_bytes(session, self.store.upo_invoice(ref, reference=inv)) if session else None
        if body is None:
            raise ProblemError(404, "Nie znaleziono UPO.")
        return _xml_with_hash(body)

    def storage_session_upo(self, request, ref, upo):
        session = self.store.session(ref)
        body = self._session_upo_bytes(session, upo) if session else None
        if body is None:
            raise ProblemError(404, "Nie znaleziono UPO.")
        return _xml_with_hash(body)

    # ------------------------------------------------------------------ the invoice itself
    def invoice_download(self, request, ksef):
        row = self.store.accepted_invoice(ksef, "xml, seller_nip, ready_at")
        nip = context_nip(request.auth["ctx"]["type"], request.auth["ctx"]["value"])
        # the seller or the buyer (Podmiot2) of the invoice may download it
        if row is None or nip not in (row["seller_nip"], invoice_parties(row["xml"]).get("buyer_nip")):
            raise ApiError(400, 21164, "Faktura o podanym identyfikatorze nie istnieje.",
                           ["Faktura o numerze KSeF %s nie została znaleziona." % ksef])
        if row["ready_at"] > self.now():
            raise ApiError(400, 21165, "Faktura o podanym numerze KSeF nie jest jeszcze dostępna.",
                           ["Faktura o numerze KSeF %s została przetworzona, ale nie jest jeszcze dostępna do pobrania."
                            " Spróbuj ponownie później." % ksef])
        return _xml_with_hash(bytes(row["xml"]))
