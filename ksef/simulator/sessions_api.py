"""Sessions (KSeF ``sesja-interaktywna.md``, ``sesja-wsadowa.md``): what online and batch sessions
share (form code, session key, status and its changes with time, GET /sessions/{ref}) and the
online session itself (open, send, close). Batch: ``batch_api.py``; the verdict on one invoice:
``acceptance.py``. A mixin of ``SimulatorApp``."""
import json

from .. import crypto
from .. import upo as upo_xml
from . import keys as mf_keys
from .common import DOWNLOAD_URL_LIFETIME, FA3_FORM, ONLINE_SESSION_LIFETIME, UPO_PAGE_SIZE, b64decode, \
    context_nip, require
from .statuses import session_status_description
from .wire import ApiError, Response, json_response, utc_iso, validation_error


def status_refusal(code, what):
    """The 21180 error: the session's status ``code`` forbids ``what``."""
    return ApiError(400, 21180, "Status sesji nie pozwala na wykonanie operacji.",
                    ["Status sesji %d uniemożliwia %s." % (code, what)])


def session_full(ref, limit):
    return ApiError(400, 21155, "Przekroczono dozwoloną liczbę faktur w sesji.",
                    ["Sesja o numerze referencyjnym %s osiągnęła dozwolony limit liczby faktur %d." % (ref, limit)])


def check_hash_and_size(content, size, content_hash, what):
    """21402 / 21403 when ``content`` does not match its declared size or SHA-256 (``what``: which file)."""
    if size != len(content):
        raise ApiError(400, 21402, "Nieprawidłowy rozmiar pliku.",
                       ["Długość treści nie zgadza się z rozmiarem pliku (%s)." % what])
    if content_hash != crypto.sha256_b64(content):
        raise ApiError(400, 21403, "Nieprawidłowy skrót pliku.",
                       ["Skrót treści nie zgadza się ze skrótem pliku (%s)." % what])


