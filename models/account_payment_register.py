"""The payment memo of vendor bills names their KSeF number or collective identifier (VAT act
art. 108g)."""
from odoo import api, models


class AccountPaymentRegister(models.TransientModel):
    _inherit = "account.payment.register"

    @api.model
    def _get_communication(self, lines):
        """Art. 108g: the memo names the KSeF number of the bill paid, or the collective
        identifier of exactly the bills paid together."""
        moves = lines.move_id
        if moves and all(m.move_type in ("in_invoice", "in_refund") for m in moves):
            identifier = moves.l10n_pl_ksef_collective_id
            if len(identifier) == 1 and identifier.move_ids == moves and all(m.l10n_pl_ksef_collective_id for m in moves):
                return identifier.name
            if len(moves) == 1 and moves.l10n_pl_ksef_number:
                return moves.l10n_pl_ksef_number
        return super()._get_communication(lines)
