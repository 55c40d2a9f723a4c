from odoo import _, api, fields, models

from ..models.account_move_ksef_offline import OFFLINE_MODES
from ..models.res_company_offline import LATARNIA_STATUSES


class L10nPlKsefOfflineWizard(models.TransientModel):
    """One confirmation before falling back to offline issuing (company setting "After confirmation")."""
    _name = "l10n_pl_ksef.offline.wizard"
    _description = "Confirm issuing invoices offline"

    move_ids = fields.Many2many("account.move", string="Invoices", required=True)
    mode = fields.Selection(OFFLINE_MODES, string="Offline mode", required=True, readonly=True)
    event_id = fields.Many2one("l10n_pl_ksef.event", string="Justification", readonly=True)
    latarnia_status = fields.Selection(LATARNIA_STATUSES, string="KSeF status (Latarnia)", readonly=True)
    error_text = fields.Char(string="What happened", readonly=True)
    explanation = fields.Text(compute="_compute_explanation")

    @api.depends("mode", "latarnia_status", "error_text", "move_ids", "event_id")
    @api.depends_context("lang", "uid")
    def _compute_explanation(self):
        for wizard in self:
            status = wizard.latarnia_status and dict(self._fields["latarnia_status"]._description_selection(self.env))[wizard.latarnia_status]
            why = _("Latarnia reports: %s.", status) if status else _("Latarnia could not be asked, so this is treated as a problem on our side.")
            consequence = {
                "offline24": _("The invoices will be issued in offline24 mode with both QR codes and must reach KSeF by the next business day after their issue date."),
                "unavailability": _("The invoices will be issued offline during the announced KSeF unavailability and must reach KSeF by the next business day after it ends."),
                "emergency": _("The invoices will be issued in emergency mode and must reach KSeF within 7 business days after the failure ends."),
                "total_failure": _("The invoices will be issued outside KSeF (total failure): no QR codes, never sent to KSeF."),
            }.get(wizard.mode, "")
            wizard.explanation = "\n".join(filter(None, [
                _("KSeF could not be reached: %s", wizard.error_text) if wizard.error_text else "", why, consequence,
                *wizard._l10n_pl_ksef_deadline_lines(),
                _("Once issued offline, they are sent to KSeF automatically as soon as KSeF answers.")
                if wizard.mode != "total_failure" else ""]))

    def _l10n_pl_ksef_deadline_lines(self):
        """One line per invoice: the date it would have to reach KSeF by, in the reader's format."""
        self.ensure_one()
        if not self.mode or self.mode == "total_failure":
            return []
        lines = []
        for move in self.move_ids:
            deadline, key = move._l10n_pl_ksef_expected_deadline(self.mode, self.event_id)
            words = move._l10n_pl_ksef_deadline_words(deadline, key)
            if move._l10n_pl_ksef_deadline_passed(deadline):
                lines.append(_("%(invoice)s: deadline for sending it to KSeF %(deadline)s - already passed, since "
                               "the invoice is dated %(date)s; it is sent as soon as KSeF answers.",
                               invoice=move.display_name, deadline=words,
                               date=move._l10n_pl_ksef_date_text(move.invoice_date)))
            else:
                lines.append(_("%(invoice)s: deadline for sending it to KSeF: %(deadline)s.",
                               invoice=move.display_name, deadline=words))
        return lines

    def _l10n_pl_ksef_action(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Issue offline?"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }

    def action_confirm(self):
        self.ensure_one()
        self.move_ids._l10n_pl_ksef_issue_offline(self.mode, self.event_id or None)
        return {"type": "ir.actions.act_window_close"}
