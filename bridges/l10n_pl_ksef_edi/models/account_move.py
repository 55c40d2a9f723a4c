"""One verdict: l10n_pl_ksef decides, l10n_pl_edi's fields show the same final answer; an
invoice l10n_pl_edi got accepted is adopted by l10n_pl_ksef instead of being sent again."""
import base64

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from odoo.addons.l10n_pl_ksef.ksef import crypto
from odoo.addons.l10n_pl_ksef.models.account_move_ksef_send import POSTABLE_STATES

FINAL_VERDICTS = ("accepted", "adopted", "rejected")


class AccountMove(models.Model):
    _inherit = "account.move"

    # ---- one verdict: ours, mirrored into l10n_pl_edi's fields -------------------------------

    @api.model
    def _l10n_pl_ksef_apply_results(self, results, bulk=False):
        # EXTENDS l10n_pl_ksef: the one place where a KSeF verdict lands on an invoice.
        outcome = super()._l10n_pl_ksef_apply_results(results, bulk=bulk)
        moves = self.browse([r["move"].id for r in results if r["verdict"] in FINAL_VERDICTS])
        moves._l10n_pl_ksef_edi_mirror()
        return outcome

    def _l10n_pl_ksef_edi_mirror(self):
        """Write our final verdict into l10n_pl_edi's fields so its reports, its reset-to-draft
        rule and its crons agree with ours. Only final verdicts: its status cron polls every
        invoice it sees as 'sent', and ours are not its to poll."""
        for move in self.sudo():
            if move.l10n_pl_ksef_state == "accepted":
                document = move.l10n_pl_ksef_document_ids.filtered(
                    lambda d: d.state == "accepted" and d.ksef_number == move.l10n_pl_ksef_number)[:1]
                values = {
                    "l10n_pl_edi_status": "accepted",
                    "l10n_pl_edi_number": move.l10n_pl_ksef_number,
                    "l10n_pl_edi_ref": document.invoice_reference or move.l10n_pl_edi_ref,
                    "l10n_pl_edi_session_id": document.session_reference or move.l10n_pl_edi_session_id,
                    "l10n_pl_edi_header": False,
                }
                # A file l10n_pl_edi sent stays: it is what KSeF holds under that number.
                if not move.l10n_pl_edi_attachment_id and move.l10n_pl_ksef_xml_id:
                    values["l10n_pl_edi_attachment_file"] = base64.b64encode(move.l10n_pl_ksef_xml_id.raw)
                if not move.l10n_pl_edi_upo_id and move.l10n_pl_ksef_upo_id:
                    values["l10n_pl_edi_upo_file"] = base64.b64encode(move.l10n_pl_ksef_upo_id.raw)
            elif move.l10n_pl_ksef_state == "rejected":
                values = {"l10n_pl_edi_status": "rejected", "l10n_pl_edi_number": False, "l10n_pl_edi_header": False}
            else:
                continue
            move._l10n_pl_ksef_write(values)

    # ---- adoption of what l10n_pl_edi got accepted ------------------------------------------

    def _l10n_pl_ksef_post(self):
        # EXTENDS l10n_pl_ksef: an invoice KSeF already has from l10n_pl_edi is not sent again.
        self.ensure_one()
        if self._l10n_pl_ksef_edi_adopt():
            return True
        return super()._l10n_pl_ksef_post()

    def _l10n_pl_ksef_edi_adopt(self):
        """Adopt the invoices that l10n_pl_edi got accepted (sent before this add-on was there,
        or through its own sender): our state becomes accepted with its KSeF number, its file
        and UPO. Returns True when every invoice of ``self`` was adopted."""
        adopted = self.browse()
        for move in self:
            if (move.l10n_pl_ksef_state not in POSTABLE_STATES or not move._l10n_pl_ksef_is_applicable()
                    or move.l10n_pl_ksef_state == "offline"):
                continue
            if move.l10n_pl_edi_status == "sent" and move.l10n_pl_edi_ref:
                move._l10n_pl_ksef_edi_refresh_their_status()
            if move.l10n_pl_edi_status != "accepted" or not move.l10n_pl_edi_number:
                continue
            move._l10n_pl_ksef_edi_adopt_one()
            adopted |= move
        return bool(self) and adopted == self

    def _l10n_pl_ksef_edi_refresh_their_status(self):
        """Ask KSeF (through l10n_pl_edi, in its environment) about an invoice it sent; quietly
        nothing when its environment cannot be this company's (a 440 will tell instead)."""
        if not self.company_id._l10n_pl_ksef_edi_mode_fits():
            return
        try:
            with self.env.cr.savepoint():
                super(AccountMove, self.sudo()).action_l10n_pl_edi_update_invoice_status()
        except UserError:
            pass

    def _l10n_pl_ksef_edi_adopt_one(self):
        self.ensure_one()
        number = self.l10n_pl_edi_number
        their_xml = self.sudo().l10n_pl_edi_attachment_id.raw or b""
        if their_xml and not self.l10n_pl_ksef_xml_id:
            self._l10n_pl_ksef_store_frozen_xml(their_xml, fields.Datetime.now(), "FA3", _(
                "FA(3) e-invoice sent to KSeF by Odoo's KSeF module (SHA-256 %s)", crypto.sha256_b64(their_xml)))
        document = self.env["l10n_pl_ksef.document"].sudo().create({
            "move_id": self.id,
            "company_id": self.company_id.id,
            "session_reference": self.l10n_pl_edi_session_id,
            "invoice_reference": self.l10n_pl_edi_ref,
            "invoice_hash": crypto.sha256_b64(their_xml) if their_xml else self.l10n_pl_ksef_xml_hash,
            "state": "sending",
            "sent_at": fields.Datetime.now(),
        })
        self._l10n_pl_ksef_log(_("Sent to KSeF by Odoo's KSeF module (l10n_pl_edi) with KSeF number %(number)s: "
                                 "adopted, not sent again.", number=number))
        self._l10n_pl_ksef_apply_results([{
            "move": self, "document": document, "verdict": "adopted", "ksef_number": number,
            "upo_xml": self.sudo().l10n_pl_edi_upo_id.raw or None,
            "document_values": {"status_code": 200, "status_description": _("Accepted (sent by l10n_pl_edi)")},
        }])

    # ---- a 440 whose original is l10n_pl_edi's sending is ours too --------------------------

    def _l10n_pl_ksef_own_ksef_numbers(self):
        # EXTENDS l10n_pl_ksef
        return super()._l10n_pl_ksef_own_ksef_numbers() | ({self.l10n_pl_edi_number} - {False})

    def _l10n_pl_ksef_own_hashes(self):
        # EXTENDS l10n_pl_ksef: the file l10n_pl_edi sent for this invoice
        their_xml = self.sudo().l10n_pl_edi_attachment_id.raw
        return super()._l10n_pl_ksef_own_hashes() | ({crypto.sha256_b64(their_xml)} if their_xml else set())

    # ---- l10n_pl_edi's own ways to KSeF: only in an environment it can express --------------

    def action_l10n_pl_edi_update_invoice_status(self):
        # EXTENDS l10n_pl_edi: only its own earlier sendings are its to ask about, in its
        # environment; what it learns is adopted.
        self.ensure_one()
        self.company_id._l10n_pl_ksef_edi_check_mode()
        result = super().action_l10n_pl_edi_update_invoice_status()
        self._l10n_pl_ksef_edi_adopt()
        return result

    def action_l10n_pl_edi_get_invoice_UPO(self):
        # EXTENDS l10n_pl_edi: our UPO is already on the invoice; its own download only where it can reach KSeF.
        self.ensure_one()
        self.company_id._l10n_pl_ksef_edi_check_mode()
        return super().action_l10n_pl_edi_get_invoice_UPO()

    def _cron_l10n_pl_edi_check_invoice_status(self):
        # EXTENDS l10n_pl_edi: never ask an environment that is not the company's.
        if self.env.company._l10n_pl_ksef_edi_mode_fits():
            return super()._cron_l10n_pl_edi_check_invoice_status()
        return None
