"""The invoices around a drill: the real ones that must not wait past their deadline (checked at
Start, sent again at End) and the drill's own (cancelled at End, their simulated numbers and
notices forgotten)."""
import pytz

from odoo import _, fields, models
from odoo.exceptions import UserError

from .account_move_ksef_lifecycle import ENGINE_QUEUE_STATES
from .l10n_pl_ksef_drill import WARSAW


class L10nPlKsefDrillInvoices(models.Model):
    _inherit = "l10n_pl_ksef.drill"

    def _l10n_pl_ksef_check_real_invoices(self, end_by):
        """A real invoice waiting offline whose deadline falls before the drill ends could not be
        sent in time (real invoices wait while the drill runs): refuse, naming them."""
        company = self.company_id
        end_day = pytz.utc.localize(end_by).astimezone(WARSAW).date()
        Move = self.env["account.move"]
        waiting = Move.search([
            ("company_id", "=", company.id), ("state", "=", "posted"), ("l10n_pl_ksef_drill_id", "=", False),
            ("l10n_pl_ksef_state", "=", "offline"), ("l10n_pl_ksef_deadline", "!=", False),
            ("l10n_pl_ksef_deadline", "<=", end_day)], order="l10n_pl_ksef_deadline, id")
        in_flight = Move.search([
            ("company_id", "=", company.id), ("l10n_pl_ksef_drill_id", "=", False),
            ("l10n_pl_ksef_state", "=", "sending")], order="id")
        unsettled = self.env["l10n_pl_ksef.session"].search_count([
            ("company_id", "=", company.id), ("engine", "=", True), ("journal_state", "in", ("opened", "closed"))])
        if in_flight or unsettled:
            # Their verdict must come from the real KSeF, not from the simulator.
            raise UserError(_(
                "The drill cannot start yet: KSeF has not given its verdict on some invoices of company "
                "%(company)s (%(invoices)s). The sending asks KSeF again within minutes; start the drill "
                "when no invoice is 'Sent, awaiting KSeF'.",
                company=company.name, invoices=", ".join(in_flight.mapped("name")) or _("a submission session")))
        if waiting:
            lines = []
            for move in waiting:   # _() reads the language from its caller's frame: not in a comprehension
                lines.append(_("- %(invoice)s (deadline %(deadline)s)", invoice=move.name,
                               deadline=move.l10n_pl_ksef_deadline))
            raise UserError(_(
                "The drill cannot start: company %(company)s has invoices issued offline that must reach KSeF "
                "before the drill would end (%(end)s), and real invoices wait while a drill runs. Send them to "
                "KSeF first:\n%(invoices)s",
                company=company.name, end=end_day,
                invoices="\n".join(lines)))

    def _l10n_pl_ksef_end_invoices(self):
        Move = self.env["account.move"]
        drill_moves = Move.search([("l10n_pl_ksef_drill_id", "=", self.id), ("state", "!=", "cancel")])
        drill_moves.with_context(l10n_pl_ksef_drill_closing=True).button_cancel()
        # The simulator's KSeF numbers are not real ones and must never block a real number (the
        # report and the chatter keep them).
        Move.search([("l10n_pl_ksef_drill_id", "=", self.id), ("l10n_pl_ksef_number", "!=", False)]) \
            ._l10n_pl_ksef_write({"l10n_pl_ksef_number": False})
        if self.journal_id:
            # Outside drills nobody can pick the drill journal.
            self.journal_id.active = False
        if self.drill_certificate_id:
            certificate = self.drill_certificate_id
            self.drill_certificate_id = False
            certificate.active = False

    def _l10n_pl_ksef_end_real_invoices(self):
        # Real invoices waited during the drill: their deadlines under the real environment, then send.
        company = self.company_id
        Move = self.env["account.move"]
        waiting = Move.search([("company_id", "=", company.id), ("l10n_pl_ksef_state", "=", "offline"),
                               ("l10n_pl_ksef_drill_id", "=", False)])
        waiting._l10n_pl_ksef_recompute_deadlines()
        if Move.search_count([("company_id", "=", company.id), ("state", "=", "posted"),
                              ("l10n_pl_ksef_state", "in", ENGINE_QUEUE_STATES)], limit=1):
            Move._l10n_pl_ksef_engine_arm(fields.Datetime.now())

    def _l10n_pl_ksef_forget_simulated_events(self):
        """The drill's Latarnia notices (environment 'simulator', stored since the start) go: the
        simulator forgets them too, and the next drill's notices reuse their numbers."""
        Event = self.env["l10n_pl_ksef.event"].with_context(active_test=False)
        events = Event.search([("source", "=", "latarnia"), ("environment", "=", "simulator"),
                               ("id", ">", self.event_floor_id)])
        if not events:
            return
        Move = self.env["account.move"]
        Move.search([("l10n_pl_ksef_offline_event_id", "in", events.ids)]).filtered(
            "l10n_pl_ksef_drill_id")._l10n_pl_ksef_write({"l10n_pl_ksef_offline_event_id": False})
        still_used = Move.search([("l10n_pl_ksef_offline_event_id", "in", events.ids)]).l10n_pl_ksef_offline_event_id
        (events - still_used).with_context(l10n_pl_ksef_no_deadline_recompute=True).unlink()
