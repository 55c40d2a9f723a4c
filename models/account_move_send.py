from odoo import _, api, models
from odoo.exceptions import UserError

# Our Send & Print option. Odoo's own l10n_pl_edi uses the same key: one option for the user,
# and the rule below makes sure only our engine acts on it.
KSEF_EXTRA_EDI = "pl_ksef"


class AccountMoveSend(models.AbstractModel):
    _inherit = "account.move.send"

    @api.model
    def _l10n_pl_ksef_applicable(self, move):
        return move._l10n_pl_ksef_is_applicable() and move.l10n_pl_ksef_state in (False, "to_send", "rejected", "sending")

    @api.model
    def _l10n_pl_ksef_extra_edi(self):
        return {
            "label": _("Post to KSeF"),
            "is_applicable": self._l10n_pl_ksef_applicable,
            "help": _("Send the FA(3) e-invoice to KSeF before the PDF is printed, so it carries the KSeF number."),
        }

    def _get_all_extra_edis(self) -> dict:
        # EXTENDS 'account'
        res = super()._get_all_extra_edis()
        res[KSEF_EXTRA_EDI] = self._l10n_pl_ksef_extra_edi()
        return res

    @api.model
    def _l10n_pl_ksef_claim(self, invoices_data):
        """The one-sender rule: an invoice whose KSeF option is ticked goes to KSeF through our
        engine only. The option is taken out of the data that every other module's web-service
        step reads (Odoo's ``l10n_pl_edi`` sends whatever carries the same key), and put back
        once we have sent. Idempotent: a module above ours (the l10n_pl_edi bridge) claims first."""
        for invoice_data in invoices_data.values():
            extra_edis = invoice_data.get("extra_edis") or ()
            if KSEF_EXTRA_EDI in extra_edis:
                invoice_data["extra_edis"] = {edi for edi in extra_edis if edi != KSEF_EXTRA_EDI}
                invoice_data["l10n_pl_ksef_claimed"] = True

    @api.model
    def _call_web_service_before_invoice_pdf_render(self, invoices_data):
        # EXTENDS 'account': send before rendering so the PDF can show the KSeF number.
        self._l10n_pl_ksef_claim(invoices_data)
        super()._call_web_service_before_invoice_pdf_render(invoices_data)
        for invoice, invoice_data in invoices_data.items():
            if not invoice_data.pop("l10n_pl_ksef_claimed", False):
                continue
            invoice_data["extra_edis"] = {*invoice_data["extra_edis"], KSEF_EXTRA_EDI}
            if not self._l10n_pl_ksef_applicable(invoice):
                continue
            # One invoice's problem must not stop the batch: it goes into its own data.
            try:
                invoice._l10n_pl_ksef_post()
            except UserError as error:
                invoice_data["error"] = {
                    "error_title": _("Invoice %s was not posted to KSeF:", invoice.display_name),
                    "errors": [str(error.args[0] if error.args else error)],
                }
                continue
            if invoice.l10n_pl_ksef_state == "rejected":
                invoice_data["error"] = {
                    "error_title": _("KSeF rejected invoice %s:", invoice.display_name),
                    "errors": [invoice.l10n_pl_ksef_error or ""],
                }
            if self._can_commit():
                self._cr.commit()  # pylint: disable=invalid-commit  # as account's own web-service step does
