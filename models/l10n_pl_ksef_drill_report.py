"""The drill report: rows stored when the drill ends, HTML rendered from them at display time.

Nothing of the report is stored as HTML: a QWeb template escapes every value when the form or
the PDF is shown, so a customer name or an invoice label can never carry markup into an
administrator's browser.
"""
import pytz

from odoo import _, api, fields, models

from . import ksef_messages
from .l10n_pl_ksef_drill import WARSAW


class L10nPlKsefDrillReportLine(models.Model):
    _name = "l10n_pl_ksef.drill.report.line"
    _description = "KSeF drill report line"
    _order = "drill_id, sequence, id"

    drill_id = fields.Many2one("l10n_pl_ksef.drill", required=True, ondelete="cascade", index=True, readonly=True)
    company_id = fields.Many2one(related="drill_id.company_id", store=True)
    sequence = fields.Integer(readonly=True)
    move_id = fields.Many2one("account.move", string="Invoice record", ondelete="set null", readonly=True)
    number = fields.Char(string="Invoice", readonly=True)
    customer = fields.Char(readonly=True)
    created_by = fields.Char(string="Invoice created by", readonly=True)
    posted_by = fields.Char(string="Posted by", readonly=True)
    sent_by = fields.Char(string="Sent to KSeF by", readonly=True)
    issued = fields.Char(readonly=True)
    offline = fields.Boolean(string="Issued offline", readonly=True)
    deadline = fields.Date(string="KSeF deadline", readonly=True)
    deadline_reason = fields.Char(string="Why this deadline", readonly=True)
    ksef_state = fields.Char(string="KSeF status", readonly=True)
    ksef_number = fields.Char(string="KSeF number", readonly=True)
    submitted_at = fields.Datetime(string="Submitted at", readonly=True)
    in_time = fields.Boolean(string="In time", readonly=True)

    @api.model
    def _l10n_pl_ksef_values(self, row):
        return {name: row.get(name) or False for name in (
            "move_id", "number", "customer", "created_by", "posted_by", "sent_by", "issued", "offline", "deadline",
            "deadline_reason", "ksef_state", "ksef_number", "submitted_at", "in_time")}


