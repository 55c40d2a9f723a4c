from odoo import api, models

from odoo.addons.l10n_pl_ksef.models.account_move_send import KSEF_EXTRA_EDI


class AccountMoveSend(models.AbstractModel):
    _inherit = "account.move.send"

    def _get_all_extra_edis(self) -> dict:
        # EXTENDS l10n_pl_ksef and l10n_pl_edi, which both use the key 'pl_ksef': whichever of
        # the two the registry put last, the one KSeF option the user sees is ours.
        res = super()._get_all_extra_edis()
        res[KSEF_EXTRA_EDI] = self._l10n_pl_ksef_extra_edi()
        return res

    @api.model
    def _call_web_service_before_invoice_pdf_render(self, invoices_data):
        # This bridge sits above both modules: claim the KSeF option before l10n_pl_edi's step
        # can see it (it sends whatever carries the key); l10n_pl_ksef's own step sends.
        self._l10n_pl_ksef_claim(invoices_data)
        return super()._call_web_service_before_invoice_pdf_render(invoices_data)
