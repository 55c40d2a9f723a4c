from odoo import fields, models


class L10nPlKsefJpkFiling(models.TransientModel):
    """Asks for the day the JPK_VAT of a period was filed; the period records it."""
    _name = "l10n_pl_ksef.jpk.filing"
    _description = "Record JPK_VAT filing"

    period_id = fields.Many2one("l10n_pl_ksef.jpk.period", required=True, ondelete="cascade")
    # Warsaw's day, as the filing is dated
    filing_date = fields.Date(string="Filing date", required=True,
                              default=lambda self: self.env["account.move"]._l10n_pl_ksef_today())

    def action_confirm(self):
        self.ensure_one()
        self.period_id._l10n_pl_ksef_record_filing(self.filing_date)
        return {"type": "ir.actions.act_window_close"}