class L10nPlKsefDrillReport(models.Model):
    _inherit = "l10n_pl_ksef.drill"

    @api.depends("state", "report_line_ids", "report_summary", "step_ids.applied_at")
    def _compute_report_html(self):
        for drill in self:
            drill.report_html = drill._l10n_pl_ksef_render_report() if drill.id else False

    def _l10n_pl_ksef_report_values(self):
        """What the report template shows: the stored rows of an ended drill, the live rows of a
        running one (not stored)."""
        self.ensure_one()
        drill = self.sudo()
        Line = self.env["l10n_pl_ksef.drill.report.line"].sudo()
        if drill.state == "done":
            lines, summary = drill.report_line_ids, drill.report_summary or ""
        else:
            lines = Line.browse()
            for row in drill._l10n_pl_ksef_report_rows():
                lines |= Line.new(Line._l10n_pl_ksef_values(row))
            summary = _("The drill is not over yet.")
        when = self._l10n_pl_ksef_report_when
        return {
            "doc": drill, "lines": lines, "summary": summary, "steps": drill.step_ids,
            "who": _("Started by %(user)s for company %(company)s at %(start)s, ended at %(end)s (Warsaw time).",
                     company=drill.company_id.name, user=drill.started_by_id.name or "",
                     start=when(drill.started_at), end=when(drill.ended_at or fields.Datetime.now())),
            "problems": _("Problems while ending (the company's real settings were restored all the same): "
                          "%(problems)s", problems=drill.end_error or ""),
        }

    def _l10n_pl_ksef_render_report(self):
        self.ensure_one()
        return self.env["ir.qweb"]._render("l10n_pl_ksef.report_l10n_pl_ksef_drill_body",
                                           self._l10n_pl_ksef_report_values())

    def _l10n_pl_ksef_report_when(self, moment):
        """A UTC moment as Warsaw time (the report says so in its headers)."""
        if not moment:
            return ""
        return fields.Datetime.to_string(pytz.utc.localize(moment).astimezone(WARSAW).replace(tzinfo=None))

    def _l10n_pl_ksef_write_report(self):
        """Store the rows and the counts; the HTML is never stored."""
        self.ensure_one()
        rows = self._l10n_pl_ksef_report_rows()
        offline = [row for row in rows if row["offline"]]
        in_time = [row for row in rows if row["in_time"]]
        all_in_time = bool(rows) and len(in_time) == len(rows)
        if not rows:
            summary = _("No invoice was issued during the drill.")
        elif all_in_time:
            summary = _("%(count)s invoice(s), %(offline)s issued offline, all submitted in time.",
                        count=len(rows), offline=len(offline))
        else:
            summary = _("%(count)s invoice(s), %(offline)s issued offline, %(late)s NOT submitted in time.",
                        count=len(rows), offline=len(offline), late=len(rows) - len(in_time))
        Line = self.env["l10n_pl_ksef.drill.report.line"].sudo()
        self.sudo().report_line_ids.unlink()
        Line.create([{**Line._l10n_pl_ksef_values(row), "drill_id": self.id, "sequence": index}
                     for index, row in enumerate(rows)])
        self.sudo().write({
            "report_summary": summary,
            "report_invoice_count": len(rows),
            "report_offline_count": len(offline),
            "report_in_time_count": len(in_time),
            "report_all_in_time": all_in_time,
        })

    # ---- the report --------------------------------------------------------------------------

    def _l10n_pl_ksef_report_rows(self):
        """One dict per drill invoice (issue order), before the invoices are cancelled."""
        self.ensure_one()
        env = ksef_messages.user_language_env(self.env)   # like _(): the user's language in a cron job too
        modes = dict(env["account.move"]._fields["l10n_pl_ksef_offline_mode"]._description_selection(env))
        states = dict(env["account.move"]._fields["l10n_pl_ksef_state"]._description_selection(env))
        rows = []
        moves = self.env["account.move"].search([("l10n_pl_ksef_drill_id", "=", self.id)], order="id")
        for move in moves:
            submitted_at = move.l10n_pl_ksef_acquisition_date if move.l10n_pl_ksef_state == "accepted" else False
            deadline = move.l10n_pl_ksef_deadline
            if move.l10n_pl_ksef_state == "outside":
                in_time = True   # total failure: never sent, nothing to be late for
            elif not submitted_at:
                in_time = False
            elif deadline:
                in_time = pytz.utc.localize(submitted_at).astimezone(WARSAW).date() <= deadline
            else:
                in_time = True
            rows.append({
                "move_id": move.id,
                "number": move.name or _("(draft)"),
                "customer": move.partner_id.display_name or "",
                "created_by": move.create_uid.name or "",
                "posted_by": move.l10n_pl_ksef_drill_posted_by_id.name or "",
                "sent_by": move.l10n_pl_ksef_drill_sent_by_id.name or "",
                "issued": (_("Offline: %s", modes.get(move.l10n_pl_ksef_offline_mode))
                           if move.l10n_pl_ksef_offline_mode else
                           _("Online") if move.state == "posted" else _("Not posted")),
                "offline": bool(move.l10n_pl_ksef_offline_mode),
                "issued_offline_at": move.l10n_pl_ksef_offline_issued_at,
                "deadline": deadline,
                # a trainer sees why it moved (e.g. the announced failure), not just that it did
                "deadline_reason": move.l10n_pl_ksef_deadline_reason or "",
                "ksef_state": states.get(move.l10n_pl_ksef_state, _("Not sent")),
                "ksef_number": move.l10n_pl_ksef_number or "",
                "submitted_at": submitted_at,
                "in_time": in_time,
            })
        return rows
