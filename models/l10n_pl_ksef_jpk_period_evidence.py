"""The evidence pack of a JPK_VAT period's invoices issued offline (the pack itself:
account_move_ksef_evidence.py)."""
from odoo import _, models
from odoo.exceptions import UserError


class L10nPlKsefJpkPeriod(models.Model):
    _inherit = "l10n_pl_ksef.jpk.period"

    def action_l10n_pl_ksef_evidence_pack(self):
        """The evidence pack of the invoices of this period issued offline."""
        self.ensure_one()
        moves = self.line_ids.move_id.filtered(lambda m: m.l10n_pl_ksef_offline_mode)
        if not moves:
            raise UserError(_("JPK_VAT period %(period)s has no invoice issued offline.", period=self.name))
        return moves.action_l10n_pl_ksef_evidence_pack()
