"""The reconciliation model flag *Match KSeF numbers* (applied in
account_bank_statement_line_ksef.py)."""
from odoo import _, api, fields, models


class AccountReconcileModel(models.Model):
    _inherit = "account.reconcile.model"

    l10n_pl_ksef_match_ksef_number = fields.Boolean(
        string="Match KSeF numbers",
        help="Match bank statement lines to the invoices and bills whose KSeF number (or KSeF collective "
             "identifier) the line's label, reference or notes name, when the amounts agree.")

    @api.model
    def _l10n_pl_ksef_default_model(self, company):
        """The company's KSeF rule; created (auto-validating) the first time it is needed."""
        Model = self.sudo().with_company(company)
        rule = Model.with_context(active_test=False).search(
            [("company_id", "=", company.id), ("l10n_pl_ksef_match_ksef_number", "=", True)], limit=1)
        if not rule:
            rule = Model.create({
                "name": _("KSeF number (art. 108g)"), "company_id": company.id, "rule_type": "invoice_matching",
                "auto_reconcile": True, "l10n_pl_ksef_match_ksef_number": True, "sequence": 1,
                "match_text_location_label": True, "match_text_location_reference": True,
                "match_text_location_note": True,
            })
        return rule
