"""KSeF's own classification of an invoice sent online (``automatyczne-okreslanie-trybu-offline.md``):
when the calendar day of P_1 is earlier than the day KSeF accepted it, KSeF marks it ``Offline``
(``invoicingMode`` of the invoice status, ``TrybWysylki`` of the UPO). Such an invoice is an
offline invoice for its recipient: its printout carries KOD I "OFFLINE" and KOD II (signed with
the company's Offline certificate now), and the user is told to hand the buyer the new printout."""
import base64

from markupsafe import Markup

from odoo import _, fields, models
from odoo.exceptions import UserError, ValidationError

from ..ksef import qr as ksef_qr
from ..ksef import upo as ksef_upo
from .account_move_ksef_offline import KOD1_HEADER, KOD2_HEADER


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_ksef_offline = fields.Boolean(
        string="Classified offline by KSeF", copy=False, readonly=True, tracking=True,
        help="Sent online, but KSeF recorded it as an offline invoice (sent after the day of its issue date): "
             "its printout carries KOD I OFFLINE and KOD II, and the buyer must receive that printout.")

    def _post(self, soft=True):
        # Odoo dates an undated sale document with the poster's calendar day (UTC when his user has
        # no time zone). KSeF compares P_1 with its own, Warsaw, day: between midnight and 1-2 am in
        # Warsaw such an invoice, sent at once, would carry yesterday's date and be classified Offline.
        for move in self.filtered(lambda m: not m.invoice_date and m.country_code == "PL"
                                  and m.is_sale_document(include_receipts=True)):
            move.invoice_date = move._l10n_pl_ksef_today()
        return super()._post(soft=soft)

    def _l10n_pl_ksef_after_numbered(self, results):
        super()._l10n_pl_ksef_after_numbered(results)
        for result in results:
            move = result["move"]
            document = result.get("document")
            # What we declared: the submission's offlineMode (the invoice's mode when unknown).
            declared_offline = document.offline_mode if document else move._l10n_pl_ksef_is_offline()
            if move not in self or declared_offline or move._l10n_pl_ksef_is_offline() or move.l10n_pl_ksef_ksef_offline:
                continue
            if self._l10n_pl_ksef_invoicing_mode(result) == "Offline":
                move._l10n_pl_ksef_mark_ksef_offline()

    def _l10n_pl_ksef_invoicing_mode(self, result):
        """KSeF's ``invoicingMode`` from the status, else ``TrybWysylki`` of the invoice's UPO."""
        if result.get("invoicing_mode"):
            return result["invoicing_mode"]
        upo = result.get("upo")
        xml = result.get("upo_xml") or (upo.sudo().raw if upo else None)
        if not xml:
            return None
        try:
            documents = ksef_upo.parse_upo(xml)["documents"]
        except (ValueError, SyntaxError):
            return None
        entry = next((d for d in documents if d.ksef_number == result.get("ksef_number")), None)
        return entry.mode if entry else None

    def _l10n_pl_ksef_mark_ksef_offline(self):
        self.ensure_one()
        company = self.company_id
        values = {"l10n_pl_ksef_ksef_offline": True}
        problem = None
        try:
            signer = company._l10n_pl_ksef_offline_signer()
        except (UserError, ValidationError) as error:
            signer, problem = None, error.args[0]
        if signer:
            values["l10n_pl_ksef_qr_certificate_url"] = ksef_qr.certificate_url_from_hash(
                company._l10n_pl_ksef_qr_environment(), "Nip", company._l10n_pl_ksef_nip(), company._l10n_pl_ksef_nip(),
                signer.serial, self.l10n_pl_ksef_xml_hash, signer.private_key)
            values["l10n_pl_ksef_offline_certificate_serial"] = signer.serial
        self.sudo()._l10n_pl_ksef_write(values)
        note = _("KSeF recorded invoice %(invoice)s (KSeF number %(number)s) as an OFFLINE invoice (it reached KSeF "
                 "after the day of its issue date). Print it again and hand the buyer the new printout: it carries "
                 "KOD I \"OFFLINE\" and KOD II (CERTYFIKAT).", invoice=self.display_name,
                 number=self.l10n_pl_ksef_number)
        if problem:
            note += " " + _("KOD II cannot be signed now: %(problem)s", problem=problem)
        self.message_post(body=Markup("<p>%s</p>") % note)
        user = self.invoice_user_id or self.env.user
        self.sudo().activity_schedule("mail.mail_activity_data_todo", user_id=user.id,
                                      summary=_("Hand the buyer the OFFLINE printout"), note=note)

    def _l10n_pl_ksef_qr_codes(self):
        if not (self.l10n_pl_ksef_ksef_offline and self.l10n_pl_ksef_state == "accepted"):
            return super()._l10n_pl_ksef_qr_codes()
        company = self.company_id
        kod1 = ksef_qr.invoice_url_from_hash(company._l10n_pl_ksef_qr_environment(), company._l10n_pl_ksef_nip(),
                                             self.invoice_date, self._l10n_pl_ksef_printed_hash())
        codes = [{"kind": "kod1", "url": kod1, "label": ksef_qr.KOD1_LABEL_OFFLINE, "header": KOD1_HEADER}]
        if self.l10n_pl_ksef_qr_certificate_url:
            codes.append({"kind": "kod2", "url": self.l10n_pl_ksef_qr_certificate_url, "label": ksef_qr.KOD2_LABEL,
                          "header": KOD2_HEADER})
        for code in codes:
            code["image"] = "data:image/png;base64,%s" % base64.b64encode(ksef_qr.qr_png(code["url"])).decode()
        return codes

