from odoo import _, api, models
from odoo.exceptions import UserError


class AccountMoveSend(models.AbstractModel):
    _inherit = "account.move.send"

    @api.model
    def _l10n_pl_ksef_applicable(self, move):
        return move._l10n_pl_ksef_is_applicable() and move.l10n_pl_ksef_state in (False, "to_send", "rejected", "sending")

    def _get_all_extra_edis(self) -> dict:
        # EXTENDS 'account'
        res = super()._get_all_extra_edis()
        res["pl_ksef"] = {
            "label": _("Post to KSeF"),
            "is_applicable": self._l10n_pl_ksef_applicable,
            "help": _("Send the FA(3) e-invoice to KSeF before the PDF is printed, so it carries the KSeF number."),
        }
        return res

    @api.model
    def _call_web_service_before_invoice_pdf_render(self, invoices_data):
        # EXTENDS 'account': send before rendering so the PDF can show the KSeF number.
        super()._call_web_service_before_invoice_pdf_render(invoices_data)
        for invoice, invoice_data in invoices_data.items():
            if "pl_ksef" not in invoice_data["extra_edis"] or not self._l10n_pl_ksef_applicable(invoice):
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
