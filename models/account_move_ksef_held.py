"""Where the lifecycle's "waits for references" rule stops the flows: Post to KSeF, offline issuing
and freezing hold an invoice whose references have no KSeF number yet (the rule itself, its hold,
release and notification: ``account_move_ksef_lifecycle``).

A file of its own because these overrides must come after the flows they stop in the model's
inheritance order (``account_move_ksef_send``, ``account_move_ksef_offline``), which themselves
import the lifecycle's named groups: the lifecycle's class is defined before them.
"""
from odoo import _, models
from odoo.exceptions import UserError


class AccountMove(models.Model):
    _inherit = "account.move"

    def action_l10n_pl_ksef_post(self):
        held = self._l10n_pl_ksef_held()
        held._l10n_pl_ksef_hold()
        result = super(AccountMove, self - held).action_l10n_pl_ksef_post() if self - held else True
        return held._l10n_pl_ksef_held_notification() if held else result

    def _l10n_pl_ksef_post(self):
        self.ensure_one()
        if self._l10n_pl_ksef_held():
            return self._l10n_pl_ksef_hold()
        return super()._l10n_pl_ksef_post()

    def _l10n_pl_ksef_issue_offline(self, mode, event=None):
        # Its QR code would print a file without the references' numbers: held instead.
        held = self._l10n_pl_ksef_held()
        held._l10n_pl_ksef_hold()
        return super(AccountMove, self - held)._l10n_pl_ksef_issue_offline(mode, event=event)

    def action_l10n_pl_ksef_freeze(self):
        # Never freeze a held invoice: its file must name its references' KSeF numbers.
        held = self.filtered(lambda m: not m.l10n_pl_ksef_xml_id and m._l10n_pl_ksef_awaited_references())
        if held:
            raise UserError(_("Invoice %(moves)s cannot be frozen yet: the invoices it refers to (%(references)s) have "
                              "no KSeF number (issued offline). It is held and sent once they are accepted.",
                              moves=", ".join(held.mapped("name")),
                              references=", ".join(held.mapped(lambda m: ", ".join(
                                  m._l10n_pl_ksef_awaited_references().mapped("name"))))))
        return super().action_l10n_pl_ksef_freeze()
