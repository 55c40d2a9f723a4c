"""The overdue cockpit: where each invoice issued offline stands against its KSeF deadline
(the Ministry's ``tryby-offline.md``: the deadline is a compliance alarm, not an API error), the filters of the
customer invoice list, and the daily reminders: an activity for the person responsible one
business day before and on the deadline, an escalation (activity for the responsible and the
KSeF managers, chatter note) once it has passed. Each reminder is given once per deadline.
"""
from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.osv import expression

from ..ksef import calendar as ksef_calendar
from . import ksef_messages
from .account_move_ksef_lifecycle import DEADLINE_STATES

URGENCIES = [
    ("overdue", "Overdue"),
    ("today", "Due today"),
    ("soon", "Due within 2 business days"),
    ("later", "Later"),
]
DUE_SOON_BUSINESS_DAYS = 2
# Reminder levels, in the order they are reached; each is given once per deadline.
ALERT_LEVELS = [("before", "One business day before"), ("due", "On the deadline"), ("overdue", "Escalated")]
ALERT_ORDER = {level: index for index, (level, _label) in enumerate(ALERT_LEVELS, start=1)}
ACTIVITY_TYPE_XMLID = "l10n_pl_ksef.mail_activity_type_l10n_pl_ksef_deadline"


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_urgency = fields.Selection(
        URGENCIES, string="KSeF deadline urgency", compute="_compute_l10n_pl_ksef_urgency",
        search="_search_l10n_pl_ksef_urgency",
        help="Where an invoice still waiting for KSeF stands against its deadline (Polish business days).")
    l10n_pl_ksef_alert_level = fields.Selection(
        ALERT_LEVELS, string="KSeF reminder given", copy=False, readonly=True,
        help="The last deadline reminder given for this invoice (for the deadline below).")
    l10n_pl_ksef_alert_deadline = fields.Date(
        string="KSeF reminder for deadline", copy=False, readonly=True,
        help="The deadline the last reminder was about: a new deadline starts the reminders again.")

    # ---- urgency ---------------------------------------------------------------------------

    @api.model
    def _l10n_pl_ksef_urgency_bounds(self, today=None):
        today = today or self._l10n_pl_ksef_today()
        return today, ksef_calendar.add_business_days(today, DUE_SOON_BUSINESS_DAYS)

    @api.depends("l10n_pl_ksef_deadline", "l10n_pl_ksef_state")
    def _compute_l10n_pl_ksef_urgency(self):
        today, soon_limit = self._l10n_pl_ksef_urgency_bounds()
        for move in self:
            deadline = move.l10n_pl_ksef_deadline
            if not deadline or move.l10n_pl_ksef_state not in DEADLINE_STATES:
                move.l10n_pl_ksef_urgency = False
            elif deadline < today:
                move.l10n_pl_ksef_urgency = "overdue"
            elif deadline == today:
                move.l10n_pl_ksef_urgency = "today"
            elif deadline <= soon_limit:
                move.l10n_pl_ksef_urgency = "soon"
            else:
                move.l10n_pl_ksef_urgency = "later"

    @api.model
    def _l10n_pl_ksef_urgency_domain(self, urgency):
        today, soon_limit = self._l10n_pl_ksef_urgency_bounds()
        waiting = [("l10n_pl_ksef_state", "in", DEADLINE_STATES), ("l10n_pl_ksef_deadline", "!=", False)]
        by_urgency = {
            "overdue": [("l10n_pl_ksef_deadline", "<", today)],
            "today": [("l10n_pl_ksef_deadline", "=", today)],
            "soon": [("l10n_pl_ksef_deadline", ">", today), ("l10n_pl_ksef_deadline", "<=", soon_limit)],
            "later": [("l10n_pl_ksef_deadline", ">", soon_limit)],
        }
        return expression.AND([waiting, by_urgency[urgency]])

    def _search_l10n_pl_ksef_urgency(self, operator, value):
        if operator not in ("=", "!=", "in", "not in"):
            raise NotImplementedError(_("Unsupported search on the KSeF deadline urgency: %s", operator))
        values = value if isinstance(value, (list, tuple)) else [value]
        positive = [v for v in values if v]
        domain = expression.OR([self._l10n_pl_ksef_urgency_domain(v) for v in positive]) if positive else expression.FALSE_DOMAIN
        if any(not v for v in values):
            # "no urgency": everything outside the four classes
            all_classes = expression.OR([self._l10n_pl_ksef_urgency_domain(v) for v, _label in URGENCIES])
            domain = expression.OR([domain, ["!"] + expression.normalize_domain(all_classes)])
        if operator in ("!=", "not in"):
            domain = ["!"] + expression.normalize_domain(domain)
        return domain

    # ---- deadline activities (closed when the lifecycle moves the invoice on) --------------

    def _l10n_pl_ksef_close_deadline_activities(self, feedback):
        activity_type = self.env.ref(ACTIVITY_TYPE_XMLID, raise_if_not_found=False)
        if not activity_type or not self:
            return
        activities = self.env["mail.activity"].sudo().search([
            ("res_model", "=", self._name), ("res_id", "in", self.ids), ("activity_type_id", "=", activity_type.id)])
        if activities:
            activities.action_feedback(feedback=feedback)

    # ---- daily reminders -------------------------------------------------------------------

    @api.model
    def _cron_l10n_pl_ksef_deadline_reminders(self, today=None):
        """Give the deadline reminders due today, each once. Returns {level: moves}."""
        today = today or self._l10n_pl_ksef_today()
        # Safety net: credit notes whose original got its number without passing through write().
        self._l10n_pl_ksef_release_numbered_originals()
        # Deadlines within one business day (or passed) are the only ones that need anything.
        horizon = ksef_calendar.add_business_days(today, 1)
        moves = self.sudo().search([
            ("l10n_pl_ksef_state", "in", DEADLINE_STATES),
            ("l10n_pl_ksef_deadline", "!=", False),
            ("l10n_pl_ksef_deadline", "<=", horizon),
            ("move_type", "in", ("out_invoice", "out_refund")),
        ])
        given = {level: self.browse() for level, _label in ALERT_LEVELS}
        for move in moves:
            level = move._l10n_pl_ksef_alert_level_due(today)
            if not level:
                continue
            if (move.l10n_pl_ksef_alert_deadline == move.l10n_pl_ksef_deadline
                    and ALERT_ORDER.get(move.l10n_pl_ksef_alert_level, 0) >= ALERT_ORDER[level]):
                continue  # already given for this deadline
            ksef_messages.in_company_language(move, move.company_id)._l10n_pl_ksef_give_reminder(level)
            given[level] |= move
        return given

    def _l10n_pl_ksef_alert_level_due(self, today):
        self.ensure_one()
        deadline = self.l10n_pl_ksef_deadline
        if deadline < today:
            return "overdue"
        if deadline == today:
            return "due"
        if ksef_calendar.add_business_days(today, 1) >= deadline:
            return "before"
        return None

    def _l10n_pl_ksef_reminder_users(self, escalate=False):
        """Who is reminded: the company's person responsible for KSeF submissions (else the
        invoice's salesperson); when escalating, also every KSeF manager of the company."""
        self.ensure_one()
        users = self.company_id.l10n_pl_ksef_responsible_id or self.invoice_user_id
        if escalate or not users:
            managers = self.env.ref("l10n_pl_ksef.group_l10n_pl_ksef_manager").users.filtered(
                lambda u: u.active and not u.share and self.company_id in u.company_ids)
            users |= managers
        return users.filtered(lambda u: u.active and not u.share)

    def _l10n_pl_ksef_give_reminder(self, level):
        self.ensure_one()
        move = self.sudo()
        deadline = move.l10n_pl_ksef_deadline
        activity_type = self.env.ref(ACTIVITY_TYPE_XMLID, raise_if_not_found=False)
        if level == "overdue":
            summary = _("KSeF deadline passed on %s: send this invoice now", deadline)
            note = _("Invoice %(invoice)s was issued offline and had to reach KSeF by %(deadline)s; it has not "
                     "(KSeF status: %(state)s). Send it now (or correct it if KSeF rejected it) and record why it "
                     "was late.", invoice=move.name, deadline=deadline, state=move._l10n_pl_ksef_state_label())
        elif level == "due":
            summary = _("KSeF deadline today: send this invoice to KSeF")
            note = _("Invoice %(invoice)s was issued offline: today, %(deadline)s, is the last day to send it to KSeF.",
                     invoice=move.name, deadline=deadline)
        else:
            summary = _("KSeF deadline %s: send this invoice to KSeF", deadline)
            note = _("Invoice %(invoice)s was issued offline: send it to KSeF by %(deadline)s (next business day).",
                     invoice=move.name, deadline=deadline)
        users = move._l10n_pl_ksef_reminder_users(escalate=level == "overdue")
        existing = self.env["mail.activity"].sudo().search([
            ("res_model", "=", move._name), ("res_id", "=", move.id),
            ("activity_type_id", "=", activity_type.id if activity_type else False)]) if activity_type else []
        for user in users:
            activity = existing.filtered(lambda a: a.user_id == user)[:1] if activity_type else None
            if activity:
                activity.write({"summary": summary, "note": note, "date_deadline": deadline})
            else:
                move.activity_schedule(
                    ACTIVITY_TYPE_XMLID if activity_type else "mail.mail_activity_data_todo",
                    date_deadline=deadline, summary=summary, note=note, user_id=user.id)
        if level == "overdue":
            move.with_context(no_new_invoice=True).message_post(
                body=Markup("<strong>%s</strong><br/>%s") % (_("KSeF deadline passed - escalated"), note)
                + (Markup("<br/>%s") % _("Reminded: %s", ", ".join(users.mapped("name"))) if users else ""),
                subtype_xmlid="mail.mt_note")
        move._l10n_pl_ksef_write({"l10n_pl_ksef_alert_level": level, "l10n_pl_ksef_alert_deadline": deadline})

    def _l10n_pl_ksef_state_label(self):
        self.ensure_one()
        return dict(self._fields["l10n_pl_ksef_state"]._description_selection(self.env)).get(
            self.l10n_pl_ksef_state, _("none"))
