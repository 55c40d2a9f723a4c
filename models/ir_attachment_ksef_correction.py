"""The rejected original of a technical correction stays frozen: its hash is printed (the
frozen attachments themselves: ir_attachment.py)."""
from odoo import models


class IrAttachment(models.Model):
    _inherit = "ir.attachment"

    def _l10n_pl_ksef_frozen_moves(self):
        # The rejected original of a technical correction stays frozen too: its hash is printed.
        moves = super()._l10n_pl_ksef_frozen_moves()
        if not self.ids:
            return moves
        return moves | self.env["account.move"].sudo().search([("l10n_pl_ksef_rejected_xml_id", "in", self.ids)])
