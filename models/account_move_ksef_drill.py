"""Drill invoices: where new invoices go while a drill runs, and the one safety rule
(``_l10n_pl_ksef_drill_blocked``) that Post to KSeF, the status refresh, offline issuing and the
submission engine ask."""
from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..ksef import errors as ksef_errors


class AccountMoveKsefDrill(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_drill_id = fields.Many2one(
        "l10n_pl_ksef.drill", string="KSeF drill", copy=False, readonly=True, index="btree_not_null",
        ondelete="restrict", help="Issued during this KSeF drill: not a legal invoice.")
    l10n_pl_ksef_drill_posted_by_id = fields.Many2one("res.users", string="Drill: posted by", copy=False, readonly=True)
    l10n_pl_ksef_drill_sent_by_id = fields.Many2one("res.users", string="Drill: sent to KSeF by", copy=False,
                                                    readonly=True)
    l10n_pl_ksef_is_drill = fields.Boolean(string="Drill invoice", compute="_compute_l10n_pl_ksef_is_drill")

    @api.depends("journal_id", "l10n_pl_ksef_drill_id")
    def _compute_l10n_pl_ksef_is_drill(self):
        for move in self:
            move.l10n_pl_ksef_is_drill = bool(move.l10n_pl_ksef_drill_id or move.journal_id.l10n_pl_ksef_drill)

    # ---- where new invoices go --------------------------------------------------------------

    def _search_default_journal(self):
        company = self.company_id or self.env.company
        if self.is_sale_document(include_receipts=False) and not self.statement_line_ids:
            drill = company.sudo().l10n_pl_ksef_running_drill_id
            if drill and drill.journal_id:
                return drill.journal_id.sudo(False)
        return super()._search_default_journal()

    def _post(self, soft=True):
        drill_moves = self.filtered(lambda m: m.journal_id.l10n_pl_ksef_drill)
        for move in drill_moves:
            drill = move.company_id.sudo().l10n_pl_ksef_running_drill_id
            if not drill or (move.l10n_pl_ksef_drill_id and move.l10n_pl_ksef_drill_id != drill):
                raise UserError(_("Invoice %(invoice)s is in the KSeF drill journal %(journal)s, but no KSeF drill "
                                  "is running for company %(company)s: drill invoices can only be issued during a "
                                  "drill.", invoice=move.display_name, journal=move.journal_id.name,
                                  company=move.company_id.name))
        posted = super()._post(soft=soft)
        for move in posted.filtered(lambda m: m.journal_id.l10n_pl_ksef_drill):
            move.sudo()._l10n_pl_ksef_write({
                "l10n_pl_ksef_drill_id": move.company_id.sudo().l10n_pl_ksef_running_drill_id.id,
                "l10n_pl_ksef_drill_posted_by_id": self.env.uid,
            })
        return posted

    # ---- the one safety rule ----------------------------------------------------------------

    def _l10n_pl_ksef_drill_blocked(self):
        """The invoices that must not talk to their company's current KSeF connection now, as
        {move: reason}: real invoices while a drill runs (the connection is the simulator's), drill
        invoices outside their running drill (the connection may be the real KSeF)."""
        blocked = {}
        for move in self:
            drill = move.company_id.sudo().l10n_pl_ksef_running_drill_id
            is_drill = move.l10n_pl_ksef_drill_id or move.journal_id.l10n_pl_ksef_drill
            if drill and not is_drill:
                blocked[move] = _(
                    "Invoice %(invoice)s was not sent: a KSeF drill is running for company %(company)s until "
                    "%(end)s, and during a drill the company talks to the KSeF simulator. Real invoices "
                    "wait: post it to KSeF again once the drill has ended.",
                    invoice=move.display_name, company=move.company_id.name,
                    end=self.env["account.move"]._l10n_pl_ksef_moment_text(drill.end_by))
            elif is_drill and (not drill or move.l10n_pl_ksef_drill_id != drill
                               or not drill._l10n_pl_ksef_is_current_endpoint()):
                # Whatever the flags say: a drill invoice talks to its drill's simulator and nothing else.
                blocked[move] = _(
                    "Invoice %(invoice)s is a KSeF drill invoice (not a legal invoice): it is never sent to KSeF "
                    "outside its drill's simulator.", invoice=move.display_name)
        return blocked

    def _l10n_pl_ksef_drill_check(self):
        blocked = self._l10n_pl_ksef_drill_blocked()
        if blocked:
            raise UserError("\n".join(blocked.values()))

    def _l10n_pl_ksef_post(self):
        self._l10n_pl_ksef_drill_check()
        if self.l10n_pl_ksef_drill_id and not self.l10n_pl_ksef_drill_sent_by_id:
            self.sudo()._l10n_pl_ksef_write({"l10n_pl_ksef_drill_sent_by_id": self.env.uid})
        if (self.l10n_pl_ksef_drill_id and self.company_id._l10n_pl_ksef_sending_paused()
                and self.l10n_pl_ksef_state in (False, "to_send")):
            # The simulator announces a failure on its Latarnia but its API keeps answering: in a
            # real failure KSeF takes nothing, so the drill invoice meets an unavailable KSeF.
            return self._l10n_pl_ksef_handle_unreachable(ksef_errors.KsefUnavailable(
                "KSeF drill: Latarnia announces that KSeF is not available"))
        return super()._l10n_pl_ksef_post()

    def _l10n_pl_ksef_update_status(self):
        self._l10n_pl_ksef_drill_check()
        return super()._l10n_pl_ksef_update_status()

    def _l10n_pl_ksef_check_can_issue_offline(self, mode):
        self._l10n_pl_ksef_drill_check()
        return super()._l10n_pl_ksef_check_can_issue_offline(mode)

    def _l10n_pl_ksef_recompute_deadlines(self, notify=True):
        # While a drill runs, the company's events are the simulator's: real deadlines stay as they are.
        blocked = self._l10n_pl_ksef_drill_blocked()
        return super(AccountMoveKsefDrill, self.filtered(lambda m: m not in blocked))._l10n_pl_ksef_recompute_deadlines(
            notify=notify)

    @api.model
    def _l10n_pl_ksef_engine_scope(self, company):
        drill = company.sudo().l10n_pl_ksef_running_drill_id
        if drill:
            if not drill._l10n_pl_ksef_is_current_endpoint():
                return SQL("FALSE")   # drill invoices go to the drill's simulator only, real ones wait
            return SQL("m.l10n_pl_ksef_drill_id = %s", drill.id)
        return SQL("m.l10n_pl_ksef_drill_id IS NULL")

    def _l10n_pl_ksef_may_reset_to_draft(self):
        # Only when the drill that issued it closes: drill invoices never count in the books.
        # The context key alone can be sent over RPC: only the drill's end, running as superuser, counts.
        return bool(self.l10n_pl_ksef_drill_id and self.env.su and self.env.context.get("l10n_pl_ksef_drill_closing"))
