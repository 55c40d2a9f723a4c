"""The verdict on one invoice of a session, online or batch (KSeF ``faktury/weryfikacja-faktury.md``:
size, XSD, attachment, seller, issue date, duplicates; ``faktury/numer-ksef.md``: the KSeF number;
``offline/automatyczne-okreslanie-trybu-offline.md``: the invoicing mode;
``offline/korekta-techniczna.md``: technical corrections 21166 / 21167). A mixin of ``SimulatorApp``."""
import datetime
import json

from ..ksef_number import make_ksef_number
from .common import MAX_INVOICE_SIZE, MAX_INVOICE_WITH_ATTACHMENT_SIZE, context_nip, warsaw_date
from .statuses import INVOICE_STATUS
from .wire import ApiError, utc_iso


def _correction_refused(detail):
    return ApiError(400, 21167, "Status faktury nie pozwala na korektę techniczną.", [detail])


class InvoiceAcceptanceMixin:
    """Checks and numbering shared by ``online_send`` and the batch worker; call them inside
    ``store.transaction()`` (duplicates and numbering are check-then-write)."""

    def _check_technical_correction(self, corrected_hash, seller):
        codes = self.store.statuses_of_hash(corrected_hash, seller)
        if 200 in codes:
            raise _correction_refused("Nie można wysłać korekty technicznej do prawidłowo przetworzonej faktury.")
        if not [code for code in codes if code >= 400 and code != 410]:
            raise _correction_refused("Brak odrzuconej faktury o skrócie %s, którą można skorygować technicznie."
                                      % corrected_hash)
        if self.store.accepted_corrections(corrected_hash):
            raise ApiError(400, 21166, "Korekta techniczna niedostępna.",
                           ["Faktura posiada już przetworzoną prawidłowo korektę techniczną."])

    @staticmethod
    def _rejected(code, details=None, extensions=None):
        return {"status_code": code, "details": details, "extensions": extensions}

    def _evaluate(self, session, facts, size, offline_mode, invoicing_ts, online, corrected, pending):
        """Decide the final status of one decrypted invoice; ``pending`` holds the duplicate keys
        accepted earlier in the same batch (not yet in the database)."""
        limit = MAX_INVOICE_WITH_ATTACHMENT_SIZE if facts.has_attachment else MAX_INVOICE_SIZE
        if size > limit:
            return self._rejected(430, ["Przekroczono dopuszczalny rozmiar faktury: %d B (limit %d B)." % (size, limit)])
        if facts.errors:
            return self._rejected(430, facts.errors)
        if facts.has_attachment and online and corrected is None:
            return self._rejected(415, ["Faktury z załącznikami można wysyłać tylko w sesji wsadowej."])
        if facts.seller_nip != context_nip(session["context_type"], session["context_value"]):
            return self._rejected(410, ["Brak uprawnień do wystawienia faktury sprzedawcy %s w kontekście %s."
                                        % (facts.seller_nip, session["context_value"])])
        try:
            issue_date = datetime.date.fromisoformat(facts.issue_date)
        except (TypeError, ValueError):
            return self._rejected(450, ["Nieprawidłowa data wystawienia P_1: %s." % facts.issue_date])
        if issue_date > warsaw_date(self.now()):
            return self._rejected(450, ["Data wystawienia faktury (P_1 = %s) jest późniejsza niż data jej przyjęcia."
                                        % facts.issue_date])
        key = (facts.seller_nip, facts.invoice_kind, facts.invoice_number)
        original = pending.get(key) or self.store.accepted_duplicate(*key)
        if original is not None:
            return self._rejected(440, [
                "Duplikat faktury. Faktura o numerze KSeF: %s została już prawidłowo przesłana do systemu w sesji: %s"
                % original], {"originalSessionReferenceNumber": original[1], "originalKsefNumber": original[0]})
        sequence = self.store.get_meta("ksef_sequence", 0) + 1
        self.store.set_meta("ksef_sequence", sequence)
        ksef_number = make_ksef_number(facts.seller_nip, warsaw_date(invoicing_ts),
                                       "%02X%010X" % (1 if online else 2, sequence))
        pending[key] = (ksef_number, session["reference"])
        offline = offline_mode or issue_date < warsaw_date(invoicing_ts)
        return {"status_code": 200, "details": None, "extensions": None, "ksef_number": ksef_number,
                "mode": "Offline" if offline else "Online", "facts": facts}

    @staticmethod
    def _invoice_row(invoice_ref, session_ref, ordinal, invoice_hash, invoice_size, file_name, plaintext,
                     invoicing_ts, ready_at, offline_mode, corrected, result, facts=None):
        """The invoice's row in the order of ``store.INVOICE_COLUMNS``."""
        code = result["status_code"]
        facts = result.get("facts") or facts
        accepted = code == 200
        acquisition = max(ready_at - 0.001, invoicing_ts) if accepted else None
        return (
            invoice_ref, session_ref, ordinal, invoice_hash, invoice_size, file_name,
            facts.invoice_number if facts else None, facts.seller_nip if facts else None,
            facts.invoice_kind if facts else None, facts.issue_date if facts else None,
            result.get("ksef_number"), utc_iso(invoicing_ts),
            utc_iso(acquisition) if accepted else None, utc_iso(ready_at) if accepted else None,
            result.get("mode") or ("Offline" if offline_mode else "Online"), int(offline_mode), corrected,
            code, INVOICE_STATUS[code], json.dumps(result["details"]) if result["details"] else None,
            json.dumps(result["extensions"]) if result["extensions"] else None, invoicing_ts, ready_at,
            plaintext,
        )