class SessionsApiMixin:
    """Handlers of ``/v2/sessions/online*`` and ``GET /v2/sessions/{ref}``."""

    def session_routes(self):
        return [
            ("POST", r"/v2/sessions/online", self.online_open, "access"),
            ("POST", r"/v2/sessions/online/(?P<ref>[^/]+)/invoices", self.online_send, "access"),
            ("POST", r"/v2/sessions/online/(?P<ref>[^/]+)/close", self.online_close, "access"),
        ]

    def session_status_routes(self):
        return [("GET", r"/v2/sessions/(?P<ref>[^/]+)", self.session_status, "access")]

    # ------------------------------------------------------------------ common
    @staticmethod
    def _read_form_code(data):
        form = data.get("formCode")
        if not isinstance(form, dict) or any(not isinstance(form.get(k), str) for k in FA3_FORM):
            raise validation_error("formCode: wymagane systemCode, schemaVersion i value.")
        if {k: form[k] for k in FA3_FORM} != FA3_FORM:
            raise validation_error("Symulator obsługuje tylko formularz FA (3) 1-0E FA, otrzymano %s %s %s."
                                   % (form["systemCode"], form["schemaVersion"], form["value"]))
        return form

    def _unwrap_session_key(self, data):
        """(aes_key, iv, key_error) from ``encryption``; 21470 on an unknown publicKeyId."""
        encryption = data.get("encryption")
        if not isinstance(encryption, dict):
            raise validation_error("Pole encryption jest wymagane.")
        wrapped = b64decode(encryption.get("encryptedSymmetricKey"), "encryption.encryptedSymmetricKey")
        iv = b64decode(encryption.get("initializationVector"), "encryption.initializationVector")
        if len(iv) != 16:
            raise validation_error("initializationVector musi mieć 16 bajtów.")
        key = self._rsa_decrypt(mf_keys.SYMMETRIC_KEY_ENCRYPTION, encryption.get("publicKeyId"), wrapped)
        if key is None or len(key) != 32:
            return None, iv, 1
        return key, iv, 0

    def _new_session(self, request, kind, ref, form, now, valid_until, code, key, iv, key_error, **fields):
        ctx = request.auth["ctx"]
        self.store.add_session(dict({
            "reference": ref, "kind": kind, "context_type": ctx["type"], "context_value": ctx["value"],
            "auth_reference": request.auth["sub"], "form_code": json.dumps(form), "created": utc_iso(now),
            "created_ts": now, "updated": utc_iso(now), "valid_until": utc_iso(valid_until),
            "valid_until_ts": valid_until, "status_code": code,
            "status_description": session_status_description(kind, code), "aes_key": key, "iv": iv,
            "key_error": key_error}, **fields))

    def _session(self, request, ref, kind=None):
        row = self.store.session(ref)
        if row is None or row["context_value"] != request.auth["ctx"]["value"] or (kind and row["kind"] != kind):
            raise ApiError(400, 21173, "Brak sesji o wskazanym numerze referencyjnym.",
                           ["Sesja o numerze referencyjnym %s nie została znaleziona." % ref])
        return self._refresh_session(row)

    def _set_session_status(self, ref, code, details=None, **fields):
        kind = self.store.session(ref)["kind"]
        self.store.update_session(ref, status_code=code, status_description=session_status_description(kind, code),
                                  status_details=json.dumps(details) if details else None,
                                  updated=utc_iso(self.now()), **fields)

    def _refresh_session(self, row):
        """Apply what time alone changes: expiry, and the end of an online session's processing."""
        now = self.now()
        ref = row["reference"]
        changed = False
        with self.store.transaction():
            row = self.store.session(ref)
            if row["status_code"] == 100 and now >= row["valid_until_ts"]:
                if row["kind"] == "Online":
                    self._close_online(row)
                else:
                    self._set_session_status(ref, 440, ["Przekroczono czas wysyłki"], closed=utc_iso(now))
                changed = True
                row = self.store.session(ref)
            if row["kind"] == "Online" and row["status_code"] == 170 and now >= row["final_at"]:
                self._finish_session(ref, row["invoice_count"])
                changed = True
            if changed:
                row = self.store.session(ref)
        return row

    def _close_online(self, row):
        latest = self.store.latest_ready_at(row["reference"])
        now = self.now()
        self._set_session_status(row["reference"], 170, closed=utc_iso(now),
                                 final_at=max(now, latest) + self.config["processing_delay"])

    def _finish_session(self, ref, invoice_count):
        successful = self.store.accepted_count(ref)
        if invoice_count == 0:
            self._set_session_status(ref, 440, ["Nie przesłano faktur"])
        elif successful == 0:
            self._set_session_status(ref, 445)
        else:
            self._set_session_status(ref, 200)
            for page in upo_xml.page_ranges(successful, UPO_PAGE_SIZE):
                self.store.add_upo_page(self.reference("EU"), ref, page.page)

    def _session_status_obj(self, row):
        status = {"code": row["status_code"], "description": row["status_description"]}
        if row["status_details"]:
            status["details"] = json.loads(row["status_details"])
        return status

    def session_status(self, request, ref):
        row = self._session(request, ref)
        ok, failed = self.store.invoice_counts(ref, self.now())
        upo = None
        pages = self.store.upo_pages(ref)
        if pages:
            upo = {"pages": []}
            for page in pages:
                url, expires = self.signed_url(request, "/storage/session-upo/%s/%s" % (ref, page["reference"]),
                                               DOWNLOAD_URL_LIFETIME)
                upo["pages"].append({"referenceNumber": page["reference"], "downloadUrl": url,
                                     "downloadUrlExpirationDate": utc_iso(expires)})
        return json_response(200, {
            "status": self._session_status_obj(row),
            "dateCreated": row["created"],
            "dateUpdated": row["updated"],
            "validUntil": row["valid_until"],
            "upo": upo,
            "invoiceCount": row["invoice_count"],
            "successfulInvoiceCount": ok,
            "failedInvoiceCount": failed,
        })

    # ------------------------------------------------------------------ online sessions
    def online_open(self, request):
        data = request.json()
        form = self._read_form_code(data)
        key, iv, key_error = self._unwrap_session_key(data)
        now = self.now()
        ref = self.reference("SO", now)
        valid_until = now + ONLINE_SESSION_LIFETIME
        self._new_session(request, "Online", ref, form, now, valid_until, 415 if key_error else 100,
                          key, iv, key_error)
        return json_response(201, {"referenceNumber": ref, "validUntil": utc_iso(valid_until)})

    def online_send(self, request, ref):
        session = self._session(request, ref, "Online")
        data = request.json()
        invoice_hash = require(data, "invoiceHash")
        invoice_size = require(data, "invoiceSize", int)
        encrypted_hash = require(data, "encryptedInvoiceHash")
        encrypted_size = require(data, "encryptedInvoiceSize", int)
        content = b64decode(data.get("encryptedInvoiceContent"), "encryptedInvoiceContent")
        offline_mode = data.get("offlineMode", False)
        corrected = data.get("hashOfCorrectedInvoice")
        if not isinstance(offline_mode, bool):
            raise validation_error("offlineMode musi być wartością logiczną.")
        for field, value in (("invoiceHash", invoice_hash), ("encryptedInvoiceHash", encrypted_hash),
                             ("hashOfCorrectedInvoice", corrected)):
            if value is not None and (not isinstance(value, str) or len(value) != 44):
                raise validation_error("%s: oczekiwano SHA-256 w Base64 (44 znaki)." % field)
        if corrected is not None and not offline_mode:
            raise validation_error("Korekta techniczna (hashOfCorrectedInvoice) wymaga offlineMode = true.")
        if session["status_code"] != 100:
            raise status_refusal(session["status_code"], "wysyłkę faktur")
        limit = int(self.config["max_invoices_per_session"])
        if session["invoice_count"] >= limit:
            raise session_full(ref, limit)
        check_hash_and_size(content, encrypted_size, encrypted_hash, "zaszyfrowana faktura")
        try:
            plaintext = crypto.aes_decrypt(content, bytes(session["aes_key"]), bytes(session["iv"]))
        except ValueError:
            plaintext = None
        if plaintext is not None:
            check_hash_and_size(plaintext, invoice_size, invoice_hash, "faktura")
        facts = self.inspector.inspect(plaintext) if plaintext is not None else None
        now = self.now()
        with self.store.transaction():
            if corrected is not None:
                seller = (facts.seller_nip if facts and facts.seller_nip
                          else context_nip(session["context_type"], session["context_value"]))
                self._check_technical_correction(corrected, seller)
            count = self.store.session(ref)["invoice_count"]
            if count >= limit:
                raise session_full(ref, limit)
            invoice_ref = self.reference("EE", now)
            if plaintext is None:
                result = self._rejected(435, ["Nie udało się odszyfrować faktury kluczem sesji."])
            else:
                result = self._evaluate(session, facts, len(plaintext), offline_mode, now, online=True,
                                        corrected=corrected, pending={})
            row = self._invoice_row(invoice_ref, ref, count + 1, invoice_hash, invoice_size, None, plaintext,
                                    now, now + self.config["processing_delay"], offline_mode, corrected, result)
            self.store.add_invoices([row])
            self.store.count_invoice(ref, utc_iso(now))
        response = json_response(202, {"referenceNumber": invoice_ref})
        response.stall_seconds = self._take_stall()
        return response

    def online_close(self, request, ref):
        session = self._session(request, ref, "Online")
        with self.store.transaction():
            current = self.store.session(ref)
            if current["status_code"] != 100:
                raise status_refusal(session["status_code"], "jej zamknięcie")
            self._close_online(current)
        return Response(204)

